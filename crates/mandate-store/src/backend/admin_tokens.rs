//! Admin tokens (hashes only) and the one-time bootstrap.

use mandate_core::clock::{from_unix_millis, unix_millis};
use mandate_core::{AuditDraft, AuditEvent};
use sqlx::{Row, Transaction};
use time::OffsetDateTime;

use super::opt_time;
use crate::{AdminTokenRecord, Result};

const BOOTSTRAP_KEY: &str = "bootstrap_admin_token";

macro_rules! token_columns {
    () => {
        "id, name, secret_hash, created_at, created_by, expires_at, revoked_at"
    };
}

macro_rules! imp {
    ($store:ty, $db:ty, $row:ty, $lock_head:expr, $collate:expr) => {
        impl $store {
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
                let sql = concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM admin_tokens WHERE id = $1"
                );
                let row = sqlx::query(sql).bind(id).fetch_optional(&self.read).await?;
                row.as_ref().map(Self::token_from_row).transpose()
            }

            pub(crate) async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenRecord>> {
                let sql = concat!(
                    "SELECT ",
                    token_columns!(),
                    " FROM admin_tokens ORDER BY created_at DESC, id"
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
                Self::commit_if_changed(tx, done.rows_affected() == 1, draft, at).await
            }
        }
    };
}
both_backends!(imp);

impl crate::Store {
    /// Stores a new admin token (its hash only) with its audit event.
    pub async fn create_admin_token(
        &self,
        token: &AdminTokenRecord,
        event: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.create_admin_token(token, event, at).await)
    }

    /// Stores the bootstrap admin token, once per database: returns `false`
    /// (and stores nothing) when a bootstrap token was ever created before.
    pub async fn bootstrap_admin_token(
        &self,
        token: &AdminTokenRecord,
        event: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<bool> {
        dispatch!(self, s => s.bootstrap_admin_token(token, event, at).await)
    }

    /// One admin token by id.
    pub async fn admin_token(&self, id: &str) -> Result<Option<AdminTokenRecord>> {
        dispatch!(self, s => s.admin_token(id).await)
    }

    /// Every admin token, newest first.
    pub async fn list_admin_tokens(&self) -> Result<Vec<AdminTokenRecord>> {
        dispatch!(self, s => s.list_admin_tokens().await)
    }

    /// Marks a token revoked at `at`, with its audit event. Returns `false`
    /// (and writes nothing) when no unrevoked token has that id.
    pub async fn revoke_admin_token(
        &self,
        id: &str,
        event: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<bool> {
        dispatch!(self, s => s.revoke_admin_token(id, event, at).await)
    }
}
