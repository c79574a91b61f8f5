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

mod backend;
mod types;
mod url;

pub use types::{
    AdminTokenRecord, AgentFilter, AuditFilter, ChainReport, DEFAULT_PAGE, MAX_PAGE, Page,
};
pub use url::DatabaseUrl;

use mandate_core::{Agent, AgentName, AuditDraft, AuditEvent};
use time::OffsetDateTime;

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

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Sqlite($s) => $e,
            Store::Postgres($s) => $e,
        }
    };
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

    /// Inserts a new agent and its audit event. [`Error::Duplicate`] when the
    /// name (or SPIFFE ID) is taken, including by a decommissioned agent.
    pub async fn create_agent(
        &self,
        agent: &Agent,
        event: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.create_agent(agent, event, at).await)
    }

    /// Replaces an agent's row and labels if it still has `expected_updated_at`,
    /// and appends the audit event; [`Error::Conflict`] otherwise.
    pub async fn update_agent(
        &self,
        agent: &Agent,
        expected_updated_at: OffsetDateTime,
        event: AuditDraft,
        at: OffsetDateTime,
    ) -> Result<AuditEvent> {
        dispatch!(self, s => s.update_agent(agent, expected_updated_at, event, at).await)
    }

    /// One agent by name.
    pub async fn agent(&self, name: &AgentName) -> Result<Option<Agent>> {
        dispatch!(self, s => s.agent(name).await)
    }

    /// Agents matching `filter`, ordered by name, one page.
    pub async fn list_agents(&self, filter: &AgentFilter) -> Result<Page<Agent>> {
        dispatch!(self, s => s.list_agents(filter).await)
    }

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

    /// Appends an event that goes with no other change (a rejected request,
    /// an attestation outcome).
    pub async fn append_audit(&self, event: AuditDraft, at: OffsetDateTime) -> Result<AuditEvent> {
        dispatch!(self, s => s.append_audit(event, at).await)
    }

    /// Events matching `filter`, in chain order, one page.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Page<AuditEvent>> {
        dispatch!(self, s => s.list_audit(filter).await)
    }

    /// Recomputes the whole chain and compares it with the stored hashes and
    /// the head.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport> {
        dispatch!(self, s => s.verify_audit_chain().await)
    }

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
