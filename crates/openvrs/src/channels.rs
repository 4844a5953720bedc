//! The resident's channels on the command line: `openvrs app request` (the reference resident
//! app), `openvrs kiosk` (a convenience-store kiosk) and `openvrs center ...` (the certificate
//! issuance center, its own process that keeps nothing). Each reads the simulated card with the
//! PIN and has it sign the application; the rules are in `openvrs_service::application`.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use openvrs_cert::pki;
use openvrs_domain::certificate::Kind;
use openvrs_server::{center, http_client};
use openvrs_service::application::{self, Ask};

use crate::{
    card::{open_card, read},
    records::write_private,
};

/// What a resident asks for, as typed at the app or the kiosk.
#[derive(Debug, Args)]
pub struct AskArgs {
    /// The simulated My Number card (`openvrs card new`).
    #[arg(long)]
    card: PathBuf,
    /// The card's 4-digit PIN (three wrong ones lock the card).
    #[arg(long)]
    pin: String,
    /// The municipality whose records to certify (6 digits).
    #[arg(long)]
    municipality: String,
    /// An overseas certificate (needs the passport: --passport or --passport-mrz).
    #[arg(long)]
    overseas: bool,
    /// ROMAN_NAME,NATIONALITY,PASSPORT_NO as in the passport.
    #[arg(long)]
    passport: Option<String>,
    /// A file with the passport's two MRZ lines (check digits are verified).
    #[arg(long, conflicts_with = "passport")]
    passport_mrz: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AppCmd {
    /// Apply for one's own certificate with the card, as the resident app does: writes the
    /// `.smart-health-card` file (and, overseas, the VDS-NC beside it).
    Request {
        /// The system's internet listener, e.g. `https://vrs.example.jp`
        #[arg(long)]
        server: String,
        #[command(flatten)]
        ask: AskArgs,
        /// Extra root certificate (PEM) to trust for the server, e.g. the development CA.
        #[arg(long)]
        server_ca: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct KioskArgs {
    /// The issuance center, e.g. `https://center.example.jp`
    #[arg(long)]
    center: String,
    /// A file with this kiosk's token (else OPENVRS_KIOSK_TOKEN).
    #[arg(long)]
    token_file: Option<PathBuf>,
    #[command(flatten)]
    ask: AskArgs,
    /// Extra root certificate (PEM) to trust for the center.
    #[arg(long)]
    center_ca: Option<PathBuf>,
    /// Where to write the PDF ("print" it).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum CenterCmd {
    /// Run the issuance center. It writes nothing: no files, no database.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8600")]
        listen: SocketAddr,
        /// The system's LGWAN listener, e.g. `https://lgwan.example.jp:8443`
        #[arg(long)]
        system: String,
        /// A file with the center's service token (`openvrs user add --role center`).
        #[arg(long)]
        token_file: PathBuf,
        /// The kiosk registry (`openvrs center kiosk-add`).
        #[arg(long)]
        kiosks: PathBuf,
        /// The card issuer's certificate (PEM).
        #[arg(long)]
        card_issuer: PathBuf,
        /// Extra root certificate (PEM) to trust for the system.
        #[arg(long)]
        system_ca: Option<PathBuf>,
        /// TLS certificate chain and key (PEM) for the center's own listener; without them
        /// it speaks plain HTTP (a dedicated line, or behind a TLS-terminating proxy).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Register a kiosk: appends its line to the registry and prints its token once.
    KioskAdd {
        #[arg(long)]
        kiosks: PathBuf,
        /// A-Z, a-z, 0-9, `-_.`, at most 64.
        #[arg(long)]
        id: String,
    },
}

fn roots(path: Option<&PathBuf>) -> Result<Vec<Vec<u8>>> {
    match path {
        Some(p) => Ok(pki::read_certificates(&read(p)?)?),
        None => Ok(Vec::new()),
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Reads the card with the PIN and has it sign the request.
fn application(a: &AskArgs) -> Result<String> {
    let passport = match (&a.passport, &a.passport_mrz) {
        (Some(p), _) => Some(crate::certificate::passport(p)?),
        (None, Some(f)) => Some(crate::certificate::mrz(f)?),
        (None, None) => None,
    };
    if a.overseas && passport.is_none() {
        bail!(
            "海外用には旅券の情報が必要です(--passport または --passport-mrz) / an overseas certificate needs the passport (--passport or --passport-mrz)"
        );
    }
    let ask = Ask {
        municipality: crate::municipality(&a.municipality)?,
        kind: if a.overseas {
            Kind::Overseas
        } else {
            Kind::Domestic
        },
        passport,
    };
    let (signed, key) = open_card(&a.card, &a.pin)?;
    let request = application::request(&ask, now());
    Ok(openvrs_cert::card::application(&signed, &request, &key)?)
}

fn token(file: Option<&PathBuf>, var: &str) -> Result<String> {
    let token = match file {
        Some(f) => String::from_utf8(read(f)?).context("token")?,
        None => std::env::var(var).with_context(|| {
            format!(
                "トークンがありません(--token-file または {var}) / no token (--token-file or {var})"
            )
        })?,
    };
    Ok(token.trim().to_owned())
}

pub fn app(cmd: &AppCmd) -> Result<()> {
    let AppCmd::Request {
        server,
        ask,
        server_ca,
        out,
    } = cmd;
    let roots = roots(server_ca.as_ref())?;
    let application = application(ask)?;
    for c in http_client::app_certificates(server, &application, &roots)? {
        let path = match c.format.as_str() {
            "shc" => out.clone(),
            _ => out.with_extension("vds.json"),
        };
        write_private(&path, c.payload.as_bytes())?;
        println!(
            "証明書を受け取りました / received certificate {} ({}): {}",
            c.id,
            c.format,
            path.display()
        );
    }
    Ok(())
}

pub fn kiosk(args: &KioskArgs) -> Result<()> {
    let token = token(args.token_file.as_ref(), "OPENVRS_KIOSK_TOKEN")?;
    let roots = roots(args.center_ca.as_ref())?;
    let application = application(&args.ask)?;
    let answer = http_client::kiosk_certificate(&args.center, &token, &application, &roots);
    println!(
        "カードをお取りください / please take your card (マイナンバーカードのお取り忘れにご注意ください)"
    );
    let pdf = answer?;
    crate::output::bytes(&args.out, &pdf)?;
    println!(
        "証明書を印刷しました。証明書のお取り忘れにご注意ください / the certificate is printed: please take it with you ({})",
        args.out.display()
    );
    Ok(())
}

pub fn center(cmd: &CenterCmd) -> Result<()> {
    match cmd {
        CenterCmd::KioskAdd { kiosks, id } => {
            let mut bytes = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
            let token = hex::encode(bytes);
            let line = center::kiosk_line(id, &token);
            // The id is checked as the center will read it.
            center::parse_kiosks(&line).map_err(anyhow::Error::msg)?;
            let mut text = match std::fs::read_to_string(kiosks) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(e).context("kiosks"),
            };
            if center::parse_kiosks(&text)
                .map_err(anyhow::Error::msg)?
                .iter()
                .any(|(k, _)| k == id)
            {
                bail!("端末 {id} は登録済みです / kiosk {id} is registered already");
            }
            text.push_str(&line);
            text.push('\n');
            crate::output::bytes(kiosks, text.as_bytes())?;
            println!("{token}");
            eprintln!(
                "端末 {id} を登録しました。トークンは今回だけ表示されます / registered kiosk {id}; the token is shown this once"
            );
        }
        CenterCmd::Serve {
            listen,
            system,
            token_file,
            kiosks,
            card_issuer,
            system_ca,
            tls_cert,
            tls_key,
        } => {
            let kiosks = String::from_utf8(read(kiosks)?).context("kiosks")?;
            let card_issuers = pki::read_certificates(&read(card_issuer)?)?
                .iter()
                .map(|der| Ok(pki::Certificate::parse(der)?))
                .collect::<Result<Vec<_>>>()?;
            let config = center::CenterConfig {
                system: system.trim_end_matches('/').to_owned(),
                service_token: token(Some(token_file), "")?,
                kiosks: center::parse_kiosks(&kiosks).map_err(anyhow::Error::msg)?,
                card_issuers,
                system_roots: roots(system_ca.as_ref())?,
            };
            let tls = match (tls_cert, tls_key) {
                (Some(c), Some(k)) => Some(openvrs_server::TlsPem {
                    cert_chain: read(c)?,
                    key: read(k)?,
                }),
                _ => None,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("{listen} で待ち受けできません / cannot listen on {listen}"))?;
                let scheme = if tls.is_some() { "https" } else { "http" };
                println!(
                    "center {scheme}://{}/  証明書交付センター(端末 {} 台) / issuance center ({} kiosks)",
                    listener.local_addr()?,
                    config.kiosks.len(),
                    config.kiosks.len()
                );
                println!("停止するには Ctrl-C / press Ctrl-C to stop");
                center::serve(listener, config, tls, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
                Ok::<_, anyhow::Error>(())
            })?;
        }
    }
    Ok(())
}
