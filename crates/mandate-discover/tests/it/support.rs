//! Shared helpers: where the corpus is, its answer key, one scan of it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mandate_discover::{Finding, FindingKind, Report, ScanOptions, fingerprint, scan};
use serde_json::Value;

/// `tests/fixtures/discovery` at the repository root.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/discovery")
}

/// The corpus of project trees.
pub fn corpus() -> PathBuf {
    fixtures().join("corpus")
}

/// `EXPECTED.json`.
pub fn expected() -> &'static Value {
    static E: OnceLock<Value> = OnceLock::new();
    E.get_or_init(|| {
        let text = std::fs::read_to_string(fixtures().join("EXPECTED.json"))
            .unwrap_or_else(|e| panic!("cannot read EXPECTED.json: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("EXPECTED.json: {e}"))
    })
}

/// One scan of the corpus with default options, paths made relative to it.
pub fn report() -> &'static Report {
    static R: OnceLock<Report> = OnceLock::new();
    R.get_or_init(|| {
        let mut r = scan(&[corpus()], &ScanOptions::default())
            .unwrap_or_else(|e| panic!("scan failed: {e}"));
        let prefix = format!("{}/", mandate_discover_display(&corpus()));
        for f in &mut r.findings {
            f.path = f.path.strip_prefix(&prefix).unwrap_or(&f.path).to_owned();
        }
        for s in &mut r.skipped {
            s.path = s.path.strip_prefix(&prefix).unwrap_or(&s.path).to_owned();
        }
        r
    })
}

fn mandate_discover_display(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

/// Findings of one rule.
pub fn of_rule(rule: &str) -> Vec<&'static Finding> {
    report()
        .findings
        .iter()
        .filter(|f| f.rule_id == rule)
        .collect()
}

/// The credential details of one provider's findings.
pub fn credentials(
    provider: &str,
) -> Vec<(&'static Finding, &'static mandate_discover::Credential)> {
    report()
        .findings
        .iter()
        .filter_map(|f| match &f.kind {
            FindingKind::HardcodedCredential(c) if c.provider == provider => Some((f, c)),
            _ => None,
        })
        .collect()
}

/// The full value of every planted secret, read back from the corpus by the
/// answer key's location and checked against its fingerprint.
pub fn planted_secrets() -> Vec<String> {
    let e = expected();
    let mut located: Vec<&Value> = e["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f.get("fingerprint").is_some())
        .collect();
    located.extend(e["other_secrets"].as_array().into_iter().flatten());
    let mut out = Vec::new();
    for item in located {
        let path = item["path"].as_str().unwrap_or_default();
        let text = std::fs::read_to_string(corpus().join(path))
            .unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        let value = if item.get("pem").is_some() {
            text.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>()
        } else {
            let line = item["line"].as_u64().unwrap_or(0) as usize;
            let col = item["column"].as_u64().unwrap_or(0) as usize;
            let len = item["length"].as_u64().unwrap_or(0) as usize;
            let l = text.lines().nth(line - 1).unwrap_or_default();
            l[col..col + len].to_owned()
        };
        if let Some(fp) = item.get("fingerprint").and_then(Value::as_str) {
            assert_eq!(
                fingerprint(&value),
                fp,
                "EXPECTED.json locates {path} wrongly"
            );
        }
        out.push(value);
    }
    out.sort();
    out.dedup();
    out
}
