//! The two backends. Every aggregate module (`agents`, `admin_tokens`,
//! `audit`, `meta`) writes its queries once, in a local macro that
//! [`both_backends!`] instantiates for SQLite and for PostgreSQL, so the two
//! cannot drift apart. What differs between them (pool set-up, how the audit
//! chain head is locked, collation for ordering names) is stated here.

/// Instantiates `$m!` for both backends with their differences:
/// `$store, $db, $row, lock_head, collate`.
macro_rules! both_backends {
    ($m:ident) => {
        $m!(
            $crate::backend::SqliteStore,
            sqlx::Sqlite,
            sqlx::sqlite::SqliteRow,
            "SELECT seq, hash FROM audit_head WHERE id = 1",
            ""
        );
        $m!(
            $crate::backend::PgStore,
            sqlx::Postgres,
            sqlx::postgres::PgRow,
            "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
            " COLLATE \"C\""
        );
    };
}

use std::path::Path;
use std::time::Duration;

use mandate_core::clock::from_unix_millis;
use mandate_jose::digest::{hex, sha256};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Postgres, Sqlite};
use time::OffsetDateTime;

use crate::{Error, Result};

mod admin_tokens;
mod agents;
mod attestation;
mod audit;
mod credentials;
mod governance;
mod meta;
mod policies;
mod tokens;

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("{what}: {e}"))
}

pub(crate) fn parse<T: std::str::FromStr>(what: &str, s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>().map_err(|e| corrupt(what, e))
}

pub(crate) fn opt_time(ms: Option<i64>) -> Option<OffsetDateTime> {
    ms.map(from_unix_millis)
}

/// Hash of an event given its predecessor's hash (as its 64 hex characters).
pub(crate) fn chain_hash(prev_hash: &str, canonical: &[u8]) -> String {
    hex(&sha256(&[prev_hash.as_bytes(), canonical]))
}

pub(crate) fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// The embedded backend: one SQLite file in WAL mode. All writes go through a
/// single connection (SQLite has one writer anyway), which also serialises
/// audit appends; reads use a pool of read-only connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) write: Pool<Sqlite>,
    pub(crate) read: Pool<Sqlite>,
    pub(crate) batch: Option<crate::batch::Batcher>,
}

/// The PostgreSQL backend. Audit appends lock the chain head row
/// (`FOR UPDATE`) so concurrent writers, also on other replicas, keep one
/// linear chain.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(crate) write: Pool<Postgres>,
    pub(crate) read: Pool<Postgres>,
    pub(crate) batch: Option<crate::batch::Batcher>,
}

macro_rules! imp {
    ($store:ty, $db:ty, $row:ty, $lock_head:expr, $collate:expr) => {
        impl $store {
            pub(crate) async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.read).await?;
                Ok(())
            }

            pub(crate) async fn close(&self) {
                self.write.close().await;
                self.read.close().await;
            }

            /// Runs `delete` (one `$1` parameter, `key`) with the audit
            /// event in one transaction. `false` when it removed nothing
            /// (then nothing is written).
            pub(crate) async fn delete_audited(
                &self,
                delete: &'static str,
                key: &str,
                draft: mandate_core::AuditDraft,
                at: OffsetDateTime,
            ) -> Result<bool> {
                let mut tx = self.write.begin().await?;
                let done = sqlx::query(delete)
                    .bind(key)
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
        }
    };
}
both_backends!(imp);

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
        let direct = Self {
            write,
            read,
            batch: None,
        };
        let batch = crate::batch::Batcher::spawn(direct.clone());
        Ok(Self {
            batch: Some(batch),
            ..direct
        })
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
        // The group-commit writer has a connection of its own, so it never
        // queues behind the request path's reads for one.
        let writer = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        let direct = Self {
            write: pool.clone(),
            read: pool.clone(),
            batch: None,
        };
        let batch = crate::batch::Batcher::spawn(Self {
            write: writer,
            read: pool,
            batch: None,
        });
        Ok(Self {
            batch: Some(batch),
            ..direct
        })
    }
}
