//! Plain Rust request types: who asks to do what to which thing, and in which context.
//!
//! These mirror the schema (`policy/mandate.cedarschema`); the engine turns them into
//! a Cedar request and checks that against the schema on every evaluation.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Error;

/// One authorization question: may `principal` do `action` on `resource`, given `context`?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Who asks: an agent, or a user for admin actions.
    pub principal: EntityRef,
    /// What it wants to do.
    pub action: Action,
    /// What it wants to do it to.
    pub resource: EntityRef,
    /// Everything else policies may look at.
    #[serde(default)]
    pub context: RequestContext,
}

/// A reference to an entity by type and id, e.g. `Agent("invoice-bot")`.
///
/// In YAML and JSON: a map with one entry, `{agent: invoice-bot}`,
/// `{tool: github/create_issue}`, `{control_plane: policies}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityRef {
    /// `Mandate::Agent::"<id>"`.
    Agent(String),
    /// `Mandate::User::"<id>"`.
    User(String),
    /// `Mandate::Group::"<id>"`.
    Group(String),
    /// `Mandate::Resource::"<id>"`.
    Resource(String),
    /// `Mandate::Tool::"<server>/<tool>"`.
    Tool(String),
    /// `Mandate::ControlPlane::"<area>"`, e.g. `agents` or `policies`.
    ControlPlane(String),
}

impl EntityRef {
    /// The entity type's name without namespace, e.g. `Agent`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Agent(_) => "Agent",
            Self::User(_) => "User",
            Self::Group(_) => "Group",
            Self::Resource(_) => "Resource",
            Self::Tool(_) => "Tool",
            Self::ControlPlane(_) => "ControlPlane",
        }
    }

    /// The key of the entity type in YAML and JSON, e.g. `control_plane`.
    fn key(&self) -> &'static str {
        match self {
            Self::Agent(_) => "agent",
            Self::User(_) => "user",
            Self::Group(_) => "group",
            Self::Resource(_) => "resource",
            Self::Tool(_) => "tool",
            Self::ControlPlane(_) => "control_plane",
        }
    }

    /// The entity's id.
    pub fn id(&self) -> &str {
        match self {
            Self::Agent(id)
            | Self::User(id)
            | Self::Group(id)
            | Self::Resource(id)
            | Self::Tool(id)
            | Self::ControlPlane(id) => id,
        }
    }
}

impl Serialize for EntityRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(self.key(), self.id())?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for EntityRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Repr {
            agent: Option<String>,
            user: Option<String>,
            group: Option<String>,
            resource: Option<String>,
            tool: Option<String>,
            control_plane: Option<String>,
        }
        let r = Repr::deserialize(d)?;
        let mut found = [
            r.agent.map(Self::Agent),
            r.user.map(Self::User),
            r.group.map(Self::Group),
            r.resource.map(Self::Resource),
            r.tool.map(Self::Tool),
            r.control_plane.map(Self::ControlPlane),
        ]
        .into_iter()
        .flatten();
        match (found.next(), found.next()) {
            (Some(one), None) => Ok(one),
            _ => Err(serde::de::Error::custom(
                "an entity reference has exactly one of `agent`, `user`, `group`, `resource`, `tool`, `control_plane`",
            )),
        }
    }
}

impl fmt::Display for EntityRef {
    /// Cedar syntax, e.g. `Mandate::Agent::"invoice-bot"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mandate::{}::{:?}", self.type_name(), self.id())
    }
}

/// The actions of the schema. Serialized as their Cedar names, e.g. `token:issue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Action {
    /// Issue an access token for a resource.
    #[serde(rename = "token:issue")]
    TokenIssue,
    /// Delegate to a child agent (the resource).
    #[serde(rename = "delegate")]
    Delegate,
    /// Call an MCP tool.
    #[serde(rename = "mcp:tools/call")]
    McpToolsCall,
    /// Read an MCP resource.
    #[serde(rename = "mcp:resources/read")]
    McpResourcesRead,
    /// Get an MCP prompt.
    #[serde(rename = "mcp:prompts/get")]
    McpPromptsGet,
    /// Send an HTTP request to an upstream API.
    #[serde(rename = "http:request")]
    HttpRequest,
    /// Connect to a database.
    #[serde(rename = "db:connect")]
    DbConnect,
    /// Read through the admin API.
    #[serde(rename = "admin:read")]
    AdminRead,
    /// Change something through the admin API.
    #[serde(rename = "admin:write")]
    AdminWrite,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Self; 9] = [
        Self::TokenIssue,
        Self::Delegate,
        Self::McpToolsCall,
        Self::McpResourcesRead,
        Self::McpPromptsGet,
        Self::HttpRequest,
        Self::DbConnect,
        Self::AdminRead,
        Self::AdminWrite,
    ];

    /// The Cedar action id, e.g. `token:issue`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenIssue => "token:issue",
            Self::Delegate => "delegate",
            Self::McpToolsCall => "mcp:tools/call",
            Self::McpResourcesRead => "mcp:resources/read",
            Self::McpPromptsGet => "mcp:prompts/get",
            Self::HttpRequest => "http:request",
            Self::DbConnect => "db:connect",
            Self::AdminRead => "admin:read",
            Self::AdminWrite => "admin:write",
        }
    }

    /// Position in [`Action::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Self::TokenIssue => 0,
            Self::Delegate => 1,
            Self::McpToolsCall => 2,
            Self::McpResourcesRead => 3,
            Self::McpPromptsGet => 4,
            Self::HttpRequest => 5,
            Self::DbConnect => 6,
            Self::AdminRead => 7,
            Self::AdminWrite => 8,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `context` of a request. Field names are the schema's context attributes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestContext {
    /// The verified attestation, when the agent presented one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Attestation>,
    /// The delegation chain that led to this request.
    #[serde(default)]
    pub delegation: Delegation,
    /// Id of the user on whose behalf the agent acts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// Environment the request comes from, e.g. `prod`.
    #[serde(default)]
    pub env: String,
    /// When the request was made.
    #[serde(default)]
    pub time: RequestTime,
    /// Requested scopes.
    #[serde(default)]
    pub scopes: BTreeSet<String>,
    /// Tool arguments. Only those the schema declares in `ToolArgs` reach policies;
    /// `null` counts as absent.
    #[serde(default)]
    pub args: serde_json::Map<String, serde_json::Value>,
    /// The client's address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
    /// Risk score from drift detection; 0 until it exists.
    #[serde(default)]
    pub risk: RiskScore,
    /// The HTTP request a gateway route forwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpRequest>,
    /// The MCP message a gateway route forwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpMessage>,
}

/// The HTTP request a gateway route forwards.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    /// The method, upper case.
    pub method: String,
    /// The path below the route, from `/`, without the query.
    pub path: String,
}

/// The MCP message a gateway route forwards.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpMessage {
    /// The JSON-RPC method, e.g. `tools/call`.
    pub method: String,
    /// The tool name, resource URI or prompt name.
    pub target: String,
}

/// Verified attestation: which trust provider vouched, and with which claims.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// Trust provider name, e.g. `k8s-prod`.
    pub provider: String,
    /// Verified claims under the schema's vocabulary (`Claims`). Only those the
    /// schema declares reach `context.attestation.claims`.
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Every verified claim by its provider's own flattened name; policies read
    /// them as tags of `context.attestation.evidence`.
    #[serde(default)]
    pub evidence: std::collections::BTreeMap<String, String>,
}

impl Attestation {
    /// What policies see of the claims a `kind` provider verified (native,
    /// flattened names): the vocabulary the kind fills in `claims`, every
    /// claim in `evidence`.
    pub fn verified(
        provider: impl Into<String>,
        kind: mandate_core::ProviderKind,
        claims: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        Self {
            provider: provider.into(),
            claims: kind
                .policy_claims(claims)
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
            evidence: claims.clone(),
        }
    }
}

/// The agents that delegated to the principal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delegation {
    /// Ids of the agents that delegated, the original caller first, the principal
    /// excluded. Empty when the principal acts on its own authority.
    #[serde(default)]
    pub chain: Vec<String>,
}

impl Delegation {
    /// Number of delegation hops: the chain's length. Policies see it as
    /// `context.delegation.depth`, so it can never disagree with the chain.
    pub fn depth(&self) -> usize {
        self.chain.len()
    }
}

/// When a request was made. Policies see `hour` and `weekday` in the time's own UTC
/// offset, so callers pass the time in the zone business hours are meant in.
///
/// In YAML and JSON: an RFC 3339 string, e.g. `2026-11-16T10:30:00+01:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestTime(#[serde(with = "time::serde::rfc3339")] OffsetDateTime);

impl RequestTime {
    /// A time at `unix` seconds, in UTC.
    pub fn from_unix(unix: i64) -> Result<Self, time::error::ComponentRange> {
        OffsetDateTime::from_unix_timestamp(unix).map(Self)
    }

    /// Hour of the day, 0..=23.
    pub fn hour(self) -> u8 {
        self.0.hour()
    }

    /// ISO 8601 weekday: 1 = Monday ..= 7 = Sunday.
    pub fn weekday(self) -> u8 {
        self.0.weekday().number_from_monday()
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.0.unix_timestamp()
    }
}

impl Default for RequestTime {
    /// The Unix epoch.
    fn default() -> Self {
        Self(OffsetDateTime::UNIX_EPOCH)
    }
}

impl From<OffsetDateTime> for RequestTime {
    fn from(t: OffsetDateTime) -> Self {
        Self(t)
    }
}

/// A risk score in `0..=100`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "u64", into = "u8")]
pub struct RiskScore(u8);

impl RiskScore {
    /// The highest score.
    pub const MAX: Self = Self(100);

    /// A score, if `value` is in `0..=100`.
    pub fn new(value: u8) -> Result<Self, Error> {
        Self::try_from(u64::from(value))
    }

    /// The score.
    pub fn value(self) -> u8 {
        self.0
    }
}

impl TryFrom<u64> for RiskScore {
    type Error = Error;

    fn try_from(value: u64) -> Result<Self, Error> {
        match u8::try_from(value) {
            Ok(v) if v <= 100 => Ok(Self(v)),
            _ => Err(Error::RiskOutOfRange(value)),
        }
    }
}

impl From<RiskScore> for u8 {
    fn from(r: RiskScore) -> u8 {
        r.0
    }
}

impl FromStr for Action {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| Error::UnknownAction(s.to_owned()))
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_their_names() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>().unwrap(), a);
            assert_eq!(Action::ALL[a.index()], a);
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
        }
        assert_eq!(
            "admin:*".parse::<Action>().unwrap_err().to_string(),
            "unknown action `admin:*`"
        );
    }

    #[test]
    fn risk_score_is_bounded() {
        assert_eq!(RiskScore::new(100).unwrap(), RiskScore::MAX);
        assert!(RiskScore::new(101).is_err());
        assert!(serde_json::from_str::<RiskScore>("250").is_err());
        assert_eq!(serde_json::from_str::<RiskScore>("70").unwrap().value(), 70);
    }

    #[test]
    fn time_uses_its_own_offset() {
        let t: RequestTime = serde_json::from_str("\"2026-11-16T23:30:00-02:00\"").unwrap();
        assert_eq!((t.hour(), t.weekday()), (23, 1), "Monday evening locally");
        let utc = RequestTime::from_unix(t.unix()).unwrap();
        assert_eq!((utc.hour(), utc.weekday()), (1, 2), "Tuesday night in UTC");
    }

    #[test]
    fn entity_refs_read_as_maps() {
        let r: EntityRef = serde_norway::from_str("tool: github/create_issue").unwrap();
        assert_eq!(r, EntityRef::Tool("github/create_issue".into()));
        assert_eq!(r.to_string(), r#"Mandate::Tool::"github/create_issue""#);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"tool":"github/create_issue"}"#
        );
        assert!(serde_norway::from_str::<EntityRef>("{tool: a, agent: b}").is_err());
        assert!(serde_norway::from_str::<EntityRef>("{}").is_err());
    }
}
