//! Records of attestation state: trust providers, binding rules, shadow
//! agents, join tokens and AWS instance-id bindings.

use time::OffsetDateTime;

/// A trust provider as stored. `spec` is the provider's JSON configuration
/// (`{"kind": ..., "config": ...}`); the store does not read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRecord {
    /// Unique name.
    pub name: String,
    /// Kind (`oidc`, `kubernetes`, `aws-iid`, ...).
    pub kind: String,
    /// JSON configuration.
    pub spec: String,
    /// Whether fetches may reach private and loopback addresses.
    pub allow_private_network: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// The admin token that created it.
    pub created_by: Option<String>,
}

/// A binding rule as stored; `matches` is a JSON array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRecord {
    /// Public id.
    pub id: String,
    /// The provider it belongs to.
    pub provider: String,
    /// The agent it maps to.
    pub agent: String,
    /// JSON array of `{"claim", "op", "value"}`.
    pub matches: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// The admin token that created it.
    pub created_by: Option<String>,
}

/// A shadow agent: verified, matched no rule, denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowRecord {
    /// Stable id derived from provider and subject.
    pub id: String,
    /// The provider that verified it.
    pub provider: String,
    /// Its subject at the provider.
    pub subject: String,
    /// Hex SHA-256 of its stable claims (latest sighting).
    pub claims_digest: String,
    /// Its flattened claims as JSON (latest sighting; never raw evidence).
    pub claims: String,
    /// First sighting.
    pub first_seen: OffsetDateTime,
    /// Latest sighting.
    pub last_seen: OffsetDateTime,
    /// Sightings so far.
    pub count: i64,
}

/// A join token as stored: the secret's hash only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinTokenRecord {
    /// Public id.
    pub id: String,
    /// The join-token provider.
    pub provider: String,
    /// The agent it attests as.
    pub agent: String,
    /// Hex SHA-256 of the secret part.
    pub secret_hash: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// The admin token that created it.
    pub created_by: Option<String>,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// When it was used, if it was.
    pub consumed_at: Option<OffsetDateTime>,
}

/// What a successful (non-dry-run) attestation changes, with its audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationWrite {
    /// The agent it attested as.
    pub agent: String,
    /// Set the agent's `last_seen_at`.
    pub touch_last_seen: bool,
    /// Bind `(provider, instance id)` to the agent on first sight.
    pub bind_instance: Option<(String, String)>,
    /// Consume this join token.
    pub consume_join_token: Option<String>,
}

/// How an [`AttestationWrite`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttestationWritten {
    /// Written with this event.
    Done(mandate_core::AuditEvent),
    /// The instance id is bound to this other agent; nothing written.
    InstanceBoundElsewhere(String),
    /// The join token was consumed or expired meanwhile; nothing written.
    JoinTokenSpent,
}
