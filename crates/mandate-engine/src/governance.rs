//! Governance: the inventory report, access review (granted by policy
//! against used in the audit log), review dates, stale agents, and
//! behaviour drift with a per-agent risk score that every decision sees as
//! `context.risk`.
//!
//! Usage is read from the audit log only ([`usage`] knows the event
//! shapes). The drift detector tails the log by sequence number off the
//! request path, keeps bounded per-agent baselines, and persists baselines,
//! findings and its cursor together; the risk scores it derives live in
//! memory so a decision reads them without a query.

mod detector;
mod drift;
mod review;
mod tools;
mod usage;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::RwLock;

use mandate_policy::{EntityRef, Request, RiskScore};
use mandate_store::governance::FindingRecord;
use serde::Serialize;
use time::OffsetDateTime;

use crate::{Actor, Engine, Shadow};

pub(crate) use tools::tool_entities;

/// The actor of automatic governance actions in the audit log.
pub const GOVERNANCE_ACTOR: &str = "mandate:governance";

/// In-memory governance state shared by every request: the current risk
/// score per agent, kept up to date by the drift detector, and the
/// detector's working state.
#[derive(Debug, Default)]
pub(crate) struct GovState {
    risk: RwLock<HashMap<String, u8>>,
    settings: RwLock<GovernanceSettings>,
    detector: tokio::sync::Mutex<Option<detector::Detector>>,
}

fn read<T: Clone>(l: &RwLock<T>) -> T {
    match l.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

fn write<T>(l: &RwLock<T>, v: T) {
    match l.write() {
        Ok(mut g) => *g = v,
        Err(p) => *p.into_inner() = v,
    }
}

impl GovState {
    fn risk_of(&self, agent: &str) -> u8 {
        match self.risk.read() {
            Ok(g) => g.get(agent).copied().unwrap_or(0),
            Err(p) => p.into_inner().get(agent).copied().unwrap_or(0),
        }
    }

    fn set_risk(&self, risk: HashMap<String, u8>) {
        write(&self.risk, risk);
    }

    fn settings(&self) -> GovernanceSettings {
        read(&self.settings)
    }

    /// A copy of the baselines (loaded by the last detector run).
    async fn baselines_of(
        &self,
        det: &tokio::sync::Mutex<Option<detector::Detector>>,
    ) -> HashMap<String, drift::Baseline> {
        det.lock()
            .await
            .as_ref()
            .map(|d| d.baselines.clone())
            .unwrap_or_default()
    }
}

/// Server settings of governance (`[governance]` in the config file).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceSettings {
    /// An agent with no successful attestation or token for this many days is stale.
    pub stale_after_days: i64,
    /// Whether the server suspends stale agents by itself (each an audit event).
    pub suspend_stale: bool,
    /// How many standard deviations above its hourly baseline an agent's rate
    /// must be to raise a rate-burst finding.
    pub drift_sensitivity: f64,
    /// Days an agent's baseline learns before drift findings are raised.
    pub learning_days: i64,
    /// Seconds between two runs of the detector over new audit events.
    pub detector_interval_secs: u64,
}

impl Default for GovernanceSettings {
    fn default() -> Self {
        Self {
            stale_after_days: 90,
            suspend_stale: false,
            drift_sensitivity: 3.0,
            learning_days: 7,
            detector_interval_secs: 10,
        }
    }
}

impl GovernanceSettings {
    /// Checks ranges; the message names the key at fault.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(1..=3650).contains(&self.stale_after_days) {
            return Err(format!(
                "governance.stale_after_days: {} is not between 1 and 3650",
                self.stale_after_days
            ));
        }
        if !(self.drift_sensitivity.is_finite() && (0.5..=20.0).contains(&self.drift_sensitivity)) {
            return Err(format!(
                "governance.drift_sensitivity: {} is not between 0.5 and 20",
                self.drift_sensitivity
            ));
        }
        if !(0..=365).contains(&self.learning_days) {
            return Err(format!(
                "governance.learning_days: {} is not between 0 and 365",
                self.learning_days
            ));
        }
        if !(1..=86_400).contains(&self.detector_interval_secs) {
            return Err(format!(
                "governance.detector_interval_secs: {} is not between 1 and 86400",
                self.detector_interval_secs
            ));
        }
        Ok(())
    }
}

/// What one detector run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DriftRun {
    /// Audit events read.
    pub events: u64,
    /// Findings raised.
    pub findings: u64,
}

/// A drift finding.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Finding {
    /// Public id (`fnd_...`).
    pub id: String,
    /// The agent it is about.
    pub agent: String,
    /// `new_tool`, `new_resource`, `rate_burst`, `first_delegation` or `unusual_hour`.
    pub kind: String,
    /// One line for people.
    pub summary: String,
    /// Kind-specific detail, with the finding's `weight` in the risk score.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// The agent's risk score once this finding was raised, 0–100.
    pub risk: i64,
    /// The audit event that raised it.
    pub event_seq: i64,
    /// When it was raised (the time of that event).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was acknowledged.
    #[serde(with = "time::serde::rfc3339::option")]
    pub acked_at: Option<OffsetDateTime>,
    /// The admin token that acknowledged it.
    pub acked_by: Option<String>,
    /// Why.
    pub ack_note: Option<String>,
}

impl From<FindingRecord> for Finding {
    fn from(r: FindingRecord) -> Self {
        Self {
            detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null),
            id: r.id,
            agent: r.agent,
            kind: r.kind,
            summary: r.summary,
            risk: r.risk,
            event_seq: r.event_seq,
            created_at: r.created_at,
            acked_at: r.acked_at,
            acked_by: r.acked_by,
            ack_note: r.ack_note,
        }
    }
}

/// One row of the inventory report.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InventoryEntry {
    /// Agent name.
    pub name: String,
    /// Its SPIFFE ID.
    pub spiffe_id: String,
    /// The accountable human.
    pub owner: String,
    /// `autonomous` or `on_behalf_of`.
    pub kind: String,
    /// `active`, `suspended` or `decommissioned`.
    pub status: String,
    /// What it is for.
    pub description: String,
    /// Trust providers its binding rules name.
    pub providers: Vec<String>,
    /// Ids of the binding rules that map to it.
    pub bindings: Vec<String>,
    /// Resources policy lets it obtain tokens for.
    pub resources: Vec<String>,
    /// Latest successful attestation.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
    /// When its review falls due.
    #[serde(with = "time::serde::rfc3339")]
    pub review_by: OffsetDateTime,
    /// Whether that date has passed.
    pub review_overdue: bool,
    /// Its current risk score, 0–100.
    pub risk: u8,
}

/// The inventory report.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InventoryReport {
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// Every registered agent, by name.
    pub agents: Vec<InventoryEntry>,
    /// Attested identities no binding rule maps (denied).
    pub shadows: Vec<Shadow>,
}

/// One permission policy grants an agent.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Grant {
    /// `token:issue` or `mcp:tools/call`.
    pub action: String,
    /// The resource.
    pub resource: String,
    /// The tool, for `mcp:tools/call`.
    pub tool: Option<String>,
    /// Ids of the policies that grant it.
    pub policies: Vec<String>,
    /// Whether the audit log shows it used within the window.
    pub used: bool,
    /// Its latest use on record.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used: Option<OffsetDateTime>,
}

/// The access review of one agent.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgentAccess {
    /// Agent name.
    pub agent: String,
    /// What policy grants it, each marked used or not.
    pub grants: Vec<Grant>,
    /// How many grants went unused in the window (least-privilege findings).
    pub unused: usize,
}

/// The access review.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AccessReport {
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The usage window, in days.
    pub window_days: i64,
    /// One entry per reviewed agent.
    pub agents: Vec<AgentAccess>,
}

/// An agent past its review-by date.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReviewDue {
    /// Agent name.
    pub name: String,
    /// The accountable human.
    pub owner: String,
    /// Its status.
    pub status: String,
    /// The date that passed.
    #[serde(with = "time::serde::rfc3339")]
    pub review_by: OffsetDateTime,
    /// Whole days since.
    pub overdue_days: i64,
}

/// An agent the stale rule matches.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StaleAgent {
    /// Agent name.
    pub name: String,
    /// The accountable human.
    pub owner: String,
    /// Latest successful attestation, token or request, if any.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_activity: Option<OffsetDateTime>,
    /// Whole days without activity (since registration when never active).
    pub idle_days: i64,
    /// Why the rule matches, as recorded in the audit event.
    pub reason: String,
}

impl Engine {
    /// The agent's current risk score, 0–100, from its open drift findings.
    pub fn agent_risk(&self, agent: &str) -> u8 {
        self.governance.risk_of(agent)
    }

    /// `request` with `context.risk` raised to the principal agent's risk
    /// score, so policies see drift without callers having to supply it.
    pub(crate) fn with_agent_risk<'a>(&self, request: &'a Request) -> Cow<'a, Request> {
        let EntityRef::Agent(name) = &request.principal else {
            return Cow::Borrowed(request);
        };
        let risk = self.agent_risk(name);
        if risk <= request.context.risk.value() {
            return Cow::Borrowed(request);
        }
        let mut r = request.clone();
        r.context.risk = RiskScore::new(risk).unwrap_or(RiskScore::MAX);
        Cow::Owned(r)
    }

    /// Sets the governance settings (the stale rule, drift sensitivity).
    pub fn configure_governance(&self, settings: GovernanceSettings) {
        write(&self.governance.settings, settings);
    }

    /// Starts the background governance task: the drift detector tails the
    /// audit log every `detector_interval_secs` and, when `suspend_stale`
    /// is set, stale agents are suspended once an hour. It runs off the
    /// request path until the process ends.
    pub fn spawn_governance(&self, settings: GovernanceSettings) -> tokio::task::JoinHandle<()> {
        self.configure_governance(settings.clone());
        let engine = self.clone();
        tokio::spawn(async move {
            let every = std::time::Duration::from_secs(settings.detector_interval_secs);
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_stale: Option<OffsetDateTime> = None;
            let system = Actor {
                token_id: GOVERNANCE_ACTOR.to_owned(),
            };
            loop {
                tick.tick().await;
                if let Err(e) = engine.run_drift_detector().await {
                    tracing::warn!(error = %e, "drift detector run failed; retrying");
                }
                let now = engine.now();
                if settings.suspend_stale
                    && last_stale.is_none_or(|t| now - t >= time::Duration::HOUR)
                {
                    last_stale = Some(now);
                    match engine.suspend_stale_agents(&system, None).await {
                        Ok(done) => {
                            for s in done {
                                tracing::info!(
                                    agent = s.name,
                                    reason = s.reason,
                                    "suspended stale agent"
                                );
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "stale agent sweep failed"),
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
