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
        for content in &report.content {
            print_content(content);
        }
    }
    if !report.passed() {
        bail!("検証に失敗しました / verification failed");
    }
    Ok(())
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// What a decoded certificate says, in a few lines.
fn print_content(c: &Value) {
    match text(&c["kind"]) {
        "shc" => {
            println!("発行者 / issuer: {}", text(&c["iss"]));
            for e in c["fhirBundle"]["entry"].as_array().into_iter().flatten() {
                let r = &e["resource"];
                match text(&r["resourceType"]) {
                    "Patient" => println!(
                        "  氏名 / name: {} {}  生年月日 / born: {}",
                        text(&r["name"][0]["family"]),
                        r["name"][0]["given"]
                            .as_array()
                            .map(|g| g.iter().map(text).collect::<Vec<_>>().join(" "))
                            .unwrap_or_default(),
                        text(&r["birthDate"])
                    ),
                    "Immunization" => println!(
                        "  接種 / dose: {}  CVX {}  lot {}",
                        text(&r["occurrenceDateTime"]),
                        text(&r["vaccineCode"]["coding"][0]["code"]),
                        text(&r["lotNumber"])
                    ),
                    _ => {}
                }
            }
        }
        "dcc" => {
            let d = &c["dcc"];
            println!("発行国 / issuer: {}", text(&c["iss"]));
            println!(
                "  氏名 / name: {} {}  生年月日 / born: {}",
                text(&d["nam"]["fnt"]),
                text(&d["nam"]["gnt"]),
                text(&d["dob"])
            );
            for v in d["v"].as_array().into_iter().flatten() {
                println!(
                    "  接種 / dose {}/{}: {}  {}  {}",
                    v["dn"],
                    v["sd"],
                    text(&v["dt"]),
                    text(&v["mp"]),
                    text(&v["ci"])
                );
            }
        }
        "vds" => {
            let m = &c["data"]["msg"];
            println!("発行国 / issuer: {}", text(&c["data"]["hdr"]["is"]));
            println!(
                "  氏名 / name: {}  旅券番号 / passport: {}  証明書ID / uvci: {}",
                text(&m["pid"]["n"]),
                text(&m["pid"]["i"]),
                text(&m["uvci"])
            );
            for ve in m["ve"].as_array().into_iter().flatten() {
                for vd in ve["vd"].as_array().into_iter().flatten() {
                    println!(
                        "  接種 / dose {}: {}  {}  lot {}",
                        vd["seq"],
                        text(&vd["dvc"]),
                        text(&ve["nam"]),
                        text(&vd["lot"])
                    );
                }
            }
        }
        _ => {}
    }
}
