//! Records of the gateway: a resource's route and the stored upstream
//! credentials (their secret sealed by the engine; the store never sees a
//! plaintext secret).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How the gateway exposes a resource at `/gw/<name>`, stored as JSON on the
/// resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRecord {
    /// Absolute `http`/`https` URL requests are forwarded to.
    pub upstream: String,
    /// The stored credential injected into each request, if any.
    #[serde(default)]
    pub credential: Option<String>,
    /// Whether MCP tool arguments are recorded in the audit log (else a
    /// digest of them).
    #[serde(default)]
    pub record_arguments: bool,
    /// Scopes a token must carry at the gateway.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Upstream timeout in milliseconds.
    pub timeout_ms: u64,
    /// What the gateway does with an empty path segment (`//`).
    #[serde(default)]
    pub empty_segments: EmptySegments,
    /// Whether every upstream answer's body is scrubbed of the injected
    /// secret (the default); off only for routes with binary bodies.
    #[serde(default = "yes")]
    pub scrub_responses: bool,
}

fn yes() -> bool {
    true
}

/// What the gateway does with an empty path segment (`/a//b`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmptySegments {
    /// `/a//b` is forwarded, decided and audited as `/a/b` (the default).
    #[default]
    Merge,
    /// `/a//b` is refused with 400.
    Refuse,
}

impl EmptySegments {
    /// Its name in the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Merge => "merge",
            Self::Refuse => "refuse",
        }
    }
}

impl std::str::FromStr for EmptySegments {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "merge" => Ok(Self::Merge),
            "refuse" => Ok(Self::Refuse),
            other => Err(format!("`{other}` is not one of `merge`, `refuse`")),
        }
    }
}

/// A stored upstream credential.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    /// Unique name.
    pub name: String,
    /// Provider kind, e.g. `static`.
    pub kind: String,
    /// Non-secret settings (a JSON document).
    pub config: String,
    /// The secret sealed under the master key, when the kind has one.
    pub sealed: Option<Vec<u8>>,
    /// When it was first stored.
    pub created_at: OffsetDateTime,
    /// When it was last replaced.
    pub updated_at: OffsetDateTime,
}

impl std::fmt::Debug for CredentialRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRecord")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("config", &self.config)
            .field("sealed", &self.sealed.as_ref().map(|_| "<sealed>"))
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}
