//! The server through its routers and over real sockets: the access matrix generated from the
//! route table, sessions, CSRF, lockout, zones and security events.

#![allow(clippy::unwrap_used)] // tests panic on purpose: that is how they fail

mod answers;
mod matrix;
mod web;
mod world;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
};

use axum::http::StatusCode;
use openvrs_server::{AppState, Listeners, internet_router, lgwan_router, serve};
use world::{Who, World};

#[tokio::test]
async fn each_zone_answers_health_and_version() {
    let w = World::new().await;
    for (zone, name) in [
        (openvrs_server::Zone::Lgwan, "lgwan"),
        (openvrs_server::Zone::Internet, "internet"),
    ] {
        let (status, body) = w.call(zone, "GET", "/healthz", Who::Anonymous, None).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
        let (_, body) = w.call(zone, "GET", "/version", Who::Anonymous, None).await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["zone"], name);
        assert_eq!(v["backend"], "sqlite");
        assert_eq!(
            w.call(zone, "GET", "/nope", Who::Anonymous, None).await.0,
            StatusCode::NOT_FOUND
        );
    }
}

/// A minimal HTTP/1.1 GET over a real socket.
fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_listeners_serve_and_shut_down() {
    let w = World::new().await;
    let localhost: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let listeners = Listeners::bind(localhost, localhost).await.unwrap();
    let (lgwan, internet) = listeners.addrs().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state: AppState = w.state.clone();
    let server = tokio::spawn(serve(listeners, state, None, async {
        let _ = stopped.await;
    }));
    let answers = tokio::task::spawn_blocking(move || {
        (
            http_get(lgwan, "/version"),
            http_get(internet, "/version"),
            http_get(internet, "/api/me"),
        )
    })
    .await
    .unwrap();
    assert!(answers.0.starts_with("HTTP/1.1 200"), "{}", answers.0);
    assert!(answers.0.contains(r#""zone":"lgwan""#));
    assert!(answers.1.contains(r#""zone":"internet""#));
    assert!(answers.2.starts_with("HTTP/1.1 404"), "{}", answers.2);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    // The LGWAN route asked of the internet listener was noticed, with the client address.
    let events = w.state.store.security_events(None, 10).unwrap();
    let e = events
        .iter()
        .find(|e| e.kind.code() == "wrong_zone")
        .expect("wrong_zone event");
    assert_eq!(e.client.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn sign_in_use_and_sign_out() {
    let w = World::new().await;
    let (status, body, cookie) = w.login("staff-uruma", world::PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cookie = cookie.unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let csrf = v["csrf_token"].as_str().unwrap().to_owned();
    let session = cookie.split(';').next().unwrap().to_owned();
    let who = Who::Raw {
        cookie: session.clone(),
        csrf: Some(csrf.clone()),
    };
    let (status, body) = w
        .call(
            openvrs_server::Zone::Lgwan,
            "GET",
            "/api/me",
            who.clone(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#""municipality":"472131""#), "{body}");
    let (status, _) = w
        .call(
            openvrs_server::Zone::Lgwan,
            "POST",
            "/api/logout",
            who.clone(),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w
        .call(openvrs_server::Zone::Lgwan, "GET", "/api/me", who, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_passwords_lock_the_account() {
    let w = World::new().await;
    for _ in 0..5 {
        assert_eq!(
            w.login("staff-uruma", "wrong password!!").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked: even the right password is refused, and says so.
    let (status, body, cookie) = w.login("staff-uruma", world::PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(cookie.is_none());
    let kinds: Vec<String> = w
        .state
        .store
        .security_events(Some(w.uruma), 20)
        .unwrap()
        .into_iter()
        .map(|e| e.kind.code().to_owned())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "login_failed").count(), 5);
    assert!(kinds.contains(&"locked_out".to_string()));
    // Another account is not locked; after the window the account opens again.
    assert_eq!(
        w.login("staff-naha", world::PASSWORD).await.0,
        StatusCode::OK
    );
    w.advance_minutes(16);
    assert_eq!(
        w.login("staff-uruma", world::PASSWORD).await.0,
        StatusCode::OK
    );
    // Unknown accounts fail the same way as wrong passwords.
    let (status, body, _) = w.login("nobody", world::PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("login_failed"));
}

#[tokio::test]
async fn sessions_expire_when_idle_and_absolutely() {
    let w = World::new().await;
    let who = w.session_of("kuni");
    let me = |who: Who| async {
        w.call(openvrs_server::Zone::Lgwan, "GET", "/api/me", who, None)
            .await
            .0
    };
    assert_eq!(me(who.clone()).await, StatusCode::OK);
    w.advance_minutes(29);
    assert_eq!(me(who.clone()).await, StatusCode::OK, "use keeps it alive");
    w.advance_minutes(31);
    assert_eq!(me(who).await, StatusCode::UNAUTHORIZED, "idle timeout");

    let who = w.session_of("kuni");
    for _ in 0..25 {
        w.advance_minutes(29);
        let _ = me(who.clone()).await;
    }
    assert_eq!(
        me(who).await,
        StatusCode::UNAUTHORIZED,
        "absolute timeout (12 h)"
    );
}

#[tokio::test]
async fn state_changes_need_the_csrf_token() {
    let w = World::new().await;
    let Who::Raw { cookie, .. } = w.session_of("kuni") else {
        unreachable!()
    };
    let body = r#"{"user":"new-staff","role":"staff","municipality":"472131","password":"a long enough password"}"#;
    for csrf in [None, Some("wrong".to_string())] {
        let who = Who::Raw {
            cookie: cookie.clone(),
            csrf,
        };
        let (status, text) = w
            .call(
                openvrs_server::Zone::Lgwan,
                "POST",
                "/api/accounts",
                who,
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
        assert!(text.contains("csrf"));
    }
    assert!(
        w.state
            .store
            .account(&openvrs_domain::account::UserId::parse("new-staff").unwrap())
            .unwrap()
            .is_none()
    );
    assert!(
        w.state
            .store
            .security_events(None, 10)
            .unwrap()
            .iter()
            .any(|e| e.kind.code() == "csrf_rejected")
    );
    let (status, _) = w
        .call(
            openvrs_server::Zone::Lgwan,
            "POST",
            "/api/accounts",
            w.session_of("kuni"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn device_tokens_can_be_revoked() {
    let w = World::new().await;
    let venue = w.who(world::Actor::Venue);
    let me = || {
        w.call(
            openvrs_server::Zone::Internet,
            "GET",
            "/api/venue/me",
            venue.clone(),
            None,
        )
    };
    assert_eq!(me().await.0, StatusCode::OK);
    let (status, _) = w
        .call(
            openvrs_server::Zone::Lgwan,
            "POST",
            "/api/accounts/venue-uruma/disable",
            w.session_of("kuni"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(me().await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn new_device_accounts_get_a_token_once() {
    let w = World::new().await;
    let body = r#"{"user":"venue-new","role":"venue","municipality":"472131","venue":"会場B"}"#;
    let (status, text) = w
        .call(
            openvrs_server::Zone::Lgwan,
            "POST",
            "/api/accounts",
            w.session_of("kuni"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let token = v["token"].as_str().unwrap().to_owned();
    let (status, text) = w
        .call(
            openvrs_server::Zone::Internet,
            "GET",
            "/api/venue/me",
            Who::Token(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("会場B"));
    // Bad requests are clear errors.
    for (body, expect) in [
        (
            r#"{"user":"x1x","role":"staff","municipality":"472132","password":"a long enough password"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"user":"x2x","role":"staff","municipality":"472131","password":"short"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"user":"x3x","role":"king"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        // A person without a password gets one generated, shown once.
        (r#"{"user":"x4x","role":"national"}"#, StatusCode::CREATED),
        (
            r#"{"user":"venue-new","role":"center"}"#,
            StatusCode::CONFLICT,
        ),
        (r#"{"user":"#, StatusCode::BAD_REQUEST),
    ] {
        let (status, text) = w
            .call(
                openvrs_server::Zone::Lgwan,
                "POST",
                "/api/accounts",
                w.session_of("kuni"),
                Some(body),
            )
            .await;
        assert_eq!(status, expect, "{body}: {text}");
    }
}

#[tokio::test]
async fn prefecture_viewers_see_their_prefecture_only() {
    let w = World::new().await;
    let (_, okinawa) = w
        .call(
            openvrs_server::Zone::Lgwan,
            "GET",
            "/api/aggregates/persons",
            w.who(world::Actor::Pref47),
            None,
        )
        .await;
    let v: serde_json::Value = serde_json::from_str(&okinawa).unwrap();
    assert_eq!(v["472131"], world::RESIDENTS);
    assert!(v.get("131016").is_none());
    let (_, tokyo) = w
        .call(
            openvrs_server::Zone::Lgwan,
            "GET",
            "/api/aggregates/persons",
            w.who(world::Actor::Pref13),
            None,
        )
        .await;
    let v: serde_json::Value = serde_json::from_str(&tokyo).unwrap();
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["131016"]
    );
}

/// GET over TLS, trusting only `ca_pem`.
async fn https_get(addr: SocketAddr, ca_pem: &str, path: &str) -> std::io::Result<String> {
    https_request(
        addr,
        ca_pem,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_both_listeners_with_the_development_ca() {
    let w = World::new().await;
    let pki = openvrs_crypto::pki::dev_pki(&["localhost", "127.0.0.1"], unix_now()).unwrap();
    let localhost: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let listeners = Listeners::bind(localhost, localhost).await.unwrap();
    let (lgwan, internet) = listeners.addrs().unwrap();
    let tls = openvrs_server::TlsPem {
        cert_chain: pki.server_cert_pem.clone().into_bytes(),
        key: pki.server_key_pem.clone().into_bytes(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listeners, w.state.clone(), Some(tls), async {
        let _ = stopped.await;
    }));
    let answer = https_get(lgwan, &pki.ca_cert_pem, "/version")
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""zone":"lgwan""#));
    let answer = https_get(internet, &pki.ca_cert_pem, "/version")
        .await
        .unwrap();
    assert!(answer.contains(r#""zone":"internet""#));
    // Another CA is not trusted, and plain HTTP gets no answer.
    let other = openvrs_crypto::pki::dev_pki(&["localhost"], unix_now()).unwrap();
    assert!(
        https_get(lgwan, &other.ca_cert_pem, "/version")
            .await
            .is_err()
    );
    let plain = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(lgwan).unwrap();
        write!(
            s,
            "GET /version HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .unwrap();
    assert!(!plain.contains("200 OK"), "{plain}");
    // Sign-in cookies are Secure over TLS.
    let body = serde_json::json!({"user": "kuni", "password": world::PASSWORD}).to_string();
    let answer = https_post(lgwan, &pki.ca_cert_pem, "/api/login", &body).await;
    assert!(answer.to_ascii_lowercase().contains("; secure"), "{answer}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

async fn https_post(addr: SocketAddr, ca_pem: &str, path: &str, body: &str) -> String {
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    https_request(addr, ca_pem, &raw).await.unwrap()
}

/// One raw HTTP/1.1 request over TLS, trusting only `ca_pem`.
async fn https_request(addr: SocketAddr, ca_pem: &str, raw: &str) -> std::io::Result<String> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    tls.write_all(raw.as_bytes()).await?;
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_events_reach_the_webhook_with_retries() {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };
    // A local receiver that fails its first delivery, then records what arrives.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(8);
    let calls = Arc::new(AtomicU32::new(0));
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let (tx, calls) = (tx.clone(), calls.clone());
            async move {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                tx.send(body).await.unwrap();
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let mut w = World::new().await;
    w.state.notifier = Some(openvrs_server::notify::Notifier::start(format!(
        "http://{addr}/hook"
    )));
    assert_eq!(
        w.login("staff-uruma", "not the password").await.0,
        StatusCode::UNAUTHORIZED
    );
    let body = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("delivered within 30 s")
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["kind"], "login_failed");
    assert_eq!(v["user"], "staff-uruma");
    assert_eq!(v["municipality"], "472131");
    assert!(v["id"].as_i64().unwrap() > 0);
}

fn kinds(w: &World) -> Vec<String> {
    w.state
        .store
        .security_events(None, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.kind.code().to_owned())
        .collect()
}

#[tokio::test]
async fn accounts_are_rate_limited() {
    let mut w = World::new().await;
    w.state.security.requests_per_account = 3;
    let who = w.session_of("kuni");
    for _ in 0..3 {
        assert_eq!(
            w.call(
                openvrs_server::Zone::Lgwan,
                "GET",
                "/api/me",
                who.clone(),
                None
            )
            .await
            .0,
            StatusCode::OK
        );
    }
    for _ in 0..2 {
        assert_eq!(
            w.call(
                openvrs_server::Zone::Lgwan,
                "GET",
                "/api/me",
                who.clone(),
                None
            )
            .await
            .0,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(
        kinds(&w).iter().filter(|k| *k == "rate_limited").count(),
        1,
        "one event per window"
    );
    w.advance_minutes(1);
    assert_eq!(
        w.call(openvrs_server::Zone::Lgwan, "GET", "/api/me", who, None)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn reading_many_persons_is_noticed() {
    let mut w = World::new().await;
    w.state.security.persons_per_hour = 3;
    let who = w.who(world::Actor::StaffOwn);
    for p in w
        .uruma_people
        .clone()
        .iter()
        .chain(w.uruma_people.clone().iter())
    {
        let path = format!("/api/municipalities/472131/persons/{}", p.address_number);
        assert_eq!(
            w.call(openvrs_server::Zone::Lgwan, "GET", &path, who.clone(), None)
                .await
                .0,
            StatusCode::OK
        );
    }
    let events = w.state.store.security_events(Some(w.uruma), 100).unwrap();
    let reads: Vec<_> = events
        .iter()
        .filter(|e| e.kind.code() == "read_volume")
        .collect();
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].user.as_deref(), Some("staff-uruma"));
}

#[tokio::test]
async fn malformed_and_oversized_requests_are_refused_and_bursts_noticed() {
    let mut w = World::new().await;
    w.state.security.malformed_per_client = 3;
    let hostile: [&[u8]; 5] = [
        b"{",
        b"null",
        b"\xff\xfe",
        br#"{"user":1,"password":[]}"#,
        b"",
    ];
    for body in hostile {
        let (status, text) = w
            .call(
                openvrs_server::Zone::Lgwan,
                "POST",
                "/api/login",
                world::Who::Anonymous,
                Some(&String::from_utf8_lossy(body)),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(text.contains(" / "), "bilingual: {text}");
    }
    let huge = "x".repeat(2 << 20);
    let (status, _) = w
        .call(
            openvrs_server::Zone::Lgwan,
            "POST",
            "/api/accounts",
            w.session_of("kuni"),
            Some(&huge),
        )
        .await;
    assert!(
        status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::BAD_REQUEST,
        "{status}"
    );
    assert_eq!(
        kinds(&w).iter().filter(|k| *k == "malformed_burst").count(),
        1
    );
}

#[tokio::test]
async fn staff_record_doses_with_rules_reasons_and_history() {
    use openvrs_server::Zone::Lgwan;
    let w = World::new().await;
    let staff = w.who(world::Actor::StaffOwn);
    // A person with no death before the dates used here.
    let p = w
        .uruma_people
        .iter()
        .find(|p| p.flags.deceased_on.is_none())
        .unwrap();
    let base = format!("/api/municipalities/472131/persons/{}", p.address_number);
    let call = |method: &'static str, path: String, body: Option<String>| {
        let staff = staff.clone();
        let w = &w;
        async move { w.call(Lgwan, method, &path, staff, body.as_deref()).await }
    };
    let json = |s: &str| -> serde_json::Value { serde_json::from_str(s).unwrap() };

    // A future date and an unknown product: refused with every finding, nothing written.
    let (status, body) = call(
        "POST",
        format!("{base}/doses"),
        Some(r#"{"dose_number":1,"date":"2099-01-01","product":"nothing"}"#.into()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let v = json(&body);
    assert_eq!(v["error"], "quality");
    let rules: Vec<&str> = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["future_date", "unknown_product"]);
    // Era dates are accepted; an odd lot is a warning.
    let (status, body) = call(
        "POST",
        format!("{base}/doses"),
        Some(r#"{"dose_number":1,"date":"R3.6.1","product":"comirnaty","lot":"??"}"#.into()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let v = json(&body);
    assert_eq!(v["warnings"][0]["rule"], "lot_format");
    let id = v["dose_id"].as_i64().unwrap();
    // A correction needs a reason.
    let fixed = r#"{"dose_number":1,"date":"2021-06-02","product":"comirnaty","lot":"FA1234"}"#;
    let (status, body) = call(
        "PUT",
        format!("{base}/doses/{id}"),
        Some(format!(r#"{{"dose":{fixed},"reason":" "}}"#)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("理由"), "{body}");
    let (status, body) = call(
        "PUT",
        format!("{base}/doses/{id}"),
        Some(format!(r#"{{"dose":{fixed},"reason":"予診票の確認"}}"#)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call(
        "POST",
        format!("{base}/doses/{id}/delete"),
        Some(r#"{"reason":"二重登録"}"#.into()),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = call("GET", format!("{base}/doses"), None).await;
    let v = json(&body);
    assert!(v["doses"].as_array().unwrap().is_empty());
    let history: Vec<(&str, &str)> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["change"].as_str().unwrap(), h["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        history,
        [("corrected", "予診票の確認"), ("deleted", "二重登録")]
    );

    // An upload with bad rows: every row named, nothing written.
    let (status, body) = call(
        "POST",
        "/api/municipalities/472131/imports/ledger".into(),
        Some(format!(
            "個別宛名番号,1回目接種日,1回目ワクチンメーカー\n{},2021-13-01,ファイザー\n424242,2021-06-01,ファイザー\n,2021-06-01,謎\n",
            p.address_number
        )),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let v = json(&body);
    assert_eq!(v["error"], "rows");
    let rows = v["details"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows[0].as_str().unwrap().starts_with("2行目 1回目接種日"));
    // The file's cells pass but a person is unknown: the store names that row.
    let (status, body) = call(
        "POST",
        "/api/municipalities/472131/imports/ledger".into(),
        Some(
            "個別宛名番号,1回目接種日,1回目ワクチンメーカー\n424242,2021-06-01,ファイザー\n".into(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("2行目") && body.contains("not registered"),
        "{body}"
    );
    let (_, body) = call("GET", format!("{base}/doses"), None).await;
    assert!(json(&body)["doses"].as_array().unwrap().is_empty());

    // The ledger download: Shift_JIS, no My Number.
    call(
        "POST",
        format!("{base}/doses"),
        Some(
            r#"{"dose_number":1,"date":"2021-06-01","product":"comirnaty","lot":"FA1234"}"#.into(),
        ),
    )
    .await;
    let (status, text) = call("GET", "/api/municipalities/472131/ledger.csv".into(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains(p.address_number.as_str()));
    for q in &w.uruma_people {
        if let Some(n) = &q.my_number {
            assert!(!text.contains(&n.expose()));
        }
    }
    // Disclosure and the quality report answer.
    let (status, body) = call("GET", format!("{base}/disclosure"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["dose_history"].as_array().unwrap().len(), 2);
    let (status, _) = call("GET", "/api/municipalities/472131/quality".into(), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn venue_tablet_records_by_ocr_line_and_birth_date() {
    use openvrs_server::Zone::{Internet, Lgwan};
    let w = World::new().await;
    let venue = w.who(world::Actor::Venue);
    let alive = |ps: &[openvrs_domain::person::Person]| {
        ps.iter()
            .find(|p| p.flags.deceased_on.is_none())
            .unwrap()
            .clone()
    };
    let p = alive(&w.uruma_people[3..]);
    let body = |ocr: String, birth: String, lot: &str, key: &str| {
        serde_json::json!({
            "ocr_line": ocr, "birth_date": birth, "product": "comirnaty", "lot": lot,
            "date": "2021-06-01", "idempotency_key": key,
        })
        .to_string()
    };
    let ocr = format!("11472131{}", p.vouchers[0].number);
    let birth = p.birth_date.0.to_string();
    let call = |b: String| {
        let venue = venue.clone();
        let w = &w;
        async move {
            let (s, t) = w
                .call(Internet, "POST", "/api/venue/doses", venue, Some(&b))
                .await;
            (s, serde_json::from_str::<serde_json::Value>(&t).unwrap())
        }
    };
    let (status, v) = call(body(ocr.clone(), birth.clone(), "FA1234", "a")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["outcome"], "recorded");
    assert_eq!(v["dose_number"], 1);
    assert_eq!(v["masked_name"], p.name_kana.masked());
    // A retry after a lost answer: the same answer, nothing new.
    let (status, again) = call(body(ocr.clone(), birth.clone(), "FA1234", "a")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (again["id"].clone(), again["replayed"].clone()),
        (v["id"].clone(), true.into())
    );
    // Another record of the same dose: the conflict queue, visible to the town's staff.
    let (_, c) = call(body(ocr.clone(), birth.clone(), "FB9999", "b")).await;
    assert_eq!(c["outcome"], "conflict");
    let (status, queue) = w
        .call(
            Lgwan,
            "GET",
            "/api/municipalities/472131/dose-conflicts",
            w.who(world::Actor::StaffOwn),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(queue.contains("FB9999"), "{queue}");
    // A misread check digit, an unknown voucher, the wrong date of birth.
    let mut bad_digit = ocr.clone().into_bytes();
    bad_digit[7] = if bad_digit[7] == b'1' { b'2' } else { b'1' };
    let (status, e) = call(body(
        String::from_utf8(bad_digit).unwrap(),
        birth.clone(),
        "FA1234",
        "c",
    ))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"], "municipality_code.check_digit");
    let (status, e) = call(body(
        "114721319999999999".into(),
        birth.clone(),
        "FA1234",
        "d",
    ))
    .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("voucher_not_found"))
    );
    let (status, e) = call(body(ocr.clone(), "1900-01-01".into(), "FA1234", "e")).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("birth_date_mismatch")
        )
    );
    // A voucher of another town: recorded into that town, whichever venue records it.
    let q = alive(&w.naha_people);
    let (status, v) = call(body(
        format!("12472018{}", q.vouchers[0].number),
        q.birth_date.0.to_string(),
        "FA1234",
        "f",
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["dose_number"], 2);
    let naha = openvrs_domain::ids::MunicipalityCode::parse("472018").unwrap();
    let naha_doses = w.state.store.doses(naha, &q.address_number).unwrap();
    assert_eq!(naha_doses.len(), 1);
}

/// A device token is kept in memory for a few seconds; disabled from elsewhere (another
/// process), it stops working when that time is up.
#[tokio::test]
async fn a_token_disabled_elsewhere_ends_within_the_cache_time() {
    let w = World::new().await;
    let venue = w.who(world::Actor::Venue);
    let me = || {
        w.call(
            openvrs_server::Zone::Internet,
            "GET",
            "/api/venue/me",
            venue.clone(),
            None,
        )
    };
    assert_eq!(me().await.0, StatusCode::OK);
    w.state
        .store
        .disable_account(
            &openvrs_domain::account::UserId::parse("venue-uruma").unwrap(),
            &openvrs_domain::audit::Actor::console(),
        )
        .unwrap();
    assert_eq!(me().await.0, StatusCode::OK, "still in memory");
    w.advance_minutes(1);
    assert_eq!(me().await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn staff_inquire_another_municipality_single_and_bulk() {
    use openvrs_server::Zone::Lgwan;
    let mut w = World::new().await;
    let naha = w.who(world::Actor::StaffForeign);
    let uruma = w.who(world::Actor::StaffOwn);
    // A resident of Uruma with a dose, who moved to Naha (where they have a 宛名番号 now).
    let p = w
        .uruma_people
        .iter()
        .find(|p| !p.flags.use_suspended && p.my_number.is_some())
        .unwrap()
        .clone();
    let ours = w.naha_people[0].address_number.clone();
    let given = openvrs_domain::dose::Dose {
        number: openvrs_domain::dose::DoseNumber::new(1).unwrap(),
        status: openvrs_domain::dose::DoseStatus::Given,
        date: openvrs_domain::date::parse_date("2021-06-01").unwrap(),
        product: openvrs_domain::dose::Short::parse("comirnaty").unwrap(),
        lot: openvrs_domain::dose::Short::parse("FA1234").unwrap(),
        venue: openvrs_domain::dose::Short::default(),
        doctor: openvrs_domain::dose::Short::default(),
        source: openvrs_domain::dose::DoseSource::Staff,
        voucher: None,
        given_in: Some(w.uruma),
    };
    w.state
        .store
        .add_dose(
            w.uruma,
            &p.address_number,
            &given,
            &openvrs_domain::audit::Actor::console(),
        )
        .unwrap();
    let my_number = p.my_number.as_ref().unwrap().expose();
    let ask = |source: &str, n: &str| {
        serde_json::json!({
            "source_municipality": source, "my_number": n,
            "address_number": ours.as_str(), "basis": "番号法第19条第16号",
        })
        .to_string()
    };
    let (s, t) = w
        .call(
            Lgwan,
            "POST",
            "/api/municipalities/472018/inquiries",
            naha.clone(),
            Some(&ask("472131", &my_number)),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    let answer: serde_json::Value = serde_json::from_str(&t).unwrap();
    assert_eq!(answer["status"], "found");
    assert_eq!(answer["doses"].as_array().unwrap().len(), 1);
    assert!(
        !t.contains(&my_number),
        "the answer never repeats the My Number"
    );
    assert!(!t.contains(p.name.as_str()), "doses only, no identity");
    // A wrong municipality code answers like nobody.
    let (s, t) = w
        .call(
            Lgwan,
            "POST",
            "/api/municipalities/472018/inquiries",
            naha.clone(),
            Some(&ask("131016", &my_number)),
        )
        .await;
    assert_eq!(
        (
            s.as_u16(),
            serde_json::from_str::<serde_json::Value>(&t).unwrap()["status"].clone()
        ),
        (200, "not_found".into())
    );
    // Malformed input is a clear 400, without the value.
    let (s, t) = w
        .call(
            Lgwan,
            "POST",
            "/api/municipalities/472018/inquiries",
            naha.clone(),
            Some(&ask("472131", "123")),
        )
        .await;
    assert_eq!(s, 422, "{t}");
    // Attach, then the provision is visible to Uruma's staff only.
    let id = answer["id"].as_i64().unwrap();
    let (s, t) = w
        .call(
            Lgwan,
            "POST",
            "/api/municipalities/472018/inquiries/attach",
            naha.clone(),
            Some(&format!("{{\"inquiry_ids\": [{id}]}}")),
        )
        .await;
    assert_eq!((s.as_u16(), t.contains("\"doses\":1")), (200, true), "{t}");
    let (s, t) = w
        .call(
            Lgwan,
            "GET",
            "/api/municipalities/472131/provisions",
            uruma.clone(),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert!(
        t.contains("\"to_municipality\":\"472018\"") && t.contains("\"records\":1"),
        "{t}"
    );
    let (s, _) = w
        .call(
            Lgwan,
            "GET",
            "/api/municipalities/472131/provisions",
            naha.clone(),
            None,
        )
        .await;
    assert_eq!(
        s, 404,
        "another municipality's provision records are not found"
    );

    // Bulk: found, not found, and malformed rows that do not stop the others.
    let csv = format!(
        "照会先自治体コード,個人番号,宛名番号\n472131,{my_number},{ours}\n131016,{my_number},{ours}\n472131,12345,{ours}\n472131,{my_number},abc\n"
    );
    let (s, t) = w
        .call(
            Lgwan,
            "POST",
            "/api/municipalities/472018/inquiry-jobs?basis=%E8%BB%A2%E5%85%A5",
            naha.clone(),
            Some(&csv),
        )
        .await;
    assert_eq!(s, 202, "{t}");
    let job = serde_json::from_str::<serde_json::Value>(&t).unwrap()["job"]
        .as_i64()
        .unwrap();
    let path = format!("/api/municipalities/472018/inquiry-jobs/{job}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let progress = loop {
        let (_, t) = w.call(Lgwan, "GET", &path, naha.clone(), None).await;
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        if v["state"] != "running" || std::time::Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(progress["state"], "done", "{progress}");
    assert_eq!(progress["done_rows"], 4);
    assert_eq!(progress["counts"]["found"], 1);
    assert_eq!(progress["counts"]["format_error"], 2);
    // The default download is Shift_JIS (CP932), and every reason in it encodes there: the
    // wave dash of 「1～15桁」 is the one Windows Japanese uses (U+FF5E).
    let (s, sjis, _) = w
        .call_bytes(
            Lgwan,
            "GET",
            &format!("{path}/result.csv"),
            naha.clone(),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (text, _, malformed) = encoding_rs::SHIFT_JIS.decode(&sjis);
    assert!(!malformed);
    assert!(text.contains("宛名番号は1～15桁の数字です"), "{text}");
    assert_eq!(text.lines().count(), 5, "{text}");
    let (s, t) = w
        .call(
            Lgwan,
            "GET",
            &format!("{path}/result.csv?encoding=utf8"),
            naha.clone(),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert!(
        t.contains("該当あり") && t.contains("該当なし") && t.contains("形式エラー"),
        "{t}"
    );
    assert!(t.contains("4行目 個人番号"), "{t}");
    assert!(
        !t.contains(&my_number),
        "never a My Number in a result file"
    );
    let (s, t) = w
        .call(Lgwan, "POST", &format!("{path}/attach"), naha.clone(), None)
        .await;
    assert_eq!(s, 200, "{t}");
    assert!(
        t.contains("\"unchanged\":1"),
        "the dose attached before is not doubled: {t}"
    );

    // Volume limit: refused with 429 and a security event.
    w.state.security.inquiry.per_user_per_hour = 2;
    let (s, _) = w
        .call(
            Lgwan,
            "POST",
            "/api/municipalities/472018/inquiries",
            naha.clone(),
            Some(&ask("472131", &my_number)),
        )
        .await;
    assert_eq!(s, 429);
    // Fishing: one person asked of more municipalities in a day than allowed is reported.
    w.state.security.inquiry.per_user_per_hour = 1_000;
    w.state.security.inquiry.sources_per_person_per_day = 2;
    let (s, _) = w
        .call(
            Lgwan,
            "POST",
            "/api/municipalities/472018/inquiries",
            naha.clone(),
            Some(&ask("271004", &my_number)),
        )
        .await;
    assert_eq!(s, 200);
    let events = w.state.store.security_events(None, 50).unwrap();
    assert!(events.iter().any(|e| e.kind.code() == "inquiry_volume"));
    assert!(events.iter().any(|e| e.kind.code() == "inquiry_fishing"));
    assert!(events.iter().all(|e| !e.detail.contains(&my_number)));
}

#[tokio::test]
async fn certificates_are_published_verified_and_revoked_over_http() {
    use openvrs_server::Zone::{Internet, Lgwan};
    use openvrs_service::certificate as certs;
    use tower::ServiceExt as _;
    let w = World::new().await;
    let store = w.state.store.clone();
    let console = openvrs_domain::audit::Actor::console();
    let p = w
        .uruma_people
        .iter()
        .find(|p| p.flags == openvrs_domain::person::Flags::default())
        .unwrap()
        .clone();
    let dose = first_dose();
    store
        .add_dose(w.uruma, &p.address_number, &dose, &console)
        .unwrap();
    let signers = certs::Signers::load(&*store).unwrap();
    let issuer = certs::Issuer::new("https://localhost:8080/issuer", "openvrs").unwrap();
    let request = certs::Request {
        address: p.address_number.clone(),
        kind: openvrs_domain::certificate::Kind::Domestic,
        format: openvrs_domain::certificate::Format::Shc,
        passport: None,
        channel: openvrs_domain::certificate::Channel::Counter,
        application: None,
    };
    let card = certs::issue(&*store, &signers, &issuer, w.uruma, &request, &console).unwrap();

    // The keys and the list, to anyone, from any origin.
    let resp = internet_router(w.state.clone())
        .oneshot(
            axum::http::Request::get("/issuer/.well-known/jwks.json")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let (s, jwks) = w
        .call(
            Internet,
            "GET",
            "/.well-known/jwks.json",
            Who::Anonymous,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let jwks: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    assert!(jwks["keys"][0].get("d").is_none());
    let (s, _) = w
        .call(
            Internet,
            "GET",
            "/.well-known/crl/unknown.json",
            Who::Anonymous,
            None,
        )
        .await;
    assert_eq!(s, 404);

    // Anyone may verify: every check passes, and the answer holds initials, not the name.
    let verify = |body: String| {
        let w = &w;
        async move {
            let (s, t) = w
                .call(Internet, "POST", "/api/verify", Who::Anonymous, Some(&body))
                .await;
            assert_eq!(s, 200, "{t}");
            serde_json::from_str::<serde_json::Value>(&t).unwrap()
        }
    };
    let report = verify(String::from_utf8(card.payload.clone()).unwrap()).await;
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(report["certificates"][0]["kind"], "shc");
    assert_eq!(report["certificates"][0]["doses"][0]["lot"], "FA1234");
    let holder = report["certificates"][0]["holder"]["name"]
        .as_str()
        .unwrap();
    assert!(holder.contains("**"), "{holder}");
    // The vaccine by its name in the catalogue, the code after it.
    let product = report["certificates"][0]["doses"][0]["product"]
        .as_str()
        .unwrap();
    assert!(
        product.ends_with(")") && product.contains(" (CVX ") && !product.starts_with("CVX"),
        "{product}"
    );
    let report = verify(card.qr_text.clone()).await;
    assert_eq!(report["passed"], true, "the QR text too");
    assert_eq!(verify("garbage".into()).await["passed"], false);

    // Hostile SVG images, many at once, are refused without drawing them, and the listener
    // goes on answering: a blur filter over a huge canvas, paint over paint, too many nodes.
    let svg = |body: String| {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 100000 100000\">{body}</svg>"
        )
    };
    let hostile = [
        svg(
            "<filter id=\"f\"><feGaussianBlur stdDeviation=\"100000\"/></filter>\
             <rect width=\"100000\" height=\"100000\" filter=\"url(#f)\"/>"
                .into(),
        ),
        svg("<rect width=\"100000\" height=\"100000\" fill-opacity=\"0.1\"/>".repeat(10_000)),
        svg("<g>".repeat(30_000) + &"</g>".repeat(30_000)),
    ];
    let call = |i: usize| {
        let w = &w;
        let body = hostile[i % hostile.len()].clone();
        async move {
            w.call(Internet, "POST", "/api/verify", Who::Anonymous, Some(&body))
                .await
        }
    };
    let (a, b, c, d, e, f, (health, _)) = tokio::join!(
        call(0),
        call(1),
        call(2),
        call(3),
        call(4),
        call(5),
        w.call(Internet, "GET", "/healthz", Who::Anonymous, None)
    );
    let answers = [a, b, c, d, e, f];
    assert_eq!(health, 200);
    for (s, t) in answers {
        match s.as_u16() {
            200 => {
                let report: serde_json::Value = serde_json::from_str(&t).unwrap();
                // Refused before drawing: too complex, or not readable at all (30,000 levels).
                assert_eq!(report["passed"], false, "{t}");
                assert_eq!(report["checks"][0]["ok"], false, "{t}");
                assert!(
                    t.contains("複雑すぎます") || t.contains("SVG 画像を読めません"),
                    "{t}"
                );
            }
            503 => assert!(t.contains("busy"), "{t}"),
            other => panic!("{other}: {t}"),
        }
    }

    // Staff revoke it over LGWAN; the list and the JWKS show it, the verifier says revoked.
    let staff = w.who(world::Actor::StaffOwn);
    let path = format!(
        "/api/municipalities/472131/certificates/{}/revoke",
        card.record.id
    );
    let (s, t) = w
        .call(
            Lgwan,
            "POST",
            &path,
            staff.clone(),
            Some(r#"{"reason": "誤発行"}"#),
        )
        .await;
    assert_eq!(s, 200, "{t}");
    let (s, _) = w
        .call(
            Lgwan,
            "POST",
            &path,
            staff.clone(),
            Some(r#"{"reason": "誤発行"}"#),
        )
        .await;
    assert_eq!(s, 409, "once");
    let (_, crl) = w
        .call(
            Internet,
            "GET",
            &format!("/.well-known/crl/{kid}.json"),
            Who::Anonymous,
            None,
        )
        .await;
    let crl: serde_json::Value = serde_json::from_str(&crl).unwrap();
    assert_eq!(crl["rids"].as_array().unwrap().len(), 1);
    let report = verify(String::from_utf8(card.payload.clone()).unwrap()).await;
    assert_eq!(report["passed"], false);
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["check"] == "revocation" && c["ok"] == false),
        "{report}"
    );
    let (_, list) = w
        .call(
            Lgwan,
            "GET",
            "/api/municipalities/472131/certificates",
            staff,
            None,
        )
        .await;
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["revocation_reason"], "誤発行");

    let (s, page) = w
        .call(Internet, "GET", "/verify/", Who::Anonymous, None)
        .await;
    assert!(s == 200 && page.contains("接種証明書の検証"), "{page}");

    // At the counter: staff issue over LGWAN; a PDF to print, or the payload and its QR image.
    let counter = format!(
        "/api/municipalities/472131/persons/{}/certificates",
        p.address_number
    );
    let staff = w.who(world::Actor::StaffOwn);
    let (s, t) = w
        .call(
            Lgwan,
            "POST",
            &counter,
            staff.clone(),
            Some(r#"{"kind": "domestic", "format": "shc"}"#),
        )
        .await;
    assert_eq!(s, 201, "{t}");
    let issued: serde_json::Value = serde_json::from_str(&t).unwrap();
    assert_eq!(issued["channel"], "counter");
    assert!(issued["qr_png"].as_str().unwrap().len() > 100);
    assert!(
        issued["payload"]
            .as_str()
            .unwrap()
            .contains("verifiableCredential")
    );
    let overseas = r#"{"kind": "overseas", "format": "pdf", "passport_name": "TANAKA HANAKO",
        "nationality": "JPN", "passport_number": "TR1234567"}"#;
    let resp = lgwan_router(w.state.clone())
        .oneshot(
            axum::http::Request::post(&counter)
                .header(
                    "cookie",
                    match &staff {
                        Who::Raw { cookie, .. } => cookie.clone(),
                        _ => unreachable!(),
                    },
                )
                .header(
                    "x-csrf-token",
                    match &staff {
                        Who::Raw { csrf, .. } => csrf.clone().unwrap(),
                        _ => unreachable!(),
                    },
                )
                .header("content-type", "application/json")
                .body(axum::body::Body::from(overseas))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    let pdf = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    for (body, status) in [
        (r#"{"kind": "overseas", "format": "vds"}"#, 422),
        (r#"{"kind": "domestic", "format": "gif"}"#, 400),
        (
            r#"{"kind": "overseas", "format": "vds", "passport": {"name": "田中", "nationality": "JPN", "number": "TR1234567"}}"#,
            422,
        ),
    ] {
        let (s, t) = w
            .call(Lgwan, "POST", &counter, staff.clone(), Some(body))
            .await;
        assert_eq!(s, status, "{body}: {t}");
    }
}

/// The card of a registered person, as its issuer signed it, and the card's own key.
fn card_of(
    p: &openvrs_domain::person::Person,
    issuer: &openvrs_cert::pki::Issued,
) -> (String, openvrs_cert::shc::SigningKeyPair) {
    use openvrs_cert::{card, shc::SigningKeyPair};
    let key = SigningKeyPair::generate();
    let data = card::CardData {
        my_number: p.my_number.as_ref().unwrap().expose(),
        name: p.name.as_str().to_owned(),
        address: String::new(),
        birth_date: p.birth_date.0.to_string(),
        sex: "1".into(),
        auth_key: card::auth_key(&key),
    };
    (card::sign(&data, issuer).unwrap(), key)
}

#[tokio::test]
async fn residents_apply_by_app_and_kiosk_and_every_refusal_is_clear() {
    use openvrs_domain::{
        audit::Actor as AuditActor,
        certificate::{Kind, Passport},
        person::Flags,
    };
    use openvrs_server::Zone::{Internet, Lgwan};
    use openvrs_service::application::{self as app, Ask};
    use serde_json::{Value, json};
    let mut w = World::new().await;
    let store = w.state.store.clone();
    let console = AuditActor::console();
    let now = w.state.now() / 1_000_000;
    let issuer = openvrs_cert::pki::make_csca("JP", "test card issuer", now - 60, 365).unwrap();
    w.state.card_issuers = std::sync::Arc::new(vec![
        openvrs_cert::pki::Certificate::parse(&issuer.der).unwrap(),
    ]);
    let with_number: Vec<_> = w
        .uruma_people
        .iter()
        .filter(|p| p.my_number.is_some() && p.flags == Flags::default())
        .cloned()
        .collect();
    assert!(
        with_number.len() >= 2,
        "the seed gives two residents with a My Number"
    );
    let (vaccinated, unvaccinated) = (&with_number[0], &with_number[1]);
    let dose = first_dose();
    store
        .add_dose(w.uruma, &vaccinated.address_number, &dose, &console)
        .unwrap();
    let ask = |kind: Kind| Ask {
        municipality: w.uruma,
        kind,
        passport: (kind == Kind::Overseas)
            .then(|| Passport::parse("TANAKA HANAKO", "JPN", "TR1234567").unwrap()),
    };
    let (card, key) = card_of(vaccinated, &issuer);
    let application = |card: &str, ask: &Ask| {
        openvrs_cert::card::application(card, &app::request(ask, now), &key).unwrap()
    };
    let (s, intake) = w
        .call(
            Internet,
            "GET",
            "/.well-known/openvrs-app-key.json",
            Who::Anonymous,
            None,
        )
        .await;
    assert_eq!(s, 200, "{intake}");
    let intake: Value = serde_json::from_str(&intake).unwrap();
    let send = |text: String| {
        let (body, reply) = app::seal_application(&intake, &text).unwrap();
        (body.to_string(), reply)
    };
    let post_app = |body: String| {
        let w = &w;
        async move {
            w.call(
                Internet,
                "POST",
                "/api/app/certificates",
                Who::Anonymous,
                Some(&body),
            )
            .await
        }
    };
    let code = |text: &str| -> String {
        serde_json::from_str::<Value>(text).unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // The app: only ciphertext on the internet listener, both ways (the router checks that no
    // seeded name, birth date or My Number passes); the answer opens with the app's key.
    let (body, reply) = send(application(&card, &ask(Kind::Domestic)));
    assert!(!body.contains(&vaccinated.my_number.as_ref().unwrap().expose()));
    let (s, answer) = post_app(body.clone()).await;
    assert_eq!(s, 201, "{answer}");
    let answer = app::open_answer(&reply, &serde_json::from_str(&answer).unwrap()).unwrap();
    let certs = answer["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0]["format"], "shc");
    let jwks = openvrs_service::certificate::jwks(&*store)
        .unwrap()
        .to_string();
    let trust = openvrs_cert::verify::Trust {
        jwks: openvrs_cert::shc::parse_jwks(&jwks).unwrap(),
        at: (now + 1) as f64,
        ..Default::default()
    };
    let report =
        openvrs_cert::verify::verify(certs[0]["payload"].as_str().unwrap().as_bytes(), &trust);
    assert!(report.passed(), "{report:?}");
    // Overseas: the SMART Health Card and the ICAO VDS-NC, each recorded with channel app.
    let (body, reply) = send(application(&card, &ask(Kind::Overseas)));
    let (s, answer) = post_app(body).await;
    assert_eq!(s, 201, "{answer}");
    let answer = app::open_answer(&reply, &serde_json::from_str(&answer).unwrap()).unwrap();
    let formats: Vec<_> = answer["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["format"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(formats, ["shc", "vds"]);
    let records = store.certificates(w.uruma, None).unwrap();
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .all(|r| r.channel.code() == "app" && r.application.is_some())
    );

    // A replay of the captured request is refused, and is a security event.
    let captured = {
        let (body, _) = send(application(&card, &ask(Kind::Domestic)));
        let (s, _) = post_app(body.clone()).await;
        assert_eq!(s, 201);
        body
    };
    let (s, text) = post_app(captured).await;
    assert_eq!(
        (s, code(&text).as_str()),
        (StatusCode::CONFLICT, "application.replay"),
        "{text}"
    );
    assert!(kinds(&w).contains(&"replayed_application".to_owned()));
    assert_eq!(store.certificates(w.uruma, None).unwrap().len(), 4);

    // Refusals, each with its code; nothing recorded.
    let forger = openvrs_cert::pki::make_csca("JP", "test card issuer", now - 60, 365).unwrap();
    let (forged, forged_key) = card_of(vaccinated, &forger);
    let altered = card.replace(&vaccinated.birth_date.0.to_string(), "1900-01-01");
    let (other_card, _) = card_of(unvaccinated, &issuer);
    let (naha_card, naha_key) = card_of(
        w.naha_people
            .iter()
            .find(|p| p.my_number.is_some())
            .unwrap(),
        &issuer,
    );
    let stale = openvrs_cert::card::application(
        &card,
        &app::request(&ask(Kind::Domestic), now - 3600),
        &key,
    )
    .unwrap();
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "forged card",
            openvrs_cert::card::application(
                &forged,
                &app::request(&ask(Kind::Domestic), now),
                &forged_key,
            )
            .unwrap(),
            StatusCode::BAD_REQUEST,
            "card.signature",
        ),
        (
            "altered card data",
            application(&altered, &ask(Kind::Domestic)),
            StatusCode::BAD_REQUEST,
            "card.signature",
        ),
        (
            "captured card data signed by another key",
            application(&other_card, &ask(Kind::Domestic)),
            StatusCode::BAD_REQUEST,
            "card.holder",
        ),
        (
            "an old application",
            stale,
            StatusCode::CONFLICT,
            "application.expired",
        ),
        (
            "not registered in the chosen municipality",
            openvrs_cert::card::application(
                &naha_card,
                &app::request(&ask(Kind::Domestic), now),
                &naha_key,
            )
            .unwrap(),
            StatusCode::NOT_FOUND,
            "application.not_registered",
        ),
        (
            "not an application",
            "{}".into(),
            StatusCode::BAD_REQUEST,
            "card.application",
        ),
    ];
    for (what, text, status, expected) in cases {
        let (s, answer) = post_app(send(text).0).await;
        assert_eq!(
            (s, code(&answer).as_str()),
            (status, expected),
            "{what}: {answer}"
        );
        assert!(answer.contains(" / "), "bilingual: {answer}");
    }
    let (unvaccinated_card, unvaccinated_key) = card_of(unvaccinated, &issuer);
    let text = openvrs_cert::card::application(
        &unvaccinated_card,
        &app::request(&ask(Kind::Domestic), now),
        &unvaccinated_key,
    )
    .unwrap();
    let (s, answer) = post_app(send(text).0).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "no dose: {answer}");
    for (flags, why) in [
        (
            Flags {
                deceased_on: Some(openvrs_domain::date::parse_date("2023-01-01").unwrap()),
                ..Flags::default()
            },
            "deceased",
        ),
        (
            Flags {
                use_suspended: true,
                ..Flags::default()
            },
            "suspended",
        ),
    ] {
        store
            .set_flags(
                w.uruma,
                &vaccinated.address_number,
                flags,
                "テスト",
                &console,
            )
            .unwrap();
        let (s, answer) = post_app(send(application(&card, &ask(Kind::Domestic))).0).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {answer}");
        assert!(answer.contains(why), "{answer}");
        store
            .set_flags(
                w.uruma,
                &vaccinated.address_number,
                Flags::default(),
                "テスト",
                &console,
            )
            .unwrap();
    }
    // Sealed to another key, or not sealed at all.
    let other_intake = json!({"kid": intake["kid"], "key": base64_point()});
    let (body, _) =
        app::seal_application(&other_intake, &application(&card, &ask(Kind::Domestic))).unwrap();
    let (s, answer) = post_app(body.to_string()).await;
    assert_eq!(
        (s, code(&answer).as_str()),
        (StatusCode::BAD_REQUEST, "application.sealed")
    );
    let (s, _) = post_app(json!({"kid": "x", "sealed": "!!"}).to_string()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        store.certificates(w.uruma, None).unwrap().len(),
        4,
        "nothing recorded"
    );
    let forged_events = kinds(&w).iter().filter(|k| *k == "forged_card").count();
    assert_eq!(forged_events, 3, "forged, altered, another card's key");

    // The kiosk, through the center's credential only, for a municipality that offers it.
    let relay = |who: world::Actor, text: String| {
        let w = &w;
        let body = json!({"kiosk": "kiosk-1", "application": text}).to_string();
        async move {
            w.call(
                Lgwan,
                "POST",
                "/api/center/certificates",
                w.who(who),
                Some(&body),
            )
            .await
        }
    };
    let switch = |who: world::Actor| {
        let w = &w;
        async move {
            w.call(
                Lgwan,
                "PUT",
                "/api/municipalities/472131/kiosk",
                w.who(who),
                Some(r#"{"enabled": true}"#),
            )
            .await
            .0
        }
    };
    let domestic = || application(&card, &ask(Kind::Domestic));
    let (s, _) = relay(world::Actor::StaffOwn, domestic()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "staff are not the center");
    let (s, answer) = relay(world::Actor::Center, domestic()).await;
    assert_eq!(
        (s, code(&answer).as_str()),
        (StatusCode::FORBIDDEN, "kiosk.disabled"),
        "{answer}"
    );
    let foreign = switch(world::Actor::StaffForeign).await;
    assert_eq!(
        foreign,
        StatusCode::NOT_FOUND,
        "only the municipality's own staff"
    );
    assert_eq!(switch(world::Actor::StaffOwn).await, StatusCode::NO_CONTENT);
    // A minute later (the test's one clock moves only when told), so the newest is this one.
    w.advance_minutes(1);
    let overseas = application(&card, &ask(Kind::Overseas));
    let (s, pdf) = relay(world::Actor::Center, overseas.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(pdf.starts_with("%PDF-"));
    let (s, answer) = relay(world::Actor::Center, overseas).await;
    assert_eq!(
        (s, code(&answer).as_str()),
        (StatusCode::CONFLICT, "application.replay")
    );
    let records = store.certificates(w.uruma, None).unwrap();
    assert_eq!(records[0].channel.code(), "kiosk");
    assert_eq!(records[0].format.code(), "pdf");
    assert_eq!(records.len(), 5);
    // The metrics count them by format and channel, and the attacks by kind - nothing else.
    let metrics = w.state.metrics.encode();
    for line in [
        r#"openvrs_certificates_issued_total{format="shc",channel="app"} 3"#,
        r#"openvrs_certificates_issued_total{format="vds",channel="app"} 1"#,
        r#"openvrs_certificates_issued_total{format="pdf",channel="kiosk"} 1"#,
        r#"openvrs_security_events_total{kind="forged_card"} 3"#,
        r#"openvrs_security_events_total{kind="replayed_application"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    w.assert_no_personal_data(&metrics);
}

/// A valid public key nobody holds the private part of (in this test).
fn base64_point() -> String {
    use base64::Engine as _;
    let other = openvrs_crypto::envelope::Receiver::generate();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(other.public())
}

/// A first dose of Comirnaty on 2021-06-01, recorded by staff.
fn first_dose() -> openvrs_domain::dose::Dose {
    use openvrs_domain::dose::{Dose, DoseNumber, DoseSource, DoseStatus, Short};
    Dose {
        number: DoseNumber::new(1).unwrap(),
        status: DoseStatus::Given,
        date: openvrs_domain::date::parse_date("2021-06-01").unwrap(),
        product: Short::parse("comirnaty").unwrap(),
        lot: Short::parse("FA1234").unwrap(),
        venue: Short::default(),
        doctor: Short::default(),
        source: DoseSource::Staff,
        voucher: None,
        given_in: None,
    }
}

/// Now, in Unix seconds (for certificates a TLS client checks against its own clock).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
