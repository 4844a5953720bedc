//! `openvrs verify INPUT`: what a certificate says and whether it verifies, check by check.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use openvrs_cert::{shc, verify};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A file (QR PNG, `.smart-health-card`, text) or the payload itself (`shc:/...`, a JWS).
    pub input: String,
    /// Issuer keys (JWKS) for SMART Health Cards; repeatable.
    #[arg(long)]
    pub jwks: Vec<PathBuf>,
    /// Revocation lists (`crl/<kid>.json`); repeatable.
    #[arg(long)]
    pub crl: Vec<PathBuf>,
    /// Verify as of this time (RFC 3339, e.g. 2026-11-27T09:00:00+09:00) instead of now.
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
    let at = match &args.at {
        Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .context("--at は RFC 3339 の日時です / --at is an RFC 3339 time")?,
        None => time::OffsetDateTime::now_utc(),
    };
    trust.at = at.unix_timestamp() as f64;
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
        for card in &report.cards {
            println!("発行者 / issuer: {}", card.iss);
            for e in card
                .bundle
                .get("entry")
                .and_then(|e| e.as_array())
                .into_iter()
                .flatten()
            {
                let r = &e["resource"];
                match r["resourceType"].as_str() {
                    Some("Patient") => println!(
                        "  氏名 / name: {} {}  生年月日 / born: {}",
                        r["name"][0]["family"].as_str().unwrap_or(""),
                        r["name"][0]["given"]
                            .as_array()
                            .map(|g| g
                                .iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join(" "))
                            .unwrap_or_default(),
                        r["birthDate"].as_str().unwrap_or("")
                    ),
                    Some("Immunization") => println!(
                        "  接種 / dose: {}  CVX {}  lot {}",
                        r["occurrenceDateTime"].as_str().unwrap_or(""),
                        r["vaccineCode"]["coding"][0]["code"].as_str().unwrap_or(""),
                        r["lotNumber"].as_str().unwrap_or("")
                    ),
                    _ => {}
                }
            }
        }
    }
    if !report.passed() {
        bail!("検証に失敗しました / verification failed");
    }
    Ok(())
}
