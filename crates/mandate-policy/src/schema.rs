//! The Cedar schema policies, entities and requests are checked against.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{EntityId, EntityTypeName, EntityUid, SchemaFragment};

use crate::shape::{self, OpenRecords};
use crate::{Action, Error, SourceDiagnostic};

/// The text of `policy/mandate.cedarschema`, the schema Mandate ships.
pub const MANDATE_SCHEMA: &str = include_str!("../../../policy/mandate.cedarschema");

/// The name [`Schema::mandate`] gives the shipped schema in diagnostics.
pub const MANDATE_SCHEMA_FILE: &str = "policy/mandate.cedarschema";

/// A parsed Cedar schema in the shape of `policy/mandate.cedarschema`: namespace
/// `Mandate`, its entity types and actions, and a context record with the attributes
/// of [`crate::RequestContext`]. Cheap to clone.
#[derive(Clone)]
pub struct Schema(Arc<Inner>);

struct Inner {
    cedar: cedar_policy::Schema,
    types: Types,
    /// Indexed by [`Action::index`].
    actions: Vec<EntityUid>,
    /// Every declared attribute, as [`Schema::declared_attributes`] lists them.
    declared: Vec<String>,
    /// Declared attributes of the open records, indexed by [`Action::index`].
    open: Vec<OpenRecords>,
    /// The action groups each action is in, transitively, indexed by [`Action::index`].
    groups: Vec<HashSet<EntityUid>>,
    /// The principal and resource types each action applies to, indexed by
    /// [`Action::index`].
    applies_to: Vec<(Vec<EntityTypeName>, Vec<EntityTypeName>)>,
}

/// The entity type names of the namespace, resolved once.
pub(crate) struct Types {
    pub(crate) agent: EntityTypeName,
    pub(crate) user: EntityTypeName,
    pub(crate) group: EntityTypeName,
    pub(crate) resource: EntityTypeName,
    pub(crate) tool: EntityTypeName,
    pub(crate) control_plane: EntityTypeName,
    pub(crate) evidence: EntityTypeName,
}

impl Schema {
    /// The schema Mandate ships, `policy/mandate.cedarschema`.
    pub fn mandate() -> Result<Self, Error> {
        Self::parse(MANDATE_SCHEMA_FILE, MANDATE_SCHEMA)
    }

    /// Parses a schema in Cedar's human-readable syntax. `file` names it in
    /// diagnostics. The schema must declare what [`Schema::mandate`] declares.
    pub fn parse(file: &str, text: &str) -> Result<Self, Error> {
        let schema_error = |e: &dyn miette::Diagnostic| Error::Schema {
            diagnostics: SourceDiagnostic::from_cedar(file, text, e),
        };
        let (cedar, _warnings) =
            cedar_policy::Schema::from_cedarschema_str(text).map_err(|e| schema_error(&e))?;
        let (fragment, _warnings) =
            SchemaFragment::from_cedarschema_str(text).map_err(|e| schema_error(&e))?;
        let json = fragment.to_json_value().map_err(|e| schema_error(&e))?;
        let missing = |what: String| Error::Schema {
            diagnostics: vec![SourceDiagnostic::at_offset(
                file,
                text,
                0,
                format!("schema does not declare {what}"),
            )],
        };

        let declared: HashSet<&EntityTypeName> = cedar.entity_types().collect();
        let entity_type = |name: &str| {
            EntityTypeName::from_str(&format!("Mandate::{name}"))
                .ok()
                .filter(|t| declared.contains(t))
                .ok_or_else(|| missing(format!("entity type `Mandate::{name}`")))
        };
        let types = Types {
            agent: entity_type("Agent")?,
            user: entity_type("User")?,
            group: entity_type("Group")?,
            resource: entity_type("Resource")?,
            tool: entity_type("Tool")?,
            control_plane: entity_type("ControlPlane")?,
            evidence: entity_type("Evidence")?,
        };

        let declared_actions: HashSet<&EntityUid> = cedar.actions().collect();
        let action_type = EntityTypeName::from_str("Mandate::Action")
            .map_err(|_| missing("`Mandate::Action`".to_owned()))?;
        let mut actions = Vec::with_capacity(Action::ALL.len());
        let mut open = Vec::with_capacity(Action::ALL.len());
        for action in Action::ALL {
            let uid = EntityUid::from_type_name_and_id(
                action_type.clone(),
                EntityId::new(action.as_str()),
            );
            if !declared_actions.contains(&uid) {
                return Err(missing(format!("action `{}`", action.as_str())));
            }
            let records = shape::open_records(&json, action.as_str()).map_err(|e| {
                missing(format!(
                    "a usable context for action `{}`: {e}",
                    action.as_str()
                ))
            })?;
            actions.push(uid);
            open.push(records);
        }

        let action_entities = cedar.action_entities().map_err(|e| schema_error(&e))?;
        let groups = actions
            .iter()
            .map(|uid| {
                action_entities
                    .ancestors(uid)
                    .map(|a| a.cloned().collect())
                    .unwrap_or_default()
            })
            .collect();

        let applies_to = actions
            .iter()
            .map(|uid| {
                let principals = cedar.principals_for_action(uid).into_iter().flatten();
                let resources = cedar.resources_for_action(uid).into_iter().flatten();
                (principals.cloned().collect(), resources.cloned().collect())
            })
            .collect();

        let declared = shape::declared_attributes(&json, Action::TokenIssue.as_str());
        let schema = Self(Arc::new(Inner {
            cedar,
            types,
            actions,
            declared,
            open,
            groups,
            applies_to,
        }));
        for action in Action::ALL {
            crate::convert::check_context_shape(&schema, action).map_err(|e| {
                missing(format!(
                    "the context mandate-policy builds for action `{}`: {e}",
                    action.as_str()
                ))
            })?;
        }
        Ok(schema)
    }

    /// Every attribute the schema declares, as dotted paths, sorted: those
    /// of the request context (`context.attestation.claims.namespace`,
    /// `context.on_behalf_of`), of each entity type (`Agent.kind`), entity
    /// tags (`Agent[tag]`) and memberships (`User in Group`). Every action
    /// shares the one `Context` type.
    pub fn declared_attributes(&self) -> &[String] {
        &self.0.declared
    }

    /// The Cedar schema.
    pub fn cedar(&self) -> &cedar_policy::Schema {
        &self.0.cedar
    }

    pub(crate) fn types(&self) -> &Types {
        &self.0.types
    }

    pub(crate) fn action_uid(&self, action: Action) -> &EntityUid {
        // INVARIANT (one-uid-per-action): `parse` pushed one uid per `Action::ALL` entry.
        &self.0.actions[action.index()]
    }

    pub(crate) fn action_groups(&self, action: Action) -> &HashSet<EntityUid> {
        // INVARIANT (one-uid-per-action): as above.
        &self.0.groups[action.index()]
    }

    /// The principal and resource types `action` applies to.
    pub(crate) fn applies_to(&self, action: Action) -> (&[EntityTypeName], &[EntityTypeName]) {
        // INVARIANT (one-uid-per-action): as above.
        let (p, r) = &self.0.applies_to[action.index()];
        (p, r)
    }

    pub(crate) fn open_records(&self, action: Action) -> &OpenRecords {
        // INVARIANT (one-uid-per-action): as above.
        &self.0.open[action.index()]
    }

    /// The Cedar type name of an entity reference.
    pub(crate) fn type_of(&self, r: &crate::EntityRef) -> &EntityTypeName {
        use crate::EntityRef as R;
        let t = self.types();
        match r {
            R::Agent(_) => &t.agent,
            R::User(_) => &t.user,
            R::Group(_) => &t.group,
            R::Resource(_) => &t.resource,
            R::Tool(_) => &t.tool,
            R::ControlPlane(_) => &t.control_plane,
        }
    }

    /// The Cedar uid of an entity reference.
    pub(crate) fn uid(&self, r: &crate::EntityRef) -> EntityUid {
        EntityUid::from_type_name_and_id(self.type_of(r).clone(), EntityId::new(r.id()))
    }
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").finish_non_exhaustive()
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn shipped_schema_parses_and_declares_open_records() {
        let s = Schema::mandate().unwrap();
        let open = s.open_records(Action::McpToolsCall);
        assert!(open.args.declares("repo"));
        assert!(open.claims.declares("namespace"));
        assert!(!open.args.declares("nonsense"));
        let admin: EntityUid = r#"Mandate::Action::"admin""#.parse().unwrap();
        assert!(s.action_groups(Action::AdminWrite).contains(&admin));
        assert!(s.action_groups(Action::TokenIssue).is_empty());
    }

    #[test]
    fn schema_errors_have_locations() {
        let text = "namespace Mandate {\n  entity Agent = { kind: Strin };\n}\n";
        let Err(Error::Schema { diagnostics }) = Schema::parse("s.cedarschema", text) else {
            panic!("expected a schema error");
        };
        let d = &diagnostics[0];
        assert_eq!(
            (d.file.as_str(), d.line, d.column),
            ("s.cedarschema", 2, 26)
        );
        assert!(d.message.contains("Strin"), "{d}");
    }

    #[test]
    fn schema_missing_a_type_is_rejected() {
        let text = "namespace Mandate { entity Agent; }";
        let err = Schema::parse("s.cedarschema", text).unwrap_err();
        assert!(err.to_string().contains("`Mandate::User`"), "{err}");
    }

    #[test]
    fn declared_attributes_list_context_entities_tags_and_memberships() {
        let schema = Schema::mandate().unwrap();
        let d = schema.declared_attributes();
        for expected in [
            "context.attestation.claims.namespace",
            "context.attestation.evidence",
            "context.delegation.depth",
            "context.on_behalf_of",
            "context.args.labels",
            "context.http.path",
            "Agent.kind",
            "Agent[tag]",
            "User.email",
            "User in Group",
            "Tool in Resource",
        ] {
            assert!(d.iter().any(|a| a == expected), "{expected}: {d:?}");
        }
        assert!(!d.iter().any(|a| a == "context.attestation"), "{d:?}");
    }
}
