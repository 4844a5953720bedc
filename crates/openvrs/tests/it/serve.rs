//! The servers: `serve` on its two listeners (LGWAN and internet), TLS by default, `demo`, the
//! user accounts that sign in to them, and the metrics a scraper reads.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
};

use crate::{
    common::{SERVE_PLAIN, SERVE_TLS, fails, http_get, http_post, ok, start},
    fixtures::{Residents, papers, town, venue_token},
};

#[test]
fn serve_answers_on_both_listeners() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    let (_server, lgwan, internet, _) = start(d, &SERVE_PLAIN);
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
    town(d, None, Residents::None);
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
    let (_server, lgwan, _, lines) = start(d, &SERVE_TLS);
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

/// With `[server] metrics` set, a scraper reads request counts and latencies by route template,
/// group-commit batch sizes and tablet outcomes - and no personal value, id or municipality.
#[test]
fn metrics_are_scraped_without_personal_data() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    town(d, None, Residents::Imported { count: 30, seed: 8 });
    let token = venue_token(d);
    let config = d.join("openvrs-data/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("metrics = \"\"", "metrics = \"127.0.0.1:0\""),
    )
    .unwrap();
    let (_server, _, internet, lines) = start(d, &SERVE_PLAIN);
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
