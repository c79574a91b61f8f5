//! Agents and their labels.

use std::collections::BTreeMap;

use mandate_core::clock::{from_unix_millis, unix_millis};
use mandate_core::{Agent, AgentName, AuditDraft, AuditEvent, Labels};
use sqlx::{QueryBuilder, Row, Transaction};
use time::OffsetDateTime;

use super::{corrupt, opt_time, parse, unique_violation};
use crate::types::clamp_limit;
use crate::{AgentFilter, Error, Page, Result};

macro_rules! agent_columns {
    () => {
        "name, spiffe_id, kind, owner, description, provenance, envelope, status, \
         created_at, updated_at, review_by, last_seen_at"
    };
}

macro_rules! imp {
    ($store:ty, $db:ty, $row:ty, $lock_head:expr, $collate:expr) => {
        impl $store {
            async fn write_labels(tx: &mut Transaction<'static, $db>, agent: &Agent) -> Result<()> {
                sqlx::query("DELETE FROM agent_labels WHERE agent_name = $1")
                    .bind(agent.name.as_str())
                    .execute(&mut **tx)
                    .await?;
                for (k, v) in agent.labels.iter() {
                    sqlx::query(
                        "INSERT INTO agent_labels (agent_name, key, value) VALUES ($1, $2, $3)",
                    )
                    .bind(agent.name.as_str())
                    .bind(k)
                    .bind(v)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }

            pub(crate) async fn create_agent(
                &self,
                agent: &Agent,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                let provenance = serde_json::to_string(&agent.provenance)
                    .map_err(|e| corrupt("provenance", e))?;
                let mut tx = self.write.begin().await?;
                let inserted = sqlx::query(
                    "INSERT INTO agents (name, spiffe_id, kind, owner, description, provenance, \
                     envelope, status, created_at, updated_at, review_by, last_seen_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(agent.name.as_str())
                .bind(agent.spiffe_id.as_str())
                .bind(agent.kind.as_str())
                .bind(agent.owner.as_str())
                .bind(&agent.description)
                .bind(provenance)
                .bind(&agent.envelope)
                .bind(agent.status.as_str())
                .bind(unix_millis(agent.created_at))
                .bind(unix_millis(agent.updated_at))
                .bind(unix_millis(agent.review_by))
                .bind(agent.last_seen_at.map(unix_millis))
                .execute(&mut *tx)
                .await;
                match inserted {
                    Err(e) if unique_violation(&e) => {
                        return Err(Error::Duplicate {
                            kind: "agent",
                            id: agent.name.to_string(),
                        });
                    }
                    other => {
                        other?;
                    }
                }
                Self::write_labels(&mut tx, agent).await?;
                let ev = Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(ev)
            }

            pub(crate) async fn update_agent(
                &self,
                agent: &Agent,
                expected_updated_at: OffsetDateTime,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                self.update_agent_and(agent, expected_updated_at, draft, at, false)
                    .await
            }

            /// Updates the agent and, when `revoke_tokens`, revokes every
            /// live token it holds and every token derived from one, in the
            /// same transaction; the count lands in the event's detail as
            /// `tokens_revoked`.
            pub(crate) async fn update_agent_and(
                &self,
                agent: &Agent,
                expected_updated_at: OffsetDateTime,
                mut draft: AuditDraft,
                at: OffsetDateTime,
                revoke_tokens: bool,
            ) -> Result<AuditEvent> {
                let provenance = serde_json::to_string(&agent.provenance)
                    .map_err(|e| corrupt("provenance", e))?;
                let mut tx = self.write.begin().await?;
                let done = sqlx::query(
                    "UPDATE agents SET kind = $1, owner = $2, description = $3, provenance = $4, \
                     envelope = $5, status = $6, updated_at = $7, review_by = $8, \
                     last_seen_at = $9 WHERE name = $10 AND updated_at = $11",
                )
                .bind(agent.kind.as_str())
                .bind(agent.owner.as_str())
                .bind(&agent.description)
                .bind(provenance)
                .bind(&agent.envelope)
                .bind(agent.status.as_str())
                .bind(unix_millis(agent.updated_at))
                .bind(unix_millis(agent.review_by))
                .bind(agent.last_seen_at.map(unix_millis))
                .bind(agent.name.as_str())
                .bind(unix_millis(expected_updated_at))
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(Error::Conflict(format!("agent `{}`", agent.name)));
                }
                Self::write_labels(&mut tx, agent).await?;
                if revoke_tokens {
                    let n = Self::revoke_agent_tokens_in(&mut tx, agent.name.as_str(), at).await?;
                    if let Some(map) = draft.detail.as_object_mut() {
                        map.insert("tokens_revoked".into(), n.into());
                    }
                }
                let ev = Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(ev)
            }

            fn agent_from_row(row: &$row, labels: BTreeMap<String, String>) -> Result<Agent> {
                let provenance: String = row.try_get("provenance")?;
                Ok(Agent {
                    name: parse("agents.name", &row.try_get::<String, _>("name")?)?,
                    spiffe_id: parse("agents.spiffe_id", &row.try_get::<String, _>("spiffe_id")?)?,
                    kind: parse("agents.kind", &row.try_get::<String, _>("kind")?)?,
                    owner: parse("agents.owner", &row.try_get::<String, _>("owner")?)?,
                    description: row.try_get("description")?,
                    provenance: serde_json::from_str(&provenance)
                        .map_err(|e| corrupt("agents.provenance", e))?,
                    labels: Labels::try_from(labels).map_err(|e| corrupt("agent_labels", e))?,
                    envelope: row.try_get("envelope")?,
                    status: parse("agents.status", &row.try_get::<String, _>("status")?)?,
                    created_at: from_unix_millis(row.try_get("created_at")?),
                    updated_at: from_unix_millis(row.try_get("updated_at")?),
                    review_by: from_unix_millis(row.try_get("review_by")?),
                    last_seen_at: opt_time(row.try_get("last_seen_at")?),
                })
            }

            async fn labels_of(
                &self,
                names: &[String],
            ) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
                let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
                if names.is_empty() {
                    return Ok(out);
                }
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT agent_name, key, value FROM agent_labels WHERE agent_name IN (",
                );
                let mut sep = qb.separated(", ");
                for n in names {
                    sep.push_bind(n.clone());
                }
                qb.push(")");
                for row in qb.build().fetch_all(&self.read).await? {
                    out.entry(row.try_get("agent_name")?)
                        .or_default()
                        .insert(row.try_get("key")?, row.try_get("value")?);
                }
                Ok(out)
            }

            /// One agent with its labels, in one query (a row per label).
            pub(crate) async fn agent(&self, name: &AgentName) -> Result<Option<Agent>> {
                let sql = concat!(
                    "SELECT ",
                    agent_columns!(),
                    ", key AS label_key, value AS label_value FROM agents \
                     LEFT JOIN agent_labels ON agent_labels.agent_name = agents.name \
                     WHERE name = $1"
                );
                let rows = sqlx::query(sql)
                    .bind(name.as_str())
                    .fetch_all(&self.read)
                    .await?;
                let Some(first) = rows.first() else {
                    return Ok(None);
                };
                let mut labels = BTreeMap::new();
                for row in &rows {
                    let key: Option<String> = row.try_get("label_key")?;
                    let value: Option<String> = row.try_get("label_value")?;
                    if let (Some(k), Some(v)) = (key, value) {
                        labels.insert(k, v);
                    }
                }
                Self::agent_from_row(first, labels).map(Some)
            }

            pub(crate) async fn list_agents(&self, f: &AgentFilter) -> Result<Page<Agent>> {
                let limit = clamp_limit(f.limit);
                let mut qb = QueryBuilder::<$db>::new(concat!(
                    "SELECT ",
                    agent_columns!(),
                    " FROM agents WHERE 1 = 1"
                ));
                if let Some(owner) = &f.owner {
                    qb.push(" AND owner = ").push_bind(owner.to_string());
                }
                if let Some(kind) = f.kind {
                    qb.push(" AND kind = ").push_bind(kind.as_str());
                }
                if let Some(status) = f.status {
                    qb.push(" AND status = ").push_bind(status.as_str());
                }
                if let Some((k, v)) = &f.label {
                    qb.push(
                        " AND EXISTS (SELECT 1 FROM agent_labels l \
                         WHERE l.agent_name = agents.name AND l.key = ",
                    )
                    .push_bind(k.clone())
                    .push(" AND l.value = ")
                    .push_bind(v.clone())
                    .push(")");
                }
                if let Some(after) = &f.after {
                    qb.push(concat!(" AND name", $collate, " > "))
                        .push_bind(after.clone());
                }
                qb.push(concat!(" ORDER BY name", $collate, " LIMIT "))
                    .push_bind(i64::from(limit) + 1);
                let rows = qb.build().fetch_all(&self.read).await?;
                let names = rows
                    .iter()
                    .map(|r| r.try_get::<String, _>("name"))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut labels = self.labels_of(&names).await?;
                let mut items = Vec::with_capacity(rows.len());
                for (row, name) in rows.iter().zip(&names) {
                    items.push(Self::agent_from_row(
                        row,
                        labels.remove(name).unwrap_or_default(),
                    )?);
                }
                let next_cursor = if items.len() > limit as usize {
                    items.truncate(limit as usize);
                    items.last().map(|a| a.name.to_string())
                } else {
                    None
                };
                Ok(Page { items, next_cursor })
            }
        }
    };
}
both_backends!(imp);

impl crate::Store {
    /// Inserts a new agent and its audit event. [`Error::Duplicate`] when the
    /// name (or SPIFFE ID) is taken, including by a decommissioned agent.
    pub async fn create_agent(
        &self,
        agent: &Agent,
        event: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.create_agent(agent, event, at).await)
    }

    /// Replaces an agent's row and labels if it still has `expected_updated_at`,
    /// and appends the audit event; [`Error::Conflict`] otherwise.
    pub async fn update_agent(
        &self,
        agent: &Agent,
        expected_updated_at: OffsetDateTime,
        event: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.update_agent(agent, expected_updated_at, event, at).await)
    }

    /// Updates an agent like [`Store::update_agent`] and revokes, in the
    /// same transaction, every live token it holds and every token derived
    /// from one (the kill switch of suspend and decommission).
    pub async fn update_agent_revoking_tokens(
        &self,
        agent: &Agent,
        expected_updated_at: OffsetDateTime,
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.update_agent_and(agent, expected_updated_at, draft, at, true).await)
    }

    /// One agent by name.
    pub async fn agent(&self, name: &AgentName) -> Result<Option<Agent>> {
        dispatch!(self, s => s.agent(name).await)
    }

    /// Agents matching `filter`, ordered by name, one page.
    pub async fn list_agents(&self, filter: &AgentFilter) -> Result<Page<Agent>> {
        dispatch!(self, s => s.list_agents(filter).await)
    }
}
