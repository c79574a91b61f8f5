//! The token service's tables: signing keys, resources and issued tokens.
//! Every change is written with its audit event in one transaction.

use std::collections::BTreeMap;

use mandate_core::clock::{from_unix_millis, unix_millis};
use mandate_core::{AuditDraft, AuditEvent};
use sqlx::{QueryBuilder, Row, Transaction};
use time::OffsetDateTime;

use super::{corrupt, opt_time, unique_violation};
use crate::types::clamp_limit;
use crate::{
    Error, GrantWrite, KeyStateChange, ResourceRecord, Result, SigningKeyRecord, TokenFilter,
    TokenRecord,
};

macro_rules! token_columns {
    () => {
        "jti, parent_jti, agent, txn, audience, issued_at, expires_at, revoked_at, scope, chain"
    };
}

fn split_scopes(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

macro_rules! imp {
    ($store:ty, $db:ty, $row:ty, $lock_head:expr, $collate:expr) => {
        impl $store {
            async fn insert_signing_key(
                tx: &mut Transaction<'static, $db>,
                k: &SigningKeyRecord,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, sealed_pkcs8, state, created_at, \
                     activate_after, retire_after) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&k.kid)
                .bind(&k.alg)
                .bind(&k.sealed_pkcs8)
                .bind(&k.state)
                .bind(unix_millis(k.created_at))
                .bind(unix_millis(k.activate_after))
                .bind(k.retire_after.map(unix_millis))
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            pub(crate) async fn create_first_signing_key(
                &self,
                k: &SigningKeyRecord,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<bool> {
                let mut tx = self.write.begin().await?;
                // Take the audit head lock first, so two replicas starting
                // at once cannot both create a first key.
                sqlx::query($lock_head).fetch_one(&mut *tx).await?;
                let any = sqlx::query("SELECT kid FROM signing_keys LIMIT 1")
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                if any {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::insert_signing_key(&mut tx, k).await?;
                Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(true)
            }

            pub(crate) async fn rotate_signing_keys(
                &self,
                new: &SigningKeyRecord,
                changes: &[KeyStateChange],
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                let mut tx = self.write.begin().await?;
                sqlx::query($lock_head).fetch_one(&mut *tx).await?;
                for c in changes {
                    sqlx::query(
                        "UPDATE signing_keys SET state = $1, retire_after = $2 WHERE kid = $3",
                    )
                    .bind(&c.state)
                    .bind(c.retire_after.map(unix_millis))
                    .bind(&c.kid)
                    .execute(&mut *tx)
                    .await?;
                }
                Self::insert_signing_key(&mut tx, new).await?;
                let ev = Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(ev)
            }

            pub(crate) async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
                let rows = sqlx::query(
                    "SELECT kid, alg, sealed_pkcs8, state, created_at, activate_after, \
                     retire_after FROM signing_keys ORDER BY activate_after, created_at, kid",
                )
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(SigningKeyRecord {
                            kid: r.try_get("kid")?,
                            alg: r.try_get("alg")?,
                            sealed_pkcs8: r.try_get("sealed_pkcs8")?,
                            state: r.try_get("state")?,
                            created_at: from_unix_millis(r.try_get("created_at")?),
                            activate_after: from_unix_millis(r.try_get("activate_after")?),
                            retire_after: opt_time(r.try_get("retire_after")?),
                        })
                    })
                    .collect()
            }

            pub(crate) async fn insert_resource(
                &self,
                res: &ResourceRecord,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                let mut tx = self.write.begin().await?;
                let clash = sqlx::query("SELECT name FROM resources WHERE name = $1 OR audience = $2")
                    .bind(&res.name)
                    .bind(&res.audience)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = clash {
                    let name: String = row.try_get("name")?;
                    tx.rollback().await?;
                    return Err(if name == res.name {
                        Error::Duplicate { kind: "resource", id: name }
                    } else {
                        Error::Duplicate { kind: "resource audience", id: res.audience.clone() }
                    });
                }
                let labels = serde_json::to_string(&res.labels)
                    .map_err(|e| corrupt("resource labels", e))?;
                let route = res
                    .route
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| corrupt("resource route", e))?;
                let inserted = sqlx::query(
                    "INSERT INTO resources (name, audience, scopes, max_ttl_s, kind, sensitivity, \
                     owner, labels, created_at, route) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&res.name)
                .bind(&res.audience)
                .bind(res.scopes.join(" "))
                .bind(res.max_ttl_secs)
                .bind(&res.kind)
                .bind(&res.sensitivity)
                .bind(res.owner.as_deref())
                .bind(labels)
                .bind(unix_millis(res.created_at))
                .bind(route)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Err(e) if unique_violation(&e) => {
                        return Err(Error::Duplicate { kind: "resource", id: res.name.clone() });
                    }
                    other => {
                        other?;
                    }
                }
                let ev = Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(ev)
            }

            fn resource_from_row(r: &$row) -> Result<ResourceRecord> {
                let labels: String = r.try_get("labels")?;
                let labels: BTreeMap<String, String> =
                    serde_json::from_str(&labels).map_err(|e| corrupt("resource labels", e))?;
                let scopes: String = r.try_get("scopes")?;
                let route: Option<String> = r.try_get("route")?;
                let route = route
                    .map(|s| serde_json::from_str(&s))
                    .transpose()
                    .map_err(|e| corrupt("resource route", e))?;
                Ok(ResourceRecord {
                    name: r.try_get("name")?,
                    audience: r.try_get("audience")?,
                    scopes: split_scopes(&scopes),
                    max_ttl_secs: r.try_get("max_ttl_s")?,
                    kind: r.try_get("kind")?,
                    sensitivity: r.try_get("sensitivity")?,
                    owner: r.try_get("owner")?,
                    labels,
                    created_at: from_unix_millis(r.try_get("created_at")?),
                    route,
                })
            }

            pub(crate) async fn list_resources(&self) -> Result<Vec<ResourceRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT name, audience, scopes, max_ttl_s, kind, sensitivity, owner, labels, \
                     created_at, route FROM resources ORDER BY name",
                    $collate
                ))
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(Self::resource_from_row).collect()
            }

            pub(crate) async fn resource(&self, name: &str) -> Result<Option<ResourceRecord>> {
                let row = sqlx::query(
                    "SELECT name, audience, scopes, max_ttl_s, kind, sensitivity, owner, labels, \
                     created_at, route FROM resources WHERE name = $1",
                )
                .bind(name)
                .fetch_optional(&self.read)
                .await?;
                row.as_ref().map(Self::resource_from_row).transpose()
            }

            pub(crate) async fn delete_resource(
                &self,
                name: &str,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<bool> {
                self.delete_audited("DELETE FROM resources WHERE name = $1", name, draft, at)
                    .await
            }

            /// Writes the grants' changes inside a batch transaction: the
            /// tokens many rows per statement, then the agents seen.
            pub(crate) async fn apply_grant_writes(
                tx: &mut Transaction<'static, $db>,
                writes: &[(GrantWrite, OffsetDateTime)],
            ) -> Result<()> {
                let tokens: Vec<&TokenRecord> =
                    writes.iter().filter_map(|(w, _)| w.token.as_ref()).collect();
                for chunk in tokens.chunks(super::audit::ROWS_PER_INSERT) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO tokens (jti, parent_jti, agent, txn, audience, issued_at, \
                         expires_at, revoked_at, scope, chain) ",
                    );
                    qb.push_values(chunk, |mut b, t| {
                        b.push_bind(t.jti.clone())
                            .push_bind(t.parent_jti.clone())
                            .push_bind(t.agent.clone())
                            .push_bind(t.txn.clone())
                            .push_bind(t.audience.clone())
                            .push_bind(unix_millis(t.issued_at))
                            .push_bind(unix_millis(t.expires_at))
                            .push_bind(t.revoked_at.map(unix_millis))
                            .push_bind(t.scope.clone())
                            .push_bind(t.chain.join(" "));
                    });
                    qb.build().execute(&mut **tx).await?;
                }
                // One update per agent, to the latest time of the batch.
                let mut seen: std::collections::BTreeMap<&str, OffsetDateTime> =
                    std::collections::BTreeMap::new();
                for (w, at) in writes {
                    if let Some(agent) = &w.touch_agent {
                        let t = seen.entry(agent.as_str()).or_insert(*at);
                        *t = (*t).max(*at);
                    }
                }
                for (agent, at) in seen {
                    sqlx::query("UPDATE agents SET last_seen_at = $1 WHERE name = $2")
                        .bind(unix_millis(at))
                        .bind(agent)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(())
            }

            /// Writes an event with the change that goes with it (none for a
            /// standalone event): through the group commit when there is
            /// one, else in a transaction of its own.
            pub(crate) async fn record_grant(
                &self,
                write: GrantWrite,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                match &self.batch {
                    Some(batch) => batch.append(draft, at, write).await,
                    None => {
                        let mut out = self.append_batch(vec![(draft, at, write)]).await?;
                        out.pop()
                            .ok_or_else(|| Error::AuditWrite("empty batch".into()))?
                    }
                }
            }

            fn issued_token_from_row(r: &$row) -> Result<TokenRecord> {
                let chain: String = r.try_get("chain")?;
                Ok(TokenRecord {
                    jti: r.try_get("jti")?,
                    parent_jti: r.try_get("parent_jti")?,
                    agent: r.try_get("agent")?,
                    txn: r.try_get("txn")?,
                    audience: r.try_get("audience")?,
                    issued_at: from_unix_millis(r.try_get("issued_at")?),
                    expires_at: from_unix_millis(r.try_get("expires_at")?),
                    revoked_at: opt_time(r.try_get("revoked_at")?),
                    scope: r.try_get("scope")?,
                    chain: split_scopes(&chain),
                })
            }

            pub(crate) async fn token(&self, jti: &str) -> Result<Option<TokenRecord>> {
                let row = sqlx::query(concat!(
                    "SELECT ", token_columns!(), " FROM tokens WHERE jti = $1"
                ))
                .bind(jti)
                .fetch_optional(&self.read)
                .await?;
                row.as_ref().map(Self::issued_token_from_row).transpose()
            }

            pub(crate) async fn list_tokens(&self, f: &TokenFilter) -> Result<Vec<TokenRecord>> {
                let mut qb = QueryBuilder::<$db>::new(concat!(
                    "SELECT ", token_columns!(), " FROM tokens WHERE 1 = 1"
                ));
                if let Some(a) = &f.agent {
                    qb.push(" AND agent = ").push_bind(a.clone());
                }
                if let Some(t) = f.live_at {
                    qb.push(" AND revoked_at IS NULL AND expires_at > ")
                        .push_bind(unix_millis(t));
                }
                qb.push(" ORDER BY issued_at DESC, jti LIMIT ")
                    .push_bind(i64::from(clamp_limit(f.limit)));
                let rows = qb.build().fetch_all(&self.read).await?;
                rows.iter().map(Self::issued_token_from_row).collect()
            }

            /// The latest revocation time of any token (Unix milliseconds),
            /// read through an index: it moves when any replica revokes.
            pub(crate) async fn revocation_mark(&self) -> Result<Option<i64>> {
                let row = sqlx::query("SELECT MAX(revoked_at) AS mark FROM tokens")
                    .fetch_one(&self.read)
                    .await?;
                Ok(row.try_get("mark")?)
            }

            /// Revokes the token `jti` and every token derived from it that is
            /// not revoked yet, with the event (whose detail gets `revoked`,
            /// the count). `None` when no token has that `jti` (nothing is
            /// written).
            pub(crate) async fn revoke_token_family(
                &self,
                jti: &str,
                mut draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<Option<u64>> {
                let mut tx = self.write.begin().await?;
                let known = sqlx::query("SELECT jti FROM tokens WHERE jti = $1")
                    .bind(jti)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                if !known {
                    tx.rollback().await?;
                    return Ok(None);
                }
                let n = sqlx::query(
                    "WITH RECURSIVE fam(jti) AS (SELECT jti FROM tokens WHERE jti = $1 \
                     UNION SELECT t.jti FROM tokens t JOIN fam f ON t.parent_jti = f.jti) \
                     UPDATE tokens SET revoked_at = $2 \
                     WHERE revoked_at IS NULL AND jti IN (SELECT jti FROM fam)",
                )
                .bind(jti)
                .bind(unix_millis(at))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if let Some(map) = draft.detail.as_object_mut() {
                    map.insert("revoked".into(), n.into());
                }
                Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(Some(n))
            }

            /// Inside `tx`: revokes every live token `agent` holds and every
            /// token derived from one. Returns how many.
            pub(crate) async fn revoke_agent_tokens_in(
                tx: &mut Transaction<'static, $db>,
                agent: &str,
                at: OffsetDateTime,
            ) -> Result<u64> {
                Ok(sqlx::query(
                    "WITH RECURSIVE fam(jti) AS (SELECT jti FROM tokens WHERE agent = $1 \
                     AND expires_at > $2 \
                     UNION SELECT t.jti FROM tokens t JOIN fam f ON t.parent_jti = f.jti) \
                     UPDATE tokens SET revoked_at = $3 \
                     WHERE revoked_at IS NULL AND expires_at > $4 \
                     AND jti IN (SELECT jti FROM fam)",
                )
                .bind(agent)
                .bind(unix_millis(at))
                .bind(unix_millis(at))
                .bind(unix_millis(at))
                .execute(&mut **tx)
                .await?
                .rows_affected())
            }

            /// Records `jti` of `kind` as used until `expires_at`. `false`
            /// when it was already recorded (a replay).
            pub(crate) async fn consume_jti(
                &self,
                kind: &str,
                jti: &str,
                expires_at: OffsetDateTime,
            ) -> Result<bool> {
                let n = sqlx::query(
                    "INSERT INTO seen_jti (kind, jti, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (kind, jti) DO NOTHING",
                )
                .bind(kind)
                .bind(jti)
                .bind(unix_millis(expires_at))
                .execute(&self.write)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            pub(crate) async fn purge_seen_jti(&self, now: OffsetDateTime) -> Result<u64> {
                Ok(sqlx::query("DELETE FROM seen_jti WHERE expires_at < $1")
                    .bind(unix_millis(now))
                    .execute(&self.write)
                    .await?
                    .rows_affected())
            }

            pub(crate) async fn set_agent_jwks(
                &self,
                agent: &str,
                jwks: &str,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "INSERT INTO agent_keys (agent, jwks, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (agent) DO UPDATE SET jwks = $4, updated_at = $5",
                )
                .bind(agent)
                .bind(jwks)
                .bind(unix_millis(at))
                .bind(jwks)
                .bind(unix_millis(at))
                .execute(&mut *tx)
                .await?;
                let ev = Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(ev)
            }

            pub(crate) async fn agent_jwks(&self, agent: &str) -> Result<Option<String>> {
                let row = sqlx::query("SELECT jwks FROM agent_keys WHERE agent = $1")
                    .bind(agent)
                    .fetch_optional(&self.read)
                    .await?;
                row.map(|r| Ok(r.try_get("jwks")?)).transpose()
            }
        }
    };
}
both_backends!(imp);

impl crate::Store {
    /// Stores the first signing key with its audit event, only if no key
    /// exists yet. `false` when one did (nothing is written).
    pub async fn create_first_signing_key(
        &self,
        key: &SigningKeyRecord,
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<bool> {
        dispatch!(self, s => s.create_first_signing_key(key, draft, at).await)
    }

    /// Applies `changes` to existing keys and stores `new`, with the audit
    /// event, in one transaction.
    pub async fn rotate_signing_keys(
        &self,
        new: &SigningKeyRecord,
        changes: &[KeyStateChange],
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.rotate_signing_keys(new, changes, draft, at).await)
    }

    /// Every stored signing key, oldest activation first.
    pub async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        dispatch!(self, s => s.list_signing_keys().await)
    }

    /// Adds a resource. [`Error::Duplicate`] with kind `resource` when the
    /// name is taken, `resource audience` when the audience is.
    pub async fn insert_resource(
        &self,
        resource: &ResourceRecord,
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.insert_resource(resource, draft, at).await)
    }

    /// Every resource, by name.
    pub async fn list_resources(&self) -> Result<Vec<ResourceRecord>> {
        dispatch!(self, s => s.list_resources().await)
    }

    /// One resource by name.
    pub async fn resource(&self, name: &str) -> Result<Option<ResourceRecord>> {
        dispatch!(self, s => s.resource(name).await)
    }

    /// Removes a resource. `false` when there was none (nothing is written).
    pub async fn delete_resource(
        &self,
        name: &str,
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<bool> {
        dispatch!(self, s => s.delete_resource(name, draft, at).await)
    }

    /// Writes a grant (its token, the agent seen) with its audit event,
    /// through the group commit: answered once the batch is durable.
    pub async fn record_grant(
        &self,
        write: GrantWrite,
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.record_grant(write, draft, at).await)
    }

    /// One issued token by `jti`.
    pub async fn token(&self, jti: &str) -> Result<Option<TokenRecord>> {
        dispatch!(self, s => s.token(jti).await)
    }

    /// Issued tokens, newest first.
    pub async fn list_tokens(&self, filter: &TokenFilter) -> Result<Vec<TokenRecord>> {
        dispatch!(self, s => s.list_tokens(filter).await)
    }

    /// The latest time any token was revoked (Unix milliseconds), `None`
    /// before the first revocation.
    pub async fn revocation_mark(&self) -> Result<Option<i64>> {
        dispatch!(self, s => s.revocation_mark().await)
    }

    /// Revokes a token and its descendants with the event; `None` when the
    /// `jti` is unknown.
    pub async fn revoke_token_family(
        &self,
        jti: &str,
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<Option<u64>> {
        dispatch!(self, s => s.revoke_token_family(jti, draft, at).await)
    }

    /// Records a one-time `jti`; `false` on a replay. Shared by every replica.
    pub async fn consume_jti(
        &self,
        kind: &str,
        jti: &str,
        expires_at: OffsetDateTime,
    ) -> Result<bool> {
        dispatch!(self, s => s.consume_jti(kind, jti, expires_at).await)
    }

    /// Forgets one-time `jti`s that expired before `now`.
    pub async fn purge_seen_jti(&self, now: OffsetDateTime) -> Result<u64> {
        dispatch!(self, s => s.purge_seen_jti(now).await)
    }

    /// Sets the public keys an agent signs client assertions with.
    pub async fn set_agent_jwks(
        &self,
        agent: &str,
        jwks: &str,
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.set_agent_jwks(agent, jwks, draft, at).await)
    }

    /// The agent's registered public keys (a JWKS document).
    pub async fn agent_jwks(&self, agent: &str) -> Result<Option<String>> {
        dispatch!(self, s => s.agent_jwks(agent).await)
    }
}
