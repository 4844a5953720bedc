//! Residents and their vouchers: imports (all or nothing) and finding one person.

use std::collections::HashMap;

use openvrs_crypto::TenantKeys;
use openvrs_domain::{
    audit::{Actor, Outcome},
    date::parse_date,
    dose::DoseNumber,
    ids::{AddressNumber, MunicipalityCode, MyNumber, VoucherNumber},
    name::{KanaName, Name},
    person::{BirthDate, Flags, MovedOut, Person, Voucher},
    sex::Sex,
};

use crate::{
    PutSummary, StoreError,
    engine::{Engine, MY_NUMBER_INDEX, open_text, slot},
    sql::{Backend, Row, Tx, Value, multi_insert},
};

/// Residents and their vouchers: imports (all or nothing) and finding one person.
pub trait Persons: Send + Sync {
    /// Inserts or updates persons and their vouchers in one transaction, all or nothing.
    /// A person whose content is unchanged is left alone; vouchers are added, never removed.
    fn put_persons(
        &self,
        m: MunicipalityCode,
        persons: &[Person],
        actor: &Actor,
    ) -> Result<PutSummary, StoreError>;

    /// As [`put_persons`](Persons::put_persons), from a stream, in one transaction: an `Err` from
    /// the stream rolls everything back. A person may come more than once (e.g. one row per
    /// voucher); vouchers accumulate.
    fn import_persons(
        &self,
        m: MunicipalityCode,
        persons: &mut dyn Iterator<Item = Result<Person, StoreError>>,
        actor: &Actor,
    ) -> Result<PutSummary, StoreError>;

    fn person(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        actor: &Actor,
    ) -> Result<Option<Person>, StoreError>;

    /// Finds a person through the keyed index of the My Number, in `m` only.
    fn person_by_my_number(
        &self,
        m: MunicipalityCode,
        my_number: &MyNumber,
        actor: &Actor,
    ) -> Result<Option<Person>, StoreError>;

    fn person_by_voucher(
        &self,
        m: MunicipalityCode,
        voucher: &VoucherNumber,
        actor: &Actor,
    ) -> Result<Option<Person>, StoreError>;

    fn count_persons(&self, m: MunicipalityCode) -> Result<u64, StoreError>;
}

impl<B: Backend> Persons for Engine<B> {
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
                let summary =
                    staged_import(tx, self.now(), &m.to_string(), tenant.personal(m)?, persons)?;
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
            let now = self.now();
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
}

impl<B: Backend> Engine<B> {
    pub(crate) fn read_person(
        &self,
        tx: &mut dyn Tx,
        m: MunicipalityCode,
        keys: &TenantKeys,
        address: &str,
    ) -> Result<Option<Person>, StoreError> {
        Ok(self.read_persons(tx, m, keys, &[address])?.remove(address))
    }

    /// The persons of `m` with these address numbers (those that exist), in two statements.
    pub(crate) fn read_persons(
        &self,
        tx: &mut dyn Tx,
        m: MunicipalityCode,
        keys: &TenantKeys,
        addresses: &[&str],
    ) -> Result<HashMap<String, Person>, StoreError> {
        let code = m.to_string();
        let mut found = HashMap::new();
        if addresses.is_empty() {
            return Ok(found);
        }
        let (with, join_v, in_v) = crate::sql::match_keys(
            B::KEYS_AS_TABLE,
            "v",
            &["address_number"],
            2,
            addresses.len(),
        );
        let (_, join_p, in_p) = crate::sql::match_keys(
            B::KEYS_AS_TABLE,
            "p",
            &["address_number"],
            2,
            addresses.len(),
        );
        let mut params: Vec<Value> = vec![code.as_str().into()];
        params.extend(addresses.iter().map(|a| Value::from(*a)));
        let mut vouchers: HashMap<String, Vec<Voucher>> = HashMap::new();
        for row in tx.query(
            &format!(
                "{with}SELECT v.address_number, v.voucher_number, v.voucher_type, v.dose_number, \
                 v.issued_on FROM vouchers v{join_v} WHERE v.municipality_code = $1{in_v} \
                 ORDER BY v.address_number, COALESCE(v.dose_number, 0), v.voucher_number"
            ),
            &params,
        )? {
            vouchers
                .entry(row.text(0)?.to_owned())
                .or_default()
                .push(voucher_from_row(&row, 1)?);
        }
        for row in tx.query(
            &format!(
                "{with}SELECT p.address_number, p.name_sealed, p.name_kana_sealed, \
                 p.birth_date_sealed, p.my_number_sealed, p.sex, p.moved_out_on, p.moved_out_to, \
                 p.deceased_on, p.use_suspended FROM persons p{join_p} \
                 WHERE p.municipality_code = $1{in_p}"
            ),
            &params,
        )? {
            let address = row.text(0)?.to_owned();
            let held = vouchers.remove(&address).unwrap_or_default();
            found.insert(address, person_from_row(&code, keys, &row, held)?);
        }
        Ok(found)
    }

    pub(crate) fn find_person(
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

/// A voucher from the row's columns from `at` on (number, type, dose number, issued on).
fn voucher_from_row(row: &Row, at: usize) -> Result<Voucher, StoreError> {
    Ok(Voucher {
        number: VoucherNumber::parse(row.text(at)?)?,
        voucher_type: row
            .opt_int(at + 1)?
            .map(|t| u8::try_from(t).map_err(|_| StoreError::Corrupt("voucher type")))
            .transpose()?,
        dose_number: row
            .opt_int(at + 2)?
            .map(|n| {
                u32::try_from(n)
                    .map_err(|_| StoreError::Corrupt("dose number"))
                    .and_then(|n| Ok(DoseNumber::new(n)?))
            })
            .transpose()?,
        issued_on: row.opt_date(at + 3)?,
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
pub(crate) const MAX_ROWS: usize = 64;

/// `items` in chunks of `MAX_ROWS`, then of decreasing powers of two.
pub(crate) fn chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
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
pub(crate) fn staged_import(
    tx: &mut dyn Tx,
    now: i64,
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
    // Counted from RETURNING: Citus reports the rows an INSERT ... SELECT sent through the
    // coordinator, written or not.
    summary.vouchers_written = tx
        .query(
            &format!(
                "INSERT INTO vouchers ({columns}) SELECT DISTINCT ON (voucher_number) {columns} \
                 FROM stage_vouchers ORDER BY voucher_number, seq DESC \
                 ON CONFLICT (municipality_code, voucher_number) DO UPDATE SET \
                 voucher_type = excluded.voucher_type, dose_number = excluded.dose_number, \
                 issued_on = excluded.issued_on \
                 WHERE vouchers.voucher_type IS DISTINCT FROM excluded.voucher_type \
                 OR vouchers.dose_number IS DISTINCT FROM excluded.dose_number \
                 OR vouchers.issued_on IS DISTINCT FROM excluded.issued_on \
                 RETURNING 1"
            ),
            &[],
        )?
        .len() as u64;
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
         OR vouchers.issued_on IS DISTINCT FROM excluded.issued_on RETURNING 1",
        multi_insert("vouchers", &VOUCHER_COLUMNS, chunk.len())
    );
    // Counted from RETURNING, as Citus counts rows sent rather than written.
    summary.vouchers_written += tx.query(&sql, &values)?.len() as u64;
    Ok(())
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
