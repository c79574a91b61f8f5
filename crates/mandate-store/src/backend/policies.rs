//! Versioned policy sets. A version is immutable once stored; activating one
//! (a push, or a rollback to an older one) moves the head in the same
//! transaction as its audit event.

use mandate_core::clock::{from_unix_millis, unix_millis};
use mandate_core::{AuditDraft, AuditEvent};
use sqlx::{Row, Transaction};
use time::OffsetDateTime;

use super::unique_violation;
use crate::{Error, PolicyVersionRecord, Result};

macro_rules! imp {
    ($store:ty, $db:ty, $row:ty, $lock_head:expr, $collate:expr) => {
        impl $store {
            async fn set_policy_head(
                tx: &mut Transaction<'static, $db>,
                version: i64,
                at: OffsetDateTime,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO policy_head (id, version, activated_at) VALUES (1, $1, $2) \
                     ON CONFLICT (id) DO UPDATE SET version = excluded.version, \
                     activated_at = excluded.activated_at",
                )
                .bind(version)
                .bind(unix_millis(at))
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            pub(crate) async fn push_policy_version(
                &self,
                new: &PolicyVersionRecord,
                draft: impl FnOnce(i64) -> AuditDraft + Send,
                at: OffsetDateTime,
            ) -> Result<(i64, AuditEvent)> {
                let mut tx = self.write.begin().await?;
                let next: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 AS v FROM policy_versions")
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("v")?;
                let inserted = sqlx::query(
                    "INSERT INTO policy_versions (version, sources, message, author, digest, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(next)
                .bind(&new.sources)
                .bind(&new.message)
                .bind(new.author.as_deref())
                .bind(&new.digest)
                .bind(unix_millis(at))
                .execute(&mut *tx)
                .await;
                match inserted {
                    Err(e) if unique_violation(&e) => {
                        return Err(Error::Conflict("policy version".into()));
                    }
                    other => {
                        other?;
                    }
                }
                Self::set_policy_head(&mut tx, next, at).await?;
                let ev = Self::append_in(&mut tx, draft(next), at).await?;
                tx.commit().await?;
                Ok((next, ev))
            }

            pub(crate) async fn activate_policy_version(
                &self,
                version: i64,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<bool> {
                let mut tx = self.write.begin().await?;
                let exists = sqlx::query("SELECT 1 AS one FROM policy_versions WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                if !exists {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::set_policy_head(&mut tx, version, at).await?;
                Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(true)
            }

            fn policy_from_row(row: &$row, with_sources: bool) -> Result<PolicyVersionRecord> {
                Ok(PolicyVersionRecord {
                    version: row.try_get("version")?,
                    sources: if with_sources { row.try_get("sources")? } else { String::new() },
                    message: row.try_get("message")?,
                    author: row.try_get("author")?,
                    digest: row.try_get("digest")?,
                    created_at: from_unix_millis(row.try_get("created_at")?),
                })
            }

            pub(crate) async fn policy_version(&self, version: i64) -> Result<Option<PolicyVersionRecord>> {
                let row = sqlx::query(
                    "SELECT version, sources, message, author, digest, created_at \
                     FROM policy_versions WHERE version = $1",
                )
                .bind(version)
                .fetch_optional(&self.read)
                .await?;
                row.as_ref().map(|r| Self::policy_from_row(r, true)).transpose()
            }

            pub(crate) async fn list_policy_versions(&self) -> Result<Vec<PolicyVersionRecord>> {
                let rows = sqlx::query(
                    "SELECT version, message, author, digest, created_at \
                     FROM policy_versions ORDER BY version DESC",
                )
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(|r| Self::policy_from_row(r, false)).collect()
            }

            pub(crate) async fn active_policy_version(&self) -> Result<Option<i64>> {
                let row = sqlx::query("SELECT version FROM policy_head WHERE id = 1")
                    .fetch_optional(&self.read)
                    .await?;
                Ok(row.map(|r| r.try_get("version")).transpose()?)
            }
        }
    };
}
both_backends!(imp);

impl crate::Store {
    /// Stores a new policy version (numbered one above the highest) and makes
    /// it active, with the audit event `draft(version)`, in one transaction.
    /// [`Error::Conflict`] when another writer took the same number.
    pub async fn push_policy_version(
        &self,
        new: &PolicyVersionRecord,
        draft: impl FnOnce(i64) -> AuditDraft + Send,
        at: OffsetDateTime,
    ) -> Result<(i64, AuditEvent)> {
        dispatch!(self, s => s.push_policy_version(new, draft, at).await)
    }

    /// Makes a stored version active again (rollback). `false` when no such
    /// version exists (nothing is written).
    pub async fn activate_policy_version(
        &self,
        version: i64,
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<bool> {
        dispatch!(self, s => s.activate_policy_version(version, draft, at).await)
    }

    /// One version with its sources.
    pub async fn policy_version(&self, version: i64) -> Result<Option<PolicyVersionRecord>> {
        dispatch!(self, s => s.policy_version(version).await)
    }

    /// Every version, newest first, without sources.
    pub async fn list_policy_versions(&self) -> Result<Vec<PolicyVersionRecord>> {
        dispatch!(self, s => s.list_policy_versions().await)
    }

    /// The active version, if any policy was ever pushed.
    pub async fn active_policy_version(&self) -> Result<Option<i64>> {
        dispatch!(self, s => s.active_policy_version().await)
    }
}
