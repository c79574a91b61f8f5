//! The token service's tables: signing keys, resources and issued tokens.
//! Every change is written with its audit event in one transaction.

use std::collections::BTreeMap;

use mandate_core::clock::{from_unix_millis, unix_millis};
use mandate_core::{AuditDraft, AuditEvent};
use sqlx::{Row, Transaction};
use time::OffsetDateTime;

use super::{corrupt, opt_time, unique_violation};
use crate::{Error, KeyStateChange, ResourceRecord, Result, SigningKeyRecord, TokenRecord};

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
                let inserted = sqlx::query(
                    "INSERT INTO resources (name, audience, scopes, max_ttl_s, kind, sensitivity, \
                     owner, labels, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
                })
            }

            pub(crate) async fn list_resources(&self) -> Result<Vec<ResourceRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT name, audience, scopes, max_ttl_s, kind, sensitivity, owner, labels, \
                     created_at FROM resources ORDER BY name",
                    $collate
                ))
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(Self::resource_from_row).collect()
            }

            pub(crate) async fn resource(&self, name: &str) -> Result<Option<ResourceRecord>> {
                let row = sqlx::query(
                    "SELECT name, audience, scopes, max_ttl_s, kind, sensitivity, owner, labels, \
                     created_at FROM resources WHERE name = $1",
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
                let mut tx = self.write.begin().await?;
                let done = sqlx::query("DELETE FROM resources WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(true)
            }

            pub(crate) async fn record_token(
                &self,
                t: &TokenRecord,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                let mut tx = self.write.begin().await?;
                let inserted = sqlx::query(
                    "INSERT INTO tokens (jti, parent_jti, agent, txn, audience, issued_at, \
                     expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&t.jti)
                .bind(t.parent_jti.as_deref())
                .bind(&t.agent)
                .bind(&t.txn)
                .bind(&t.audience)
                .bind(unix_millis(t.issued_at))
                .bind(unix_millis(t.expires_at))
                .bind(t.revoked_at.map(unix_millis))
                .execute(&mut *tx)
                .await;
                match inserted {
                    Err(e) if unique_violation(&e) => {
                        return Err(Error::Duplicate { kind: "token", id: t.jti.clone() });
                    }
                    other => {
                        other?;
                    }
                }
                let ev = Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(ev)
            }

            pub(crate) async fn token(&self, jti: &str) -> Result<Option<TokenRecord>> {
                let row = sqlx::query(
                    "SELECT jti, parent_jti, agent, txn, audience, issued_at, expires_at, \
                     revoked_at FROM tokens WHERE jti = $1",
                )
                .bind(jti)
                .fetch_optional(&self.read)
                .await?;
                row.map(|r| {
                    Ok(TokenRecord {
                        jti: r.try_get("jti")?,
                        parent_jti: r.try_get("parent_jti")?,
                        agent: r.try_get("agent")?,
                        txn: r.try_get("txn")?,
                        audience: r.try_get("audience")?,
                        issued_at: from_unix_millis(r.try_get("issued_at")?),
                        expires_at: from_unix_millis(r.try_get("expires_at")?),
                        revoked_at: opt_time(r.try_get("revoked_at")?),
                    })
                })
                .transpose()
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

    /// Records an issued token with its audit event.
    pub async fn record_token(
        &self,
        token: &TokenRecord,
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.record_token(token, draft, at).await)
    }

    /// One issued token by `jti`.
    pub async fn token(&self, jti: &str) -> Result<Option<TokenRecord>> {
        dispatch!(self, s => s.token(jti).await)
    }
}
