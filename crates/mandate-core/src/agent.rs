//! Agents: registered non-human identities, each with a human owner.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ValidationError;
use crate::ids::{AgentName, Email, SpiffeId};

/// Whether an agent acts on its own or for a signed-in human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    /// Runs without a human in the loop (batch jobs, pipelines, daemons).
    Autonomous,
    /// Acts for a user who signed in and consented; its tokens carry the user.
    OnBehalfOf,
}

/// Where an agent is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AgentStatus {
    /// May attest and receive tokens.
    Active,
    /// Temporarily barred; can be resumed.
    Suspended,
    /// Permanently retired; the name stays reserved.
    Decommissioned,
}

/// A requested change of an agent's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// `active` → `suspended`.
    Suspend,
    /// `suspended` → `active`.
    Resume,
    /// any status but `decommissioned` → `decommissioned`.
    Decommission,
}

impl AgentStatus {
    /// The status after `change`, or an explanation of why it is not allowed.
    ///
    /// Decommissioning is terminal: nothing leaves `decommissioned`.
    pub fn apply(self, change: StatusChange) -> Result<AgentStatus, String> {
        use AgentStatus::*;
        match (self, change) {
            (Active, StatusChange::Suspend) => Ok(Suspended),
            (Suspended, StatusChange::Resume) => Ok(Active),
            (Active | Suspended, StatusChange::Decommission) => Ok(Decommissioned),
            (from, change) => Err(format!("cannot {} an agent that is {from}", change.verb())),
        }
    }

    /// The status as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Suspended => "suspended",
            AgentStatus::Decommissioned => "decommissioned",
        }
    }
}

impl StatusChange {
    /// The verb for messages and audit event types.
    pub fn verb(self) -> &'static str {
        match self {
            StatusChange::Suspend => "suspend",
            StatusChange::Resume => "resume",
            StatusChange::Decommission => "decommission",
        }
    }
}

impl AgentKind {
    /// The kind as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Autonomous => "autonomous",
            AgentKind::OnBehalfOf => "on-behalf-of",
        }
    }

    /// The kind as tokens (`agent_kind`) and policies (`principal.kind`)
    /// spell it: an identifier, so `on_behalf_of`.
    pub fn claim_value(self) -> &'static str {
        match self {
            AgentKind::Autonomous => "autonomous",
            AgentKind::OnBehalfOf => "on_behalf_of",
        }
    }

    /// The kind of an `agent_kind` claim ([`AgentKind::claim_value`]).
    pub fn from_claim(s: &str) -> Option<Self> {
        [AgentKind::Autonomous, AgentKind::OnBehalfOf]
            .into_iter()
            .find(|k| k.claim_value() == s)
    }
}

impl fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for AgentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgentStatus {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(AgentStatus::Active),
            "suspended" => Ok(AgentStatus::Suspended),
            "decommissioned" => Ok(AgentStatus::Decommissioned),
            _ => Err(ValidationError::new(
                "status",
                format!("`{s}` is not one of `active`, `suspended`, `decommissioned`"),
            )),
        }
    }
}

impl FromStr for AgentKind {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "autonomous" => Ok(AgentKind::Autonomous),
            "on-behalf-of" => Ok(AgentKind::OnBehalfOf),
            _ => Err(ValidationError::new(
                "kind",
                format!("`{s}` is not one of `autonomous`, `on-behalf-of`"),
            )),
        }
    }
}

/// Key/value labels, kept sorted. Keys follow Kubernetes label-key rules
/// (an optional DNS prefix and `/`, then up to 63 of `A-Za-z0-9._-`); values
/// are at most 63 of the same characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    try_from = "BTreeMap<String, String>",
    into = "BTreeMap<String, String>"
)]
#[schema(value_type = BTreeMap<String, String>)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// Iterates over `(key, value)` pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// True when no label is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses one `key=value` pair as given on a command line or in a filter.
    pub fn parse_pair(s: &str) -> Result<(String, String), ValidationError> {
        let (k, v) = s.split_once('=').ok_or_else(|| {
            ValidationError::new("labels", format!("`{s}` is not of the form `key=value`"))
        })?;
        check_label(k, v)?;
        Ok((k.to_owned(), v.to_owned()))
    }
}

const MAX_LABELS: usize = 64;

fn check_label(k: &str, v: &str) -> Result<(), ValidationError> {
    let name_ok = |s: &str| {
        s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    };
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    });
    if name.is_empty() || !name_ok(name) || !prefix_ok {
        return Err(ValidationError::new(
            "labels",
            format!(
                "label key `{k}` must be [prefix/]name with name of 1 to 63 characters `A-Za-z0-9._-`"
            ),
        ));
    }
    if !name_ok(v) {
        return Err(ValidationError::new(
            "labels",
            format!("label value `{v}` must be at most 63 characters `A-Za-z0-9._-`"),
        ));
    }
    Ok(())
}

impl TryFrom<BTreeMap<String, String>> for Labels {
    type Error = ValidationError;
    fn try_from(map: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        if map.len() > MAX_LABELS {
            return Err(ValidationError::new(
                "labels",
                format!("at most {MAX_LABELS} labels"),
            ));
        }
        for (k, v) in &map {
            check_label(k, v)?;
        }
        Ok(Labels(map))
    }
}

impl From<Labels> for BTreeMap<String, String> {
    fn from(l: Labels) -> Self {
        l.0
    }
}

/// Where an agent comes from: what it runs on and who made it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The model it runs, e.g. `claude-sonnet-4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The agent framework, e.g. `langgraph`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    /// The agent's own version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Who built or deployed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// Longest free-text field accepted (description, envelope, provenance parts).
pub const MAX_TEXT: usize = 4096;

impl Provenance {
    /// Checks the length of every part.
    pub fn validate(&self) -> Result<(), ValidationError> {
        for (field, v) in [
            ("provenance.model", &self.model),
            ("provenance.framework", &self.framework),
            ("provenance.version", &self.version),
            ("provenance.created_by", &self.created_by),
        ] {
            if v.as_ref().is_some_and(|s| s.len() > 256) {
                return Err(ValidationError::new(field, "must be at most 256 bytes"));
            }
        }
        Ok(())
    }
}

/// A registered agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Agent {
    /// Unique name (a DNS label).
    pub name: AgentName,
    /// `spiffe://<trust-domain>/agent/<name>`, derived at registration.
    pub spiffe_id: SpiffeId,
    /// Autonomous or on behalf of a user.
    pub kind: AgentKind,
    /// The accountable human.
    pub owner: Email,
    /// What the agent is for.
    pub description: String,
    /// What it runs on and who made it.
    pub provenance: Provenance,
    /// Key/value labels for selection and policy.
    pub labels: Labels,
    /// What the agent is expected to use (free text for now).
    pub envelope: String,
    /// Life-cycle status.
    pub status: AgentStatus,
    /// Registration time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When the owner must next review the agent.
    #[serde(with = "time::serde::rfc3339")]
    pub review_by: OffsetDateTime,
    /// Last successful attestation or token, if any.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
}

/// Checks a free-text field's length.
pub fn check_text(field: &'static str, s: &str) -> Result<(), ValidationError> {
    if s.len() > MAX_TEXT {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_TEXT} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decommissioning_is_terminal() {
        let s = AgentStatus::Active;
        let s = s.apply(StatusChange::Suspend).ok();
        assert_eq!(s, Some(AgentStatus::Suspended));
        let s = AgentStatus::Suspended
            .apply(StatusChange::Decommission)
            .ok();
        assert_eq!(s, Some(AgentStatus::Decommissioned));
        for change in [
            StatusChange::Suspend,
            StatusChange::Resume,
            StatusChange::Decommission,
        ] {
            assert!(AgentStatus::Decommissioned.apply(change).is_err());
        }
        assert!(AgentStatus::Active.apply(StatusChange::Resume).is_err());
    }

    #[test]
    fn labels_are_validated() {
        assert!(Labels::parse_pair("env=prod").is_ok());
        assert!(Labels::parse_pair("example.com/team=billing").is_ok());
        assert!(Labels::parse_pair("env").is_err());
        assert!(Labels::parse_pair("=x").is_err());
        assert!(Labels::parse_pair("env=has space").is_err());
        let many: BTreeMap<String, String> =
            (0..65).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert!(Labels::try_from(many).is_err());
    }

    #[test]
    fn kinds_use_kebab_case_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&AgentKind::OnBehalfOf)
                .ok()
                .as_deref(),
            Some("\"on-behalf-of\"")
        );
        assert_eq!(
            "on-behalf-of".parse::<AgentKind>().ok(),
            Some(AgentKind::OnBehalfOf)
        );
        assert!("robot".parse::<AgentKind>().is_err());
    }
}
