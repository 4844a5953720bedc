//! `openvrs`: the one command that sets up, fills, checks and serves an openvrs installation.
//! The only crate that knows clap.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use openvrs_domain::{audit::Actor, ids::MunicipalityCode};
use openvrs_synth::{Encoding, Generator};

mod backup;
mod bench;
mod card;
mod certificate;
mod channels;
mod config;
mod demo;
mod doctor;
mod import;
mod inquiry;
mod keys;
mod output;
mod records;
mod user;
mod verify;

use config::{DEFAULT_CONFIG, DataDir};

/// Imports allocate a few small values per cell; mimalloc does that faster than the system
/// allocator (about a sixth of an import's time went to malloc and free).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// openvrs: an open vaccination record system for municipalities.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The data directory: config.toml, the master key file and the SQLite database
    /// [default: ./openvrs-data; ./openvrs-demo for `demo`]
    #[arg(long, global = true, env = "OPENVRS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Use PostgreSQL at this postgres:// URL instead of the embedded SQLite database.
    #[arg(
        long,
        global = true,
        env = "OPENVRS_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Log format on standard error: text, or json (one object per line). Level: RUST_LOG.
    #[arg(long, global = true, env = "OPENVRS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum ImportCmd {
    /// A targets-and-vouchers CSV (reference/csv.md). All or nothing: any bad row writes nothing,
    /// and every bad row is listed.
    Targets {
        file: PathBuf,
        #[arg(long)]
        municipality: String,
        #[arg(long, value_enum, default_value_t = ImportEncoding::Auto)]
        encoding: ImportEncoding,
    },
    /// Dose records in the immunization ledger layout (the round trip of `export ledger`).
    /// All or nothing; a dose already recorded the same way is left alone.
    Ledger {
        file: PathBuf,
        #[arg(long)]
        municipality: String,
        #[arg(long, value_enum, default_value_t = ImportEncoding::Auto)]
        encoding: ImportEncoding,
    },
    /// Moved-out, deceased and use-suspended flags (宛名番号, 転出日, 転出先自治体コード, 死亡日,
    /// 利用停止, 理由); an empty cell leaves a flag as it is, 解除/clear removes it.
    Flags {
        file: PathBuf,
        #[arg(long)]
        municipality: String,
        #[arg(long, value_enum, default_value_t = ImportEncoding::Auto)]
        encoding: ImportEncoding,
    },
}

impl ImportEncoding {
    pub(crate) fn csv(self) -> openvrs_csv::Encoding {
        match self {
            ImportEncoding::Auto => openvrs_csv::Encoding::Auto,
            ImportEncoding::Sjis => openvrs_csv::Encoding::ShiftJis,
            ImportEncoding::Utf8 => openvrs_csv::Encoding::Utf8,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ImportEncoding {
    Auto,
    Sjis,
    Utf8,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ZoneArg {
    Lgwan,
    Internet,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the data directory, config, master key and database.
    Init,
    /// Register and list municipalities.
    #[command(subcommand)]
    Municipality(MunicipalityCmd),
    /// Generate synthetic data.
    #[command(subcommand)]
    Gen(GenCmd),
    /// Serve the LGWAN and internet listeners.
    Serve(ServeArgs),
    /// A running system to try: a throw-away data directory with two towns of residents.
    Demo(DemoArgs),
    /// The operation log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Import a file into a municipality.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Export a municipality's records.
    #[command(subcommand)]
    Export(records::ExportCmd),
    /// Inquiries to other municipalities (bulk) and the provision records.
    #[command(subcommand)]
    Inquiry(inquiry::InquiryCmd),
    /// Data-quality checks of dose records.
    #[command(subcommand)]
    Quality(records::QualityCmd),
    /// One person: flags, disclosure.
    #[command(subcommand)]
    Person(records::PersonCmd),
    /// Counts for operators and for checking imports.
    Stats {
        #[arg(long)]
        municipality: String,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the OpenAPI description of a listener's API.
    Openapi {
        #[arg(long, value_enum)]
        zone: ZoneArg,
    },
    /// Accounts (the national administrator's act).
    #[command(subcommand)]
    User(user::UserCmd),
    /// A simulated My Number card (development and tests).
    #[command(subcommand)]
    Card(card::CardCmd),
    /// Vaccination certificates: issue, revoke, list, revocation list.
    #[command(subcommand)]
    Certificate(certificate::CertificateCmd),
    /// The reference resident app: apply for one's own certificate with the card.
    #[command(subcommand)]
    App(channels::AppCmd),
    /// A simulated convenience-store kiosk: apply through the issuance center, print the PDF.
    Kiosk(channels::KioskArgs),
    /// The certificate issuance center (its own process; stores nothing).
    #[command(subcommand)]
    Center(channels::CenterCmd),
    /// The deployment's certificate signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// What a certificate says and whether it verifies: a QR image (PNG, SVG), a
    /// `.smart-health-card` file,
    /// a `shc:/` or `HC1:` text, a JWS or a VDS-NC document. Exit 0 only when every check
    /// passes.
    Verify(verify::VerifyArgs),
    /// Check the deployment: config, keys and their permissions, database and schema, clocks,
    /// TLS and signing certificates and their expiry, audit chains, disk space.
    Doctor,
    /// A consistent, encrypted copy of the database while the server runs (SQLite: the file;
    /// PostgreSQL: pg_dump of one snapshot), with a manifest of what it holds.
    Backup {
        /// The backup file [default: a new file in [backup] dir, keeping the newest `keep`]
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Restore a backup into a new, empty data directory (--data-dir) - a PostgreSQL backup also
    /// into an empty database (--database-url) - checking every municipality's counts and audit
    /// chain against the backup's manifest.
    Restore {
        file: PathBuf,
        /// The master key the backup was made under (else OPENVRS_MASTER_KEY).
        #[arg(long)]
        master_key_file: Option<PathBuf>,
    },
    /// Measure (build with --release).
    #[command(subcommand)]
    Bench(bench::BenchCmd),
}

#[derive(Debug, Subcommand)]
enum MunicipalityCmd {
    /// Register a municipality (its check digit is verified) and create its keys.
    Add {
        /// 6-digit local government code, e.g. 472131
        #[arg(long)]
        code: String,
        /// Name, e.g. うるま市
        #[arg(long)]
        name: String,
    },
    /// List registered municipalities (with whether they issue at kiosks).
    List,
    /// Turn certificate issuance at convenience-store kiosks on or off (audited).
    Kiosk {
        #[arg(long)]
        code: String,
        #[arg(long, value_parser = ["on", "off"])]
        set: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EncodingArg {
    Utf8,
    Sjis,
}

#[derive(Debug, Subcommand)]
enum GenCmd {
    /// Synthetic residents as a targets CSV (reference/csv.md), deterministic for a seed.
    Residents {
        #[arg(long)]
        municipality: String,
        #[arg(long, default_value_t = 1000)]
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = EncodingArg::Utf8)]
        encoding: EncodingArg,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The vaccination histories of the same synthetic residents (same municipality, count and
    /// seed), in the immunization ledger layout.
    Ledger {
        #[arg(long)]
        municipality: String,
        #[arg(long, default_value_t = 1000)]
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = EncodingArg::Utf8)]
        encoding: EncodingArg,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// LGWAN listener address [default: from config]
    #[arg(long)]
    lgwan: Option<SocketAddr>,
    /// Internet listener address [default: from config]
    #[arg(long)]
    internet: Option<SocketAddr>,
    /// Plain HTTP instead of TLS (loopback demos, or behind a TLS-terminating proxy).
    #[arg(long)]
    plain_http: bool,
}

#[derive(Debug, Args)]
struct DemoArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Residents to generate in each town.
    #[arg(long, default_value_t = 3000)]
    residents: u64,
}

#[derive(Debug, Subcommand)]
enum AuditCmd {
    /// Verify a municipality's hash chain; exits non-zero and names the first bad entry.
    Verify {
        #[arg(long)]
        municipality: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCmd {
    /// Print the default configuration, with comments.
    Default,
}

fn municipality(code: &str) -> Result<MunicipalityCode> {
    Ok(MunicipalityCode::parse(code)?)
}

impl Cli {
    fn data_dir(&self, default: &str) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| default.into())
    }

    fn load(&self) -> Result<DataDir> {
        let mut dir = DataDir::load(&self.data_dir("openvrs-data"))?;
        if let Some(url) = &self.database_url {
            dir.config.database.url.clone_from(url);
        }
        Ok(dir)
    }
}

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Init => {
            let path = cli.data_dir("openvrs-data");
            let dir = DataDir::init(&path, cli.database_url.as_deref())?;
            println!(
                "初期化しました / initialised {} ({})",
                path.display(),
                dir.open_store(false)?.backend()
            );
        }
        Command::Municipality(MunicipalityCmd::Add { code, name }) => {
            let code = municipality(code)?;
            cli.load()?
                .open_store(false)?
                .add_municipality(code, name, &Actor::console())?;
            println!(
                "登録しました / registered {code} {name} ({})",
                code.prefecture().name_ja()
            );
        }
        Command::Municipality(MunicipalityCmd::List) => {
            for m in cli.load()?.open_store(false)?.municipalities()? {
                let kiosk = if m.kiosk { "kiosk" } else { "" };
                println!(
                    "{}\t{}\t{}\t{kiosk}",
                    m.code,
                    m.name,
                    m.code.prefecture().name_ja()
                );
            }
        }
        Command::Municipality(MunicipalityCmd::Kiosk { code, set }) => {
            let code = municipality(code)?;
            let on = set == "on";
            cli.load()?
                .open_store(false)?
                .set_kiosk(code, on, &Actor::console())?;
            println!(
                "{code}: コンビニ交付 {} / kiosk issuance {set}",
                if on { "実施" } else { "停止" }
            );
        }
        Command::Gen(cmd) => {
            let (GenCmd::Residents {
                municipality: code,
                count,
                seed,
                encoding,
                out,
            }
            | GenCmd::Ledger {
                municipality: code,
                count,
                seed,
                encoding,
                out,
            }) = cmd;
            let encoding = match encoding {
                EncodingArg::Utf8 => Encoding::Utf8,
                EncodingArg::Sjis => Encoding::ShiftJis,
            };
            let mut generator = Generator::new(municipality(code)?, *seed);
            output::to(out.as_deref(), |sink| {
                match cmd {
                    GenCmd::Residents { .. } => {
                        openvrs_synth::write_targets_csv(&mut generator, *count, encoding, sink)?
                    }
                    GenCmd::Ledger { .. } => {
                        openvrs_synth::write_ledger_csv(&mut generator, *count, encoding, sink)?
                    }
                }
                Ok(())
            })?;
        }
        Command::Serve(args) => {
            let mut dir = cli.load()?;
            dir.config.tls.plain_http |= args.plain_http;
            let store = dir.open_store(false)?;
            demo::serve(&dir, store, args.lgwan, args.internet, None)?;
        }
        Command::Demo(args) => {
            let path = cli.data_dir("openvrs-demo");
            demo::run(&path, cli.database_url.as_deref(), args)?;
        }
        Command::Audit(AuditCmd::Verify { municipality: code }) => {
            let code = municipality(code)?;
            let head = cli.load()?.open_store(false)?.verify_audit(code)?;
            println!(
                "監査ログは正常です / audit log intact: {code}, {} entries, head {}",
                head.seq, head.link
            );
        }
        Command::Config(ConfigCmd::Default) => print!("{DEFAULT_CONFIG}"),
        Command::User(cmd) => user::run(&*cli.load()?.open_store(false)?, cmd)?,
        Command::Bench(cmd) => bench::run(cmd)?,
        Command::Doctor => doctor::run(&cli.load()?)?,
        Command::Backup { out: Some(out) } => backup::backup(&cli.load()?, out)?,
        Command::Backup { out: None } => {
            backup::backup_scheduled(&cli.load()?)?;
        }
        Command::Restore {
            file,
            master_key_file,
        } => backup::restore(
            file,
            &cli.data_dir("openvrs-data"),
            master_key_file.as_deref(),
            cli.database_url.as_deref(),
        )?,
        Command::Verify(args) => verify::run(args)?,
        Command::Card(cmd) => card::run(&cli.load()?, cmd)?,
        Command::App(cmd) => channels::app(cmd)?,
        Command::Kiosk(args) => channels::kiosk(args)?,
        Command::Center(cmd) => channels::center(cmd)?,
        Command::Certificate(cmd) => {
            let dir = cli.load()?;
            certificate::run(&dir, &*dir.open_store(false)?, cmd)?;
        }
        Command::Keys(cmd) => keys::run(&cli.load()?, cmd)?,
        Command::Inquiry(cmd) => inquiry::run(&*cli.load()?.open_store(false)?, cmd)?,
        Command::Import(cmd) => {
            let store = cli.load()?.open_store(false)?;
            match cmd {
                ImportCmd::Targets {
                    file,
                    municipality: code,
                    encoding,
                } => import::targets(&*store, file, municipality(code)?, encoding.csv())?,
                ImportCmd::Ledger {
                    file,
                    municipality: code,
                    encoding,
                } => records::import_ledger(&*store, file, municipality(code)?, encoding.csv())?,
                ImportCmd::Flags {
                    file,
                    municipality: code,
                    encoding,
                } => records::import_flags(&*store, file, municipality(code)?, encoding.csv())?,
            }
        }
        Command::Export(records::ExportCmd::Ledger {
            municipality: code,
            out,
            encoding,
        }) => {
            let store = cli.load()?.open_store(false)?;
            records::export_ledger(&*store, municipality(code)?, out.as_deref(), *encoding)?;
        }
        Command::Quality(records::QualityCmd::Report {
            municipality: code,
            json,
        }) => {
            let store = cli.load()?.open_store(false)?;
            records::quality_report(&*store, municipality(code)?, *json)?;
        }
        Command::Person(cmd) => records::person(&*cli.load()?.open_store(false)?, cmd)?,
        Command::Stats {
            municipality: code,
            json,
        } => {
            let store = cli.load()?.open_store(false)?;
            import::stats(&*store, municipality(code)?, *json)?;
        }
        Command::Openapi { zone } => {
            let zone = match zone {
                ZoneArg::Lgwan => openvrs_server::Zone::Lgwan,
                ZoneArg::Internet => openvrs_server::Zone::Internet,
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&openvrs_server::openapi::document(zone))?
            );
        }
    }
    Ok(())
}

/// How a Unix tool ends when the reader of its output has gone (`openvrs ... | head`): quietly,
/// with the status of a process ended by SIGPIPE (128 + 13).
const BROKEN_PIPE: u8 = 141;

/// Whether an error is the reader of standard output having gone away.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    // `println!` panics when the reader has gone; end as other Unix tools do instead.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info.payload_as_str().unwrap_or_default();
        if text.starts_with("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(i32::from(BROKEN_PIPE));
        }
        report(info);
    }));
    let cli = Cli::parse();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,openvrs_server=info".into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if broken_pipe(&e) => ExitCode::from(BROKEN_PIPE),
        Err(e) => {
            // One line: the error and its causes, Japanese first.
            eprintln!("エラー / error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// For `demo` and tests: whether a data directory is initialised.
/// A test hook: the process dies here, as in a power cut, when `OPENVRS_CRASH_AT` names this
/// point (the crash tests of key rotation use it).
pub(crate) fn crash_point(name: &str) {
    if std::env::var("OPENVRS_CRASH_AT").is_ok_and(|at| at == name) {
        eprintln!("OPENVRS_CRASH_AT={name}: aborting");
        std::process::abort();
    }
}

pub(crate) fn initialised(path: &Path) -> bool {
    path.join(config::CONFIG_FILE).is_file()
}
