//! Configuration in layers: defaults, then `config.toml` in the data directory, then `OPENVRS_*`
//! environment variables, then command-line flags (applied by the caller).

use std::{
    fs,
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use openvrs_crypto::MasterKey;
use openvrs_store::Location;
use serde::Deserialize;

pub const CONFIG_FILE: &str = "config.toml";
pub const SQLITE_FILE: &str = "openvrs.sqlite";

/// The default configuration, with comments; `openvrs config default` prints it and `init`
/// writes it.
pub const DEFAULT_CONFIG: &str = r#"# openvrs configuration. Every value here can be overridden by an environment variable
# (named beside it) and by a command-line flag.

[server]
# The LGWAN listener: staff, national, prefectural and inter-municipality functions.
# OPENVRS_LGWAN_ADDR, --lgwan
lgwan = "127.0.0.1:8081"
# The internet listener: venue tablets, the resident app, public keys, verification, open data.
# OPENVRS_INTERNET_ADDR, --internet
internet = "127.0.0.1:8080"
# Prometheus metrics (GET /metrics, plain HTTP) for a scraper on the LGWAN side, e.g.
# "127.0.0.1:9464"; empty: none. No personal data and no per-municipality counts in them.
# OPENVRS_METRICS_ADDR
metrics = ""

[database]
# Empty: the embedded SQLite database "openvrs.sqlite" in the data directory.
# A PostgreSQL URL instead, e.g. "postgres://openvrs@127.0.0.1:5432/openvrs". Over a network,
# encrypt and check the server as libpq does: "...?sslmode=verify-full&sslrootcert=/etc/openvrs/db-ca.pem"
# (also sslmode=require, verify-ca). OPENVRS_DATABASE_URL, --database-url
url = ""
# Connections to PostgreSQL this process opens at most (when all are busy, a request waits a
# few seconds, then is answered 503).
max_connections = 32

[tls]
# Both listeners speak TLS with this certificate chain and private key (PEM), relative to the
# data directory. `openvrs init` creates a development CA (tls/dev-ca.pem: give it to clients
# to trust) and a certificate for localhost signed by it; replace them with your own.
cert_file = "tls/server.pem"
key_file = "tls/server.key"
# Serve plain HTTP instead: only on loopback for a demo, or behind a TLS-terminating proxy.
# OPENVRS_PLAIN_HTTP=1, --plain-http
plain_http = false

[notify]
# Security events (failed sign-ins, lockouts, cross-municipality or wrong-zone access, unusual
# volumes) are stored, logged, and POSTed as JSON to this URL, retried with back-off. Empty: not
# sent. OPENVRS_WEBHOOK_URL
webhook_url = ""

[security]
# Sign-in: this many failures within the window lock an account until the window has passed.
lockout_failures = 5
lockout_minutes = 15
# Sessions end after this long unused, and this long after sign-in whatever happens.
idle_minutes = 30
absolute_hours = 12
# Requests per minute, per client address and per account, before 429 and a security event.
requests_per_client_per_minute = 1200
requests_per_account_per_minute = 1200
# Malformed or oversized requests per minute from one address before a security event.
malformed_per_minute = 20
# Distinct persons one account may read in an hour before a security event.
persons_per_hour = 500
# Seconds a device token's account is kept in memory (0: read it on every request). Disabling an
# account through this server ends its token at once; through another process, within this time.
token_cache_seconds = 5
# Inquiries to other municipalities: single inquiries per user and per municipality in an hour
# before they are refused (429 and a security event), and municipalities asked about one person
# in a day before a security event (fishing).
inquiries_per_user_per_hour = 300
inquiries_per_municipality_per_hour = 3000
inquiry_sources_per_person_per_day = 3

[certificates]
# The SMART Health Card issuer (`iss`): https, no trailing "/". Verifiers fetch
# <issuer>/.well-known/jwks.json, so it must be where the internet listener is reachable.
issuer = "https://localhost:8080/issuer"
# Named as the performer of every dose and as the administering authority in the seals (Japan's
# certificates said "MHLW_Gov_of_JAPAN").
authority = "openvrs"

[cards]
# The My Number card issuer's certificate (PEM), relative to the data directory: card data is
# trusted only when its signature verifies with it. `openvrs card issuer-init` makes a test issuer
# here for development; put the real issuer's certificate in its place in production.
issuer_certificate = "card-issuer.pem"

[opendata]
# The open data (internet listener, /opendata/latest/prefecture.ndjson, summary_by_date.csv,
# summary_by_prefecture.csv, and per day /opendata/YYYY-MM-DD/...): counts below this many are
# not published (a small count in a small town can point at someone). 0: every count.
suppress_below = 0

[backup]
# Scheduled backups: while `openvrs serve` runs, an encrypted backup (see `openvrs backup`) is
# written into this directory (relative to the data directory) every `every_hours`, the first at
# once if none is that recent, and only the newest `keep` are kept. `openvrs backup` without
# --out writes one there too. Empty: none. Copy them to another machine as well.
dir = ""
every_hours = 24
keep = 14

[keys]
# The master key (64 hexadecimal digits) that wraps every municipality's keys: a file, relative
# to the data directory, readable by its owner only (mode 0600). `openvrs init` creates it.
# OPENVRS_MASTER_KEY (the 64 digits themselves) overrides the file.
master_key_file = "master.key"
"#;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub database: Database,
    /// Absent in data directories made before TLS existed: the defaults apply.
    #[serde(default)]
    pub tls: Tls,
    #[serde(default)]
    pub notify: Notify,
    #[serde(default)]
    pub security: Security,
    #[serde(default)]
    pub certificates: Certificates,
    #[serde(default)]
    pub cards: Cards,
    #[serde(default)]
    pub opendata: OpenData,
    #[serde(default)]
    pub backup: Backup,
    pub keys: Keys,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct OpenData {
    pub suppress_below: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Backup {
    /// Relative to the data directory; empty: no scheduled backups.
    pub dir: PathBuf,
    pub every_hours: u32,
    pub keep: u32,
}

impl Default for Backup {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            every_hours: 24,
            keep: 14,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Cards {
    /// The card issuer's certificate (PEM), relative to the data directory.
    pub issuer_certificate: PathBuf,
}

impl Default for Cards {
    fn default() -> Self {
        Self {
            issuer_certificate: "card-issuer.pem".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Certificates {
    pub issuer: String,
    pub authority: String,
}

impl Default for Certificates {
    fn default() -> Self {
        Self {
            issuer: "https://localhost:8080/issuer".into(),
            authority: "openvrs".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    pub lockout_failures: u64,
    pub lockout_minutes: u32,
    pub idle_minutes: u32,
    pub absolute_hours: u32,
    pub requests_per_client_per_minute: u64,
    pub requests_per_account_per_minute: u64,
    pub malformed_per_minute: u64,
    pub persons_per_hour: usize,
    pub token_cache_seconds: u32,
    pub inquiries_per_user_per_hour: u64,
    pub inquiries_per_municipality_per_hour: u64,
    pub inquiry_sources_per_person_per_day: u64,
}

/// The server's defaults, in the units of the config file (the one place they are set is
/// `openvrs_server::SecurityConfig::default`; a test checks the config text agrees).
impl Default for Security {
    fn default() -> Self {
        let s = openvrs_server::SecurityConfig::default();
        let minutes = |micros: i64| u32::try_from(micros / MINUTE).unwrap_or(u32::MAX);
        Self {
            lockout_failures: s.lockout_failures,
            lockout_minutes: minutes(s.lockout_window),
            idle_minutes: minutes(s.idle_timeout),
            absolute_hours: minutes(s.absolute_timeout) / 60,
            requests_per_client_per_minute: s.requests_per_client,
            requests_per_account_per_minute: s.requests_per_account,
            malformed_per_minute: s.malformed_per_client,
            persons_per_hour: s.persons_per_hour,
            token_cache_seconds: u32::try_from(s.token_cache / 1_000_000).unwrap_or(u32::MAX),
            inquiries_per_user_per_hour: s.inquiry.per_user_per_hour,
            inquiries_per_municipality_per_hour: s.inquiry.per_municipality_per_hour,
            inquiry_sources_per_person_per_day: s.inquiry.sources_per_person_per_day,
        }
    }
}

const MINUTE: i64 = 60_000_000;

impl Security {
    /// The server's form of these settings.
    pub fn server(&self, secure_cookies: bool) -> openvrs_server::SecurityConfig {
        openvrs_server::SecurityConfig {
            idle_timeout: i64::from(self.idle_minutes) * MINUTE,
            absolute_timeout: i64::from(self.absolute_hours) * 60 * MINUTE,
            lockout_failures: self.lockout_failures,
            lockout_window: i64::from(self.lockout_minutes) * MINUTE,
            secure_cookies,
            requests_per_client: self.requests_per_client_per_minute,
            requests_per_account: self.requests_per_account_per_minute,
            malformed_per_client: self.malformed_per_minute,
            persons_per_hour: self.persons_per_hour,
            token_cache: i64::from(self.token_cache_seconds) * 1_000_000,
            inquiry: openvrs_service::inquiry::Limits {
                per_user_per_hour: self.inquiries_per_user_per_hour,
                per_municipality_per_hour: self.inquiries_per_municipality_per_hour,
                sources_per_person_per_day: self.inquiry_sources_per_person_per_day,
            },
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    #[serde(default)]
    pub webhook_url: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    #[serde(default)]
    pub plain_http: bool,
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            cert_file: "tls/server.pem".into(),
            key_file: "tls/server.key".into(),
            plain_http: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub lgwan: SocketAddr,
    pub internet: SocketAddr,
    /// Empty: no metrics listener.
    #[serde(default)]
    pub metrics: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub url: String,
    /// Connections to PostgreSQL a process opens at most; when all are busy a request waits
    /// a few seconds, then is answered 503.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_max_connections() -> usize {
    openvrs_store::DEFAULT_MAX_CONNECTIONS
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    pub master_key_file: PathBuf,
}

impl Config {
    pub fn default_config() -> Self {
        toml::from_str(DEFAULT_CONFIG).expect("the default config parses")
    }

    /// Reads a config file's text section by section, so that one wrong section does not hide
    /// the others: every error goes to `errors`, and a wrong or missing section is the default.
    fn parse(text: &str, errors: &mut Vec<String>) -> Self {
        let mut config = Self::default_config();
        let table: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!(
                    "TOML として読めません / not valid TOML: {}",
                    e.message()
                ));
                return config;
            }
        };
        fn section<T: serde::de::DeserializeOwned>(
            table: &toml::Table,
            name: &str,
            slot: &mut T,
            errors: &mut Vec<String>,
        ) {
            if let Some(value) = table.get(name) {
                match value.clone().try_into() {
                    Ok(v) => *slot = v,
                    Err(e) => errors.push(format!(
                        "[{name}] の値が不正です / [{name}] is invalid: {}",
                        e.message().trim()
                    )),
                }
            }
        }
        section(&table, "server", &mut config.server, errors);
        section(&table, "database", &mut config.database, errors);
        section(&table, "tls", &mut config.tls, errors);
        section(&table, "notify", &mut config.notify, errors);
        section(&table, "security", &mut config.security, errors);
        section(&table, "certificates", &mut config.certificates, errors);
        section(&table, "cards", &mut config.cards, errors);
        section(&table, "opendata", &mut config.opendata, errors);
        section(&table, "backup", &mut config.backup, errors);
        section(&table, "keys", &mut config.keys, errors);
        const SECTIONS: [&str; 10] = [
            "server",
            "database",
            "tls",
            "notify",
            "security",
            "certificates",
            "cards",
            "opendata",
            "backup",
            "keys",
        ];
        for name in table.keys().filter(|k| !SECTIONS.contains(&k.as_str())) {
            errors.push(format!("不明な節 [{name}] / unknown section [{name}]"));
        }
        config
    }

    /// What is wrong with values that parse: each a line, Japanese then English.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let url = &self.database.url;
        if !url.is_empty() && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            out.push(
                "[database] url は postgres:// で始めてください / [database] url must start with postgres://"
                    .to_owned(),
            );
        }
        let metrics = &self.server.metrics;
        if !metrics.is_empty() && metrics.parse::<SocketAddr>().is_err() {
            out.push(format!(
                "[server] metrics のアドレスが不正です / [server] metrics is not an address: {metrics}"
            ));
        }
        let issuer = &self.certificates.issuer;
        if !issuer.starts_with("https://") || issuer.ends_with('/') {
            out.push(format!(
                "[certificates] issuer は https:// で始まり / で終わらない URL です / [certificates] issuer must be an https URL without a trailing /: {issuer}"
            ));
        }
        let hook = &self.notify.webhook_url;
        if !hook.is_empty() && !hook.starts_with("https://") && !hook.starts_with("http://") {
            out.push(format!(
                "[notify] webhook_url は http(s) の URL です / [notify] webhook_url must be an http(s) URL: {hook}"
            ));
        }
        let s = &self.security;
        for (name, value) in [
            ("lockout_failures", s.lockout_failures),
            ("lockout_minutes", u64::from(s.lockout_minutes)),
            ("idle_minutes", u64::from(s.idle_minutes)),
            ("absolute_hours", u64::from(s.absolute_hours)),
            (
                "requests_per_client_per_minute",
                s.requests_per_client_per_minute,
            ),
            (
                "requests_per_account_per_minute",
                s.requests_per_account_per_minute,
            ),
            ("persons_per_hour", s.persons_per_hour as u64),
            ("inquiries_per_user_per_hour", s.inquiries_per_user_per_hour),
        ] {
            if value == 0 {
                out.push(format!(
                    "[security] {name} は1以上にしてください / [security] {name} must be at least 1"
                ));
            }
        }
        if self.backup.every_hours == 0 || self.backup.keep == 0 {
            out.push(
                "[backup] every_hours と keep は1以上にしてください / [backup] every_hours and keep must be at least 1"
                    .to_owned(),
            );
        }
        out
    }
}

/// A data directory: config, master key file and (by default) the SQLite database.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub path: PathBuf,
    pub config: Config,
}

/// An environment variable that is set and not empty.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl DataDir {
    /// Loads an initialised data directory and applies the environment layer.
    pub fn load(path: &Path) -> Result<Self> {
        let file = path.join(CONFIG_FILE);
        if !file.is_file() {
            bail!(
                "データディレクトリ {} は初期化されていません(`openvrs init` を実行してください) / data directory {} is not initialised (run `openvrs init`)",
                path.display(),
                path.display()
            );
        }
        let text = fs::read_to_string(&file).with_context(|| {
            format!(
                "{} を読めません / cannot read {}",
                file.display(),
                file.display()
            )
        })?;
        let mut errors = Vec::new();
        let mut config = Config::parse(&text, &mut errors);
        if let Some(url) = env("OPENVRS_DATABASE_URL") {
            config.database.url = url;
        }
        if let Some(url) = env("OPENVRS_WEBHOOK_URL") {
            config.notify.webhook_url = url;
        }
        if let Some(v) = env("OPENVRS_METRICS_ADDR") {
            config.server.metrics = v;
        }
        if let Some(v) = env("OPENVRS_PLAIN_HTTP") {
            config.tls.plain_http = matches!(v.as_str(), "1" | "true" | "yes");
        }
        for (var, slot) in [
            ("OPENVRS_LGWAN_ADDR", &mut config.server.lgwan),
            ("OPENVRS_INTERNET_ADDR", &mut config.server.internet),
        ] {
            if let Some(v) = env(var) {
                match v.parse() {
                    Ok(addr) => *slot = addr,
                    Err(_) => errors.push(format!(
                        "{var} のアドレスが不正です / {var} is not an address: {v}"
                    )),
                }
            }
        }
        errors.extend(config.problems());
        match errors.as_slice() {
            [] => {}
            [one] => bail!(
                "設定の誤り / configuration error ({}): {one}",
                file.display()
            ),
            many => bail!(
                "設定に {n} 件の誤りがあります / the configuration has {n} errors ({}):\n{}",
                file.display(),
                many.iter()
                    .map(|e| format!("  - {e}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                n = many.len(),
            ),
        }
        Ok(Self {
            path: path.to_owned(),
            config,
        })
    }

    /// Creates a data directory: config, master key (0600) and database. Refuses to touch one
    /// that is already initialised.
    pub fn init(path: &Path, database_url: Option<&str>) -> Result<Self> {
        Self::init_files(path, database_url, None)?;
        let dir = Self::load(path)?;
        dir.open_store(true)?;
        Ok(dir)
    }

    /// A data directory's files without its database: config, master key (`master`, or a new
    /// one unless `OPENVRS_MASTER_KEY` is set), development TLS. `restore` fills in the rest.
    pub fn init_files(
        path: &Path,
        database_url: Option<&str>,
        master: Option<&MasterKey>,
    ) -> Result<()> {
        if path.join(CONFIG_FILE).exists() {
            bail!(
                "{} は初期化済みです / {} is already initialised",
                path.display(),
                path.display()
            );
        }
        fs::create_dir_all(path).with_context(|| {
            format!(
                "{} を作成できません / cannot create {}",
                path.display(),
                path.display()
            )
        })?;
        let key_path = path.join(&Config::default_config().keys.master_key_file);
        match master {
            Some(key) => write_private(&key_path, key.to_hex().as_bytes())?,
            None if env("OPENVRS_MASTER_KEY").is_none() => {
                write_private(&key_path, MasterKey::generate().to_hex().as_bytes())?;
            }
            None => {}
        }
        let text = match database_url {
            Some(url) => DEFAULT_CONFIG.replacen(
                "url = \"\"",
                &format!("url = {}", toml::Value::String(url.to_owned())),
                1,
            ),
            None => DEFAULT_CONFIG.to_owned(),
        };
        fs::write(path.join(CONFIG_FILE), text)?;
        let tls = Tls::default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let pki = openvrs_crypto::pki::dev_pki(&["localhost", "127.0.0.1", "::1"], now)?;
        fs::create_dir_all(path.join("tls"))?;
        fs::write(path.join("tls/dev-ca.pem"), &pki.ca_cert_pem)?;
        fs::write(path.join(&tls.cert_file), &pki.server_cert_pem)?;
        write_private(&path.join(&tls.key_file), pki.server_key_pem.as_bytes())?;
        Ok(())
    }

    pub fn master_key(&self) -> Result<MasterKey> {
        if let Some(hex) = env("OPENVRS_MASTER_KEY") {
            return MasterKey::from_hex(&hex).context("OPENVRS_MASTER_KEY");
        }
        read_key(&self.master_key_file())
    }

    /// The master key file (whether or not `OPENVRS_MASTER_KEY` overrides it).
    pub fn master_key_file(&self) -> PathBuf {
        self.path.join(&self.config.keys.master_key_file)
    }

    /// Where `keys rotate master` keeps the new master key until the database is rewrapped
    /// under it; its presence means a rotation was interrupted.
    pub fn next_master_key_file(&self) -> PathBuf {
        let mut name = self.master_key_file().into_os_string();
        name.push(".next");
        name.into()
    }

    pub fn location(&self, create: bool) -> Result<Location> {
        let mut location = Location::from_parts(
            Some(&self.config.database.url),
            self.path.join(SQLITE_FILE),
            create,
        )?;
        if let Location::Postgres {
            max_connections, ..
        } = &mut location
        {
            *max_connections = self.config.database.max_connections;
        }
        Ok(location)
    }

    /// The TLS certificate and key, or `None` for plain HTTP.
    pub fn tls(&self) -> Result<Option<openvrs_server::TlsPem>> {
        if self.config.tls.plain_http {
            return Ok(None);
        }
        let read = |p: &Path| {
            let file = self.path.join(p);
            fs::read(&file).with_context(|| {
                format!(
                    "TLS のファイル {} を読めません / cannot read TLS file {}",
                    file.display(),
                    file.display()
                )
            })
        };
        check_private(&self.path.join(&self.config.tls.key_file))?;
        Ok(Some(openvrs_server::TlsPem {
            cert_chain: read(&self.config.tls.cert_file)?,
            key: read(&self.config.tls.key_file)?,
        }))
    }

    pub fn open_store(&self, create: bool) -> Result<std::sync::Arc<dyn openvrs_store::Store>> {
        if self.next_master_key_file().exists() {
            bail!(
                "マスター鍵の更新が中断されています。`openvrs keys rotate master` をもう一度実行して完了してください / a master key rotation was interrupted: run `openvrs keys rotate master` again to finish it"
            );
        }
        Ok(openvrs_store::open(
            &self.location(create)?,
            self.master_key()?,
        )?)
    }
}

/// A key file (64 hexadecimal digits) readable by its owner only.
pub fn read_key(file: &Path) -> Result<MasterKey> {
    check_private(file)?;
    let text = fs::read_to_string(file).with_context(|| {
        format!(
            "鍵ファイル {} を読めません / cannot read key file {}",
            file.display(),
            file.display()
        )
    })?;
    MasterKey::from_hex(&text).with_context(|| file.display().to_string())
}

pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).with_context(|| {
        format!(
            "{} を作成できません / cannot create {}",
            path.display(),
            path.display()
        )
    })?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(path).with_context(|| {
            format!(
                "鍵ファイル {} がありません / no key file {}",
                path.display(),
                path.display()
            )
        })?;
        if meta.permissions().mode() & 0o077 != 0 {
            bail!(
                "鍵ファイル {} は所有者以外も読めます(chmod 600 してください) / key file {} is readable by others (chmod 600 it)",
                path.display(),
                path.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses_and_rejects_typos() {
        let c = Config::default_config();
        assert_eq!(c.database.url, "");
        assert_eq!(
            c.security,
            Security::default(),
            "the text and the code agree"
        );
        assert_eq!(c.tls, Tls::default());
        assert!(toml::from_str::<Config>(&DEFAULT_CONFIG.replace("lgwan =", "lgwam =")).is_err());
    }

    #[test]
    fn every_config_error_is_reported_at_once() {
        let text = DEFAULT_CONFIG
            .replace("lgwan =", "lgwam =")
            .replace("lockout_failures = 5", "lockout_failures = \"five\"")
            .replace(
                "issuer = \"https://localhost:8080/issuer\"",
                "issuer = \"http://localhost/\"",
            )
            .replace("keep = 14", "keep = 0")
            + "\n[extra]\nx = 1\n";
        let mut errors = Vec::new();
        let config = Config::parse(&text, &mut errors);
        errors.extend(config.problems());
        let sections = [
            "[server]",
            "[security]",
            "[extra]",
            "[certificates]",
            "[backup]",
        ];
        assert_eq!(errors.len(), sections.len(), "{errors:#?}");
        for (e, section) in errors.iter().zip(sections) {
            assert!(e.contains(section) && e.contains(" / "), "{e}");
        }
        let mut none = Vec::new();
        assert!(
            Config::parse(DEFAULT_CONFIG, &mut none)
                .problems()
                .is_empty()
        );
        assert!(none.is_empty(), "{none:?}");
        Config::parse("[server", &mut none);
        assert_eq!(none.len(), 1, "a syntax error is one error");
    }
}
