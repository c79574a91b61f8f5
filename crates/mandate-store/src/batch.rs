//! Group commit for audit events that go with no other change (decisions,
//! attestation outcomes, rejected requests) or with the small, conflict-free
//! change of an issued token ([`GrantWrite`]).
//!
//! Concurrent callers hand their event to one writer task; it takes every
//! event waiting at that moment (up to [`MAX_BATCH`]), appends them in one
//! transaction and answers each caller only after that transaction
//! committed. Durability per event is unchanged — nobody is answered before
//! their event is on disk — but N concurrent events cost one commit instead
//! of N. A lone event is written at once: no timer, no added latency.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mandate_core::{AuditDraft, AuditEvent};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::{Error, GrantWrite, Result};

/// Most events written in one transaction.
pub const MAX_BATCH: usize = 256;
const QUEUE: usize = 4096;

/// One batched write: the event, its time, and the change that goes with it.
pub(crate) type Item = (AuditDraft, OffsetDateTime, GrantWrite);

/// Writes a batch of events in one transaction, in order: one answer per
/// item (an item can be refused on its own), or an error for the whole
/// batch when the transaction failed.
pub(crate) trait Sink: Clone + Send + Sync + 'static {
    fn write(
        &self,
        items: Vec<Item>,
    ) -> impl Future<Output = Result<Vec<Result<AuditEvent>>>> + Send;
}

struct Pending {
    draft: AuditDraft,
    at: OffsetDateTime,
    write: GrantWrite,
    reply: oneshot::Sender<Result<AuditEvent>>,
}

/// The handle callers append through; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Pending>,
    /// False once a batch failed to commit, until one commits again: a
    /// buffered append refuses while it is false (fail closed).
    healthy: Arc<AtomicBool>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("event_type", &self.draft.event_type)
            .finish()
    }
}

impl Batcher {
    /// Starts the writer task over `sink`. The task ends when every handle is
    /// dropped.
    pub(crate) fn spawn<S: Sink>(sink: S) -> Batcher {
        let (tx, mut rx) = mpsc::channel::<Pending>(QUEUE);
        let healthy = Arc::new(AtomicBool::new(true));
        let health = healthy.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let (items, replies): (Vec<_>, Vec<_>) = batch
                    .into_iter()
                    .map(|p| ((p.draft, p.at, p.write), p.reply))
                    .unzip();
                match sink.write(items).await {
                    Ok(events) => {
                        health.store(true, Ordering::Release);
                        for (reply, ev) in replies.into_iter().zip(events) {
                            let _ = reply.send(ev);
                        }
                    }
                    Err(e) => {
                        health.store(false, Ordering::Release);
                        tracing::error!(error = %e, "an audit batch could not be committed");
                        let msg = e.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(Error::AuditWrite(msg.clone())));
                        }
                    }
                }
            }
        });
        Batcher { tx, healthy }
    }

    /// Hands one standalone event to the writer and returns once it is
    /// queued, in order, without waiting for its commit: the event is
    /// durable one commit later (a crash in between loses it). Refused while
    /// the last batch failed to commit, so callers fail closed.
    pub(crate) async fn append_buffered(
        &self,
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<()> {
        if !self.healthy.load(Ordering::Acquire) {
            return Err(Error::AuditWrite(
                "the audit log could not be written; refusing until it can".into(),
            ));
        }
        let (reply, _) = oneshot::channel();
        self.tx
            .send(Pending {
                draft,
                at,
                write: GrantWrite::default(),
                reply,
            })
            .await
            .map_err(|_| Error::AuditWrite("the audit writer has stopped".into()))
    }

    /// Appends one event (with the change that goes with it) and waits
    /// until its batch is committed.
    pub(crate) async fn append(
        &self,
        draft: AuditDraft,
        at: OffsetDateTime,
        write: GrantWrite,
    ) -> Result<AuditEvent> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending {
                draft,
                at,
                write,
                reply,
            })
            .await
            .map_err(|_| Error::AuditWrite("the audit writer has stopped".into()))?;
        rx.await
            .map_err(|_| Error::AuditWrite("the audit writer has stopped".into()))?
    }
}
