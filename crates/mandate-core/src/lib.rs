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

/// The known name closest to a misspelt `name` (Damerau–Levenshtein, at
/// most 3 edits or a quarter of the name's length), for "did you mean"
/// messages; `None` when nothing is that close.
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .min()
        .filter(|(d, k)| *d <= 3.max(k.len() / 4))
        .map(|(_, k)| k)
}

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
