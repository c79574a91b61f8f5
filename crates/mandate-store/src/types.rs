//! Records, filters and pages the store reads and writes.

use mandate_core::{AgentKind, AgentStatus, Email};
use time::OffsetDateTime;

/// Default page size.
pub const DEFAULT_PAGE: u32 = 50;
/// Largest page size a caller may ask for.
pub const MAX_PAGE: u32 = 500;

/// An admin token as stored: never the secret, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTokenRecord {
    /// Public id, also the token's actor name in audit events.
    pub id: String,
    /// Human label.
    pub name: String,
    /// Hex SHA-256 of the secret part.
    pub secret_hash: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// The admin token id that created it (none for the bootstrap token).
    pub created_by: Option<String>,
    /// When it stops working, if ever.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

/// Which agents to list.
#[derive(Debug, Clone, Default)]
pub struct AgentFilter {
    /// Only agents owned by this address.
    pub owner: Option<Email>,
    /// Only agents of this kind.
    pub kind: Option<AgentKind>,
    /// Only agents with this status.
    pub status: Option<AgentStatus>,
    /// Only agents carrying this label `(key, value)`.
    pub label: Option<(String, String)>,
    /// Only agents whose name sorts after this one (the page cursor).
    pub after: Option<String>,
    /// Page size, clamped to `1..=MAX_PAGE`.
    pub limit: u32,
}

/// Which audit events to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Only events at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only events after this sequence number (the page cursor).
    pub after_seq: Option<i64>,
    /// Page size, clamped to `1..=MAX_PAGE`.
    pub limit: u32,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, in listing order.
    pub items: Vec<T>,
    /// Pass as the cursor to get the next page; none on the last page.
    pub next_cursor: Option<String>,
}

/// The result of recomputing the audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    /// Every hash recomputes and links, and the head matches the last event.
    Intact {
        /// Number of events.
        count: i64,
        /// Hash of the last event (the genesis hash when empty).
        head: String,
    },
    /// The first place where the chain does not hold.
    Broken {
        /// Sequence number of the first bad event (or where one is missing).
        seq: i64,
        /// What is wrong there.
        reason: String,
    },
}

pub(crate) fn clamp_limit(limit: u32) -> u32 {
    if limit == 0 {
        DEFAULT_PAGE
    } else {
        limit.min(MAX_PAGE)
    }
}

/// A stored policy version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionRecord {
    /// Version number, from 1.
    pub version: i64,
    /// JSON array of `{"name": ..., "text": ...}` sources (empty in listings).
    pub sources: String,
    /// Why it was pushed.
    pub message: String,
    /// The admin token that pushed it.
    pub author: Option<String>,
    /// Hex SHA-256 of `sources`.
    pub digest: String,
    /// When it was pushed.
    pub created_at: OffsetDateTime,
}
