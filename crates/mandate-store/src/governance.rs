//! Records of governance: registered tools per resource, drift baselines,
//! drift findings and the detector's position in the audit log.

use time::OffsetDateTime;

/// A drift finding as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRecord {
    /// Public id (`fnd_...`).
    pub id: String,
    /// The agent it is about.
    pub agent: String,
    /// `new_tool`, `new_resource`, `rate_burst`, `first_delegation` or `unusual_hour`.
    pub kind: String,
    /// One line for people.
    pub summary: String,
    /// Kind-specific detail, JSON.
    pub detail: String,
    /// The agent's risk score once this finding was raised, 0–100.
    pub risk: i64,
    /// The audit event that raised it.
    pub event_seq: i64,
    /// When it was raised.
    pub created_at: OffsetDateTime,
    /// When it was acknowledged, if it was.
    pub acked_at: Option<OffsetDateTime>,
    /// The admin token that acknowledged it.
    pub acked_by: Option<String>,
    /// Why it was acknowledged.
    pub ack_note: Option<String>,
}

/// Which findings to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFilter {
    /// Only this agent's.
    pub agent: Option<String>,
    /// Also acknowledged ones.
    pub include_acked: bool,
    /// Only findings raised at or after this time.
    pub since: Option<OffsetDateTime>,
    /// At most this many, newest first (clamped to `1..=MAX_PAGE`).
    pub limit: u32,
}

/// The drift detector's persisted state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriftState {
    /// The last audit sequence number the detector has read.
    pub cursor: i64,
    /// Per-agent baselines as JSON, by agent name.
    pub baselines: Vec<(String, String)>,
}

/// One run of the detector, written in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriftWrite {
    /// The cursor the run started from; the write is refused when another
    /// replica moved it meanwhile.
    pub from_cursor: i64,
    /// The cursor after the run.
    pub to_cursor: i64,
    /// Baselines that changed, as JSON, by agent name.
    pub baselines: Vec<(String, String)>,
    /// New findings, each with its audit event.
    pub findings: Vec<(FindingRecord, mandate_core::AuditDraft)>,
}
