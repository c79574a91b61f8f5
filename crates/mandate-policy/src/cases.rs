//! Policy test cases: a YAML file of requests and the decisions expected for them,
//! run offline against a policy set, with a printable pass/fail table.
//!
//! ```yaml
//! policies: [business-hours.cedar]   # policy files, relative to this file
//! entities:                          # an EntityData: agents, users, resources, tools
//!   agents:
//!     - {id: invoice-bot, kind: autonomous, owner: ann@example.com, status: active,
//!        env: prod, trust_provider: k8s-prod}
//!   resources:
//!     - {id: github, kind: mcp, owner: ann@example.com, sensitivity: internal}
//! defaults:                          # request fields for cases that omit them;
//!                                    # `context` merges key by key
//!   context: {env: prod, time: "2026-11-16T10:00:00Z"}
//! cases:
//!   - name: allowed at ten on a Monday
//!     request:
//!       principal: {agent: invoice-bot}
//!       action: token:issue
//!       resource: {resource: github}
//!     expect: allow
//!     policies: [business-hours]     # optional: the determining policy ids, any order
//! ```
//!
//! A case's `context.attestation` may also be what `mandate attest --json`
//! prints, inline or as the name of a file relative to the case file
//! (`attestation: attest.json`): its provider kind fills `claims` with the
//! schema's vocabulary and every verified claim becomes an evidence tag, as
//! the token endpoint does.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::{
    Decision, Effect, Engine, Entities, EntityData, Error, PolicySet, PolicySource, Request, Schema,
};

/// A parsed case file.
#[derive(Debug, Clone)]
pub struct CaseFile {
    /// Where the file was read from; policy paths are relative to its directory.
    pub path: PathBuf,
    /// Policy files the cases are meant for, relative to the case file.
    pub policies: Vec<PathBuf>,
    /// The entities the cases see.
    pub entities: EntityData,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// One request and the decision expected for it.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the case shows.
    pub name: String,
    /// The request, with the file's defaults filled in.
    pub request: Request,
    /// The expected effect.
    pub expect: Effect,
    /// The expected determining policy ids, if the case says.
    pub policies: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    policies: Vec<PathBuf>,
    #[serde(default)]
    entities: EntityData,
    #[serde(default)]
    defaults: Option<Value>,
    cases: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    request: Value,
    expect: Effect,
    #[serde(default)]
    policies: Option<Vec<String>>,
}

impl CaseFile {
    /// Reads and parses a case file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses case file text; `path` names it and anchors relative policy paths.
    pub fn parse(path: impl AsRef<Path>, text: &str) -> Result<Self, Error> {
        let path = path.as_ref();
        let invalid = |message: String| Error::Cases {
            file: path.to_owned(),
            message,
        };
        let raw: RawFile = serde_norway::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut cases = Vec::with_capacity(raw.cases.len());
        for (i, c) in raw.cases.into_iter().enumerate() {
            let mut request = raw.defaults.clone().unwrap_or(Value::Null);
            overlay(&mut request, c.request);
            let at = |e: String| invalid(format!("case {} `{}`: {e}", i + 1, c.name));
            attestation_report(&mut request, path.parent().unwrap_or(Path::new(""))).map_err(at)?;
            let request = serde_json::from_value(request).map_err(|e| at(e.to_string()))?;
            cases.push(Case {
                name: c.name,
                request,
                expect: c.expect,
                policies: c.policies,
            });
        }
        Ok(Self {
            path: path.to_owned(),
            policies: raw.policies,
            entities: raw.entities,
            cases,
        })
    }

    /// Reads the policy files the case file names.
    pub fn policy_sources(&self) -> Result<Vec<PolicySource>, Error> {
        let dir = self.path.parent().unwrap_or(Path::new(""));
        self.policies
            .iter()
            .map(|p| PolicySource::read(dir.join(p)))
            .collect()
    }

    /// An engine over `policies` and the file's entities.
    pub fn engine(&self, schema: &Schema, policies: PolicySet) -> Result<Engine, Error> {
        let entities = Entities::build(schema, &self.entities)?;
        Ok(Engine::new(schema.clone(), policies, entities))
    }

    /// Runs every case against `engine`.
    pub fn run(&self, engine: &Engine) -> Report {
        let results = self
            .cases
            .iter()
            .map(|case| {
                let decision = engine.evaluate(&case.request);
                let policies_ok = case.policies.as_ref().is_none_or(|expected| {
                    let mut expected = expected.clone();
                    expected.sort_unstable();
                    expected.dedup();
                    expected == decision.determining_policies
                });
                CaseResult {
                    name: case.name.clone(),
                    expected: case.expect,
                    expected_policies: case.policies.clone(),
                    passed: decision.effect == case.expect && policies_ok,
                    decision,
                }
            })
            .collect();
        Report { results }
    }
}

/// Loads a case file, compiles the policy files it names against the shipped
/// schema, and runs its cases. Errors are for files that cannot be used at all;
/// failing cases are in the report.
pub fn run_file(path: impl AsRef<Path>) -> Result<Report, Error> {
    let file = CaseFile::load(path)?;
    if file.policies.is_empty() {
        return Err(Error::Cases {
            file: file.path.clone(),
            message: "names no policy files (`policies:`)".to_owned(),
        });
    }
    let schema = Schema::mandate()?;
    let policies = PolicySet::compile(&schema, &file.policy_sources()?)?;
    let engine = file.engine(&schema, policies)?;
    Ok(file.run(&engine))
}

/// Replaces a `context.attestation` given as `mandate attest --json` prints
/// it (inline, or the name of a file holding it, relative to the case file)
/// by what policies see of it: the vocabulary its provider kind fills in
/// `claims`, every verified claim in `evidence`.
fn attestation_report(request: &mut Value, dir: &Path) -> Result<(), String> {
    let Some(slot) = request
        .get_mut("context")
        .and_then(|c| c.get_mut("attestation"))
    else {
        return Ok(());
    };
    let report = match slot {
        Value::String(file) => {
            let path = dir.join(&*file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("attestation file `{}`: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| {
                format!(
                    "attestation file `{}` is not what `mandate attest --json` prints: {e}",
                    path.display()
                )
            })?
        }
        Value::Object(m) if m.contains_key("provider_kind") => slot.take(),
        _ => return Ok(()),
    };
    #[derive(Deserialize)]
    struct Report {
        provider: String,
        provider_kind: Option<mandate_core::ProviderKind>,
        outcome: String,
        #[serde(default)]
        claims: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        reason: Option<String>,
    }
    let r: Report = serde_json::from_value(report)
        .map_err(|e| format!("attestation is not what `mandate attest --json` prints: {e}"))?;
    if r.outcome == "refused" {
        return Err(format!(
            "the attestation was refused, so no policy sees it: {}",
            r.reason.unwrap_or_default()
        ));
    }
    let kind = r.provider_kind.ok_or_else(|| {
        format!(
            "the attestation names no provider kind (provider `{}`)",
            r.provider
        )
    })?;
    *slot = serde_json::to_value(crate::Attestation::verified(r.provider, kind, &r.claims))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Overlays a case's request on the defaults: each field the case gives replaces the
/// default's, except `context`, which merges key by key (recursively).
fn overlay(defaults: &mut Value, case: Value) {
    match (defaults, case) {
        (Value::Object(defaults), Value::Object(case)) => {
            for (key, value) in case {
                match (key.as_str(), defaults.get_mut(&key)) {
                    ("context", Some(slot)) => merge(slot, value),
                    _ => {
                        defaults.insert(key, value);
                    }
                }
            }
        }
        (defaults, case) => *defaults = case,
    }
}

/// Overlays `top` on `base`: objects merge key by key, anything else replaces.
fn merge(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Object(base), Value::Object(top)) => {
            for (key, value) in top {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, top) => *base = top,
    }
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// The expected effect.
    pub expected: Effect,
    /// The expected determining policies, if the case said.
    pub expected_policies: Option<Vec<String>>,
    /// What the engine decided.
    pub decision: Decision,
    /// Whether the decision is what the case expected.
    pub passed: bool,
}

/// The outcome of a case file. `Display` prints the pass/fail table.
#[derive(Debug, Clone)]
pub struct Report {
    /// One result per case, in file order.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.passed)
    }

    /// The cases that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.results.iter().filter(|r| !r.passed)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.results.len().to_string().len().max(1);
        writeln!(f, "{:>width$}  RESULT  EXPECTED  ACTUAL  CASE", "#")?;
        for (i, r) in self.results.iter().enumerate() {
            let mark = if r.passed { "pass" } else { "FAIL" };
            writeln!(
                f,
                "{:>width$}  {mark:<6}  {:<8}  {:<6}  {}",
                i + 1,
                r.expected.to_string(),
                r.decision.effect.to_string(),
                r.name
            )?;
            if !r.passed {
                let indent = " ".repeat(width + 2);
                writeln!(
                    f,
                    "{indent}determining: [{}]",
                    r.decision.determining_policies.join(", ")
                )?;
                if let Some(expected) = &r.expected_policies {
                    writeln!(f, "{indent}expected:    [{}]", expected.join(", "))?;
                }
                for e in &r.decision.errors {
                    writeln!(f, "{indent}error: {e}")?;
                }
            }
        }
        let failed = self.failures().count();
        write!(f, "{} passed, {failed} failed", self.results.len() - failed)
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn defaults_merge_under_each_case() {
        let yaml = r#"
defaults:
  context: {env: prod, risk: 10, args: {repo: a/b}}
cases:
  - name: c
    request:
      principal: {agent: x}
      action: token:issue
      resource: {resource: r}
      context: {risk: 80, args: {title: t}}
    expect: deny
"#;
        let file = CaseFile::parse("c.yaml", yaml).unwrap();
        let ctx = &file.cases[0].request.context;
        assert_eq!(ctx.env, "prod");
        assert_eq!(ctx.risk.value(), 80);
        assert_eq!(ctx.args.len(), 2, "args merged key by key");
    }

    #[test]
    fn entity_references_replace_defaults() {
        let yaml = r#"
defaults: {principal: {agent: x}, action: "token:issue", resource: {resource: r}}
cases:
  - {name: c, request: {principal: {user: u}}, expect: deny}
"#;
        let file = CaseFile::parse("c.yaml", yaml).unwrap();
        assert_eq!(
            file.cases[0].request.principal,
            crate::EntityRef::User("u".into())
        );
    }

    #[test]
    fn bad_case_names_itself() {
        let yaml = "cases:\n  - name: broken\n    request: {action: nope}\n    expect: allow\n";
        let err = CaseFile::parse("c.yaml", yaml).unwrap_err().to_string();
        assert!(
            err.starts_with("invalid test cases in `c.yaml`: case 1 `broken`:"),
            "{err}"
        );
    }

    #[test]
    fn yaml_errors_have_locations() {
        let yaml = "cases:\n  - name: x\n    expect: maybe\n";
        let err = CaseFile::parse("c.yaml", yaml).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }
}
