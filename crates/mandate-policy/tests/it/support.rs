//! Shared builders for the integration tests.

use mandate_policy::{
    Action, AgentEntity, Engine, Entities, EntityData, EntityRef, PolicySet, PolicySource, Request,
    RequestContext, RequestTime, ResourceEntity, Schema, ToolEntity, UserEntity,
};

/// The example policy folder.
pub const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policies");

pub fn schema() -> Schema {
    Schema::mandate().unwrap()
}

pub fn agent(id: &str, status: &str) -> AgentEntity {
    AgentEntity {
        id: id.into(),
        kind: "autonomous".into(),
        owner: "ann@example.com".into(),
        status: status.into(),
        env: "prod".into(),
        trust_provider: "k8s-prod".into(),
        labels: [("team".to_owned(), "billing".to_owned())].into(),
    }
}

pub fn resource(id: &str, sensitivity: &str) -> ResourceEntity {
    ResourceEntity {
        id: id.into(),
        kind: "mcp".into(),
        owner: "ann@example.com".into(),
        sensitivity: sensitivity.into(),
        labels: Default::default(),
    }
}

/// Agents `agent-0` (active), `agent-1` (active), `agent-2` (suspended); users
/// `fiona` (finance) and `sam` (sales); resources `res-0` (restricted) and `res-1`;
/// tools `res-0/t` and `res-1/t`.
pub fn entity_data() -> EntityData {
    EntityData {
        agents: vec![
            agent("agent-0", "active"),
            agent("agent-1", "active"),
            agent("agent-2", "suspended"),
        ],
        users: vec![
            UserEntity {
                id: "fiona".into(),
                email: "fiona@example.com".into(),
                groups: ["finance".to_owned()].into(),
            },
            UserEntity {
                id: "sam".into(),
                email: "sam@example.com".into(),
                groups: ["sales".to_owned()].into(),
            },
        ],
        resources: vec![
            resource("res-0", "restricted"),
            resource("res-1", "internal"),
        ],
        tools: ["res-0/t", "res-1/t"]
            .map(|id| ToolEntity {
                id: id.into(),
                resource: None,
                sensitivity: None,
            })
            .into(),
    }
}

/// Compiles `sources` (name, text) against the shipped schema.
pub fn compile(sources: &[(&str, &str)]) -> Result<PolicySet, mandate_policy::Error> {
    let sources: Vec<_> = sources
        .iter()
        .map(|(name, text)| PolicySource::new(*name, *text))
        .collect();
    PolicySet::compile(&schema(), &sources)
}

/// An engine over one policy text and [`entity_data`].
pub fn engine(text: &str) -> Engine {
    let schema = schema();
    let policies = compile(&[("test.cedar", text)]).unwrap();
    let entities = Entities::build(&schema, &entity_data()).unwrap();
    Engine::new(schema, policies, entities)
}

/// `agent-0` asks for a token for `res-1`, from prod, on a Monday at ten.
pub fn request() -> Request {
    Request {
        principal: EntityRef::Agent("agent-0".into()),
        action: Action::TokenIssue,
        resource: EntityRef::Resource("res-1".into()),
        context: RequestContext {
            env: "prod".into(),
            time: RequestTime::from_unix(1_794_823_200).unwrap(),
            ..RequestContext::default()
        },
    }
}
