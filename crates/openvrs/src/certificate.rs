//! `openvrs certificate ...`: issue a certificate for a registered person, revoke one, list a
//! municipality's, print a revocation list.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use openvrs_domain::{
    audit::Actor,
    certificate::{Channel, Format, Kind, Passport},
    date::jst_from_micros,
    ids::AddressNumber,
};
use openvrs_service::certificate::{self as certs, Issuer, Request, Signers};
use openvrs_store::Store;

use crate::config::DataDir;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Domestic,
    Overseas,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// `.smart-health-card` file.
    Shc,
    /// ICAO VDS-NC JSON.
    Vds,
    /// EU DCC `HC1:` text.
    Dcc,
    /// The paper certificate (A4 PDF, Japanese and English, with the QR codes).
    Pdf,
}

#[derive(Debug, Subcommand)]
pub enum CertificateCmd {
    /// Issue a certificate for a registered person (recorded and audited).
    Issue {
        #[arg(long)]
        municipality: String,
        /// 宛名番号.
        #[arg(long)]
        address_number: String,
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Overseas: `ROMAN_NAME,NATIONALITY,PASSPORT_NO`, e.g. `TANAKA HANAKO,JPN,TR1234567`.
        #[arg(long, conflicts_with = "passport_mrz")]
        passport: Option<String>,
        /// Overseas: a file with the passport's two MRZ lines (TD3); check digits are verified.
        #[arg(long)]
        passport_mrz: Option<PathBuf>,
        #[arg(long, value_enum)]
        format: FormatArg,
        #[arg(long)]
        out: PathBuf,
        /// Also write the QR image of the payload (PNG).
        #[arg(long)]
        qr_png: Option<PathBuf>,
    },
    /// Revoke a certificate by its id.
    Revoke {
        #[arg(long)]
        municipality: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// The certificates a municipality issued (one person's, with --address-number).
    List {
        #[arg(long)]
        municipality: String,
        #[arg(long)]
        address_number: Option<String>,
    },
    /// The revocation list of a SMART Health Card key (`crl/<kid>.json`; the active key by
    /// default).
    Crl {
        #[arg(long)]
        kid: Option<String>,
    },
}

pub(crate) fn passport(text: &str) -> Result<Passport> {
    let parts: Vec<&str> = text.split(',').collect();
    let [name, nationality, number] = parts.as_slice() else {
        bail!(
            "--passport は「ローマ字氏名,国籍,旅券番号」です / --passport is ROMAN_NAME,NATIONALITY,PASSPORT_NO"
        );
    };
    Ok(Passport::parse(name, nationality, number)?)
}

pub(crate) fn mrz(path: &PathBuf) -> Result<Passport> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "{} を読めません / cannot read {}",
            path.display(),
            path.display()
        )
    })?;
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let [l1, l2] = lines.as_slice() else {
        bail!("MRZ は2行です / the MRZ is two lines");
    };
    Ok(Passport::from_mrz(l1, l2)?)
}

fn write(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    crate::output::bytes(path, bytes)
}

pub fn run(dir: &DataDir, store: &dyn Store, cmd: &CertificateCmd) -> Result<()> {
    let actor = Actor::console();
    match cmd {
        CertificateCmd::Issue {
            municipality,
            address_number,
            kind,
            passport: pass,
            passport_mrz,
            format,
            out,
            qr_png,
        } => {
            let m = crate::municipality(municipality)?;
            let c = &dir.config.certificates;
            let issuer = Issuer::new(&c.issuer, &c.authority)?;
            let request = Request {
                address: AddressNumber::parse(address_number)?,
                kind: match kind {
                    KindArg::Domestic => Kind::Domestic,
                    KindArg::Overseas => Kind::Overseas,
                },
                format: match format {
                    FormatArg::Shc => Format::Shc,
                    FormatArg::Vds => Format::Vds,
                    FormatArg::Dcc => Format::Dcc,
                    FormatArg::Pdf => Format::Pdf,
                },
                passport: match (pass, passport_mrz) {
                    (Some(p), _) => Some(passport(p)?),
                    (None, Some(file)) => Some(mrz(file)?),
                    (None, None) => None,
                },
                channel: Channel::Console,
                application: None,
            };
            let signers = Signers::load(store)?;
            let issued = certs::issue(store, &signers, &issuer, m, &request, &actor)?;
            write(out, &issued.payload)?;
            if let Some(path) = qr_png {
                write(path, &issued.qr_png()?)?;
            }
            println!(
                "発行しました / issued: certificate {} ({}, {}) -> {}",
                issued.record.id,
                issued.record.kind.code(),
                issued.record.format.code(),
                out.display()
            );
        }
        CertificateCmd::Revoke {
            municipality,
            id,
            reason,
        } => {
            let m = crate::municipality(municipality)?;
            let r = store.revoke_certificate(m, id, reason, &actor)?;
            println!(
                "失効させました / revoked: certificate {}{}",
                r.id,
                if r.rid.is_some() {
                    " (失効リストに掲載 / listed in the revocation list)"
                } else {
                    ""
                }
            );
        }
        CertificateCmd::List {
            municipality,
            address_number,
        } => {
            let m = crate::municipality(municipality)?;
            let address = address_number
                .as_deref()
                .map(AddressNumber::parse)
                .transpose()?;
            println!("証明書ID\t宛名番号\t種類\t形式\t経路\t発行日時\t失効日時");
            for c in store.certificates(m, address.as_ref())? {
                let at = |t: i64| {
                    jst_from_micros(t)
                        .map(|t| t.to_string())
                        .unwrap_or_default()
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    c.id,
                    c.address_number,
                    c.kind.code(),
                    c.format.code(),
                    c.channel.code(),
                    at(c.issued_at),
                    c.revoked_at.map(at).unwrap_or_default()
                );
            }
        }
        CertificateCmd::Crl { kid } => {
            let kid = match kid {
                Some(k) => k.clone(),
                None => store
                    .active_signing_key(certs::SHC)?
                    .map(|(kid, _)| kid)
                    .context("署名鍵がありません(openvrs keys init) / no signing key (openvrs keys init)")?,
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&certs::crl(store, &kid)?.to_json())?
            );
        }
    }
    Ok(())
}
