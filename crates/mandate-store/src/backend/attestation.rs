//! Trust providers, binding rules, shadow agents, join tokens and AWS
//! instance-id bindings. Each change is one transaction with its audit event.

use mandate_core::clock::{from_unix_millis, unix_millis};
use mandate_core::{AuditDraft, AuditEvent};
use sqlx::Row;
use time::OffsetDateTime;

use super::{opt_time, unique_violation};
use crate::attestation::{
    AttestationWrite, AttestationWritten, BindingRecord, JoinTokenRecord, ProviderRecord,
    ShadowRecord,
};
use crate::{Error, Result};

macro_rules! imp {
    ($store:ty, $db:ty, $row:ty, $lock_head:expr, $collate:expr) => {
        impl $store {
            pub(crate) async fn create_provider(
                &self,
                p: &ProviderRecord,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                let mut tx = self.write.begin().await?;
                let r = sqlx::query(
                    "INSERT INTO trust_providers (name, kind, spec, allow_private_network, \
                     created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&p.name)
                .bind(&p.kind)
                .bind(&p.spec)
                .bind(p.allow_private_network)
                .bind(unix_millis(p.created_at))
                .bind(p.created_by.as_deref())
                .execute(&mut *tx)
                .await;
                match r {
                    Err(e) if unique_violation(&e) => {
                        return Err(Error::Duplicate { kind: "provider", id: p.name.clone() });
                    }
                    other => {
                        other?;
                    }
                }
                let ev = Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(ev)
            }

            fn provider_from_row(row: &$row) -> Result<ProviderRecord> {
                Ok(ProviderRecord {
                    name: row.try_get("name")?,
                    kind: row.try_get("kind")?,
                    spec: row.try_get("spec")?,
                    allow_private_network: row.try_get("allow_private_network")?,
                    created_at: from_unix_millis(row.try_get("created_at")?),
                    created_by: row.try_get("created_by")?,
                })
            }

            pub(crate) async fn provider(&self, name: &str) -> Result<Option<ProviderRecord>> {
                let row = sqlx::query(
                    "SELECT name, kind, spec, allow_private_network, created_at, created_by \
                     FROM trust_providers WHERE name = $1",
                )
                .bind(name)
                .fetch_optional(&self.read)
                .await?;
                row.as_ref().map(Self::provider_from_row).transpose()
            }

            pub(crate) async fn list_providers(&self) -> Result<Vec<ProviderRecord>> {
                let sql = concat!(
                    "SELECT name, kind, spec, allow_private_network, created_at, created_by \
                     FROM trust_providers ORDER BY name",
                    $collate
                );
                let rows = sqlx::query(sql).fetch_all(&self.read).await?;
                rows.iter().map(Self::provider_from_row).collect()
            }

            pub(crate) async fn remove_provider(
                &self,
                name: &str,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<bool> {
                let mut tx = self.write.begin().await?;
                for sql in [
                    "DELETE FROM binding_rules WHERE provider = $1",
                    "DELETE FROM join_tokens WHERE provider = $1",
                    "DELETE FROM shadow_agents WHERE provider = $1",
                    "DELETE FROM instance_bindings WHERE provider = $1",
                ] {
                    sqlx::query(sql).bind(name).execute(&mut *tx).await?;
                }
                let done = sqlx::query("DELETE FROM trust_providers WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                Self::commit_if_changed(tx, done.rows_affected() == 1, draft, at).await
            }

            pub(crate) async fn create_binding(
                &self,
                b: &BindingRecord,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                let mut tx = self.write.begin().await?;
                let r = sqlx::query(
                    "INSERT INTO binding_rules (id, provider, agent, matches, created_at, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&b.id)
                .bind(&b.provider)
                .bind(&b.agent)
                .bind(&b.matches)
                .bind(unix_millis(b.created_at))
                .bind(b.created_by.as_deref())
                .execute(&mut *tx)
                .await;
                match r {
                    Err(e) if unique_violation(&e) => {
                        return Err(Error::Duplicate { kind: "binding", id: b.id.clone() });
                    }
                    other => {
                        other?;
                    }
                }
                let ev = Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(ev)
            }

            pub(crate) async fn list_bindings(&self, provider: Option<&str>) -> Result<Vec<BindingRecord>> {
                let rows = sqlx::query(
                    "SELECT id, provider, agent, matches, created_at, created_by FROM binding_rules \
                     WHERE ($1 IS NULL OR provider = $1) ORDER BY created_at, id",
                )
                .bind(provider)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(BindingRecord {
                            id: row.try_get("id")?,
                            provider: row.try_get("provider")?,
                            agent: row.try_get("agent")?,
                            matches: row.try_get("matches")?,
                            created_at: from_unix_millis(row.try_get("created_at")?),
                            created_by: row.try_get("created_by")?,
                        })
                    })
                    .collect()
            }

            pub(crate) async fn remove_binding(
                &self,
                id: &str,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<bool> {
                let mut tx = self.write.begin().await?;
                let done = sqlx::query("DELETE FROM binding_rules WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                Self::commit_if_changed(tx, done.rows_affected() == 1, draft, at).await
            }

            pub(crate) async fn record_shadow(
                &self,
                s: &ShadowRecord,
                draft: impl FnOnce(&ShadowRecord) -> AuditDraft + Send,
                at: OffsetDateTime,
            ) -> Result<(ShadowRecord, AuditEvent)> {
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "INSERT INTO shadow_agents (id, provider, subject, claims_digest, claims, \
                     first_seen, last_seen, seen_count) VALUES ($1, $2, $3, $4, $5, $6, $6, 1) \
                     ON CONFLICT (provider, subject) DO UPDATE SET \
                     claims_digest = excluded.claims_digest, claims = excluded.claims, \
                     last_seen = excluded.last_seen, seen_count = shadow_agents.seen_count + 1",
                )
                .bind(&s.id)
                .bind(&s.provider)
                .bind(&s.subject)
                .bind(&s.claims_digest)
                .bind(&s.claims)
                .bind(unix_millis(s.last_seen))
                .execute(&mut *tx)
                .await?;
                let row = sqlx::query(
                    "SELECT id, provider, subject, claims_digest, claims, first_seen, last_seen, \
                     seen_count FROM shadow_agents WHERE provider = $1 AND subject = $2",
                )
                .bind(&s.provider)
                .bind(&s.subject)
                .fetch_one(&mut *tx)
                .await?;
                let stored = Self::shadow_from_row(&row)?;
                let ev = Self::append_in(&mut tx, draft(&stored), at).await?;
                tx.commit().await?;
                Ok((stored, ev))
            }

            fn shadow_from_row(row: &$row) -> Result<ShadowRecord> {
                Ok(ShadowRecord {
                    id: row.try_get("id")?,
                    provider: row.try_get("provider")?,
                    subject: row.try_get("subject")?,
                    claims_digest: row.try_get("claims_digest")?,
                    claims: row.try_get("claims")?,
                    first_seen: from_unix_millis(row.try_get("first_seen")?),
                    last_seen: from_unix_millis(row.try_get("last_seen")?),
                    count: row.try_get("seen_count")?,
                })
            }

            pub(crate) async fn list_shadows(&self, provider: Option<&str>) -> Result<Vec<ShadowRecord>> {
                let rows = sqlx::query(
                    "SELECT id, provider, subject, claims_digest, claims, first_seen, last_seen, \
                     seen_count FROM shadow_agents WHERE ($1 IS NULL OR provider = $1) \
                     ORDER BY last_seen DESC, id",
                )
                .bind(provider)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(Self::shadow_from_row).collect()
            }

            pub(crate) async fn create_join_token(
                &self,
                t: &JoinTokenRecord,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "INSERT INTO join_tokens (id, provider, agent, secret_hash, created_at, \
                     created_by, expires_at, consumed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
                )
                .bind(&t.id)
                .bind(&t.provider)
                .bind(&t.agent)
                .bind(&t.secret_hash)
                .bind(unix_millis(t.created_at))
                .bind(t.created_by.as_deref())
                .bind(unix_millis(t.expires_at))
                .execute(&mut *tx)
                .await?;
                let ev = Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(ev)
            }

            pub(crate) async fn join_token(&self, id: &str) -> Result<Option<JoinTokenRecord>> {
                let row = sqlx::query(
                    "SELECT id, provider, agent, secret_hash, created_at, created_by, expires_at, \
                     consumed_at FROM join_tokens WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
                row.map(|row| {
                    Ok(JoinTokenRecord {
                        id: row.try_get("id")?,
                        provider: row.try_get("provider")?,
                        agent: row.try_get("agent")?,
                        secret_hash: row.try_get("secret_hash")?,
                        created_at: from_unix_millis(row.try_get("created_at")?),
                        created_by: row.try_get("created_by")?,
                        expires_at: from_unix_millis(row.try_get("expires_at")?),
                        consumed_at: opt_time(row.try_get("consumed_at")?),
                    })
                })
                .transpose()
            }

            pub(crate) async fn instance_binding(
                &self,
                provider: &str,
                instance_id: &str,
            ) -> Result<Option<String>> {
                let row = sqlx::query(
                    "SELECT agent FROM instance_bindings WHERE provider = $1 AND instance_id = $2",
                )
                .bind(provider)
                .bind(instance_id)
                .fetch_optional(&self.read)
                .await?;
                Ok(row.map(|r| r.try_get("agent")).transpose()?)
            }

            pub(crate) async fn write_attestation(
                &self,
                w: &AttestationWrite,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AttestationWritten> {
                let mut tx = self.write.begin().await?;
                if let Some((provider, instance)) = &w.bind_instance {
                    sqlx::query(
                        "INSERT INTO instance_bindings (provider, instance_id, agent, bound_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (provider, instance_id) DO NOTHING",
                    )
                    .bind(provider)
                    .bind(instance)
                    .bind(&w.agent)
                    .bind(unix_millis(at))
                    .execute(&mut *tx)
                    .await?;
                    let bound: String = sqlx::query(
                        "SELECT agent FROM instance_bindings WHERE provider = $1 AND instance_id = $2",
                    )
                    .bind(provider)
                    .bind(instance)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("agent")?;
                    if bound != w.agent {
                        tx.rollback().await?;
                        return Ok(AttestationWritten::InstanceBoundElsewhere(bound));
                    }
                }
                if let Some(id) = &w.consume_join_token {
                    let done = sqlx::query(
                        "UPDATE join_tokens SET consumed_at = $1 WHERE id = $2 \
                         AND consumed_at IS NULL AND expires_at > $1",
                    )
                    .bind(unix_millis(at))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        tx.rollback().await?;
                        return Ok(AttestationWritten::JoinTokenSpent);
                    }
                }
                if w.touch_last_seen {
                    sqlx::query("UPDATE agents SET last_seen_at = $1 WHERE name = $2")
                        .bind(unix_millis(at))
                        .bind(&w.agent)
                        .execute(&mut *tx)
                        .await?;
                }
                let ev = Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(AttestationWritten::Done(ev))
            }
        }
    };
}
both_backends!(imp);

impl crate::Store {
    /// Stores a new trust provider with its audit event;
    /// [`Error::Duplicate`] when the name is taken.
    pub async fn create_provider(
        &self,
        provider: &ProviderRecord,
        event: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.create_provider(provider, event, at).await)
    }

    /// One provider by name.
    pub async fn provider(&self, name: &str) -> Result<Option<ProviderRecord>> {
        dispatch!(self, s => s.provider(name).await)
    }

    /// Every provider, by name.
    pub async fn list_providers(&self) -> Result<Vec<ProviderRecord>> {
        dispatch!(self, s => s.list_providers().await)
    }

    /// Removes a provider with its binding rules, join tokens, shadows and
    /// instance bindings. `false` (nothing written) when it does not exist.
    pub async fn remove_provider(
        &self,
        name: &str,
        event: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<bool> {
        dispatch!(self, s => s.remove_provider(name, event, at).await)
    }

    /// Stores a binding rule with its audit event.
    pub async fn create_binding(
        &self,
        binding: &BindingRecord,
        event: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.create_binding(binding, event, at).await)
    }

    /// Binding rules, of one provider or all, oldest first.
    pub async fn list_bindings(&self, provider: Option<&str>) -> Result<Vec<BindingRecord>> {
        dispatch!(self, s => s.list_bindings(provider).await)
    }

    /// Removes a binding rule; `false` when it does not exist.
    pub async fn remove_binding(
        &self,
        id: &str,
        event: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<bool> {
        dispatch!(self, s => s.remove_binding(id, event, at).await)
    }

    /// Records a sighting of a shadow agent (insert, or bump count and last
    /// seen) with the audit event `draft(stored)`, in one transaction.
    pub async fn record_shadow(
        &self,
        shadow: &ShadowRecord,
        draft: impl FnOnce(&ShadowRecord) -> AuditDraft + Send,
        at: OffsetDateTime,
    ) -> Result<(ShadowRecord, AuditEvent)> {
        dispatch!(self, s => s.record_shadow(shadow, draft, at).await)
    }

    /// Shadow agents, of one provider or all, most recently seen first.
    pub async fn list_shadows(&self, provider: Option<&str>) -> Result<Vec<ShadowRecord>> {
        dispatch!(self, s => s.list_shadows(provider).await)
    }

    /// Stores a join token (its hash only) with its audit event.
    pub async fn create_join_token(
        &self,
        token: &JoinTokenRecord,
        event: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.create_join_token(token, event, at).await)
    }

    /// One join token by id.
    pub async fn join_token(&self, id: &str) -> Result<Option<JoinTokenRecord>> {
        dispatch!(self, s => s.join_token(id).await)
    }

    /// The agent an AWS instance id is bound to at a provider, if any.
    pub async fn instance_binding(
        &self,
        provider: &str,
        instance_id: &str,
    ) -> Result<Option<String>> {
        dispatch!(self, s => s.instance_binding(provider, instance_id).await)
    }

    /// Writes a successful attestation's effects with its audit event, in
    /// one transaction; writes nothing when the instance id is bound to
    /// another agent or the join token is spent.
    pub async fn write_attestation(
        &self,
        write: &AttestationWrite,
        event: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AttestationWritten> {
        dispatch!(self, s => s.write_attestation(write, event, at).await)
    }
}
