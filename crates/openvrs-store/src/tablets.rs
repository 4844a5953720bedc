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
    engine::{ChainEnd, Engine, Entries},
    records::{DOSE_COLUMNS, Facts, current_doses_of, dose_values, next_dose_id, same_record},
    sql::{Backend, Tx, Value, insert_rows, match_keys},
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

fn next_conflict_id(tx: &mut dyn Tx, code: &str) -> Result<i64, StoreError> {
    tx.query_opt(
        "SELECT COALESCE(MAX(conflict_id), 0) + 1 FROM dose_conflicts WHERE municipality_code = $1",
        &[code.into()],
    )?
    .ok_or(StoreError::Corrupt("conflict id"))?
    .int(0)
}

/// What an earlier request with the same device and key was answered.
struct Replay {
    digest: Vec<u8>,
    outcome: TabletOutcome,
    id: i64,
    address: String,
    dose_number: u32,
}

const CONFLICT_COLUMNS: [&str; 13] = [
    "municipality_code",
    "conflict_id",
    "address_number",
    "existing_dose_id",
    "dose_number",
    "given_on",
    "product",
    "lot",
    "venue",
    "doctor",
    "voucher_number",
    "device",
    "at",
];

const REQUEST_COLUMNS: [&str; 9] = [
    "municipality_code",
    "device",
    "idempotency_key",
    "request_digest",
    "outcome",
    "record_id",
    "address_number",
    "dose_number",
    "at",
];

impl<B: Backend> Engine<B> {
    fn tablet_batch(
        &self,
        tx: &mut dyn Tx,
        batch: &[(MunicipalityCode, TabletRecord, Actor)],
        savepoints: bool,
    ) -> Result<Vec<Result<TabletAnswer, StoreError>>, StoreError> {
        if savepoints {
            // After an unexpected error: each record alone, so that one's failure leaves the
            // others.
            let mut answers = Vec::with_capacity(batch.len());
            for item in batch {
                tx.batch("SAVEPOINT tablet")?;
                match self.tablet_group(tx, item.0, &[item]) {
                    Ok(mut one) => {
                        tx.batch("RELEASE SAVEPOINT tablet")?;
                        answers.push(one.pop().ok_or(StoreError::Corrupt("empty answer"))?);
                    }
                    Err(e) => {
                        tx.batch("ROLLBACK TO SAVEPOINT tablet; RELEASE SAVEPOINT tablet")?;
                        answers.push(Err(e));
                    }
                }
            }
            return Ok(answers);
        }
        // A handful of statements per municipality, whatever the batch's size: each routes to
        // the municipality's shard on Citus.
        let mut groups: std::collections::BTreeMap<MunicipalityCode, Vec<usize>> =
            Default::default();
        for (i, (m, _, _)) in batch.iter().enumerate() {
            groups.entry(*m).or_default().push(i);
        }
        let mut answers: Vec<Option<Result<TabletAnswer, StoreError>>> =
            (0..batch.len()).map(|_| None).collect();
        for (m, indexes) in groups {
            let items: Vec<_> = indexes.iter().map(|&i| &batch[i]).collect();
            for (i, answer) in indexes.into_iter().zip(self.tablet_group(tx, m, &items)?) {
                answers[i] = Some(answer);
            }
        }
        answers
            .into_iter()
            .map(|a| a.ok_or(StoreError::Corrupt("unanswered tablet record")))
            .collect()
    }

    /// One municipality's records, in the caller's transaction: everything they need is read
    /// in five statements, each record is decided in turn (seeing the ones before it), and what
    /// they write - doses, conflicts, requests, audit entries - goes in one statement per
    /// table. A refusal decided before writing (a reused key, a blocking quality finding, a
    /// malformed key) is an answer without an audit entry; an unknown voucher or another date
    /// of birth is an audited failure.
    fn tablet_group(
        &self,
        tx: &mut dyn Tx,
        m: MunicipalityCode,
        items: &[&(MunicipalityCode, TabletRecord, Actor)],
    ) -> Result<Vec<Result<TabletAnswer, StoreError>>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let code = m.to_string();
        let now = self.now();
        let Some(head) = ChainEnd::lock::<B>(tx, m)? else {
            return Ok(items
                .iter()
                .map(|_| Err(StoreError::UnknownMunicipality(m)))
                .collect());
        };
        // The keys are read after the head is locked, so that a key rotation's last step
        // (which takes the same lock) is seen by every writer that follows it.
        let tenant = self.tenant(tx, m)?;
        let Ok(keys) = tenant.personal(m) else {
            return Ok(items.iter().map(|_| Err(StoreError::Shredded(m))).collect());
        };

        // What the records need, read at once.
        let mut replays: std::collections::HashMap<(String, String), Replay> = Default::default();
        {
            // By the primary key (municipality, device, key): a tablet's requests pile up.
            let pairs: std::collections::BTreeSet<(&str, &str)> = items
                .iter()
                .map(|(_, r, a)| (a.user.as_str(), r.idempotency_key.as_str()))
                .collect();
            let mut params: Vec<Value> = vec![code.as_str().into()];
            for (device, key) in &pairs {
                params.extend([Value::from(*device), Value::from(*key)]);
            }
            let (with, join, condition) = match_keys(
                B::KEYS_AS_TABLE,
                "t",
                &["device", "idempotency_key"],
                2,
                pairs.len(),
            );
            for row in tx.query(
                &format!(
                    "{with}SELECT t.device, t.idempotency_key, t.request_digest, t.outcome, \
                     t.record_id, t.address_number, t.dose_number FROM tablet_requests t{join} \
                     WHERE t.municipality_code = $1{condition}"
                ),
                &params,
            )? {
                replays.insert(
                    (row.text(0)?.to_owned(), row.text(1)?.to_owned()),
                    Replay {
                        digest: row.bytes(2)?.to_vec(),
                        outcome: TabletOutcome::from_code(row.text(3)?)
                            .ok_or(StoreError::Corrupt("tablet outcome"))?,
                        id: row.int(4)?,
                        address: row.text(5)?.to_owned(),
                        dose_number: u32::try_from(row.int(6)?)
                            .map_err(|_| StoreError::Corrupt("dose number"))?,
                    },
                );
            }
        }
        let vouchers: Vec<&str> = items.iter().map(|(_, r, _)| r.voucher.as_str()).collect();
        let mut owners: std::collections::HashMap<String, String> = Default::default();
        {
            let mut params: Vec<Value> = vec![code.as_str().into()];
            params.extend(vouchers.iter().map(|v| Value::from(*v)));
            let (_, _, condition) = match_keys(false, "v", &["voucher_number"], 2, vouchers.len());
            for row in tx.query(
                &format!(
                    "SELECT v.voucher_number, v.address_number FROM vouchers v \
                     WHERE v.municipality_code = $1{condition}"
                ),
                &params,
            )? {
                owners.insert(row.text(0)?.to_owned(), row.text(1)?.to_owned());
            }
        }
        let addresses: Vec<String> = owners
            .values()
            .chain(replays.values().map(|r| &r.address))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let address_refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
        let persons = self.read_persons(tx, m, keys, &address_refs)?;
        let mut doses = current_doses_of(tx, &code, &address_refs, B::KEYS_AS_TABLE)?;
        let catalogue = self.catalogue(tx)?;
        let today = self.today();

        // Each record decided in turn.
        let mut entries = Entries::after(&code, head);
        let (mut dose_rows, mut conflict_rows, mut request_rows) =
            (Vec::new(), Vec::new(), Vec::new());
        let mut next_dose: Option<i64> = None;
        let mut next_conflict: Option<i64> = None;
        let mut answers = Vec::with_capacity(items.len());
        for (_, record, actor) in items {
            let device = actor.user.as_str();
            let voucher = format!("voucher:{}", record.voucher);
            let audit = |entries: &mut Entries<'_>, object: String, outcome: Outcome| {
                entries.push(&tenant.audit, now, actor, "tablet.record", &object, outcome);
            };
            let key = match Short::<64>::parse(&record.idempotency_key) {
                Ok(k) if !k.as_str().is_empty() => k,
                Ok(_) => {
                    answers.push(Err(StoreError::Invalid(openvrs_domain::Invalid {
                        kind: "idempotency_key.required",
                        ja: "冪等キーが必要です",
                        en: "an idempotency key is required",
                    })));
                    continue;
                }
                Err(e) => {
                    answers.push(Err(e.into()));
                    continue;
                }
            };
            let digest = request_digest(keys, record);
            // A retry: the first answer again.
            if let Some(r) = replays.get(&(device.to_owned(), key.as_str().to_owned())) {
                if r.digest != digest {
                    answers.push(Err(StoreError::Conflict(KEY_REUSED)));
                    continue;
                }
                let person = persons
                    .get(&r.address)
                    .ok_or(StoreError::Corrupt("tablet request without person"))?;
                audit(
                    &mut entries,
                    format!("person:{} {voucher} replayed", r.address),
                    Outcome::Ok,
                );
                answers.push(Ok(TabletAnswer {
                    outcome: r.outcome,
                    id: r.id,
                    dose_number: r.dose_number,
                    masked_name: person.name_kana.masked(),
                    warnings: Vec::new(),
                    replayed: true,
                }));
                continue;
            }
            let Some(address) = owners.get(record.voucher.as_str()).cloned() else {
                audit(
                    &mut entries,
                    format!("{voucher} (not found)"),
                    Outcome::Failed,
                );
                answers.push(Err(StoreError::NotFound("voucher")));
                continue;
            };
            let person = persons
                .get(&address)
                .ok_or(StoreError::Corrupt("voucher without person"))?;
            if person.birth_date.0 != record.birth_date {
                audit(
                    &mut entries,
                    format!("person:{address} {voucher} (birth date does not match)"),
                    Outcome::Failed,
                );
                answers.push(Err(StoreError::BirthDateMismatch));
                continue;
            }
            let dose = Dose {
                source: DoseSource::Tablet,
                voucher: Some(record.voucher),
                given_in: Some(m),
                status: DoseStatus::Given,
                ..record.dose.clone()
            };
            let current = doses.entry(address.clone()).or_default();
            let existing = current
                .iter()
                .find(|d| d.dose.number == dose.number && d.dose.status == DoseStatus::Given);
            let (outcome, id, warnings) = match existing {
                Some(e) if same_record(&e.dose, &dose) => {
                    (TabletOutcome::AlreadyRecorded, e.id, Vec::new())
                }
                Some(e) => {
                    let id = match next_conflict {
                        Some(id) => id,
                        None => next_conflict_id(tx, &code)?,
                    };
                    next_conflict = Some(id + 1);
                    conflict_rows.extend::<[Value; 13]>([
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
                        now.into(),
                    ]);
                    (TabletOutcome::Conflict, id, Vec::new())
                }
                None => {
                    let facts = Facts {
                        birth: person.birth_date.0,
                        deceased_on: person.flags.deceased_on,
                        vouchers: person.vouchers.iter().map(|v| v.number).collect(),
                    };
                    let others: Vec<&Dose> = current.iter().map(|d| &d.dose).collect();
                    let findings =
                        quality::check(&facts.subject(), &others, &dose, &catalogue, today);
                    if quality::blocks(&findings) {
                        answers.push(Err(StoreError::Quality(findings)));
                        continue;
                    }
                    let id = match next_dose {
                        Some(id) => id,
                        None => next_dose_id(tx, &code)?,
                    };
                    next_dose = Some(id + 1);
                    let stored = StoredDose {
                        id,
                        version: 1,
                        dose: dose.clone(),
                        recorded_at: now,
                        recorded_by: actor.user.clone(),
                    };
                    dose_rows.extend(dose_values(&code, &address, &stored));
                    current.push(stored);
                    (TabletOutcome::Recorded, id, findings)
                }
            };
            request_rows.extend::<[Value; 9]>([
                code.as_str().into(),
                device.into(),
                key.as_str().into(),
                digest.clone().into(),
                outcome.code().into(),
                id.into(),
                address.as_str().into(),
                i64::from(dose.number.get()).into(),
                now.into(),
            ]);
            // A later record of the batch with the same device and key is a retry of this one.
            replays.insert(
                (device.to_owned(), key.as_str().to_owned()),
                Replay {
                    digest,
                    outcome,
                    id,
                    address: address.clone(),
                    dose_number: dose.number.get(),
                },
            );
            audit(
                &mut entries,
                format!("person:{address} {voucher} {} {id}", outcome.code()),
                Outcome::Ok,
            );
            answers.push(Ok(TabletAnswer {
                outcome,
                id,
                dose_number: dose.number.get(),
                masked_name: person.name_kana.masked(),
                warnings,
                replayed: false,
            }));
        }
        let dose_columns: Vec<&str> = ["municipality_code", "address_number"]
            .into_iter()
            .chain(DOSE_COLUMNS.split(',').map(str::trim))
            .collect();
        insert_rows(tx, "doses", &dose_columns, dose_rows)?;
        insert_rows(tx, "dose_conflicts", &CONFLICT_COLUMNS, conflict_rows)?;
        insert_rows(tx, "tablet_requests", &REQUEST_COLUMNS, request_rows)?;
        entries.insert(tx)?.store(tx, &code)?;
        Ok(answers)
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
