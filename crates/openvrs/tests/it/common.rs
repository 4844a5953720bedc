//! Running the `openvrs` command as a user does: one-off commands, servers started and killed,
//! plain HTTP to them, and the PostgreSQL runs of a scenario.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Child, Command, Output, Stdio},
};

/// The `openvrs` command run in `dir`, with none of its settings taken from the environment.
pub fn command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_openvrs"));
    command
        .current_dir(dir)
        .env_remove("OPENVRS_DATA_DIR")
        .env_remove("OPENVRS_DATABASE_URL")
        .env_remove("OPENVRS_MASTER_KEY");
    command
}

/// Runs `openvrs ARGS` in `dir` to its end.
pub fn openvrs(dir: &Path, args: &[&str]) -> Output {
    command(dir).args(args).output().unwrap()
}

/// Succeeds; its standard output.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = openvrs(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Fails with exactly one line on stderr, Japanese first then English.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let out = openvrs(dir, args);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(" / "), "bilingual: {err}");
    err
}

/// A process the test started, killed when the test is done with it.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` in plain HTTP; the whole answer, head and body.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
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

/// `openvrs serve` in plain HTTP, each listener on a free loopback port (for [`start`]).
pub const SERVE_PLAIN: [&str; 6] = [
    "serve",
    "--plain-http",
    "--lgwan",
    "127.0.0.1:0",
    "--internet",
    "127.0.0.1:0",
];

/// `openvrs serve` in TLS with the development certificates `init` made, each listener on a
/// free loopback port (for [`start`]).
pub const SERVE_TLS: [&str; 5] = [
    "serve",
    "--lgwan",
    "127.0.0.1:0",
    "--internet",
    "127.0.0.1:0",
];

/// Starts `openvrs ARGS` and reads its stdout until both listener lines appeared.
pub fn start(dir: &Path, args: &[&str]) -> (Running, SocketAddr, SocketAddr, Vec<String>) {
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

/// `POST path` of a JSON body in plain HTTP with a bearer token; the whole answer.
pub fn http_post(addr: SocketAddr, path: &str, token: &str, body: &str) -> std::io::Result<String> {
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

/// Its standard output, whether it succeeds or fails (a verification that says NG).
pub fn ok_or_fail_stdout(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(openvrs(dir, args).stdout).unwrap()
}

/// Runs `test` on PostgreSQL, in a schema of its own that is dropped afterwards, when
/// `OPENVRS_TEST_DATABASE_URL` is set (`scripts/test` sets and requires it); says it skipped
/// otherwise.
pub fn on_postgres(test: fn(Option<&str>)) {
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
    // Under the migrations' lock: Citus's DDL of two schemas at once can deadlock.
    let mut t = client.transaction().unwrap();
    t.batch_execute(openvrs_store::MIGRATION_LOCK).unwrap();
    t.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
    t.commit().unwrap();
}

/// Says once per test binary, past the test harness's capture (straight to standard error), what
/// a plain `cargo test` left untested.
pub fn skipped_loudly(what: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: {what}: OPENVRS_TEST_DATABASE_URL is not set (./scripts/test sets it) ***\n"
        );
    });
}
