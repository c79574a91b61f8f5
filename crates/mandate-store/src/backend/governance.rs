//! Governance tables: tools per resource, drift baselines and findings, the
//! detector cursor. Every change made by an admin, and every finding, is
//! written with its audit event in one transaction.

use mandate_core::clock::{from_unix_millis, unix_millis};
use mandate_core::{AuditDraft, AuditEvent};
use sqlx::Row;
use time::OffsetDateTime;

use super::opt_time;
use crate::governance::{DriftState, DriftWrite, FindingFilter, FindingRecord};
use crate::{MAX_PAGE, Result};

macro_rules! finding_columns {
    () => {
        "id, agent, kind, summary, detail, risk, event_seq, created_at, acked_at, acked_by, ack_note"
    };
}

macro_rules! imp {
    ($store:ty, $db:ty, $row:ty, $lock_head:expr, $collate:expr) => {
        impl $store {
            fn finding_from_row(r: &$row) -> Result<FindingRecord> {
                Ok(FindingRecord {
                    id: r.try_get("id")?,
                    agent: r.try_get("agent")?,
                    kind: r.try_get("kind")?,
                    summary: r.try_get("summary")?,
                    detail: r.try_get("detail")?,
                    risk: r.try_get("risk")?,
                    event_seq: r.try_get("event_seq")?,
                    created_at: from_unix_millis(r.try_get("created_at")?),
                    acked_at: opt_time(r.try_get("acked_at")?),
                    acked_by: r.try_get("acked_by")?,
                    ack_note: r.try_get("ack_note")?,
                })
            }

            pub(crate) async fn set_resource_tools(
                &self,
                resource: &str,
                tools: &[String],
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<Option<AuditEvent>> {
                let mut tx = self.write.begin().await?;
                let exists = sqlx::query("SELECT name FROM resources WHERE name = $1")
                    .bind(resource)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                if !exists {
                    tx.rollback().await?;
                    return Ok(None);
                }
                sqlx::query("DELETE FROM resource_tools WHERE resource = $1")
                    .bind(resource)
                    .execute(&mut *tx)
                    .await?;
                for t in tools {
                    sqlx::query("INSERT INTO resource_tools (resource, tool) VALUES ($1, $2)")
                        .bind(resource)
                        .bind(t)
                        .execute(&mut *tx)
                        .await?;
                }
                let ev = Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(Some(ev))
            }

            pub(crate) async fn list_resource_tools(&self) -> Result<Vec<(String, String)>> {
                let rows = sqlx::query(concat!(
                    "SELECT resource, tool FROM resource_tools ORDER BY resource",
                    $collate,
                    ", tool",
                    $collate
                ))
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("resource")?, r.try_get("tool")?)))
                    .collect()
            }

            pub(crate) async fn drift_state(&self) -> Result<DriftState> {
                // Read from the writer so a replica sees its own last write.
                let mut tx = self.write.begin().await?;
                let cursor: i64 = sqlx::query("SELECT seq FROM drift_cursor WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("seq")?;
                let rows = sqlx::query(concat!("SELECT agent, state FROM drift_baselines ORDER BY agent", $collate))
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                let baselines = rows
                    .iter()
                    .map(|r| Ok((r.try_get("agent")?, r.try_get("state")?)))
                    .collect::<Result<Vec<_>>>()?;
                Ok(DriftState { cursor, baselines })
            }

            pub(crate) async fn save_drift(&self, w: &DriftWrite, at: OffsetDateTime) -> Result<bool> {
                let mut tx = self.write.begin().await?;
                let moved = sqlx::query("UPDATE drift_cursor SET seq = $1 WHERE id = 1 AND seq = $2")
                    .bind(w.to_cursor)
                    .bind(w.from_cursor)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if moved != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                for (agent, state) in &w.baselines {
                    sqlx::query(
                        "INSERT INTO drift_baselines (agent, state, updated_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (agent) DO UPDATE SET state = excluded.state, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(agent)
                    .bind(state)
                    .bind(unix_millis(at))
                    .execute(&mut *tx)
                    .await?;
                }
                for (f, draft) in &w.findings {
                    sqlx::query(
                        "INSERT INTO drift_findings (id, agent, kind, summary, detail, risk, \
                         event_seq, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&f.id)
                    .bind(&f.agent)
                    .bind(&f.kind)
                    .bind(&f.summary)
                    .bind(&f.detail)
                    .bind(f.risk)
                    .bind(f.event_seq)
                    .bind(unix_millis(f.created_at))
                    .execute(&mut *tx)
                    .await?;
                    Self::append_in(&mut tx, draft.clone(), at).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            pub(crate) async fn list_findings(&self, f: &FindingFilter) -> Result<Vec<FindingRecord>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(concat!(
                    "SELECT ",
                    finding_columns!(),
                    " FROM drift_findings WHERE 1 = 1"
                ));
                if let Some(a) = &f.agent {
                    qb.push(" AND agent = ").push_bind(a.clone());
                }
                if !f.include_acked {
                    qb.push(" AND acked_at IS NULL");
                }
                if let Some(s) = f.since {
                    qb.push(" AND created_at >= ").push_bind(unix_millis(s));
                }
                qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
                    .push_bind(i64::from(f.limit.clamp(1, MAX_PAGE)));
                let rows = qb.build().fetch_all(&self.read).await?;
                rows.iter().map(Self::finding_from_row).collect()
            }

            pub(crate) async fn ack_finding(
                &self,
                id: &str,
                by: &str,
                note: &str,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<Option<FindingRecord>> {
                let mut tx = self.write.begin().await?;
                let updated = sqlx::query(
                    "UPDATE drift_findings SET acked_at = $1, acked_by = $2, ack_note = $3 \
                     WHERE id = $4 AND acked_at IS NULL",
                )
                .bind(unix_millis(at))
                .bind(by)
                .bind(note)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let row = sqlx::query(concat!(
                    "SELECT ",
                    finding_columns!(),
                    " FROM drift_findings WHERE id = $1"
                ))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                if updated == 1 {
                    Self::append_in(&mut tx, draft, at).await?;
                }
                tx.commit().await?;
                Ok(Some(Self::finding_from_row(&row)?))
            }
        }
    };
}
both_backends!(imp);

impl crate::Store {
    /// Replaces the tools `resource` offers, with the audit event. `None`
    /// when there is no such resource (nothing is written).
    pub async fn set_resource_tools(
        &self,
        resource: &str,
        tools: &[String],
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<Option<AuditEvent>> {
        dispatch!(self, s => s.set_resource_tools(resource, tools, draft, at).await)
    }

    /// Every registered tool as `(resource, tool)`, ordered.
    pub async fn list_resource_tools(&self) -> Result<Vec<(String, String)>> {
        dispatch!(self, s => s.list_resource_tools().await)
    }

    /// The drift detector's cursor and baselines.
    pub async fn drift_state(&self) -> Result<DriftState> {
        dispatch!(self, s => s.drift_state().await)
    }

    /// Writes one detector run: cursor, baselines, findings and their audit
    /// events. `false` (nothing written) when the cursor is no longer at
    /// `w.from_cursor` because another replica ran first.
    pub async fn save_drift(&self, w: &DriftWrite, at: OffsetDateTime) -> Result<bool> {
        dispatch!(self, s => s.save_drift(w, at).await)
    }

    /// Findings, newest first.
    pub async fn list_findings(&self, filter: &FindingFilter) -> Result<Vec<FindingRecord>> {
        dispatch!(self, s => s.list_findings(filter).await)
    }

    /// Acknowledges a finding, writing the audit event only when it was
    /// open. `None` when there is no such finding.
    pub async fn ack_finding(
        &self,
        id: &str,
        by: &str,
        note: &str,
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<Option<FindingRecord>> {
        dispatch!(self, s => s.ack_finding(id, by, note, draft, at).await)
    }
}
