//! The two backends. Both are generated from one body by `backend!`, so they
//! cannot drift apart; what differs between SQLite and PostgreSQL (pool
//! set-up, how the chain head is locked, collation) is passed in explicitly.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mandate_core::clock::{from_unix_millis, unix_millis};
use mandate_core::{Agent, AgentName, AuditDraft, AuditEvent, Labels, Outcome};
use mandate_jose::digest::{hex, sha256};
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Pool, Postgres, QueryBuilder, Row, Sqlite, Transaction};
use time::OffsetDateTime;

use crate::types::clamp_limit;
use crate::{AdminTokenRecord, AgentFilter, AuditFilter, ChainReport, Error, Page, Result};

// Column lists as macros so `concat!` can build `&'static str` queries (sqlx
// refuses runtime-built SQL unless it is explicitly asserted safe).
macro_rules! agent_columns {
    () => {
        "name, spiffe_id, kind, owner, description, provenance, envelope, status, \
         created_at, updated_at, review_by, last_seen_at"
    };
}
macro_rules! token_columns {
    () => {
        "id, name, secret_hash, created_at, created_by, expires_at, revoked_at"
    };
}
macro_rules! audit_columns {
    () => {
        "seq, time_ms, event_type, actor, target, outcome, detail, prev_hash, hash"
    };
}
const BOOTSTRAP_KEY: &str = "bootstrap_admin_token";
const VERIFY_BATCH: i64 = 1000;

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("{what}: {e}"))
}

fn parse<T: std::str::FromStr>(what: &str, s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| corrupt(what, e))
}

fn opt_time(ms: Option<i64>) -> Option<OffsetDateTime> {
    ms.map(from_unix_millis)
}

/// Hash of an event given its predecessor's hash (as its 64 hex characters).
fn chain_hash(prev_hash: &str, canonical: &[u8]) -> String {
    hex(&sha256(&[prev_hash.as_bytes(), canonical]))
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

macro_rules! backend {
    (
        $(#[$meta:meta])*
        $store:ident, $db:ty, $row:ty,
        lock_head: $lock_head:expr,
        collate: $collate:expr
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $store {
            write: Pool<$db>,
            read: Pool<$db>,
        }

        impl $store {
            pub(crate) async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.read).await?;
                Ok(())
            }

            pub(crate) async fn close(&self) {
                self.write.close().await;
                self.read.close().await;
            }

            /// Appends `draft` to the chain inside `tx`, holding the head row.
            async fn append_in(
                tx: &mut Transaction<'static, $db>,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                let head = sqlx::query($lock_head).fetch_one(&mut **tx).await?;
                let prev_seq: i64 = head.try_get("seq")?;
                let prev_hash: String = head.try_get("hash")?;
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
                sqlx::query(
                    "INSERT INTO audit_events (seq, time_ms, event_type, actor, target, outcome, \
                     detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(seq)
                .bind(unix_millis(time))
                .bind(&draft.event_type)
                .bind(draft.actor.as_deref())
                .bind(draft.target.as_deref())
                .bind(draft.outcome.as_str())
                .bind(draft.detail.to_string())
                .bind(&prev_hash)
                .bind(&hash)
                .execute(&mut **tx)
                .await?;
                sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
                    .bind(seq)
                    .bind(&hash)
                    .execute(&mut **tx)
                    .await?;
                Ok(AuditEvent {
                    seq,
                    time,
                    event_type: draft.event_type,
                    actor: draft.actor,
                    target: draft.target,
                    outcome: draft.outcome,
                    detail: draft.detail,
                    prev_hash,
                    hash,
                })
            }

            pub(crate) async fn append_audit(
                &self,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                let mut tx = self.write.begin().await?;
                let ev = Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(ev)
            }

            async fn write_labels(
                tx: &mut Transaction<'static, $db>,
                agent: &Agent,
            ) -> Result<()> {
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

            pub(crate) async fn agent(&self, name: &AgentName) -> Result<Option<Agent>> {
                let sql = concat!("SELECT ", agent_columns!(), " FROM agents WHERE name = $1");
                let Some(row) = sqlx::query(sql)
                    .bind(name.as_str())
                    .fetch_optional(&self.read)
                    .await?
                else {
                    return Ok(None);
                };
                let mut labels = self.labels_of(&[name.to_string()]).await?;
                let labels = labels.remove(name.as_str()).unwrap_or_default();
                Self::agent_from_row(&row, labels).map(Some)
            }

            pub(crate) async fn list_agents(&self, f: &AgentFilter) -> Result<Page<Agent>> {
                let limit = clamp_limit(f.limit);
                let mut qb = QueryBuilder::<$db>::new(concat!(
                    "SELECT ", agent_columns!(), " FROM agents WHERE 1 = 1"
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
                    items.push(Self::agent_from_row(row, labels.remove(name).unwrap_or_default())?);
                }
                let next_cursor = if items.len() > limit as usize {
                    items.truncate(limit as usize);
                    items.last().map(|a| a.name.to_string())
                } else {
                    None
                };
                Ok(Page { items, next_cursor })
            }

            async fn insert_token(
                tx: &mut Transaction<'static, $db>,
                t: &AdminTokenRecord,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO admin_tokens (id, name, secret_hash, created_at, created_by, \
                     expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&t.id)
                .bind(&t.name)
                .bind(&t.secret_hash)
                .bind(unix_millis(t.created_at))
                .bind(t.created_by.as_deref())
                .bind(t.expires_at.map(unix_millis))
                .bind(t.revoked_at.map(unix_millis))
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            pub(crate) async fn create_admin_token(
                &self,
                t: &AdminTokenRecord,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                let mut tx = self.write.begin().await?;
                Self::insert_token(&mut tx, t).await?;
                let ev = Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(ev)
            }

            pub(crate) async fn bootstrap_admin_token(
                &self,
                t: &AdminTokenRecord,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<bool> {
                let mut tx = self.write.begin().await?;
                let claimed = sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(BOOTSTRAP_KEY)
                .bind(&t.id)
                .execute(&mut *tx)
                .await?;
                if claimed.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::insert_token(&mut tx, t).await?;
                Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(true)
            }

            fn token_from_row(row: &$row) -> Result<AdminTokenRecord> {
                Ok(AdminTokenRecord {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    secret_hash: row.try_get("secret_hash")?,
                    created_at: from_unix_millis(row.try_get("created_at")?),
                    created_by: row.try_get("created_by")?,
                    expires_at: opt_time(row.try_get("expires_at")?),
                    revoked_at: opt_time(row.try_get("revoked_at")?),
                })
            }

            pub(crate) async fn admin_token(&self, id: &str) -> Result<Option<AdminTokenRecord>> {
                let sql = concat!("SELECT ", token_columns!(), " FROM admin_tokens WHERE id = $1");
                let row = sqlx::query(sql).bind(id).fetch_optional(&self.read).await?;
                row.as_ref().map(Self::token_from_row).transpose()
            }

            pub(crate) async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenRecord>> {
                let sql = concat!(
                    "SELECT ", token_columns!(), " FROM admin_tokens ORDER BY created_at DESC, id"
                );
                let rows = sqlx::query(sql).fetch_all(&self.read).await?;
                rows.iter().map(Self::token_from_row).collect()
            }

            pub(crate) async fn revoke_admin_token(
                &self,
                id: &str,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<bool> {
                let mut tx = self.write.begin().await?;
                let done = sqlx::query(
                    "UPDATE admin_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(unix_millis(at))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(true)
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
                    "SELECT ", audit_columns!(), " FROM audit_events WHERE 1 = 1"
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
                qb.push(" ORDER BY seq LIMIT ").push_bind(i64::from(limit) + 1);
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
                    "SELECT ", audit_columns!(), " FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2"
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
                            Err(e) => return Ok(ChainReport::Broken { seq, reason: e.to_string() }),
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
                Ok(ChainReport::Intact { count: last_seq, head: last_hash })
            }

            pub(crate) async fn meta(&self, key: &str) -> Result<Option<String>> {
                let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.read)
                    .await?;
                Ok(row.map(|r| r.try_get("value")).transpose()?)
            }

            pub(crate) async fn meta_insert_if_absent(&self, key: &str, value: &str) -> Result<String> {
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await?;
                let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(row.try_get("value")?)
            }
        }
    };
}

backend!(
    /// The embedded backend: one SQLite file in WAL mode. All writes go
    /// through a single connection (SQLite has one writer anyway), which also
    /// serialises audit appends; reads use a pool of read-only connections.
    SqliteStore, Sqlite, SqliteRow,
    lock_head: "SELECT seq, hash FROM audit_head WHERE id = 1",
    collate: ""
);

backend!(
    /// The PostgreSQL backend. Audit appends lock the chain head row
    /// (`FOR UPDATE`) so concurrent writers, also on other replicas, keep
    /// one linear chain.
    PgStore, Postgres, PgRow,
    lock_head: "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
    collate: " COLLATE \"C\""
);

impl SqliteStore {
    pub(crate) async fn open(path: &Path) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.read_only(true))
            .await?;
        Ok(Self { write, read })
    }
}

impl PgStore {
    pub(crate) async fn open(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            write: pool.clone(),
            read: pool,
        })
    }
}
