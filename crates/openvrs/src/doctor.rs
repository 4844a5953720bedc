//! `openvrs doctor`: checks a deployment and says, in Japanese and English, what is wrong and how
//! to fix it. Each check is one line: `OK`, `WARN` (works, but act soon) or `FAIL` (does not
//! work); the exit status is non-zero when anything failed. It reads, never changes.

use std::path::Path;

use anyhow::Result;
use openvrs_cert::pki;
use openvrs_store::Store;

use crate::config::DataDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Report {
    worst: Level,
}

impl Report {
    fn say(&mut self, level: Level, what: &str, message: &str) {
        let tag = match level {
            Level::Ok => "OK  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        println!("{tag} {what}: {message}");
        self.worst = self.worst.max(level);
    }
}

/// Days before a certificate's end that a warning starts.
const EXPIRY_WARNING_DAYS: i64 = 30;
/// Clock difference between the server and the database that is worth a warning (seconds).
const SKEW_SECONDS: f64 = 5.0;
/// Free disk space below which the database's directory is worth a warning.
const FREE_BYTES: u64 = 1 << 30;

fn expiry(report: &mut Report, what: &str, not_after: i64, now: i64) {
    let days = (not_after - now).div_euclid(86_400);
    if days < 0 {
        report.say(
            Level::Fail,
            what,
            &format!(
                "期限切れです。更新してください / expired {} days ago: renew it",
                -days
            ),
        );
    } else if days < EXPIRY_WARNING_DAYS {
        report.say(
            Level::Warn,
            what,
            &format!("あと {days} 日で期限切れです / expires in {days} days: renew it soon"),
        );
    } else {
        report.say(
            Level::Ok,
            what,
            &format!("有効期限まで {days} 日 / valid for {days} more days"),
        );
    }
}

fn pem_certificates(path: &Path) -> Result<Vec<pki::Certificate>> {
    pki::read_certificates(&std::fs::read(path)?)?
        .iter()
        .map(|der| Ok(pki::Certificate::parse(der)?))
        .collect()
}

pub fn run(dir: &DataDir) -> Result<()> {
    let mut report = Report { worst: Level::Ok };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    report.say(
        Level::Ok,
        "config",
        &format!(
            "{} を読みました / read",
            dir.path.join("config.toml").display()
        ),
    );

    let key = dir.master_key();
    match &key {
        Ok(_) => report.say(
            Level::Ok,
            "master key",
            "読めます(所有者のみ) / readable, by its owner only",
        ),
        Err(e) => report.say(Level::Fail, "master key", &e.to_string()),
    }

    let store = match key.map(|_| dir.open_store(false)) {
        Err(_) => {
            report.say(
                Level::Fail,
                "database",
                "マスター鍵がないため確認できません / not checked: the master key is needed",
            );
            None
        }
        Ok(Ok(store)) => Some(store),
        Ok(Err(e)) => {
            report.say(
                Level::Fail,
                "database",
                &format!("{e:#} (openvrs init, [database] url)"),
            );
            None
        }
    };
    if let Some(store) = &store {
        database(&mut report, &**store);
        signing_keys(&mut report, &**store, now);
    }

    match dir.tls() {
        Ok(None) => report.say(
            Level::Warn,
            "tls",
            "暗号化されていない HTTP です(TLS 終端の背後でのみ) / plain HTTP: only behind a TLS-terminating proxy",
        ),
        Ok(Some(_)) => {
            let file = dir.path.join(&dir.config.tls.cert_file);
            match pem_certificates(&file) {
                Ok(certs) if !certs.is_empty() => {
                    expiry(&mut report, "tls certificate", certs[0].not_after, now);
                    let development = certs.len() == 1
                        && dir.config.tls.cert_file == Path::new("tls/server.pem")
                        && dir.path.join("tls/dev-ca.pem").is_file();
                    if development {
                        report.say(
                            Level::Warn,
                            "tls certificate",
                            "openvrs init の開発用証明書です。本番では正式な証明書に替えてください([tls]) / the development certificate from openvrs init: use a real one in production ([tls])",
                        );
                    }
                }
                _ => report.say(
                    Level::Fail,
                    "tls certificate",
                    &format!(
                        "{} を証明書として読めません / cannot read it as a certificate",
                        file.display()
                    ),
                ),
            }
        }
        Err(e) => report.say(Level::Fail, "tls", &format!("{e:#}")),
    }

    let cards = dir.path.join(&dir.config.cards.issuer_certificate);
    match pem_certificates(&cards) {
        Ok(certs) if !certs.is_empty() => {
            expiry(&mut report, "card issuer certificate", certs[0].not_after, now);
        }
        _ => report.say(
            Level::Warn,
            "card issuer certificate",
            "ありません: アプリとコンビニの申請は受け付けません([cards] issuer_certificate) / none: app and kiosk applications are refused ([cards] issuer_certificate)",
        ),
    }

    match rustix::fs::statvfs(&dir.path) {
        Ok(fs) => {
            let free = fs.f_bavail.saturating_mul(fs.f_frsize);
            let gib = free as f64 / (1u64 << 30) as f64;
            let level = if free < FREE_BYTES {
                Level::Warn
            } else {
                Level::Ok
            };
            report.say(
                level,
                "disk",
                &format!("空き {gib:.1} GiB / {gib:.1} GiB free"),
            );
        }
        Err(e) => report.say(Level::Warn, "disk", &e.to_string()),
    }

    match crate::backup::newest_scheduled(dir) {
        _ if crate::backup::scheduled_dir(dir).is_none() => report.say(
            Level::Warn,
            "backup",
            "定期バックアップが設定されていません([backup] dir) / no scheduled backups ([backup] dir)",
        ),
        Ok(None) => report.say(
            Level::Warn,
            "backup",
            "まだありません(openvrs backup、またはサーバーの起動で作成) / none yet (openvrs backup, or start the server)",
        ),
        Ok(Some(at)) => {
            let hours = at.elapsed().map_or(0.0, |d| d.as_secs_f64() / 3600.0);
            let due = f64::from(dir.config.backup.every_hours);
            let level = if hours > 2.0 * due {
                Level::Warn
            } else {
                Level::Ok
            };
            report.say(
                level,
                "backup",
                &format!(
                    "最新のバックアップは {hours:.1} 時間前です(予定は {due} 時間ごと) / the newest backup is {hours:.1} h old (due every {due} h)"
                ),
            );
        }
        Err(e) => report.say(Level::Fail, "backup", &format!("{e:#}")),
    }

    match report.worst {
        Level::Ok => println!("問題はありません / all checks passed"),
        Level::Warn => println!("警告があります / passed with warnings"),
        Level::Fail => {
            anyhow::bail!("問題があります(FAIL の行) / some checks failed (the FAIL lines)")
        }
    }
    Ok(())
}

fn database(report: &mut Report, store: &dyn Store) {
    match store.database_clock() {
        Ok((at, version)) => {
            if version == openvrs_store::schema_version() {
                report.say(
                    Level::Ok,
                    "database",
                    &format!(
                        "接続でき、スキーマは最新です / reachable, schema {version} is current"
                    ),
                );
            } else {
                report.say(
                    Level::Fail,
                    "database",
                    &format!("スキーマ {version} は想定と違います / schema {version} is not this program's"),
                );
            }
            let server = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
            let skew = (server - i128::from(at)) as f64 / 1e6;
            let level = if skew.abs() > SKEW_SECONDS {
                Level::Warn
            } else {
                Level::Ok
            };
            report.say(
                level,
                "clock",
                &format!(
                    "サーバとデータベースの時刻差 {skew:.3} 秒(NTP を確認) / server and database clocks differ by {skew:.3} s (check NTP)"
                ),
            );
        }
        Err(e) => report.say(Level::Fail, "database", &e.to_string()),
    }
    if let Err(e) = store.check_master_key() {
        report.say(
            Level::Fail,
            "master key",
            &format!("{e}: 保存された鍵を開けません(鍵ファイルを確認) / it does not open the stored keys (check the key file)"),
        );
    }
    match store.municipalities() {
        Ok(list) if list.is_empty() => report.say(
            Level::Warn,
            "municipalities",
            "登録がありません(openvrs municipality add) / none registered (openvrs municipality add)",
        ),
        Ok(list) => {
            let (mut broken, mut rotating) = (Vec::new(), Vec::new());
            for m in &list {
                if store.verify_audit(m.code).is_err() {
                    broken.push(m.code.to_string());
                }
                if store
                    .stats(m.code)
                    .is_ok_and(|s| s.persons_by_key_version.len() > 1)
                {
                    rotating.push(m.code.to_string());
                }
            }
            for m in rotating {
                report.say(
                    Level::Warn,
                    "data key",
                    &format!(
                        "{m} のデータ鍵の更新が終わっていません(openvrs keys rotate data --municipality {m}) / the data key rotation of {m} is unfinished (openvrs keys rotate data --municipality {m})"
                    ),
                );
            }
            if broken.is_empty() {
                report.say(
                    Level::Ok,
                    "audit logs",
                    &format!("{} 団体すべて正常 / intact in all {} municipalities", list.len(), list.len()),
                );
            } else {
                report.say(
                    Level::Fail,
                    "audit logs",
                    &format!(
                        "改ざんまたは欠損: {} (openvrs audit verify) / altered or missing entries: {}",
                        broken.join(", "),
                        broken.join(", ")
                    ),
                );
            }
        }
        Err(e) => report.say(Level::Fail, "municipalities", &e.to_string()),
    }
}

fn signing_keys(report: &mut Report, store: &dyn Store, now: i64) {
    use openvrs_service::{application::INTAKE, certificate as certs};
    for kind in [certs::SHC, certs::CSCA, certs::VDS, certs::DCC, INTAKE] {
        let what = format!("{kind} key");
        match store.signing_keys(kind) {
            Ok(keys) => match keys.iter().find(|k| k.retired_at.is_none()) {
                None => report.say(
                    Level::Warn,
                    &what,
                    "ありません(openvrs keys init) / none (openvrs keys init)",
                ),
                Some(k) if k.public_part.contains("BEGIN CERTIFICATE") => {
                    match pki::read_certificates(k.public_part.as_bytes())
                        .ok()
                        .and_then(|d| d.first().and_then(|der| pki::Certificate::parse(der).ok()))
                    {
                        Some(cert) => expiry(report, &what, cert.not_after, now),
                        None => report.say(
                            Level::Fail,
                            &what,
                            "証明書を読めません / its certificate cannot be read",
                        ),
                    }
                }
                Some(k) => report.say(Level::Ok, &what, &format!("kid {}", k.kid)),
            },
            Err(e) => report.say(Level::Fail, &what, &e.to_string()),
        }
    }
}
