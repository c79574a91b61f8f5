//! `mandate-engine` holds Mandate's use cases: registering and managing
//! agents, admin tokens and their authentication, recording rejected
//! requests, and reading and verifying the audit chain. It is built from a
//! [`Store`] and a [`Clock`], and knows nothing about HTTP: the server maps
//! its [`Error`] to status codes at the edge.
//!
//! Every change goes to the store together with its audit event, so the
//! event exists exactly when the change does.

mod admin_token;
mod agents;
mod attest;
pub mod gateway;
pub mod governance;
mod hot;
pub mod oauth;
mod policy;
mod resources;
mod secrets;
mod tokens;

use std::sync::Arc;

use mandate_core::{AuditDraft, Clock, Outcome, TrustDomain, ValidationError};
use mandate_store::{AuditFilter, ChainReport, Page, Store};
use time::OffsetDateTime;

pub use admin_token::{AdminToken, IssuedAdminToken, TOKEN_PREFIX};
pub use agents::{AgentPatch, NewAgent};
pub use attest::{
    AttestOutcome, AttestReport, Attested, Binding, IssuedJoinToken, MAX_JOIN_TOKEN_TTL_SECS,
    ProviderInfo, Shadow, claims_digest,
};
pub use mandate_store::EmptySegments;
pub use policy::{PolicyFile, PolicyVersion, agent_entity};
pub use resources::{
    DEFAULT_ROUTE_TIMEOUT_SECS, NewResource, RESOURCE_KINDS, Resource, SENSITIVITIES,
};
pub use secrets::{
    DEFAULT_UPSTREAM_JWT_TTL_SECS, NewSecret, OpenedSecret, SECRET_KINDS, SecretConfig, SecretInfo,
    UPSTREAM_JWT_TYP, UpstreamJwt,
};
pub use tokens::{
    ACCESS_TOKEN_TYP, KeyState, MintRequest, MintedToken, SigningKeyInfo, TokenConfig,
};

/// Errors of the use cases. Each variant says what went wrong in domain
/// terms; the server decides the HTTP status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of the request is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The named thing does not exist.
    #[error("{kind} `{id}` not found")]
    NotFound {
        /// What kind of thing (`agent`, `admin_token`).
        kind: &'static str,
        /// Its key.
        id: String,
    },
    /// The named thing exists already.
    #[error("{kind} `{id}` already exists")]
    AlreadyExists {
        /// What kind of thing.
        kind: &'static str,
        /// Its key.
        id: String,
    },
    /// The thing is in a state that does not allow the change.
    #[error("{0}")]
    InvalidState(String),
    /// Someone else changed the thing between our read and write.
    #[error("{0} was changed concurrently; retry")]
    Conflict(String),
    /// The caller is not authenticated.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Policy files that do not compile or validate; nothing was stored.
    #[error("the policies do not validate: {} problem(s), the first at {}", .0.len(), .0.first().map(|d| format!("{}:{}:{}", d.file, d.line, d.column)).unwrap_or_default())]
    InvalidPolicy(Vec<mandate_policy::SourceDiagnostic>),
    /// An attestation was refused (not verified, no binding, inactive
    /// agent, replay). The event is in the audit log.
    #[error("attestation refused: {reason}")]
    AttestationRefused {
        /// Stable reason code, e.g. `expired`, `no_binding`.
        code: String,
        /// What exactly failed.
        reason: String,
    },
    /// A binding rule would tie with an existing one.
    #[error("{0}")]
    BindingTie(String),
    /// The system failed in a way the caller cannot fix (no randomness).
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// Storage failed; nothing was changed.
    #[error("storage unavailable")]
    Unavailable(#[source] mandate_store::Error),
}

impl From<mandate_store::Error> for Error {
    fn from(e: mandate_store::Error) -> Self {
        match e {
            mandate_store::Error::Duplicate { kind, id } => Error::AlreadyExists { kind, id },
            mandate_store::Error::Conflict(what) => Error::Conflict(what),
            other => Error::Unavailable(other),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Settings the use cases need.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Trust domain of agents' SPIFFE IDs.
    pub trust_domain: TrustDomain,
    /// How long after registration an agent's review falls due.
    pub review_period: time::Duration,
}

/// Who is acting through the admin API: an authenticated admin token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The admin token's id (never its secret).
    pub token_id: String,
}

/// A request the server refused, for the audit log.
#[derive(Debug, Clone)]
pub struct Rejection<'a> {
    /// The caller, when it authenticated.
    pub actor: Option<&'a Actor>,
    /// HTTP method.
    pub method: &'a str,
    /// Request path (no query string).
    pub path: &'a str,
    /// Status answered.
    pub status: u16,
    /// Stable problem code.
    pub code: &'a str,
    /// The request id, for correlation with logs.
    pub request_id: Option<&'a str>,
}

/// The use cases, shared by every request handler.
#[derive(Debug, Clone)]
pub struct Engine {
    store: Store,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    policy: Arc<policy::PolicyCache>,
    tokens: Arc<tokens::TokenSlot>,
    attest: Arc<attest::AttestState>,
    governance: Arc<governance::GovState>,
    hot: Arc<hot::Hot>,
}

impl Engine {
    /// An engine over `store`, reading time from `clock`. Loads the active
    /// policy set and the inventory into memory before returning.
    pub async fn new(store: Store, clock: Arc<dyn Clock>, config: EngineConfig) -> Result<Self> {
        let engine = Self {
            store,
            clock,
            config,
            policy: Arc::new(policy::PolicyCache::new()?),
            tokens: Arc::default(),
            attest: Arc::new(attest::AttestState::new()?),
            governance: Arc::default(),
            hot: Arc::default(),
        };
        engine.reload_policy().await?;
        Ok(engine)
    }

    /// The underlying store (for health checks).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configured trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.config.trust_domain
    }

    /// The current time at the store's precision (milliseconds), from the
    /// engine's clock.
    pub fn now(&self) -> OffsetDateTime {
        let t = self.clock.now();
        mandate_core::clock::from_unix_millis(mandate_core::clock::unix_millis(t))
    }

    /// Records a refused request. The server answers only after this
    /// succeeds; if it fails, the caller gets 503 instead.
    pub async fn record_rejection(&self, r: &Rejection<'_>) -> Result<()> {
        let draft = AuditDraft::new(
            mandate_core::EventKind::AdminRequestRejected,
            Outcome::Denied,
        )
        .actor_opt(r.actor.map(|a| a.token_id.clone()))
        .target(format!("{} {}", r.method, r.path))
        .detail(serde_json::json!({
            "status": r.status,
            "code": r.code,
            "request_id": r.request_id,
        }));
        self.store.append_audit(draft, self.now()).await?;
        Ok(())
    }

    /// One page of audit events.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Page<mandate_core::AuditEvent>> {
        Ok(self.store.list_audit(filter).await?)
    }

    /// Recomputes the audit chain.
    pub async fn verify_audit(&self) -> Result<ChainReport> {
        Ok(self.store.verify_audit_chain().await?)
    }
}

#[cfg(test)]
mod tests;
