//! Audit events: the append-only, hash-chained record of every decision and
//! change.
//!
//! The store assigns `seq`, `time` and `prev_hash` when it appends a
//! [`AuditDraft`], and computes `hash = SHA-256(prev_hash ‖ canonical bytes)`
//! where the canonical bytes are [`AuditEvent::canonical_bytes`]. This crate
//! defines the bytes; hashing happens in `mandate-jose`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::unix_millis;

/// `prev_hash` of the first event in a chain: 32 zero bytes, hex.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How the audited request or change ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The change was made or the request allowed.
    Success,
    /// The request was refused (bad input, no permission, policy deny).
    Denied,
    /// The request was allowed but could not be completed: the upstream
    /// (or its credential) failed. The detail says how.
    Failed,
}

impl Outcome {
    /// The outcome as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "denied" => Some(Outcome::Denied),
            "failed" => Some(Outcome::Failed),
            _ => None,
        }
    }
}

/// What an audit event records: the closed set of event types. Stored (and
/// hashed into the chain) as the dotted name [`EventKind::as_str`] gives, so
/// the canonical bytes are those of the plain string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The admin API refused a request (bad input, no permission).
    AdminRequestRejected,
    /// The first admin token was created at first start.
    AdminTokenBootstrapped,
    /// An admin token was created.
    AdminTokenCreated,
    /// An admin token was revoked.
    AdminTokenRevoked,
    /// An agent was registered.
    AgentRegistered,
    /// An agent's owner, description, labels or review date changed.
    AgentUpdated,
    /// An agent was suspended (its tokens revoked).
    AgentSuspended,
    /// A suspended agent was resumed.
    AgentResumed,
    /// An agent was decommissioned, for good.
    AgentDecommissioned,
    /// An agent's `private_key_jwt` keys were set.
    AgentKeysSet,
    /// An agent's access review was recorded.
    AgentReviewed,
    /// An agent was found stale (and suspended, when applied).
    AgentStale,
    /// Evidence verified and mapped to an agent.
    AttestationVerified,
    /// Evidence verified, but no binding rule maps it: a shadow agent.
    AttestationShadow,
    /// Evidence refused.
    AttestationRefused,
    /// A decision of the AuthZEN API.
    AuthzDecision,
    /// A binding rule was added.
    BindingAdded,
    /// A binding rule was removed.
    BindingRemoved,
    /// Drift detection raised a finding.
    DriftFinding,
    /// A drift finding was acknowledged.
    DriftFindingAcked,
    /// A call through an HTTP route.
    GatewayRequest,
    /// A call through an MCP route.
    GatewayMcp,
    /// A standalone gateway fetched an upstream credential.
    GatewayCredentialFetched,
    /// The gateways' internal API refused a request.
    GatewayInternalRejected,
    /// A join token was created.
    JoinTokenCreated,
    /// A token signing key was created.
    KeyCreated,
    /// The token signing key was rotated.
    KeyRotated,
    /// A policy version became active (push or rollback).
    PolicyActivated,
    /// A trust provider was added.
    ProviderAdded,
    /// A trust provider was removed.
    ProviderRemoved,
    /// A resource was added.
    ResourceAdded,
    /// A resource was removed.
    ResourceRemoved,
    /// A resource's tool list was set.
    ResourceToolsSet,
    /// An upstream credential was stored.
    SecretSet,
    /// An upstream credential was removed.
    SecretRemoved,
    /// The token endpoint issued an access token.
    TokenIssued,
    /// The token endpoint refused a request.
    TokenDenied,
    /// A token was introspected.
    TokenIntrospected,
    /// A token (and those derived from it) was revoked.
    TokenRevoked,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 39] = [
        Self::AdminRequestRejected,
        Self::AdminTokenBootstrapped,
        Self::AdminTokenCreated,
        Self::AdminTokenRevoked,
        Self::AgentRegistered,
        Self::AgentUpdated,
        Self::AgentSuspended,
        Self::AgentResumed,
        Self::AgentDecommissioned,
        Self::AgentKeysSet,
        Self::AgentReviewed,
        Self::AgentStale,
        Self::AttestationVerified,
        Self::AttestationShadow,
        Self::AttestationRefused,
        Self::AuthzDecision,
        Self::BindingAdded,
        Self::BindingRemoved,
        Self::DriftFinding,
        Self::DriftFindingAcked,
        Self::GatewayRequest,
        Self::GatewayMcp,
        Self::GatewayCredentialFetched,
        Self::GatewayInternalRejected,
        Self::JoinTokenCreated,
        Self::KeyCreated,
        Self::KeyRotated,
        Self::PolicyActivated,
        Self::ProviderAdded,
        Self::ProviderRemoved,
        Self::ResourceAdded,
        Self::ResourceRemoved,
        Self::ResourceToolsSet,
        Self::SecretSet,
        Self::SecretRemoved,
        Self::TokenIssued,
        Self::TokenDenied,
        Self::TokenIntrospected,
        Self::TokenRevoked,
    ];

    /// The dotted name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AdminRequestRejected => "admin.request_rejected",
            Self::AdminTokenBootstrapped => "admin_token.bootstrapped",
            Self::AdminTokenCreated => "admin_token.created",
            Self::AdminTokenRevoked => "admin_token.revoked",
            Self::AgentRegistered => "agent.registered",
            Self::AgentUpdated => "agent.updated",
            Self::AgentSuspended => "agent.suspended",
            Self::AgentResumed => "agent.resumed",
            Self::AgentDecommissioned => "agent.decommissioned",
            Self::AgentKeysSet => "agent.keys_set",
            Self::AgentReviewed => "agent.reviewed",
            Self::AgentStale => "agent.stale",
            Self::AttestationVerified => "attestation.verified",
            Self::AttestationShadow => "attestation.shadow",
            Self::AttestationRefused => "attestation.refused",
            Self::AuthzDecision => "authz.decision",
            Self::BindingAdded => "binding.added",
            Self::BindingRemoved => "binding.removed",
            Self::DriftFinding => "drift.finding",
            Self::DriftFindingAcked => "drift.finding_acked",
            Self::GatewayRequest => "gateway.request",
            Self::GatewayMcp => "gateway.mcp",
            Self::GatewayCredentialFetched => "gateway.credential_fetched",
            Self::GatewayInternalRejected => "gateway.internal_rejected",
            Self::JoinTokenCreated => "join_token.created",
            Self::KeyCreated => "key.created",
            Self::KeyRotated => "key.rotated",
            Self::PolicyActivated => "policy.activated",
            Self::ProviderAdded => "provider.added",
            Self::ProviderRemoved => "provider.removed",
            Self::ResourceAdded => "resource.added",
            Self::ResourceRemoved => "resource.removed",
            Self::ResourceToolsSet => "resource.tools_set",
            Self::SecretSet => "secret.set",
            Self::SecretRemoved => "secret.removed",
            Self::TokenIssued => "token.issued",
            Self::TokenDenied => "token.denied",
            Self::TokenIntrospected => "token.introspected",
            Self::TokenRevoked => "token.revoked",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event before the store has placed it in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditDraft {
    /// Dotted event type, e.g. `agent.registered`, `admin.request_rejected`.
    pub event_type: String,
    /// Who acted: an admin token id, an agent's SPIFFE ID, or none when the
    /// caller could not be identified.
    pub actor: Option<String>,
    /// What the event is about, e.g. `agent/invoice-bot`.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Event-specific detail. Never a secret or a whole token; only integers,
    /// strings, booleans, arrays and objects (no floats), so the canonical
    /// bytes survive a round trip through storage unchanged.
    pub detail: serde_json::Value,
}

impl AuditDraft {
    /// A draft with empty detail.
    pub fn new(kind: EventKind, outcome: Outcome) -> Self {
        Self {
            event_type: kind.as_str().to_owned(),
            actor: None,
            target: None,
            outcome,
            detail: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// Sets the actor.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Sets the actor when known.
    pub fn actor_opt(mut self, actor: Option<String>) -> Self {
        self.actor = actor;
        self
    }

    /// Sets the target.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets the target when known.
    pub fn target_opt(mut self, target: Option<String>) -> Self {
        self.target = target;
        self
    }

    /// Sets the detail object.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

/// An event as stored in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When it was appended (millisecond precision).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Dotted event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Who acted, when known.
    pub actor: Option<String>,
    /// What it is about.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Event-specific detail.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// Hash of the previous event (hex), [`GENESIS_HASH`] for the first.
    pub prev_hash: String,
    /// SHA-256 of `prev_hash` bytes ‖ canonical bytes, hex.
    pub hash: String,
}

/// Writes `v` as compact JSON with every object's keys sorted, whatever
/// order the map keeps them in (serde_json's `preserve_order` feature may be
/// on in one build and off in another: the hash must not depend on it).
fn write_sorted(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                put_json(out, k);
                out.push(b':');
                if let Some(inner) = map.get(k) {
                    write_sorted(inner, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_sorted(item, out);
            }
            out.push(b']');
        }
        scalar => put_json(out, scalar),
    }
}

/// Appends `v` as compact JSON (what `Display` of a `serde_json::Value`
/// writes), without an intermediate string.
fn put_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Serialising a string or a JSON value into a Vec cannot fail.
    let _ = serde_json::to_writer(out, v);
}

impl AuditEvent {
    /// The bytes the hash covers besides `prev_hash`: compact JSON of
    /// `seq, time_ms, type, actor, target, outcome, detail` in that order,
    /// with the keys of every object in `detail` sorted.
    pub fn canonical_bytes(
        seq: i64,
        time: OffsetDateTime,
        draft_type: &str,
        actor: Option<&str>,
        target: Option<&str>,
        outcome: Outcome,
        detail: &serde_json::Value,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(
            format!(
                "{{\"seq\":{seq},\"time_ms\":{},\"type\":",
                unix_millis(time)
            )
            .as_bytes(),
        );
        put_json(&mut out, draft_type);
        out.extend_from_slice(b",\"actor\":");
        put_json(&mut out, &actor);
        out.extend_from_slice(b",\"target\":");
        put_json(&mut out, &target);
        out.extend_from_slice(b",\"outcome\":");
        put_json(&mut out, outcome.as_str());
        out.extend_from_slice(b",\"detail\":");
        write_sorted(detail, &mut out);
        out.push(b'}');
        out
    }

    /// This event's canonical bytes.
    pub fn own_canonical_bytes(&self) -> Vec<u8> {
        Self::canonical_bytes(
            self.seq,
            self.time,
            &self.event_type,
            self.actor.as_deref(),
            self.target.as_deref(),
            self.outcome,
            &self.detail,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_has_one_name_that_parses_back() {
        let mut names = std::collections::BTreeSet::new();
        for k in EventKind::ALL {
            assert!(names.insert(k.as_str()), "{k} twice");
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(AuditDraft::new(k, Outcome::Success).event_type, k.as_str());
        }
        assert_eq!(EventKind::parse("test.flush"), None);
    }

    /// The hash chain of existing logs depends on these bytes: escapes,
    /// non-ASCII text, nesting and numbers as compact JSON, every object's
    /// keys sorted.
    #[test]
    fn canonical_detail_is_compact_json_with_sorted_keys() {
        let tricky = "q\"b\\n\n\t\u{7}\u{1F600}é</script>";
        let detail = serde_json::json!({
            "z": [1, -2, 3, true, null, tricky],
            "a": {"y": tricky, "b": {"k": [], "c": {}}},
            tricky: "key",
            "n": i64::MIN,
            "u": u64::MAX,
        });
        let t = time::macros::datetime!(2026-11-23 10:00:00 UTC);
        let bytes =
            AuditEvent::canonical_bytes(1, t, tricky, Some(tricky), None, Outcome::Denied, &detail);
        // Written out by hand: `Display` cannot stand in, since another
        // crate of the workspace may turn on `serde_json/preserve_order`.
        let t = r#""q\"b\\n\n\t\u0007😀é</script>""#;
        let expected = format!(
            r#"{{"seq":1,"time_ms":1795428000000,"type":{t},"actor":{t},"target":null,"outcome":"denied","detail":{{"a":{{"b":{{"c":{{}},"k":[]}},"y":{t}}},"n":-9223372036854775808,{t}:"key","u":18446744073709551615,"z":[1,-2,3,true,null,{t}]}}}}"#
        );
        assert_eq!(String::from_utf8_lossy(&bytes), expected);
    }

    #[test]
    fn canonical_bytes_are_stable_and_cover_every_field() {
        let t = time::macros::datetime!(2026-11-23 10:00:00.5 UTC);
        let detail = serde_json::json!({"b": 1, "a": "x"});
        let bytes = AuditEvent::canonical_bytes(
            7,
            t,
            "agent.registered",
            Some("tok1"),
            Some("agent/a"),
            Outcome::Success,
            &detail,
        );
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            r#"{"seq":7,"time_ms":1795428000500,"type":"agent.registered","actor":"tok1","target":"agent/a","outcome":"success","detail":{"a":"x","b":1}}"#
        );
        let other = AuditEvent::canonical_bytes(
            7,
            t,
            "agent.registered",
            Some("tok1"),
            Some("agent/a"),
            Outcome::Denied,
            &detail,
        );
        assert_ne!(bytes, other);
    }

    #[test]
    fn nested_detail_keys_are_sorted_whatever_the_insertion_order() {
        let t = time::macros::datetime!(2026-11-23 10:00:00 UTC);
        let mut inner = serde_json::Map::new();
        inner.insert("z".into(), serde_json::json!(1));
        inner.insert("a".into(), serde_json::json!([{"y": 2, "b": "q\"uote"}]));
        let detail = serde_json::Value::Object(inner);
        let bytes = AuditEvent::canonical_bytes(1, t, "t", None, None, Outcome::Denied, &detail);
        assert!(
            String::from_utf8_lossy(&bytes)
                .ends_with(r#""detail":{"a":[{"b":"q\"uote","y":2}],"z":1}}"#),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }
}
