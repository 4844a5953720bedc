//! `openvrs backup` and `openvrs restore`: a consistent online copy of the database - the
//! embedded SQLite file (`VACUUM INTO`), or a `pg_dump` of an exported PostgreSQL snapshot -
//! encrypted (`openvrs_crypto::backup`) with a manifest of what it holds, read from the same
//! snapshot; and its restore into a new data directory (and, for PostgreSQL, an empty database)
//! that is checked against the manifest - every municipality's counts and its whole audit
//! chain - before it is put in place.

use std::{
    fs,
    io::{BufReader, BufWriter, Read, Write},
    path::Path,
};

use anyhow::{Context, Result, bail};
use openvrs_crypto::{MasterKey, backup};
use openvrs_store::{Location, Store};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{DataDir, SQLITE_FILE};

const FORMAT: &str = "openvrs-backup";

/// A writer that also hashes what it writes.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut hashing = Hashing {
        inner: std::io::sink(),
        hash: Sha256::new(),
    };
    std::io::copy(&mut BufReader::new(fs::File::open(path)?), &mut hashing)?;
    Ok(hex::encode(hashing.hash.finalize()))
}

/// Every municipality's counts and audit head, its chain verified on the way.
fn contents(store: &dyn Store) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for m in store.municipalities()? {
        let stats = store.stats(m.code)?;
        let head = store.verify_audit(m.code)?;
        out.push(json!({
            "code": m.code.to_string(),
            "persons": stats.persons,
            "vouchers": stats.vouchers,
            "doses": stats.doses_by_number.iter().map(|(_, n)| n).sum::<u64>(),
            "audit_entries": head.seq,
            "audit_head": head.link,
        }));
    }
    Ok(out)
}

/// Runs a PostgreSQL client program (`pg_dump`, `pg_restore`); its output on failure.
fn pg_tool(program: &str, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .with_context(|| {
            format!(
                "{program} を実行できません(apt install postgresql-client) / cannot run {program} (apt install postgresql-client)"
            )
        })?;
    if !out.status.success() {
        let said: Vec<&str> = std::str::from_utf8(&out.stderr)
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        bail!(
            "{program} が失敗しました / {program} failed: {}",
            said.join(" ")
        );
    }
    Ok(out.stdout)
}

pub fn backup(dir: &DataDir, out: &Path) -> Result<()> {
    let master = dir.master_key()?;
    // The plain copy lives only in a private directory beside the database, and goes.
    let work = tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(&dir.path)?;
    let data = work.path().join("data");
    let (backend, municipalities) = match dir.location(false)? {
        Location::Sqlite { path, .. } => {
            openvrs_store::sqlite_snapshot(&path, &data)?;
            // Counts and audit heads read from the snapshot itself (a copy, so that opening it
            // leaves the bytes that are hashed alone): they describe exactly what is in the file.
            let probe = work.path().join("probe.sqlite");
            fs::copy(&data, &probe)?;
            let store = openvrs_store::open(
                &Location::Sqlite {
                    path: probe,
                    create: false,
                },
                master.clone(),
            )?;
            ("sqlite", contents(&*store)?)
        }
        Location::Postgres { url, .. } => {
            // pg_dump and the counts read one exported snapshot, held until both are done.
            let snapshot = openvrs_store::postgres_snapshot(&url)?;
            pg_tool(
                "pg_dump",
                &[
                    "--format=custom".as_ref(),
                    "--no-owner".as_ref(),
                    "--no-privileges".as_ref(),
                    format!("--snapshot={}", snapshot.id()).as_ref(),
                    format!("--schema={}", snapshot.schema()).as_ref(),
                    "--file".as_ref(),
                    data.as_os_str(),
                    "--dbname".as_ref(),
                    url.as_ref(),
                ],
            )?;
            ("postgres", contents(&*snapshot.store(master.clone())?)?)
        }
    };
    let manifest = json!({
        "format": FORMAT,
        "version": env!("CARGO_PKG_VERSION"),
        "schema_version": openvrs_store::schema_version(),
        "backend": backend,
        "created_at": time::OffsetDateTime::now_utc().unix_timestamp(),
        "sha256": sha256_file(&data)?,
        "municipalities": municipalities,
    });
    let partial = out.with_extension("partial");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&partial).with_context(|| {
        format!(
            "{} を作成できません / cannot create {}",
            partial.display(),
            partial.display()
        )
    })?;
    let mut writer = BufWriter::new(file);
    backup::write(
        &master,
        serde_json::to_string(&manifest)?.as_bytes(),
        &mut BufReader::new(fs::File::open(&data)?),
        &mut writer,
    )?;
    writer.into_inner()?.sync_all()?;
    fs::rename(&partial, out)?;
    println!(
        "バックアップしました / backed up: {} ({} municipalities, schema {})",
        out.display(),
        manifest["municipalities"].as_array().map_or(0, Vec::len),
        manifest["schema_version"]
    );
    Ok(())
}

fn master_key(file: Option<&Path>) -> Result<MasterKey> {
    if let Ok(hex) = std::env::var("OPENVRS_MASTER_KEY") {
        return MasterKey::from_hex(&hex).context("OPENVRS_MASTER_KEY");
    }
    let Some(file) = file else {
        bail!(
            "マスター鍵が必要です(--master-key-file または OPENVRS_MASTER_KEY) / the master key is needed (--master-key-file or OPENVRS_MASTER_KEY)"
        );
    };
    let text = fs::read_to_string(file).with_context(|| {
        format!(
            "{} を読めません / cannot read {}",
            file.display(),
            file.display()
        )
    })?;
    MasterKey::from_hex(&text).context("master key")
}

/// Scheduled backups are named by when they were made (UTC, to the millisecond), so that their
/// names sort by age.
const SCHEDULED_PREFIX: &str = "openvrs-";
const SCHEDULED_SUFFIX: &str = ".bak";

/// The directory of scheduled backups, if configured.
pub fn scheduled_dir(dir: &DataDir) -> Option<std::path::PathBuf> {
    let b = &dir.config.backup.dir;
    (!b.as_os_str().is_empty()).then(|| dir.path.join(b))
}

/// The scheduled backups in `target`, oldest first.
fn scheduled(target: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut found: Vec<_> = match fs::read_dir(target) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with(SCHEDULED_PREFIX) && n.ends_with(SCHEDULED_SUFFIX)
                })
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    found.sort();
    Ok(found)
}

/// When the newest scheduled backup was made, if there is one.
pub fn newest_scheduled(dir: &DataDir) -> Result<Option<std::time::SystemTime>> {
    let Some(target) = scheduled_dir(dir) else {
        return Ok(None);
    };
    match scheduled(&target)?.last() {
        Some(p) => Ok(Some(fs::metadata(p)?.modified()?)),
        None => Ok(None),
    }
}

/// A backup into the configured directory, then only the newest `keep` are kept (and what an
/// interrupted one left is removed).
pub fn backup_scheduled(dir: &DataDir) -> Result<std::path::PathBuf> {
    let Some(target) = scheduled_dir(dir) else {
        bail!(
            "--out を指定するか、[backup] dir を設定してください / give --out, or set [backup] dir"
        );
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&target).with_context(|| {
        format!(
            "{} を作成できません / cannot create {}",
            target.display(),
            target.display()
        )
    })?;
    let now = time::OffsetDateTime::now_utc();
    let name = format!(
        "{SCHEDULED_PREFIX}{:04}{:02}{:02}T{:02}{:02}{:02}{:03}Z{SCHEDULED_SUFFIX}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.millisecond()
    );
    let out = target.join(name);
    backup(dir, &out)?;
    let all = scheduled(&target)?;
    let keep = dir.config.backup.keep.max(1) as usize;
    for old in &all[..all.len().saturating_sub(keep)] {
        fs::remove_file(old)?;
    }
    for entry in fs::read_dir(&target)?.filter_map(Result::ok) {
        if entry.path().extension().is_some_and(|e| e == "partial") {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(out)
}

/// While the server runs: a scheduled backup whenever the newest is `every_hours` old (at once
/// if there is none), retried after a failure.
pub fn schedule(dir: DataDir) {
    if scheduled_dir(&dir).is_none() {
        return;
    }
    let every = std::time::Duration::from_secs(u64::from(dir.config.backup.every_hours) * 3600);
    let retry = std::time::Duration::from_secs(600);
    std::thread::spawn(move || {
        loop {
            let age = newest_scheduled(&dir)
                .ok()
                .flatten()
                .and_then(|t| t.elapsed().ok());
            let wait = match age {
                Some(age) if age < every => every - age,
                _ => match backup_scheduled(&dir) {
                    Ok(file) => {
                        tracing::info!(file = %file.display(), "scheduled backup written");
                        every
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "scheduled backup failed");
                        retry
                    }
                },
            };
            std::thread::sleep(wait.min(retry));
        }
    });
}

/// Restores `file` into the new data directory `target`; a PostgreSQL backup also into the
/// empty database at `database_url`.
pub fn restore(
    file: &Path,
    target: &Path,
    master_key_file: Option<&Path>,
    database_url: Option<&str>,
) -> Result<()> {
    let master = master_key(master_key_file)?;
    let open = || -> Result<BufReader<fs::File>> {
        Ok(BufReader::new(fs::File::open(file).with_context(|| {
            format!(
                "{} を読めません / cannot read {}",
                file.display(),
                file.display()
            )
        })?))
    };
    let manifest: Value =
        serde_json::from_slice(&backup::manifest(&mut open()?)?).context("manifest")?;
    if manifest["format"] != FORMAT {
        bail!("openvrs のバックアップではありません / not an openvrs backup");
    }
    let database_url = database_url.filter(|u| !u.is_empty());
    match (manifest["backend"].as_str(), database_url) {
        (Some("sqlite"), None) | (Some("postgres"), Some(_)) => {}
        (Some("sqlite"), Some(_)) => bail!(
            "SQLite のバックアップはデータディレクトリに復元します(--database-url は不要) / an SQLite backup restores into the data directory: leave out --database-url"
        ),
        (Some("postgres"), None) => bail!(
            "PostgreSQL のバックアップには復元先の空のデータベース(--database-url)が必要です / a PostgreSQL backup needs an empty database to restore into (--database-url)"
        ),
        _ => bail!("openvrs のバックアップではありません / not an openvrs backup"),
    }
    if manifest["schema_version"].as_i64() > Some(openvrs_store::schema_version()) {
        bail!(
            "このバックアップは新しい版のものです。新しい openvrs で復元してください / the backup is from a newer version: restore it with a newer openvrs"
        );
    }
    let empty = fs::read_dir(target).map_or(true, |mut d| d.next().is_none());
    if !empty {
        bail!(
            "{} は空ではありません。空のディレクトリに復元します / {} is not empty: restore into an empty directory",
            target.display(),
            target.display()
        );
    }
    let staging = target.with_extension("restoring");
    if staging.exists() {
        bail!(
            "{} が残っています(前回の復元の途中) / {} is left from an earlier restore: remove it",
            staging.display(),
            staging.display()
        );
    }
    let result = restore_into(&staging, &mut open()?, &master, &manifest, database_url);
    match result {
        Ok(summary) => {
            if target.exists() {
                fs::remove_dir(target)?;
            }
            fs::rename(&staging, target)?;
            println!(
                "復元し、件数と監査ログを確認しました / restored and verified counts and audit logs: {} ({summary})",
                target.display()
            );
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

fn restore_into(
    staging: &Path,
    input: &mut impl Read,
    master: &MasterKey,
    manifest: &Value,
    database_url: Option<&str>,
) -> Result<String> {
    DataDir::init_files(staging, database_url, Some(master))?;
    let data = match database_url {
        None => staging.join(SQLITE_FILE),
        Some(_) => staging.join(".restore.pgdump"),
    };
    let mut writer = Hashing {
        inner: BufWriter::new(fs::File::create(&data)?),
        hash: Sha256::new(),
    };
    backup::read(master, input, &mut writer)?;
    writer.flush()?;
    let Hashing { inner, hash } = writer;
    inner.into_inner()?.sync_all()?;
    if Some(hex::encode(hash.finalize()).as_str()) != manifest["sha256"].as_str() {
        bail!(
            "復元したデータのチェックサムが一致しません / the restored data does not match the backup's checksum"
        );
    }
    if let Some(url) = database_url {
        let restored = pg_restore(&data, url);
        fs::remove_file(&data)?;
        restored?;
    }
    let dir = DataDir::load(staging)?;
    let store = dir.open_store(false)?;
    let found = contents(&*store)?;
    let expected = manifest["municipalities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if found != expected {
        bail!(
            "復元したデータが目録と一致しません / the restored data does not match the backup's manifest"
        );
    }
    let persons: u64 = found.iter().filter_map(|m| m["persons"].as_u64()).sum();
    let doses: u64 = found.iter().filter_map(|m| m["doses"].as_u64()).sum();
    Ok(format!(
        "{} municipalities, {persons} persons, {doses} doses",
        found.len()
    ))
}

/// Restores a `pg_dump` archive into the (empty) database at `url`, in one transaction: it is
/// all there or not at all. The `public` schema exists in every new database, so its creation
/// is left out.
fn pg_restore(dump: &Path, url: &str) -> Result<()> {
    let list = pg_tool("pg_restore", &["--list".as_ref(), dump.as_os_str()])?;
    let list: String = String::from_utf8_lossy(&list)
        .lines()
        .filter(|l| !l.contains(" SCHEMA - public ") && !l.contains(" COMMENT - SCHEMA public "))
        .map(|l| format!("{l}\n"))
        .collect();
    let list_file = dump.with_extension("list");
    fs::write(&list_file, list)?;
    let restored = pg_tool(
        "pg_restore",
        &[
            "--no-owner".as_ref(),
            "--no-privileges".as_ref(),
            "--single-transaction".as_ref(),
            "--exit-on-error".as_ref(),
            "--use-list".as_ref(),
            list_file.as_os_str(),
            "--dbname".as_ref(),
            url.as_ref(),
            dump.as_os_str(),
        ],
    );
    fs::remove_file(&list_file)?;
    restored.map(drop).context(
        "復元先のデータベースは空でなければなりません / the database to restore into must be empty",
    )
}
