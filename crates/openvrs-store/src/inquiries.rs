//! Inquiry and provision between municipalities (他市区町村への照会・提供): the source
//! municipality's area is searched for a My Number through its own keyed index, and only that
//! person's doses come back; the providing municipality records every answer (情報提供等の
//!記録) and the asking one keeps the inquiry, never the My Number.

use std::collections::{BTreeSet, HashMap};

use openvrs_domain::{
    Invalid,
    audit::{Actor, Outcome},
    dose::{DoseSource, DoseStatus},
    ids::{AddressNumber, MunicipalityCode, MyNumber},
    quality,
};

use crate::{
    Attached, BulkRow, Inquiry, InquiryCounts, InquiryJob, InquiryRequest, InquiryStatus,
    Malformed, Provision, StoreError, StoredDose,
    engine::{ChainEnd, Engine, Entries, MY_NUMBER_INDEX},
    records::{
        DOSE_COLUMNS, Facts, current_doses, dose_from_row, insert_dose, next_dose_id, same_record,
    },
    sql::{Backend, Tx, Value, insert_rows},
};

/// Each municipality's audit chain end within one transaction, stored once at its end.
type Heads = HashMap<MunicipalityCode, ChainEnd>;

const SAME_MUNICIPALITY: Invalid = Invalid {
    kind: "inquiry.same_municipality",
    ja: "照会先が自団体です",
    en: "the source is the asking municipality itself",
};
/// Why an inquiry naming a 宛名番号 the asker does not hold is refused.
const NOT_OWN_RESIDENT: Invalid = Invalid {
    kind: "inquiry.not_own_resident",
    ja: "照会元の宛名番号が自団体の住民にありません(照会は自団体の住民についてのみ行えます)",
    en: "the address number is not one of the asking municipality's residents (an inquiry is for the asker's own resident)",
};
const NO_BASIS: Invalid = Invalid {
    kind: "inquiry.basis",
    ja: "照会の根拠(法令または本人同意)を記録してください",
    en: "record the legal basis or the person's consent",
};

/// What the source municipality may give: its person, whether their use is suspended, and
/// their current doses.
struct Found {
    address: String,
    suspended: bool,
    doses: Vec<StoredDose>,
}

/// Next ids handed out within one transaction, per table and municipality.
#[derive(Default)]
struct Ids(HashMap<(&'static str, MunicipalityCode), i64>);

impl Ids {
    fn next(
        &mut self,
        tx: &mut dyn Tx,
        table: &'static str,
        column: &str,
        m: MunicipalityCode,
    ) -> Result<i64, StoreError> {
        let id = match self.0.get(&(table, m)) {
            Some(last) => last + 1,
            None => {
                tx.query_opt(
                    &format!(
                        "SELECT COALESCE(MAX({column}), 0) + 1 FROM {table} WHERE municipality_code = $1"
                    ),
                    &[m.to_string().into()],
                )?
                .ok_or(StoreError::Corrupt("max id"))?
                .int(0)?
            }
        };
        self.0.insert((table, m), id);
        Ok(id)
    }
}

const INQUIRY_COLUMNS: &str = "inquiry_id, job_id, row_number, source_municipality, \
     address_number, basis, status, message, record_count, asked_by, at, attached_at";

/// The asking municipality's side of a run of inquiries in one transaction (one inquiry, or a
/// chunk of a bulk job): its inquiries, what came back and its audit entries, written at the end
/// in one statement per table.
struct Run<'a> {
    asker: MunicipalityCode,
    tenant: std::sync::Arc<crate::engine::Tenant>,
    /// The asker's residents among the run's address numbers, read at once.
    held: std::collections::HashSet<String>,
    entries: Entries<'a>,
    inquiries: Vec<Value>,
    doses: Vec<Value>,
}

const INQUIRY_INSERT: [&str; 13] = [
    "municipality_code",
    "inquiry_id",
    "job_id",
    "row_number",
    "source_municipality",
    "address_number",
    "my_number_index",
    "basis",
    "status",
    "message",
    "record_count",
    "asked_by",
    "at",
];

impl Run<'_> {
    /// Writes what the run collected; returns the asker's chain end.
    fn finish(self, tx: &mut dyn Tx) -> Result<ChainEnd, StoreError> {
        insert_rows(tx, "inquiries", &INQUIRY_INSERT, self.inquiries)?;
        let columns: Vec<&str> = ["municipality_code", "inquiry_id", "address_number"]
            .into_iter()
            .chain(DOSE_COLUMNS.split(',').map(str::trim))
            .collect();
        insert_rows(tx, "inquiry_doses", &columns, self.doses)?;
        self.entries.insert(tx)
    }
}

impl<B: Backend> Engine<B> {
    /// Locks the audit heads of `codes` in code order (so that two transactions never wait on
    /// each other) and returns them; a code that is not registered has none.
    pub(crate) fn lock_heads(
        &self,
        tx: &mut dyn Tx,
        codes: impl IntoIterator<Item = MunicipalityCode>,
    ) -> Result<Heads, StoreError> {
        let mut heads = Heads::new();
        for m in codes.into_iter().collect::<BTreeSet<_>>() {
            if let Some(head) = ChainEnd::lock::<B>(tx, m)? {
                heads.insert(m, head);
            }
        }
        Ok(heads)
    }

    fn store_heads(&self, tx: &mut dyn Tx, heads: Heads) -> Result<(), StoreError> {
        for (m, head) in heads {
            head.store(tx, &m.to_string())?;
        }
        Ok(())
    }

    /// The source's person with this My Number, found through the source's own index key. An
    /// unregistered or shredded source finds nobody, exactly like a missing person.
    fn look_up(
        &self,
        tx: &mut dyn Tx,
        source: MunicipalityCode,
        my_number: &MyNumber,
    ) -> Result<Option<Found>, StoreError> {
        let tenant = match self.tenant(tx, source) {
            Ok(t) => t,
            Err(StoreError::UnknownMunicipality(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Ok(keys) = tenant.personal(source) else {
            return Ok(None);
        };
        let code = source.to_string();
        let index = keys.index(MY_NUMBER_INDEX, my_number.expose().as_bytes());
        let Some(row) = tx.query_opt(
            "SELECT address_number, use_suspended FROM persons \
             WHERE municipality_code = $1 AND my_number_index = $2",
            &[code.as_str().into(), index.to_vec().into()],
        )?
        else {
            return Ok(None);
        };
        let address = row.text(0)?.to_owned();
        let suspended = row.int(1)? != 0;
        let doses = if suspended {
            Vec::new()
        } else {
            current_doses(tx, &code, &address)?
                .into_iter()
                .filter(|d| d.dose.status == DoseStatus::Given)
                .collect()
        };
        Ok(Some(Found {
            address,
            suspended,
            doses,
        }))
    }

    /// One inquiry inside the caller's transaction: the provision in the source (when it has
    /// the person), the inquiry and what came back here, each audited in its own chain.
    #[allow(clippy::too_many_arguments)]
    fn ask_in(
        &self,
        tx: &mut dyn Tx,
        heads: &mut Heads,
        ids: &mut Ids,
        run: &mut Run<'_>,
        job: Option<(i64, u64)>,
        input: &Result<InquiryRequest, Malformed>,
        actor: &Actor,
    ) -> Result<Inquiry, StoreError> {
        let asker = run.asker;
        let id = ids.next(tx, "inquiries", "inquiry_id", asker)?;
        let at = self.now();
        let mut inquiry = Inquiry {
            id,
            job: job.map(|j| j.0),
            row: job.map(|j| j.1),
            source: None,
            address: None,
            basis: String::new(),
            status: InquiryStatus::FormatError,
            message: None,
            doses: Vec::new(),
            asked_by: actor.user.clone(),
            at,
            attached_at: None,
        };
        let mut my_number_index = None;
        match input {
            Err(bad) => {
                inquiry.address = bad.address.clone();
                inquiry.message = Some(bad.message.clone());
            }
            Ok(request) if !run.held.contains(request.address.as_str()) => {
                // Refused before the source is read: no provision, nothing comes back.
                inquiry.source = Some(request.source);
                inquiry.address = Some(request.address.clone());
                inquiry.basis = request.basis.clone();
                inquiry.status = InquiryStatus::Refused;
                inquiry.message = Some(NOT_OWN_RESIDENT.to_string());
            }
            Ok(request) => {
                let found = self.look_up(tx, request.source, &request.my_number)?;
                inquiry.source = Some(request.source);
                inquiry.address = Some(request.address.clone());
                inquiry.basis = request.basis.clone();
                inquiry.status = match &found {
                    None => InquiryStatus::NotFound,
                    Some(f) if f.suspended => InquiryStatus::Suspended,
                    Some(_) => InquiryStatus::Found,
                };
                if let Some(f) = found {
                    let provision = ids.next(tx, "provisions", "provision_id", request.source)?;
                    let status = inquiry.status;
                    let count = f.doses.len();
                    let (_, head) = self.write_chained(
                        tx,
                        heads.get(&request.source).copied(),
                        request.source,
                        actor,
                        "inquiry.provide",
                        |tx, _| {
                            tx.execute(
                                "INSERT INTO provisions (municipality_code, provision_id, \
                                 asked_by_municipality, asked_by, inquiry_id, address_number, \
                                 status, record_count, basis, at) VALUES \
                                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                                &[
                                    request.source.to_string().into(),
                                    provision.into(),
                                    asker.to_string().into(),
                                    actor.user.as_str().into(),
                                    id.into(),
                                    f.address.as_str().into(),
                                    status.code().into(),
                                    i64::try_from(count).unwrap_or(i64::MAX).into(),
                                    request.basis.as_str().into(),
                                    at.into(),
                                ],
                            )?;
                            Ok((
                                (),
                                format!(
                                    "person:{} provision:{provision} to:{asker} inquiry:{id} {} records:{count}",
                                    f.address,
                                    status.code()
                                ),
                                Outcome::Ok,
                            ))
                        },
                    )?;
                    heads.insert(request.source, head);
                    inquiry.doses = f.doses;
                }
            }
        }
        let code = asker.to_string();
        if let Ok(request) = input {
            let keys = run.tenant.personal(asker)?;
            my_number_index = Some(
                keys.index(MY_NUMBER_INDEX, request.my_number.expose().as_bytes())
                    .to_vec(),
            );
        }
        run.inquiries.extend::<[Value; 13]>([
            code.as_str().into(),
            id.into(),
            inquiry.job.into(),
            inquiry
                .row
                .map(|r| i64::try_from(r).unwrap_or(i64::MAX))
                .into(),
            inquiry.source.map(|s| s.to_string()).into(),
            inquiry.address.as_ref().map(AddressNumber::as_str).into(),
            my_number_index.take().into(),
            inquiry.basis.as_str().into(),
            inquiry.status.code().into(),
            inquiry.message.clone().into(),
            i64::try_from(inquiry.doses.len())
                .unwrap_or(i64::MAX)
                .into(),
            actor.user.as_str().into(),
            at.into(),
        ]);
        if let Some(address) = &inquiry.address {
            for d in &inquiry.doses {
                run.doses
                    .extend([code.as_str().into(), id.into(), address.as_str().into()]);
                run.doses.extend(crate::records::dose_values_only(d));
            }
        }
        let person = inquiry
            .address
            .as_ref()
            .map_or_else(|| "-".to_owned(), |a| a.to_string());
        let source = inquiry
            .source
            .map_or_else(|| "-".to_owned(), |s| s.to_string());
        let object = format!(
            "inquiry:{id} person:{person} from:{source} {} records:{}",
            inquiry.status.code(),
            inquiry.doses.len()
        );
        run.entries.push(
            &run.tenant.audit,
            at,
            actor,
            "inquiry.ask",
            &object,
            Outcome::Ok,
        );
        Ok(inquiry)
    }

    pub(crate) fn inquiries_in(
        &self,
        tx: &mut dyn Tx,
        asker: MunicipalityCode,
        filter: &str,
        params: &[Value],
    ) -> Result<Vec<Inquiry>, StoreError> {
        let code = asker.to_string();
        let mut all: Vec<Value> = vec![code.as_str().into()];
        all.extend(params.iter().cloned());
        let rows = tx.query(
            &format!(
                "SELECT {INQUIRY_COLUMNS} FROM inquiries WHERE municipality_code = $1 AND {filter}"
            ),
            &all,
        )?;
        let mut inquiries = rows
            .iter()
            .map(|r| {
                Ok(Inquiry {
                    id: r.int(0)?,
                    job: r.opt_int(1)?,
                    row: r.opt_int(2)?.map(count),
                    source: r.opt_text(3)?.map(MunicipalityCode::parse).transpose()?,
                    address: r.opt_text(4)?.map(AddressNumber::parse).transpose()?,
                    basis: r.text(5)?.to_owned(),
                    status: InquiryStatus::from_code(r.text(6)?)
                        .ok_or(StoreError::Corrupt("inquiry status"))?,
                    message: r.opt_text(7)?.map(str::to_owned),
                    doses: Vec::new(),
                    asked_by: r.text(9)?.to_owned(),
                    at: r.int(10)?,
                    attached_at: r.opt_int(11)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // The doses of the found ones, one query for all.
        if inquiries.iter().any(|i| i.status == InquiryStatus::Found) {
            let mut doses: HashMap<i64, Vec<StoredDose>> = HashMap::new();
            let low = inquiries.iter().map(|i| i.id).min().unwrap_or(0);
            let high = inquiries.iter().map(|i| i.id).max().unwrap_or(0);
            for r in tx.query(
                &format!(
                    "SELECT inquiry_id, {DOSE_COLUMNS} FROM inquiry_doses WHERE \
                     municipality_code = $1 AND inquiry_id BETWEEN $2 AND $3 \
                     ORDER BY inquiry_id, dose_number, dose_id"
                ),
                &[code.as_str().into(), low.into(), high.into()],
            )? {
                doses
                    .entry(r.int(0)?)
                    .or_default()
                    .push(dose_from_row(&r, 1)?);
            }
            for i in &mut inquiries {
                i.doses = doses.remove(&i.id).unwrap_or_default();
            }
        }
        Ok(inquiries)
    }
}

/// The provision records of a municipality (or of one of its persons), newest first.
pub(crate) fn provisions_in(
    tx: &mut dyn Tx,
    provider: MunicipalityCode,
    address: Option<&AddressNumber>,
) -> Result<Vec<Provision>, StoreError> {
    tx.query(
        "SELECT provision_id, asked_by_municipality, asked_by, inquiry_id, address_number, \
         status, record_count, basis, at FROM provisions WHERE municipality_code = $1 \
         AND ($2 = '' OR address_number = $2) ORDER BY provision_id DESC",
        &[
            provider.to_string().into(),
            address.map_or("", AddressNumber::as_str).into(),
        ],
    )?
    .iter()
    .map(|r| {
        Ok(Provision {
            id: r.int(0)?,
            asked_by_municipality: MunicipalityCode::parse(r.text(1)?)?,
            asked_by: r.text(2)?.to_owned(),
            inquiry_id: r.int(3)?,
            address: AddressNumber::parse(r.text(4)?)?,
            status: InquiryStatus::from_code(r.text(5)?)
                .ok_or(StoreError::Corrupt("provision status"))?,
            record_count: count(r.int(6)?),
            basis: r.text(7)?.to_owned(),
            at: r.int(8)?,
        })
    })
    .collect()
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Which of these address numbers are residents of `municipality`, in one statement.
fn held_of(
    tx: &mut dyn Tx,
    municipality: MunicipalityCode,
    addresses: &[&str],
    as_table: bool,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut held = std::collections::HashSet::new();
    if addresses.is_empty() {
        return Ok(held);
    }
    let (with, join, condition) =
        crate::sql::match_keys(as_table, "p", &["address_number"], 2, addresses.len());
    let mut params: Vec<Value> = vec![municipality.to_string().into()];
    params.extend(addresses.iter().map(|a| Value::from(*a)));
    for row in tx.query(
        &format!(
            "{with}SELECT p.address_number FROM persons p{join} \
             WHERE p.municipality_code = $1{condition}"
        ),
        &params,
    )? {
        held.insert(row.text(0)?.to_owned());
    }
    Ok(held)
}

/// Inquiries between municipalities, bulk jobs and the provision records.
pub trait Inquiries: Send + Sync {
    /// A single inquiry (他市区町村への照会): looks `request.my_number` up in the source
    /// municipality through its keyed index and returns only that person's doses; records the
    /// provision there and the inquiry here, both audited. A source that is not registered
    /// answers exactly like a person who is not.
    fn inquire(
        &self,
        asker: MunicipalityCode,
        request: &InquiryRequest,
        actor: &Actor,
    ) -> Result<Inquiry, StoreError>;

    /// Starts a bulk inquiry job of `total_rows` rows.
    fn create_inquiry_job(
        &self,
        asker: MunicipalityCode,
        total_rows: u64,
        actor: &Actor,
    ) -> Result<i64, StoreError>;

    /// Answers some rows of a bulk job in one transaction, and counts them done.
    fn inquire_rows(
        &self,
        asker: MunicipalityCode,
        job: i64,
        rows: &[BulkRow],
        actor: &Actor,
    ) -> Result<(), StoreError>;

    /// Marks a job done, or failed with `error`.
    fn finish_inquiry_job(
        &self,
        asker: MunicipalityCode,
        job: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError>;

    fn inquiry_job(
        &self,
        asker: MunicipalityCode,
        job: i64,
    ) -> Result<Option<InquiryJob>, StoreError>;

    /// A job's rows in file order, or (`None`) the single inquiries, newest first.
    fn inquiries(
        &self,
        asker: MunicipalityCode,
        job: Option<i64>,
    ) -> Result<Vec<Inquiry>, StoreError>;

    /// Attaches what the given inquiries (or all found rows of `job`) brought back to the
    /// asking municipality's persons, keeping where each dose came from. All or nothing.
    fn attach_inquiries(
        &self,
        asker: MunicipalityCode,
        ids: &[i64],
        job: Option<i64>,
        actor: &Actor,
    ) -> Result<Attached, StoreError>;

    /// Inquiries made in the last `within` microseconds (by the clock that dates them), for the
    /// volume limits and the fishing check.
    fn inquiry_counts(
        &self,
        asker: MunicipalityCode,
        user: &str,
        my_number: Option<&MyNumber>,
        within: i64,
    ) -> Result<InquiryCounts, StoreError>;

    /// The provision records of a municipality, newest first (`address` for one person's).
    fn provisions(
        &self,
        provider: MunicipalityCode,
        address: Option<&AddressNumber>,
    ) -> Result<Vec<Provision>, StoreError>;

    /// `asker`'s latest bulk inquiries, newest first.
    fn inquiry_jobs(
        &self,
        asker: MunicipalityCode,
        limit: u32,
    ) -> Result<Vec<InquiryJob>, StoreError>;
}

impl<B: Backend> Inquiries for Engine<B> {
    fn inquire(
        &self,
        asker: MunicipalityCode,
        request: &InquiryRequest,
        actor: &Actor,
    ) -> Result<Inquiry, StoreError> {
        if request.source == asker {
            return Err(SAME_MUNICIPALITY.into());
        }
        if request.basis.trim().is_empty() {
            return Err(NO_BASIS.into());
        }
        self.db.transaction(|tx| {
            // The asking municipality must exist; the source need not.
            let code = asker.to_string();
            self.tenant(tx, asker)?;
            let mut heads = self.lock_heads(tx, [asker, request.source])?;
            // The keys are read again after the head is locked (a key rotation's last step
            // takes the same lock).
            let tenant = self.tenant(tx, asker)?;
            let head = heads
                .remove(&asker)
                .ok_or(StoreError::UnknownMunicipality(asker))?;
            let mut run = Run {
                asker,
                tenant,
                held: held_of(tx, asker, &[request.address.as_str()], false)?,
                entries: Entries::after(&code, head),
                inquiries: Vec::new(),
                doses: Vec::new(),
            };
            let input = Ok(request.clone());
            let inquiry = self.ask_in(
                tx,
                &mut heads,
                &mut Ids::default(),
                &mut run,
                None,
                &input,
                actor,
            )?;
            heads.insert(asker, run.finish(tx)?);
            self.store_heads(tx, heads)?;
            Ok(inquiry)
        })
    }

    fn create_inquiry_job(
        &self,
        asker: MunicipalityCode,
        total_rows: u64,
        actor: &Actor,
    ) -> Result<i64, StoreError> {
        self.write(asker, actor, "inquiry.bulk", |tx, _| {
            let id = Ids::default().next(tx, "inquiry_jobs", "job_id", asker)?;
            tx.execute(
                "INSERT INTO inquiry_jobs (municipality_code, job_id, created_by, created_at, \
                 state, total_rows, done_rows) VALUES ($1, $2, $3, $4, 'running', $5, 0)",
                &[
                    asker.to_string().into(),
                    id.into(),
                    actor.user.as_str().into(),
                    self.now().into(),
                    i64::try_from(total_rows).unwrap_or(i64::MAX).into(),
                ],
            )?;
            Ok((id, format!("job:{id} rows:{total_rows}"), Outcome::Ok))
        })
    }

    fn inquire_rows(
        &self,
        asker: MunicipalityCode,
        job: i64,
        rows: &[BulkRow],
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let code = asker.to_string();
        self.db.transaction(|tx| {
            self.tenant(tx, asker)?;
            let mut rows_checked = Vec::with_capacity(rows.len());
            for r in rows {
                let input = match &r.input {
                    Ok(q) if q.source == asker => Err(Malformed {
                        address: Some(q.address.clone()),
                        message: SAME_MUNICIPALITY.to_string(),
                    }),
                    other => other.clone(),
                };
                rows_checked.push((r.row, input));
            }
            let sources = rows_checked
                .iter()
                .filter_map(|(_, i)| i.as_ref().ok().map(|q| q.source));
            let mut heads = self.lock_heads(tx, sources.chain([asker]))?;
            // The keys are read again after the head is locked (a key rotation's last step
            // takes the same lock).
            let tenant = self.tenant(tx, asker)?;
            let head = heads
                .remove(&asker)
                .ok_or(StoreError::UnknownMunicipality(asker))?;
            // The asker's residents among the rows' address numbers, read at once.
            let addresses: Vec<&str> = rows_checked
                .iter()
                .filter_map(|(_, i)| i.as_ref().ok().map(|q| q.address.as_str()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let held = held_of(tx, asker, &addresses, B::KEYS_AS_TABLE)?;
            let mut run = Run {
                asker,
                tenant,
                held,
                entries: Entries::after(&code, head),
                inquiries: Vec::new(),
                doses: Vec::new(),
            };
            let mut ids = Ids::default();
            for (row, input) in &rows_checked {
                self.ask_in(
                    tx,
                    &mut heads,
                    &mut ids,
                    &mut run,
                    Some((job, *row)),
                    input,
                    actor,
                )?;
            }
            heads.insert(asker, run.finish(tx)?);
            self.store_heads(tx, heads)?;
            let done = tx.execute(
                "UPDATE inquiry_jobs SET done_rows = done_rows + $3 \
                 WHERE municipality_code = $1 AND job_id = $2 AND state = 'running'",
                &[
                    code.as_str().into(),
                    job.into(),
                    i64::try_from(rows.len()).unwrap_or(i64::MAX).into(),
                ],
            )?;
            if done == 0 {
                return Err(StoreError::NotFound("inquiry job"));
            }
            Ok(())
        })
    }

    fn finish_inquiry_job(
        &self,
        asker: MunicipalityCode,
        job: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.db.transaction(|tx| {
            tx.execute(
                "UPDATE inquiry_jobs SET state = $3, finished_at = $4, error = $5 \
                 WHERE municipality_code = $1 AND job_id = $2",
                &[
                    asker.to_string().into(),
                    job.into(),
                    if error.is_some() { "failed" } else { "done" }.into(),
                    self.now().into(),
                    error.into(),
                ],
            )?;
            Ok(())
        })
    }

    fn inquiry_job(
        &self,
        asker: MunicipalityCode,
        job: i64,
    ) -> Result<Option<InquiryJob>, StoreError> {
        let code = asker.to_string();
        self.db.transaction(|tx| {
            let Some(r) = tx.query_opt(
                "SELECT job_id, created_by, created_at, state, total_rows, done_rows, \
                 finished_at, error FROM inquiry_jobs WHERE municipality_code = $1 AND job_id = $2",
                &[code.as_str().into(), job.into()],
            )?
            else {
                return Ok(None);
            };
            let mut counts = tx
                .query(
                    "SELECT status, COUNT(*) FROM inquiries WHERE municipality_code = $1 \
                     AND job_id = $2 GROUP BY status ORDER BY status",
                    &[code.as_str().into(), job.into()],
                )?
                .iter()
                .map(|c| {
                    Ok((
                        InquiryStatus::from_code(c.text(0)?)
                            .ok_or(StoreError::Corrupt("inquiry status"))?,
                        count(c.int(1)?),
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            counts.sort();
            Ok(Some(InquiryJob {
                id: r.int(0)?,
                created_by: r.text(1)?.to_owned(),
                created_at: r.int(2)?,
                state: r.text(3)?.to_owned(),
                total_rows: count(r.int(4)?),
                done_rows: count(r.int(5)?),
                finished_at: r.opt_int(6)?,
                error: r.opt_text(7)?.map(str::to_owned),
                counts,
            }))
        })
    }

    fn inquiries(
        &self,
        asker: MunicipalityCode,
        job: Option<i64>,
    ) -> Result<Vec<Inquiry>, StoreError> {
        self.db.transaction(|tx| match job {
            Some(j) => self.inquiries_in(
                tx,
                asker,
                "job_id = $2 ORDER BY row_number, inquiry_id",
                &[j.into()],
            ),
            None => self.inquiries_in(tx, asker, "job_id IS NULL ORDER BY inquiry_id DESC", &[]),
        })
    }

    fn attach_inquiries(
        &self,
        asker: MunicipalityCode,
        ids: &[i64],
        job: Option<i64>,
        actor: &Actor,
    ) -> Result<Attached, StoreError> {
        let code = asker.to_string();
        self.write(asker, actor, "inquiry.attach", |tx, tenant| {
            let keys = tenant.personal(asker)?;
            let mut chosen = match job {
                Some(j) => self.inquiries_in(
                    tx,
                    asker,
                    "job_id = $2 AND status = 'found' AND attached_at IS NULL \
                     ORDER BY row_number, inquiry_id",
                    &[j.into()],
                )?,
                None => Vec::new(),
            };
            for id in ids {
                let mut one = self.inquiries_in(tx, asker, "inquiry_id = $2", &[(*id).into()])?;
                let i = one.pop().ok_or(StoreError::NotFound("inquiry"))?;
                if i.status != InquiryStatus::Found || i.attached_at.is_some() {
                    return Err(StoreError::Conflict(
                        "該当ありで未添付の照会ではありません / not a found inquiry waiting to be attached",
                    ));
                }
                chosen.push(i);
            }
            let catalogue = self.catalogue(tx)?;
            let mut done = Attached::default();
            let now = self.now();
            for i in &chosen {
                let (Some(address), Some(source)) = (&i.address, i.source) else {
                    continue;
                };
                let person = self
                    .read_person(tx, asker, keys, address.as_str())?
                    .ok_or(StoreError::NotFound("person"))?;
                let facts = Facts {
                    birth: person.birth_date.0,
                    deceased_on: person.flags.deceased_on,
                    vouchers: person.vouchers.iter().map(|v| v.number).collect(),
                };
                for provided in &i.doses {
                    let current = current_doses(tx, &code, address.as_str())?;
                    let dose = openvrs_domain::dose::Dose {
                        source: DoseSource::Inquiry,
                        ..provided.dose.clone()
                    };
                    if current.iter().any(|c| same_record(&c.dose, &dose)) {
                        done.unchanged += 1;
                        continue;
                    }
                    let others: Vec<_> = current.iter().map(|c| &c.dose).collect();
                    let findings = quality::check(
                        &facts.subject(),
                        &others,
                        &dose,
                        &catalogue,
                        self.today(),
                    );
                    if quality::blocks(&findings) {
                        return Err(StoreError::Quality(findings));
                    }
                    let id = next_dose_id(tx, &code)?;
                    insert_dose(
                        tx,
                        &code,
                        address.as_str(),
                        &StoredDose {
                            id,
                            version: 1,
                            dose,
                            recorded_at: now,
                            recorded_by: actor.user.clone(),
                        },
                    )?;
                    tx.execute(
                        "INSERT INTO dose_provenance (municipality_code, dose_id, \
                         source_municipality, inquiry_id, source_dose_id, received_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        &[
                            code.as_str().into(),
                            id.into(),
                            source.to_string().into(),
                            i.id.into(),
                            provided.id.into(),
                            i.at.into(),
                        ],
                    )?;
                    done.doses += 1;
                }
                tx.execute(
                    "UPDATE inquiries SET attached_at = $3, attached_by = $4 \
                     WHERE municipality_code = $1 AND inquiry_id = $2",
                    &[
                        code.as_str().into(),
                        i.id.into(),
                        now.into(),
                        actor.user.as_str().into(),
                    ],
                )?;
                done.inquiries += 1;
            }
            let object = format!(
                "inquiries:{} doses:{} unchanged:{}{}",
                done.inquiries,
                done.doses,
                done.unchanged,
                job.map(|j| format!(" job:{j}")).unwrap_or_default()
            );
            Ok((done, object, Outcome::Ok))
        })
    }

    fn inquiry_counts(
        &self,
        asker: MunicipalityCode,
        user: &str,
        my_number: Option<&MyNumber>,
        within: i64,
    ) -> Result<InquiryCounts, StoreError> {
        let code = asker.to_string();
        let since = self.now().saturating_sub(within);
        self.db.transaction(|tx| {
            let one = |tx: &mut dyn Tx, sql: &str, params: &[Value]| -> Result<u64, StoreError> {
                Ok(count(
                    tx.query_opt(sql, params)?
                        .ok_or(StoreError::Corrupt("count"))?
                        .int(0)?,
                ))
            };
            let by_user = one(
                tx,
                "SELECT COUNT(*) FROM inquiries WHERE municipality_code = $1 AND asked_by = $2 \
                 AND at >= $3 AND job_id IS NULL",
                &[code.as_str().into(), user.into(), since.into()],
            )?;
            let by_municipality = one(
                tx,
                "SELECT COUNT(*) FROM inquiries WHERE municipality_code = $1 AND at >= $2 \
                 AND job_id IS NULL",
                &[code.as_str().into(), since.into()],
            )?;
            let sources_for_person = match my_number {
                None => 0,
                Some(n) => {
                    let tenant = self.tenant(tx, asker)?;
                    let index = tenant
                        .personal(asker)?
                        .index(MY_NUMBER_INDEX, n.expose().as_bytes());
                    one(
                        tx,
                        "SELECT COUNT(DISTINCT source_municipality) FROM inquiries \
                         WHERE municipality_code = $1 AND my_number_index = $2 AND at >= $3",
                        &[code.as_str().into(), index.to_vec().into(), since.into()],
                    )?
                }
            };
            Ok(InquiryCounts {
                by_user,
                by_municipality,
                sources_for_person,
            })
        })
    }

    fn provisions(
        &self,
        provider: MunicipalityCode,
        address: Option<&AddressNumber>,
    ) -> Result<Vec<Provision>, StoreError> {
        self.db
            .transaction(|tx| provisions_in(tx, provider, address))
    }

    fn inquiry_jobs(
        &self,
        asker: MunicipalityCode,
        limit: u32,
    ) -> Result<Vec<InquiryJob>, StoreError> {
        let code = asker.to_string();
        let ids = self.db.transaction(|tx| {
            tx.query(
                "SELECT job_id FROM inquiry_jobs WHERE municipality_code = $1 \
                 ORDER BY job_id DESC LIMIT $2",
                &[code.as_str().into(), i64::from(limit).into()],
            )?
            .iter()
            .map(|r| r.int(0))
            .collect::<Result<Vec<_>, _>>()
        })?;
        ids.into_iter()
            .filter_map(|id| self.inquiry_job(asker, id).transpose())
            .collect()
    }
}
