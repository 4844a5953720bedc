//! Doses from venue tablets: the voucher and the date of birth as the second factor, an
//! idempotency key per device, and a conflict queue instead of ever overwriting a dose.

use openvrs_domain::{
    audit::{Actor, Outcome},
    dose::{Dose, DoseNumber, DoseSource, DoseStatus, Short},
    ids::{AddressNumber, MunicipalityCode, VoucherNumber},
    quality,
};

use crate::{
    DoseConflict, StoreError, StoredDose, TabletAnswer, TabletOutcome, TabletRecord,
    engine::{ChainEnd, Engine},
    records::{Facts, current_doses, insert_dose, next_dose_id, same_record},
    sql::{Backend, Tx},
};

const KEY_REUSED: &str =
    "同じ冪等キーで別の内容が送られました / the idempotency key was used for another record";

/// A keyed digest of what a request says, to tell a retry from a reused key.
fn request_digest(keys: &openvrs_crypto::TenantKeys, r: &TabletRecord) -> Vec<u8> {
    let d = &r.dose;
    let canon = format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
        r.voucher,
        r.birth_date,
        d.number,
        d.date,
        d.product.as_str(),
        d.lot.as_str(),
        d.venue.as_str(),
        d.doctor.as_str()
    );
    keys.index("tablet_request", canon.as_bytes()).to_vec()
}

/// The refusals [`Engine::tablet_in`] decides before it writes anything of the record (a
/// database's constraint violation is a `Conflict` too, but not this one).
fn refused_before_writing(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict(m) if *m == KEY_REUSED)
        || matches!(
            e,
            StoreError::Invalid(_)
                | StoreError::Quality(_)
                | StoreError::NotFound(_)
                | StoreError::BirthDateMismatch
                | StoreError::UnknownMunicipality(_)
                | StoreError::Shredded(_)
        )
}

fn next_conflict_id(tx: &mut dyn Tx, code: &str) -> Result<i64, StoreError> {
    tx.query_opt(
        "SELECT COALESCE(MAX(conflict_id), 0) + 1 FROM dose_conflicts WHERE municipality_code = $1",
        &[code.into()],
    )?
    .ok_or(StoreError::Corrupt("conflict id"))?
    .int(0)
}

impl<B: Backend> Engine<B> {
    fn tablet_batch(
        &self,
        tx: &mut dyn Tx,
        batch: &[(MunicipalityCode, TabletRecord, Actor)],
        savepoints: bool,
    ) -> Result<Vec<Result<TabletAnswer, StoreError>>, StoreError> {
        let mut answers = Vec::with_capacity(batch.len());
        // Each municipality's chain end as this batch leaves it: stored once at the end.
        let mut heads: std::collections::HashMap<MunicipalityCode, ChainEnd> =
            std::collections::HashMap::new();
        // The last dose id handed out per municipality in this batch: looked up once (the audit
        // head's lock keeps other writers of the municipality out until the commit).
        let mut dose_ids: std::collections::HashMap<MunicipalityCode, i64> =
            std::collections::HashMap::new();
        for (m, record, actor) in batch {
            if savepoints {
                tx.batch("SAVEPOINT tablet")?;
            }
            match self.tablet_in(tx, heads.get(m).copied(), &mut dose_ids, *m, record, actor) {
                Ok((answer, head)) => {
                    if savepoints {
                        tx.batch("RELEASE SAVEPOINT tablet")?;
                    }
                    heads.insert(*m, head);
                    answers.push(answer);
                }
                Err(e) if savepoints => {
                    tx.batch("ROLLBACK TO SAVEPOINT tablet; RELEASE SAVEPOINT tablet")?;
                    answers.push(Err(e));
                }
                Err(e) if refused_before_writing(&e) => answers.push(Err(e)),
                Err(e) => return Err(e),
            }
        }
        for (m, head) in heads {
            head.store(tx, &m.to_string())?;
        }
        Ok(answers)
    }

    /// One record, inside the caller's transaction. The outer `Err` undoes the record (its
    /// savepoint); an inner `Err` is an answer whose failed attempt stays audited.
    #[allow(clippy::type_complexity)]
    fn tablet_in(
        &self,
        tx: &mut dyn Tx,
        head: Option<ChainEnd>,
        dose_ids: &mut std::collections::HashMap<MunicipalityCode, i64>,
        m: MunicipalityCode,
        record: &TabletRecord,
        actor: &Actor,
    ) -> Result<(Result<TabletAnswer, StoreError>, ChainEnd), StoreError> {
        let code = m.to_string();
        let dose = Dose {
            source: DoseSource::Tablet,
            voucher: Some(record.voucher),
            given_in: Some(m),
            status: DoseStatus::Given,
            ..record.dose.clone()
        };
        let key = Short::<64>::parse(&record.idempotency_key)?;
        if key.as_str().is_empty() {
            return Err(StoreError::Invalid(openvrs_domain::Invalid {
                kind: "idempotency_key.required",
                ja: "冪等キーが必要です",
                en: "an idempotency key is required",
            }));
        }
        // The closure's own result is the answer or why there is none; the failures are
        // committed with their audit entry.
        self.write_chained(tx, head, m, actor, "tablet.record", |tx, tenant| {
            let keys = tenant.personal(m)?;
            let digest = request_digest(keys, record);
            let device = actor.user.as_str();
            let voucher = format!("voucher:{}", record.voucher);
            // A retry: the first answer again.
            if let Some(row) = tx.query_opt(
                "SELECT request_digest, outcome, record_id, address_number, dose_number \
                 FROM tablet_requests WHERE municipality_code = $1 AND device = $2 \
                 AND idempotency_key = $3",
                &[code.as_str().into(), device.into(), key.as_str().into()],
            )? {
                if row.bytes(0)? != digest.as_slice() {
                    return Err(StoreError::Conflict(KEY_REUSED));
                }
                let address = row.text(3)?.to_owned();
                let person = self
                    .read_person(tx, m, keys, &address)?
                    .ok_or(StoreError::Corrupt("tablet request without person"))?;
                let answer = TabletAnswer {
                    outcome: TabletOutcome::from_code(row.text(1)?)
                        .ok_or(StoreError::Corrupt("tablet outcome"))?,
                    id: row.int(2)?,
                    dose_number: u32::try_from(row.int(4)?)
                        .map_err(|_| StoreError::Corrupt("dose number"))?,
                    masked_name: person.name_kana.masked(),
                    warnings: Vec::new(),
                    replayed: true,
                };
                return Ok((
                    Ok(answer),
                    format!("person:{address} {voucher} replayed"),
                    Outcome::Ok,
                ));
            }
            let Some(address) = tx
                .query_opt(
                    "SELECT address_number FROM vouchers WHERE municipality_code = $1 AND voucher_number = $2",
                    &[code.as_str().into(), record.voucher.as_str().into()],
                )?
                .map(|r| r.text(0).map(str::to_owned))
                .transpose()?
            else {
                return Ok((
                    Err(StoreError::NotFound("voucher")),
                    format!("{voucher} (not found)"),
                    Outcome::Failed,
                ));
            };
            let person = self
                .read_person(tx, m, keys, &address)?
                .ok_or(StoreError::Corrupt("voucher without person"))?;
            if person.birth_date.0 != record.birth_date {
                return Ok((
                    Err(StoreError::BirthDateMismatch),
                    format!("person:{address} {voucher} (birth date does not match)"),
                    Outcome::Failed,
                ));
            }
            let current = current_doses(tx, &code, &address)?;
            let existing = current
                .iter()
                .find(|d| d.dose.number == dose.number && d.dose.status == DoseStatus::Given);
            let (outcome, id, warnings) = match existing {
                Some(e) if same_record(&e.dose, &dose) => {
                    (TabletOutcome::AlreadyRecorded, e.id, Vec::new())
                }
                Some(e) => {
                    let id = next_conflict_id(tx, &code)?;
                    tx.execute(
                        "INSERT INTO dose_conflicts (municipality_code, conflict_id, address_number, \
                         existing_dose_id, dose_number, given_on, product, lot, venue, doctor, \
                         voucher_number, device, at) VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                        &[
                            code.as_str().into(),
                            id.into(),
                            address.as_str().into(),
                            e.id.into(),
                            i64::from(dose.number.get()).into(),
                            dose.date.into(),
                            dose.product.as_str().into(),
                            dose.lot.as_str().into(),
                            dose.venue.as_str().into(),
                            dose.doctor.as_str().into(),
                            record.voucher.as_str().into(),
                            device.into(),
                            self.now().into(),
                        ],
                    )?;
                    (TabletOutcome::Conflict, id, Vec::new())
                }
                None => {
                    let facts = Facts {
                        birth: person.birth_date.0,
                        deceased_on: person.flags.deceased_on,
                        vouchers: person.vouchers.iter().map(|v| v.number).collect(),
                    };
                    let others: Vec<&Dose> = current.iter().map(|d| &d.dose).collect();
                    let findings = quality::check(
                        &facts.subject(),
                        &others,
                        &dose,
                        &*self.catalogue(tx)?,
                        self.today(),
                    );
                    if quality::blocks(&findings) {
                        return Err(StoreError::Quality(findings));
                    }
                    let id = match dose_ids.get(&m) {
                        Some(last) => last + 1,
                        None => next_dose_id(tx, &code)?,
                    };
                    dose_ids.insert(m, id);
                    insert_dose(
                        tx,
                        &code,
                        &address,
                        &StoredDose {
                            id,
                            version: 1,
                            dose: dose.clone(),
                            recorded_at: self.now(),
                            recorded_by: actor.user.clone(),
                        },
                    )?;
                    (TabletOutcome::Recorded, id, findings)
                }
            };
            tx.execute(
                "INSERT INTO tablet_requests (municipality_code, device, idempotency_key, \
                 request_digest, outcome, record_id, address_number, dose_number, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    code.as_str().into(),
                    device.into(),
                    key.as_str().into(),
                    digest.into(),
                    outcome.code().into(),
                    id.into(),
                    address.as_str().into(),
                    i64::from(dose.number.get()).into(),
                    self.now().into(),
                ],
            )?;
            Ok((
                Ok(TabletAnswer {
                    outcome,
                    id,
                    dose_number: dose.number.get(),
                    masked_name: person.name_kana.masked(),
                    warnings,
                    replayed: false,
                }),
                format!("person:{address} {voucher} {} {id}", outcome.code()),
                Outcome::Ok,
            ))
        })
    }

    /// The open conflicts, or the one with `id` if it is open.
    fn conflicts_in(
        &self,
        tx: &mut dyn Tx,
        m: MunicipalityCode,
        id: Option<i64>,
    ) -> Result<Vec<DoseConflict>, StoreError> {
        {
            tx.query(
                "SELECT conflict_id, address_number, existing_dose_id, dose_number, given_on, \
                 product, lot, venue, doctor, voucher_number, device, at FROM dose_conflicts \
                 WHERE municipality_code = $1 AND resolved_at IS NULL \
                 AND ($2 = 0 OR conflict_id = $2) ORDER BY conflict_id",
                &[m.to_string().into(), id.unwrap_or(0).into()],
            )?
            .iter()
            .map(|r| {
                Ok(DoseConflict {
                    id: r.int(0)?,
                    address: AddressNumber::parse(r.text(1)?)?,
                    existing_dose_id: r.int(2)?,
                    proposed: Dose {
                        number: DoseNumber::new(
                            u32::try_from(r.int(3)?).map_err(|_| StoreError::Corrupt("dose"))?,
                        )?,
                        status: DoseStatus::Given,
                        date: r.date(4)?,
                        product: Short::parse(r.text(5)?)?,
                        lot: Short::parse(r.text(6)?)?,
                        venue: Short::parse(r.text(7)?)?,
                        doctor: Short::parse(r.text(8)?)?,
                        source: DoseSource::Tablet,
                        voucher: r.opt_text(9)?.map(VoucherNumber::parse).transpose()?,
                        given_in: Some(m),
                    },
                    device: r.text(10)?.to_owned(),
                    at: r.int(11)?,
                })
            })
            .collect()
        }
    }
}

/// Records from venue tablets (group commit) and the conflicts they leave for staff.
pub trait Tablets: Send + Sync {
    /// Records a dose from a venue tablet into the voucher's municipality `m`: the voucher must
    /// be `m`'s, the date of birth must match ([`StoreError::BirthDateMismatch`]), a retry with
    /// the same idempotency key answers the first answer again, and an existing dose is never
    /// overwritten (a different record of it goes to the conflict queue). Failed attempts are
    /// audited too.
    fn record_from_tablet(
        &self,
        m: MunicipalityCode,
        record: &TabletRecord,
        actor: &Actor,
    ) -> Result<TabletAnswer, StoreError>;

    /// Group commit: many tablets' records (each with its own municipality and actor) in one
    /// transaction and one durable commit; each gets its own answer, as
    /// [`record_from_tablet`](Tablets::record_from_tablet) would give it.
    fn record_from_tablets(
        &self,
        batch: &[(MunicipalityCode, TabletRecord, Actor)],
    ) -> Result<Vec<Result<TabletAnswer, StoreError>>, StoreError>;

    /// The tablet records waiting for staff, oldest first.
    fn dose_conflicts(&self, m: MunicipalityCode) -> Result<Vec<DoseConflict>, StoreError>;

    /// Staff decide a conflict: keep the recorded dose, or replace it with the tablet's record
    /// (a correction: the previous version is kept with the reason).
    fn resolve_dose_conflict(
        &self,
        m: MunicipalityCode,
        id: i64,
        replace: bool,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), StoreError>;
}

impl<B: Backend> Tablets for Engine<B> {
    fn record_from_tablet(
        &self,
        m: MunicipalityCode,
        record: &TabletRecord,
        actor: &Actor,
    ) -> Result<TabletAnswer, StoreError> {
        let batch = [(m, record.clone(), actor.clone())];
        self.record_from_tablets(&batch)?
            .pop()
            .ok_or(StoreError::Corrupt("empty batch"))?
    }

    /// Group commit: many tablets' records in one transaction, each with its own audit entry;
    /// one commit makes them all durable before any is answered.
    ///
    /// A refusal (no such voucher, another date of birth, a reused key, a blocking quality
    /// finding) is decided before anything of its record is written, so the batch runs without
    /// savepoints. Only an unexpected error can stop a record half-way: then the whole batch is
    /// rolled back and run again with each record in a savepoint of its own, so that one
    /// record's failure leaves the others.
    fn record_from_tablets(
        &self,
        batch: &[(MunicipalityCode, TabletRecord, Actor)],
    ) -> Result<Vec<Result<TabletAnswer, StoreError>>, StoreError> {
        match self
            .db
            .transaction(|tx| self.tablet_batch(tx, batch, false))
        {
            Ok(answers) => Ok(answers),
            Err(_) => self.db.transaction(|tx| self.tablet_batch(tx, batch, true)),
        }
    }

    fn dose_conflicts(&self, m: MunicipalityCode) -> Result<Vec<DoseConflict>, StoreError> {
        self.db.transaction(|tx| self.conflicts_in(tx, m, None))
    }

    fn resolve_dose_conflict(
        &self,
        m: MunicipalityCode,
        id: i64,
        replace: bool,
        why: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let why = crate::records::reason(why)?;
        let code = m.to_string();
        self.write(m, actor, "dose_conflict.resolve", |tx, tenant| {
            let conflict = self
                .conflicts_in(tx, m, Some(id))?
                .pop()
                .ok_or(StoreError::NotFound("conflict"))?;
            let a = conflict.address.as_str().to_owned();
            if replace {
                self.correct_in(
                    tx,
                    tenant,
                    m,
                    &a,
                    conflict.existing_dose_id,
                    &conflict.proposed,
                    &why,
                    actor,
                )?;
            }
            let resolution = if replace { "replaced" } else { "kept" };
            tx.execute(
                "UPDATE dose_conflicts SET resolved_at = $3, resolved_by = $4, resolution = $5 \
                 WHERE municipality_code = $1 AND conflict_id = $2",
                &[
                    code.as_str().into(),
                    id.into(),
                    self.now().into(),
                    actor.user.as_str().into(),
                    format!("{resolution}: {why}").into(),
                ],
            )?;
            Ok((
                (),
                format!("person:{a} conflict:{id} {resolution}"),
                Outcome::Ok,
            ))
        })
    }
}
