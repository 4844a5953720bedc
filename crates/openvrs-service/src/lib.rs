//! The use cases of openvrs that both the command line and the HTTP API offer: importing and
//! exporting files, and the disclosure document. Each import is all or nothing and reports every
//! bad row; each takes a way to open its input (again, for the imports that check before they
//! write) so that memory does not grow with the file.

use std::io::{Read, Write};

use openvrs_csv::{
    Encoding, LedgerDose, LedgerWriter, RowError, TargetsCheck, read_flags, read_ledger,
    read_targets,
};
use openvrs_domain::{
    audit::{Actor, SecurityEventKind},
    date::{jst_from_micros, micros_from_jst},
    ids::MunicipalityCode,
    product::Catalogue,
};
use openvrs_store::{
    FlagUpdate, LedgerRecord, LedgerSummary, PutSummary, SecurityEvent, Store, StoreError,
};

pub mod accounts;
pub mod application;
pub mod certificate;
pub mod disclosure;
pub mod inquiry;
pub mod opendata;

/// Records a security event for the security officers, stamped with the store's clock; returns
/// it with its id. Details name counts, users and municipalities, never a person.
pub fn security_event(
    store: &dyn Store,
    kind: SecurityEventKind,
    municipality: Option<MunicipalityCode>,
    user: Option<String>,
    client: Option<String>,
    detail: String,
) -> Result<SecurityEvent, StoreError> {
    let event = SecurityEvent {
        id: 0,
        at: store.clock().now().0,
        kind,
        municipality,
        user,
        client,
        detail,
    };
    let id = store.record_security_event(&event)?;
    Ok(SecurityEvent { id, ..event })
}

/// Opens the input again from its start.
pub type Open<'a> = dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + 'a;

/// Why an import or export did not happen. Nothing was written in any case.
#[derive(Debug)]
pub enum Failure {
    /// Every bad row, in words (row, column, reason; 日本語 / English).
    Rows(Vec<String>),
    Store(StoreError),
    /// The file could not be read or written.
    Io(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Rows(rows) => write!(
                f,
                "{} 件の誤りがあるため何も取り込んでいません / nothing imported: {} errors",
                rows.len(),
                rows.len()
            ),
            Failure::Store(e) => e.fmt(f),
            Failure::Io(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for Failure {}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(rows) => {
                Failure::Rows(rows.iter().map(ToString::to_string).collect())
            }
            e => Failure::Store(e),
        }
    }
}

fn io(e: std::io::Error) -> Failure {
    Failure::Io(format!("読み込めません: {e} / cannot read: {e}"))
}

fn file(e: openvrs_csv::FileError) -> Failure {
    Failure::Rows(vec![e.to_string()])
}

/// Doses as the ledger layout holds them (registration time in Japan time).
pub(crate) fn ledger_doses(doses: &[openvrs_store::StoredDose]) -> Vec<LedgerDose> {
    doses
        .iter()
        .map(|d| LedgerDose {
            dose: d.dose.clone(),
            registered_at: jst_from_micros(d.recorded_at),
        })
        .collect()
}

/// The targets-and-vouchers file, in one pass: a reader thread parses and checks every row while
/// the store writes the good ones in one transaction; any bad row (or repeat) anywhere rolls the
/// transaction back, and every problem is reported.
pub fn import_targets(
    store: &dyn Store,
    open: &Open<'_>,
    m: MunicipalityCode,
    encoding: Encoding,
    actor: &Actor,
) -> Result<PutSummary, Failure> {
    let mut reader = read_targets(
        open().map_err(io)?,
        encoding,
        m,
        store.clock().now().today_jst(),
    )
    .map_err(file)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    let checker = std::thread::spawn(move || {
        let mut check = TargetsCheck::default();
        let mut sending = true;
        while let Some(item) = reader.next() {
            match item {
                Ok(p) => {
                    check.person(&p, reader.last_row());
                    // After the first bad row nothing more is written; the rest is only checked.
                    if sending && check.clean() {
                        sending = tx.send(Ok(p)).is_ok();
                    }
                }
                Err(e) => check.error(&e),
            }
        }
        let result = check.finish();
        if result.is_err() {
            // Makes the store roll the transaction back.
            let _ = tx.send(Err(StoreError::Corrupt("the file has bad rows")));
        }
        result
    });
    let written = store.import_persons(m, &mut rx.into_iter(), actor);
    let checked = checker
        .join()
        .map_err(|_| Failure::Io("読み込みが異常終了しました / the reader failed".into()))?;
    checked.map_err(Failure::Rows)?;
    Ok(written?)
}

/// Dose records in the ledger layout: the file's cells first, then the store's rules for every
/// row, in one transaction.
pub fn import_ledger(
    store: &dyn Store,
    open: &Open<'_>,
    m: MunicipalityCode,
    encoding: Encoding,
    actor: &Actor,
) -> Result<LedgerSummary, Failure> {
    let catalogue = Catalogue::new(store.products()?).map_err(StoreError::from)?;
    let mut errors = Vec::new();
    for row in read_ledger(open().map_err(io)?, encoding, catalogue.clone()).map_err(file)? {
        match row {
            Ok(_) => {}
            Err(RowError::Cells(cells)) => errors.extend(cells.iter().map(ToString::to_string)),
            Err(RowError::File(e)) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(Failure::Rows(errors));
    }
    let reader = read_ledger(open().map_err(io)?, encoding, catalogue).map_err(file)?;
    let mut records = reader.map(|r| match r {
        Ok(row) => Ok(LedgerRecord {
            row: row.row,
            address: row.address,
            doses: row
                .doses
                .into_iter()
                .map(|d| (d.dose, d.registered_at.map(micros_from_jst)))
                .collect(),
        }),
        Err(_) => Err(StoreError::Corrupt("the file changed while importing")),
    });
    Ok(store.import_ledger(m, &mut records, actor)?)
}

/// The flags file; rows without a reason get `default_reason`. Returns how many persons changed.
pub fn import_flags(
    store: &dyn Store,
    open: &Open<'_>,
    m: MunicipalityCode,
    encoding: Encoding,
    default_reason: &str,
    actor: &Actor,
) -> Result<u64, Failure> {
    let rows = read_flags(
        open().map_err(io)?,
        encoding,
        store.clock().now().today_jst(),
    )
    .map_err(Failure::Rows)?;
    let updates: Vec<FlagUpdate> = rows
        .into_iter()
        .map(|r| FlagUpdate {
            row: r.row,
            address: r.address,
            change: r.change,
            reason: r.reason.unwrap_or_else(|| default_reason.to_owned()),
        })
        .collect();
    Ok(store.update_flags(m, &updates, actor)?)
}

/// Writes the municipality's ledger; returns the number of persons written.
pub fn export_ledger(
    store: &dyn Store,
    m: MunicipalityCode,
    encoding: Encoding,
    actor: &Actor,
    out: &mut dyn Write,
) -> Result<u64, Failure> {
    let catalogue = Catalogue::new(store.products()?).map_err(StoreError::from)?;
    let blocks = store
        .stats(m)?
        .doses_by_number
        .last()
        .map_or(2, |(n, _)| (*n).max(2));
    let mut writer = LedgerWriter::new(out, encoding, blocks, &catalogue)
        .map_err(|e| Failure::Io(e.to_string()))?;
    let persons = store.export_ledger(m, actor, &mut |a, doses| {
        writer
            .write(a, &ledger_doses(doses))
            .map_err(|e| StoreError::Sink(e.to_string()))
    })?;
    writer.finish().map_err(|e| Failure::Io(e.to_string()))?;
    Ok(persons)
}
