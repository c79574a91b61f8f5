//! Plain Rust entity types and the Cedar entity set built from them once.

use std::collections::{BTreeMap, BTreeSet};

use cedar_policy::{Entity, EntityId, EntityUid, RestrictedExpression};
use serde::{Deserialize, Serialize};

use crate::{Error, Schema};

/// A registered agent: `Mandate::Agent::"<id>"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntity {
    /// The agent's id.
    pub id: String,
    /// `autonomous` or `on_behalf_of`.
    pub kind: String,
    /// The accountable human, e.g. an email address.
    pub owner: String,
    /// `active`, `suspended` or `decommissioned`.
    pub status: String,
    /// Deployment environment, e.g. `prod`.
    pub env: String,
    /// The trust provider its binding rule names, e.g. `k8s-prod`.
    pub trust_provider: String,
    /// Labels, seen by policies as entity tags.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A human user: `Mandate::User::"<id>"`, a member of `Mandate::Group::"<group>"`
/// for each of its groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntity {
    /// The user's id.
    pub id: String,
    /// The user's email address.
    pub email: String,
    /// Ids of the groups the user belongs to.
    #[serde(default)]
    pub groups: BTreeSet<String>,
}

/// A registered upstream: `Mandate::Resource::"<id>"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceEntity {
    /// The resource's id.
    pub id: String,
    /// `mcp`, `http`, `postgres`, ...
    pub kind: String,
    /// The accountable human.
    pub owner: String,
    /// `public`, `internal`, `confidential` or `restricted`.
    pub sensitivity: String,
    /// Labels, seen by policies as entity tags.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A tool of an MCP server: `Mandate::Tool::"<server>/<tool>"`, in its resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolEntity {
    /// The tool's id, `<server>/<tool>`.
    pub id: String,
    /// The resource the tool belongs to; the id's part before the first `/` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The tool's sensitivity; its resource's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<String>,
}

impl ToolEntity {
    /// The id of the resource the tool belongs to, if it has one.
    pub fn resource_id(&self) -> Option<&str> {
        self.resource
            .as_deref()
            .or_else(|| self.id.split_once('/').map(|(server, _)| server))
    }

    /// The tool's name without its server prefix.
    pub fn name(&self) -> &str {
        self.id.split_once('/').map_or(&self.id, |(_, name)| name)
    }
}

/// Everything the engine knows about agents, users, resources and tools, in plain
/// form. Groups come into being through their members.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityData {
    /// Registered agents.
    #[serde(default)]
    pub agents: Vec<AgentEntity>,
    /// Human users.
    #[serde(default)]
    pub users: Vec<UserEntity>,
    /// Registered upstreams.
    #[serde(default)]
    pub resources: Vec<ResourceEntity>,
    /// MCP tools.
    #[serde(default)]
    pub tools: Vec<ToolEntity>,
}

/// The `User` entity of `u`, a member of its groups.
pub(crate) fn user_entity(schema: &Schema, u: &UserEntity) -> Result<Entity, Error> {
    let t = schema.types();
    let uid = |ty: &cedar_policy::EntityTypeName, id: &str| {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    };
    let parents: Vec<EntityUid> = u.groups.iter().map(|g| uid(&t.group, g)).collect();
    let attrs = [(
        "email".to_owned(),
        RestrictedExpression::new_string(u.email.clone()),
    )];
    let user = uid(&t.user, &u.id);
    let name = user.to_string();
    Entity::new_with_tags(user, attrs, parents, []).map_err(|e| Error::Entity {
        uid: name,
        message: e.to_string(),
    })
}

/// A Cedar entity set built from [`EntityData`] and checked against the schema.
/// Build it once per change and share it; evaluation only reads it.
#[derive(Debug, Clone)]
pub struct Entities {
    cedar: cedar_policy::Entities,
}

impl Entities {
    /// An entity set with only the schema's actions.
    pub fn empty(schema: &Schema) -> Result<Self, Error> {
        Self::build(schema, &EntityData::default())
    }

    /// Builds and validates the entity set. Fails on duplicates, on a tool whose
    /// resource is unknown, and on anything that does not conform to the schema.
    pub fn build(schema: &Schema, data: &EntityData) -> Result<Self, Error> {
        let t = schema.types();
        let uid = |ty: &cedar_policy::EntityTypeName, id: &str| {
            EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
        };
        let string = |s: &str| RestrictedExpression::new_string(s.to_owned());
        let tags = |labels: &BTreeMap<String, String>| {
            labels
                .iter()
                .map(|(k, v)| (k.clone(), string(v)))
                .collect::<Vec<_>>()
        };
        let entity = |uid: EntityUid,
                      attrs: Vec<(&str, RestrictedExpression)>,
                      parents: Vec<EntityUid>,
                      tags: Vec<(String, RestrictedExpression)>| {
            let name = uid.to_string();
            Entity::new_with_tags(
                uid,
                attrs.into_iter().map(|(k, v)| (k.to_owned(), v)),
                parents,
                tags,
            )
            .map_err(|e| Error::Entity {
                uid: name,
                message: e.to_string(),
            })
        };

        let mut out = Vec::new();
        for a in &data.agents {
            let attrs = vec![
                ("kind", string(&a.kind)),
                ("owner", string(&a.owner)),
                ("status", string(&a.status)),
                ("env", string(&a.env)),
                ("trust_provider", string(&a.trust_provider)),
            ];
            out.push(entity(
                uid(&t.agent, &a.id),
                attrs,
                vec![],
                tags(&a.labels),
            )?);
        }
        let groups: BTreeSet<&str> = data
            .users
            .iter()
            .flat_map(|u| u.groups.iter().map(String::as_str))
            .collect();
        for g in groups {
            out.push(entity(uid(&t.group, g), vec![], vec![], vec![])?);
        }
        for u in &data.users {
            out.push(user_entity(schema, u)?);
        }
        for r in &data.resources {
            let attrs = vec![
                ("kind", string(&r.kind)),
                ("owner", string(&r.owner)),
                ("sensitivity", string(&r.sensitivity)),
            ];
            out.push(entity(
                uid(&t.resource, &r.id),
                attrs,
                vec![],
                tags(&r.labels),
            )?);
        }
        for tool in &data.tools {
            let tool_uid = uid(&t.tool, &tool.id);
            let parent = tool
                .resource_id()
                .and_then(|id| data.resources.iter().find(|r| r.id == id))
                .ok_or_else(|| Error::Entity {
                    uid: tool_uid.to_string(),
                    message: match tool.resource_id() {
                        Some(id) => format!("unknown resource `{id}`"),
                        None => "no resource: name one or use an id `<server>/<tool>`".into(),
                    },
                })?;
            let sensitivity = tool.sensitivity.as_deref().unwrap_or(&parent.sensitivity);
            let attrs = vec![
                ("name", string(tool.name())),
                ("sensitivity", string(sensitivity)),
            ];
            let parents = vec![uid(&t.resource, &parent.id)];
            out.push(entity(tool_uid, attrs, parents, vec![])?);
        }

        let cedar =
            cedar_policy::Entities::from_entities(out, Some(schema.cedar())).map_err(|e| {
                Error::Entities {
                    message: e.to_string(),
                }
            })?;
        Ok(Self { cedar })
    }

    /// The Cedar entity set, the schema's action entities included.
    pub fn cedar(&self) -> &cedar_policy::Entities {
        &self.cedar
    }

    /// Number of entities, the schema's actions included.
    pub fn len(&self) -> usize {
        self.cedar.len()
    }

    /// Whether the set holds no entity at all (not even actions).
    pub fn is_empty(&self) -> bool {
        self.cedar.is_empty()
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn tool(id: &str) -> ToolEntity {
        ToolEntity {
            id: id.into(),
            resource: None,
            sensitivity: None,
        }
    }

    #[test]
    fn tool_resource_defaults_to_server_prefix() {
        assert_eq!(tool("github/create_issue").resource_id(), Some("github"));
        assert_eq!(tool("github/create_issue").name(), "create_issue");
        assert_eq!(tool("lonely").resource_id(), None);
    }

    #[test]
    fn tool_of_unknown_resource_is_rejected() {
        let schema = Schema::mandate().unwrap();
        let data = EntityData {
            tools: vec![tool("github/create_issue")],
            ..EntityData::default()
        };
        let err = Entities::build(&schema, &data).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid entity `Mandate::Tool::"github/create_issue"`: unknown resource `github`"#
        );
    }

    #[test]
    fn duplicate_entities_are_rejected() {
        let schema = Schema::mandate().unwrap();
        let user = UserEntity {
            id: "ann".into(),
            email: "ann@example.com".into(),
            groups: BTreeSet::new(),
        };
        let mut other = user.clone();
        other.email = "other@example.com".into();
        let data = EntityData {
            users: vec![user, other],
            ..EntityData::default()
        };
        assert!(matches!(
            Entities::build(&schema, &data),
            Err(Error::Entities { .. })
        ));
    }
}
