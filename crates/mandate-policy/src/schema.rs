//! The Cedar schema policies, entities and requests are checked against.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{EntityId, EntityTypeName, EntityUid, SchemaFragment};
use serde_json::Value;

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
    /// Declared attributes of the open records, indexed by [`Action::index`].
    open: Vec<OpenRecords>,
}

/// The entity type names of the namespace, resolved once.
pub(crate) struct Types {
    pub(crate) agent: EntityTypeName,
    pub(crate) user: EntityTypeName,
    pub(crate) group: EntityTypeName,
    pub(crate) resource: EntityTypeName,
    pub(crate) tool: EntityTypeName,
    pub(crate) control_plane: EntityTypeName,
}

/// Attribute names the schema declares for the free-form maps of one action's
/// context: `context.args` (type `ToolArgs`) and `context.attestation.claims`
/// (type `Claims`). Undeclared keys are dropped before evaluation.
#[derive(Debug, Default)]
pub(crate) struct OpenRecords {
    pub(crate) args: HashSet<String>,
    pub(crate) claims: HashSet<String>,
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
            actions.push(uid);
            open.push(open_records(&json, action.as_str()));
        }

        Ok(Self(Arc::new(Inner {
            cedar,
            types,
            actions,
            open,
        })))
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

/// Reads the declared attributes of `args` and `attestation.claims` in the context
/// of `action` from the schema's JSON form. Anything not found declares nothing.
fn open_records(json: &Value, action: &str) -> OpenRecords {
    let ns = &json["Mandate"];
    let context = resolve(ns, &ns["actions"][action]["appliesTo"]["context"]);
    OpenRecords {
        args: attrs(attr(ns, context, "args")),
        claims: attrs(attr(ns, attr(ns, context, "attestation"), "claims")),
    }
}

/// The attribute names of a record type.
fn attrs(record: Option<&Value>) -> HashSet<String> {
    record
        .and_then(|r| r["attributes"].as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The type of attribute `name` of a record type, resolved to a record.
fn attr<'a>(ns: &'a Value, record: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    record.and_then(|r| resolve(ns, &r["attributes"][name]))
}

/// Follows common-type references until a record type; `None` for anything else.
fn resolve<'a>(ns: &'a Value, ty: &'a Value) -> Option<&'a Value> {
    let mut ty = ty;
    // Common types cannot be recursive, so a chain is at most as long as their count.
    for _ in 0..=ns["commonTypes"]
        .as_object()
        .map_or(0, serde_json::Map::len)
    {
        let name = match ty["type"].as_str()? {
            "Record" => return Some(ty),
            "EntityOrCommon" => ty["name"].as_str()?,
            other => other,
        };
        ty = ns["commonTypes"].get(name.trim_start_matches("Mandate::"))?;
    }
    None
}

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn shipped_schema_parses_and_declares_open_records() {
        let s = Schema::mandate().unwrap();
        let open = s.open_records(Action::McpToolsCall);
        assert!(open.args.contains("repo"));
        assert!(open.claims.contains("namespace"));
        assert!(!open.args.contains("nonsense"));
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
}
