//! `openvrs export ledger`, `import ledger`, `import flags`, `quality report`, and `person ...`:
//! the records of a municipality from the console.

use std::{fs::File, io::Write, path::Path};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use openvrs_csv::{Encoding, LedgerDose, LedgerWriter, RowError, read_flags, read_ledger};
use openvrs_domain::{
    audit::Actor,
    date::{JST, jst_from_micros, micros_from_jst, parse_date},
    ids::{AddressNumber, MunicipalityCode},
    person::FlagChange,
    product::Catalogue,
};
use openvrs_store::{FlagUpdate, LedgerRecord, Store, StoreError};

use crate::import::{open, progress, report_rejected};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportEncoding {
    /// Shift_JIS (CP932), what ledger systems read.
    Sjis,
    /// UTF-8 with a BOM.
    Utf8,
}

#[derive(Debug, Subcommand)]
pub enum ExportCmd {
    /// The immunization ledger layout (予防接種台帳): one row per person with doses, one block per
    /// dose, no My Number.
    Ledger {
        #[arg(long)]
        municipality: String,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        #[arg(long, value_enum, default_value_t = ExportEncoding::Sjis)]
        encoding: ExportEncoding,
    },
}

#[derive(Debug, Subcommand)]
pub enum QualityCmd {
    /// Every data-quality finding over the municipality's doses.
    Report {
        #[arg(long)]
        municipality: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PersonCmd {
    /// Set or clear flags of one person, with the reason.
    Flags(FlagArgs),
    /// Everything held about one person (開示), as JSON or a printable HTML document.
    Disclose {
        #[arg(long)]
        municipality: String,
        #[arg(long)]
        address_number: String,
        #[arg(long, value_enum, default_value_t = DisclosureFormat::Html)]
        format: DisclosureFormat,
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DisclosureFormat {
    Json,
    Html,
}

#[derive(Debug, Args)]
pub struct FlagArgs {
    #[arg(long)]
    municipality: String,
    #[arg(long)]
    address_number: String,
    /// 転出日, or `clear`.
    #[arg(long)]
    moved_out: Option<String>,
    /// 転出先自治体コード.
    #[arg(long)]
    moved_to: Option<String>,
    /// 死亡日, or `clear`.
    #[arg(long)]
    deceased: Option<String>,
    /// 利用停止.
    #[arg(long, conflicts_with = "lift_suspension")]
    suspend: bool,
    /// 利用停止の解除.
    #[arg(long)]
    lift_suspension: bool,
    #[arg(long)]
    reason: String,
}

fn catalogue(store: &dyn Store) -> Result<Catalogue> {
    Ok(Catalogue::new(store.products()?)?)
}

pub fn export_ledger(
    store: &dyn Store,
    m: MunicipalityCode,
    out: Option<&Path>,
    encoding: ExportEncoding,
) -> Result<()> {
    let catalogue = catalogue(store)?;
    let blocks = store
        .stats(m)?
        .doses_by_number
        .last()
        .map_or(2, |(n, _)| (*n).max(2));
    let sink: Box<dyn Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(File::create(path).with_context(
            || {
                format!(
                    "{} を作成できません / cannot create {}",
                    path.display(),
                    path.display()
                )
            },
        )?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let encoding = match encoding {
        ExportEncoding::Sjis => Encoding::ShiftJis,
        ExportEncoding::Utf8 => Encoding::Utf8,
    };
    let mut writer = LedgerWriter::new(sink, encoding, blocks, &catalogue)?;
    let persons = store.export_ledger(m, &Actor::console(), &mut |a, doses| {
        let doses: Vec<LedgerDose> = doses
            .iter()
            .map(|d| LedgerDose {
                dose: d.dose.clone(),
                registered_at: jst_from_micros(d.recorded_at),
            })
            .collect();
        writer
            .write(a, &doses)
            .map_err(|e| StoreError::Sink(e.to_string()))
    })?;
    writer.finish()?;
    eprintln!("書き出しました / exported: {persons} 人 / persons");
    Ok(())
}

/// Two passes: every bad cell of the file first (nothing written), then the store's checks of
/// every row against the records, in one transaction.
pub fn import_ledger(
    store: &dyn Store,
    path: &Path,
    m: MunicipalityCode,
    encoding: Encoding,
) -> Result<()> {
    let catalogue = catalogue(store)?;
    let mut errors = Vec::new();
    let bar = progress(path, "検査 / checking")?;
    for row in read_ledger(bar.wrap_read(open(path)?), encoding, catalogue.clone())? {
        match row {
            Ok(_) => {}
            Err(RowError::Cells(cells)) => errors.extend(cells.iter().map(ToString::to_string)),
            Err(RowError::File(e)) => errors.push(e.to_string()),
        }
    }
    bar.finish_and_clear();
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}");
        }
        bail!(
            "{} 件の誤りがあるため何も取り込んでいません / nothing imported: {} errors",
            errors.len(),
            errors.len()
        );
    }
    let bar = progress(path, "取込 / importing")?;
    let reader = read_ledger(bar.wrap_read(open(path)?), encoding, catalogue)?;
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
    let result = store.import_ledger(m, &mut records, &Actor::console());
    bar.finish_and_clear();
    let s = match result {
        Err(StoreError::Rejected(rows)) => return Err(report_rejected(&rows)),
        other => other?,
    };
    for w in &s.warnings {
        eprintln!("警告 / warning: {w}");
    }
    println!(
        "取り込みました / imported into {m}: {} 行 / rows, 新規 {} 件 / {} new doses, 変更なし {} 件 / {} unchanged, 警告 {} 件 / {} warnings",
        s.rows,
        s.inserted,
        s.inserted,
        s.unchanged,
        s.unchanged,
        s.warnings.len(),
        s.warnings.len()
    );
    Ok(())
}

pub fn import_flags(
    store: &dyn Store,
    path: &Path,
    m: MunicipalityCode,
    encoding: Encoding,
) -> Result<()> {
    let rows = match read_flags(open(path)?, encoding, today()) {
        Ok(rows) => rows,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            bail!(
                "{} 件の誤りがあるため何も取り込んでいません / nothing imported: {} errors",
                errors.len(),
                errors.len()
            );
        }
    };
    let file = path
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    let updates: Vec<FlagUpdate> = rows
        .into_iter()
        .map(|r| FlagUpdate {
            row: r.row,
            address: r.address,
            change: r.change,
            reason: r
                .reason
                .unwrap_or_else(|| format!("CSV一括更新 / flags file {file}")),
        })
        .collect();
    let changed = match store.update_flags(m, &updates, &Actor::console()) {
        Err(StoreError::Rejected(rows)) => return Err(report_rejected(&rows)),
        other => other?,
    };
    println!(
        "更新しました / updated: {} 行中 {changed} 人 / {changed} of {} rows changed",
        updates.len(),
        updates.len()
    );
    Ok(())
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().to_offset(JST).date()
}

pub fn quality_report(store: &dyn Store, m: MunicipalityCode, json: bool) -> Result<()> {
    let lines = store.quality_report(m, &Actor::console())?;
    if json {
        let items: Vec<_> = lines
            .iter()
            .map(|l| {
                serde_json::json!({
                    "address_number": l.address.as_str(),
                    "dose_id": l.dose_id,
                    "dose_number": l.dose_number,
                    "severity": l.finding.severity.code(),
                    "rule": l.finding.rule.code(),
                    "ja": l.finding.rule.ja(),
                    "en": l.finding.rule.en(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    for l in &lines {
        println!(
            "{}\t宛名番号 {}\t{}回目 (dose {})\t{}\t{}",
            l.finding.severity.code(),
            l.address,
            l.dose_number,
            l.dose_id,
            l.finding.rule.code(),
            l.finding
        );
    }
    let errors = lines
        .iter()
        .filter(|l| l.finding.severity == openvrs_domain::quality::Severity::Error)
        .count();
    println!(
        "{m}: 誤り {errors} 件、警告 {} 件 / {errors} errors, {} warnings",
        lines.len() - errors,
        lines.len() - errors
    );
    Ok(())
}

fn date_or_clear(v: &str) -> Result<Option<time::Date>> {
    if matches!(v, "clear" | "解除") {
        return Ok(None);
    }
    Ok(Some(parse_date(v)?))
}

pub fn person(store: &dyn Store, cmd: &PersonCmd) -> Result<()> {
    match cmd {
        PersonCmd::Flags(a) => {
            let m = MunicipalityCode::parse(&a.municipality)?;
            let address = AddressNumber::parse(&a.address_number)?;
            let to = a
                .moved_to
                .as_deref()
                .map(MunicipalityCode::parse_restoring_zero)
                .transpose()?;
            let change = FlagChange {
                moved_out: a
                    .moved_out
                    .as_deref()
                    .map(date_or_clear)
                    .transpose()?
                    .map(|on| on.map(|on| (on, to))),
                deceased_on: a.deceased.as_deref().map(date_or_clear).transpose()?,
                use_suspended: (a.suspend || a.lift_suspension).then_some(a.suspend),
            };
            let actor = Actor::console();
            let Some(person) = store.person(m, &address, &actor)? else {
                bail!("宛名番号が登録されていません / the address number is not registered");
            };
            let flags = change.apply(person.flags);
            if flags == person.flags {
                println!("変更はありません / nothing changed");
            } else {
                store.set_flags(m, &address, flags, &a.reason, &actor)?;
                println!("更新しました / updated");
            }
        }
        PersonCmd::Disclose {
            municipality,
            address_number,
            format,
            out,
        } => {
            let m = MunicipalityCode::parse(municipality)?;
            let address = AddressNumber::parse(address_number)?;
            let Some(d) = store.disclosure(m, &address, &Actor::console())? else {
                bail!("宛名番号が登録されていません / the address number is not registered");
            };
            let catalogue = catalogue(store)?;
            let text = match format {
                DisclosureFormat::Json => {
                    serde_json::to_string_pretty(&crate::disclosure::json(&d, &catalogue))?
                }
                DisclosureFormat::Html => crate::disclosure::html(&d, &catalogue, m),
            };
            write_private(out, text.as_bytes())?;
            println!(
                "書き出しました / written: {} (個人情報を含みます / holds personal data)",
                out.display()
            );
        }
    }
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "{} を作成できません / cannot create {}",
                path.display(),
                path.display()
            )
        })?;
    f.write_all(bytes)?;
    Ok(())
}
