//! The hash-chained audit log.

use mandate_core::clock::{from_unix_millis, unix_millis};
use mandate_core::{AuditDraft, AuditEvent, Outcome};
use sqlx::{QueryBuilder, Row, Transaction};
use time::OffsetDateTime;

use super::{chain_hash, corrupt};
use crate::types::clamp_limit;
use crate::{AuditFilter, ChainReport, Page, Result};

const VERIFY_BATCH: i64 = 1000;
/// Rows per multi-row `INSERT` (well under both backends' bind limits).
pub(crate) const ROWS_PER_INSERT: usize = 128;

/// The event that follows `(prev_seq, prev_hash)`, hashed into the chain.
fn chain_event(
    prev_seq: i64,
    prev_hash: String,
    draft: AuditDraft,
    at: OffsetDateTime,
) -> AuditEvent {
    let seq = prev_seq + 1;
    let time = from_unix_millis(unix_millis(at));
    let canonical = AuditEvent::canonical_bytes(
        seq,
        time,
        &draft.event_type,
        draft.actor.as_deref(),
        draft.target.as_deref(),
        draft.outcome,
        &draft.detail,
    );
    let hash = chain_hash(&prev_hash, &canonical);
    AuditEvent {
        seq,
        time,
        event_type: draft.event_type,
        actor: draft.actor,
        target: draft.target,
        outcome: draft.outcome,
        detail: draft.detail,
        prev_hash,
        hash,
    }
}

macro_rules! audit_columns {
    () => {
        "seq, time_ms, event_type, actor, target, outcome, detail, prev_hash, hash"
    };
}

macro_rules! imp {
    ($store:ty, $db:ty, $row:ty, $lock_head:expr, $collate:expr) => {
        impl $store {
            /// Appends `draft` to the chain inside `tx`, holding the head row.
            pub(crate) async fn append_in(
                tx: &mut Transaction<'static, $db>,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                let (seq, hash) = Self::lock_head(tx).await?;
                let ev = Self::insert_event(tx, seq, hash, draft, at).await?;
                Self::set_head(tx, &ev).await?;
                Ok(ev)
            }

            /// Locks the chain head inside `tx`: its `seq` and `hash`.
            async fn lock_head(tx: &mut Transaction<'static, $db>) -> Result<(i64, String)> {
                let head = sqlx::query($lock_head).fetch_one(&mut **tx).await?;
                Ok((head.try_get("seq")?, head.try_get("hash")?))
            }

            /// Inserts the event that follows `(prev_seq, prev_hash)`; the
            /// head is left to the caller ([`Self::set_head`]).
            async fn insert_event(
                tx: &mut Transaction<'static, $db>,
                prev_seq: i64,
                prev_hash: String,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                let ev = chain_event(prev_seq, prev_hash, draft, at);
                Self::insert_events(tx, std::slice::from_ref(&ev)).await?;
                Ok(ev)
            }

            /// Inserts chained events, many rows per statement.
            async fn insert_events(
                tx: &mut Transaction<'static, $db>,
                events: &[AuditEvent],
            ) -> Result<()> {
                for chunk in events.chunks(ROWS_PER_INSERT) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO audit_events (seq, time_ms, event_type, actor, target, \
                         outcome, detail, prev_hash, hash) ",
                    );
                    qb.push_values(chunk, |mut b, ev| {
                        b.push_bind(ev.seq)
                            .push_bind(unix_millis(ev.time))
                            .push_bind(ev.event_type.clone())
                            .push_bind(ev.actor.clone())
                            .push_bind(ev.target.clone())
                            .push_bind(ev.outcome.as_str())
                            .push_bind(ev.detail.to_string())
                            .push_bind(ev.prev_hash.clone())
                            .push_bind(ev.hash.clone());
                    });
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Moves the chain head to `ev`.
            async fn set_head(tx: &mut Transaction<'static, $db>, ev: &AuditEvent) -> Result<()> {
                sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
                    .bind(ev.seq)
                    .bind(&ev.hash)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// Ends a conditional change: when nothing `changed` (no row
            /// matched), rolls back and returns `false`; otherwise appends
            /// `draft` in the same transaction, commits and returns `true`.
            pub(crate) async fn commit_if_changed(
                mut tx: Transaction<'static, $db>,
                changed: bool,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<bool> {
                if !changed {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(true)
            }

            pub(crate) async fn append_audit(
                &self,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                self.record_grant(crate::GrantWrite::default(), draft, at)
                    .await
            }

            /// Queues a standalone event for the group commit without
            /// waiting for it (written at once where there is no writer).
            pub(crate) async fn append_audit_buffered(
                &self,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<()> {
                match &self.batch {
                    Some(batch) => batch.append_buffered(draft, at).await,
                    None => self.append_audit(draft, at).await.map(|_| ()),
                }
            }

            /// Appends several events, each with the change that goes with
            /// it, in one transaction (one commit, one `fsync`), in order.
            /// An item whose token is for an agent no longer `active` is
            /// left out and answered [`crate::Error::AgentInactive`], so a
            /// suspension that committed first is never outlived by a token
            /// recorded after it.
            pub(crate) async fn append_batch(
                &self,
                items: Vec<crate::batch::Item>,
            ) -> Result<Vec<Result<AuditEvent>>> {
                let mut tx = self.write.begin().await?;
                let inactive = Self::inactive_token_agents(&mut tx, &items).await?;
                // Per item: the agent it was refused for, if any.
                let mut refused: Vec<Option<String>> = Vec::with_capacity(items.len());
                let mut events: Vec<AuditEvent> = Vec::with_capacity(items.len());
                let mut writes = Vec::with_capacity(items.len());
                // The head is read and written once per batch, and rows go
                // in many per statement.
                let (mut seq, mut hash) = Self::lock_head(&mut tx).await?;
                for (draft, at, write) in items {
                    if let Some(t) = write.token.as_ref().filter(|t| inactive.contains(&t.agent)) {
                        refused.push(Some(t.agent.clone()));
                        continue;
                    }
                    let ev = chain_event(seq, hash, draft, at);
                    seq = ev.seq;
                    hash = ev.hash.clone();
                    refused.push(None);
                    events.push(ev);
                    writes.push((write, at));
                }
                Self::apply_grant_writes(&mut tx, &writes).await?;
                Self::insert_events(&mut tx, &events).await?;
                if let Some(last) = events.last() {
                    Self::set_head(&mut tx, last).await?;
                }
                tx.commit().await?;
                let mut events = events.into_iter();
                Ok(refused
                    .into_iter()
                    .map(|r| match r {
                        Some(agent) => Err(crate::Error::AgentInactive(agent)),
                        None => events
                            .next()
                            .ok_or_else(|| crate::Error::AuditWrite("batch out of step".into())),
                    })
                    .collect())
            }

            /// The agents named by the batch's tokens that exist and are not
            /// `active`, read inside the batch's transaction.
            async fn inactive_token_agents(
                tx: &mut Transaction<'static, $db>,
                items: &[crate::batch::Item],
            ) -> Result<std::collections::HashSet<String>> {
                let mut names: Vec<&str> = items
                    .iter()
                    .filter_map(|(_, _, w)| w.token.as_ref().map(|t| t.agent.as_str()))
                    .collect();
                names.sort_unstable();
                names.dedup();
                let mut inactive = std::collections::HashSet::new();
                for chunk in names.chunks(ROWS_PER_INSERT) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "SELECT name FROM agents WHERE status <> 'active' AND name IN (",
                    );
                    let mut list = qb.separated(", ");
                    for n in chunk {
                        list.push_bind(*n);
                    }
                    qb.push(")");
                    for row in qb.build().fetch_all(&mut **tx).await? {
                        inactive.insert(row.try_get::<String, _>("name")?);
                    }
                }
                Ok(inactive)
            }

            fn event_from_row(row: &$row) -> Result<AuditEvent> {
                let detail: String = row.try_get("detail")?;
                let outcome: String = row.try_get("outcome")?;
                Ok(AuditEvent {
                    seq: row.try_get("seq")?,
                    time: from_unix_millis(row.try_get("time_ms")?),
                    event_type: row.try_get("event_type")?,
                    actor: row.try_get("actor")?,
                    target: row.try_get("target")?,
                    outcome: Outcome::parse(&outcome)
                        .ok_or_else(|| corrupt("audit_events.outcome", &outcome))?,
                    detail: serde_json::from_str(&detail)
                        .map_err(|e| corrupt("audit_events.detail", e))?,
                    prev_hash: row.try_get("prev_hash")?,
                    hash: row.try_get("hash")?,
                })
            }

            pub(crate) async fn list_audit(&self, f: &AuditFilter) -> Result<Page<AuditEvent>> {
                let limit = clamp_limit(f.limit);
                let mut qb = QueryBuilder::<$db>::new(concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit_events WHERE 1 = 1"
                ));
                if let Some(t) = &f.event_type {
                    qb.push(" AND event_type = ").push_bind(t.clone());
                }
                if let Some(t) = &f.target {
                    qb.push(" AND target = ").push_bind(t.clone());
                }
                if let Some(since) = f.since {
                    qb.push(" AND time_ms >= ").push_bind(unix_millis(since));
                }
                if let Some(after) = f.after_seq {
                    qb.push(" AND seq > ").push_bind(after);
                }
                qb.push(" ORDER BY seq LIMIT ")
                    .push_bind(i64::from(limit) + 1);
                let rows = qb.build().fetch_all(&self.read).await?;
                let mut items = rows
                    .iter()
                    .map(Self::event_from_row)
                    .collect::<Result<Vec<_>>>()?;
                let next_cursor = if items.len() > limit as usize {
                    items.truncate(limit as usize);
                    items.last().map(|e| e.seq.to_string())
                } else {
                    None
                };
                Ok(Page { items, next_cursor })
            }

            pub(crate) async fn verify_audit_chain(&self) -> Result<ChainReport> {
                let sql = concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
                );
                let mut last_seq = 0i64;
                let mut last_hash = mandate_core::audit::GENESIS_HASH.to_owned();
                loop {
                    let rows = sqlx::query(sql)
                        .bind(last_seq)
                        .bind(VERIFY_BATCH)
                        .fetch_all(&self.read)
                        .await?;
                    if rows.is_empty() {
                        break;
                    }
                    for row in &rows {
                        let seq: i64 = row.try_get("seq")?;
                        let ev = match Self::event_from_row(row) {
                            Ok(ev) => ev,
                            Err(e) => {
                                return Ok(ChainReport::Broken {
                                    seq,
                                    reason: e.to_string(),
                                });
                            }
                        };
                        if ev.seq != last_seq + 1 {
                            return Ok(ChainReport::Broken {
                                seq: last_seq + 1,
                                reason: format!("event missing (next stored seq is {})", ev.seq),
                            });
                        }
                        if ev.prev_hash != last_hash {
                            return Ok(ChainReport::Broken {
                                seq: ev.seq,
                                reason: "prev_hash does not match the previous event's hash".into(),
                            });
                        }
                        let expected = chain_hash(&last_hash, &ev.own_canonical_bytes());
                        if ev.hash != expected {
                            return Ok(ChainReport::Broken {
                                seq: ev.seq,
                                reason: "hash does not match the event's contents".into(),
                            });
                        }
                        last_seq = ev.seq;
                        last_hash = ev.hash;
                    }
                }
                let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
                    .fetch_one(&self.read)
                    .await?;
                let head_seq: i64 = head.try_get("seq")?;
                let head_hash: String = head.try_get("hash")?;
                if head_seq != last_seq || head_hash != last_hash {
                    return Ok(ChainReport::Broken {
                        seq: last_seq + 1,
                        reason: format!(
                            "chain ends at seq {last_seq} but the recorded head is seq {head_seq}"
                        ),
                    });
                }
                Ok(ChainReport::Intact {
                    count: last_seq,
                    head: last_hash,
                })
            }
        }
    };
}
both_backends!(imp);

impl crate::Store {
    /// Appends an event that goes with no other change (a rejected request,
    /// an attestation outcome).
    pub async fn append_audit(&self, event: AuditDraft, at: OffsetDateTime) -> Result<AuditEvent> {
        dispatch!(self, s => s.append_audit(event, at).await)
    }

    /// Queues an event for the group commit and returns without waiting
    /// for its commit (it is in the chain, in order, one commit later; a
    /// crash before that loses it). Refused while the audit log cannot be
    /// written. For callers that trade a small loss window for latency.
    pub async fn append_audit_buffered(&self, event: AuditDraft, at: OffsetDateTime) -> Result<()> {
        dispatch!(self, s => s.append_audit_buffered(event, at).await)
    }

    /// Events matching `filter`, in chain order, one page.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Page<AuditEvent>> {
        dispatch!(self, s => s.list_audit(filter).await)
    }

    /// Recomputes the whole chain and compares it with the stored hashes and
    /// the head.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport> {
        dispatch!(self, s => s.verify_audit_chain().await)
    }
}

impl crate::batch::Sink for super::SqliteStore {
    async fn write(&self, items: Vec<crate::batch::Item>) -> Result<Vec<Result<AuditEvent>>> {
        self.append_batch(items).await
    }
}

impl crate::batch::Sink for super::PgStore {
    async fn write(&self, items: Vec<crate::batch::Item>) -> Result<Vec<Result<AuditEvent>>> {
        self.append_batch(items).await
    }
}
