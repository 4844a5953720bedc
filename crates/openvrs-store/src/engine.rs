//! The store's logic, written once over [`Backend`]: sealing, keyed indexes, the audit chain.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use openvrs_crypto::{FieldSlot, Key, KeyKind, KeySlot, MasterKey, TenantKeys, audit_link};
use openvrs_domain::{
    audit::{Actor, Outcome, Role, Zone},
    date::{Clock, UnixMicros},
    ids::MunicipalityCode,
};

use crate::{
    AuditEntry, StoreError,
    sql::{Backend, Row, Tx, Value},
};

/// A municipality's keys as loaded: the audit key always, the others until shredded.
#[derive(Debug)]
pub(crate) struct Tenant {
    pub(crate) audit: Key,
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
    pub(crate) master: MasterKey,
    pub(crate) tenants: RwLock<HashMap<MunicipalityCode, Arc<Tenant>>>,
    /// The product catalogue with its lot patterns compiled, loaded once. (Products change only
    /// through migrations for now; a catalogue editor must clear this.)
    catalogue: RwLock<Option<Arc<openvrs_domain::product::Catalogue>>>,
    /// The one clock every timestamp the store writes comes from.
    pub(crate) clock: Arc<dyn Clock>,
}

impl<B> std::fmt::Debug for Engine<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Engine(..)")
    }
}

/// The end of a municipality's audit chain: its last entry's number and link (the stored
/// `audit_heads` row, or a transaction's view of it before it is stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainEnd {
    pub seq: i64,
    pub link: [u8; 32],
}

impl ChainEnd {
    /// The stored head of `m`, locked for the rest of the transaction where the backend locks
    /// rows; `None` for a municipality that is not registered.
    pub(crate) fn lock<B: Backend>(
        tx: &mut dyn Tx,
        m: MunicipalityCode,
    ) -> Result<Option<Self>, StoreError> {
        let Some(row) = tx.query_opt(
            &format!(
                "SELECT seq, link FROM audit_heads WHERE municipality_code = $1{}",
                B::FOR_UPDATE
            ),
            &[m.to_string().into()],
        )?
        else {
            return Ok(None);
        };
        let link = row
            .bytes(1)?
            .try_into()
            .map_err(|_| StoreError::Corrupt("audit link length"))?;
        Ok(Some(Self {
            seq: row.int(0)?,
            link,
        }))
    }

    /// Moves the stored head of `m` here.
    pub(crate) fn store(self, tx: &mut dyn Tx, m: &str) -> Result<(), StoreError> {
        tx.execute(
            "UPDATE audit_heads SET seq = $2, link = $3 WHERE municipality_code = $1",
            &[m.into(), self.seq.into(), self.link.to_vec().into()],
        )?;
        Ok(())
    }
}

/// The wall clock, for a running system (tests pass a `ManualClock`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMicros {
        UnixMicros((time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64)
    }
}

const PERSONS: &str = "persons";
pub(crate) const MY_NUMBER_INDEX: &str = "my_number";

pub(crate) fn slot<'a>(m: &'a str, column: &'a str, row: &'a str) -> FieldSlot<'a> {
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

    /// Now, by the store's one clock, in microseconds.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now().0
    }

    /// Today in Japan, by the same clock (the data-quality rules' "today").
    pub(crate) fn today(&self) -> time::Date {
        self.clock.now().today_jst()
    }

    /// Opens the database and applies the migrations it lacks; with `migrate` false (a
    /// read-only snapshot), only checks that it has them all.
    pub fn open(
        db: B,
        master: MasterKey,
        migrate: bool,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let engine = Self {
            db,
            master,
            clock,
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
            if B::NAME == "postgres" {
                // One migration at a time per database: processes starting together, and on
                // Citus any schema change (its DDL locks shared metadata).
                tx.batch(crate::citus::MIGRATION_LOCK)?;
            }
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
            let citus = B::NAME == "postgres" && crate::citus::present(tx)?;
            if citus {
                crate::citus::prepare(tx)?;
            }
            for (version, sql) in B::MIGRATIONS.iter().filter(|(v, _)| *v > current) {
                tracing::info!(backend = B::NAME, version, citus, "applying migration");
                if citus {
                    for statement in crate::citus::statements(sql) {
                        tx.batch(statement)?;
                    }
                    crate::citus::distribute(tx)?;
                } else {
                    tx.batch(sql)?;
                }
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    &[(*version).into(), self.now().into()],
                )?;
            }
            if citus {
                // A database that became a Citus coordinator after its schema was made.
                crate::citus::distribute(tx)?;
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
        let (out, end) = self.write_chained(tx, None, m, actor, action, f)?;
        end.store(tx, &m.to_string())?;
        Ok(out)
    }

    /// Runs `f` and appends its audit entry after `head` (the municipality's chain end as the
    /// caller last left it in this transaction, or `None` to lock and read it), without moving
    /// the stored head: returns the new end for the caller to store once (group commit).
    pub(crate) fn write_chained<T>(
        &self,
        tx: &mut dyn Tx,
        head: Option<ChainEnd>,
        m: MunicipalityCode,
        actor: &Actor,
        action: &str,
        f: impl FnOnce(&mut dyn Tx, &Tenant) -> Result<(T, String, Outcome), StoreError>,
    ) -> Result<(T, ChainEnd), StoreError> {
        let code = m.to_string();
        let (head, tenant) = match head {
            Some(h) => match self.cached_tenant(m) {
                Some(t) => (h, t),
                None => (h, self.tenant(tx, m)?),
            },
            None => {
                let head = ChainEnd::lock::<B>(tx, m)?.ok_or(StoreError::UnknownMunicipality(m))?;
                // The keys are read after the head is locked, so that a key rotation's last
                // step (which takes the same lock) is seen by every writer that follows it.
                (head, self.tenant(tx, m)?)
            }
        };
        let (out, object, outcome) = f(tx, &tenant)?;
        let end = insert_entry(
            tx,
            self.now(),
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
}

/// Appends an entry after `prev` and moves the stored head to it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn append_audit(
    tx: &mut dyn Tx,
    now: i64,
    code: &str,
    key: &Key,
    (prev_seq, prev_link): (i64, &[u8]),
    actor: &Actor,
    action: &str,
    object: &str,
    outcome: Outcome,
) -> Result<(), StoreError> {
    let prev = ChainEnd {
        seq: prev_seq,
        link: prev_link
            .try_into()
            .map_err(|_| StoreError::Corrupt("audit link length"))?,
    };
    insert_entry(tx, now, code, key, prev, actor, action, object, outcome)?.store(tx, code)
}

/// Inserts the entry that follows `prev`; returns the new chain end.
#[allow(clippy::too_many_arguments)]
fn insert_entry(
    tx: &mut dyn Tx,
    now: i64,
    code: &str,
    key: &Key,
    prev: ChainEnd,
    actor: &Actor,
    action: &str,
    object: &str,
    outcome: Outcome,
) -> Result<ChainEnd, StoreError> {
    let mut entries = Entries::after(code, prev);
    entries.push(key, now, actor, action, object, outcome);
    entries.insert(tx)
}

const AUDIT_COLUMNS: [&str; 10] = [
    "municipality_code",
    "seq",
    "at",
    "actor",
    "role",
    "zone",
    "action",
    "object",
    "outcome",
    "link",
];

/// Audit entries of one municipality chained in memory after a chain end, then written in
/// as few statements as the database takes (a batch of tablet records).
pub(crate) struct Entries<'a> {
    code: &'a str,
    end: ChainEnd,
    rows: Vec<Value>,
}

impl<'a> Entries<'a> {
    pub(crate) fn after(code: &'a str, end: ChainEnd) -> Self {
        Self {
            code,
            end,
            rows: Vec::new(),
        }
    }

    /// Chains the next entry.
    pub(crate) fn push(
        &mut self,
        key: &Key,
        now: i64,
        actor: &Actor,
        action: &str,
        object: &str,
        outcome: Outcome,
    ) {
        let entry = AuditEntry {
            seq: self.end.seq + 1,
            at: now,
            actor: actor.user.clone(),
            role: actor.role,
            zone: actor.zone,
            action: action.to_owned(),
            object: object.to_owned(),
            outcome,
        };
        let link = entry_link(key, self.code, &self.end.link, &entry);
        self.rows.extend([
            self.code.into(),
            entry.seq.into(),
            entry.at.into(),
            entry.actor.into(),
            entry.role.code().into(),
            entry.zone.code().into(),
            entry.action.into(),
            entry.object.into(),
            entry.outcome.code().into(),
            link.to_vec().into(),
        ]);
        self.end = ChainEnd {
            seq: entry.seq,
            link,
        };
    }

    /// Writes the entries; returns the chain's new end (not yet stored as the head).
    pub(crate) fn insert(self, tx: &mut dyn Tx) -> Result<ChainEnd, StoreError> {
        crate::sql::insert_rows(tx, "audit_log", &AUDIT_COLUMNS, self.rows)?;
        Ok(self.end)
    }
}

pub(crate) fn entry_link(key: &Key, code: &str, prev: &[u8; 32], e: &AuditEntry) -> [u8; 32] {
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
pub(crate) fn audit_entry(r: &Row) -> Result<(AuditEntry, Vec<u8>), StoreError> {
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
