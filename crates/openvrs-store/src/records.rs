//! Dose records: add, correct and delete with history, the data-quality rules on every write,
//! the ledger import and export, the quality report, and person corrections and disclosure.

use std::collections::HashMap;

use openvrs_crypto::TenantKeys;
use openvrs_domain::{
    audit::{Actor, Outcome},
    date::parse_date,
    dose::{Dose, DoseNumber, DoseSource, DoseStatus, Short},
    ids::{AddressNumber, MunicipalityCode, VoucherNumber},
    person::{Flags, Person},
    product::{Catalogue, Product},
    quality::{self, Finding, Severity, Subject},
};
use time::Date;

use crate::{
    AuditEntry, Disclosure, DoseChange, DoseVersion, DoseWritten, FlagUpdate, LedgerRecord,
    LedgerSink, LedgerSummary, PersonChange, PutSummary, QualityLine, RowFinding, StoreError,
    StoredDose,
    engine::{Engine, open_text, read_audit},
    persons::put_chunk,
    sql::{Backend, Row, Tx, Value},
};

pub(crate) const DOSE_COLUMNS: &str = "dose_id, version, dose_number, status, given_on, product, lot, venue, \
                            doctor, source, voucher_number, given_in, recorded_at, recorded_by";
/// Persons per page of the ledger export and the quality report.
pub(crate) const PAGE: i64 = 2000;

/// Today in Japan: the day the date rules compare with.
pub(crate) fn reason(input: &str) -> Result<String, StoreError> {
    let r = Short::<200>::parse(input)?;
    if r.as_str().is_empty() {
        return Err(StoreError::Invalid(openvrs_domain::Invalid {
            kind: "reason.required",
            ja: "理由を入力してください",
            en: "a reason is required",
        }));
    }
    Ok(r.as_str().to_owned())
}

pub(crate) fn dose_from_row(row: &Row, at: usize) -> Result<StoredDose, StoreError> {
    let int = |i: usize| row.int(at + i);
    let text = |i: usize| row.text(at + i);
    Ok(StoredDose {
        id: int(0)?,
        version: int(1)?,
        dose: Dose {
            number: DoseNumber::new(
                u32::try_from(int(2)?).map_err(|_| StoreError::Corrupt("dose number"))?,
            )?,
            status: DoseStatus::from_code(text(3)?).ok_or(StoreError::Corrupt("status"))?,
            date: row.date(at + 4)?,
            product: Short::parse(text(5)?)?,
            lot: Short::parse(text(6)?)?,
            venue: Short::parse(text(7)?)?,
            doctor: Short::parse(text(8)?)?,
            source: DoseSource::from_code(text(9)?).ok_or(StoreError::Corrupt("source"))?,
            voucher: row
                .opt_text(at + 10)?
                .map(VoucherNumber::parse)
                .transpose()?,
            given_in: row
                .opt_text(at + 11)?
                .map(MunicipalityCode::parse)
                .transpose()?,
        },
        recorded_at: int(12)?,
        recorded_by: text(13)?.to_owned(),
    })
}

pub(crate) fn dose_values(code: &str, address: &str, d: &StoredDose) -> Vec<Value> {
    let mut values = vec![code.into(), address.into()];
    values.extend(dose_values_only(d));
    values
}

/// A dose's values in the order of [`DOSE_COLUMNS`].
pub(crate) fn dose_values_only(d: &StoredDose) -> Vec<Value> {
    let x = &d.dose;
    vec![
        d.id.into(),
        d.version.into(),
        i64::from(x.number.get()).into(),
        x.status.code().into(),
        x.date.into(),
        x.product.as_str().into(),
        x.lot.as_str().into(),
        x.venue.as_str().into(),
        x.doctor.as_str().into(),
        x.source.code().into(),
        x.voucher.as_ref().map(VoucherNumber::as_str).into(),
        x.given_in.map(|c| c.to_string()).into(),
        d.recorded_at.into(),
        d.recorded_by.as_str().into(),
    ]
}

pub(crate) fn insert_dose(
    tx: &mut dyn Tx,
    code: &str,
    address: &str,
    d: &StoredDose,
) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO doses (municipality_code, address_number, {DOSE_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ),
        &dose_values(code, address, d),
    )?;
    Ok(())
}

/// Moves the current version of a dose into the history.
#[allow(clippy::too_many_arguments)]
fn keep_history(
    tx: &mut dyn Tx,
    now: i64,
    code: &str,
    address: &str,
    was: &StoredDose,
    change: DoseChange,
    reason: &str,
    actor: &Actor,
) -> Result<(), StoreError> {
    let mut values = dose_values(code, address, was);
    values.extend([
        change.code().into(),
        reason.into(),
        now.into(),
        actor.user.as_str().into(),
    ]);
    tx.execute(
        &format!(
            "INSERT INTO dose_history (municipality_code, address_number, {DOSE_COLUMNS}, \
             change, reason, changed_at, changed_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
        ),
        &values,
    )?;
    Ok(())
}

pub(crate) fn current_doses(
    tx: &mut dyn Tx,
    code: &str,
    address: &str,
) -> Result<Vec<StoredDose>, StoreError> {
    Ok(current_doses_of(tx, code, &[address], false)?
        .remove(address)
        .unwrap_or_default())
}

/// The current doses of each of these persons (those with any), in one statement, in dose
/// number order.
pub(crate) fn current_doses_of(
    tx: &mut dyn Tx,
    code: &str,
    addresses: &[&str],
    as_table: bool,
) -> Result<std::collections::HashMap<String, Vec<StoredDose>>, StoreError> {
    let mut doses: std::collections::HashMap<String, Vec<StoredDose>> = Default::default();
    if addresses.is_empty() {
        return Ok(doses);
    }
    let mut params: Vec<Value> = vec![code.into()];
    params.extend(addresses.iter().map(|a| Value::from(*a)));
    let (with, join, condition) =
        crate::sql::match_keys(as_table, "d", &["address_number"], 2, addresses.len());
    for row in tx.query(
        &format!(
            "{with}SELECT d.address_number, {DOSE_COLUMNS} FROM doses d{join} \
             WHERE d.municipality_code = $1{condition} \
             ORDER BY d.address_number, d.dose_number, d.dose_id"
        ),
        &params,
    )? {
        doses
            .entry(row.text(0)?.to_owned())
            .or_default()
            .push(dose_from_row(&row, 1)?);
    }
    Ok(doses)
}

/// The next dose id: ids of deleted doses (kept in the history) are never reused. Called with
/// the municipality's audit head locked.
pub(crate) fn next_dose_id(tx: &mut dyn Tx, code: &str) -> Result<i64, StoreError> {
    let max = |tx: &mut dyn Tx, table: &str| -> Result<i64, StoreError> {
        Ok(tx
            .query_opt(
                &format!("SELECT MAX(dose_id) FROM {table} WHERE municipality_code = $1"),
                &[code.into()],
            )?
            .map(|r| r.opt_int(0))
            .transpose()?
            .flatten()
            .unwrap_or(0))
    };
    Ok(max(tx, "doses")?.max(max(tx, "dose_history")?) + 1)
}

pub(crate) fn catalogue(tx: &mut dyn Tx) -> Result<Catalogue, StoreError> {
    let products = tx
        .query(
            "SELECT product_code, name, ledger_maker, cvx, icd11, eu_mp, eu_ma, eu_vp, \
             min_interval_days, lot_pattern FROM products ORDER BY product_code",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(Product {
                code: r.text(0)?.to_owned(),
                name: r.text(1)?.to_owned(),
                ledger_maker: r.text(2)?.to_owned(),
                cvx: r.text(3)?.to_owned(),
                icd11: r.text(4)?.to_owned(),
                eu_mp: r.text(5)?.to_owned(),
                eu_ma: r.text(6)?.to_owned(),
                eu_vp: r.text(7)?.to_owned(),
                min_interval_days: u32::try_from(r.int(8)?)
                    .map_err(|_| StoreError::Corrupt("interval"))?,
                lot_pattern: r.text(9)?.to_owned(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Catalogue::new(products)?)
}

/// What the rules need of a person: birth date (unsealed), date of death, vouchers.
pub(crate) struct Facts {
    pub(crate) birth: Date,
    pub(crate) deceased_on: Option<Date>,
    pub(crate) vouchers: Vec<VoucherNumber>,
}

impl Facts {
    pub(crate) fn subject(&self) -> Subject<'_> {
        Subject {
            birth: self.birth,
            deceased_on: self.deceased_on,
            vouchers: &self.vouchers,
        }
    }
}

pub(crate) fn facts(
    tx: &mut dyn Tx,
    code: &str,
    keys: &TenantKeys,
    address: &str,
) -> Result<Option<Facts>, StoreError> {
    let Some(row) = tx.query_opt(
        "SELECT birth_date_sealed, deceased_on FROM persons \
         WHERE municipality_code = $1 AND address_number = $2",
        &[code.into(), address.into()],
    )?
    else {
        return Ok(None);
    };
    let birth = open_text(keys, code, "birth_date", address, row.bytes(0)?)?;
    let vouchers = tx
        .query(
            "SELECT voucher_number FROM vouchers WHERE municipality_code = $1 AND address_number = $2",
            &[code.into(), address.into()],
        )?
        .iter()
        .map(|r| Ok(VoucherNumber::parse(r.text(0)?)?))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(Facts {
        birth: parse_date(&birth).map_err(|_| StoreError::Corrupt("sealed birth date"))?,
        deceased_on: row.opt_date(1)?,
        vouchers,
    }))
}

/// Runs the rules for `dose` against the person's current doses other than `except`; an error
/// finding stops the write.
fn checked(
    facts: &Facts,
    current: &[StoredDose],
    except: Option<i64>,
    dose: &Dose,
    catalogue: &Catalogue,
    today: Date,
) -> Result<Vec<Finding>, StoreError> {
    let others: Vec<&Dose> = current
        .iter()
        .filter(|d| Some(d.id) != except)
        .map(|d| &d.dose)
        .collect();
    let findings = quality::check(&facts.subject(), &others, dose, catalogue, today);
    if quality::blocks(&findings) {
        return Err(StoreError::Quality(findings));
    }
    Ok(findings)
}

/// Whether two doses say the same in the ledger's terms.
pub(crate) fn same_record(a: &Dose, b: &Dose) -> bool {
    (
        a.number, a.status, a.date, &a.product, &a.lot, &a.venue, &a.doctor, &a.voucher, a.given_in,
    ) == (
        b.number, b.status, b.date, &b.product, &b.lot, &b.venue, &b.doctor, &b.voucher, b.given_in,
    )
}

fn finding_row(row: u64, dose: Option<u32>, f: Finding) -> RowFinding {
    RowFinding {
        row,
        dose_number: dose,
        severity: f.severity,
        code: f.rule.code(),
        message: f.to_string(),
    }
}

type PersonDoses<'a> = dyn FnMut(&mut dyn Tx, &str, Vec<StoredDose>) -> Result<(), StoreError> + 'a;

impl<B: Backend> Engine<B> {
    /// A correction inside the caller's write transaction; returns the new version.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn correct_in(
        &self,
        tx: &mut dyn Tx,
        tenant: &crate::engine::Tenant,
        m: MunicipalityCode,
        a: &str,
        id: i64,
        dose: &Dose,
        why: &str,
        actor: &Actor,
    ) -> Result<(DoseWritten, i64), StoreError> {
        let code = m.to_string();
        let keys = tenant.personal(m)?;
        let facts = facts(tx, &code, keys, a)?.ok_or(StoreError::NotFound("person"))?;
        let current = current_doses(tx, &code, a)?;
        let was = current
            .iter()
            .find(|d| d.id == id)
            .ok_or(StoreError::NotFound("dose"))?;
        let warnings = checked(
            &facts,
            &current,
            Some(id),
            dose,
            &*self.catalogue(tx)?,
            self.today(),
        )?;
        keep_history(
            tx,
            self.now(),
            &code,
            a,
            was,
            DoseChange::Corrected,
            why,
            actor,
        )?;
        let now = StoredDose {
            id,
            version: was.version + 1,
            dose: dose.clone(),
            recorded_at: self.now(),
            recorded_by: actor.user.clone(),
        };
        tx.execute(
            "DELETE FROM doses WHERE municipality_code = $1 AND dose_id = $2",
            &[code.as_str().into(), id.into()],
        )?;
        insert_dose(tx, &code, a, &now)?;
        Ok((DoseWritten { id, warnings }, now.version))
    }

    /// Calls `each` for every person with doses, a page at a time (keyset on the address
    /// number), each page in its own read transaction.
    fn each_person_with_doses(
        &self,
        m: MunicipalityCode,
        each: &mut PersonDoses<'_>,
    ) -> Result<u64, StoreError> {
        let code = m.to_string();
        let mut after = String::new();
        let mut persons = 0;
        loop {
            let last = self.db.transaction(|tx| {
                let rows = tx.query(
                    &format!(
                        "SELECT address_number, {DOSE_COLUMNS} FROM doses WHERE municipality_code = $1 \
                         AND address_number IN (SELECT DISTINCT address_number FROM doses \
                         WHERE municipality_code = $1 AND address_number > $2 \
                         ORDER BY address_number LIMIT $3) \
                         ORDER BY address_number, dose_number, dose_id"
                    ),
                    &[code.as_str().into(), after.as_str().into(), PAGE.into()],
                )?;
                let mut groups: Vec<(String, Vec<StoredDose>)> = Vec::new();
                for r in &rows {
                    let a = r.text(0)?;
                    let d = dose_from_row(r, 1)?;
                    match groups.last_mut() {
                        Some((last, ds)) if last == a => ds.push(d),
                        _ => groups.push((a.to_owned(), vec![d])),
                    }
                }
                let last = groups.last().map(|(a, _)| a.clone());
                for (a, ds) in groups {
                    persons += 1;
                    each(tx, &a, ds)?;
                }
                Ok(last)
            })?;
            match last {
                Some(a) => after = a,
                None => return Ok(persons),
            }
        }
    }
}

/// Writes `flags` onto `person` and records the change; returns the change id and the names of
/// the flags that changed.
#[allow(clippy::too_many_arguments)]
fn apply_flags(
    tx: &mut dyn Tx,
    now: i64,
    code: &str,
    keys: &TenantKeys,
    mut person: Person,
    flags: Flags,
    why: &str,
    actor: &Actor,
) -> Result<(i64, Vec<&'static str>), StoreError> {
    let before = person.flags;
    let mut fields = Vec::new();
    if before.moved_out != flags.moved_out {
        fields.push("moved_out");
    }
    if before.deceased_on != flags.deceased_on {
        fields.push("deceased");
    }
    if before.use_suspended != flags.use_suspended {
        fields.push("use_suspended");
    }
    let a = person.address_number.as_str().to_owned();
    person.flags = flags;
    person.vouchers.clear();
    put_chunk(tx, code, keys, &[person], now, &mut PutSummary::default())?;
    let change = record_change(tx, now, code, &a, actor, "flags", &fields, why)?;
    Ok((change, fields))
}

fn history(tx: &mut dyn Tx, code: &str, address: &str) -> Result<Vec<DoseVersion>, StoreError> {
    tx.query(
        &format!(
            "SELECT {DOSE_COLUMNS}, change, reason, changed_at, changed_by FROM dose_history \
             WHERE municipality_code = $1 AND address_number = $2 ORDER BY changed_at, dose_id, version"
        ),
        &[code.into(), address.into()],
    )?
    .iter()
    .map(|r| {
        Ok(DoseVersion {
            was: dose_from_row(r, 0)?,
            change: match r.text(14)? {
                "corrected" => DoseChange::Corrected,
                "deleted" => DoseChange::Deleted,
                _ => return Err(StoreError::Corrupt("dose change")),
            },
            reason: r.text(15)?.to_owned(),
            changed_at: r.int(16)?,
            changed_by: r.text(17)?.to_owned(),
        })
    })
    .collect()
}

#[allow(clippy::too_many_arguments)]
fn record_change(
    tx: &mut dyn Tx,
    now: i64,
    code: &str,
    address: &str,
    actor: &Actor,
    kind: &str,
    fields: &[&str],
    reason: &str,
) -> Result<i64, StoreError> {
    let id = tx
        .query_opt(
            "SELECT COALESCE(MAX(change_id), 0) + 1 FROM person_changes WHERE municipality_code = $1",
            &[code.into()],
        )?
        .ok_or(StoreError::Corrupt("change id"))?
        .int(0)?;
    tx.execute(
        "INSERT INTO person_changes (municipality_code, change_id, address_number, at, actor, kind, \
         fields, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            code.into(),
            id.into(),
            address.into(),
            now.into(),
            actor.user.as_str().into(),
            kind.into(),
            fields.join(",").into(),
            reason.into(),
        ],
    )?;
    Ok(id)
}

/// Dose records, the ledger, data quality and individual rights (disclosure, correction, use suspension).
pub trait Records: Send + Sync {
    /// Records a dose after the data-quality rules: an error is [`StoreError::Quality`].
    fn add_dose(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        dose: &Dose,
        actor: &Actor,
    ) -> Result<DoseWritten, StoreError>;

    /// Replaces a dose, keeping the previous version with the reason.
    fn correct_dose(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        id: i64,
        dose: &Dose,
        reason: &str,
        actor: &Actor,
    ) -> Result<DoseWritten, StoreError>;

    /// Removes a dose from the current record, keeping it in the history with the reason.
    fn delete_dose(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        id: i64,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), StoreError>;

    /// The current doses of a person, in dose order.
    fn doses(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
    ) -> Result<Vec<StoredDose>, StoreError>;

    /// The earlier versions of a person's doses, oldest first.
    fn dose_history(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
    ) -> Result<Vec<DoseVersion>, StoreError>;

    /// Imports ledger rows in one transaction, all or nothing: a row that fails a rule or names
    /// an unknown person rejects the file with every such row ([`StoreError::Rejected`]). A dose
    /// already recorded the same way is left alone.
    fn import_ledger(
        &self,
        m: MunicipalityCode,
        records: &mut dyn Iterator<Item = Result<LedgerRecord, StoreError>>,
        actor: &Actor,
    ) -> Result<LedgerSummary, StoreError>;

    /// Walks every person with doses, in address-number order, a page at a time, handing each to
    /// `sink`; records one audit entry for the export.
    fn export_ledger(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
        sink: &mut LedgerSink<'_>,
    ) -> Result<u64, StoreError>;

    /// Every data-quality finding over the municipality's current doses.
    fn quality_report(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
    ) -> Result<Vec<QualityLine>, StoreError>;

    /// Sets a person's flags (moved out, deceased, use suspended), with the reason.
    fn set_flags(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        flags: Flags,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), StoreError>;

    /// Applies many flag changes in one transaction, all or nothing: an unknown address number
    /// rejects the batch with every such row ([`StoreError::Rejected`]). Returns how many
    /// persons changed.
    fn update_flags(
        &self,
        m: MunicipalityCode,
        updates: &[FlagUpdate],
        actor: &Actor,
    ) -> Result<u64, StoreError>;

    /// Corrects a person's identity (name, kana, birth date, sex, My Number) with a reason;
    /// returns the names of the fields that changed. Flags and vouchers are left as they are.
    fn correct_person(
        &self,
        m: MunicipalityCode,
        corrected: &Person,
        reason: &str,
        actor: &Actor,
    ) -> Result<Vec<&'static str>, StoreError>;

    /// Everything held about one person, as a disclosure (audited).
    fn disclosure(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        actor: &Actor,
    ) -> Result<Option<Disclosure>, StoreError>;
}

impl<B: Backend> Records for Engine<B> {
    fn add_dose(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        dose: &Dose,
        actor: &Actor,
    ) -> Result<DoseWritten, StoreError> {
        let code = m.to_string();
        let a = address.as_str();
        self.write(m, actor, "dose.add", |tx, tenant| {
            let keys = tenant.personal(m)?;
            let facts = facts(tx, &code, keys, a)?.ok_or(StoreError::NotFound("person"))?;
            let current = current_doses(tx, &code, a)?;
            let warnings = checked(
                &facts,
                &current,
                None,
                dose,
                &*self.catalogue(tx)?,
                self.today(),
            )?;
            let id = next_dose_id(tx, &code)?;
            let stored = StoredDose {
                id,
                version: 1,
                dose: dose.clone(),
                recorded_at: self.now(),
                recorded_by: actor.user.clone(),
            };
            insert_dose(tx, &code, a, &stored)?;
            Ok((
                DoseWritten { id, warnings },
                format!("person:{a} dose:{id}"),
                Outcome::Ok,
            ))
        })
    }

    fn correct_dose(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        id: i64,
        dose: &Dose,
        why: &str,
        actor: &Actor,
    ) -> Result<DoseWritten, StoreError> {
        let why = reason(why)?;
        let a = address.as_str();
        self.write(m, actor, "dose.correct", |tx, tenant| {
            let (written, version) = self.correct_in(tx, tenant, m, a, id, dose, &why, actor)?;
            Ok((
                written,
                format!("person:{a} dose:{id} version:{version}"),
                Outcome::Ok,
            ))
        })
    }

    fn delete_dose(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        id: i64,
        why: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let why = reason(why)?;
        let code = m.to_string();
        let a = address.as_str();
        self.write(m, actor, "dose.delete", |tx, _| {
            let current = current_doses(tx, &code, a)?;
            let was = current
                .iter()
                .find(|d| d.id == id)
                .ok_or(StoreError::NotFound("dose"))?;
            keep_history(
                tx,
                self.now(),
                &code,
                a,
                was,
                DoseChange::Deleted,
                &why,
                actor,
            )?;
            tx.execute(
                "DELETE FROM doses WHERE municipality_code = $1 AND dose_id = $2",
                &[code.as_str().into(), id.into()],
            )?;
            Ok(((), format!("person:{a} dose:{id}"), Outcome::Ok))
        })
    }

    fn doses(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
    ) -> Result<Vec<StoredDose>, StoreError> {
        self.db
            .transaction(|tx| current_doses(tx, &m.to_string(), address.as_str()))
    }

    fn dose_history(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
    ) -> Result<Vec<DoseVersion>, StoreError> {
        self.db
            .transaction(|tx| history(tx, &m.to_string(), address.as_str()))
    }

    fn import_ledger(
        &self,
        m: MunicipalityCode,
        records: &mut dyn Iterator<Item = Result<LedgerRecord, StoreError>>,
        actor: &Actor,
    ) -> Result<LedgerSummary, StoreError> {
        let code = m.to_string();
        self.write(m, actor, "ledger.import", |tx, tenant| {
            let keys = tenant.personal(m)?;
            let catalogue = self.catalogue(tx)?;
            let mut summary = LedgerSummary::default();
            let mut problems = Vec::new();
            let mut next_id = next_dose_id(tx, &code)?;
            let mut seen: HashMap<AddressNumber, u64> = HashMap::new();
            let now = self.now();
            for record in records {
                let record = record?;
                summary.rows += 1;
                let row = record.row;
                if let Some(first) = seen.insert(record.address.clone(), row) {
                    problems.push(RowFinding {
                        row,
                        dose_number: None,
                        severity: Severity::Error,
                        code: "ledger.duplicate_person",
                        message: format!(
                            "宛名番号が{first}行目と重複しています / the address number repeats row {first}"
                        ),
                    });
                    continue;
                }
                let a = record.address.as_str();
                let Some(facts) = facts(tx, &code, keys, a)? else {
                    problems.push(RowFinding {
                        row,
                        dose_number: None,
                        severity: Severity::Error,
                        code: "ledger.unknown_person",
                        message: "宛名番号が登録されていません / the address number is not registered"
                            .into(),
                    });
                    continue;
                };
                let mut current = current_doses(tx, &code, a)?;
                for (dose, registered_at) in record.doses {
                    let n = Some(dose.number.get());
                    if current
                        .iter()
                        .any(|d| same_record(&d.dose, &dose))
                    {
                        summary.unchanged += 1;
                        continue;
                    }
                    let others: Vec<&Dose> = current.iter().map(|d| &d.dose).collect();
                    let findings =
                        quality::check(&facts.subject(), &others, &dose, &catalogue, self.today());
                    let blocked = quality::blocks(&findings);
                    for f in findings {
                        let line = finding_row(row, n, f);
                        match f.severity {
                            Severity::Error => problems.push(line),
                            Severity::Warning => summary.warnings.push(line),
                        }
                    }
                    if blocked || !problems.is_empty() {
                        continue;
                    }
                    let stored = StoredDose {
                        id: next_id,
                        version: 1,
                        dose,
                        recorded_at: registered_at.unwrap_or(now),
                        recorded_by: actor.user.clone(),
                    };
                    next_id += 1;
                    insert_dose(tx, &code, a, &stored)?;
                    summary.inserted += 1;
                    current.push(stored);
                }
            }
            if !problems.is_empty() {
                return Err(StoreError::Rejected(problems));
            }
            let object = format!(
                "ledger rows={} inserted={} unchanged={} warnings={}",
                summary.rows,
                summary.inserted,
                summary.unchanged,
                summary.warnings.len()
            );
            Ok((summary, object, Outcome::Ok))
        })
    }

    fn export_ledger(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
        sink: &mut LedgerSink<'_>,
    ) -> Result<u64, StoreError> {
        let persons = self.each_person_with_doses(m, &mut |_, a, doses| {
            sink(&AddressNumber::parse(a)?, &doses)
        })?;
        self.write(m, actor, "ledger.export", |_, _| {
            Ok(((), format!("ledger persons={persons}"), Outcome::Ok))
        })?;
        Ok(persons)
    }

    fn quality_report(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
    ) -> Result<Vec<QualityLine>, StoreError> {
        let code = m.to_string();
        let (keys, catalogue) = self.db.transaction(|tx| {
            let tenant = self.tenant(tx, m)?;
            Ok((tenant, self.catalogue(tx)?))
        })?;
        let keys = keys.personal(m)?;
        let today = self.today();
        let mut lines = Vec::new();
        let persons = self.each_person_with_doses(m, &mut |tx, a, doses| {
            let facts =
                facts(tx, &code, keys, a)?.ok_or(StoreError::Corrupt("dose without person"))?;
            let plain: Vec<Dose> = doses.iter().map(|d| d.dose.clone()).collect();
            for (i, finding) in quality::check_person(&facts.subject(), &plain, &catalogue, today) {
                lines.push(QualityLine {
                    address: AddressNumber::parse(a)?,
                    dose_id: doses[i].id,
                    dose_number: doses[i].dose.number.get(),
                    finding,
                });
            }
            Ok(())
        })?;
        let errors = lines
            .iter()
            .filter(|l| l.finding.severity == Severity::Error)
            .count();
        self.write(m, actor, "quality.report", |_, _| {
            Ok((
                (),
                format!(
                    "quality persons={persons} errors={errors} warnings={}",
                    lines.len() - errors
                ),
                Outcome::Ok,
            ))
        })?;
        Ok(lines)
    }

    fn set_flags(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        flags: Flags,
        why: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let why = reason(why)?;
        let code = m.to_string();
        let a = address.as_str();
        self.write(m, actor, "person.flags", |tx, tenant| {
            let keys = tenant.personal(m)?;
            let person = self
                .read_person(tx, m, keys, a)?
                .ok_or(StoreError::NotFound("person"))?;
            let (change, fields) =
                apply_flags(tx, self.now(), &code, keys, person, flags, &why, actor)?;
            Ok((
                (),
                format!("person:{a} change:{change} fields={}", fields.join(",")),
                Outcome::Ok,
            ))
        })
    }

    fn update_flags(
        &self,
        m: MunicipalityCode,
        updates: &[FlagUpdate],
        actor: &Actor,
    ) -> Result<u64, StoreError> {
        let reasons = updates
            .iter()
            .map(|u| reason(&u.reason))
            .collect::<Result<Vec<_>, _>>()?;
        let code = m.to_string();
        self.write(m, actor, "persons.flags", |tx, tenant| {
            let keys = tenant.personal(m)?;
            let mut problems = Vec::new();
            let mut changed = 0;
            for (u, why) in updates.iter().zip(&reasons) {
                let Some(person) = self.read_person(tx, m, keys, u.address.as_str())? else {
                    problems.push(RowFinding {
                        row: u.row,
                        dose_number: None,
                        severity: Severity::Error,
                        code: "flags.unknown_person",
                        message:
                            "宛名番号が登録されていません / the address number is not registered"
                                .into(),
                    });
                    continue;
                };
                let flags = u.change.apply(person.flags);
                if flags != person.flags && problems.is_empty() {
                    apply_flags(tx, self.now(), &code, keys, person, flags, why, actor)?;
                    changed += 1;
                }
            }
            if !problems.is_empty() {
                return Err(StoreError::Rejected(problems));
            }
            Ok((
                changed,
                format!("flags rows={} changed={changed}", updates.len()),
                Outcome::Ok,
            ))
        })
    }

    fn correct_person(
        &self,
        m: MunicipalityCode,
        corrected: &Person,
        why: &str,
        actor: &Actor,
    ) -> Result<Vec<&'static str>, StoreError> {
        let why = reason(why)?;
        let code = m.to_string();
        let a = corrected.address_number.as_str();
        self.write(m, actor, "person.correct", |tx, tenant| {
            let keys = tenant.personal(m)?;
            let mut person = self
                .read_person(tx, m, keys, a)?
                .ok_or(StoreError::NotFound("person"))?;
            let mut fields = Vec::new();
            if person.name != corrected.name {
                fields.push("name");
            }
            if person.name_kana != corrected.name_kana {
                fields.push("name_kana");
            }
            if person.birth_date != corrected.birth_date {
                fields.push("birth_date");
            }
            if person.sex != corrected.sex {
                fields.push("sex");
            }
            if person.my_number != corrected.my_number {
                fields.push("my_number");
            }
            person.name = corrected.name.clone();
            person.name_kana = corrected.name_kana.clone();
            person.birth_date = corrected.birth_date;
            person.sex = corrected.sex;
            person.my_number = corrected.my_number.clone();
            person.vouchers.clear();
            put_chunk(
                tx,
                &code,
                keys,
                &[person],
                self.now(),
                &mut PutSummary::default(),
            )?;
            let change = record_change(tx, self.now(), &code, a, actor, "correct", &fields, &why)?;
            Ok((
                fields.clone(),
                format!("person:{a} change:{change} fields={}", fields.join(",")),
                Outcome::Ok,
            ))
        })
    }

    fn disclosure(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        actor: &Actor,
    ) -> Result<Option<Disclosure>, StoreError> {
        let code = m.to_string();
        let a = address.as_str();
        self.write(m, actor, "person.disclose", |tx, tenant| {
            let keys = tenant.personal(m)?;
            let Some(person) = self.read_person(tx, m, keys, a)? else {
                return Ok((None, format!("person:{a} (not found)"), Outcome::Failed));
            };
            let doses = current_doses(tx, &code, a)?;
            let history = history(tx, &code, a)?;
            let changes = tx
                .query(
                    "SELECT change_id, at, actor, kind, fields, reason FROM person_changes \
                     WHERE municipality_code = $1 AND address_number = $2 ORDER BY change_id",
                    &[code.as_str().into(), a.into()],
                )?
                .iter()
                .map(|r| {
                    Ok(PersonChange {
                        id: r.int(0)?,
                        at: r.int(1)?,
                        actor: r.text(2)?.to_owned(),
                        kind: r.text(3)?.to_owned(),
                        fields: r
                            .text(4)?
                            .split(',')
                            .filter(|f| !f.is_empty())
                            .map(str::to_owned)
                            .collect(),
                        reason: r.text(5)?.to_owned(),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let inquiries = self.inquiries_in(
                tx,
                m,
                "address_number = $2 ORDER BY inquiry_id",
                &[a.into()],
            )?;
            let provisions = crate::inquiries::provisions_in(tx, m, Some(&person.address_number))?;
            let certificates =
                crate::certificates::certificates_in(tx, m, Some(&person.address_number))?;
            let tag = format!("person:{a}");
            let audit: Vec<AuditEntry> = read_audit(tx, &code)?
                .into_iter()
                .map(|(e, _)| e)
                .filter(|e| e.object == tag || e.object.starts_with(&format!("{tag} ")))
                .collect();
            Ok((
                Some(Disclosure {
                    person,
                    doses,
                    history,
                    changes,
                    inquiries,
                    provisions,
                    certificates,
                    audit,
                }),
                tag,
                Outcome::Ok,
            ))
        })
    }
}
