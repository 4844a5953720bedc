//! The `openvrs` command as a user runs it: a real process, a real data directory.

#![allow(clippy::unwrap_used)] // tests panic on purpose: that is how they fail

mod tidy;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Child, Command, Output, Stdio},
};

fn openvrs(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_openvrs"))
        .current_dir(dir)
        .env_remove("OPENVRS_DATA_DIR")
        .env_remove("OPENVRS_DATABASE_URL")
        .env_remove("OPENVRS_MASTER_KEY")
        .args(args)
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = openvrs(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Fails with exactly one line on stderr, Japanese first then English.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = openvrs(dir, args);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(" / "), "bilingual: {err}");
    err
}

#[test]
fn init_add_verify_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("openvrs-data/master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    fails(d, &["init"]);
    assert!(
        ok(
            d,
            &[
                "municipality",
                "add",
                "--code",
                "472131",
                "--name",
                "うるま市"
            ]
        )
        .contains("沖縄県")
    );
    ok(
        d,
        &[
            "municipality",
            "add",
            "--code",
            "011002",
            "--name",
            "札幌市",
        ],
    );
    let err = fails(
        d,
        &["municipality", "add", "--code", "472132", "--name", "x"],
    );
    assert!(
        err.contains("検査数字") && err.contains("check digit"),
        "{err}"
    );
    fails(
        d,
        &[
            "municipality",
            "add",
            "--code",
            "472131",
            "--name",
            "うるま市",
        ],
    );
    assert_eq!(ok(d, &["municipality", "list"]).lines().count(), 2);
    assert!(ok(d, &["audit", "verify", "--municipality", "472131"]).contains("1 entries"));
    fails(d, &["audit", "verify", "--municipality", "472018"]);
    fails(d, &["--data-dir", "typo", "municipality", "list"]);
    assert!(!d.join("typo").exists(), "a typo creates nothing");
}

#[test]
fn audit_verify_names_the_tampered_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    ok(
        d,
        &[
            "municipality",
            "add",
            "--code",
            "472131",
            "--name",
            "うるま市",
        ],
    );
    let db = rusqlite::Connection::open(d.join("openvrs-data/openvrs.sqlite")).unwrap();
    db.execute("UPDATE audit_log SET action = 'nothing' WHERE seq = 1", [])
        .unwrap();
    let err = fails(d, &["audit", "verify", "--municipality", "472131"]);
    assert!(err.contains("第1項") && err.contains("entry 1"), "{err}");
}

#[test]
fn key_file_readable_by_others_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = d.join("openvrs-data/master.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = fails(d, &["municipality", "list"]);
        assert!(err.contains("chmod 600"), "{err}");
    }
}

#[test]
fn config_default_is_the_config_init_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let printed = ok(d, &["config", "default"]);
    ok(d, &["init"]);
    let written = std::fs::read_to_string(d.join("openvrs-data/config.toml")).unwrap();
    assert_eq!(printed, written);
    assert!(printed.contains("OPENVRS_DATABASE_URL"));
    // A typo in the config is an error, not a silent default.
    std::fs::write(
        d.join("openvrs-data/config.toml"),
        written.replace("internet =", "internett ="),
    )
    .unwrap();
    fails(d, &["municipality", "list"]);
}

#[test]
fn gen_residents_is_deterministic_in_both_encodings() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let args = [
        "gen",
        "residents",
        "--municipality",
        "472131",
        "--count",
        "200",
        "--seed",
        "5",
    ];
    let a = ok(d, &args);
    assert_eq!(a, ok(d, &args));
    assert_ne!(
        a,
        ok(
            d,
            &[
                "gen",
                "residents",
                "--municipality",
                "472131",
                "--count",
                "200",
                "--seed",
                "6"
            ]
        )
    );
    assert!(a.starts_with("自治体コード,宛名番号,券番号,券種,接種回,氏名,氏名カナ,生年月日,性別,個人番号,発行日,転出日,死亡日\r\n"));
    assert!(a.lines().count() > 200);
    ok(
        d,
        &[&args[..], &["--encoding", "sjis", "--out", "r.csv"]].concat(),
    );
    let sjis = std::fs::read(d.join("r.csv")).unwrap();
    let (decoded, _, bad) = encoding_rs::SHIFT_JIS.decode(&sjis);
    assert!(!bad);
    assert_eq!(decoded, a);
    fails(
        d,
        &[
            "gen",
            "residents",
            "--municipality",
            "47213",
            "--count",
            "1",
        ],
    );
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Starts `openvrs ARGS` and reads its stdout until both listener lines appeared.
fn start(dir: &Path, args: &[&str]) -> (Running, SocketAddr, SocketAddr, Vec<String>) {
    let child = Command::new(env!("CARGO_BIN_EXE_openvrs"))
        .current_dir(dir)
        .env_remove("OPENVRS_DATA_DIR")
        .env_remove("OPENVRS_DATABASE_URL")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let stdout = running.0.stdout.take().unwrap();
    let mut lines = Vec::new();
    let (mut lgwan, mut internet) = (None, None);
    let mut reader = BufReader::new(stdout).lines();
    for line in reader.by_ref() {
        let line = line.unwrap();
        let addr = |prefix: &str| -> Option<SocketAddr> {
            let rest = line
                .strip_prefix(prefix)?
                .trim_start()
                .split("://")
                .nth(1)?;
            rest.split('/').next()?.parse().ok()
        };
        lgwan = lgwan.or_else(|| addr("LGWAN"));
        internet = internet.or_else(|| addr("internet"));
        let last = line.contains("Ctrl-C");
        lines.push(line);
        if last {
            break;
        }
    }
    let (Some(l), Some(i)) = (lgwan, internet) else {
        panic!("the server did not print its addresses: {lines:?}");
    };
    // Keep reading what it prints later, as a terminal would.
    std::thread::spawn(move || reader.for_each(drop));
    (running, l, i, lines)
}

#[test]
fn serve_answers_on_both_listeners() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    let (_server, lgwan, internet, _) = start(
        d,
        &[
            "serve",
            "--plain-http",
            "--lgwan",
            "127.0.0.1:0",
            "--internet",
            "127.0.0.1:0",
        ],
    );
    assert!(http_get(lgwan, "/healthz").ends_with("ok"));
    assert!(http_get(lgwan, "/version").contains(r#""zone":"lgwan""#));
    assert!(http_get(internet, "/version").contains(r#""zone":"internet""#));
}

#[test]
fn demo_creates_two_towns_and_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (server, lgwan, internet, lines) = start(
        d,
        &[
            "demo",
            "--residents",
            "120",
            "--lgwan",
            "127.0.0.1:0",
            "--internet",
            "127.0.0.1:0",
        ],
    );
    let text = lines.join("\n");
    assert!(
        text.contains("472131 うるま市") && text.contains("472018 那覇市"),
        "{text}"
    );
    for role in ["national", "prefecture", "staff", "venue", "center"] {
        assert!(
            lines.iter().any(|l| l.trim_start().starts_with(role)),
            "no {role} account: {text}"
        );
    }
    assert!(http_get(internet, "/healthz").ends_with("ok"));
    assert!(http_get(lgwan, "/version").contains("sqlite"));
    assert!(
        http_get(lgwan, "/signin").contains("<h1>サインイン</h1>"),
        "the web application"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("the staff, state and prefecture pages"))
    );
    assert!(http_get(internet, "/.well-known/jwks.json").contains(r#""alg":"ES256""#));
    drop(server);
    // The certificate the demo suggests can be issued: its resident has doses.
    let suggested = lines
        .iter()
        .find(|l| l.contains("certificate issue"))
        .unwrap_or_else(|| panic!("no certificate example: {text}"));
    let args: Vec<&str> = suggested.split_whitespace().skip(1).collect();
    ok(d, &args);
    assert!(
        std::fs::read(d.join("certificate.pdf"))
            .unwrap()
            .starts_with(b"%PDF-")
    );
    // The demo's data directory is ordinary: the other commands work on it.
    let list = ok(d, &["--data-dir", "openvrs-demo", "municipality", "list"]);
    assert_eq!(list.lines().count(), 2);
    ok(
        d,
        &[
            "--data-dir",
            "openvrs-demo",
            "audit",
            "verify",
            "--municipality",
            "472018",
        ],
    );
    // A second demo reuses the directory without loading the towns again.
    let (_again, _, _, lines) = start(
        d,
        &[
            "demo",
            "--residents",
            "120",
            "--lgwan",
            "127.0.0.1:0",
            "--internet",
            "127.0.0.1:0",
        ],
    );
    assert!(!lines.join("\n").contains("residents loaded"));
}

#[test]
fn users_are_issued_listed_and_disabled() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    ok(
        d,
        &[
            "municipality",
            "add",
            "--code",
            "472131",
            "--name",
            "うるま市",
        ],
    );
    let out = ok(
        d,
        &[
            "user",
            "add",
            "--id",
            "staff-1",
            "--role",
            "staff",
            "--municipality",
            "472131",
        ],
    );
    assert!(
        out.contains("shown once"),
        "a generated password is shown: {out}"
    );
    let out = ok(
        d,
        &[
            "user",
            "add",
            "--id",
            "tablet-1",
            "--role",
            "venue",
            "--municipality",
            "472131",
            "--venue",
            "会場A",
        ],
    );
    assert!(
        out.lines()
            .any(|l| l.contains("shown once") && l.len() > 64),
        "{out}"
    );
    let err = fails(
        d,
        &[
            "user",
            "add",
            "--id",
            "staff-2",
            "--role",
            "staff",
            "--municipality",
            "472018",
        ],
    );
    assert!(err.contains("472018"), "{err}");
    fails(
        d,
        &[
            "user",
            "add",
            "--id",
            "x",
            "--role",
            "staff",
            "--municipality",
            "472131",
        ],
    );
    fails(d, &["user", "add", "--id", "p-1", "--role", "prefecture"]);
    ok(d, &["user", "disable", "--id", "tablet-1"]);
    let list = ok(d, &["user", "list"]);
    assert!(list.contains("staff-1\tstaff\t472131\tactive"), "{list}");
    assert!(list.contains("tablet-1\tvenue\t472131\tdisabled"), "{list}");
}

#[test]
fn serve_speaks_tls_by_default_with_the_development_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    for f in ["tls/dev-ca.pem", "tls/server.pem", "tls/server.key"] {
        assert!(d.join("openvrs-data").join(f).is_file(), "{f}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("openvrs-data/tls/server.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (_server, lgwan, _, lines) = start(
        d,
        &[
            "serve",
            "--lgwan",
            "127.0.0.1:0",
            "--internet",
            "127.0.0.1:0",
        ],
    );
    assert!(lines.iter().any(|l| l.contains("https://")), "{lines:?}");
    // A plain HTTP request gets no HTTP answer from a TLS listener.
    let mut s = TcpStream::connect(lgwan).unwrap();
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
}

#[test]
fn import_targets_all_or_nothing_and_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    ok(
        d,
        &[
            "municipality",
            "add",
            "--code",
            "472131",
            "--name",
            "うるま市",
        ],
    );
    ok(
        d,
        &[
            "gen",
            "residents",
            "--municipality",
            "472131",
            "--count",
            "300",
            "--seed",
            "4",
            "--encoding",
            "sjis",
            "--out",
            "t.csv",
        ],
    );
    let csv = std::fs::read(d.join("t.csv")).unwrap();
    // A bad row at the end: nothing is written, and the row is named.
    let mut bad = csv.clone();
    bad.extend_from_slice(b"472131,9,1,X,X,2099-01-01,1,,,,,,\r\n");
    std::fs::write(d.join("bad.csv"), &bad).unwrap();
    let out = openvrs(
        d,
        &["import", "targets", "bad.csv", "--municipality", "472131"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("行目 氏名カナ") && err.contains("nothing imported"),
        "{err}"
    );
    let stats = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&ok(d, &["stats", "--municipality", "472131", "--json"])).unwrap()
    };
    assert_eq!(stats(d)["persons"], 0);
    // The good file: everything, then nothing more the second time.
    let first = ok(
        d,
        &["import", "targets", "t.csv", "--municipality", "472131"],
    );
    assert!(first.contains("300 new"), "{first}");
    assert_eq!(stats(d)["persons"], 300);
    let vouchers = stats(d)["vouchers"].as_u64().unwrap();
    let again = ok(
        d,
        &["import", "targets", "t.csv", "--municipality", "472131"],
    );
    assert!(
        again.contains("0 new") && again.contains("300 unchanged") && again.contains("0 vouchers"),
        "{again}"
    );
    // An updated file: one new voucher and one death are reported as changes.
    let text = encoding_rs::SHIFT_JIS.decode(&csv).0.into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut cells: Vec<String> = lines[1].split(',').map(str::to_owned).collect();
    cells[2] = "9999999999".into();
    lines.insert(2, cells.join(","));
    let mut dead: Vec<String> = lines[5].split(',').map(str::to_owned).collect();
    dead[12] = "2024-01-01".into();
    lines[5] = dead.join(",");
    let updated = encoding_rs::SHIFT_JIS
        .encode(&(lines.join("\r\n") + "\r\n"))
        .0
        .into_owned();
    std::fs::write(d.join("t2.csv"), updated).unwrap();
    let third = ok(
        d,
        &["import", "targets", "t2.csv", "--municipality", "472131"],
    );
    assert!(
        third.contains("1 updated") && third.contains("1 vouchers"),
        "{third}"
    );
    assert_eq!(stats(d)["vouchers"].as_u64().unwrap(), vouchers + 1);
}

#[test]
fn ledger_round_trip_flags_quality_and_disclosure_sqlite() {
    ledger_round_trip_flags_quality_and_disclosure(None);
}

/// The same on PostgreSQL, in a schema of its own, when `OPENVRS_TEST_DATABASE_URL` is set
/// (`scripts/test` sets and requires it).
#[test]
fn ledger_round_trip_flags_quality_and_disclosure_postgres() {
    on_postgres(ledger_round_trip_flags_quality_and_disclosure);
}

/// Runs `test` on PostgreSQL, in a schema of its own that is dropped afterwards, when
/// `OPENVRS_TEST_DATABASE_URL` is set (`scripts/test` sets and requires it); says it skipped
/// otherwise.
fn on_postgres(test: fn(Option<&str>)) {
    let Ok(base) = std::env::var("OPENVRS_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("OPENVRS_REQUIRE_POSTGRES").is_err(),
            "OPENVRS_REQUIRE_POSTGRES is set but OPENVRS_TEST_DATABASE_URL is not"
        );
        skipped_loudly("the command's tests on PostgreSQL");
        return;
    };
    let schema = format!(
        "cli_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut client = postgres::Client::connect(&base, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    test(Some(&format!(
        "{base}{sep}options=-c%20search_path%3D{schema}"
    )));
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}

fn ledger_round_trip_flags_quality_and_disclosure(database_url: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    match database_url {
        Some(url) => ok(d, &["--database-url", url, "init"]),
        None => ok(d, &["init"]),
    };
    ok(
        d,
        &[
            "municipality",
            "add",
            "--code",
            "472131",
            "--name",
            "うるま市",
        ],
    );
    let generate = |what: &str, out: &str| {
        ok(
            d,
            &[
                "gen",
                what,
                "--municipality",
                "472131",
                "--count",
                "400",
                "--seed",
                "5",
                "--out",
                out,
            ],
        )
    };
    generate("residents", "t.csv");
    generate("ledger", "l.csv");
    ok(
        d,
        &["import", "targets", "t.csv", "--municipality", "472131"],
    );
    let stats = || -> serde_json::Value {
        serde_json::from_str(&ok(d, &["stats", "--municipality", "472131", "--json"])).unwrap()
    };

    // A bad ledger: every bad row named, nothing written.
    let good = std::fs::read_to_string(d.join("l.csv")).unwrap();
    let first_address = good
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let mut bad = good.clone();
    bad.push_str("424242,,20210601,,,,,ファイザー,FA1234\r\n");
    bad.push_str(&format!(
        "{first_address}2,,平成31年5月1日,,,,,ファイザー,FA1234\r\n"
    ));
    std::fs::write(d.join("bad.csv"), bad).unwrap();
    let out = openvrs(
        d,
        &["import", "ledger", "bad.csv", "--municipality", "472131"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("1回目接種日") && err.contains("nothing imported"),
        "{err}"
    );
    assert_eq!(stats()["doses_by_number"], serde_json::json!({}));
    let mut unknown = good.clone();
    unknown.push_str("424242,,20210601,,,,,ファイザー,FA1234\r\n");
    std::fs::write(d.join("unknown.csv"), unknown).unwrap();
    let out = openvrs(
        d,
        &[
            "import",
            "ledger",
            "unknown.csv",
            "--municipality",
            "472131",
        ],
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        !out.status.success() && err.contains("not registered"),
        "{err}"
    );
    assert_eq!(stats()["doses_by_number"], serde_json::json!({}));

    // The good one, twice.
    let first = ok(
        d,
        &["import", "ledger", "l.csv", "--municipality", "472131"],
    );
    assert!(first.contains("0 unchanged"), "{first}");
    let again = ok(
        d,
        &["import", "ledger", "l.csv", "--municipality", "472131"],
    );
    assert!(again.contains(" 0 new doses"), "{again}");
    // Export gives back the same bytes (UTF-8 with a BOM), and no My Number.
    ok(
        d,
        &[
            "export",
            "ledger",
            "--municipality",
            "472131",
            "--encoding",
            "utf8",
            "--out",
            "e.csv",
        ],
    );
    let exported = std::fs::read_to_string(d.join("e.csv")).unwrap();
    assert_eq!(exported.strip_prefix('\u{feff}').unwrap(), good);
    let targets = std::fs::read_to_string(d.join("t.csv")).unwrap();
    for line in targets.lines().skip(1) {
        let my_number = line.split(',').nth(9).unwrap();
        assert!(my_number.is_empty() || !exported.contains(my_number));
    }

    // A death by flags file: the report shows the doses after it as errors.
    std::fs::write(
        d.join("flags.csv"),
        format!("宛名番号,死亡日,理由\n{first_address},2021-04-30,死亡届\n"),
    )
    .unwrap();
    let flagged = ok(
        d,
        &["import", "flags", "flags.csv", "--municipality", "472131"],
    );
    assert!(flagged.contains("1 persons changed"), "{flagged}");
    let report: serde_json::Value = serde_json::from_str(&ok(
        d,
        &["quality", "report", "--municipality", "472131", "--json"],
    ))
    .unwrap();
    let errors: Vec<&serde_json::Value> = report
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["severity"] == "error")
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|l| l["address_number"] == first_address.as_str() && l["rule"] == "after_death")
    );

    // Single flags with a reason; a missing person is an error.
    let lifted = ok(
        d,
        &[
            "person",
            "flags",
            "--municipality",
            "472131",
            "--address-number",
            &first_address,
            "--suspend",
            "--reason",
            "利用停止請求",
        ],
    );
    assert!(lifted.contains("updated"), "{lifted}");
    assert_eq!(stats()["use_suspended"], 1);
    // Disclosure: a private file with everything about the person.
    let out = openvrs(
        d,
        &[
            "person",
            "disclose",
            "--municipality",
            "472131",
            "--address-number",
            &first_address,
            "--format",
            "json",
            "--out",
            "me.json",
        ],
    );
    assert!(out.status.success());
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(d.join("me.json")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let me: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("me.json")).unwrap()).unwrap();
    assert_eq!(me["person"]["address_number"], first_address.as_str());
    assert!(!me["doses"].as_array().unwrap().is_empty());
    assert_eq!(me["changes"][0]["reason"], "死亡届");
    assert_eq!(me["changes"][1]["reason"], "利用停止請求");
    let actions: Vec<&str> = me["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"person.flags"), "{actions:?}");
    ok(
        d,
        &[
            "person",
            "disclose",
            "--municipality",
            "472131",
            "--address-number",
            &first_address,
            "--out",
            "me.html",
        ],
    );
    let html = std::fs::read_to_string(d.join("me.html")).unwrap();
    assert!(html.contains("保有個人情報開示書") && html.contains("死亡届"));
    // Nothing personal on the console.
    let console =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!console.contains(me["person"]["name"].as_str().unwrap()));
    fails(
        d,
        &[
            "person",
            "flags",
            "--municipality",
            "472131",
            "--address-number",
            "424242",
            "--suspend",
            "--reason",
            "x",
        ],
    );
}

fn http_post(addr: SocketAddr, path: &str, token: &str, body: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Every tablet record the server acknowledged survives `kill -9` of the server, none is
/// recorded twice (a retry with the same key after the restart is answered from the first), and
/// the audit chain verifies.
/// A venue device of 472131 (`tablet-1`, 会場A): its token.
fn venue_token(d: &Path) -> String {
    let issued = ok(
        d,
        &[
            "user",
            "add",
            "--id",
            "tablet-1",
            "--role",
            "venue",
            "--municipality",
            "472131",
            "--venue",
            "会場A",
        ],
    );
    issued.trim().rsplit(' ').next().unwrap().to_owned()
}

/// The papers of `t.csv`'s living residents: (OCR line of the first voucher, date of birth as
/// written), one per resident.
fn papers(d: &Path) -> Vec<(String, String)> {
    let csv = std::fs::read_to_string(d.join("t.csv")).unwrap();
    let mut seen = std::collections::HashSet::new();
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter(|c| c[12].is_empty() && seen.insert(c[1].clone()))
        .map(|c| (format!("1{}472131{}", c[4], c[2]), c[7].clone()))
        .collect()
}

#[test]
fn acknowledged_tablet_records_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    ok(
        d,
        &[
            "municipality",
            "add",
            "--code",
            "472131",
            "--name",
            "うるま市",
        ],
    );
    ok(
        d,
        &[
            "gen",
            "residents",
            "--municipality",
            "472131",
            "--count",
            "400",
            "--seed",
            "8",
            "--out",
            "t.csv",
        ],
    );
    ok(
        d,
        &["import", "targets", "t.csv", "--municipality", "472131"],
    );
    let token = venue_token(d);
    let papers = papers(d);
    let body = |i: usize| {
        serde_json::json!({
            "ocr_line": papers[i].0, "birth_date": papers[i].1, "product": "comirnaty",
            "lot": "FA1234", "date": "2021-06-01", "idempotency_key": format!("key-{i}"),
        })
        .to_string()
    };
    let serve = [
        "serve",
        "--plain-http",
        "--lgwan",
        "127.0.0.1:0",
        "--internet",
        "127.0.0.1:0",
    ];
    let (mut server, _, internet, _) = start(d, &serve);
    let (acks, acked) = std::sync::mpsc::channel::<usize>();
    let loader = {
        let token = token.clone();
        let bodies: Vec<String> = (0..papers.len()).map(body).collect();
        std::thread::spawn(move || {
            for (i, b) in bodies.iter().enumerate() {
                match http_post(internet, "/api/venue/doses", &token, b) {
                    Ok(r) if r.starts_with("HTTP/1.1 201") => {
                        if acks.send(i).is_err() {
                            break;
                        }
                    }
                    Ok(r) if r.is_empty() => break, // the server died mid-answer
                    Ok(r) => panic!("unexpected answer: {r}"),
                    Err(_) => break,
                }
            }
        })
    };
    // Kill the server with SIGKILL while the load runs, after some acknowledgements.
    let mut acknowledged: Vec<usize> = acked.iter().take(40).collect();
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    acknowledged.extend(acked.try_iter());
    loader.join().unwrap();
    acknowledged.extend(acked.try_iter());
    assert!(acknowledged.len() >= 40 && acknowledged.len() < papers.len());
    eprintln!(
        "kill -9 after {} of {} records acknowledged",
        acknowledged.len(),
        papers.len()
    );

    let (_server, _, internet, _) = start(d, &serve);
    // Each acknowledged record is there once: its retry answers from the first record.
    for &i in &acknowledged {
        let r = http_post(internet, "/api/venue/doses", &token, &body(i)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(r.contains(r#""replayed":true"#), "record {i} was lost: {r}");
    }
    let stats: serde_json::Value =
        serde_json::from_str(&ok(d, &["stats", "--municipality", "472131", "--json"])).unwrap();
    let doses: u64 = stats["doses_by_number"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    // Acknowledged, plus at most the one in flight when the server died.
    assert!(
        doses >= acknowledged.len() as u64 && doses <= acknowledged.len() as u64 + 1,
        "{doses} doses for {} acknowledged",
        acknowledged.len()
    );
    ok(d, &["audit", "verify", "--municipality", "472131"]);

    // SIGTERM (systemctl stop) under load: the server stops accepting, answers what is in
    // flight, flushes the group commit and exits cleanly - every acknowledged record is there,
    // and nothing that was not acknowledged.
    let (mut server, _, internet, _) = start(d, &serve);
    let (acks, acked) = std::sync::mpsc::channel::<usize>();
    let loader = {
        let token = token.clone();
        let bodies: Vec<(usize, String)> = (0..papers.len())
            .filter(|i| !acknowledged.contains(i))
            .map(|i| (i, body(i)))
            .collect();
        std::thread::spawn(move || {
            for (i, b) in &bodies {
                match http_post(internet, "/api/venue/doses", &token, b) {
                    Ok(r) if r.starts_with("HTTP/1.1 201") => {
                        if acks.send(*i).is_err() {
                            break;
                        }
                    }
                    Ok(r) if r.is_empty() => break,
                    Ok(r) => panic!("unexpected answer: {r}"),
                    Err(_) => break,
                }
            }
        })
    };
    let mut graceful: Vec<usize> = acked.iter().take(40).collect();
    let term = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = server.0.wait().unwrap();
    assert!(exit.success(), "a clean exit after SIGTERM: {exit:?}");
    loader.join().unwrap();
    graceful.extend(acked.try_iter());
    let stats: serde_json::Value =
        serde_json::from_str(&ok(d, &["stats", "--municipality", "472131", "--json"])).unwrap();
    let after: u64 = stats["doses_by_number"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        after,
        doses + graceful.len() as u64,
        "every acknowledged record, and only those"
    );
    ok(d, &["audit", "verify", "--municipality", "472131"]);
}

#[test]
fn verify_reads_the_official_smart_health_cards() {
    let dir = tempfile::tempdir().unwrap();
    let v = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/shc");
    let jwks = v.join("issuer/.well-known/jwks.json");
    let crl = v.join("issuer/.well-known/crl/3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s.json");
    let (jwks, crl) = (jwks.to_str().unwrap(), crl.to_str().unwrap());
    for n in ["00", "01", "02"] {
        let file = v.join(format!("example-{n}-e-file.smart-health-card"));
        let out = ok(
            dir.path(),
            &[
                "verify",
                file.to_str().unwrap(),
                "--jwks",
                jwks,
                "--crl",
                crl,
            ],
        );
        assert!(out.contains("[OK] signature"), "{out}");
        let jws = std::fs::read_to_string(v.join(format!("example-{n}-d-jws.txt"))).unwrap();
        let json = ok(
            dir.path(),
            &["verify", jws.trim(), "--jwks", jwks, "--json"],
        );
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["passed"], true, "{json}");
    }
    // The official QR image (SVG).
    let svg = v.join("example-00-g-qr-code-0.svg");
    let out = ok(
        dir.path(),
        &["verify", svg.to_str().unwrap(), "--jwks", jwks],
    );
    assert!(
        out.contains("qr-svg") && out.contains("[OK] signature"),
        "{out}"
    );
    // The chunked example, its three QR texts pasted together.
    let chunks: String = (0..3)
        .map(|i| {
            std::fs::read_to_string(v.join(format!("example-02-f-qr-code-numeric-value-{i}.txt")))
                .unwrap()
        })
        .collect();
    ok(dir.path(), &["verify", &chunks, "--jwks", jwks]);
    // Without the issuer's keys, with a tampered signature, or garbage: a failure, said once.
    let jws = std::fs::read_to_string(v.join("example-00-d-jws.txt")).unwrap();
    let jws = jws.trim();
    fails(dir.path(), &["verify", jws]);
    let tampered = format!(
        "{}{}",
        &jws[..jws.len() - 2],
        if jws.ends_with('A') { "BB" } else { "AA" }
    );
    fails(dir.path(), &["verify", &tampered, "--jwks", jwks]);
    fails(dir.path(), &["verify", "shc:/12345", "--jwks", jwks]);
    // As of a time before the card was issued, it is not valid yet.
    let early = ok_or_fail_stdout(
        dir.path(),
        &[
            "verify",
            jws,
            "--jwks",
            jwks,
            "--at",
            "2020-01-01T00:00:00Z",
        ],
    );
    assert!(early.contains("[NG] expiry"), "{early}");
}

#[test]
fn verify_reads_eu_dccs_and_icao_seals_against_trusted_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    // A real Australian VDS-NC and Australia's CSCA (DER).
    let au = here.join("../openvrs-cert/tests/data/vds-au");
    let (seal, csca) = (au.join("valid.json"), au.join("csca.der"));
    let (seal, csca) = (seal.to_str().unwrap(), csca.to_str().unwrap());
    let out = ok(d, &["verify", seal, "--trust", csca]);
    assert!(
        out.contains("[OK] trust") && out.contains("CITIZEN"),
        "{out}"
    );
    // Without a trusted CSCA the chain cannot be checked: not a pass.
    assert!(ok_or_fail_stdout(d, &["verify", seal]).contains("[NG] trust"));

    // EU DCCs from the EU test data (ES256 and PS256), the signer certificate given as PEM.
    let eu = here.join("../../../shared/vectors/dcc/testdata");
    for file in ["common/CO3.json", "CH/1.json", "common/CO28.json"] {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(eu.join(file)).unwrap()).unwrap();
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            doc["TESTCTX"]["CERTIFICATE"].as_str().unwrap()
        );
        std::fs::write(d.join("signer.pem"), pem).unwrap();
        let text = doc["PREFIX"].as_str().unwrap();
        let at = doc["TESTCTX"]["VALIDATIONCLOCK"].as_str().unwrap();
        let json = ok(
            d,
            &[
                "verify",
                text,
                "--trust",
                "signer.pem",
                "--at",
                at,
                "--json",
            ],
        );
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["passed"], true, "{file}: {json}");
        assert_eq!(report["content"][0]["kind"], "dcc");
        // The same clock as other EU test data writes its clocks: the offset without a colon
        // (`+0000`, `+0200`) and fractional seconds.
        let (time, offset) = match at.strip_suffix('Z') {
            Some(t) => (t.to_owned(), "+0000".to_owned()),
            None => (
                at[..at.len() - 6].to_owned(),
                at[at.len() - 6..].replace(':', ""),
            ),
        };
        let time = if time.contains('.') {
            time
        } else {
            format!("{time}.686")
        };
        let compact = format!("{time}{offset}");
        let json = ok(
            d,
            &[
                "verify",
                text,
                "--trust",
                "signer.pem",
                "--at",
                &compact,
                "--json",
            ],
        );
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["passed"], true, "{file} at {compact}: {json}");
        // Today, years later, the same certificate has expired.
        assert!(
            ok_or_fail_stdout(d, &["verify", text, "--trust", "signer.pem"])
                .contains("[NG] expiry")
        );
    }
    fails(d, &["verify", "HC1:not-base45~"]);
}

fn ok_or_fail_stdout(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(openvrs(dir, args).stdout).unwrap()
}

#[test]
fn signing_keys_are_made_once_rotated_and_published() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["init"]);
    let made = ok(dir.path(), &["keys", "init"]);
    assert!(made.contains("kid "), "{made}");
    fails(dir.path(), &["keys", "init"]);
    ok(dir.path(), &["keys", "rotate", "shc"]);
    let jwks: serde_json::Value = serde_json::from_str(&ok(dir.path(), &["keys", "jwks"])).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the retired key stays published");
    for k in keys {
        assert_eq!(
            (k["kty"].as_str(), k["alg"].as_str()),
            (Some("EC"), Some("ES256"))
        );
        assert!(k.get("d").is_none(), "never a private part");
    }
}

/// A town with residents and their vaccination histories, and the deployment's keys.
fn town_with_keys(d: &Path) -> (Vec<String>, Vec<String>) {
    town_with_keys_on(d, None)
}

/// The same, on the database at `database_url` (SQLite in the data directory when `None`).
/// A data directory with うるま市, 40 synthetic residents imported (`t.csv`) and their doses
/// written to `l.csv`, not yet imported.
fn town_files(d: &Path, database_url: Option<&str>) {
    match database_url {
        Some(url) => ok(d, &["--database-url", url, "init"]),
        None => ok(d, &["init"]),
    };
    ok(
        d,
        &[
            "municipality",
            "add",
            "--code",
            "472131",
            "--name",
            "うるま市",
        ],
    );
    for (what, out) in [("residents", "t.csv"), ("ledger", "l.csv")] {
        ok(
            d,
            &[
                "gen",
                what,
                "--municipality",
                "472131",
                "--count",
                "40",
                "--seed",
                "7",
                "--out",
                out,
            ],
        );
    }
    ok(
        d,
        &["import", "targets", "t.csv", "--municipality", "472131"],
    );
}

fn town_with_keys_on(d: &Path, database_url: Option<&str>) -> (Vec<String>, Vec<String>) {
    town_files(d, database_url);
    ok(
        d,
        &["import", "ledger", "l.csv", "--municipality", "472131"],
    );
    let column = |file: &str, col: usize| -> Vec<String> {
        std::fs::read_to_string(d.join(file))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(col).unwrap().to_owned())
            .collect()
    };
    let vaccinated = column("l.csv", 0);
    let unvaccinated = column("t.csv", 1)
        .into_iter()
        .filter(|a| !vaccinated.contains(a))
        .collect();
    let made = ok(d, &["keys", "init"]);
    for kind in ["shc", "csca", "vds", "dcc"] {
        assert!(made.contains(&format!("created: {kind} kid")), "{made}");
    }
    (vaccinated, unvaccinated)
}

#[test]
fn certificates_are_issued_verified_by_their_formats_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (vaccinated, unvaccinated) = town_with_keys(d);
    let a = vaccinated[0].as_str();
    std::fs::write(d.join("jwks.json"), ok(d, &["keys", "jwks"])).unwrap();
    let certs = ok(d, &["keys", "certs"]);
    assert_eq!(certs.matches("BEGIN CERTIFICATE").count(), 3, "{certs}");
    std::fs::write(d.join("trust.pem"), &certs).unwrap();
    let issue = |extra: &[&str]| -> String {
        let mut args = vec![
            "certificate",
            "issue",
            "--municipality",
            "472131",
            "--address-number",
        ];
        args.extend_from_slice(extra);
        ok(d, &args)
    };
    let passport = "TANAKA HANAKO,JPN,TR1234567";

    // Domestic SMART Health Card, its QR image too; both verify against the published keys.
    let out = issue(&[
        a,
        "--kind",
        "domestic",
        "--format",
        "shc",
        "--out",
        "c.smart-health-card",
        "--qr-png",
        "c.png",
    ]);
    assert!(out.contains("issued: certificate "), "{out}");
    let shc_id = out.split_whitespace().nth(4).unwrap().to_owned();
    for file in ["c.smart-health-card", "c.png"] {
        let report: serde_json::Value =
            serde_json::from_str(&ok(d, &["verify", file, "--jwks", "jwks.json", "--json"]))
                .unwrap();
        assert_eq!(report["passed"], true, "{report}");
        let bundle = &report["content"][0]["fhirBundle"];
        assert_eq!(bundle["entry"][0]["resource"]["resourceType"], "Patient");
        assert!(
            bundle["entry"].as_array().unwrap().len() >= 2,
            "at least one dose"
        );
    }
    // Overseas: ICAO VDS-NC and EU DCC, with the passport's name, chained to our CSCA / signer.
    issue(&[
        a,
        "--kind",
        "overseas",
        "--passport",
        passport,
        "--format",
        "vds",
        "--out",
        "c.vds.json",
        "--qr-png",
        "vds.png",
    ]);
    issue(&[
        a,
        "--kind",
        "overseas",
        "--passport",
        passport,
        "--format",
        "dcc",
        "--out",
        "c.dcc.txt",
        "--qr-png",
        "dcc.png",
    ]);
    for (file, kind) in [
        ("c.vds.json", "vds"),
        ("vds.png", "vds"),
        ("c.dcc.txt", "dcc"),
        ("dcc.png", "dcc"),
    ] {
        let json = ok(d, &["verify", file, "--trust", "trust.pem", "--json"]);
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["passed"], true, "{file}: {json}");
        assert_eq!(report["content"][0]["kind"], kind);
        assert!(json.contains("TANAKA"), "{json}");
    }
    // The paper certificate: a PDF with the font subset embedded.
    issue(&[
        a,
        "--kind",
        "overseas",
        "--passport",
        passport,
        "--format",
        "pdf",
        "--out",
        "c.pdf",
    ]);
    let pdf = std::fs::read(d.join("c.pdf")).unwrap();
    assert!(
        pdf.starts_with(b"%PDF-") && pdf.len() < 300_000,
        "{} bytes",
        pdf.len()
    );
    assert!(
        pdf.windows(9).any(|w| w == b"FontFile2"),
        "the font is embedded"
    );
    // Refusals, each clear, nothing recorded.
    let refused = |extra: &[&str]| -> String {
        let mut args = vec![
            "certificate",
            "issue",
            "--municipality",
            "472131",
            "--address-number",
        ];
        args.extend_from_slice(extra);
        fails(d, &args)
    };
    // The passport's MRZ instead of typed fields (the ICAO specimen), check digits verified.
    std::fs::write(
        d.join("mrz.txt"),
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10\n",
    )
    .unwrap();
    issue(&[
        a,
        "--kind",
        "overseas",
        "--passport-mrz",
        "mrz.txt",
        "--format",
        "vds",
        "--out",
        "mrz.vds.json",
    ]);
    assert!(
        std::fs::read_to_string(d.join("mrz.vds.json"))
            .unwrap()
            .contains("ERIKSSON ANNA MARIA")
    );
    std::fs::write(
        d.join("bad-mrz.txt"),
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C46UTO7408122F1204159ZE184226B<<<<<10\n",
    )
    .unwrap();
    let e = refused(&[
        a,
        "--kind",
        "overseas",
        "--passport-mrz",
        "bad-mrz.txt",
        "--format",
        "vds",
        "--out",
        "x",
    ]);
    assert!(e.contains("check digit"), "{e}");
    let e = refused(&[a, "--kind", "domestic", "--format", "vds", "--out", "x"]);
    assert!(e.contains("passport"), "{e}");
    let e = refused(&[
        &unvaccinated[0],
        "--kind",
        "domestic",
        "--format",
        "shc",
        "--out",
        "x",
    ]);
    assert!(
        e.contains("接種済みの記録がない") && e.contains("completed dose"),
        "{e}"
    );
    let e = refused(&[
        a,
        "--kind",
        "overseas",
        "--passport",
        "TANAKA,JPN,TR1234567",
        "--format",
        "vds",
        "--out",
        "x",
    ]);
    assert!(e.contains("romanized name"), "{e}");
    let e = refused(&[
        "0000000001",
        "--kind",
        "domestic",
        "--format",
        "shc",
        "--out",
        "x",
    ]);
    assert!(e.contains("no such person"), "{e}");
    for (flag, value, why) in [
        ("--deceased", Some("20230101"), "deceased"),
        ("--suspend", None, "suspended"),
    ] {
        let b = vaccinated[1].as_str();
        let mut args = vec![
            "person",
            "flags",
            "--municipality",
            "472131",
            "--address-number",
            b,
            flag,
        ];
        args.extend(value);
        args.extend(["--reason", "テスト"]);
        ok(d, &args);
        let e = refused(&[b, "--kind", "domestic", "--format", "shc", "--out", "x"]);
        assert!(e.contains(why), "{e}");
        let mut clear = vec![
            "person",
            "flags",
            "--municipality",
            "472131",
            "--address-number",
            b,
        ];
        clear.extend(if flag == "--deceased" {
            vec!["--deceased", "clear"]
        } else {
            vec!["--lift-suspension"]
        });
        clear.extend(["--reason", "テスト"]);
        ok(d, &clear);
    }
    assert!(!d.join("x").exists());
    let list = ok(d, &["certificate", "list", "--municipality", "472131"]);
    assert_eq!(
        list.lines().count(),
        6,
        "a header and the five issued: {list}"
    );
    assert!(
        !list.contains("TANAKA"),
        "no personal value in the list: {list}"
    );

    // Revocation: the card's rid joins the published list and verification says revoked.
    ok(
        d,
        &[
            "certificate",
            "revoke",
            "--municipality",
            "472131",
            "--id",
            &shc_id,
            "--reason",
            "再発行のため",
        ],
    );
    fails(
        d,
        &[
            "certificate",
            "revoke",
            "--municipality",
            "472131",
            "--id",
            &shc_id,
            "--reason",
            "again",
        ],
    );
    fails(
        d,
        &[
            "certificate",
            "revoke",
            "--municipality",
            "472131",
            "--id",
            "NOSUCHID0000",
            "--reason",
            "x",
        ],
    );
    let crl = ok(d, &["certificate", "crl"]);
    std::fs::write(d.join("crl.json"), &crl).unwrap();
    let crl: serde_json::Value = serde_json::from_str(&crl).unwrap();
    assert_eq!(
        (crl["ctr"].as_u64(), crl["rids"].as_array().map(Vec::len)),
        (Some(1), Some(1))
    );
    let jwks: serde_json::Value = serde_json::from_str(&ok(d, &["keys", "jwks"])).unwrap();
    assert_eq!(jwks["keys"][0]["crlVersion"], 1);
    let out = ok_or_fail_stdout(
        d,
        &[
            "verify",
            "c.smart-health-card",
            "--jwks",
            "jwks.json",
            "--crl",
            "crl.json",
        ],
    );
    assert!(out.contains("[NG] revocation"), "{out}");
    fails(
        d,
        &[
            "verify",
            "c.smart-health-card",
            "--jwks",
            "jwks.json",
            "--crl",
            "crl.json",
        ],
    );

    // The person's disclosure lists what was issued to them, and the revocation.
    let me = disclosure(d, a);
    let issued = me["certificates"].as_array().unwrap();
    assert_eq!(issued.len(), 5, "{me}");
    assert!(
        issued
            .iter()
            .any(|c| c["id"] == shc_id.as_str() && c["revocation_reason"] == "再発行のため")
    );

    // Every act is in the municipality's chain, which still verifies.
    ok(d, &["audit", "verify", "--municipality", "472131"]);
}

#[test]
fn a_simulated_card_gives_its_signed_data_for_the_pin_and_locks_after_three_wrong_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init"]);
    fails(
        d,
        &[
            "card",
            "new",
            "--my-number",
            "123456789018",
            "--name",
            "宇留間 花子",
            "--birth-date",
            "1980-04-01",
            "--pin",
            "1234",
            "--out",
            "card.json",
        ],
    );
    ok(d, &["card", "issuer-init"]);
    fails(d, &["card", "issuer-init"]);
    // Bad face data is refused before a card is made.
    let e = fails(
        d,
        &[
            "card",
            "new",
            "--my-number",
            "123456789012",
            "--name",
            "宇留間 花子",
            "--birth-date",
            "1980-04-01",
            "--pin",
            "1234",
            "--out",
            "bad.json",
        ],
    );
    assert!(!e.contains("123456789012"), "{e}");
    fails(
        d,
        &[
            "card",
            "new",
            "--my-number",
            "123456789018",
            "--name",
            "宇留間 花子",
            "--birth-date",
            "1980-04-01",
            "--pin",
            "12",
            "--out",
            "bad.json",
        ],
    );
    assert!(!d.join("bad.json").exists());
    ok(
        d,
        &[
            "card",
            "new",
            "--my-number",
            "123456789018",
            "--name",
            "宇留間 花子",
            "--birth-date",
            "昭和55年4月1日",
            "--sex",
            "2",
            "--address",
            "沖縄県うるま市",
            "--pin",
            "1234",
            "--out",
            "card.json",
        ],
    );
    let file = std::fs::read_to_string(d.join("card.json")).unwrap();
    assert!(
        !file.contains("123456789018") && !file.contains("宇留間"),
        "sealed: {file}"
    );

    let e = fails(
        d,
        &[
            "card",
            "read",
            "--card",
            "card.json",
            "--pin",
            "0000",
            "--out",
            "data.json",
        ],
    );
    assert!(e.contains("2 tries left"), "{e}");
    ok(
        d,
        &[
            "card",
            "read",
            "--card",
            "card.json",
            "--pin",
            "1234",
            "--out",
            "data.json",
        ],
    );
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("data.json")).unwrap()).unwrap();
    assert_eq!(data["data"]["my_number"], "123456789018");
    assert_eq!(data["data"]["birth_date"], "1980-04-01");
    ok(d, &["card", "verify", "--data", "data.json"]);
    // Altered data does not verify.
    let text = std::fs::read_to_string(d.join("data.json")).unwrap();
    std::fs::write(
        d.join("altered.json"),
        text.replace("1980-04-01", "1990-04-01"),
    )
    .unwrap();
    let e = fails(d, &["card", "verify", "--data", "altered.json"]);
    assert!(e.contains("signature"), "{e}");
    // Three wrong PINs in a row lock it for good.
    for left in ["2 tries left", "1 tries left"] {
        let e = fails(
            d,
            &[
                "card",
                "read",
                "--card",
                "card.json",
                "--pin",
                "9999",
                "--out",
                "x.json",
            ],
        );
        assert!(e.contains(left), "{e}");
    }
    let e = fails(
        d,
        &[
            "card",
            "read",
            "--card",
            "card.json",
            "--pin",
            "9999",
            "--out",
            "x.json",
        ],
    );
    assert!(e.contains("locked"), "{e}");
    let e = fails(
        d,
        &[
            "card",
            "read",
            "--card",
            "card.json",
            "--pin",
            "1234",
            "--out",
            "x.json",
        ],
    );
    assert!(e.contains("locked"), "{e}");
    assert!(!d.join("x.json").exists());
}

#[test]
fn counter_app_and_kiosk_channels_end_to_end_sqlite() {
    channels_end_to_end(None);
}

/// The same on PostgreSQL.
#[test]
fn counter_app_and_kiosk_channels_end_to_end_postgres() {
    on_postgres(channels_end_to_end);
}

/// Starts `openvrs center serve ARGS` in `work` with `TMPDIR=temp`; its address, and what it
/// logs, gathered as it runs.
fn start_center(
    work: &Path,
    temp: &Path,
    args: &[&str],
) -> (Running, String, std::sync::Arc<std::sync::Mutex<String>>) {
    let child = Command::new(env!("CARGO_BIN_EXE_openvrs"))
        .current_dir(work)
        .env("TMPDIR", temp)
        .env("RUST_LOG", "debug")
        .env_remove("OPENVRS_DATA_DIR")
        .args(["center", "serve"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = running.0.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let mut url = None;
    let mut reader = BufReader::new(running.0.stdout.take().unwrap()).lines();
    for line in reader.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("center ") {
            url = rest
                .split_whitespace()
                .next()
                .map(|u| u.trim_end_matches('/').to_owned());
        }
        if line.contains("Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || reader.for_each(drop));
    (running, url.expect("the center printed its address"), log)
}

fn channels_end_to_end(database_url: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (vaccinated, _) = town_with_keys_on(d, database_url);
    ok(d, &["card", "issuer-init"]);
    let targets = std::fs::read_to_string(d.join("t.csv")).unwrap();
    // Residents with a My Number and no flag: (address number, My Number, name, birth date).
    let residents: Vec<Vec<String>> = targets
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter(|c| !c[9].is_empty() && c[11].is_empty() && c[12].is_empty())
        .collect();
    let with_dose = residents
        .iter()
        .find(|c| vaccinated.contains(&c[1]))
        .unwrap();
    let without_dose = residents
        .iter()
        .find(|c| !vaccinated.contains(&c[1]))
        .unwrap();
    let card = |c: &[String], out: &str| {
        ok(
            d,
            &[
                "card",
                "new",
                "--my-number",
                &c[9],
                "--name",
                &c[5],
                "--birth-date",
                &c[7],
                "--pin",
                "1234",
                "--out",
                out,
            ],
        );
    };
    card(with_dose, "a.json");
    card(without_dose, "b.json");
    assert!(!targets.contains("123456789018"));
    ok(
        d,
        &[
            "card",
            "new",
            "--my-number",
            "123456789018",
            "--name",
            "宇留間 花子",
            "--birth-date",
            "1980-04-01",
            "--pin",
            "1234",
            "--out",
            "stranger.json",
        ],
    );
    // A card made by an issuer the system does not trust.
    let elsewhere = tempfile::tempdir().unwrap();
    let e = elsewhere.path();
    ok(e, &["init"]);
    ok(e, &["card", "issuer-init"]);
    let forged = d.join("forged.json");
    ok(
        e,
        &[
            "card",
            "new",
            "--my-number",
            &with_dose[9],
            "--name",
            &with_dose[5],
            "--birth-date",
            &with_dose[7],
            "--pin",
            "1234",
            "--out",
            forged.to_str().unwrap(),
        ],
    );

    // The center's account and configuration (read-only, outside its working directory).
    let issued = ok(d, &["user", "add", "--id", "center-1", "--role", "center"]);
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path();
    std::fs::write(
        cfg.join("center.token"),
        issued.trim().rsplit(' ').next().unwrap(),
    )
    .unwrap();
    let kiosks = cfg.join("kiosks.txt");
    let kiosks = kiosks.to_str().unwrap();
    let kiosk_token = ok(
        d,
        &["center", "kiosk-add", "--kiosks", kiosks, "--id", "kiosk-1"],
    );
    std::fs::write(cfg.join("kiosk.token"), kiosk_token.trim()).unwrap();
    fails(
        d,
        &["center", "kiosk-add", "--kiosks", kiosks, "--id", "kiosk-1"],
    );
    std::fs::write(cfg.join("stolen.token"), "0".repeat(64)).unwrap();

    let (_server, lgwan, internet, _) = start(
        d,
        &[
            "serve",
            "--lgwan",
            "127.0.0.1:0",
            "--internet",
            "127.0.0.1:0",
        ],
    );
    let work = tempfile::tempdir().unwrap();
    let temp = tempfile::tempdir().unwrap();
    let data = d.join("openvrs-data");
    let issuer_pem = data.join("card-issuer.pem");
    // Real TLS everywhere, with the development CA: system, center, their clients.
    let ca = data.join("tls/dev-ca.pem");
    let ca = ca.to_str().unwrap();
    let (_center, center, center_log) = start_center(
        work.path(),
        temp.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--system",
            &format!("https://{lgwan}"),
            "--system-ca",
            ca,
            "--tls-cert",
            data.join("tls/server.pem").to_str().unwrap(),
            "--tls-key",
            data.join("tls/server.key").to_str().unwrap(),
            "--token-file",
            cfg.join("center.token").to_str().unwrap(),
            "--kiosks",
            kiosks,
            "--card-issuer",
            issuer_pem.to_str().unwrap(),
        ],
    );
    assert!(center.starts_with("https://"), "{center}");
    let server = format!("https://{internet}");
    let kiosk = |card: &str, token: &str, pin: &str, out: &str| -> Output {
        openvrs(
            d,
            &[
                "kiosk",
                "--center",
                &center,
                "--center-ca",
                ca,
                "--token-file",
                cfg.join(token).to_str().unwrap(),
                "--card",
                card,
                "--pin",
                pin,
                "--municipality",
                "472131",
                "--out",
                out,
            ],
        )
    };
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // Kiosk: refused while the town does not offer it; then the PDF, and the reminders.
    let o = kiosk("a.json", "kiosk.token", "1234", "k.pdf");
    assert!(
        !o.status.success() && stderr(&o).contains("kiosk"),
        "{}",
        stderr(&o)
    );
    ok(
        d,
        &["municipality", "kiosk", "--code", "472131", "--set", "on"],
    );
    assert!(ok(d, &["municipality", "list"]).contains("kiosk"));
    let o = kiosk("a.json", "kiosk.token", "1234", "k.pdf");
    assert!(o.status.success(), "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("take your card") && said.contains("take it with you"),
        "{said}"
    );
    assert!(
        std::fs::read(d.join("k.pdf"))
            .unwrap()
            .starts_with(b"%PDF-")
    );
    for (card, token, expected) in [
        ("a.json", "stolen.token", "not a registered kiosk"),
        (forged.to_str().unwrap(), "kiosk.token", "card issuer"),
        ("b.json", "kiosk.token", "dose"),
        (
            "stranger.json",
            "kiosk.token",
            "no record in the chosen municipality",
        ),
    ] {
        let o = kiosk(card, token, "1234", "x.pdf");
        assert!(!o.status.success(), "{card} {token}");
        assert!(stderr(&o).contains(expected), "{card}: {}", stderr(&o));
    }
    assert!(!d.join("x.pdf").exists());

    // The counter: staff sign in on the LGWAN listener and print the PDF.
    let issued = ok(
        d,
        &[
            "user",
            "add",
            "--id",
            "staff-1",
            "--role",
            "staff",
            "--municipality",
            "472131",
        ],
    );
    let password = issued.trim().rsplit(' ').next().unwrap();
    let roots = openvrs_cert::pki::read_certificates(&std::fs::read(ca).unwrap())
        .unwrap()
        .iter()
        .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots)))
                .build(),
        )
        .build()
        .into();
    let login = serde_json::json!({"user": "staff-1", "password": password}).to_string();
    let mut answer = agent
        .post(&format!("https://{lgwan}/api/login"))
        .header("content-type", "application/json")
        .send(login.as_bytes())
        .unwrap();
    assert_eq!(answer.status(), 200);
    let cookie = answer.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body: serde_json::Value =
        serde_json::from_slice(&answer.body_mut().read_to_vec().unwrap()).unwrap();
    let ask = r#"{"kind": "overseas", "format": "pdf", "passport_name": "TANAKA HANAKO", "nationality": "JPN", "passport_number": "TR1234567"}"#;
    let mut answer = agent
        .post(&format!(
            "https://{lgwan}/api/municipalities/472131/persons/{}/certificates",
            with_dose[1]
        ))
        .header("cookie", &cookie)
        .header("x-csrf-token", body["csrf_token"].as_str().unwrap())
        .header("content-type", "application/json")
        .send(ask.as_bytes())
        .unwrap();
    assert_eq!(answer.status(), 201);
    assert_eq!(answer.headers()["content-type"], "application/pdf");
    assert!(
        answer
            .body_mut()
            .read_to_vec()
            .unwrap()
            .starts_with(b"%PDF-")
    );

    // The resident app: the card file, then verified as anyone would.
    let app = |card: &str, pin: &str, extra: &[&str]| -> Output {
        let mut args = vec![
            "app",
            "request",
            "--server",
            &server,
            "--server-ca",
            ca,
            "--card",
            card,
            "--pin",
            pin,
            "--municipality",
            "472131",
            "--out",
            "a.smart-health-card",
        ];
        args.extend_from_slice(extra);
        openvrs(d, &args)
    };
    let o = app("a.json", "1234", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(d.join("jwks.json"), ok(d, &["keys", "jwks"])).unwrap();
    std::fs::write(d.join("trust.pem"), ok(d, &["keys", "certs"])).unwrap();
    ok(d, &["verify", "a.smart-health-card", "--jwks", "jwks.json"]);
    let o = app(
        "a.json",
        "1234",
        &["--overseas", "--passport", "TANAKA HANAKO,JPN,TR1234567"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let report = ok(
        d,
        &["verify", "a.vds.json", "--trust", "trust.pem", "--json"],
    );
    assert!(report.contains("TANAKA"), "{report}");
    for (card, pin, expected) in [
        (forged.to_str().unwrap(), "1234", "card issuer"),
        ("b.json", "1234", "dose"),
        (
            "stranger.json",
            "1234",
            "no record in the chosen municipality",
        ),
        ("a.json", "0000", "2 tries left"),
    ] {
        let o = app(card, pin, &[]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(expected), "{card}: {}", stderr(&o));
    }
    let o = app("a.json", "1234", &["--overseas"]);
    assert!(stderr(&o).contains("passport"), "{}", stderr(&o));
    // Three wrong PINs in a row lock the card: the right one no longer opens it.
    for _ in 0..3 {
        app("b.json", "9999", &[]);
    }
    let o = app("b.json", "1234", &[]);
    assert!(stderr(&o).contains("locked"), "{}", stderr(&o));

    // Every channel is in the record: console-free, with app and kiosk channels.
    let list = ok(d, &["certificate", "list", "--municipality", "472131"]);
    assert_eq!(list.matches("\tkiosk\t").count(), 1, "{list}");
    assert_eq!(list.matches("\tcounter\t").count(), 1, "{list}");
    assert_eq!(list.matches("\tapp\t").count(), 3, "{list}");

    // The center kept nothing: its working and temporary directories are empty, and its log
    // holds no My Number, name or birth date - only the security events, by kiosk and client.
    for dir in [work.path(), temp.path()] {
        assert_eq!(
            std::fs::read_dir(dir).unwrap().count(),
            0,
            "{}",
            dir.display()
        );
    }
    let log = center_log.lock().unwrap().clone();
    assert!(
        log.contains("unknown_kiosk") && log.contains("forged_card"),
        "{log}"
    );
    for c in [with_dose, without_dose] {
        for value in [&c[9], &c[5], &c[7]] {
            assert!(!log.contains(value.as_str()), "{value} in the center's log");
        }
    }
}

/// A backup taken while tablets record doses restores into a new data directory, checked
/// against its manifest (counts, every audit chain); taken again at rest, the restore holds
/// every record the original holds. Altered files, another master key and a non-empty target
/// are refused, and nothing is left behind.
/// Venue tablets recording doses, one after another, until stopped; each must be acknowledged.
struct TabletLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    written: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl TabletLoad {
    fn start(internet: SocketAddr, token: String, papers: Vec<(String, String)>) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let written = std::sync::Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, written) = (stop.clone(), written.clone());
            std::thread::spawn(move || {
                let mut sent = 0usize;
                while !stop.load(SeqCst) {
                    let (ocr, birth) = &papers[sent % papers.len()];
                    let body = serde_json::json!({
                        "ocr_line": ocr, "birth_date": birth, "product": "comirnaty",
                        "lot": "FA1234", "date": "2021-06-01",
                        "idempotency_key": format!("load-{sent}"),
                    })
                    .to_string();
                    let answer = http_post(internet, "/api/venue/doses", &token, &body).unwrap();
                    assert!(answer.starts_with("HTTP/1.1 2"), "{answer:.200}");
                    sent += 1;
                    written.store(sent, SeqCst);
                }
            })
        };
        Self {
            stop,
            written,
            thread,
        }
    }

    fn written(&self) -> usize {
        self.written.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Until `n` records were acknowledged (or the load failed).
    fn wait_for(&self, n: usize) {
        while self.written() < n {
            assert!(!self.thread.is_finished(), "the tablet load stopped");
            std::thread::yield_now();
        }
    }

    /// Stops it; panics if any record was refused.
    fn stop(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let written = self.written.clone();
        self.thread.join().unwrap();
        written.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn backup_under_write_load_restores_every_record_sqlite() {
    backup_under_write_load_restores_every_record(None);
}

#[test]
fn backup_under_write_load_restores_every_record_postgres() {
    on_postgres(backup_under_write_load_restores_every_record);
}

/// New empty PostgreSQL databases beside the test's own (a PostgreSQL backup restores into one),
/// dropped with this.
struct EmptyDatabases {
    base: String,
    made: Vec<String>,
}

impl EmptyDatabases {
    fn new(url: &str) -> Self {
        Self {
            base: url.to_owned(),
            made: Vec::new(),
        }
    }

    /// The URL of a new, empty database (same server, user and options).
    fn make(&mut self) -> String {
        let name = format!(
            "restore_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let mut client = postgres::Client::connect(&self.base, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        self.made.push(name.clone());
        let (path, options) = self.base.split_once('?').unwrap_or((&self.base, ""));
        let (server, _) = path.rsplit_once('/').unwrap();
        format!("{server}/{name}?{options}")
    }
}

impl Drop for EmptyDatabases {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.base, postgres::NoTls) {
            for name in &self.made {
                let _ =
                    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

fn backup_under_write_load_restores_every_record(database_url: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    town_with_keys_on(d, database_url);
    let mut databases = database_url.map(EmptyDatabases::new);
    // Where a restore goes: a data directory, and for PostgreSQL a new empty database too.
    let mut into = |dir: &str| -> Vec<String> {
        let mut args = vec!["--data-dir".to_owned(), dir.to_owned()];
        if let Some(dbs) = databases.as_mut() {
            args.extend(["--database-url".to_owned(), dbs.make()]);
        }
        args
    };
    let restore = |target: &[String], file: &str, key: &str| -> Vec<String> {
        let mut args = target.to_vec();
        args.extend(["restore", file, "--master-key-file", key].map(str::to_owned));
        args
    };
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let token = venue_token(d);
    let papers = papers(d);
    let (_server, _, internet, _) = start(
        d,
        &[
            "serve",
            "--plain-http",
            "--lgwan",
            "127.0.0.1:0",
            "--internet",
            "127.0.0.1:0",
        ],
    );
    let load = TabletLoad::start(internet, token, papers);
    // Under load: the copy is one consistent snapshot while records keep being written.
    load.wait_for(20);
    let before = load.written();
    ok(d, &["backup", "--out", "under-load.bak"]);
    assert!(
        load.written() > before,
        "records were written during the backup"
    );
    load.stop();
    let key = d.join("openvrs-data/master.key");
    let key = key.to_str().unwrap();
    let r1 = into("r1");
    let restored = ok(d, &strs(&restore(&r1, "under-load.bak", key)));
    assert!(
        restored.contains("verified counts and audit logs"),
        "{restored}"
    );
    ok(
        d,
        &[
            "--data-dir",
            "r1",
            "audit",
            "verify",
            "--municipality",
            "472131",
        ],
    );

    // At rest: every record is the same.
    ok(d, &["backup", "--out", "at-rest.bak"]);
    ok(d, &strs(&restore(&into("r2"), "at-rest.bak", key)));
    for (dir, out) in [("openvrs-data", "a.csv"), ("r2", "b.csv")] {
        ok(
            d,
            &[
                "--data-dir",
                dir,
                "export",
                "ledger",
                "--municipality",
                "472131",
                "--out",
                out,
            ],
        );
    }
    assert_eq!(
        std::fs::read(d.join("a.csv")).unwrap(),
        std::fs::read(d.join("b.csv")).unwrap()
    );
    let stats = |dir: &str| {
        ok(
            d,
            &[
                "--data-dir",
                dir,
                "stats",
                "--municipality",
                "472131",
                "--json",
            ],
        )
    };
    assert_eq!(stats("openvrs-data"), stats("r2"));
    let certificates = |dir: &str| {
        ok(
            d,
            &[
                "--data-dir",
                dir,
                "certificate",
                "list",
                "--municipality",
                "472131",
            ],
        )
    };
    assert_eq!(certificates("openvrs-data"), certificates("r2"));

    // Refusals: nothing is left behind.
    let file = std::fs::read(d.join("at-rest.bak")).unwrap();
    assert!(
        !String::from_utf8_lossy(&file).contains("うるま"),
        "no names in the clear"
    );
    let mut altered = file.clone();
    let at = altered.len() - 100;
    altered[at] ^= 1;
    std::fs::write(d.join("altered.bak"), &altered).unwrap();
    std::fs::write(d.join("other.key"), "11".repeat(32)).unwrap();
    std::fs::write(d.join("short.bak"), &file[..file.len() / 2]).unwrap();
    let r3 = into("r3");
    let e = fails(d, &strs(&restore(&r3, "altered.bak", key)));
    assert!(e.contains("cannot be decrypted"), "{e}");
    let e = fails(d, &strs(&restore(&r3, "at-rest.bak", "other.key")));
    assert!(e.contains("cannot be decrypted"), "{e}");
    fails(d, &strs(&restore(&r3, "short.bak", key)));
    fails(d, &strs(&restore(&r3, "t.csv", key)));
    // The other backend's way of restoring is refused.
    let e = match database_url {
        None => fails(
            d,
            &strs(&restore(
                &["--data-dir", "r3", "--database-url", "postgres://h/db"].map(str::to_owned),
                "at-rest.bak",
                key,
            )),
        ),
        Some(_) => fails(
            d,
            &strs(&restore(
                &["--data-dir", "r3"].map(str::to_owned),
                "at-rest.bak",
                key,
            )),
        ),
    };
    assert!(e.contains("--database-url"), "{e}");
    assert!(!d.join("r3").exists() && !d.join("r3.restoring").exists());
    let e = fails(d, &strs(&restore(&r1, "at-rest.bak", key)));
    assert!(e.contains("not empty"), "{e}");
    if database_url.is_some() {
        // A new data directory, but the database r1 was restored into: refused, left as it was.
        let mut r4 = r1.clone();
        r4[1] = "r4".into();
        let e = fails(d, &strs(&restore(&r4, "at-rest.bak", key)));
        assert!(e.contains("must be empty"), "{e}");
        assert!(!d.join("r4").exists() && !d.join("r4.restoring").exists());
        ok(
            d,
            &[
                "--data-dir",
                "r1",
                "audit",
                "verify",
                "--municipality",
                "472131",
            ],
        );
    }
}

/// `doctor` passes a fresh installation with warnings (no keys yet, development TLS), passes
/// once the keys exist, and fails - naming the fix - on a key file others can read and on an
/// altered audit log.
#[test]
fn doctor_says_what_is_wrong_and_how_to_fix_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    ok(
        d,
        &[
            "municipality",
            "add",
            "--code",
            "472131",
            "--name",
            "うるま市",
        ],
    );
    let fresh = ok(d, &["doctor"]);
    assert!(
        fresh.contains("WARN shc key") && fresh.contains("openvrs keys init"),
        "{fresh}"
    );
    assert!(fresh.contains("development certificate"), "{fresh}");
    // The development certificate is valid for about two years, not for ever (rcgen's default
    // had it end in the year 4096).
    let days: i64 = fresh
        .lines()
        .find(|l| l.contains("tls certificate") && l.contains("valid for"))
        .and_then(|l| l.split("valid for ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{fresh}"));
    assert!((800..=825).contains(&days), "{days}: {fresh}");
    assert!(!fresh.contains("FAIL"), "{fresh}");
    assert!(
        fresh.contains("OK   database") && fresh.contains("OK   audit logs"),
        "{fresh}"
    );
    ok(d, &["keys", "init"]);
    ok(d, &["card", "issuer-init"]);
    let ready = ok(d, &["doctor"]);
    for check in [
        "shc key",
        "vds key",
        "dcc key",
        "intake key",
        "card issuer certificate",
    ] {
        assert!(ready.contains(&format!("OK   {check}")), "{check}: {ready}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = d.join("openvrs-data/master.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = openvrs(d, &["doctor"]);
        assert!(!out.status.success());
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("FAIL master key") && said.contains("chmod 600"),
            "{said}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let db = rusqlite::Connection::open(d.join("openvrs-data/openvrs.sqlite")).unwrap();
    db.execute("UPDATE audit_log SET action = 'nothing' WHERE seq = 1", [])
        .unwrap();
    drop(db);
    let out = openvrs(d, &["doctor"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("FAIL audit logs") && said.contains("472131"),
        "{said}"
    );
}

/// `[backup] dir` set: `openvrs backup` and the running server write backups there and keep the
/// newest `keep`; the doctor tells their age. A config with several errors names them all.
#[test]
fn scheduled_backups_keep_the_newest_and_the_doctor_watches_them() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    ok(
        d,
        &[
            "municipality",
            "add",
            "--code",
            "472131",
            "--name",
            "うるま市",
        ],
    );
    let e = fails(d, &["backup"]);
    assert!(e.contains("[backup] dir"), "{e}");
    let said = String::from_utf8(openvrs(d, &["doctor"]).stdout).unwrap();
    assert!(
        said.contains("WARN backup") && said.contains("[backup] dir"),
        "{said}"
    );

    let config = d.join("openvrs-data/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("dir = \"\"", "dir = \"backups\"")
            .replace("keep = 14", "keep = 2"),
    )
    .unwrap();
    let said = ok(d, &["doctor"]);
    assert!(
        said.contains("WARN backup") && said.contains("none yet"),
        "{said}"
    );
    let backups = d.join("openvrs-data/backups");
    let list = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&backups)
            .map(|r| {
                r.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    ok(d, &["backup"]);
    let first = list();
    assert_eq!(first.len(), 1, "{first:?}");
    ok(d, &["backup"]);
    ok(d, &["backup"]);
    let kept = list();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(!kept.contains(&first[0]), "the oldest went: {kept:?}");
    assert!(ok(d, &["doctor"]).contains("OK   backup"));

    // The server makes one at once when there is none recent enough.
    std::fs::remove_dir_all(&backups).unwrap();
    let server = start(
        d,
        &[
            "serve",
            "--plain-http",
            "--lgwan",
            "127.0.0.1:0",
            "--internet",
            "127.0.0.1:0",
        ],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !list().iter().any(|n| n.ends_with(".bak")) {
        assert!(std::time::Instant::now() < deadline, "no scheduled backup");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(server);
    let made = list();
    let file = backups.join(made.iter().find(|n| n.ends_with(".bak")).unwrap());
    let key = d.join("openvrs-data/master.key");
    ok(
        d,
        &[
            "--data-dir",
            "restored",
            "restore",
            file.to_str().unwrap(),
            "--master-key-file",
            key.to_str().unwrap(),
        ],
    );

    // Every error of a config file at once.
    std::fs::write(
        &config,
        text.replace("lgwan =", "lgwam =")
            .replace("keep = 14", "keep = 0")
            .replace(
                "requests_per_client_per_minute = 1200",
                "requests_per_client_per_minute = -1",
            ),
    )
    .unwrap();
    let out = openvrs(d, &["stats", "--municipality", "472131"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("3 errors"), "{err}");
    for what in ["[server]", "[security]", "[backup]"] {
        assert!(err.contains(what), "{what}: {err}");
    }
}

/// With `[server] metrics` set, a scraper reads request counts and latencies by route template,
/// group-commit batch sizes and tablet outcomes - and no personal value, id or municipality.
#[test]
fn metrics_are_scraped_without_personal_data() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    ok(
        d,
        &[
            "municipality",
            "add",
            "--code",
            "472131",
            "--name",
            "うるま市",
        ],
    );
    ok(
        d,
        &[
            "gen",
            "residents",
            "--municipality",
            "472131",
            "--count",
            "30",
            "--seed",
            "8",
            "--out",
            "t.csv",
        ],
    );
    ok(
        d,
        &["import", "targets", "t.csv", "--municipality", "472131"],
    );
    let token = venue_token(d);
    let config = d.join("openvrs-data/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("metrics = \"\"", "metrics = \"127.0.0.1:0\""),
    )
    .unwrap();
    let (_server, _, internet, lines) = start(
        d,
        &[
            "serve",
            "--plain-http",
            "--lgwan",
            "127.0.0.1:0",
            "--internet",
            "127.0.0.1:0",
        ],
    );
    let metrics: SocketAddr = lines
        .iter()
        .find_map(|l| l.strip_prefix("metrics"))
        .and_then(|l| l.trim().strip_prefix("http://"))
        .and_then(|l| l.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in {lines:?}"));
    let csv = std::fs::read_to_string(d.join("t.csv")).unwrap();
    let rows: Vec<Vec<String>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    let (ocr, birth) = &papers(d)[0];
    let body = serde_json::json!({
        "ocr_line": ocr, "birth_date": birth,
        "product": "comirnaty", "lot": "FA1234", "date": "2021-06-01", "idempotency_key": "m-1",
    })
    .to_string();
    let answer = http_post(internet, "/api/venue/doses", &token, &body).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer:.300}");
    http_get(internet, "/healthz");
    let scraped = http_get(metrics, "/metrics");
    assert!(
        scraped.contains("application/openmetrics-text"),
        "{scraped:.300}"
    );
    for family in [
        r#"openvrs_http_requests_total{zone="internet",method="POST",route="/api/venue/doses",status="201"} 1"#,
        r#"openvrs_http_requests_total{zone="internet",method="GET",route="/healthz",status="200"} 1"#,
        "openvrs_http_request_duration_seconds_bucket",
        "openvrs_tablet_group_commit_records_count 1",
        r#"openvrs_tablet_records_total{kind="recorded"} 1"#,
        r#"openvrs_database_connections{kind="in_use"} "#,
        r#"openvrs_database_connections{kind="idle"} "#,
        r#"openvrs_database_connections{kind="waiting"} "#,
        "# EOF",
    ] {
        assert!(scraped.contains(family), "{family} in\n{scraped}");
    }
    for c in &rows {
        for value in [&c[1], &c[2], &c[5], &c[7], &c[9]] {
            assert!(
                value.is_empty() || !scraped.contains(value.as_str()),
                "{value} in metrics"
            );
        }
    }
    assert!(!scraped.contains("472131"), "no municipality in metrics");
    // Not on the internet listener.
    assert!(http_get(internet, "/metrics").starts_with("HTTP/1.1 404"));
}

/// Everything held about person `address` of うるま市, as `person disclose --format json` writes it.
fn disclosure(d: &Path, address: &str) -> serde_json::Value {
    ok(
        d,
        &[
            "person",
            "disclose",
            "--municipality",
            "472131",
            "--address-number",
            address,
            "--format",
            "json",
            "--out",
            "disclosure.json",
        ],
    );
    serde_json::from_slice(&std::fs::read(d.join("disclosure.json")).unwrap()).unwrap()
}

/// Runs `openvrs ARGS` with `OPENVRS_CRASH_AT=at`: it must die there, as in a power cut.
fn crashes(dir: &Path, at: &str, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_openvrs"))
        .current_dir(dir)
        .env_remove("OPENVRS_DATA_DIR")
        .env_remove("OPENVRS_DATABASE_URL")
        .env_remove("OPENVRS_MASTER_KEY")
        .env("OPENVRS_CRASH_AT", at)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("aborting"),
        "{args:?} should have crashed at {at}: {err}"
    );
}

#[test]
fn key_rotations_survive_a_crash_half_way_sqlite() {
    key_rotations_survive_a_crash_half_way(None);
}

#[test]
fn key_rotations_survive_a_crash_half_way_postgres() {
    on_postgres(key_rotations_survive_a_crash_half_way);
}

/// The data key is rotated while tablets record doses (reading sealed birth dates), killed
/// half-way and resumed; the master key is rotated and killed before and after the database
/// changed. Every person reads the same throughout, the audit chain holds, certificates are
/// still signed, and the old keys are gone.
fn key_rotations_survive_a_crash_half_way(database_url: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (vaccinated, _) = town_with_keys_on(d, database_url);
    let mut addresses: Vec<String> = std::fs::read_to_string(d.join("t.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().to_owned())
        .collect();
    addresses.dedup();
    let addresses: Vec<String> = addresses.into_iter().step_by(5).collect();
    let identities = || -> Vec<serde_json::Value> {
        addresses
            .iter()
            .map(|a| disclosure(d, a)["person"].clone())
            .collect()
    };
    let stats = || -> serde_json::Value {
        serde_json::from_str(&ok(d, &["stats", "--municipality", "472131", "--json"])).unwrap()
    };
    let before = identities();
    assert_eq!(
        stats()["persons_by_key_version"],
        serde_json::json!({"1": 40})
    );

    // Data key: killed after the second batch of ten, persons half under each key.
    let rotate_data = [
        "keys",
        "rotate",
        "data",
        "--municipality",
        "472131",
        "--batch",
        "10",
    ];
    crashes(d, "data-key-batch-2", &rotate_data);
    assert_eq!(
        stats()["persons_by_key_version"],
        serde_json::json!({"1": 20, "2": 20})
    );
    assert_eq!(identities(), before, "readable half-way");
    let doctor = openvrs(d, &["doctor"]);
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(said.contains("rotation of 472131 is unfinished"), "{said}");

    // Resumed while the server records doses.
    let (_server, _, internet, _) = start(
        d,
        &[
            "serve",
            "--plain-http",
            "--lgwan",
            "127.0.0.1:0",
            "--internet",
            "127.0.0.1:0",
        ],
    );
    let load = TabletLoad::start(internet, venue_token(d), papers(d));
    load.wait_for(5);
    let resumed = ok(d, &rotate_data);
    assert!(
        resumed.contains("resuming the interrupted rotation to data key v2"),
        "{resumed}"
    );
    assert!(resumed.contains("destroyed the old key"), "{resumed}");
    // Stopping joins the load, which panics on any record not acknowledged.
    load.stop();
    drop(_server);
    assert_eq!(
        stats()["persons_by_key_version"],
        serde_json::json!({"2": 40})
    );
    assert_eq!(identities(), before);
    ok(d, &["audit", "verify", "--municipality", "472131"]);

    // Master key: killed after the new key file was written, before the database changed.
    let old_key = std::fs::read_to_string(d.join("openvrs-data/master.key")).unwrap();
    crashes(d, "master-key-written", &["keys", "rotate", "master"]);
    let e = fails(d, &["stats", "--municipality", "472131"]);
    assert!(e.contains("run `openvrs keys rotate master` again"), "{e}");
    let again = ok(d, &["keys", "rotate", "master"]);
    assert!(
        again.contains("had not changed the database: starting again"),
        "{again}"
    );
    assert!(again.contains("rotated the master key"), "{again}");
    let second_key = std::fs::read_to_string(d.join("openvrs-data/master.key")).unwrap();
    assert_ne!(second_key, old_key);
    // Killed after the database was rewrapped, before the key file was replaced.
    crashes(d, "master-key-rewrapped", &["keys", "rotate", "master"]);
    fails(d, &["stats", "--municipality", "472131"]);
    let finished = ok(d, &["keys", "rotate", "master"]);
    assert!(
        finished.contains("finished the interrupted master key rotation"),
        "{finished}"
    );
    let third_key = std::fs::read_to_string(d.join("openvrs-data/master.key")).unwrap();
    assert_ne!(third_key, second_key);
    assert!(!d.join("openvrs-data/master.key.next").exists());
    assert_eq!(identities(), before);
    ok(d, &["audit", "verify", "--municipality", "472131"]);
    let doctor = ok(d, &["doctor"]);
    assert!(!doctor.contains("FAIL"), "{doctor}");
    // Certificates are still signed with the (rewrapped) signing keys.
    ok(
        d,
        &[
            "certificate",
            "issue",
            "--municipality",
            "472131",
            "--address-number",
            &vaccinated[0],
            "--kind",
            "domestic",
            "--format",
            "shc",
            "--out",
            "c.smart-health-card",
        ],
    );
    let jwks = ok(d, &["keys", "jwks"]);
    std::fs::write(d.join("jwks.json"), jwks).unwrap();
    ok(d, &["verify", "c.smart-health-card", "--jwks", "jwks.json"]);
    // The previous master key opens nothing any more.
    let out = Command::new(env!("CARGO_BIN_EXE_openvrs"))
        .current_dir(d)
        .env_remove("OPENVRS_DATA_DIR")
        .env_remove("OPENVRS_DATABASE_URL")
        .env("OPENVRS_MASTER_KEY", old_key.trim())
        .args([
            "person",
            "disclose",
            "--municipality",
            "472131",
            "--address-number",
        ])
        .arg(&addresses[0])
        .args(["--format", "json", "--out", "old.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot decrypt"));
}

/// A bulk inquiry (一括照会) from the console: found rows, a malformed row whose reason has
/// the wave dash of 「1～15桁」, and a row naming a 宛名番号 the asker does not hold (refused,
/// and a security event) - the others go on, and the default Shift_JIS result is whole.
#[test]
fn a_bulk_inquiry_writes_its_shift_jis_result_whole_whatever_its_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    for (code, name) in [("472131", "うるま市"), ("472018", "那覇市")] {
        ok(d, &["municipality", "add", "--code", code, "--name", name]);
        let file = format!("{code}.csv");
        ok(
            d,
            &[
                "gen",
                "residents",
                "--municipality",
                code,
                "--count",
                "5",
                "--seed",
                "3",
                "--out",
                &file,
            ],
        );
        ok(d, &["import", "targets", &file, "--municipality", code]);
    }
    let rows = |file: &str| -> Vec<Vec<String>> {
        std::fs::read_to_string(d.join(file))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(str::to_owned).collect())
            .collect()
    };
    let (uruma, naha) = (rows("472131.csv"), rows("472018.csv"));
    // Naha asks Uruma: one of Uruma's residents, for one of Naha's own 宛名番号.
    let input = format!(
        "照会先自治体コード,個人番号,宛名番号\n472131,{},{}\n472131,{},abc\n472131,{},999999999\n",
        uruma[0][9], naha[0][1], uruma[1][9], uruma[2][9]
    );
    std::fs::write(d.join("ask.csv"), input).unwrap();
    let out = openvrs(
        d,
        &[
            "inquiry",
            "bulk",
            "ask.csv",
            "--municipality",
            "472018",
            "--basis",
            "転入",
            "--out",
            "result.csv",
        ],
    );
    let (said, note) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(out.status.success(), "{note}");
    assert!(note.contains("照会不可としました"), "{note}");
    assert!(
        said.contains("該当あり 1") && said.contains("形式エラー 1") && said.contains("照会不可 1"),
        "{said}"
    );
    let bytes = std::fs::read(d.join("result.csv")).unwrap();
    let (text, _, malformed) = encoding_rs::SHIFT_JIS.decode(&bytes);
    assert!(!malformed, "Shift_JIS throughout");
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains("宛名番号は1～15桁の数字です"), "{text}");
    assert!(
        text.contains("照会不可") && text.contains("自団体の住民にありません"),
        "{text}"
    );
    assert!(!text.contains(&uruma[0][9]), "never a My Number");
    // Refused rows never reached the source, and the security officers can see them.
    let db = rusqlite::Connection::open(d.join("openvrs-data/openvrs.sqlite")).unwrap();
    let events: i64 = db
        .query_row(
            "SELECT count(*) FROM security_events WHERE kind = 'inquiry_not_own_resident' \
             AND municipality_code = '472018'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(events, 1);
    let provisions: i64 = db
        .query_row("SELECT count(*) FROM provisions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(provisions, 1, "only the found row was provided");
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A file that cannot be written whole is not written at all: a ledger holding a character
/// Shift_JIS lacks fails its Shift_JIS export (naming the flag that writes UTF-8), and neither
/// the file nor a piece of it is left; the old file stays as it was.
#[test]
fn an_export_that_fails_leaves_no_partial_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    town_files(d, None);
    let ledger = std::fs::read_to_string(d.join("l.csv")).unwrap();
    let mut lines: Vec<String> = ledger.lines().map(str::to_owned).collect();
    let first: Vec<String> = lines[1].split(',').map(str::to_owned).collect();
    // 会場 (venue) of the first dose: a character outside Shift_JIS.
    let mut changed = first.clone();
    changed[5] = "𠮷野家会場".into();
    lines[1] = changed.join(",");
    std::fs::write(d.join("l2.csv"), lines.join("\r\n") + "\r\n").unwrap();
    ok(
        d,
        &[
            "import",
            "ledger",
            "l2.csv",
            "--municipality",
            "472131",
            "--encoding",
            "utf8",
        ],
    );
    std::fs::write(d.join("out.csv"), "before").unwrap();
    let err = fails(
        d,
        &[
            "export",
            "ledger",
            "--municipality",
            "472131",
            "--out",
            "out.csv",
        ],
    );
    assert!(err.contains("--encoding utf8"), "{err}");
    assert_eq!(
        std::fs::read_to_string(d.join("out.csv")).unwrap(),
        "before"
    );
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".partial")), "{names:?}");
    ok(
        d,
        &[
            "export",
            "ledger",
            "--municipality",
            "472131",
            "--out",
            "out.csv",
            "--encoding",
            "utf8",
        ],
    );
    assert!(
        std::fs::read_to_string(d.join("out.csv"))
            .unwrap()
            .contains("𠮷野家会場")
    );
}

/// `openvrs ... | head`: the reader goes away, and the command ends quietly with the status of
/// a process ended by SIGPIPE, as Unix tools do - whether it prints lines or writes a stream.
/// (The pipe's reading end is closed before the command starts, so every write meets it.)
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["openapi", "--zone", "lgwan"][..],
        &[
            "gen",
            "residents",
            "--municipality",
            "472131",
            "--count",
            "1000",
        ][..],
    ] {
        let (reader, writer) = rustix::pipe::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_openvrs"))
            .current_dir(tmp.path())
            .args(args)
            .stdout(std::process::Stdio::from(writer))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

/// Says once per test binary, past the test harness's capture (straight to standard error), what
/// a plain `cargo test` left untested.
fn skipped_loudly(what: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: {what}: OPENVRS_TEST_DATABASE_URL is not set (./scripts/test sets it) ***\n"
        );
    });
}
