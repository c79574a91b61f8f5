//! Synthetic policy sets and entity sets of a given size, shared by the criterion
//! benchmark and the latency example.

use std::fmt::Write as _;

use mandate_policy::{
    Action, AgentEntity, Attestation, Engine, Entities, EntityData, EntityRef, Error, PolicySet,
    PolicySource, Request, RequestContext, RequestTime, ResourceEntity, Schema, ToolEntity,
    UserEntity,
};

/// An engine with `policies` policies over `entities` entities (actions aside), and a
/// request it allows after evaluating every policy.
pub fn setup(policies: usize, entities: usize) -> Result<(Engine, Request), Error> {
    let schema = Schema::mandate()?;
    let data = entity_data(entities);
    let agents = data.agents.len().max(1);
    let resources = data.resources.len().max(1);
    let tools = data.tools.len().max(1);
    let mut text = String::new();
    for i in 0..policies {
        let (a, r, t) = (i % agents, i % resources, i % tools);
        let policy = match i % 5 {
            0 => format!(
                r#"permit (principal == Mandate::Agent::"agent-{a}", action == Mandate::Action::"token:issue", resource == Mandate::Resource::"res-{r}")
                   when {{ context.env == "prod" && context.time.hour >= 9 && context.time.hour < 18 }};"#
            ),
            1 => format!(
                r#"permit (principal, action == Mandate::Action::"mcp:tools/call", resource == Mandate::Tool::"res-{r}/tool-{t}")
                   when {{ context.args has repo && ["acme/web", "acme/api", "acme/{i}"].contains(context.args.repo) }};"#
            ),
            2 => format!(
                r#"forbid (principal == Mandate::Agent::"agent-{a}", action, resource)
                   when {{ context.risk > {} }};"#,
                70 + i % 30
            ),
            3 => format!(
                r#"permit (principal, action == Mandate::Action::"http:request", resource in Mandate::Resource::"res-{r}")
                   when {{ principal.env == "prod" && principal.trust_provider == "k8s-prod" && context.delegation.depth <= 2 }};"#
            ),
            _ => format!(
                r#"forbid (principal, action, resource)
                   when {{ resource has sensitivity && resource.sensitivity == "restricted-{i}" }}
                   unless {{ context has on_behalf_of && context.on_behalf_of in Mandate::Group::"finance" }};"#
            ),
        };
        writeln!(text, "@id(\"p{i}\")\n{policy}").map_err(|_| Error::Entities {
            message: "formatting".into(),
        })?;
    }
    let policies = PolicySet::compile(&schema, &[PolicySource::new("bench.cedar", text)])?;
    let entities = Entities::build(&schema, &data)?;
    let engine = Engine::new(schema, policies, entities);
    Ok((engine, request()))
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
            }),
            env: "prod".into(),
            time: RequestTime::from_unix(1_794_823_200).unwrap_or_default(), // Monday 10:00 UTC
            scopes: ["repo:read".to_owned()].into(),
            ..RequestContext::default()
        },
    }
}
