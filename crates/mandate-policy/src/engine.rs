//! The engine: compiled policies, schema and entities, and the decision rule.

use cedar_policy::{AuthorizationError, Authorizer, PolicyId};
use serde::{Deserialize, Serialize};

use crate::convert::cedar_request;
use crate::{Entities, PolicySet, Request, Schema};

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The request may go ahead.
    Allow,
    /// The request is refused.
    Deny,
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        })
    }
}

/// The answer to a [`Request`]. A value, never an error: whatever goes wrong denies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Allow or deny.
    pub effect: Effect,
    /// Ids of the policies that determined the effect, sorted: on allow the permits
    /// that matched; on deny the forbids that matched and the policies that erred.
    /// Empty for a default deny (no permit matched) or a request that could not be
    /// evaluated at all.
    pub determining_policies: Vec<String>,
    /// What went wrong. Any error denies.
    pub errors: Vec<String>,
}

impl Decision {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    fn refused(error: String) -> Self {
        Self {
            effect: Effect::Deny,
            determining_policies: Vec::new(),
            errors: vec![error],
        }
    }
}

/// Evaluates requests against a compiled policy set and an entity set, both built
/// once (from the store, on change) and only read here: evaluation does no I/O.
///
/// The rule is stricter than Cedar's: allow only if some `permit` matches, no
/// `forbid` matches and no policy erred. Cedar by itself skips a policy that errs, so
/// an erring `forbid` would not stop an allow; here any error denies.
#[derive(Debug, Clone)]
pub struct Engine {
    schema: Schema,
    policies: PolicySet,
    entities: Entities,
    authorizer: Authorizer,
}

impl Engine {
    /// An engine over `policies` and `entities`, which must have been compiled and
    /// built against `schema`.
    pub fn new(schema: Schema, policies: PolicySet, entities: Entities) -> Self {
        Self {
            schema,
            policies,
            entities,
            authorizer: Authorizer::new(),
        }
    }

    /// The same engine with another policy set.
    #[must_use]
    pub fn with_policies(self, policies: PolicySet) -> Self {
        Self { policies, ..self }
    }

    /// The same engine with another entity set.
    #[must_use]
    pub fn with_entities(self, entities: Entities) -> Self {
        Self { entities, ..self }
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The compiled policies.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// The entities.
    pub fn entities(&self) -> &Entities {
        &self.entities
    }

    /// Decides `request`. Default deny; a request that does not match the schema
    /// (wrong principal type for the action, a tool argument of the wrong type, ...)
    /// is denied with an error.
    pub fn evaluate(&self, request: &Request) -> Decision {
        let cedar = match cedar_request(&self.schema, request) {
            Ok(r) => r,
            Err(e) => return Decision::refused(e),
        };
        let response =
            self.authorizer
                .is_authorized(&cedar, self.policies.cedar(), self.entities.cedar());
        let diagnostics = response.diagnostics();
        let mut errors = Vec::new();
        let mut erred: Vec<String> = Vec::new();
        for e in diagnostics.errors() {
            errors.push(e.to_string());
            match e {
                AuthorizationError::PolicyEvaluationError(e) => {
                    erred.push(id_string(e.policy_id()));
                }
            }
        }
        let matched = diagnostics.reason().map(id_string);
        let allowed = response.decision() == cedar_policy::Decision::Allow;
        let mut determining: Vec<String> = if !errors.is_empty() {
            // Cedar's reasons on allow are permits; on deny they are forbids.
            let forbids: Vec<String> = if allowed { vec![] } else { matched.collect() };
            erred.into_iter().chain(forbids).collect()
        } else {
            matched.collect()
        };
        determining.sort_unstable();
        determining.dedup();
        Decision {
            effect: if allowed && errors.is_empty() {
                Effect::Allow
            } else {
                Effect::Deny
            },
            determining_policies: determining,
            errors,
        }
    }
}

fn id_string(id: &PolicyId) -> String {
    AsRef::<str>::as_ref(id).to_owned()
}
