//! Synthetic policy sets and entity sets of a given size, shared by the criterion
//! benchmark and the latency example.
//!
//! The policy mix follows a deployment with many agents: of every ten policies,
//! seven grant one agent an action on one resource, two grant an action on one
//! resource or tool to any agent, and one is a forbid (every other one global, the
//! rest scoped to a resource). [`Scopes::InConditions`] moves the same `==`
//! constraints from the scopes into the conditions, so no policy can be skipped: the
//! worst case for the engine.

use std::fmt::Write as _;

use mandate_policy::{
    Action, AgentEntity, Attestation, Engine, Entities, EntityData, EntityRef, Error, PolicySet,
    PolicySource, Request, RequestContext, RequestTime, ResourceEntity, Schema, ToolEntity,
    UserEntity,
};

/// Where the policies' `principal ==` and `resource ==` constraints are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scopes {
    /// In the policy scopes, as one writes them.
    InScope,
    /// In the `when` conditions: semantically the same, but every policy is evaluated.
    InConditions,
}

/// An engine with `policies` policies over `entities` entities (actions aside), and a
/// request it allows.
pub fn setup(policies: usize, entities: usize, scopes: Scopes) -> Result<(Engine, Request), Error> {
    let schema = Schema::mandate()?;
    let data = entity_data(entities);
    let counts = (
        data.agents.len().max(1),
        data.resources.len().max(1),
        data.tools.len().max(1),
    );
    let mut text = String::new();
    for i in 0..policies {
        let _ = writeln!(text, "@id(\"p{i}\")\n{}", policy(i, counts, scopes));
    }
    let policies = PolicySet::compile(&schema, &[PolicySource::new("bench.cedar", text)])?;
    let entities = Entities::build(&schema, &data)?;
    let engine = Engine::new(schema, policies, entities);
    Ok((engine, request()))
}

const ACTIONS: [&str; 4] = [
    "token:issue",
    "http:request",
    "db:connect",
    "mcp:resources/read",
];

/// The `i`-th policy of the mix.
fn policy(i: usize, (agents, resources, tools): (usize, usize, usize), scopes: Scopes) -> String {
    let (a, r, t) = (i / 10 % agents, i / 10 % resources, i % tools);
    let action = ACTIONS[i / 10 % ACTIONS.len()];
    let (effect, principal, action, resource, condition) = match i % 10 {
        0..=6 => (
            "permit",
            Some(format!(r#"Mandate::Agent::"agent-{a}""#)),
            format!(r#"action == Mandate::Action::"{}""#, ACTIONS[(i % 10 + i / 10) % ACTIONS.len()]),
            Some(format!(r#"Mandate::Resource::"res-{}""#, (r + i % 10) % resources)),
            format!(
                r#"context.env == "prod" && context.time.hour >= 9 && context.time.hour < 18 && context.scopes.contains("repo:read") && context.delegation.depth <= {}"#,
                i % 3
            ),
        ),
        7 => (
            "permit",
            None,
            r#"action == Mandate::Action::"mcp:tools/call""#.to_owned(),
            Some(format!(r#"Mandate::Tool::"res-{}/tool-{t}""#, t % resources)),
            format!(r#"context.args has repo && ["acme/web", "acme/api", "acme/{i}"].contains(context.args.repo)"#),
        ),
        8 => (
            "permit",
            None,
            format!(r#"action == Mandate::Action::"{action}""#),
            Some(format!(r#"Mandate::Resource::"res-{r}""#)),
            r#"principal.env == "prod" && principal.trust_provider == "k8s-prod" && principal.hasTag("team") && principal.getTag("team") == "billing""#.to_owned(),
        ),
        _ if (i / 10).is_multiple_of(2) => (
            "forbid",
            None,
            "action".to_owned(),
            None,
            match i / 20 % 3 {
                0 => format!("context.risk > {}", 70 + i % 30),
                1 => "context.delegation.depth > 2".to_owned(),
                _ => format!(
                    r#"resource has sensitivity && resource.sensitivity == "restricted-{i}" && !(context has on_behalf_of && context.on_behalf_of in Mandate::Group::"finance")"#
                ),
            },
        ),
        _ => (
            "forbid",
            None,
            "action".to_owned(),
            Some(format!(r#"Mandate::Resource::"res-{r}""#)),
            r#"!(context has attestation && context.attestation.provider == "k8s-prod")"#.to_owned(),
        ),
    };
    let scope = |var: &str, uid: &Option<String>| match (uid, scopes) {
        (Some(uid), Scopes::InScope) => format!("{var} == {uid}"),
        _ => var.to_owned(),
    };
    let mut conditions = vec![condition];
    if scopes == Scopes::InConditions {
        conditions.extend(principal.iter().map(|p| format!("principal == {p}")));
        conditions.extend(resource.iter().map(|r| format!("resource == {r}")));
    }
    format!(
        "{effect} ({}, {action}, {})\nwhen {{ {} }};",
        scope("principal", &principal),
        scope("resource", &resource),
        conditions.join(" && ")
    )
}

/// `n` entities: agents, resources, tools and users in turn.
fn entity_data(n: usize) -> EntityData {
    let mut data = EntityData::default();
    for i in 0..n {
        match i % 5 {
            0 | 1 => data.agents.push(AgentEntity {
                id: format!("agent-{}", data.agents.len()),
                kind: "autonomous".into(),
                owner: "ann@example.com".into(),
                status: "active".into(),
                env: "prod".into(),
                trust_provider: "k8s-prod".into(),
                labels: [("team".to_owned(), "billing".to_owned())].into(),
            }),
            2 => data.resources.push(ResourceEntity {
                id: format!("res-{}", data.resources.len()),
                kind: "mcp".into(),
                owner: "ann@example.com".into(),
                sensitivity: "internal".into(),
                labels: Default::default(),
            }),
            3 if !data.resources.is_empty() => {
                let r = data.tools.len() % data.resources.len();
                data.tools.push(ToolEntity {
                    id: format!("res-{r}/tool-{}", data.tools.len()),
                    resource: None,
                    sensitivity: None,
                });
            }
            _ => data.users.push(UserEntity {
                id: format!("user-{}", data.users.len()),
                email: "user@example.com".into(),
                groups: ["finance".to_owned()].into(),
            }),
        }
    }
    data
}

/// `agent-0` asks for a token for `res-0` in business hours: allowed by `p0`.
fn request() -> Request {
    Request {
        principal: EntityRef::Agent("agent-0".into()),
        action: Action::TokenIssue,
        resource: EntityRef::Resource("res-0".into()),
        context: RequestContext {
            attestation: Some(Attestation {
                provider: "k8s-prod".into(),
                claims: serde_json::from_str(
                    r#"{"sub": "system:serviceaccount:billing:bot", "namespace": "billing"}"#,
                )
                .unwrap_or_default(),
                evidence: Default::default(),
            }),
            env: "prod".into(),
            time: RequestTime::from_unix(1_794_823_200).unwrap_or_default(), // Monday 10:00 UTC
            scopes: ["repo:read".to_owned()].into(),
            ..RequestContext::default()
        },
    }
}
