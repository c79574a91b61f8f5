//! The messages of the internal API between a standalone gateway
//! (`mandate gateway`) and the Mandate it depends on, under
//! [`INTERNAL_PATH`]. JSON both ways; errors are RFC 9457 problems.

use std::net::IpAddr;

use mandate_engine::gateway::{CallDecision, GatewayRoute};
use mandate_engine::oauth::AccessToken;
use mandate_policy::{Action, HttpRequest, McpMessage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// Where the internal API is served; with the public URL in front, also the
/// audience of the tokens standalone gateways present to it.
pub const INTERNAL_PATH: &str = "/internal/v1/gateway";

/// The scope a standalone gateway's token must carry.
pub const GATEWAY_SCOPE: &str = "mandate:gateway";

/// `GET {INTERNAL_PATH}/routes/{name}`: the route, `None` when the resource
/// is not exposed, and the resource's scopes (for the metadata).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RouteAnswer {
    pub route: Option<GatewayRoute>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `POST {INTERNAL_PATH}/authenticate`: a request's credentials as the
/// gateway received them, for the route `resource` at public `url`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AuthenticateRequest {
    pub resource: String,
    pub method: String,
    pub url: String,
    pub authorization: String,
    #[serde(default)]
    pub dpop: Option<String>,
    /// Calls to decide at once when the token is valid (an HTTP route's
    /// `http:request`: one round trip instead of two).
    #[serde(default)]
    pub calls: Vec<CallSpec>,
    #[serde(default)]
    pub client_ip: Option<IpAddr>,
}

/// The verified token (with the decisions on the request's `calls`), or
/// why the request is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AuthenticateAnswer {
    Token {
        token: Box<AccessToken>,
        #[serde(default)]
        decisions: Vec<CallDecision>,
    },
    Refused {
        status: u16,
        error: Option<String>,
        description: String,
        scope: Option<String>,
    },
}

/// One call to decide, owned (what [`mandate_engine::gateway::GatewayCall`]
/// holds besides the token, the resource and the client's address).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CallSpec {
    pub action: Action,
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default)]
    pub args: serde_json::Map<String, Value>,
    #[serde(default)]
    pub http: Option<HttpRequest>,
    #[serde(default)]
    pub mcp: Option<McpMessage>,
}

/// `POST {INTERNAL_PATH}/decisions`: decisions on `calls` by the holder of
/// `token` at route `resource`, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DecisionsRequest {
    pub token: String,
    pub resource: String,
    #[serde(default)]
    pub client_ip: Option<IpAddr>,
    pub calls: Vec<CallSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DecisionsAnswer {
    pub decisions: Vec<CallDecision>,
}

/// `POST {INTERNAL_PATH}/audit`: the gateway's events, answered once they
/// are written (on disk when `durable`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AuditRequest {
    pub durable: bool,
    pub events: Vec<WireEvent>,
}

/// One audit event; only `gateway.*` types are accepted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WireEvent {
    pub event_type: String,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub outcome: String,
    pub detail: Value,
}

/// `POST {INTERNAL_PATH}/credentials/{name}`: the credential opened, unless
/// it has not changed since `known_updated_at`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct CredentialRequest {
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub known_updated_at: Option<OffsetDateTime>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CredentialAnswer {
    Unchanged,
    Opened {
        kind: String,
        config: Value,
        value: Option<String>,
        #[serde(with = "time::serde::rfc3339")]
        updated_at: OffsetDateTime,
    },
}

impl std::fmt::Debug for CredentialAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unchanged => f.write_str("Unchanged"),
            Self::Opened { kind, .. } => f
                .debug_struct("Opened")
                .field("kind", kind)
                .field("value", &crate::REDACTED)
                .finish_non_exhaustive(),
        }
    }
}

/// `POST {INTERNAL_PATH}/upstream-jwt`: a Mandate-signed JWT for `audience`
/// about the holder of `token` (its subject, agent, chain and `txn` are
/// taken from the verified token, not from the gateway).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UpstreamJwtRequest {
    pub token: String,
    pub resource: String,
    pub audience: String,
    pub ttl_secs: u64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct UpstreamJwtAnswer {
    pub jwt: String,
    pub exp: i64,
}
