//! The server over real sockets and through its routers.

#![allow(clippy::unwrap_used)] // tests panic on purpose: that is how they fail

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use openvrs_crypto::MasterKey;
use openvrs_server::{AppState, Listeners, internet_router, lgwan_router, serve};
use openvrs_store::Location;
use tower::ServiceExt;

fn state() -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let store = openvrs_store::open(
        &Location::Sqlite {
            path: dir.path().join("db.sqlite"),
            create: true,
        },
        MasterKey::generate(),
    )
    .unwrap();
    (dir, AppState { store })
}

async fn get(router: axum::Router, path: &str) -> (StatusCode, String) {
    let resp = router
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn each_zone_answers_health_and_version() {
    let (_dir, state) = state();
    for (router, zone) in [
        (lgwan_router(state.clone()), "lgwan"),
        (internet_router(state.clone()), "internet"),
    ] {
        assert_eq!(
            get(router.clone(), "/healthz").await,
            (StatusCode::OK, "ok".into())
        );
        let (status, body) = get(router.clone(), "/version").await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["zone"], zone);
        assert_eq!(v["backend"], "sqlite");
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(get(router, "/nope").await.0, StatusCode::NOT_FOUND);
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
    let (_dir, state) = state();
    let localhost: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let listeners = Listeners::bind(localhost, localhost).await.unwrap();
    let (lgwan, internet) = listeners.addrs().unwrap();
    assert_ne!(lgwan, internet);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listeners, state, async {
        let _ = stopped.await;
    }));
    // The listeners are bound before `serve` runs, so a connection succeeds at once.
    let answers = tokio::task::spawn_blocking(move || {
        (http_get(lgwan, "/version"), http_get(internet, "/version"))
    })
    .await
    .unwrap();
    assert!(answers.0.starts_with("HTTP/1.1 200"), "{}", answers.0);
    assert!(answers.0.contains(r#""zone":"lgwan""#));
    assert!(answers.1.contains(r#""zone":"internet""#));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
