//! Records of the token service: signing keys (sealed), resources and issued
//! tokens.

use std::collections::BTreeMap;

use time::OffsetDateTime;

/// A signing key as stored: its private key sealed under the master key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// JWS algorithm, `ES256` or `EdDSA`.
    pub alg: String,
    /// PKCS#8 private key sealed with the master key (`kid` as associated data).
    pub sealed_pkcs8: Vec<u8>,
    /// `next`, `active` or `retired`, as of the last change.
    pub state: String,
    /// When it was generated.
    pub created_at: OffsetDateTime,
    /// When it starts signing.
    pub activate_after: OffsetDateTime,
    /// When it stops being published, once a successor was chosen.
    pub retire_after: Option<OffsetDateTime>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("activate_after", &self.activate_after)
            .field("retire_after", &self.retire_after)
            .finish_non_exhaustive()
    }
}

/// A change to a stored key's state, written together with a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStateChange {
    /// The key.
    pub kid: String,
    /// Its new state.
    pub state: String,
    /// Its new unpublish time.
    pub retire_after: Option<OffsetDateTime>,
}

/// An upstream tokens can be issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    /// Unique name.
    pub name: String,
    /// Unique absolute URI, the `aud` of its tokens.
    pub audience: String,
    /// Scopes it understands.
    pub scopes: Vec<String>,
    /// Longest token lifetime for it, in seconds.
    pub max_ttl_secs: i64,
    /// `http` or `mcp`.
    pub kind: String,
    /// `public`, `internal`, `confidential` or `restricted`.
    pub sensitivity: String,
    /// The accountable human.
    pub owner: Option<String>,
    /// Labels, seen by policies as entity tags.
    pub labels: BTreeMap<String, String>,
    /// When it was added.
    pub created_at: OffsetDateTime,
    /// How the gateway exposes it; `None` when it does not.
    pub route: Option<crate::RouteRecord>,
}

/// An issued token, so a family can be revoked. Serialised (times as RFC
/// 3339) when a standalone gateway receives a verified token's record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenRecord {
    /// The token's `jti`.
    pub jti: String,
    /// The token it was exchanged from, if any.
    pub parent_jti: Option<String>,
    /// The agent it was issued to (name).
    pub agent: String,
    /// The transaction id shared by a delegation chain.
    pub txn: String,
    /// Its `aud`.
    pub audience: String,
    /// Its `iat`.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// Its `exp`.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Its space-separated `scope`.
    pub scope: String,
    /// The agents of its delegation chain, from the first caller to the
    /// holder (one name when not delegated).
    pub chain: Vec<String>,
}

/// What a grant writes with its audit event, in a group commit: the issued
/// token and the agent whose `last_seen_at` the attestation moves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantWrite {
    /// The token to record.
    pub token: Option<TokenRecord>,
    /// The agent seen now.
    pub touch_agent: Option<String>,
}

/// Which tokens [`crate::Store::list_tokens`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFilter {
    /// Only this agent's (as holder).
    pub agent: Option<String>,
    /// Only tokens neither revoked nor expired at this time.
    pub live_at: Option<OffsetDateTime>,
    /// Most rows (clamped to the store's page limit).
    pub limit: u32,
}
