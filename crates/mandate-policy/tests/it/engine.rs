//! The decision rule: default deny, any error denies, determining policies.

use std::str::FromStr;

use mandate_policy::{Action, Attestation, Effect, Engine, EntityRef, PolicySet};
use serde_json::json;

use crate::support::{engine, request, schema};

const PERMIT_TOKENS: &str = r#"
@id("tokens")
permit (principal, action == Mandate::Action::"token:issue", resource);
"#;

#[test]
fn default_deny() {
    let schema = schema();
    let entities = mandate_policy::Entities::empty(&schema).unwrap();
    let engine = Engine::new(schema, PolicySet::empty(), entities);
    let d = engine.evaluate(&request());
    assert_eq!(d.effect, Effect::Deny);
    assert!(d.determining_policies.is_empty());
    assert!(d.errors.is_empty());
}

#[test]
fn permit_allows_and_is_named() {
    let d = engine(PERMIT_TOKENS).evaluate(&request());
    assert_eq!(d.effect, Effect::Allow);
    assert_eq!(d.determining_policies, ["tokens"]);
}

#[test]
fn matching_forbid_denies_and_is_named() {
    let text = format!(
        "{PERMIT_TOKENS}\n@id(\"no-prod\") forbid (principal, action, resource) when {{ context.env == \"prod\" }};"
    );
    let d = engine(&text).evaluate(&request());
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(d.determining_policies, ["no-prod"]);
}

/// A `forbid` whose condition errs (here: integer overflow) must deny, although Cedar
/// by itself skips the erring policy and allows.
#[test]
fn policy_error_denies() {
    let text = format!(
        "{PERMIT_TOKENS}\n@id(\"overflow\") forbid (principal, action, resource) \
         when {{ context.risk * 9223372036854775807 > 0 }};"
    );
    let engine = engine(&text);
    let mut r = request();
    r.context.risk = mandate_policy::RiskScore::new(2).unwrap();

    let d = engine.evaluate(&r);
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(d.determining_policies, ["overflow"]);
    assert_eq!(d.errors.len(), 1);
    assert!(d.errors[0].contains("overflow"), "{:?}", d.errors);

    // Cedar's own rule on the same request allows: the stricter rule is ours.
    let cedar = cedar_policy::Authorizer::new().is_authorized(
        &cedar_request(&r),
        engine.policies().cedar(),
        engine.entities().cedar(),
    );
    assert_eq!(cedar.decision(), cedar_policy::Decision::Allow);

    // Without the error (risk 0), the forbid simply does not match.
    assert_eq!(engine.evaluate(&request()).effect, Effect::Allow);
}

/// An erring `permit` denies too, even when another permit matches.
#[test]
fn erring_permit_denies() {
    let text = format!(
        "{PERMIT_TOKENS}\n@id(\"missing-agent\") permit (principal, action, resource) \
         when {{ principal is Mandate::Agent && principal.status == \"active\" }};"
    );
    let mut r = request();
    r.principal = EntityRef::Agent("not-registered".into());
    let d = engine(&text).evaluate(&r);
    assert_eq!(d.effect, Effect::Deny);
    assert_eq!(d.determining_policies, ["missing-agent"]);
    assert!(d.errors[0].contains("not-registered"), "{:?}", d.errors);
}

#[test]
fn request_outside_the_schema_denies_with_an_error() {
    let mut r = request();
    r.principal = EntityRef::User("fiona".into());
    let d = engine(PERMIT_TOKENS).evaluate(&r);
    assert_eq!(d.effect, Effect::Deny);
    assert!(d.determining_policies.is_empty());
    assert!(
        d.errors[0].starts_with("request does not match the schema"),
        "{:?}",
        d.errors
    );
}

const REPO_ALLOW_LIST: &str = r#"
@id("repos")
permit (principal, action == Mandate::Action::"mcp:tools/call", resource == Mandate::Tool::"res-1/t")
when { context.args has repo && ["acme/web"].contains(context.args.repo) };
"#;

fn tool_call(args: serde_json::Value) -> mandate_policy::Request {
    let mut r = request();
    r.action = Action::McpToolsCall;
    r.resource = EntityRef::Tool("res-1/t".into());
    r.context.args = serde_json::from_value(args).unwrap();
    r
}

#[test]
fn tool_arguments_reach_policies() {
    let engine = engine(REPO_ALLOW_LIST);
    let allowed = engine.evaluate(&tool_call(json!({"repo": "acme/web"})));
    assert_eq!(allowed.effect, Effect::Allow, "{allowed:?}");
    let denied = engine.evaluate(&tool_call(json!({"repo": "acme/other"})));
    assert_eq!(denied.effect, Effect::Deny);
    assert!(denied.errors.is_empty());
}

#[test]
fn undeclared_and_null_arguments_are_dropped() {
    let engine = engine(REPO_ALLOW_LIST);
    let args = json!({"repo": "acme/web", "not_in_schema": {"deep": [1.5, null]}, "title": null});
    assert_eq!(engine.evaluate(&tool_call(args)).effect, Effect::Allow);
}

#[test]
fn declared_argument_of_wrong_type_denies() {
    let engine = engine(REPO_ALLOW_LIST);
    for args in [
        json!({"repo": ["acme/web"]}),
        json!({"repo": 7}),
        json!({"limit": 1.5}),
    ] {
        let d = engine.evaluate(&tool_call(args.clone()));
        assert_eq!(d.effect, Effect::Deny, "{args}");
        assert_eq!(d.errors.len(), 1, "{args}: {d:?}");
    }
}

#[test]
fn claims_labels_and_client_address_reach_policies() {
    let text = r#"
@id("all")
permit (principal, action, resource)
when {
  context has attestation && context.attestation.claims has namespace &&
  context.attestation.claims.namespace == "billing" &&
  principal.hasTag("team") && principal.getTag("team") == "billing" &&
  context has client_ip && context.client_ip.isInRange(ip("10.0.0.0/8"))
};
"#;
    let engine = engine(text);
    let mut r = request();
    r.context.attestation = Some(Attestation {
        provider: "k8s-prod".into(),
        claims: serde_json::from_value(json!({"namespace": "billing", "unknown_claim": 1.5}))
            .unwrap(),
        evidence: Default::default(),
    });
    r.context.client_ip = Some("10.1.2.3".parse().unwrap());
    assert_eq!(engine.evaluate(&r).effect, Effect::Allow);
    r.context.client_ip = Some("192.168.1.1".parse().unwrap());
    assert_eq!(engine.evaluate(&r).effect, Effect::Deny);
}

#[test]
fn on_behalf_of_user_is_an_entity_in_its_groups() {
    let text = r#"
@id("finance")
permit (principal, action, resource)
when { context has on_behalf_of && context.on_behalf_of in Mandate::Group::"finance" };
"#;
    let engine = engine(text);
    let mut r = request();
    r.context.on_behalf_of = Some("fiona".into());
    assert_eq!(engine.evaluate(&r).effect, Effect::Allow);
    r.context.on_behalf_of = Some("sam".into());
    assert_eq!(engine.evaluate(&r).effect, Effect::Deny);
}

#[test]
fn tools_are_in_their_resource_and_inherit_sensitivity() {
    let text = r#"
@id("restricted-tools")
permit (principal, action == Mandate::Action::"mcp:tools/call", resource in Mandate::Resource::"res-0")
when { resource.sensitivity == "restricted" && resource.name == "t" };
"#;
    let engine = engine(text);
    let mut r = tool_call(json!({}));
    r.resource = EntityRef::Tool("res-0/t".into());
    assert_eq!(engine.evaluate(&r).effect, Effect::Allow);
    r.resource = EntityRef::Tool("res-1/t".into());
    assert_eq!(engine.evaluate(&r).effect, Effect::Deny);
}

#[test]
fn admin_actions_are_grouped() {
    let text = r#"
@id("admins")
permit (principal == Mandate::User::"fiona", action in Mandate::Action::"admin", resource);
"#;
    let engine = engine(text);
    let mut r = request();
    r.principal = EntityRef::User("fiona".into());
    r.resource = EntityRef::ControlPlane("policies".into());
    for action in [Action::AdminRead, Action::AdminWrite] {
        r.action = action;
        assert_eq!(engine.evaluate(&r).effect, Effect::Allow, "{action}");
    }
}

#[test]
fn delegation_depth_is_the_chain_length() {
    let text = r#"
@id("shallow")
permit (principal, action, resource)
when { context.delegation.depth <= 1 && context.delegation.chain.contains("agent-1") };
"#;
    let engine = engine(text);
    let mut r = request();
    r.context.delegation.chain = vec!["agent-1".into()];
    assert_eq!(engine.evaluate(&r).effect, Effect::Allow);
    r.context.delegation.chain.push("agent-2".into());
    assert_eq!(engine.evaluate(&r).effect, Effect::Deny);
}

/// The Cedar request the engine builds, rebuilt here to ask Cedar's own rule.
fn cedar_request(r: &mandate_policy::Request) -> cedar_policy::Request {
    let uid = |s: String| cedar_policy::EntityUid::from_str(&s).unwrap();
    let action = format!(r#"Mandate::Action::"{}""#, r.action);
    let context = cedar_policy::Context::from_json_value(
        json!({
            "delegation": {"chain": [], "depth": 0},
            "env": r.context.env,
            "time": {"hour": r.context.time.hour(), "weekday": r.context.time.weekday(), "unix": r.context.time.unix()},
            "scopes": [],
            "args": {},
            "risk": r.context.risk.value(),
        }),
        None,
    )
    .unwrap();
    cedar_policy::Request::new(
        uid(r.principal.to_string()),
        uid(action),
        uid(r.resource.to_string()),
        context,
        Some(schema().cedar()),
    )
    .unwrap()
}

/// Every spelling by which a policy can reach the attestation's evidence
/// fires: a `forbid` on a tag that the engine left out of the entities
/// would see `hasTag` false and not fire.
#[test]
fn evidence_tag_forbid_fires_however_it_is_spelled() {
    let mut r = request();
    r.context.attestation = Some(Attestation {
        provider: "k8s-prod".into(),
        claims: Default::default(),
        evidence: [("kubernetes.io.pod.uid".to_owned(), "p-1".to_owned())].into(),
    });
    for condition in [
        r#"context has attestation && context.attestation.evidence.hasTag("kubernetes.io.pod.uid") && context.attestation.evidence.getTag("kubernetes.io.pod.uid") == "p-1""#,
        r#"context has attestation && context.attestation["evidence"].hasTag("kubernetes.io.pod.uid")"#,
        r#"Mandate::Evidence::"k8s-prod".hasTag("kubernetes.io.pod.uid")"#,
    ] {
        let text = format!(
            "{PERMIT_TOKENS}\n@id(\"no-pod\") forbid (principal, action, resource) when {{ {condition} }};"
        );
        let d = engine(&text).evaluate(&r);
        assert_eq!(d.effect, Effect::Deny, "{condition}");
        assert_eq!(d.determining_policies, ["no-pod"], "{condition}");
    }
    // Another value does not fire.
    let text = format!(
        "{PERMIT_TOKENS}\n@id(\"no-pod\") forbid (principal, action, resource) when {{ context has attestation && context.attestation.evidence.hasTag(\"kubernetes.io.pod.uid\") && context.attestation.evidence.getTag(\"kubernetes.io.pod.uid\") == \"p-2\" }};"
    );
    assert_eq!(engine(&text).evaluate(&r).effect, Effect::Allow);
}

#[test]
fn the_claims_and_arguments_a_set_tests_are_listed() {
    let text = format!(
        "{PERMIT_TOKENS}\n@id(\"ns\") forbid (principal, action, resource) when {{ context has attestation && context.attestation.claims has namespace && context.attestation.claims.namespace == \"x\" }};\n\
         @id(\"repo\") forbid (principal, action, resource) when {{ context.args has repo }};"
    );
    let schema = schema();
    let set = PolicySet::compile(
        &schema,
        &[mandate_policy::PolicySource::new("t.cedar", text)],
    )
    .unwrap();
    let claims: Vec<&str> = set
        .reads_below(&["attestation", "claims"])
        .keys()
        .copied()
        .collect();
    assert_eq!(claims, ["namespace"]);
    let args = set.reads_below(&["args"]);
    assert_eq!(args.keys().copied().collect::<Vec<_>>(), ["repo"]);
    assert_eq!(args["repo"], ["repo".to_owned()]);
}
