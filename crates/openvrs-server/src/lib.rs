//! The HTTP side of openvrs, and the only crate that knows HTTP.
//!
//! The server runs one listener per network zone, each with its own router built here:
//! [`lgwan_router`] for staff, national, prefectural and inter-municipality functions, and
//! [`internet_router`] for venue tablets, the resident app, public keys, verification and open
//! data. A route exists in a zone only if that zone's router function mounts it.

use std::{net::SocketAddr, sync::Arc};

use axum::{Json, Router, extract::State, routing::get};
use openvrs_store::Store;
use serde::Serialize;
use tokio::net::TcpListener;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.store.backend())
            .finish()
    }
}

/// The two network zones, each served by its own listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Zone {
    Lgwan,
    Internet,
}

#[derive(Debug, Serialize)]
struct Version {
    name: &'static str,
    version: &'static str,
    zone: Zone,
    backend: &'static str,
}

async fn healthz() -> &'static str {
    "ok"
}

fn common(zone: Zone) -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route(
        "/version",
        get(move |State(state): State<AppState>| async move {
            Json(Version {
                name: "openvrs",
                version: env!("CARGO_PKG_VERSION"),
                zone,
                backend: state.store.backend(),
            })
        }),
    )
}

/// The LGWAN zone's routes.
pub fn lgwan_router(state: AppState) -> Router {
    common(Zone::Lgwan).with_state(state)
}

/// The internet zone's routes. Nothing that accepts or returns a My Number is mounted here.
pub fn internet_router(state: AppState) -> Router {
    common(Zone::Internet).with_state(state)
}

/// The two bound listeners.
#[derive(Debug)]
pub struct Listeners {
    pub lgwan: TcpListener,
    pub internet: TcpListener,
}

impl Listeners {
    pub async fn bind(lgwan: SocketAddr, internet: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            lgwan: TcpListener::bind(lgwan).await?,
            internet: TcpListener::bind(internet).await?,
        })
    }

    pub fn addrs(&self) -> std::io::Result<(SocketAddr, SocketAddr)> {
        Ok((self.lgwan.local_addr()?, self.internet.local_addr()?))
    }
}

/// Serves both zones until `shutdown` completes or a listener fails.
pub async fn serve(
    listeners: Listeners,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let wait = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let lgwan =
        axum::serve(listeners.lgwan, lgwan_router(state.clone())).with_graceful_shutdown(wait());
    let internet =
        axum::serve(listeners.internet, internet_router(state)).with_graceful_shutdown(wait());
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    tokio::try_join!(lgwan.into_future(), internet.into_future())?;
    Ok(())
}
