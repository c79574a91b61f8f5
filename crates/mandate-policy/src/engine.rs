//! The engine: compiled policies, schema and entities, and the decision rule.

use cedar_policy::{AuthorizationError, Authorizer, PolicyId};
use serde::{Deserialize, Serialize};

use crate::convert::cedar_request;
use crate::{Entities, PolicySet, Request, Schema, UserEntity};

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
        self.evaluate_for(request, None)
    }

    /// As [`Engine::evaluate`], with `user` (the one on whose behalf the
    /// request is made, as its verified token describes them: email and
    /// groups) an entity of this request alone, unless the entity set holds
    /// that user already.
    pub fn evaluate_for(&self, request: &Request, user: Option<&UserEntity>) -> Decision {
        let principal = self.schema.uid(&request.principal);
        let resource = self.schema.uid(&request.resource);
        let cedar = match cedar_request(&self.schema, request, &principal, &resource) {
            Ok(r) => r,
            Err(e) => return Decision::refused(e),
        };

        // Cedar runs once per non-empty bucket of candidate policies; the buckets are
        // disjoint and together hold every policy whose scope can match.
        let mut permits: Vec<String> = Vec::new();
        let mut forbids: Vec<String> = Vec::new();
        let mut erred: Vec<String> = Vec::new();
        let mut errors: Vec<String> = Vec::new();
        let candidates = self
            .policies
            .index()
            .candidates(&principal, request.action, &resource);
        // The attestation's evidence (when some policy reads it) and the
        // user are entities of this request alone, added to a copy of the
        // shared set.
        let extended;
        let entities = match self.request_entities(request, user) {
            Ok(None) => self.entities.cedar(),
            Ok(Some(e)) => {
                extended = e;
                &extended
            }
            Err(e) => return Decision::refused(e),
        };
        for set in candidates {
            let response = self.authorizer.is_authorized(&cedar, set, entities);
            let diagnostics = response.diagnostics();
            for e in diagnostics.errors() {
                errors.push(e.to_string());
                match e {
                    AuthorizationError::PolicyEvaluationError(e) => {
                        erred.push(id_string(e.policy_id()));
                    }
                }
            }
            // Cedar's reasons are the satisfied permits on allow and the satisfied
            // forbids on deny (where satisfied permits no longer matter).
            let reasons = diagnostics.reason().map(id_string);
            match response.decision() {
                cedar_policy::Decision::Allow => permits.extend(reasons),
                cedar_policy::Decision::Deny => forbids.extend(reasons),
            }
        }

        let (effect, mut determining) = if !errors.is_empty() {
            erred.extend(forbids);
            (Effect::Deny, erred)
        } else if !forbids.is_empty() {
            (Effect::Deny, forbids)
        } else if !permits.is_empty() {
            (Effect::Allow, permits)
        } else {
            (Effect::Deny, Vec::new())
        };
        determining.sort_unstable();
        determining.dedup();
        Decision {
            effect,
            determining_policies: determining,
            errors,
        }
    }
}

impl Engine {
    /// The shared entities with this request's own added, or `None` when it
    /// has none.
    fn request_entities(
        &self,
        request: &Request,
        user: Option<&UserEntity>,
    ) -> Result<Option<cedar_policy::Entities>, String> {
        let mut extra = Vec::new();
        if let Some(a) = &request.context.attestation
            && self.policies.reads_evidence()
        {
            extra.push(crate::convert::evidence_entity(&self.schema, a)?);
        }
        if let Some(u) = user.filter(|_| self.policies.reads_user()) {
            let e = crate::entities::user_entity(&self.schema, u).map_err(|e| e.to_string())?;
            if self.entities.cedar().get(&e.uid()).is_none() {
                extra.push(e);
            }
        }
        if extra.is_empty() {
            return Ok(None);
        }
        self.entities
            .cedar()
            .clone()
            .add_entities(extra, None)
            .map(Some)
            .map_err(|e| format!("request entities: {e}"))
    }
}

fn id_string(id: &PolicyId) -> String {
    AsRef::<str>::as_ref(id).to_owned()
}
