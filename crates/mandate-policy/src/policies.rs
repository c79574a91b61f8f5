//! Compiling named policy sources into one validated policy set.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{PolicyId, ValidationMode, ValidationWarning, Validator};
use serde::Serialize;

use crate::index::Index;
use crate::{Error, Schema, SourceDiagnostic};

/// The text of one policy file and the name it goes by in ids and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// Usually the file's path.
    pub name: String,
    /// Policies in Cedar syntax.
    pub text: String,
}

impl PolicySource {
    /// A source named `name`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// Reads a source from a file; its name is the path as given.
    pub fn read(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::new(path.display().to_string(), text))
    }
}

/// Whether a policy permits or forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyEffect {
    /// `permit (...)`.
    Permit,
    /// `forbid (...)`.
    Forbid,
}

/// Where a policy of a set came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyInfo {
    /// Its id: the `@id("...")` annotation, else `<source name>:<index in file>` (from 0).
    pub id: String,
    /// Permit or forbid.
    pub effect: PolicyEffect,
    /// The source's name.
    pub file: String,
    /// 1-based line where the policy starts.
    pub line: u32,
    /// 1-based column where the policy starts.
    pub column: u32,
}

/// A compiled policy set: every policy parsed, given a unique id and validated
/// against the schema in strict mode (a policy that can never apply is an error too).
/// Cheap to share; evaluation only reads it.
#[derive(Clone)]
pub struct PolicySet {
    cedar: cedar_policy::PolicySet,
    index: Index,
    policies: Vec<PolicyInfo>,
    warnings: Vec<SourceDiagnostic>,
    /// The context attributes the policies read, with the ids of the
    /// policies reading each.
    reads: BTreeMap<ContextPath, Vec<String>>,
    /// Whether some policy may read an `Evidence` entity: it reads
    /// `context.attestation.evidence` or names the type at all.
    evidence: bool,
    /// Whether some policy may read a `User` entity: it reads
    /// `context.on_behalf_of` or names the type at all.
    user: bool,
}

/// A path of attributes below `context`, e.g. `attestation.claims.namespace`.
pub type ContextPath = Vec<String>;

impl PolicySet {
    /// An empty set: it denies everything.
    pub fn empty() -> Self {
        Self {
            cedar: cedar_policy::PolicySet::new(),
            index: Index::default(),
            policies: Vec::new(),
            warnings: Vec::new(),
            reads: BTreeMap::new(),
            evidence: false,
            user: false,
        }
    }

    /// Parses, names and validates every policy of every source. Any problem in any
    /// source fails the whole set, with every problem found reported with its
    /// location. Templates are refused: Mandate has no template links.
    pub fn compile(schema: &Schema, sources: &[PolicySource]) -> Result<Self, Error> {
        let mut diagnostics = Vec::new();
        let mut cedar = cedar_policy::PolicySet::new();
        let mut policies: Vec<PolicyInfo> = Vec::new();
        // Policy id → index of its source, to place validation errors.
        let mut origin: HashMap<String, usize> = HashMap::new();
        let mut reads: BTreeMap<ContextPath, Vec<String>> = BTreeMap::new();
        let mut evidence = false;
        let mut user = false;

        for (source_index, source) in sources.iter().enumerate() {
            let (name, text) = (source.name.as_str(), source.text.as_str());
            let parsed = match cedar_policy::PolicySet::from_str(text) {
                Ok(parsed) => parsed,
                Err(errors) => {
                    for e in errors.iter() {
                        diagnostics.extend(SourceDiagnostic::from_cedar(name, text, e));
                    }
                    continue;
                }
            };
            for t in parsed.templates() {
                let body = t.to_cedar();
                let at = text.find(&body).unwrap_or(0);
                let slot = ["?principal", "?resource"]
                    .iter()
                    .filter_map(|s| body.find(s))
                    .min()
                    .unwrap_or(0);
                diagnostics.push(SourceDiagnostic::at_offset(
                    name,
                    text,
                    at + slot,
                    "templates are not supported: write a static policy".to_owned(),
                ));
            }

            // Cedar names a file's policies `policy0`, `policy1`, ... in source order.
            let mut in_file: Vec<_> = parsed
                .policies()
                .map(|p| (default_index(p.id()), p))
                .collect();
            in_file.sort_by_key(|(index, _)| *index);
            let mut cursor = 0;
            for (index, policy) in in_file {
                let offset = policy
                    .to_cedar()
                    .and_then(|body| text.get(cursor..)?.find(&body).map(|o| cursor + o))
                    .unwrap_or(cursor);
                cursor = offset + 1;
                let at = |message: String| SourceDiagnostic::at_offset(name, text, offset, message);
                let id = match policy.annotation("id") {
                    Some(id) if id.trim().is_empty() => {
                        diagnostics.push(at("`@id` annotation is empty".to_owned()));
                        continue;
                    }
                    Some(id) => id.to_owned(),
                    None => format!("{name}:{index}"),
                };
                let location = at(String::new());
                if let Some(first) = policies.iter().find(|p| p.id == id) {
                    diagnostics.push(at(format!(
                        "duplicate policy id `{id}`, first used at {}:{}:{}",
                        first.file, first.line, first.column
                    )));
                    continue;
                }
                match policy.to_json() {
                    Ok(est) => {
                        for path in context_paths(&est) {
                            reads.entry(path).or_default().push(id.clone());
                        }
                        // An entity literal or type test reads them too.
                        let text = est.to_string();
                        evidence |= text.contains("Evidence");
                        user |= text.contains("User");
                    }
                    // Unknown: assume it reads everything.
                    Err(_) => (evidence, user) = (true, true),
                }
                if let Err(e) = cedar.add(policy.new_id(PolicyId::new(&id))) {
                    diagnostics.push(at(e.to_string()));
                    continue;
                }
                policies.push(PolicyInfo {
                    id: id.clone(),
                    effect: match policy.effect() {
                        cedar_policy::Effect::Permit => PolicyEffect::Permit,
                        cedar_policy::Effect::Forbid => PolicyEffect::Forbid,
                    },
                    file: name.to_owned(),
                    line: location.line,
                    column: location.column,
                });
                origin.insert(id, source_index);
            }
        }

        let validator = Validator::new(schema.cedar().clone());
        let result = validator.validate(&cedar, ValidationMode::Strict);
        let locate = |id: &PolicyId, e: &dyn miette::Diagnostic| {
            let source = origin
                .get(AsRef::<str>::as_ref(id))
                .and_then(|&i| sources.get(i));
            match source {
                Some(s) => SourceDiagnostic::from_cedar(&s.name, &s.text, e),
                None => SourceDiagnostic::from_cedar("<unknown>", "", e),
            }
        };
        for e in result.validation_errors() {
            diagnostics.extend(locate(e.policy_id(), e));
        }
        // A policy that can never apply is a mistake, and a silent hole when it is a
        // `forbid` (e.g. one testing a tool argument the schema does not declare).
        let (impossible, warnings): (Vec<_>, Vec<_>) = result
            .validation_warnings()
            .partition(|w| matches!(w, ValidationWarning::ImpossiblePolicy(_)));
        for w in impossible {
            diagnostics.extend(locate(w.policy_id(), w));
        }
        let warnings = warnings
            .into_iter()
            .flat_map(|w| locate(w.policy_id(), w))
            .collect();

        if !diagnostics.is_empty() {
            return Err(Error::Policies { diagnostics });
        }
        Ok(Self {
            index: Index::build(schema, &cedar)?,
            cedar,
            policies,
            warnings,
            evidence: evidence
                || reads.contains_key(&vec!["attestation".to_owned(), "evidence".to_owned()]),
            user: user || reads.contains_key(&vec!["on_behalf_of".to_owned()]),
            reads,
        })
    }

    /// Every path below `context` some policy reads (`context.a.b` and
    /// `context.a has b` both read `a.b`; the prefixes are read too), with
    /// the ids of the policies reading it.
    pub fn context_reads(&self) -> &BTreeMap<ContextPath, Vec<String>> {
        &self.reads
    }

    /// The names below `context.<prefix...>` some policy reads, e.g. the claim
    /// names for `["attestation", "claims"]`, with the ids of the policies.
    pub fn reads_below(&self, prefix: &[&str]) -> BTreeMap<&str, &[String]> {
        self.reads
            .iter()
            .filter(|(p, _)| {
                p.len() == prefix.len() + 1 && p.iter().zip(prefix).all(|(a, b)| a == b)
            })
            .filter_map(|(p, ids)| Some((p.last()?.as_str(), ids.as_slice())))
            .collect()
    }

    /// Whether some policy may read the attestation's `Evidence` entity, so
    /// a request with an attestation needs it in its entities. Without it,
    /// `hasTag` would be false and a `forbid` on a tag would not fire.
    pub(crate) fn reads_evidence(&self) -> bool {
        self.evidence
    }

    /// Whether some policy may read the `User` entity of the user on whose
    /// behalf a request is made (else it is not built for the request).
    pub(crate) fn reads_user(&self) -> bool {
        self.user
    }

    /// The policies, in source order.
    pub fn policies(&self) -> &[PolicyInfo] {
        &self.policies
    }

    /// Validator warnings (e.g. confusable characters); they do not stop a set.
    pub fn warnings(&self) -> &[SourceDiagnostic] {
        &self.warnings
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// The warning for a set that can allow nothing: with no `permit`, every
    /// token request and every gateway call is denied.
    pub fn no_permit_warning(&self) -> Option<&'static str> {
        (!self
            .policies
            .iter()
            .any(|p| p.effect == PolicyEffect::Permit))
        .then_some(
            "the set has no `permit` policy: as the active set it denies every token request \
             and every gateway call (a push replaces the whole set; include every file)",
        )
    }

    /// Whether there is no policy (so everything is denied).
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The Cedar policy set, with policies renamed to their Mandate ids.
    pub fn cedar(&self) -> &cedar_policy::PolicySet {
        &self.cedar
    }

    pub(crate) fn index(&self) -> &Index {
        &self.index
    }
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("policies", &self.policies)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

impl Default for PolicySet {
    fn default() -> Self {
        Self::empty()
    }
}

/// The attribute paths below `context` a policy's JSON form (EST) reads:
/// every `.`/`has` chain that starts at the variable `context`.
fn context_paths(est: &serde_json::Value) -> Vec<ContextPath> {
    use serde_json::Value;
    /// The path of `e` below `context`, when it is an access chain from it.
    fn chain(e: &Value) -> Option<ContextPath> {
        if e.get("Var").and_then(Value::as_str) == Some("context") {
            return Some(Vec::new());
        }
        let access = e.get(".")?;
        let mut path = chain(access.get("left")?)?;
        path.push(access.get("attr")?.as_str()?.to_owned());
        Some(path)
    }
    fn walk(v: &Value, out: &mut Vec<ContextPath>) {
        match v {
            Value::Object(m) => {
                for op in [".", "has"] {
                    if let Some(access) = m.get(op)
                        && let (Some(left), Some(attr)) = (
                            access.get("left"),
                            access.get("attr").and_then(Value::as_str),
                        )
                        && let Some(mut path) = chain(left)
                    {
                        path.push(attr.to_owned());
                        out.push(path);
                    }
                }
                for x in m.values() {
                    walk(x, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(est, &mut out);
    out.sort();
    out.dedup();
    out
}

/// `N` of the default id `policyN` Cedar gives the N-th policy of a file.
fn default_index(id: &PolicyId) -> usize {
    AsRef::<str>::as_ref(id)
        .strip_prefix("policy")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}
