//! Stored upstream credentials. Every change is written with its audit event
//! in one transaction.

use mandate_core::clock::{from_unix_millis, unix_millis};
use mandate_core::{AuditDraft, AuditEvent};
use sqlx::Row;
use time::OffsetDateTime;

use crate::{CredentialRecord, Result};

macro_rules! credential_columns {
    () => {
        "name, kind, config, sealed, created_at, updated_at"
    };
}

macro_rules! imp {
    ($store:ty, $db:ty, $row:ty, $lock_head:expr, $collate:expr) => {
        impl $store {
            pub(crate) async fn put_credential(
                &self,
                c: &CredentialRecord,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<AuditEvent> {
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "INSERT INTO credentials (name, kind, config, sealed, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET \
                     kind = excluded.kind, config = excluded.config, sealed = excluded.sealed, \
                     updated_at = excluded.updated_at",
                )
                .bind(&c.name)
                .bind(&c.kind)
                .bind(&c.config)
                .bind(c.sealed.as_deref())
                .bind(unix_millis(c.created_at))
                .bind(unix_millis(c.updated_at))
                .execute(&mut *tx)
                .await?;
                let ev = Self::append_in(&mut tx, draft, at).await?;
                tx.commit().await?;
                Ok(ev)
            }

            fn credential_from_row(r: &$row) -> Result<CredentialRecord> {
                Ok(CredentialRecord {
                    name: r.try_get("name")?,
                    kind: r.try_get("kind")?,
                    config: r.try_get("config")?,
                    sealed: r.try_get("sealed")?,
                    created_at: from_unix_millis(r.try_get("created_at")?),
                    updated_at: from_unix_millis(r.try_get("updated_at")?),
                })
            }

            pub(crate) async fn credential(&self, name: &str) -> Result<Option<CredentialRecord>> {
                let row = sqlx::query(concat!(
                    "SELECT ", credential_columns!(), " FROM credentials WHERE name = $1"
                ))
                .bind(name)
                .fetch_optional(&self.read)
                .await?;
                row.as_ref().map(Self::credential_from_row).transpose()
            }

            pub(crate) async fn list_credentials(&self) -> Result<Vec<CredentialRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", credential_columns!(), " FROM credentials ORDER BY name", $collate
                ))
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(Self::credential_from_row).collect()
            }

            pub(crate) async fn delete_credential(
                &self,
                name: &str,
                draft: AuditDraft,
                at: OffsetDateTime,
            ) -> Result<bool> {
                self.delete_audited("DELETE FROM credentials WHERE name = $1", name, draft, at)
                    .await
            }
        }
    };
}
both_backends!(imp);

impl crate::Store {
    /// Stores a credential, replacing one of the same name (its
    /// `created_at` is kept), with the audit event.
    pub async fn put_credential(
        &self,
        credential: &CredentialRecord,
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.put_credential(credential, draft, at).await)
    }

    /// One credential by name.
    pub async fn credential(&self, name: &str) -> Result<Option<CredentialRecord>> {
        dispatch!(self, s => s.credential(name).await)
    }

    /// Every credential, by name.
    pub async fn list_credentials(&self) -> Result<Vec<CredentialRecord>> {
        dispatch!(self, s => s.list_credentials().await)
    }

    /// Removes a credential. `false` when there was none (nothing is
    /// written).
    pub async fn delete_credential(
        &self,
        name: &str,
        draft: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<bool> {
        dispatch!(self, s => s.delete_credential(name, draft, at).await)
    }
}
