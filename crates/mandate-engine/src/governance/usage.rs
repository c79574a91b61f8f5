//! What an audit event says an agent did: the one place that knows the
//! shapes of usage events. Adding an event type is one match arm.

use mandate_core::{AuditEvent, Outcome};
use serde_json::Value;
use time::OffsetDateTime;

/// One use of a permission by an agent, read from an audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Usage {
    /// The agent's name.
    pub agent: String,
    /// The Cedar action, e.g. `token:issue`, `mcp:tools/call`; `None` for
    /// activity that uses no permission (a verified attestation).
    pub action: Option<String>,
    /// The resource, when there is one.
    pub resource: Option<String>,
    /// The tool (without its resource prefix), when there is one.
    pub tool: Option<String>,
    /// Delegation depth: 0 for a direct request.
    pub depth: u32,
    /// Other agents in the delegation chain.
    pub peers: Vec<String>,
    /// When it happened.
    pub at: OffsetDateTime,
    /// The audit event's sequence number.
    pub seq: i64,
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `Type::"id"` or `Type::id` → (`Type`, `id`).
fn entity(s: &str) -> Option<(&str, String)> {
    let (ty, id) = s.rsplit_once("::")?;
    let ty = ty.rsplit("::").next().unwrap_or(ty);
    Some((ty, id.trim_matches('"').to_owned()))
}

/// A tool id `server/tool` split into resource and tool.
fn split_tool(id: &str) -> (Option<String>, Option<String>) {
    match id.split_once('/') {
        Some((r, t)) => (Some(r.to_owned()), Some(t.to_owned())),
        None => (None, Some(id.to_owned())),
    }
}

/// Agent names in a delegation chain given as an array of strings or of
/// objects with `agent`/`sub`, or as SPIFFE IDs.
fn chain_agents(v: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|i| match i {
            Value::String(s) => Some(s.as_str()),
            Value::Object(_) => text(i, "agent").or_else(|| text(i, "sub")),
            _ => None,
        })
        .map(|s| s.rsplit('/').next().unwrap_or(s).to_owned())
        .collect()
}

/// The usage an event records, if it records one. Only successful events
/// count: a denied request used nothing.
pub(crate) fn usage(ev: &AuditEvent) -> Option<Usage> {
    if ev.outcome != Outcome::Success {
        return None;
    }
    let d = &ev.detail;
    let base = |agent: &str| Usage {
        agent: agent.to_owned(),
        action: None,
        resource: None,
        tool: None,
        depth: 0,
        peers: Vec::new(),
        at: ev.time,
        seq: ev.seq,
    };
    match ev.event_type.as_str() {
        // actor = agent, target = `resource:<name>`.
        "token.issued" => {
            let mut u = base(ev.actor.as_deref()?);
            u.action = Some("token:issue".to_owned());
            u.resource = ev
                .target
                .as_deref()
                .and_then(|t| t.strip_prefix("resource:"))
                .map(str::to_owned);
            let chain = chain_agents(d.get("chain"));
            let delegated = d.get("parent_jti").is_some_and(|p| !p.is_null());
            u.depth = match (chain.len(), delegated) {
                (n, _) if n > 1 => u32::try_from(n - 1).unwrap_or(u32::MAX),
                (_, true) => 1,
                _ => 0,
            };
            u.peers = chain.into_iter().filter(|a| *a != u.agent).collect();
            Some(u)
        }
        // principal `Agent::name`, target `Type::id`.
        "authz.decision" => {
            let (ty, agent) = entity(text(d, "principal")?)?;
            if ty != "Agent" {
                return None;
            }
            let mut u = base(&agent);
            u.action = text(d, "action").map(str::to_owned);
            match ev.target.as_deref().and_then(entity) {
                Some(("Tool", id)) => (u.resource, u.tool) = split_tool(&id),
                Some(("Resource", id)) => u.resource = Some(id),
                _ => {}
            }
            Some(u)
        }
        // Written by the gateway: detail {agent, resource, tool, ...}.
        "gateway.request" => {
            let mut u = base(text(d, "agent")?);
            u.resource = text(d, "resource").map(str::to_owned);
            u.tool = text(d, "tool").map(str::to_owned);
            u.action = Some(
                if u.tool.is_some() {
                    "mcp:tools/call"
                } else {
                    "http:request"
                }
                .to_owned(),
            );
            Some(u)
        }
        // Activity (for the stale rule) without a permission used.
        "attestation.verified" if d.get("dry_run") != Some(&Value::Bool(true)) => {
            Some(base(text(d, "agent")?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn event(ty: &str, actor: Option<&str>, target: Option<&str>, detail: Value) -> AuditEvent {
        AuditEvent {
            seq: 7,
            time: OffsetDateTime::UNIX_EPOCH,
            event_type: ty.into(),
            actor: actor.map(Into::into),
            target: target.map(Into::into),
            outcome: Outcome::Success,
            detail,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn each_usage_event_type_is_read() {
        let t = usage(&event(
            "token.issued",
            Some("invoice-bot"),
            Some("resource:billing"),
            serde_json::json!({"parent_jti": "j1"}),
        ))
        .unwrap();
        assert_eq!(
            (t.action.as_deref(), t.resource.as_deref(), t.depth),
            (Some("token:issue"), Some("billing"), 1)
        );
        let a = usage(&event(
            "authz.decision",
            Some("tok-pep"),
            Some("Tool::github/create_issue"),
            serde_json::json!({"principal": "Agent::triage", "action": "mcp:tools/call"}),
        ))
        .unwrap();
        assert_eq!(a.agent, "triage");
        assert_eq!(
            (a.resource.as_deref(), a.tool.as_deref()),
            (Some("github"), Some("create_issue"))
        );
        let g = usage(&event(
            "gateway.request",
            None,
            None,
            serde_json::json!({"agent": "triage", "resource": "github", "tool": "list_issues"}),
        ))
        .unwrap();
        assert_eq!(g.action.as_deref(), Some("mcp:tools/call"));
        let v = usage(&event(
            "attestation.verified",
            None,
            None,
            serde_json::json!({"agent": "x"}),
        ))
        .unwrap();
        assert_eq!(v.action, None);
        let users = event(
            "authz.decision",
            None,
            Some("Resource::billing"),
            serde_json::json!({"principal": "User::alice", "action": "token:issue"}),
        );
        assert!(usage(&users).is_none());
        let mut denied = event(
            "token.issued",
            Some("a"),
            Some("resource:b"),
            serde_json::json!({}),
        );
        denied.outcome = Outcome::Denied;
        assert!(usage(&denied).is_none());
    }
}
