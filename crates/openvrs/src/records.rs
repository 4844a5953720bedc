//! `openvrs export ledger`, `import ledger`, `import flags`, `quality report`, and `person ...`:
//! the records of a municipality from the console.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use openvrs_csv::Encoding;
use openvrs_domain::{
    audit::Actor,
    date::parse_date,
    ids::{AddressNumber, MunicipalityCode},
    person::FlagChange,
    product::Catalogue,
};
use openvrs_service::disclosure;
use openvrs_store::Store;

use crate::import::{failed, opener};

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

pub fn export_ledger(
    store: &dyn Store,
    m: MunicipalityCode,
    out: Option<&Path>,
    encoding: ExportEncoding,
) -> Result<()> {
    let encoding = match encoding {
        ExportEncoding::Sjis => Encoding::ShiftJis,
        ExportEncoding::Utf8 => Encoding::Utf8,
    };
    let persons = crate::output::to(out, |sink| {
        openvrs_service::export_ledger(store, m, encoding, &Actor::console(), sink)
            .map_err(failed)
            .context("--encoding utf8 で書き出せます / --encoding utf8 writes any text")
    })?;
    eprintln!("書き出しました / exported: {persons} 人 / persons");
    Ok(())
}

pub fn import_ledger(
    store: &dyn Store,
    path: &Path,
    m: MunicipalityCode,
    encoding: Encoding,
) -> Result<()> {
    let s = openvrs_service::import_ledger(store, &opener(path)?, m, encoding, &Actor::console())
        .map_err(failed)?;
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
    let file = path
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    let changed = openvrs_service::import_flags(
        store,
        &opener(path)?,
        m,
        encoding,
        &format!("CSV一括更新 / flags file {file}"),
        &Actor::console(),
    )
    .map_err(failed)?;
    println!("更新しました / updated: {changed} 人 / {changed} persons changed");
    Ok(())
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
            let catalogue = Catalogue::new(store.products()?)?;
            let text = match format {
                DisclosureFormat::Json => {
                    serde_json::to_string_pretty(&disclosure::json(&d, &catalogue))?
                }
                DisclosureFormat::Html => disclosure::html(&d, &catalogue, m, ""),
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

/// Writes a file only its owner can read (replacing it, whole or not at all).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::output::bytes(path, bytes)
}
