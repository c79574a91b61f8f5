//! The three renderings of a report: a human table, stable JSON and
//! SARIF 2.1.0. None of them can show a secret: findings hold none.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::Report;
use crate::finding::{Finding, FindingKind, RegistrationState, fingerprint};

/// A SARIF rule: one per finding kind, one per credential provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable id, e.g. `mandate/hardcoded-credential/github`.
    pub id: &'static str,
    /// PascalCase name.
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Default SARIF level: `error`, `warning` or `note`.
    pub level: &'static str,
}

const fn rule(
    id: &'static str,
    name: &'static str,
    description: &'static str,
    level: &'static str,
) -> Rule {
    Rule {
        id,
        name,
        description,
        level,
    }
}

/// Every rule a finding can carry, in a fixed order.
pub const RULES: &[Rule] = &[
    rule(
        "mandate/mcp-server",
        "McpServer",
        "An MCP server configured for an MCP client",
        "note",
    ),
    rule(
        "mandate/agent-definition",
        "AgentDefinition",
        "An agent (or model/MCP client) defined with a common framework or SDK",
        "note",
    ),
    rule(
        "mandate/hardcoded-credential/github",
        "HardcodedGithubToken",
        "A GitHub token with a valid checksum, or a fine-grained personal access token",
        "error",
    ),
    rule(
        "mandate/hardcoded-credential/openai",
        "HardcodedOpenaiKey",
        "An OpenAI API key",
        "error",
    ),
    rule(
        "mandate/hardcoded-credential/anthropic",
        "HardcodedAnthropicKey",
        "An Anthropic API key",
        "error",
    ),
    rule(
        "mandate/hardcoded-credential/aws",
        "HardcodedAwsKey",
        "An AWS access key id or secret access key",
        "error",
    ),
    rule(
        "mandate/hardcoded-credential/slack",
        "HardcodedSlackToken",
        "A Slack token or incoming webhook URL",
        "error",
    ),
    rule(
        "mandate/hardcoded-credential/stripe",
        "HardcodedStripeKey",
        "A Stripe live secret or restricted key",
        "error",
    ),
    rule(
        "mandate/hardcoded-credential/google",
        "HardcodedGoogleApiKey",
        "A Google API key",
        "error",
    ),
    rule(
        "mandate/hardcoded-credential/private-key",
        "HardcodedPrivateKey",
        "A PEM private key",
        "error",
    ),
    rule(
        "mandate/hardcoded-credential/generic",
        "HardcodedSecret",
        "A high-entropy literal assigned to a secret-looking name",
        "error",
    ),
];

fn summary(report: &Report) -> Value {
    let count = |k: &str| {
        report
            .findings
            .iter()
            .filter(|f| f.kind_name() == k)
            .count()
    };
    let distinct: BTreeSet<&str> = report
        .findings
        .iter()
        .filter_map(|f| match &f.kind {
            FindingKind::HardcodedCredential(c) => Some(c.fingerprint.as_str()),
            _ => None,
        })
        .collect();
    json!({
        "mcp_servers": count("mcp-server"),
        "agent_definitions": count("agent-definition"),
        "credentials": count("credential"),
        "distinct_secrets": distinct.len(),
    })
}

/// Stable JSON: `format`, `roots`, `files_scanned`, `skipped`, `summary`,
/// and `findings` sorted by path, line and rule.
pub fn to_json(report: &Report) -> Value {
    json!({
        "format": "mandate-discover/v1",
        "tool": { "name": "mandate-discover", "version": env!("CARGO_PKG_VERSION") },
        "roots": report.roots,
        "files_scanned": report.files_scanned,
        "skipped": report.skipped,
        "summary": summary(report),
        "findings": report.findings,
    })
}

fn registry_cell(f: &Finding) -> String {
    match &f.registration {
        None => "-".to_owned(),
        Some(r) => match (r.state, &r.status) {
            (RegistrationState::Registered, Some(s)) if !s.is_empty() => {
                format!("registered ({s})")
            }
            (state, _) => state.as_str().to_owned(),
        },
    }
}

fn detail_cell(f: &Finding, seen: &BTreeMap<&str, usize>) -> String {
    match &f.kind {
        FindingKind::McpServer(s) => {
            let target = s.command.as_deref().or(s.url.as_deref()).unwrap_or("-");
            let mut d = format!("{} {} {target}", s.client, s.transport.as_str());
            if !s.inline_credentials.is_empty() {
                d.push_str(&format!(
                    " [inline credentials: {}]",
                    s.inline_credentials.join(", ")
                ));
            }
            d
        }
        FindingKind::AgentDefinition(a) => {
            format!("{} ({}) {}", a.framework, a.language, a.evidence)
        }
        FindingKind::HardcodedCredential(c) => {
            let mut d = format!(
                "{} {} fp:{}",
                c.description,
                c.masked,
                c.fingerprint.get(..12).unwrap_or("")
            );
            if c.checksum_verified {
                d.push_str(" checksum ok");
            }
            if let Some(x) = &c.detail {
                d.push_str(&format!("; {x}"));
            }
            let n = seen.get(c.fingerprint.as_str()).copied().unwrap_or(1);
            if n > 1 {
                d.push_str(&format!(" (same value in {n} places)"));
            }
            d
        }
    }
}

/// A table for people: kind, location, name or provider, detail, registry
/// state; then what was skipped and a summary.
pub fn to_human(report: &Report) -> String {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &report.findings {
        if let FindingKind::HardcodedCredential(c) = &f.kind {
            *seen.entry(c.fingerprint.as_str()).or_default() += 1;
        }
    }
    let headers = ["KIND", "LOCATION", "NAME", "DETAIL", "REGISTRY"];
    let rows: Vec<[String; 5]> = report
        .findings
        .iter()
        .map(|f| {
            let name = match &f.kind {
                FindingKind::HardcodedCredential(c) => c.provider.clone(),
                _ => f.name().unwrap_or("-").to_owned(),
            };
            [
                f.kind_name().to_owned(),
                format!("{}:{}", f.path, f.line),
                name,
                detail_cell(f, &seen),
                registry_cell(f),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    if !rows.is_empty() {
        line(&headers.map(str::to_owned));
        for r in &rows {
            line(r);
        }
        out.push('\n');
    }
    for s in &report.skipped {
        out.push_str(&format!("skipped {}: {}\n", s.path, s.reason));
    }
    let sum = summary(report);
    let n = |k: &str| sum.get(k).and_then(Value::as_u64).unwrap_or(0);
    out.push_str(&format!(
        "{} files scanned, {} skipped: {} MCP servers, {} agent definitions, {} credentials ({} distinct)\n",
        report.files_scanned,
        report.skipped.len(),
        n("mcp_servers"),
        n("agent_definitions"),
        n("credentials"),
        n("distinct_secrets"),
    ));
    out
}

fn message(f: &Finding) -> String {
    match &f.kind {
        FindingKind::McpServer(s) => {
            let target = s.command.as_deref().or(s.url.as_deref()).unwrap_or("-");
            let mut m = format!(
                "MCP server `{}` ({}, {}): {target}",
                s.name,
                s.client,
                s.transport.as_str()
            );
            if !s.inline_credentials.is_empty() {
                m.push_str(&format!(
                    "; credentials inline in {}",
                    s.inline_credentials.join(", ")
                ));
            }
            m
        }
        FindingKind::AgentDefinition(a) => format!(
            "{} agent definition{} ({}, `{}`)",
            a.framework,
            a.name
                .as_deref()
                .map(|n| format!(" `{n}`"))
                .unwrap_or_default(),
            a.language,
            a.evidence
        ),
        FindingKind::HardcodedCredential(c) => format!(
            "{} {} hard-coded{}",
            c.description,
            c.masked,
            c.detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ),
    }
}

fn level(f: &Finding) -> &'static str {
    match &f.kind {
        FindingKind::HardcodedCredential(_) => "error",
        FindingKind::McpServer(s) if !s.inline_credentials.is_empty() => "warning",
        _ => "note",
    }
}

/// Percent-encodes what a relative URI reference cannot hold as is.
fn uri(path: &str) -> String {
    let mut s = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            ' ' => s.push_str("%20"),
            '%' => s.push_str("%25"),
            '#' => s.push_str("%23"),
            '?' => s.push_str("%3F"),
            '\\' => s.push('/'),
            c => s.push(c),
        }
    }
    s
}

/// SARIF 2.1.0: one run, every rule in `tool.driver.rules`, one result per
/// finding with its location and `partialFingerprints` (the secret's SHA-256
/// for credentials, so duplicates group).
pub fn to_sarif(report: &Report) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": { "text": r.description },
                "defaultConfiguration": { "level": r.level },
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let fingerprints = match &f.kind {
                FindingKind::HardcodedCredential(c) => {
                    json!({ "secretSha256/v1": c.fingerprint })
                }
                _ => json!({
                    "findingSha256/v1": fingerprint(&format!(
                        "{}\n{}\n{}",
                        f.rule_id,
                        f.path,
                        f.name().unwrap_or("")
                    ))
                }),
            };
            let mut result = json!({
                "ruleId": f.rule_id,
                "level": level(f),
                "message": { "text": message(f) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&f.path) },
                        "region": { "startLine": f.line },
                    }
                }],
                "partialFingerprints": fingerprints,
                "properties": serde_json::to_value(f).unwrap_or(Value::Null),
            });
            if let Some(i) = RULES.iter().position(|r| r.id == f.rule_id) {
                result["ruleIndex"] = json!(i);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "mandate-discover",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://example.invalid/mandate",
                    "rules": rules,
                }
            },
            "results": results,
        }]
    })
}
