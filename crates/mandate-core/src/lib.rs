//! `mandate-core` holds Mandate's domain types and the rules that keep them
//! valid: agent names, trust domains and SPIFFE ids, owners, labels, agent
//! kinds and the status life cycle, trust provider kinds and the claim
//! vocabulary policies see, audit events with their canonical bytes,
//! and the [`Clock`] through which all code reads the time.
//!
//! It does no I/O, runs nothing asynchronous and links no crypto backend:
//! hashing, storage and HTTP live in the crates that depend on this one.
//! Values are parsed once at the edge (`FromStr`/`TryFrom`) and are valid from
//! then on.

pub mod agent;
pub mod audit;
pub mod clock;
pub mod ids;
pub mod provider;

pub use agent::{Agent, AgentKind, AgentStatus, Labels, Provenance, StatusChange};
pub use audit::{AuditDraft, AuditEvent, EventKind, Outcome};
pub use clock::{Clock, SystemClock};
pub use ids::{AgentName, Email, SpiffeId, TrustDomain};
pub use provider::ProviderKind;

/// A value failed validation. Carries the name of the offending field so the
/// edge can point the user at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {message}")]
pub struct ValidationError {
    /// The field (as the user spells it) that holds the bad value.
    pub field: &'static str,
    /// Lower-case explanation, without a final period.
    pub message: String,
}

impl ValidationError {
    /// A validation error for `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
