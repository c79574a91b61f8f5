//! Server metadata: small key/value facts such as the master key id.

use sqlx::Row;

use crate::Result;

macro_rules! imp {
    ($store:ty, $db:ty, $row:ty, $lock_head:expr, $collate:expr) => {
        impl $store {
            pub(crate) async fn meta(&self, key: &str) -> Result<Option<String>> {
                let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.read)
                    .await?;
                Ok(row.map(|r| r.try_get("value")).transpose()?)
            }

            pub(crate) async fn meta_insert_if_absent(
                &self,
                key: &str,
                value: &str,
            ) -> Result<String> {
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
both_backends!(imp);

impl crate::Store {
    /// A metadata value.
    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        dispatch!(self, s => s.meta(key).await)
    }

    /// Sets a metadata value unless the key exists; returns the value now
    /// stored (the existing one when there was one).
    pub async fn meta_insert_if_absent(&self, key: &str, value: &str) -> Result<String> {
        dispatch!(self, s => s.meta_insert_if_absent(key, value).await)
    }
}
