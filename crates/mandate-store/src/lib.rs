//! `mandate-store` owns Mandate's persistent state: agents, admin tokens, the
//! hash-chained audit log and server metadata. [`Store`] is an enum over an
//! embedded SQLite file and PostgreSQL with the same methods; each backend has
//! its own migrations folder, and one conformance suite (`tests/it`) runs the
//! same cases against both.
//!
//! Every change is written in one transaction together with its audit event,
//! so a change without its event (or the reverse) cannot exist. The store
//! validates nothing about the domain (that is `mandate-core`'s job) and knows
//! nothing about HTTP.

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            $crate::Store::Sqlite($s) => $e,
            $crate::Store::Postgres($s) => $e,
        }
    };
}

mod attestation;
mod backend;
mod batch;
mod credentials;
pub mod governance;
mod tokens;
mod types;
mod url;

pub use attestation::{
    AttestationWrite, AttestationWritten, BindingRecord, JoinTokenRecord, ProviderRecord,
    ShadowRecord,
};
pub use credentials::{CredentialRecord, EmptySegments, RouteRecord};
pub use tokens::{
    GrantWrite, KeyStateChange, ResourceRecord, SigningKeyRecord, TokenFilter, TokenRecord,
};
pub use types::{
    AdminTokenRecord, AgentFilter, AuditFilter, ChainReport, DEFAULT_PAGE, MAX_PAGE, Page,
    PolicyVersionRecord,
};
pub use url::DatabaseUrl;

/// Errors from storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL could not be understood.
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    /// The database could not be reached or failed a query.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A migration failed at start.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row with the same unique key exists.
    #[error("{kind} `{id}` already exists")]
    Duplicate {
        /// What kind of thing, e.g. `agent`.
        kind: &'static str,
        /// Its key.
        id: String,
    },
    /// The row changed between read and write (optimistic concurrency).
    #[error("{0} was changed concurrently")]
    Conflict(String),
    /// A batched audit write failed; nothing of the batch was written.
    #[error("audit write failed: {0}")]
    AuditWrite(String),
    /// A token was to be recorded for an agent that is no longer `active`
    /// (suspended or decommissioned since the grant read it): nothing of
    /// that grant was written.
    #[error("agent `{0}` is not active")]
    AgentInactive(String),
    /// A stored value could not be read back as a domain value.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Unavailable(e)
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The database, on one of the supported backends.
#[derive(Debug, Clone)]
pub enum Store {
    /// One SQLite file in WAL mode (the embedded default).
    Sqlite(backend::SqliteStore),
    /// PostgreSQL (several replicas may share it).
    Postgres(backend::PgStore),
}

impl Store {
    /// Connects to `url`, creating a SQLite file if needed, and runs the
    /// backend's migrations.
    pub async fn open(url: &DatabaseUrl) -> Result<Store> {
        let store = match url {
            DatabaseUrl::Sqlite(path) => Store::Sqlite(backend::SqliteStore::open(path).await?),
            DatabaseUrl::Postgres(u) => Store::Postgres(backend::PgStore::open(u).await?),
        };
        Ok(store)
    }

    /// The backend's name, `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        dispatch!(self, s => s.ping().await)
    }

    /// Closes every connection.
    pub async fn close(&self) {
        dispatch!(self, s => s.close().await)
    }
}
