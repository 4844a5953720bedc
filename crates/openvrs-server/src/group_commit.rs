//! Group commit for venue tablets: requests queue for one writer thread, which takes whatever
//! has queued (up to a limit), records it all in one transaction, commits once, and only then
//! answers each request. No request waits for more than the batch that is running.

use std::sync::Arc;

use openvrs_domain::{audit::Actor, ids::MunicipalityCode};
use openvrs_store::{Store, StoreError, TabletAnswer, TabletRecord};
use tokio::sync::{mpsc, oneshot};

/// Records per transaction at most.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<TabletAnswer, StoreError>>;

/// The queue in front of the writer thread.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<(MunicipalityCode, TabletRecord, Actor, Reply)>,
}

impl GroupCommit {
    /// Starts the writer thread; it ends when the last `GroupCommit` is dropped.
    pub fn start(store: Arc<dyn Store>, metrics: Arc<crate::metrics::Metrics>) -> Self {
        let (queue, mut jobs) =
            mpsc::channel::<(MunicipalityCode, TabletRecord, Actor, Reply)>(MAX_BATCH * 8);
        std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || {
                while let Some(first) = jobs.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match jobs.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let (items, replies): (Vec<_>, Vec<_>) = batch
                        .into_iter()
                        .map(|(m, record, actor, reply)| ((m, record, actor), reply))
                        .unzip();
                    tracing::debug!(records = items.len(), "group commit");
                    metrics.tablet_batch(items.len());
                    match store.record_from_tablets(&items) {
                        Ok(answers) => {
                            for (reply, answer) in replies.into_iter().zip(answers) {
                                metrics.tablet_record(match &answer {
                                    Ok(a) if a.replayed => "repeated",
                                    Ok(a) => a.outcome.code(),
                                    Err(_) => "refused",
                                });
                                let _ = reply.send(answer);
                            }
                        }
                        Err(e) => {
                            if matches!(e, StoreError::Unavailable | StoreError::Busy) {
                                tracing::warn!(error = %e, "group commit: the tablets will retry");
                            } else {
                                tracing::error!(error = %e, "group commit failed");
                            }
                            for reply in replies {
                                // Nothing of the batch was written: each caller is told why
                                // (a database away is a 503 to retry, not a 500).
                                let _ = reply.send(Err(match &e {
                                    StoreError::Unavailable => StoreError::Unavailable,
                                    StoreError::Busy => StoreError::Busy,
                                    e => StoreError::Database(e.to_string()),
                                }));
                            }
                        }
                    }
                }
            })
            .expect("start the group-commit thread");
        Self { queue }
    }

    /// Queues one record and waits until the transaction holding it is committed.
    pub async fn record(
        &self,
        m: MunicipalityCode,
        record: TabletRecord,
        actor: Actor,
    ) -> Result<TabletAnswer, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Database("the group-commit writer stopped".into());
        self.queue
            .send((m, record, actor, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}
