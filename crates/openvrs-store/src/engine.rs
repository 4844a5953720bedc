//! The store's logic, written once over [`Backend`]: sealing, keyed indexes, the audit chain.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use openvrs_crypto::{FieldSlot, Key, KeyKind, KeySlot, MasterKey, TenantKeys, audit_link};
use openvrs_domain::{
    account::{Account, UserId},
    audit::{Actor, Outcome, Role, Zone},
    date::parse_date,
    dose::{Dose, DoseNumber, Short},
    ids::{AddressNumber, MunicipalityCode, MyNumber, VoucherNumber},
    name::{KanaName, Name},
    person::{BirthDate, Flags, MovedOut, Person, Voucher},
    product::Product,
    sex::Sex,
};

use crate::{
    AuditEntry, AuditHead, Credential, Disclosure, DoseVersion, DoseWritten, FlagUpdate,
    LedgerRecord, LedgerSink, LedgerSummary, Municipality, PutSummary, QualityLine, SecurityEvent,
    Session, Stats, Store, StoreError, StoredDose, accounts,
    sql::{Backend, Row, Tx, Value},
};

/// A municipality's keys as loaded: the audit key always, the others until shredded.
#[derive(Debug)]
pub(crate) struct Tenant {
    audit: Key,
    personal: Option<TenantKeys>,
}

impl Tenant {
    /// The oldest and newest data key versions these keys hold (none when shredded).
    fn data_versions(&self) -> (Option<i64>, Option<i64>) {
        match &self.personal {
            Some(k) => (
                Some(i64::from(
                    k.data_retiring
                        .iter()
                        .map(|(v, _)| *v)
                        .min()
                        .unwrap_or(k.data_version),
                )),
                Some(i64::from(k.data_version)),
            ),
            None => (None, None),
        }
    }

    pub(crate) fn personal(&self, m: MunicipalityCode) -> Result<&TenantKeys, StoreError> {
        self.personal.as_ref().ok_or(StoreError::Shredded(m))
    }
}

pub(crate) struct Engine<B> {
    pub(crate) db: B,
    master: MasterKey,
    pub(crate) tenants: RwLock<HashMap<MunicipalityCode, Arc<Tenant>>>,
    /// The product catalogue with its lot patterns compiled, loaded once. (Products change only
    /// through migrations for now; a catalogue editor must clear this.)
    catalogue: RwLock<Option<Arc<openvrs_domain::product::Catalogue>>>,
}

impl<B> std::fmt::Debug for Engine<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Engine(..)")
    }
}

pub(crate) fn now_micros() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64
}

const PERSONS: &str = "persons";
pub(crate) const MY_NUMBER_INDEX: &str = "my_number";

fn slot<'a>(m: &'a str, column: &'a str, row: &'a str) -> FieldSlot<'a> {
    FieldSlot {
        municipality: m,
        table: PERSONS,
        column,
        row,
    }
}

impl<B: Backend> Engine<B> {
    pub(crate) fn master(&self) -> &MasterKey {
        &self.master
    }

    /// Opens the database and applies the migrations it lacks; with `migrate` false (a
    /// read-only snapshot), only checks that it has them all.
    pub fn open(db: B, master: MasterKey, migrate: bool) -> Result<Self, StoreError> {
        let engine = Self {
            db,
            master,
            tenants: RwLock::new(HashMap::new()),
            catalogue: RwLock::new(None),
        };
        if migrate {
            engine.migrate()?;
        } else {
            let found = engine.db.transaction(|tx| {
                tx.query_opt("SELECT MAX(version) FROM schema_migrations", &[])?
                    .map(|r| r.opt_int(0))
                    .transpose()
                    .map(|v| v.flatten().unwrap_or(0))
            })?;
            let known = B::MIGRATIONS.last().map_or(0, |(v, _)| *v);
            if found > known {
                return Err(StoreError::SchemaTooNew { found, known });
            }
            if found < known {
                return Err(StoreError::SchemaOld { found, known });
            }
        }
        Ok(engine)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.db.transaction(|tx| {
            tx.batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations \
                 (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )?;
            let current = tx
                .query_opt("SELECT MAX(version) FROM schema_migrations", &[])?
                .map(|r| r.opt_int(0))
                .transpose()?
                .flatten()
                .unwrap_or(0);
            let known = B::MIGRATIONS.last().map_or(0, |(v, _)| *v);
            if current > known {
                return Err(StoreError::SchemaTooNew {
                    found: current,
                    known,
                });
            }
            for (version, sql) in B::MIGRATIONS.iter().filter(|(v, _)| *v > current) {
                tracing::info!(backend = B::NAME, version, "applying migration");
                tx.batch(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    &[(*version).into(), now_micros().into()],
                )?;
            }
            Ok(())
        })
    }

    /// The municipality's keys as the database has them now: from the cache when its data key
    /// versions are still those stored (one indexed query: another process may have rotated or
    /// shredded them), else unwrapped afresh.
    pub(crate) fn tenant(
        &self,
        tx: &mut dyn Tx,
        m: MunicipalityCode,
    ) -> Result<Arc<Tenant>, StoreError> {
        let code = m.to_string();
        let versions = tx
            .query_opt(
                "SELECT MIN(version), MAX(version) FROM tenant_keys \
                 WHERE municipality_code = $1 AND kind = 'data'",
                &[code.as_str().into()],
            )?
            .map(|r| Ok::<_, StoreError>((r.opt_int(0)?, r.opt_int(1)?)))
            .transpose()?
            .unwrap_or((None, None));
        if let Some(t) = self.cached_tenant(m)
            && t.data_versions() == versions
        {
            return Ok(t);
        }
        self.load_tenant(tx, m)
    }

    /// The municipality's keys from the cache alone: for the later records of a group commit,
    /// whose transaction has already checked them with [`tenant`](Self::tenant).
    fn cached_tenant(&self, m: MunicipalityCode) -> Option<Arc<Tenant>> {
        self.tenants
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&m)
            .cloned()
    }

    fn load_tenant(&self, tx: &mut dyn Tx, m: MunicipalityCode) -> Result<Arc<Tenant>, StoreError> {
        let code = m.to_string();
        let rows = tx.query(
            "SELECT kind, version, wrapped FROM tenant_keys WHERE municipality_code = $1 \
             ORDER BY kind, version",
            &[code.as_str().into()],
        )?;
        let mut found: HashMap<KeyKind, Vec<(u32, Key)>> = HashMap::new();
        for row in &rows {
            let slot = key_slot(&code, row, 0)?;
            let key = self.master.unwrap(&slot, row.bytes(2)?)?;
            found
                .entry(slot.kind)
                .or_default()
                .push((slot.version, key));
        }
        // Rows are ordered by version: the last one of each kind is the one in use.
        let mut latest = |kind| found.get_mut(&kind).and_then(Vec::pop);
        let audit = match latest(KeyKind::Audit) {
            Some((_, k)) => k,
            None => return Err(StoreError::UnknownMunicipality(m)),
        };
        let personal = match (latest(KeyKind::Data), latest(KeyKind::Index)) {
            (Some((data_version, data)), Some((_, index))) => Some(TenantKeys {
                data,
                data_version,
                data_retiring: found.remove(&KeyKind::Data).unwrap_or_default(),
                index,
                audit: audit.clone(),
            }),
            _ => None,
        };
        let tenant = Arc::new(Tenant { audit, personal });
        self.tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(m, tenant.clone());
        Ok(tenant)
    }

    /// The product catalogue, from the cache or the database.
    pub(crate) fn catalogue(
        &self,
        tx: &mut dyn Tx,
    ) -> Result<Arc<openvrs_domain::product::Catalogue>, StoreError> {
        if let Some(c) = &*self.catalogue.read().unwrap_or_else(|p| p.into_inner()) {
            return Ok(c.clone());
        }
        let c = Arc::new(crate::records::catalogue(tx)?);
        *self.catalogue.write().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// Runs `f` in a write transaction of municipality `m`, then appends the audit entry it
    /// describes. The audit head's row lock serialises the municipality's writers.
    pub(crate) fn write<T>(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
        action: &str,
        f: impl FnOnce(&mut dyn Tx, &Tenant) -> Result<(T, String, Outcome), StoreError>,
    ) -> Result<T, StoreError> {
        self.db
            .transaction(|tx| self.write_in(tx, m, actor, action, f))
    }

    /// As [`write`](Self::write), inside a transaction the caller holds (group commit).
    pub(crate) fn write_in<T>(
        &self,
        tx: &mut dyn Tx,
        m: MunicipalityCode,
        actor: &Actor,
        action: &str,
        f: impl FnOnce(&mut dyn Tx, &Tenant) -> Result<(T, String, Outcome), StoreError>,
    ) -> Result<T, StoreError> {
        let (out, (seq, link)) = self.write_chained(tx, None, m, actor, action, f)?;
        tx.execute(
            "UPDATE audit_heads SET seq = $2, link = $3 WHERE municipality_code = $1",
            &[m.to_string().into(), seq.into(), link.to_vec().into()],
        )?;
        Ok(out)
    }

    /// Runs `f` and appends its audit entry after `head` (the municipality's chain end as the
    /// caller last left it in this transaction, or `None` to lock and read it), without moving
    /// the stored head: returns the new end for the caller to store once (group commit).
    pub(crate) fn write_chained<T>(
        &self,
        tx: &mut dyn Tx,
        head: Option<(i64, [u8; 32])>,
        m: MunicipalityCode,
        actor: &Actor,
        action: &str,
        f: impl FnOnce(&mut dyn Tx, &Tenant) -> Result<(T, String, Outcome), StoreError>,
    ) -> Result<(T, (i64, [u8; 32])), StoreError> {
        let code = m.to_string();
        let (head, tenant) = match head {
            Some(h) => match self.cached_tenant(m) {
                Some(t) => (h, t),
                None => (h, self.tenant(tx, m)?),
            },
            None => {
                let row = tx
                    .query_opt(
                        &format!(
                            "SELECT seq, link FROM audit_heads WHERE municipality_code = $1{}",
                            B::FOR_UPDATE
                        ),
                        &[code.as_str().into()],
                    )?
                    .ok_or(StoreError::UnknownMunicipality(m))?;
                let link: [u8; 32] = row
                    .bytes(1)?
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("audit link length"))?;
                // The keys are read after the head is locked, so that a key rotation's last
                // step (which takes the same lock) is seen by every writer that follows it.
                ((row.int(0)?, link), self.tenant(tx, m)?)
            }
        };
        let (out, object, outcome) = f(tx, &tenant)?;
        let end = insert_entry(
            tx,
            &code,
            &tenant.audit,
            head,
            actor,
            action,
            &object,
            outcome,
        )?;
        Ok((out, end))
    }

    pub(crate) fn read_person(
        &self,
        tx: &mut dyn Tx,
        m: MunicipalityCode,
        keys: &TenantKeys,
        address: &str,
    ) -> Result<Option<Person>, StoreError> {
        let code = m.to_string();
        let Some(row) = tx.query_opt(
            "SELECT address_number, name_sealed, name_kana_sealed, birth_date_sealed, \
             my_number_sealed, sex, moved_out_on, moved_out_to, deceased_on, use_suspended \
             FROM persons WHERE municipality_code = $1 AND address_number = $2",
            &[code.as_str().into(), address.into()],
        )?
        else {
            return Ok(None);
        };
        let vouchers = tx
            .query(
                "SELECT voucher_number, voucher_type, dose_number, issued_on FROM vouchers \
                 WHERE municipality_code = $1 AND address_number = $2 \
                 ORDER BY COALESCE(dose_number, 0), voucher_number",
                &[code.as_str().into(), address.into()],
            )?
            .iter()
            .map(voucher_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        person_from_row(&code, keys, &row, vouchers).map(Some)
    }

    fn find_person(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
        object: String,
        lookup: impl FnOnce(&mut dyn Tx, &TenantKeys) -> Result<Option<String>, StoreError>,
    ) -> Result<Option<Person>, StoreError> {
        self.write(m, actor, "person.read", |tx, tenant| {
            let keys = tenant.personal(m)?;
            let person = match lookup(tx, keys)? {
                Some(address) => self.read_person(tx, m, keys, &address)?,
                None => None,
            };
            let (object, outcome) = match &person {
                Some(p) => (format!("person:{}", p.address_number), Outcome::Ok),
                None => (format!("{object} (not found)"), Outcome::Failed),
            };
            Ok((person, object, outcome))
        })
    }
}

/// Appends an entry after `prev` and moves the stored head to it.
#[allow(clippy::too_many_arguments)]
fn append_audit(
    tx: &mut dyn Tx,
    code: &str,
    key: &Key,
    (prev_seq, prev_link): (i64, &[u8]),
    actor: &Actor,
    action: &str,
    object: &str,
    outcome: Outcome,
) -> Result<(), StoreError> {
    let prev: [u8; 32] = prev_link
        .try_into()
        .map_err(|_| StoreError::Corrupt("audit link length"))?;
    let (seq, link) = insert_entry(
        tx,
        code,
        key,
        (prev_seq, prev),
        actor,
        action,
        object,
        outcome,
    )?;
    tx.execute(
        "UPDATE audit_heads SET seq = $2, link = $3 WHERE municipality_code = $1",
        &[code.into(), seq.into(), link.to_vec().into()],
    )?;
    Ok(())
}

/// Inserts the entry that follows `prev`; returns the new chain end.
#[allow(clippy::too_many_arguments)]
fn insert_entry(
    tx: &mut dyn Tx,
    code: &str,
    key: &Key,
    (prev_seq, prev): (i64, [u8; 32]),
    actor: &Actor,
    action: &str,
    object: &str,
    outcome: Outcome,
) -> Result<(i64, [u8; 32]), StoreError> {
    let entry = AuditEntry {
        seq: prev_seq + 1,
        at: now_micros(),
        actor: actor.user.clone(),
        role: actor.role,
        zone: actor.zone,
        action: action.to_owned(),
        object: object.to_owned(),
        outcome,
    };
    let link = entry_link(key, code, &prev, &entry);
    tx.execute(
        "INSERT INTO audit_log (municipality_code, seq, at, actor, role, zone, action, object, \
         outcome, link) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            code.into(),
            entry.seq.into(),
            entry.at.into(),
            entry.actor.into(),
            entry.role.code().into(),
            entry.zone.code().into(),
            entry.action.into(),
            entry.object.into(),
            entry.outcome.code().into(),
            link.to_vec().into(),
        ],
    )?;
    Ok((entry.seq, link))
}

fn entry_link(key: &Key, code: &str, prev: &[u8; 32], e: &AuditEntry) -> [u8; 32] {
    audit_link(
        key,
        prev,
        &[
            code.as_bytes(),
            &e.seq.to_be_bytes(),
            &e.at.to_be_bytes(),
            e.actor.as_bytes(),
            e.role.code().as_bytes(),
            e.zone.code().as_bytes(),
            e.action.as_bytes(),
            e.object.as_bytes(),
            e.outcome.code().as_bytes(),
        ],
    )
}

/// Where a stored wrapped key of `municipality` belongs: its kind and version read from the
/// row's columns `at` and `at + 1` of `tenant_keys`.
pub(crate) fn key_slot<'a>(
    municipality: &'a str,
    row: &Row,
    at: usize,
) -> Result<KeySlot<'a>, StoreError> {
    Ok(KeySlot {
        municipality,
        kind: KeyKind::from_code(row.text(at)?).ok_or(StoreError::Corrupt("key kind"))?,
        version: u32::try_from(row.int(at + 1)?).map_err(|_| StoreError::Corrupt("key version"))?,
    })
}

/// A sealed field of `persons` opened, whichever data key version sealed it, and sealed again
/// with the current one (data key rotation).
pub(crate) fn reseal(
    keys: &TenantKeys,
    code: &str,
    column: &str,
    row: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let slot = slot(code, column, row);
    Ok(keys.seal(&slot, &keys.open(&slot, sealed)?))
}

pub(crate) fn open_text(
    keys: &TenantKeys,
    code: &str,
    column: &str,
    row: &str,
    sealed: &[u8],
) -> Result<String, StoreError> {
    let plain = keys.open(&slot(code, column, row), sealed)?;
    String::from_utf8(plain.to_vec()).map_err(|_| StoreError::Corrupt("sealed text is not UTF-8"))
}

fn person_from_row(
    code: &str,
    keys: &TenantKeys,
    row: &Row,
    vouchers: Vec<Voucher>,
) -> Result<Person, StoreError> {
    let address = row.text(0)?;
    let birth = open_text(keys, code, "birth_date", address, row.bytes(3)?)?;
    let my_number = row
        .opt_bytes(4)?
        .map(|s| open_text(keys, code, "my_number", address, s))
        .transpose()?;
    let moved_out = row.opt_date(6)?.map(|on| -> Result<_, StoreError> {
        Ok(MovedOut {
            on,
            to: row.opt_text(7)?.map(MunicipalityCode::parse).transpose()?,
        })
    });
    Ok(Person {
        address_number: AddressNumber::parse(address)?,
        name: Name::parse(&open_text(keys, code, "name", address, row.bytes(1)?)?)?,
        name_kana: KanaName::parse(&open_text(keys, code, "name_kana", address, row.bytes(2)?)?)?,
        birth_date: BirthDate(
            parse_date(&birth).map_err(|_| StoreError::Corrupt("sealed birth date"))?,
        ),
        sex: u8::try_from(row.int(5)?)
            .ok()
            .and_then(Sex::from_iso5218)
            .ok_or(StoreError::Corrupt("sex"))?,
        my_number: my_number.as_deref().map(MyNumber::parse).transpose()?,
        flags: Flags {
            moved_out: moved_out.transpose()?,
            deceased_on: row.opt_date(8)?,
            use_suspended: row.int(9)? != 0,
        },
        vouchers,
    })
}

fn voucher_from_row(row: &Row) -> Result<Voucher, StoreError> {
    Ok(Voucher {
        number: VoucherNumber::parse(row.text(0)?)?,
        voucher_type: row
            .opt_int(1)?
            .map(|t| u8::try_from(t).map_err(|_| StoreError::Corrupt("voucher type")))
            .transpose()?,
        dose_number: row
            .opt_int(2)?
            .map(|n| {
                u32::try_from(n)
                    .map_err(|_| StoreError::Corrupt("dose number"))
                    .and_then(|n| Ok(DoseNumber::new(n)?))
            })
            .transpose()?,
        issued_on: row.opt_date(3)?,
    })
}

/// A keyed digest of a person's identity and flags (vouchers are compared on their own), to tell
/// "unchanged" without decrypting.
fn content_digest(keys: &TenantKeys, p: &Person) -> [u8; 32] {
    let canon = format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{:?}\u{1f}{:?}\u{1f}{}",
        p.address_number,
        p.name.as_str(),
        p.name_kana.as_str(),
        p.birth_date.0,
        p.sex.iso5218(),
        p.my_number
            .as_ref()
            .map(MyNumber::expose)
            .unwrap_or_default(),
        p.flags
            .moved_out
            .map(|m| (m.on, m.to.map(|c| c.to_string()))),
        p.flags.deceased_on,
        p.flags.use_suspended,
    );
    keys.index("person", canon.as_bytes())
}

fn flag_values(flags: &Flags) -> [Value; 4] {
    [
        flags.moved_out.map(|m| m.on).into(),
        flags
            .moved_out
            .and_then(|m| m.to)
            .map(|c| c.to_string())
            .into(),
        flags.deceased_on.into(),
        i64::from(flags.use_suspended).into(),
    ]
}

const PERSON_COLUMNS: [&str; 16] = [
    "municipality_code",
    "address_number",
    "name_sealed",
    "name_kana_sealed",
    "birth_date_sealed",
    "my_number_sealed",
    "my_number_index",
    "sex",
    "moved_out_on",
    "moved_out_to",
    "deceased_on",
    "use_suspended",
    "content_digest",
    "key_version",
    "created_at",
    "updated_at",
];
const VOUCHER_COLUMNS: [&str; 6] = [
    "municipality_code",
    "voucher_number",
    "address_number",
    "voucher_type",
    "dose_number",
    "issued_on",
];
/// Rows per multi-row statement. Chunks are powers of two up to this, so each table needs at
/// most seven prepared statements.
const MAX_ROWS: usize = 64;

/// `items` in chunks of `MAX_ROWS`, then of decreasing powers of two.
fn chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let size = 1 << items.len().min(MAX_ROWS).ilog2();
        let (chunk, rest) = items.split_at(size);
        items = rest;
        Some(chunk)
    })
}

/// `INSERT INTO table (cols) VALUES ($1, ...), (...)` for `rows` rows.
fn multi_insert(table: &str, columns: &[&str], rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..columns.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * columns.len() + c + 1));
        }
        sql.push(')');
    }
    sql
}

fn person_values(code: &str, keys: &TenantKeys, p: &Person, now: i64) -> [Value; 16] {
    let address = p.address_number.as_str();
    let seal = |column: &str, plain: &[u8]| keys.seal(&slot(code, column, address), plain);
    let [moved_on, moved_to, deceased, suspended] = flag_values(&p.flags);
    [
        code.into(),
        address.into(),
        seal("name", p.name.as_str().as_bytes()).into(),
        seal("name_kana", p.name_kana.as_str().as_bytes()).into(),
        seal("birth_date", p.birth_date.0.to_string().as_bytes()).into(),
        p.my_number
            .as_ref()
            .map(|n| seal("my_number", n.expose().as_bytes()))
            .into(),
        p.my_number
            .as_ref()
            .map(|n| keys.index(MY_NUMBER_INDEX, n.expose().as_bytes()).to_vec())
            .into(),
        i64::from(p.sex.iso5218()).into(),
        moved_on,
        moved_to,
        deceased,
        suspended,
        content_digest(keys, p).to_vec().into(),
        i64::from(keys.data_version).into(),
        now.into(),
        now.into(),
    ]
}

/// Upserts persons whose content changed (or who are new), then their vouchers: two multi-row
/// statements per chunk, whichever the backend.
pub(crate) fn put_chunk(
    tx: &mut dyn Tx,
    code: &str,
    keys: &TenantKeys,
    persons: &[Person],
    now: i64,
    summary: &mut PutSummary,
) -> Result<(), StoreError> {
    let values: Vec<Value> = persons
        .iter()
        .flat_map(|p| person_values(code, keys, p, now))
        .collect();
    let updates: Vec<String> = PERSON_COLUMNS[2..]
        .iter()
        .filter(|c| **c != "created_at")
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let sql = format!(
        "{} ON CONFLICT (municipality_code, address_number) DO UPDATE SET {} \
         WHERE persons.content_digest <> excluded.content_digest \
         RETURNING address_number, created_at",
        multi_insert("persons", &PERSON_COLUMNS, persons.len()),
        updates.join(", ")
    );
    let mut written = std::collections::HashSet::new();
    for row in tx.query(&sql, &values)? {
        if row.int(1)? == now {
            summary.inserted += 1;
        } else {
            summary.updated += 1;
        }
        written.insert(row.text(0)?.to_owned());
    }
    summary.unchanged += (persons.len() - written.len()) as u64;
    let vouchers: Vec<(&str, &Voucher)> = persons
        .iter()
        .flat_map(|p| p.vouchers.iter().map(|v| (p.address_number.as_str(), v)))
        .collect();
    for chunk in chunks(&vouchers) {
        put_vouchers(tx, code, chunk, summary)?;
    }
    Ok(())
}

/// Rows buffered before each `COPY` of a staged import.
const STAGE_ROWS: usize = 8192;

/// A whole import through staging tables (PostgreSQL): rows are sealed and `COPY`ed in, then
/// checked and upserted by a few set-based statements. The last row of a person wins; vouchers
/// accumulate, as in the statement-by-statement path.
fn staged_import(
    tx: &mut dyn Tx,
    code: &str,
    keys: &TenantKeys,
    persons: &mut dyn Iterator<Item = Result<Person, StoreError>>,
) -> Result<PutSummary, StoreError> {
    // Kept per connection, emptied at each commit: the statements on them stay prepared.
    tx.batch(
        "CREATE TEMP TABLE IF NOT EXISTS stage_persons \
         (LIKE persons INCLUDING DEFAULTS, seq BIGINT NOT NULL) ON COMMIT DELETE ROWS; \
         CREATE TEMP TABLE IF NOT EXISTS stage_vouchers \
         (LIKE vouchers INCLUDING DEFAULTS, seq BIGINT NOT NULL) ON COMMIT DELETE ROWS; \
         TRUNCATE stage_persons, stage_vouchers; \
         SET LOCAL work_mem = '256MB'",
    )?;
    let now = now_micros();
    let t0 = std::time::Instant::now();
    let mut person_columns = PERSON_COLUMNS.to_vec();
    person_columns.push("seq");
    let mut voucher_columns = VOUCHER_COLUMNS.to_vec();
    voucher_columns.push("seq");
    let (mut people, mut vouchers) = (Vec::new(), Vec::new());
    let mut seq: i64 = 0;
    for p in persons {
        let p = p?;
        seq += 1;
        people.extend(person_values(code, keys, &p, now));
        people.push(seq.into());
        for v in &p.vouchers {
            vouchers.extend(voucher_values(code, p.address_number.as_str(), v));
            vouchers.push(seq.into());
        }
        if people.len() >= STAGE_ROWS * person_columns.len() {
            tx.copy_in("stage_persons", &person_columns, &people)?;
            people.clear();
        }
        if vouchers.len() >= STAGE_ROWS * voucher_columns.len() {
            tx.copy_in("stage_vouchers", &voucher_columns, &vouchers)?;
            vouchers.clear();
        }
    }
    tx.copy_in("stage_persons", &person_columns, &people)?;
    tx.copy_in("stage_vouchers", &voucher_columns, &vouchers)?;
    tracing::debug!(elapsed = ?t0.elapsed(), "import: staged");
    // A voucher number held by two persons, in the file or against the database.
    let clash = tx.query_opt(
        "SELECT 1 FROM stage_vouchers GROUP BY voucher_number \
         HAVING COUNT(DISTINCT address_number) > 1 LIMIT 1",
        &[],
    )?;
    let taken = tx.query_opt(
        "SELECT 1 FROM stage_vouchers s JOIN vouchers v ON v.municipality_code = $1 \
         AND v.voucher_number = s.voucher_number WHERE v.address_number <> s.address_number LIMIT 1",
        &[code.into()],
    )?;
    if clash.is_some() || taken.is_some() {
        return Err(StoreError::Conflict(crate::error::VOUCHER_TAKEN));
    }
    let columns = PERSON_COLUMNS.join(", ");
    let updates: Vec<String> = PERSON_COLUMNS[2..]
        .iter()
        .filter(|c| **c != "created_at")
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let distinct = tx
        .query_opt(
            "SELECT COUNT(DISTINCT address_number) FROM stage_persons",
            &[],
        )?
        .ok_or(StoreError::Corrupt("count"))?
        .int(0)? as u64;
    let written = tx.query(
        &format!(
            "INSERT INTO persons ({columns}) SELECT DISTINCT ON (address_number) {columns} \
             FROM stage_persons ORDER BY address_number, seq DESC \
             ON CONFLICT (municipality_code, address_number) DO UPDATE SET {} \
             WHERE persons.content_digest <> excluded.content_digest RETURNING created_at",
            updates.join(", ")
        ),
        &[],
    )?;
    tracing::debug!(elapsed = ?t0.elapsed(), "import: persons");
    let mut summary = PutSummary::default();
    for row in &written {
        if row.int(0)? == now {
            summary.inserted += 1;
        } else {
            summary.updated += 1;
        }
    }
    summary.unchanged = distinct - written.len() as u64;
    let columns = VOUCHER_COLUMNS.join(", ");
    summary.vouchers_written = tx.execute(
        &format!(
            "INSERT INTO vouchers ({columns}) SELECT DISTINCT ON (voucher_number) {columns} \
             FROM stage_vouchers ORDER BY voucher_number, seq DESC \
             ON CONFLICT (municipality_code, voucher_number) DO UPDATE SET \
             voucher_type = excluded.voucher_type, dose_number = excluded.dose_number, \
             issued_on = excluded.issued_on \
             WHERE vouchers.voucher_type IS DISTINCT FROM excluded.voucher_type \
             OR vouchers.dose_number IS DISTINCT FROM excluded.dose_number \
             OR vouchers.issued_on IS DISTINCT FROM excluded.issued_on"
        ),
        &[],
    )?;
    tracing::debug!(elapsed = ?t0.elapsed(), "import: vouchers");
    Ok(summary)
}

fn voucher_values(code: &str, address: &str, v: &Voucher) -> [Value; 6] {
    [
        code.into(),
        v.number.as_str().into(),
        address.into(),
        v.voucher_type.map(i64::from).into(),
        v.dose_number.map(|d| i64::from(d.get())).into(),
        v.issued_on.into(),
    ]
}

/// Adds vouchers and updates changed ones; a voucher number already held by another person (in
/// the database or earlier in the same statement) is a conflict.
fn put_vouchers(
    tx: &mut dyn Tx,
    code: &str,
    chunk: &[(&str, &Voucher)],
    summary: &mut PutSummary,
) -> Result<(), StoreError> {
    let mut owners: HashMap<&str, &str> = HashMap::new();
    for (address, v) in chunk {
        if owners
            .insert(v.number.as_str(), address)
            .is_some_and(|a| a != *address)
        {
            return Err(StoreError::Conflict(crate::error::VOUCHER_TAKEN));
        }
    }
    let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
    let mut params: Vec<Value> = vec![code.into()];
    params.extend(chunk.iter().map(|(_, v)| Value::from(v.number.as_str())));
    let held = tx.query(
        &format!(
            "SELECT voucher_number, address_number FROM vouchers \
             WHERE municipality_code = $1 AND voucher_number IN ({})",
            placeholders.join(", ")
        ),
        &params,
    )?;
    for row in &held {
        if owners.get(row.text(0)?) != Some(&row.text(1)?) {
            return Err(StoreError::Conflict(crate::error::VOUCHER_TAKEN));
        }
    }
    let values: Vec<Value> = chunk
        .iter()
        .flat_map(|(address, v)| voucher_values(code, address, v))
        .collect();
    let sql = format!(
        "{} ON CONFLICT (municipality_code, voucher_number) DO UPDATE SET \
         voucher_type = excluded.voucher_type, dose_number = excluded.dose_number, \
         issued_on = excluded.issued_on \
         WHERE vouchers.voucher_type IS DISTINCT FROM excluded.voucher_type \
         OR vouchers.dose_number IS DISTINCT FROM excluded.dose_number \
         OR vouchers.issued_on IS DISTINCT FROM excluded.issued_on",
        multi_insert("vouchers", &VOUCHER_COLUMNS, chunk.len())
    );
    summary.vouchers_written += tx.execute(&sql, &values)?;
    Ok(())
}

impl<B: Backend> Store for Engine<B> {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    fn add_municipality(
        &self,
        m: MunicipalityCode,
        name: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let name = Short::<40>::parse(name)?;
        let code = m.to_string();
        self.db.transaction(|tx| {
            let exists = tx.query_opt(
                "SELECT 1 FROM municipalities WHERE municipality_code = $1",
                &[code.as_str().into()],
            )?;
            if exists.is_some() {
                return Err(StoreError::MunicipalityExists(m));
            }
            let now = now_micros();
            tx.execute(
                "INSERT INTO municipalities (municipality_code, name, created_at) VALUES ($1, $2, $3)",
                &[code.as_str().into(), name.as_str().into(), now.into()],
            )?;
            let keys = TenantKeys::generate();
            for (kind, key) in [
                (KeyKind::Data, &keys.data),
                (KeyKind::Index, &keys.index),
                (KeyKind::Audit, &keys.audit),
            ] {
                let s = KeySlot {
                    municipality: &code,
                    kind,
                    version: 1,
                };
                tx.execute(
                    "INSERT INTO tenant_keys (municipality_code, kind, version, wrapped, created_at) \
                     VALUES ($1, $2, 1, $3, $4)",
                    &[
                        code.as_str().into(),
                        kind.code().into(),
                        self.master.wrap(&s, key).into(),
                        now.into(),
                    ],
                )?;
            }
            let genesis = [0u8; 32];
            tx.execute(
                "INSERT INTO audit_heads (municipality_code, seq, link) VALUES ($1, 0, $2)",
                &[code.as_str().into(), genesis.to_vec().into()],
            )?;
            append_audit(
                tx,
                &code,
                &keys.audit,
                (0, &genesis),
                actor,
                "municipality.add",
                &format!("municipality:{code}"),
                Outcome::Ok,
            )
        })
    }

    fn municipalities(&self) -> Result<Vec<Municipality>, StoreError> {
        self.db.transaction(|tx| {
            tx.query(
                "SELECT municipality_code, name, kiosk FROM municipalities \
                 ORDER BY municipality_code",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(Municipality {
                    code: MunicipalityCode::parse(r.text(0)?)?,
                    name: r.text(1)?.to_owned(),
                    kiosk: r.int(2)? != 0,
                })
            })
            .collect()
        })
    }

    fn set_kiosk(&self, m: MunicipalityCode, on: bool, actor: &Actor) -> Result<(), StoreError> {
        let code = m.to_string();
        self.write(m, actor, "municipality.kiosk", |tx, _| {
            tx.execute(
                "UPDATE municipalities SET kiosk = $2 WHERE municipality_code = $1",
                &[code.as_str().into(), i64::from(on).into()],
            )?;
            let object = format!(
                "municipality:{code} kiosk:{}",
                if on { "on" } else { "off" }
            );
            Ok(((), object, Outcome::Ok))
        })
    }

    fn put_persons(
        &self,
        m: MunicipalityCode,
        persons: &[Person],
        actor: &Actor,
    ) -> Result<PutSummary, StoreError> {
        let mut seen = std::collections::HashSet::new();
        if !persons.iter().all(|p| seen.insert(&p.address_number)) {
            return Err(StoreError::Conflict(crate::error::DUPLICATE_PERSON));
        }
        self.import_persons(m, &mut persons.iter().cloned().map(Ok), actor)
    }

    fn import_persons(
        &self,
        m: MunicipalityCode,
        persons: &mut dyn Iterator<Item = Result<Person, StoreError>>,
        actor: &Actor,
    ) -> Result<PutSummary, StoreError> {
        if B::BULK_COPY {
            return self.write(m, actor, "persons.put", |tx, tenant| {
                let summary = staged_import(tx, &m.to_string(), tenant.personal(m)?, persons)?;
                let object = format!(
                    "persons inserted={} updated={} unchanged={} vouchers={}",
                    summary.inserted, summary.updated, summary.unchanged, summary.vouchers_written
                );
                Ok((summary, object, Outcome::Ok))
            });
        }
        self.write(m, actor, "persons.put", |tx, tenant| {
            let keys = tenant.personal(m)?;
            let code = m.to_string();
            let now = now_micros();
            let mut summary = PutSummary::default();
            let mut batch: Vec<Person> = Vec::with_capacity(MAX_ROWS);
            let flush = |tx: &mut dyn Tx, batch: &mut Vec<Person>, summary: &mut PutSummary| {
                for chunk in chunks(batch) {
                    put_chunk(tx, &code, keys, chunk, now, summary)?;
                }
                batch.clear();
                Ok::<(), StoreError>(())
            };
            for p in persons {
                let p = p?;
                // One statement cannot touch a row twice: a person seen again starts a new one.
                if batch.len() == MAX_ROWS
                    || batch.iter().any(|b| b.address_number == p.address_number)
                {
                    flush(tx, &mut batch, &mut summary)?;
                }
                batch.push(p);
            }
            flush(tx, &mut batch, &mut summary)?;
            let object = format!(
                "persons inserted={} updated={} unchanged={} vouchers={}",
                summary.inserted, summary.updated, summary.unchanged, summary.vouchers_written
            );
            Ok((summary, object, Outcome::Ok))
        })
    }

    fn person(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        actor: &Actor,
    ) -> Result<Option<Person>, StoreError> {
        let a = address.as_str().to_owned();
        self.find_person(m, actor, format!("person:{a}"), |_, _| Ok(Some(a.clone())))
    }

    fn person_by_my_number(
        &self,
        m: MunicipalityCode,
        my_number: &MyNumber,
        actor: &Actor,
    ) -> Result<Option<Person>, StoreError> {
        let code = m.to_string();
        self.find_person(m, actor, "my_number_index".into(), |tx, keys| {
            let index = keys.index(MY_NUMBER_INDEX, my_number.expose().as_bytes());
            tx.query_opt(
                "SELECT address_number FROM persons WHERE municipality_code = $1 AND my_number_index = $2",
                &[code.as_str().into(), index.to_vec().into()],
            )?
            .map(|r| r.text(0).map(str::to_owned))
            .transpose()
        })
    }

    fn person_by_voucher(
        &self,
        m: MunicipalityCode,
        voucher: &VoucherNumber,
        actor: &Actor,
    ) -> Result<Option<Person>, StoreError> {
        let code = m.to_string();
        self.find_person(m, actor, format!("voucher:{voucher}"), |tx, _| {
            tx.query_opt(
                "SELECT address_number FROM vouchers WHERE municipality_code = $1 AND voucher_number = $2",
                &[code.as_str().into(), voucher.as_str().into()],
            )?
            .map(|r| r.text(0).map(str::to_owned))
            .transpose()
        })
    }

    fn count_persons(&self, m: MunicipalityCode) -> Result<u64, StoreError> {
        self.db.transaction(|tx| {
            let row = tx
                .query_opt(
                    "SELECT COUNT(*) FROM persons WHERE municipality_code = $1",
                    &[m.to_string().into()],
                )?
                .ok_or(StoreError::Corrupt("count"))?;
            Ok(row.int(0)? as u64)
        })
    }

    fn stats(&self, m: MunicipalityCode) -> Result<Stats, StoreError> {
        let code = m.to_string();
        self.db.transaction(|tx| {
            let count = |r: &Row, i| r.opt_int(i).map(|v| v.unwrap_or(0) as u64);
            let p = tx
                .query_opt(
                    "SELECT COUNT(*), COUNT(moved_out_on), COUNT(deceased_on), \
                     COALESCE(SUM(use_suspended), 0) FROM persons WHERE municipality_code = $1",
                    &[code.as_str().into()],
                )?
                .ok_or(StoreError::Corrupt("stats"))?;
            let v = tx
                .query_opt(
                    "SELECT COUNT(*) FROM vouchers WHERE municipality_code = $1",
                    &[code.as_str().into()],
                )?
                .ok_or(StoreError::Corrupt("stats"))?;
            let doses = tx
                .query(
                    "SELECT dose_number, COUNT(*) FROM doses WHERE municipality_code = $1 \
                     GROUP BY dose_number ORDER BY dose_number",
                    &[code.as_str().into()],
                )?
                .iter()
                .map(|r| {
                    Ok((
                        u32::try_from(r.int(0)?).map_err(|_| StoreError::Corrupt("dose number"))?,
                        count(r, 1)?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let versions = tx
                .query(
                    "SELECT key_version, COUNT(*) FROM persons WHERE municipality_code = $1 \
                     GROUP BY key_version ORDER BY key_version",
                    &[code.as_str().into()],
                )?
                .iter()
                .map(|r| {
                    Ok((
                        u32::try_from(r.int(0)?).map_err(|_| StoreError::Corrupt("key version"))?,
                        count(r, 1)?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Stats {
                persons_by_key_version: versions,
                persons: count(&p, 0)?,
                vouchers: count(&v, 0)?,
                doses_by_number: doses,
                moved_out: count(&p, 1)?,
                deceased: count(&p, 2)?,
                use_suspended: count(&p, 3)?,
            })
        })
    }

    fn set_flags(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        flags: Flags,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        self.records_set_flags(m, address, flags, reason, actor)
    }

    fn update_flags(
        &self,
        m: MunicipalityCode,
        updates: &[FlagUpdate],
        actor: &Actor,
    ) -> Result<u64, StoreError> {
        self.records_update_flags(m, updates, actor)
    }

    fn correct_person(
        &self,
        m: MunicipalityCode,
        corrected: &Person,
        reason: &str,
        actor: &Actor,
    ) -> Result<Vec<&'static str>, StoreError> {
        self.records_correct_person(m, corrected, reason, actor)
    }

    fn disclosure(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        actor: &Actor,
    ) -> Result<Option<Disclosure>, StoreError> {
        self.records_disclosure(m, address, actor)
    }

    fn products(&self) -> Result<Vec<Product>, StoreError> {
        self.records_products()
    }

    fn database_clock(&self) -> Result<(i64, i64), StoreError> {
        let now = if B::NAME == "sqlite" {
            "SELECT CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
        } else {
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)"
        };
        self.db.transaction(|tx| {
            let at = tx
                .query_opt(now, &[])?
                .ok_or(StoreError::Corrupt("clock"))?
                .int(0)?;
            let version = tx
                .query_opt("SELECT MAX(version) FROM schema_migrations", &[])?
                .ok_or(StoreError::Corrupt("schema_migrations"))?
                .int(0)?;
            Ok((at, version))
        })
    }

    fn add_dose(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        dose: &Dose,
        actor: &Actor,
    ) -> Result<DoseWritten, StoreError> {
        self.records_add(m, address, dose, actor)
    }

    fn correct_dose(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        id: i64,
        dose: &Dose,
        reason: &str,
        actor: &Actor,
    ) -> Result<DoseWritten, StoreError> {
        self.records_correct(m, address, id, dose, reason, actor)
    }

    fn delete_dose(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        id: i64,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        self.records_delete(m, address, id, reason, actor)
    }

    fn doses(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
    ) -> Result<Vec<StoredDose>, StoreError> {
        self.records_doses(m, address)
    }

    fn dose_history(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
    ) -> Result<Vec<DoseVersion>, StoreError> {
        self.records_history(m, address)
    }

    fn import_ledger(
        &self,
        m: MunicipalityCode,
        records: &mut dyn Iterator<Item = Result<LedgerRecord, StoreError>>,
        actor: &Actor,
    ) -> Result<LedgerSummary, StoreError> {
        self.records_import(m, records, actor)
    }

    fn export_ledger(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
        sink: &mut LedgerSink<'_>,
    ) -> Result<u64, StoreError> {
        self.records_export(m, actor, sink)
    }

    fn quality_report(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
    ) -> Result<Vec<QualityLine>, StoreError> {
        self.records_quality(m, actor)
    }

    fn record_from_tablet(
        &self,
        m: MunicipalityCode,
        record: &crate::TabletRecord,
        actor: &Actor,
    ) -> Result<crate::TabletAnswer, StoreError> {
        self.tablet_record(m, record, actor)
    }

    fn record_from_tablets(
        &self,
        batch: &[(MunicipalityCode, crate::TabletRecord, Actor)],
    ) -> Result<Vec<Result<crate::TabletAnswer, StoreError>>, StoreError> {
        self.tablet_records(batch)
    }

    fn add_signing_key(
        &self,
        kind: &str,
        kid: &str,
        public_part: &str,
        secret: &[u8],
        actor: &Actor,
    ) -> Result<(), StoreError> {
        self.signing_add(kind, kid, public_part, secret, actor)
    }

    fn record_certificate(
        &self,
        m: MunicipalityCode,
        certificate: &crate::CertificateRecord,
        actor: &Actor,
    ) -> Result<crate::CertificateRecord, StoreError> {
        self.certificate_record(m, certificate, actor)
    }

    fn certificates(
        &self,
        m: MunicipalityCode,
        address: Option<&AddressNumber>,
    ) -> Result<Vec<crate::CertificateRecord>, StoreError> {
        self.certificate_list(m, address)
    }

    fn revoke_certificate(
        &self,
        m: MunicipalityCode,
        id: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<crate::CertificateRecord, StoreError> {
        self.certificate_revoke(m, id, reason, actor)
    }

    fn revocations(&self, kid: &str) -> Result<Vec<(String, i64)>, StoreError> {
        self.revocation_list(kid)
    }

    fn signing_keys(&self, kind: &str) -> Result<Vec<crate::SigningKeyInfo>, StoreError> {
        self.signing_list(kind)
    }

    fn active_signing_key(&self, kind: &str) -> Result<Option<crate::ActiveKey>, StoreError> {
        self.signing_active(kind)
    }

    fn inquire(
        &self,
        asker: MunicipalityCode,
        request: &crate::InquiryRequest,
        actor: &Actor,
    ) -> Result<crate::Inquiry, StoreError> {
        self.inquiry_single(asker, request, actor)
    }

    fn create_inquiry_job(
        &self,
        asker: MunicipalityCode,
        total_rows: u64,
        actor: &Actor,
    ) -> Result<i64, StoreError> {
        self.inquiry_job_create(asker, total_rows, actor)
    }

    fn inquire_rows(
        &self,
        asker: MunicipalityCode,
        job: i64,
        rows: &[crate::BulkRow],
        actor: &Actor,
    ) -> Result<(), StoreError> {
        self.inquiry_rows(asker, job, rows, actor)
    }

    fn finish_inquiry_job(
        &self,
        asker: MunicipalityCode,
        job: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inquiry_job_finish(asker, job, error)
    }

    fn inquiry_job(
        &self,
        asker: MunicipalityCode,
        job: i64,
    ) -> Result<Option<crate::InquiryJob>, StoreError> {
        self.inquiry_job_get(asker, job)
    }

    fn inquiries(
        &self,
        asker: MunicipalityCode,
        job: Option<i64>,
    ) -> Result<Vec<crate::Inquiry>, StoreError> {
        self.inquiry_list(asker, job)
    }

    fn attach_inquiries(
        &self,
        asker: MunicipalityCode,
        ids: &[i64],
        job: Option<i64>,
        actor: &Actor,
    ) -> Result<crate::Attached, StoreError> {
        self.inquiry_attach(asker, ids, job, actor)
    }

    fn inquiry_counts(
        &self,
        asker: MunicipalityCode,
        user: &str,
        my_number: Option<&MyNumber>,
        within: i64,
    ) -> Result<crate::InquiryCounts, StoreError> {
        self.inquiry_counts_within(asker, user, my_number, within)
    }

    fn provisions(
        &self,
        provider: MunicipalityCode,
        address: Option<&AddressNumber>,
    ) -> Result<Vec<crate::Provision>, StoreError> {
        self.provision_list(provider, address)
    }

    fn dose_conflicts(&self, m: MunicipalityCode) -> Result<Vec<crate::DoseConflict>, StoreError> {
        self.tablet_conflicts(m)
    }

    fn resolve_dose_conflict(
        &self,
        m: MunicipalityCode,
        id: i64,
        replace: bool,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        self.tablet_resolve(m, id, replace, reason, actor)
    }

    fn audit_log(&self, m: MunicipalityCode) -> Result<Vec<AuditEntry>, StoreError> {
        self.db
            .transaction(|tx| read_audit(tx, &m.to_string()))
            .map(|rows| rows.into_iter().map(|(e, _)| e).collect())
    }

    fn audit_search(
        &self,
        m: MunicipalityCode,
        filter: &crate::AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut sql = String::from(
            "SELECT seq, at, actor, role, zone, action, object, outcome, link FROM audit_log \
             WHERE municipality_code = $1",
        );
        let mut args: Vec<Value> = vec![m.to_string().into()];
        let mut arg = |sql: &mut String, clause: &str, value: Value| {
            args.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", args.len())));
        };
        if let Some(a) = &filter.person {
            // "person:<a>" and "person:<a> ...", not "person:<a>0": the range up to "!" (the
            // byte after the space), compared byte by byte.
            let from = format!("person:{a}");
            let to = format!("person:{a}!");
            let by = B::BYTE_ORDER;
            arg(&mut sql, &format!(" AND object{by} >= ?"), from.into());
            arg(&mut sql, &format!(" AND object{by} < ?"), to.into());
        }
        if let Some(actor) = &filter.actor {
            arg(&mut sql, " AND actor = ?", actor.as_str().into());
        }
        if let Some(action) = &filter.action {
            let by = B::BYTE_ORDER;
            arg(
                &mut sql,
                &format!(" AND action{by} >= ?"),
                action.as_str().into(),
            );
            arg(
                &mut sql,
                &format!(" AND action{by} < ?"),
                format!("{action}\u{10ffff}").into(),
            );
        }
        if let Some(before) = filter.before {
            arg(&mut sql, " AND seq < ?", before.into());
        }
        arg(
            &mut sql,
            " ORDER BY seq DESC LIMIT ?",
            i64::from(limit).into(),
        );
        self.db.transaction(|tx| {
            tx.query(&sql, &args)?
                .iter()
                .map(|r| audit_entry(r).map(|(e, _)| e))
                .collect()
        })
    }

    fn verify_audit(&self, m: MunicipalityCode) -> Result<AuditHead, StoreError> {
        self.db.transaction(|tx| {
            let tenant = self.tenant(tx, m)?;
            let code = m.to_string();
            let entries = read_audit(tx, &code)?;
            let head = tx
                .query_opt(
                    "SELECT seq, link FROM audit_heads WHERE municipality_code = $1",
                    &[code.as_str().into()],
                )?
                .ok_or(StoreError::Corrupt("missing audit head"))?;
            let mut prev = [0u8; 32];
            for (i, (entry, link)) in entries.iter().enumerate() {
                let expected_seq = i as i64 + 1;
                if entry.seq != expected_seq {
                    return Err(StoreError::AuditBroken {
                        seq: expected_seq,
                        reason: "missing or out of sequence / 欠落または順序不正",
                    });
                }
                let computed = entry_link(&tenant.audit, &code, &prev, entry);
                if computed.as_slice() != link.as_slice() {
                    return Err(StoreError::AuditBroken {
                        seq: entry.seq,
                        reason: "link does not match: modified, inserted or reordered / 改ざん・挿入・並べ替え",
                    });
                }
                prev = computed;
            }
            let last = entries.len() as i64;
            if head.int(0)? != last || head.bytes(1)? != prev.as_slice() {
                return Err(StoreError::AuditBroken {
                    seq: last.min(head.int(0)?) + 1,
                    reason: "the chain does not end at the recorded head: entries removed or added at the end / 末尾の削除または追加",
                });
            }
            Ok(AuditHead {
                seq: last,
                link: prev.iter().map(|b| format!("{b:02x}")).collect(),
            })
        })
    }

    fn add_account(
        &self,
        account: &Account,
        credential: &Credential,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let now = now_micros();
        match account.binding.municipality() {
            Some(m) => self.write(m, actor, "account.add", |tx, _| {
                accounts::insert(tx, account, credential, now)?;
                Ok(((), format!("account:{}", account.id), Outcome::Ok))
            }),
            None => self
                .db
                .transaction(|tx| accounts::insert(tx, account, credential, now)),
        }
    }

    fn account(&self, id: &UserId) -> Result<Option<(Account, Credential)>, StoreError> {
        self.db.transaction(|tx| {
            tx.query_opt(
                &format!(
                    "SELECT {} FROM accounts WHERE user_id = $1",
                    accounts::ACCOUNT_COLUMNS
                ),
                &[id.as_str().into()],
            )?
            .as_ref()
            .map(accounts::from_row)
            .transpose()
        })
    }

    fn account_by_token(&self, digest: &[u8; 32]) -> Result<Option<Account>, StoreError> {
        self.db.transaction(|tx| {
            tx.query_opt(
                &format!(
                    "SELECT {} FROM accounts WHERE token_digest = $1",
                    accounts::ACCOUNT_COLUMNS
                ),
                &[digest.to_vec().into()],
            )?
            .as_ref()
            .map(|r| accounts::from_row(r).map(|(a, _)| a))
            .transpose()
        })
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.db.transaction(|tx| {
            tx.query(
                &format!(
                    "SELECT {} FROM accounts ORDER BY user_id",
                    accounts::ACCOUNT_COLUMNS
                ),
                &[],
            )?
            .iter()
            .map(|r| accounts::from_row(r).map(|(a, _)| a))
            .collect()
        })
    }

    fn disable_account(&self, id: &UserId, actor: &Actor) -> Result<(), StoreError> {
        let disable = |tx: &mut dyn Tx| -> Result<(), StoreError> {
            let n = tx.execute(
                "UPDATE accounts SET disabled = 1, token_digest = NULL WHERE user_id = $1",
                &[id.as_str().into()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound("account"));
            }
            tx.execute(
                "DELETE FROM sessions WHERE user_id = $1",
                &[id.as_str().into()],
            )?;
            Ok(())
        };
        let (account, _) = self.account(id)?.ok_or(StoreError::NotFound("account"))?;
        match account.binding.municipality() {
            Some(m) => self.write(m, actor, "account.disable", |tx, _| {
                disable(tx)?;
                Ok(((), format!("account:{id}"), Outcome::Ok))
            }),
            None => self.db.transaction(disable),
        }
    }

    fn create_session(&self, digest: &[u8; 32], s: &Session) -> Result<(), StoreError> {
        self.db.transaction(|tx| {
            tx.execute(
                "INSERT INTO sessions (session_digest, user_id, csrf_token, created_at, last_seen) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    digest.to_vec().into(),
                    s.user.as_str().into(),
                    s.csrf_token.as_str().into(),
                    s.created_at.into(),
                    s.last_seen.into(),
                ],
            )?;
            Ok(())
        })
    }

    fn session(&self, digest: &[u8; 32]) -> Result<Option<Session>, StoreError> {
        self.db.transaction(|tx| {
            tx.query_opt(
                "SELECT user_id, csrf_token, created_at, last_seen FROM sessions \
                 WHERE session_digest = $1",
                &[digest.to_vec().into()],
            )?
            .as_ref()
            .map(accounts::session_from_row)
            .transpose()
        })
    }

    fn touch_session(&self, digest: &[u8; 32], now: i64) -> Result<(), StoreError> {
        self.db.transaction(|tx| {
            tx.execute(
                "UPDATE sessions SET last_seen = $2 WHERE session_digest = $1",
                &[digest.to_vec().into(), now.into()],
            )?;
            Ok(())
        })
    }

    fn delete_session(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.db.transaction(|tx| {
            tx.execute(
                "DELETE FROM sessions WHERE session_digest = $1",
                &[digest.to_vec().into()],
            )?;
            Ok(())
        })
    }

    fn record_security_event(&self, event: &SecurityEvent) -> Result<i64, StoreError> {
        self.db.transaction(|tx| {
            tx.query_opt(
                "INSERT INTO security_events (at, kind, municipality_code, user_id, client, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING event_id",
                &accounts::event_values(event),
            )?
            .ok_or(StoreError::Corrupt("event id"))?
            .int(0)
        })
    }

    fn security_events(
        &self,
        municipality: Option<MunicipalityCode>,
        limit: u32,
    ) -> Result<Vec<SecurityEvent>, StoreError> {
        let columns = "event_id, at, kind, municipality_code, user_id, client, detail";
        self.db.transaction(|tx| {
            let rows = match municipality {
                Some(m) => tx.query(
                    &format!(
                        "SELECT {columns} FROM security_events WHERE municipality_code = $1 \
                         ORDER BY event_id DESC LIMIT $2"
                    ),
                    &[m.to_string().into(), i64::from(limit).into()],
                )?,
                None => tx.query(
                    &format!(
                        "SELECT {columns} FROM security_events ORDER BY event_id DESC LIMIT $1"
                    ),
                    &[i64::from(limit).into()],
                )?,
            };
            rows.iter().map(accounts::event_from_row).collect()
        })
    }

    fn count_security_events(
        &self,
        kind: openvrs_domain::audit::SecurityEventKind,
        user: &str,
        since: i64,
    ) -> Result<u64, StoreError> {
        self.db.transaction(|tx| {
            let row = tx
                .query_opt(
                    "SELECT COUNT(*) FROM security_events WHERE user_id = $1 AND kind = $2 AND at >= $3",
                    &[user.into(), kind.code().into(), since.into()],
                )?
                .ok_or(StoreError::Corrupt("count"))?;
            Ok(row.int(0)? as u64)
        })
    }

    fn shred(&self, m: MunicipalityCode, actor: &Actor) -> Result<(), StoreError> {
        self.write(m, actor, "municipality.shred", |tx, _| {
            tx.execute(
                "DELETE FROM tenant_keys WHERE municipality_code = $1 AND kind IN ('data', 'index')",
                &[m.to_string().into()],
            )?;
            Ok(((), format!("municipality:{m}"), Outcome::Ok))
        })?;
        // The unwrapped keys must not outlive their wrapped copies.
        self.tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&m);
        Ok(())
    }

    fn begin_data_key_rotation(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
    ) -> Result<crate::DataKeyRotation, StoreError> {
        self.rotation_begin(m, actor)
    }

    fn reseal_batch(
        &self,
        m: MunicipalityCode,
        after: &str,
        limit: u32,
    ) -> Result<crate::ResealBatch, StoreError> {
        self.rotation_batch(m, after, limit)
    }

    fn finish_data_key_rotation(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
    ) -> Result<bool, StoreError> {
        self.rotation_finish(m, actor)
    }

    fn rewrap_master_key(&self, new: &MasterKey, actor: &Actor) -> Result<u64, StoreError> {
        self.rewrap_master(new, actor)
    }

    fn check_master_key(&self) -> Result<(), StoreError> {
        self.master_check()
    }

    fn pool(&self) -> crate::PoolStatus {
        self.db.pool()
    }

    fn dose_counts(&self, m: MunicipalityCode) -> Result<Vec<crate::DoseCount>, StoreError> {
        self.counts(m)
    }

    fn inquiry_jobs(
        &self,
        asker: MunicipalityCode,
        limit: u32,
    ) -> Result<Vec<crate::InquiryJob>, StoreError> {
        self.inquiry_jobs_recent(asker, limit)
    }
}

pub(crate) fn read_audit(
    tx: &mut dyn Tx,
    code: &str,
) -> Result<Vec<(AuditEntry, Vec<u8>)>, StoreError> {
    tx.query(
        "SELECT seq, at, actor, role, zone, action, object, outcome, link FROM audit_log \
         WHERE municipality_code = $1 ORDER BY seq",
        &[code.into()],
    )?
    .iter()
    .map(audit_entry)
    .collect()
}

/// An entry and its link from a row of `seq, at, actor, role, zone, action, object, outcome,
/// link`.
fn audit_entry(r: &Row) -> Result<(AuditEntry, Vec<u8>), StoreError> {
    Ok((
        AuditEntry {
            seq: r.int(0)?,
            at: r.int(1)?,
            actor: r.text(2)?.to_owned(),
            role: Role::from_code(r.text(3)?).ok_or(StoreError::Corrupt("role"))?,
            zone: Zone::from_code(r.text(4)?).ok_or(StoreError::Corrupt("zone"))?,
            action: r.text(5)?.to_owned(),
            object: r.text(6)?.to_owned(),
            outcome: Outcome::from_code(r.text(7)?).ok_or(StoreError::Corrupt("outcome"))?,
        },
        r.bytes(8)?.to_vec(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_covering_everything() {
        for n in [0usize, 1, 2, 3, 63, 64, 65, 100, 129, 1000] {
            let items: Vec<usize> = (0..n).collect();
            let sizes: Vec<usize> = chunks(&items).map(<[usize]>::len).collect();
            assert_eq!(sizes.iter().sum::<usize>(), n);
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= MAX_ROWS));
            let joined: Vec<usize> = chunks(&items).flatten().copied().collect();
            assert_eq!(joined, items);
        }
    }

    #[test]
    fn multi_insert_numbers_parameters_in_order() {
        assert_eq!(
            multi_insert("t", &["a", "b"], 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
    }
}
