//! Notification of security events (侵入検知・通知) to a webhook: HTTP POST of the event as
//! JSON, retried with back-off, from a background task so that no request waits for it.

use std::time::Duration;

use openvrs_store::SecurityEvent;
use serde::Serialize;
use tokio::sync::mpsc;

/// Sends events to the configured webhook.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: mpsc::Sender<SecurityEvent>,
}

const ATTEMPTS: u32 = 5;

impl Notifier {
    /// Starts the delivery task (inside a Tokio runtime).
    pub fn start(url: String) -> Self {
        let (tx, mut rx) = mpsc::channel::<SecurityEvent>(1024);
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                deliver(&url, &event).await;
            }
        });
        Self { tx }
    }

    /// Queues an event; when the queue is full the event is dropped (it is stored anyway).
    pub fn send(&self, event: SecurityEvent) {
        if self.tx.try_send(event).is_err() {
            tracing::error!("security event notification queue full: event not sent");
        }
    }
}

/// A security event as the API lists it and the webhook receives it. Holds ids, never a
/// personal value.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SecurityEvent)]
pub struct SecurityEventBody {
    pub id: i64,
    /// Unix time in microseconds.
    pub at: i64,
    /// What happened, e.g. `login_failed`, `cross_municipality`, `wrong_zone`.
    pub kind: &'static str,
    /// The municipality concerned (自治体コード), if any.
    #[schema(required = true)]
    pub municipality: Option<String>,
    /// The account concerned, if known.
    #[schema(required = true)]
    pub user: Option<String>,
    /// The client's address, if known.
    #[schema(required = true)]
    pub client: Option<String>,
    pub detail: String,
}

impl From<&SecurityEvent> for SecurityEventBody {
    fn from(e: &SecurityEvent) -> Self {
        Self {
            id: e.id,
            at: e.at,
            kind: e.kind.code(),
            municipality: e.municipality.map(|m| m.to_string()),
            user: e.user.clone(),
            client: e.client.clone(),
            detail: e.detail.clone(),
        }
    }
}

async fn deliver(url: &str, event: &SecurityEvent) {
    let body = serde_json::to_string(&SecurityEventBody::from(event)).unwrap_or_default();
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS {
        let (url, body) = (url.to_owned(), body.clone());
        let sent = tokio::task::spawn_blocking(move || {
            ureq::post(&url)
                .header("content-type", "application/json")
                .send(body.as_bytes())
                .map(|_| ())
        })
        .await;
        match sent {
            Ok(Ok(())) => return,
            Ok(Err(e)) => tracing::warn!(attempt, error = %e, "webhook delivery failed"),
            Err(_) => tracing::warn!(attempt, "webhook delivery task failed"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(delay).await;
            delay *= 3;
        }
    }
    tracing::error!(kind = %event.kind, id = event.id, "webhook: event not delivered");
}
