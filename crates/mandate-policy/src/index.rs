//! A scope index over a policy set, so an evaluation only hands Cedar the policies
//! whose scope can match the request.
//!
//! Cedar evaluates every policy of the set it is given, and each costs about a
//! microsecond. A policy whose scope does not match a request is neither satisfied
//! nor can it err (scope constraints are `==`, `in` and `is` tests, checked before
//! the `when`/`unless` conditions and without error), so leaving it out changes
//! nothing about the decision. The index only prunes on what is certain: the action,
//! and `principal == ...` / `resource == ...` scopes. Everything else stays in.
//! Unions of the subsets are built ahead, so one evaluation makes at most two Cedar
//! calls.

use std::collections::{HashMap, HashSet};

use cedar_policy::{ActionConstraint, EntityUid, Policy, PrincipalConstraint, ResourceConstraint};

use crate::{Action, Error, Schema};

/// Policy subsets per action, then by the `==` parts of their scopes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    /// Indexed by [`Action::index`].
    by_action: Vec<Buckets>,
}

/// The policies that can apply to one action. With G the policies with neither
/// `principal ==` nor `resource ==`, P[p] those with only `principal == p`, R[r]
/// those with only `resource == r` and B[p][r] those with both, a request by `p` on
/// `r` needs G ∪ P[p] ∪ R[r] ∪ B[p][r]: at most two Cedar calls with the unions
/// built here.
#[derive(Debug, Clone, Default)]
struct Buckets {
    /// G.
    general: Option<cedar_policy::PolicySet>,
    /// G ∪ P[p], for each `p` with any P[p] (else G alone applies).
    principal: HashMap<EntityUid, cedar_policy::PolicySet>,
    /// R[r].
    resource: HashMap<EntityUid, cedar_policy::PolicySet>,
    /// R[r] ∪ B[p][r], for each `p`, `r` with any B[p][r] (else R[r] alone applies).
    both: HashMap<EntityUid, HashMap<EntityUid, cedar_policy::PolicySet>>,
}

/// The policies of one action, sorted by scope, before the unions are built.
#[derive(Default)]
struct Sorted<'a> {
    general: Vec<&'a Policy>,
    principal: HashMap<EntityUid, Vec<&'a Policy>>,
    resource: HashMap<EntityUid, Vec<&'a Policy>>,
    both: HashMap<EntityUid, HashMap<EntityUid, Vec<&'a Policy>>>,
}

impl Index {
    /// Sorts every policy of `set` into the buckets of the actions it can apply to.
    pub(crate) fn build(schema: &Schema, set: &cedar_policy::PolicySet) -> Result<Self, Error> {
        let lean = set
            .policies()
            .map(without_source_locations)
            .collect::<Result<Vec<_>, _>>()?;
        let mut sorted: Vec<Sorted<'_>> = Action::ALL.iter().map(|_| Sorted::default()).collect();
        for policy in &lean {
            let principal = match policy.principal_constraint() {
                PrincipalConstraint::Eq(uid) => Some(uid),
                _ => None,
            };
            let resource = match policy.resource_constraint() {
                ResourceConstraint::Eq(uid) => Some(uid),
                _ => None,
            };
            let constraint = policy.action_constraint();
            for action in Action::ALL {
                let groups = schema.action_groups(action);
                if !applies(&constraint, schema.action_uid(action), groups) {
                    continue;
                }
                let Some(s) = sorted.get_mut(action.index()) else {
                    continue;
                };
                match (&principal, &resource) {
                    (None, None) => s.general.push(policy),
                    (Some(p), None) => s.principal.entry(p.clone()).or_default().push(policy),
                    (None, Some(r)) => s.resource.entry(r.clone()).or_default().push(policy),
                    (Some(p), Some(r)) => s
                        .both
                        .entry(p.clone())
                        .or_default()
                        .entry(r.clone())
                        .or_default()
                        .push(policy),
                }
            }
        }

        let mut by_action = Vec::with_capacity(sorted.len());
        for s in sorted {
            let none: &[&Policy] = &[];
            let mut b = Buckets::default();
            if !s.general.is_empty() {
                b.general = Some(union(&[&s.general])?);
            }
            for (p, own) in &s.principal {
                b.principal.insert(p.clone(), union(&[&s.general, own])?);
            }
            for (r, own) in &s.resource {
                b.resource.insert(r.clone(), union(&[own])?);
            }
            for (p, by_resource) in &s.both {
                let mut inner = HashMap::with_capacity(by_resource.len());
                for (r, own) in by_resource {
                    let shared = s.resource.get(r).map_or(none, Vec::as_slice);
                    inner.insert(r.clone(), union(&[shared, own])?);
                }
                b.both.insert(p.clone(), inner);
            }
            by_action.push(b);
        }
        Ok(Self { by_action })
    }

    /// The (at most two, disjoint) policy subsets whose union holds every policy of
    /// the set whose scope can match `(principal, action, resource)`.
    pub(crate) fn candidates<'a>(
        &'a self,
        principal: &EntityUid,
        action: Action,
        resource: &EntityUid,
    ) -> impl Iterator<Item = &'a cedar_policy::PolicySet> + 'a {
        let buckets = self.by_action.get(action.index());
        let first = buckets.and_then(|b| b.principal.get(principal).or(b.general.as_ref()));
        let second = buckets.and_then(|b| {
            b.both
                .get(principal)
                .and_then(|m| m.get(resource))
                .or_else(|| b.resource.get(resource))
        });
        [first, second].into_iter().flatten()
    }
}

/// Whether an action constraint can match `action`, whose groups are `groups`.
fn applies(constraint: &ActionConstraint, action: &EntityUid, groups: &HashSet<EntityUid>) -> bool {
    match constraint {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(uid) => uid == action,
        ActionConstraint::In(uids) => uids.iter().any(|u| u == action || groups.contains(u)),
    }
}

/// The same policy rebuilt from its JSON form, which carries no source locations:
/// Cedar then clones no location at each step of an evaluation, which makes it about
/// a fifth faster. Evaluation errors name the policy by id either way.
fn without_source_locations(policy: &Policy) -> Result<Policy, Error> {
    let json = policy.to_json().map_err(|e| internal(&e))?;
    Policy::from_json(Some(policy.id().clone()), json).map_err(|e| internal(&e))
}

/// One Cedar policy set holding the policies of `parts`.
fn union(parts: &[&[&Policy]]) -> Result<cedar_policy::PolicySet, Error> {
    let mut set = cedar_policy::PolicySet::new();
    for policy in parts.iter().copied().flatten() {
        set.add((*policy).clone()).map_err(|e| internal(&e))?;
    }
    Ok(set)
}

/// An error building the index of a set that compiled: a bug, reported like a
/// policy problem so the set never becomes active.
fn internal(e: &dyn std::fmt::Display) -> Error {
    Error::Policies {
        diagnostics: vec![crate::SourceDiagnostic {
            file: "<index>".to_owned(),
            line: 1,
            column: 1,
            message: format!("cannot index the policy set: {e}"),
        }],
    }
}
