//! Inquiries between municipalities as the command line and the API offer them: the guard
//! rails around a single inquiry, the bulk inquiry job (一括照会) and its result file.

use std::io::{Read, Write};

use openvrs_csv::{Encoding, LedgerWriter, read_inquiries};
use openvrs_domain::{
    audit::{Actor, SecurityEventKind},
    ids::{MunicipalityCode, MyNumber},
};
use openvrs_store::{
    BulkRow, Inquiry, InquiryRequest, InquiryStatus, Malformed, Store, StoreError,
};

use crate::Failure;

/// Volumes above which an inquiry is refused or reported (security events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Single inquiries per user in an hour; beyond it they are refused.
    pub per_user_per_hour: u64,
    /// Single inquiries per municipality in an hour; beyond it they are refused.
    pub per_municipality_per_hour: u64,
    /// Distinct municipalities asked about one My Number in a day before it is reported as
    /// fishing (the same person asked of every municipality in turn).
    pub sources_per_person_per_day: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_user_per_hour: 300,
            per_municipality_per_hour: 3_000,
            sources_per_person_per_day: 3,
        }
    }
}

/// Something the security officers should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub kind: SecurityEventKind,
    pub detail: String,
}

/// What the guard rails say before an inquiry: refuse it (with the alert), and what to report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    pub refuse: Option<Alert>,
    pub alerts: Vec<Alert>,
}

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

/// The guard rails for one single inquiry by `actor` of `asker` about `my_number`. Details
/// name counts, users and municipalities, never the person.
fn guard(
    store: &dyn Store,
    asker: MunicipalityCode,
    actor: &Actor,
    my_number: &MyNumber,
    limits: &Limits,
) -> Result<Guard, StoreError> {
    let hour = store.inquiry_counts(asker, &actor.user, None, HOUR)?;
    let day = store.inquiry_counts(asker, &actor.user, Some(my_number), DAY)?;
    let mut g = Guard::default();
    if hour.by_user >= limits.per_user_per_hour {
        g.refuse = Some(Alert {
            kind: SecurityEventKind::InquiryVolume,
            detail: format!(
                "user {} made {} inquiries in an hour (limit {})",
                actor.user, hour.by_user, limits.per_user_per_hour
            ),
        });
    } else if hour.by_municipality >= limits.per_municipality_per_hour {
        g.refuse = Some(Alert {
            kind: SecurityEventKind::InquiryVolume,
            detail: format!(
                "municipality {asker} made {} inquiries in an hour (limit {})",
                hour.by_municipality, limits.per_municipality_per_hour
            ),
        });
    }
    if day.sources_for_person >= limits.sources_per_person_per_day {
        g.alerts.push(Alert {
            kind: SecurityEventKind::InquiryFishing,
            detail: format!(
                "user {} of {asker} asked about one person in {} municipalities within a day",
                actor.user,
                day.sources_for_person + 1
            ),
        });
    }
    Ok(g)
}

/// Why a single inquiry got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the hourly volume of the user or the municipality.
    Volume,
    /// The asker named a 宛名番号 it does not hold.
    NotOwnResident,
}

/// A single inquiry's outcome, and what the security officers must be told (whatever it was).
#[derive(Debug)]
pub struct Asked {
    pub answer: Result<Inquiry, Refusal>,
    pub alerts: Vec<Alert>,
}

/// One single inquiry (照会) by `actor` of `asker`, inside its guard rails: refused over the
/// volume limits, answered otherwise (the answer is recorded by the store, as is a refusal for
/// a person who is not the asker's resident). The page, the API and the console come here.
pub fn ask(
    store: &dyn Store,
    asker: MunicipalityCode,
    request: &InquiryRequest,
    actor: &Actor,
    limits: &Limits,
) -> Result<Asked, StoreError> {
    let guard = guard(store, asker, actor, &request.my_number, limits)?;
    let mut alerts: Vec<Alert> = guard.refuse.iter().cloned().collect();
    alerts.extend(guard.alerts);
    if guard.refuse.is_some() {
        return Ok(Asked {
            answer: Err(Refusal::Volume),
            alerts,
        });
    }
    let answer = store.inquire(asker, request, actor)?;
    if answer.status == InquiryStatus::Refused {
        alerts.extend(refused_alert(asker, actor, 1, 1));
        return Ok(Asked {
            answer: Err(Refusal::NotOwnResident),
            alerts,
        });
    }
    Ok(Asked {
        answer: Ok(answer),
        alerts,
    })
}

/// The security officers' alert for inquiries refused because the asker named a 宛名番号 it
/// does not hold (someone asking about a person who is not their resident), if any were.
pub fn refused_alert(
    asker: MunicipalityCode,
    actor: &Actor,
    refused: u64,
    of: u64,
) -> Option<Alert> {
    (refused > 0).then(|| Alert {
        kind: SecurityEventKind::InquiryNotOwnResident,
        detail: format!(
            "user {} of {asker} named {refused} of {of} address numbers that are not the municipality's residents",
            actor.user
        ),
    })
}

/// How many answers of a job (or of anything counted the same way) were refused.
pub fn refused(counts: &[(InquiryStatus, u64)]) -> u64 {
    counts
        .iter()
        .filter(|(s, _)| *s == InquiryStatus::Refused)
        .map(|(_, n)| n)
        .sum()
}

/// Reads a bulk inquiry file into the store's rows, with the basis for every row.
pub fn read_bulk(
    input: impl Read + Send + 'static,
    encoding: Encoding,
    basis: &str,
) -> Result<Vec<BulkRow>, Failure> {
    let rows = read_inquiries(input, encoding).map_err(|e| Failure::Rows(vec![e.to_string()]))?;
    Ok(rows
        .into_iter()
        .map(|r| BulkRow {
            row: r.row,
            input: match r.input {
                Ok((source, my_number, address)) => Ok(InquiryRequest {
                    source,
                    my_number,
                    address,
                    basis: basis.to_owned(),
                }),
                Err((address, message)) => Err(Malformed { address, message }),
            },
        })
        .collect())
}

/// Rows per transaction of a bulk job.
const CHUNK: usize = 500;

/// Answers every row of a bulk job, a chunk per transaction, calling `progress(done, total)`
/// after each; marks the job done, or failed with the reason. Returns the alert for the security
/// officers if rows named people who are not the asker's residents.
pub fn run_bulk(
    store: &dyn Store,
    asker: MunicipalityCode,
    job: i64,
    rows: &[BulkRow],
    actor: &Actor,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<Alert>, StoreError> {
    let total = rows.len() as u64;
    let mut done = 0;
    for chunk in rows.chunks(CHUNK) {
        if let Err(e) = store.inquire_rows(asker, job, chunk, actor) {
            store.finish_inquiry_job(asker, job, Some(&e.to_string()))?;
            return Err(e);
        }
        done += chunk.len() as u64;
        progress(done, total);
    }
    store.finish_inquiry_job(asker, job, None)?;
    let counts = store
        .inquiry_job(asker, job)?
        .map(|j| j.counts)
        .unwrap_or_default();
    Ok(refused_alert(asker, actor, refused(&counts), total))
}

/// The result of a bulk job: the ledger layout keyed by the asking municipality's 宛名番号,
/// then 照会結果 (該当あり / 該当なし / 利用停止 / 形式エラー), the row of the uploaded file, the
/// source and the reason of a format error. Never a My Number.
pub fn bulk_result(
    store: &dyn Store,
    asker: MunicipalityCode,
    job: i64,
    encoding: Encoding,
    out: &mut dyn Write,
) -> Result<u64, Failure> {
    let catalogue =
        openvrs_domain::product::Catalogue::new(store.products()?).map_err(StoreError::from)?;
    let answers = store.inquiries(asker, Some(job))?;
    let blocks = answers
        .iter()
        .flat_map(|i| i.doses.iter().map(|d| d.dose.number.get()))
        .max()
        .unwrap_or(0)
        .max(2);
    let mut writer = LedgerWriter::with_columns(
        out,
        encoding,
        blocks,
        &catalogue,
        &["照会結果", "行", "照会先自治体コード", "理由"],
    )
    .map_err(|e| Failure::Io(e.to_string()))?;
    for i in &answers {
        let doses = crate::ledger_doses(&i.doses);
        let status = i.status.label().to_owned();
        let row = i.row.map(|r| r.to_string()).unwrap_or_default();
        let source = i.source.map(|s| s.to_string()).unwrap_or_default();
        let why = i.message.clone().unwrap_or_default().replace('\n', " ");
        writer
            .write_row(
                i.address.as_ref().map_or("", |a| a.as_str()),
                &doses,
                &[status, row, source, why],
            )
            .map_err(|e| Failure::Io(e.to_string()))?;
    }
    writer.finish().map_err(|e| Failure::Io(e.to_string()))?;
    Ok(answers.len() as u64)
}

/// Counts per answer, in the order of [`InquiryStatus::ALL`], for messages.
pub fn summary(counts: &[(InquiryStatus, u64)]) -> String {
    InquiryStatus::ALL
        .iter()
        .map(|s| {
            let n = counts.iter().find(|(c, _)| c == s).map_or(0, |(_, n)| *n);
            format!("{} {n}", s.label())
        })
        .collect::<Vec<_>>()
        .join(", ")
}
