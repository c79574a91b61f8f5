//! Properties of the decision rule over generated policy sets and requests.

use mandate_policy::{
    Action, Effect, Engine, Entities, EntityRef, PolicySet, PolicySource, Request, RequestContext,
    RequestTime, RiskScore,
};
use proptest::prelude::*;
use serde_json::json;

use crate::support::{entity_data, schema};

/// Conditions over the context, principal and resource; each may be true for some
/// request of every scope below, so no generated policy is impossible (which the
/// compiler refuses). The last one errs (integer overflow) whenever the risk score is
/// at least 2.
const CONDITIONS: &[&str] = &[
    "context.risk >= 0", // always true, but not to the validator: `unless` it is not impossible
    r#"context.env == "prod""#,
    "context.risk > 50",
    "context.time.hour >= 9 && context.time.hour < 18",
    "context.delegation.depth <= 1",
    r#"context.args has repo && context.args.repo == "acme/web""#,
    r#"context has on_behalf_of && context.on_behalf_of in Mandate::Group::"finance""#,
    r#"if resource has sensitivity then resource.sensitivity == "restricted" else context.risk > 90"#,
    r#"if principal has status then principal.status == "active" else context.risk > 90"#,
    "context.risk * 9223372036854775807 > 0",
];

/// Scopes (principal, action, resource) that each fit some request of the schema.
const SCOPES: &[(&str, &str, &str)] = &[
    ("principal", "action", "resource"),
    (
        r#"principal == Mandate::Agent::"agent-0""#,
        "action",
        "resource",
    ),
    (
        "principal",
        "action",
        r#"resource in Mandate::Resource::"res-0""#,
    ),
    (
        "principal is Mandate::Agent",
        r#"action == Mandate::Action::"token:issue""#,
        r#"resource == Mandate::Resource::"res-1""#,
    ),
    (
        "principal",
        r#"action == Mandate::Action::"mcp:tools/call""#,
        r#"resource in Mandate::Resource::"res-0""#,
    ),
    (
        "principal",
        r#"action in [Mandate::Action::"http:request", Mandate::Action::"db:connect"]"#,
        "resource",
    ),
    (
        "principal is Mandate::User",
        r#"action in Mandate::Action::"admin""#,
        "resource",
    ),
    (
        r#"principal == Mandate::Agent::"agent-1""#,
        r#"action == Mandate::Action::"delegate""#,
        r#"resource == Mandate::Agent::"agent-2""#,
    ),
];

/// One policy body (without `@id`): effect, scope, and a `when` or `unless` clause.
fn policy(effect: &'static str) -> impl Strategy<Value = String> {
    (
        prop::sample::select(SCOPES),
        prop::sample::select(CONDITIONS),
        prop::sample::select(CONDITIONS),
        prop::sample::select(&["when", "unless"][..]),
    )
        .prop_map(move |((p, a, r), c1, c2, clause)| {
            format!("{effect} ({p}, {a}, {r}) {clause} {{ ({c1}) && ({c2}) }};")
        })
}

fn any_policy() -> impl Strategy<Value = String> {
    prop_oneof![policy("permit"), policy("forbid")]
}

fn source(bodies: &[String]) -> String {
    bodies
        .iter()
        .enumerate()
        .map(|(i, body)| format!("@id(\"p{i}\")\n{body}\n"))
        .collect()
}

fn engine(text: &str) -> Engine {
    let schema = schema();
    let policies = PolicySet::compile(&schema, &[PolicySource::new("gen.cedar", text)])
        .unwrap_or_else(|e| panic!("generated policies do not compile: {e}\n{text}"));
    let entities = Entities::build(&schema, &entity_data()).unwrap();
    Engine::new(schema, policies, entities)
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop::sample::select(&Action::ALL[..]),
        0usize..4,
        0usize..2,
        prop::sample::select(&["prod", "dev"][..]),
        0u8..=100,
        0i64..7 * 24,
        0usize..4,
        prop::option::of(prop::sample::select(&["acme/web", "acme/other"][..])),
        prop::option::of(prop::sample::select(&["fiona", "sam", "nobody"][..])),
    )
        .prop_map(|(action, who, what, env, risk, hours, depth, repo, user)| {
            let agent = EntityRef::Agent(format!("agent-{who}")); // agent-3 is unknown
            let principal = match action {
                Action::AdminRead | Action::AdminWrite if who % 2 == 0 => {
                    EntityRef::User("fiona".into())
                }
                _ => agent,
            };
            let resource = match action {
                Action::Delegate => EntityRef::Agent(format!("agent-{what}")),
                Action::McpToolsCall => EntityRef::Tool(format!("res-{what}/t")),
                Action::AdminRead | Action::AdminWrite => {
                    EntityRef::ControlPlane("policies".into())
                }
                _ => EntityRef::Resource(format!("res-{what}")),
            };
            let mut context = RequestContext {
                env: env.into(),
                risk: RiskScore::new(risk).unwrap(),
                time: RequestTime::from_unix(1_794_787_200 + hours * 3600).unwrap(),
                on_behalf_of: user.map(Into::into),
                ..RequestContext::default()
            };
            context.delegation.chain = (0..depth).map(|i| format!("agent-{i}")).collect();
            if let Some(repo) = repo {
                context.args = serde_json::from_value(json!({ "repo": repo })).unwrap();
            }
            Request {
                principal,
                action,
                resource,
                context,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Adding a `forbid` never turns a deny into an allow.
    #[test]
    fn adding_a_forbid_never_allows_more(
        bodies in prop::collection::vec(any_policy(), 0..8),
        forbid in policy("forbid"),
        requests in prop::collection::vec(request(), 1..8),
    ) {
        let before = engine(&source(&bodies));
        let mut more = bodies.clone();
        more.push(forbid);
        let after = engine(&source(&more));
        for r in &requests {
            let (b, a) = (before.evaluate(r), after.evaluate(r));
            prop_assert!(
                !(b.effect == Effect::Deny && a.effect == Effect::Allow),
                "{r:?}\nbefore: {b:?}\nafter: {a:?}"
            );
        }
    }

    /// Without any `permit`, everything is denied.
    #[test]
    fn removing_every_permit_denies_everything(
        bodies in prop::collection::vec(any_policy(), 0..10),
        requests in prop::collection::vec(request(), 1..8),
    ) {
        let forbids: Vec<String> =
            bodies.into_iter().filter(|b| b.starts_with("forbid")).collect();
        let engine = engine(&source(&forbids));
        for r in &requests {
            let d = engine.evaluate(r);
            prop_assert_eq!(d.effect, Effect::Deny, "{:?}", r);
        }
    }
}
