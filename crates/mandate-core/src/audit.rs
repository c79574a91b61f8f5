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
    pub fn new(event_type: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            event_type: event_type.into(),
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
