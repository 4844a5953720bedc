//! `openvrs verify INPUT`: what a certificate says and whether it verifies, check by check.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use openvrs_cert::{pki, shc, verify};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A file (QR PNG or SVG, `.smart-health-card`, text) or the payload itself (`shc:/...`,
    /// `HC1:...`, a JWS, a VDS-NC document).
    pub input: String,
    /// Issuer keys (JWKS) for SMART Health Cards; repeatable.
    #[arg(long)]
    pub jwks: Vec<PathBuf>,
    /// Revocation lists (`crl/<kid>.json`); repeatable.
    #[arg(long)]
    pub crl: Vec<PathBuf>,
    /// Trusted certificates, PEM or DER: CSCAs for VDS-NC, signer certificates for EU DCC;
    /// repeatable.
    #[arg(long)]
    pub trust: Vec<PathBuf>,
    /// Verify as of this time (ISO 8601 with an offset, e.g. 2026-11-27T09:00:00+09:00 or the
    /// EU test data's 2021-06-09T15:15:34+0200) instead of now.
    #[arg(long)]
    pub at: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

fn read(path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| {
        format!(
            "{} を読めません / cannot read {}",
            path.display(),
            path.display()
        )
    })
}

pub fn run(args: &VerifyArgs) -> Result<()> {
    let input = match std::fs::read(&args.input) {
        Ok(bytes) => bytes,
        Err(_) if !std::path::Path::new(&args.input).exists() => args.input.as_bytes().to_vec(),
        Err(e) => bail!(
            "{} を読めません / cannot read {}: {e}",
            args.input,
            args.input
        ),
    };
    let mut trust = verify::Trust::default();
    for path in &args.jwks {
        trust
            .jwks
            .extend(shc::parse_jwks(&read(path)?).with_context(|| path.display().to_string())?);
    }
    for path in &args.crl {
        trust
            .crls
            .push(shc::Crl::parse(&read(path)?).with_context(|| path.display().to_string())?);
    }
    for path in &args.trust {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "{} を読めません / cannot read {}",
                path.display(),
                path.display()
            )
        })?;
        for der in pki::read_certificates(&bytes).with_context(|| path.display().to_string())? {
            trust
                .certificates
                .push(pki::Certificate::parse(&der).with_context(|| path.display().to_string())?);
        }
    }
    trust.at = match &args.at {
        Some(t) => openvrs_domain::date::parse_instant(t).context(
            "--at は時差つきの ISO 8601 日時です(例 2026-11-27T09:00:00+09:00、2021-06-09T15:15:34+0200) / --at is an ISO 8601 time with its offset (e.g. 2026-11-27T09:00:00+09:00, 2021-06-09T15:15:34+0200)",
        )?,
        None => time::OffsetDateTime::now_utc().unix_timestamp(),
    } as f64;
    let report = verify::verify(&input, &trust);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        println!("形式 / format: {}", report.format);
        for c in &report.checks {
            println!(
                "  [{}] {:<10} {}",
                if c.ok { "OK" } else { "NG" },
                c.name,
                c.detail
            );
        }
        for content in &report.content {
            print_content(content);
        }
    }
    if !report.passed() {
        bail!("検証に失敗しました / verification failed");
    }
    Ok(())
}

/// What a decoded certificate says, in a few lines.
fn print_content(c: &Value) {
    let Some(s) = verify::summary(c) else {
        return;
    };
    println!("発行者 / issuer: {} ({})", s.issuer, s.kind);
    println!(
        "  氏名 / name: {}  生年月日 / born: {}",
        s.name, s.birth_date
    );
    if c["kind"] == "vds" {
        println!(
            "  旅券番号 / passport: {}  証明書ID / uvci: {}",
            c["data"]["msg"]["pid"]["i"].as_str().unwrap_or_default(),
            c["data"]["msg"]["uvci"].as_str().unwrap_or_default()
        );
    }
    for d in &s.doses {
        println!(
            "  接種 / dose {}: {}  {}  lot {}  {}",
            d.dose.as_deref().unwrap_or("-"),
            d.date,
            d.product,
            d.lot,
            d.by
        );
    }
}
