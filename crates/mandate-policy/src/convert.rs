//! Turning a [`Request`] into a Cedar request.
//!
//! The context is built as Cedar core values (`cedar-policy-core`, the same exact
//! version `cedar-policy` uses) and handed over through `cedar-policy`'s
//! `From<ast::Context>`: building it from `RestrictedExpression`s costs about four
//! times as much, since Cedar builds an expression tree and then evaluates it. The
//! test `context_matches_cedars_own_parser` compares the result with Cedar's
//! schema-based JSON parser, so an upgrade that changes either side fails there.
//!
//! The request is not handed to Cedar's own schema check, which costs more than the
//! rest of an evaluation: the principal and resource types are checked against the
//! action here, the context is built from typed fields in the shape checked once per
//! schema by [`check_context_shape`], and tool arguments and claims are checked
//! against their declared types by [`crate::shape`].

use std::net::IpAddr;

use cedar_policy::{Context, EntityId, EntityUid, RestrictedExpression};
use cedar_policy_core::ast::{self, Value, ValueKind};
use cedar_policy_core::evaluator::RestrictedEvaluator;
use cedar_policy_core::extensions::Extensions;

use crate::{Action, Attestation, Request, RequestContext, Schema, shape};

/// The Cedar request for `request`, or why there is none.
pub(crate) fn cedar_request(
    schema: &Schema,
    request: &Request,
    principal: &EntityUid,
    resource: &EntityUid,
) -> Result<cedar_policy::Request, String> {
    let (principals, resources) = schema.applies_to(request.action);
    for (role, entity, allowed) in [
        ("principal", &request.principal, principals),
        ("resource", &request.resource, resources),
    ] {
        let ty = schema.type_of(entity);
        if !allowed.contains(ty) {
            let allowed: Vec<String> = allowed.iter().map(|t| format!("`{t}`")).collect();
            return Err(format!(
                "request does not match the schema: the {role} of `{}` must be {}, not `{entity}`",
                request.action,
                allowed.join(" or ")
            ));
        }
    }
    let context = context(schema, request.action, &request.context)
        .map_err(|e| format!("request does not match the schema: {e}"))?;
    cedar_policy::Request::new(
        principal.clone(),
        schema.action_uid(request.action).clone(),
        resource.clone(),
        context,
        None,
    )
    .map_err(|e| format!("request does not match the schema: {e}"))
}

fn context(schema: &Schema, action: Action, c: &RequestContext) -> Result<Context, String> {
    let open = schema.open_records(action);
    let string = |s: &str| Value::from(s);
    let long = |n: i64| Value::from(n);
    let record = |pairs: Vec<(&str, Value)>| Value::record(pairs, None);

    let mut pairs: Vec<(&str, Value)> = Vec::with_capacity(9);
    if let Some(a) = &c.attestation {
        let claims = shape::record(&a.claims, &open.claims, &|| "attestation.claims".to_owned())?;
        let evidence = ast::EntityUID::from(evidence_uid(schema, a));
        pairs.push((
            "attestation",
            record(vec![
                ("provider", string(&a.provider)),
                ("claims", claims),
                ("evidence", Value::from(evidence)),
            ]),
        ));
    }
    let depth = i64::try_from(c.delegation.depth()).unwrap_or(i64::MAX);
    let chain = Value::set(c.delegation.chain.iter().map(|s| string(s)), None);
    pairs.push((
        "delegation",
        record(vec![("chain", chain), ("depth", long(depth))]),
    ));
    if let Some(user) = &c.on_behalf_of {
        let uid =
            EntityUid::from_type_name_and_id(schema.types().user.clone(), EntityId::new(user));
        pairs.push(("on_behalf_of", Value::from(ast::EntityUID::from(uid))));
    }
    pairs.push(("env", string(&c.env)));
    pairs.push((
        "time",
        record(vec![
            ("hour", long(c.time.hour().into())),
            ("weekday", long(c.time.weekday().into())),
            ("unix", long(c.time.unix())),
        ]),
    ));
    pairs.push((
        "scopes",
        Value::set(c.scopes.iter().map(|s| string(s)), None),
    ));
    pairs.push((
        "args",
        shape::record(&c.args, &open.args, &|| "args".to_owned())?,
    ));
    if let Some(ip) = c.client_ip {
        pairs.push(("client_ip", ip_value(ip)?));
    }
    pairs.push(("risk", long(c.risk.value().into())));
    if let Some(h) = &c.http {
        pairs.push((
            "http",
            record(vec![
                ("method", string(&h.method)),
                ("path", string(&h.path)),
            ]),
        ));
    }
    if let Some(m) = &c.mcp {
        pairs.push((
            "mcp",
            record(vec![
                ("method", string(&m.method)),
                ("target", string(&m.target)),
            ]),
        ));
    }

    match Value::record(pairs, None).value {
        ValueKind::Record(attrs) => Ok(Context::from(ast::Context::Value(attrs))),
        _ => Err("the context is not a record".to_owned()),
    }
}

/// The uid of the `Evidence` entity of an attestation: one per request, named
/// after the provider.
pub(crate) fn evidence_uid(schema: &Schema, a: &Attestation) -> EntityUid {
    EntityUid::from_type_name_and_id(schema.types().evidence.clone(), EntityId::new(&a.provider))
}

/// The `Evidence` entity of an attestation: its claims as tags.
pub(crate) fn evidence_entity(
    schema: &Schema,
    a: &Attestation,
) -> Result<cedar_policy::Entity, String> {
    let tags = a
        .evidence
        .iter()
        .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
    cedar_policy::Entity::new_with_tags(
        evidence_uid(schema, a),
        std::iter::empty::<(String, RestrictedExpression)>(),
        std::iter::empty(),
        tags,
    )
    .map_err(|e| format!("attestation evidence: {e}"))
}

/// Most client addresses whose `ipaddr` values are kept; past it the
/// cache starts over.
const IP_CACHE_MAX: usize = 4096;

/// `ipaddr` values by address: making one parses the extension's name with
/// Cedar's grammar and evaluates the call, which cost as much as the rest
/// of the context together, and requests come from few addresses.
static IP_VALUES: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<IpAddr, Value>>> =
    std::sync::LazyLock::new(Default::default);

/// An `ipaddr` extension value.
fn ip_value(ip: IpAddr) -> Result<Value, String> {
    if let Ok(cache) = IP_VALUES.lock()
        && let Some(v) = cache.get(&ip)
    {
        return Ok(v.clone());
    }
    let expr = RestrictedExpression::new_ip(ip.to_string());
    let value = RestrictedEvaluator::new(Extensions::all_available())
        .interpret(AsRef::<ast::RestrictedExpr>::as_ref(&expr).as_borrowed())
        .map_err(|e| format!("invalid client address `{ip}`: {e}"))?;
    if let Ok(mut cache) = IP_VALUES.lock() {
        if cache.len() >= IP_CACHE_MAX {
            cache.clear();
        }
        cache.insert(ip, value.clone());
    }
    Ok(value)
}

/// Checks, with Cedar's request validation, that the contexts this module builds
/// for `action` (with every optional part, and with none) have the shape the
/// schema declares, so evaluation can skip that check.
pub(crate) fn check_context_shape(schema: &Schema, action: Action) -> Result<(), String> {
    let (principals, resources) = schema.applies_to(action);
    let (Some(p), Some(r)) = (principals.first(), resources.first()) else {
        return Err("the action applies to no principal or resource type".to_owned());
    };
    let uid = |t: &cedar_policy::EntityTypeName| {
        EntityUid::from_type_name_and_id(t.clone(), EntityId::new("shape-check"))
    };
    let full = RequestContext {
        attestation: Some(Attestation::default()),
        on_behalf_of: Some("shape-check".into()),
        client_ip: Some(std::net::IpAddr::from([127, 0, 0, 1])),
        http: Some(crate::HttpRequest::default()),
        mcp: Some(crate::McpMessage::default()),
        ..RequestContext::default()
    };
    for c in [full, RequestContext::default()] {
        let context = context(schema, action, &c)?;
        cedar_policy::Request::new(
            uid(p),
            schema.action_uid(action).clone(),
            uid(r),
            context,
            Some(schema.cedar()),
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::{Delegation, RequestTime, RiskScore};
    use serde_json::json;

    /// Cedar's own schema-based parse of `json` as the context of `action`.
    fn cedar_context(schema: &Schema, action: Action, json: serde_json::Value) -> Context {
        Context::from_json_value(json, Some((schema.cedar(), schema.action_uid(action)))).unwrap()
    }

    #[test]
    fn context_matches_cedars_own_parser() {
        let schema = Schema::mandate().unwrap();
        let args = json!({
            "repo": "acme/web", "labels": ["a", "b"], "limit": 5,
            "undeclared": {"x": 1.5}, "title": null
        });
        let full = RequestContext {
            attestation: Some(Attestation {
                provider: "k8s-prod".into(),
                claims: serde_json::from_value(json!({"namespace": "billing", "extra": [1]}))
                    .unwrap(),
                evidence: [("kubernetes.io.namespace".to_owned(), "billing".to_owned())].into(),
            }),
            delegation: Delegation {
                chain: vec!["a".into(), "b".into()],
            },
            on_behalf_of: Some("fiona".into()),
            env: "prod".into(),
            time: RequestTime::from_unix(1_794_823_200).unwrap(),
            scopes: ["read".to_owned(), "write".to_owned()].into(),
            args: serde_json::from_value(args).unwrap(),
            client_ip: Some("2001:db8::1".parse().unwrap()),
            risk: RiskScore::new(42).unwrap(),
            http: Some(crate::HttpRequest {
                method: "POST".into(),
                path: "/repos".into(),
            }),
            mcp: Some(crate::McpMessage {
                method: "tools/call".into(),
                target: "create_issue".into(),
            }),
        };
        let expected = json!({
            "attestation": {
                "provider": "k8s-prod",
                "claims": {"namespace": "billing"},
                "evidence": {"__entity": {"type": "Mandate::Evidence", "id": "k8s-prod"}},
            },
            "delegation": {"chain": ["a", "b"], "depth": 2},
            "on_behalf_of": {"__entity": {"type": "Mandate::User", "id": "fiona"}},
            "env": "prod",
            "time": {"hour": 10, "weekday": 1, "unix": 1_794_823_200},
            "scopes": ["read", "write"],
            "args": {"repo": "acme/web", "labels": ["a", "b"], "limit": 5},
            "client_ip": {"__extn": {"fn": "ip", "arg": "2001:db8::1"}},
            "risk": 42,
            "http": {"method": "POST", "path": "/repos"},
            "mcp": {"method": "tools/call", "target": "create_issue"},
        });
        let action = Action::McpToolsCall;
        assert_eq!(
            context(&schema, action, &full).unwrap(),
            cedar_context(&schema, action, expected)
        );

        let minimal = json!({
            "delegation": {"chain": [], "depth": 0},
            "env": "",
            "time": {"hour": 0, "weekday": 4, "unix": 0},
            "scopes": [],
            "args": {},
            "risk": 0,
        });
        for action in Action::ALL {
            assert_eq!(
                context(&schema, action, &RequestContext::default()).unwrap(),
                cedar_context(&schema, action, minimal.clone()),
                "{action}"
            );
        }
    }

    #[test]
    fn principal_and_resource_types_are_checked() {
        let schema = Schema::mandate().unwrap();
        let request = Request {
            principal: crate::EntityRef::Agent("a".into()),
            action: Action::McpToolsCall,
            resource: crate::EntityRef::Resource("github".into()),
            context: RequestContext::default(),
        };
        let p = schema.uid(&request.principal);
        let r = schema.uid(&request.resource);
        let err = cedar_request(&schema, &request, &p, &r).unwrap_err();
        assert_eq!(
            err,
            "request does not match the schema: the resource of `mcp:tools/call` must be \
             `Mandate::Tool`, not `Mandate::Resource::\"github\"`"
        );
    }
}
