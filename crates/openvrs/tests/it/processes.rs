//! Two server processes on one database, as a country runs them behind a load balancer
//! (PostgreSQL, and Citus in `scripts/test`'s Citus run): lockouts, rate limits, disabled
//! tokens and tablet records hold across them.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crate::{
    common::{SERVE_PLAIN, ok, on_postgres, start},
    fixtures::{Residents, papers, town, venue_device},
};

/// One HTTP/1.1 request: its status and body.
fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(s, "{head}\r\n{body}").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (status, head.to_owned(), body.to_owned())
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A new account; the secret shown once (its generated password or its token).
fn account(d: &Path, args: &[&str]) -> String {
    let issued = ok(d, &[&["user", "add"][..], args].concat());
    issued.trim().rsplit(' ').next().unwrap().to_owned()
}

fn this_minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
}

#[test]
fn two_processes_share_lockouts_limits_revocations_and_records_postgres() {
    on_postgres(two_processes);
}

fn two_processes(database_url: Option<&str>) {
    let url = database_url.expect("a database both processes share");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    town(d, Some(url), Residents::Imported { count: 30, seed: 3 });
    let config = d.join("openvrs-data/config.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "requests_per_account_per_minute = 1200",
            "requests_per_account_per_minute = 40",
        )
        .replace("token_cache_seconds = 5", "token_cache_seconds = 2");
    assert!(text.contains("= 40") && text.contains("token_cache_seconds = 2"));
    std::fs::write(&config, text).unwrap();
    let venue = |id: &str| venue_device(d, id);
    let (records, limited, revoked) = (venue("tablet-1"), venue("tablet-2"), venue("tablet-3"));
    let clerk = account(
        d,
        &[
            "--id",
            "clerk-1",
            "--role",
            "staff",
            "--municipality",
            "472131",
        ],
    );
    let national = account(d, &["--id", "kuni", "--role", "national"]);
    let (_a, lgwan_a, internet_a, _) = start(d, &SERVE_PLAIN);
    let (_b, lgwan_b, internet_b, _) = start(d, &SERVE_PLAIN);
    let json = [("Content-Type", "application/json")];

    // Sign-in failures alternated between the two lock the account on both.
    let login = |addr, password: &str| {
        call(
            addr,
            "POST",
            "/api/login",
            &json,
            &serde_json::json!({ "user": "clerk-1", "password": password }).to_string(),
        )
    };
    for i in 0..5 {
        let addr = if i % 2 == 0 { lgwan_a } else { lgwan_b };
        let (status, _, body) = login(addr, "not the password at all");
        assert_eq!(status, 401, "{body}");
    }
    for addr in [lgwan_a, lgwan_b] {
        let (status, _, body) = login(addr, &clerk);
        assert_eq!(status, 429, "locked after five failures in all: {body}");
        assert!(body.contains("locked"), "{body}");
    }

    // Tablet records sent to both: each stored once, one intact audit chain.
    let papers = papers(d);
    for (i, (ocr, birth)) in papers.iter().take(10).enumerate() {
        let body = serde_json::json!({
            "ocr_line": ocr, "birth_date": birth, "product": "comirnaty",
            "lot": "FA1234", "date": "2021-06-01", "idempotency_key": format!("two-{i}"),
        })
        .to_string();
        let auth = bearer(&records);
        let headers = [json[0], ("Authorization", auth.as_str())];
        let (first, _, one) = call(internet_a, "POST", "/api/venue/doses", &headers, &body);
        let (again, _, two) = call(internet_b, "POST", "/api/venue/doses", &headers, &body);
        assert_eq!(first, 201, "{one}");
        assert!((200..300).contains(&again), "{two}");
        let dose =
            |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["dose_number"].clone();
        assert_eq!(dose(&one), dose(&two), "the retry answers the first answer");
    }
    let stats = crate::fixtures::stats(d);
    assert_eq!(stats.doses_by_number.get(&1), Some(&10), "stored once each");
    ok(d, &["audit", "verify", "--municipality", "472131"]);

    // The rate limit counts requests to both: 30 to A, then B lets 10 more through. (A window
    // is a clock minute: if one ends half way, the count starts again and so does the check.)
    let me = |addr, token: &str| {
        let auth = bearer(token);
        call(
            addr,
            "GET",
            "/api/venue/me",
            &[("Authorization", auth.as_str())],
            "",
        )
        .0
    };
    let mut checked = false;
    for _ in 0..3 {
        let minute = this_minute();
        let mut sent_to_a = 0;
        while sent_to_a < 30 {
            assert_eq!(me(internet_a, &limited), 200);
            sent_to_a += 1;
        }
        // Until A has shared its count (it does so every half second).
        let mut db = postgres::Client::connect(url, postgres::NoTls).unwrap();
        let window = i64::try_from(minute * 60_000_000).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let total: i64 = db
                .query_opt(
                    "SELECT total FROM shared_counts WHERE counter = 'req:account:tablet-2' \
                     AND window_start = $1",
                    &[&window],
                )
                .unwrap()
                .map_or(0, |r| r.get(0));
            if total >= 30 || this_minute() != minute {
                break;
            }
            assert!(Instant::now() < deadline, "A never shared its count");
            std::thread::yield_now();
        }
        let mut through_b = 0;
        while me(internet_b, &limited) == 200 {
            through_b += 1;
            assert!(through_b <= 40, "B does not see A's count");
        }
        if this_minute() == minute {
            assert_eq!(through_b, 10, "40 a minute across both processes");
            checked = true;
            break;
        }
    }
    assert!(checked, "three clock minutes ended mid-check");

    // A token disabled through one process is refused by the other within the cache's seconds.
    for addr in [internet_a, internet_b] {
        assert_eq!(me(addr, &revoked), 200, "both have it cached");
    }
    let (status, head, body) = call(
        lgwan_a,
        "POST",
        "/api/login",
        &json,
        &serde_json::json!({ "user": "kuni", "password": national }).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let cookie = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or(l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let csrf = serde_json::from_str::<serde_json::Value>(&body).unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let disabled_at = Instant::now();
    let (status, _, body) = call(
        lgwan_a,
        "POST",
        "/api/accounts/tablet-3/disable",
        &[("Cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())],
        "",
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(me(internet_a, &revoked), 401, "A forgets it at once");
    // Polled every 100 ms: the account is held to 40 requests a minute here.
    let refused = loop {
        let status = me(internet_b, &revoked);
        if status != 200 {
            break status;
        }
        assert!(
            disabled_at.elapsed() < Duration::from_secs(3),
            "B still takes a disabled token after the cache's 2 seconds"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(refused, 401);
}
