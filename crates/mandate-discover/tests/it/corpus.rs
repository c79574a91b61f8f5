//! The whole corpus against its answer key: precision and recall, what must
//! not be reported, and masking in every output format.

use std::collections::BTreeSet;

use mandate_discover::{FindingKind, to_human, to_json, to_sarif};
use serde_json::Value;

use crate::support::{expected, planted_secrets, report};

type Key = (String, String, usize);

fn expected_keys() -> BTreeSet<Key> {
    expected()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap().to_owned(),
                f["path"].as_str().unwrap().to_owned(),
                f["line"].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

#[test]
fn precision_and_recall_against_expected() {
    let want = expected_keys();
    let got: BTreeSet<Key> = report()
        .findings
        .iter()
        .map(|f| (f.rule_id.clone(), f.path.clone(), f.line))
        .collect();
    let tp = got.intersection(&want).count();
    let false_pos: Vec<&Key> = got.difference(&want).collect();
    let false_neg: Vec<&Key> = want.difference(&got).collect();
    let precision = tp as f64 / got.len().max(1) as f64;
    let recall = tp as f64 / want.len().max(1) as f64;
    println!(
        "discovery corpus: precision = {precision:.3}, recall = {recall:.3} \
         ({tp} true positives, {} false positives, {} false negatives, {} expected)",
        false_pos.len(),
        false_neg.len(),
        want.len()
    );
    for k in &false_pos {
        println!("  false positive: {k:?}");
    }
    for k in &false_neg {
        println!("  false negative: {k:?}");
    }
    assert_eq!(recall, 1.0, "missed: {false_neg:#?}");
    assert!(precision >= 0.95, "precision {precision}: {false_pos:#?}");
}

#[test]
fn expected_names_clients_and_fingerprints_match() {
    for e in expected()["findings"].as_array().unwrap() {
        let (path, line) = (
            e["path"].as_str().unwrap(),
            e["line"].as_u64().unwrap() as usize,
        );
        let rule = e["rule_id"].as_str().unwrap();
        let found: Vec<_> = report()
            .findings
            .iter()
            .filter(|f| f.path == path && f.line == line && f.rule_id == rule)
            .collect();
        assert!(!found.is_empty(), "{rule} at {path}:{line} not found");
        if let Some(name) = e.get("name").and_then(Value::as_str) {
            assert!(
                found.iter().any(|f| f.name() == Some(name)),
                "{path}:{line}: want name {name}, got {found:?}"
            );
        }
        if let Some(client) = e.get("client").and_then(Value::as_str) {
            assert!(
                found
                    .iter()
                    .any(|f| matches!(&f.kind, FindingKind::McpServer(s) if s.client == client))
            );
        }
        if let Some(fp) = e.get("fingerprint").and_then(Value::as_str) {
            assert!(
                found.iter().any(
                    |f| matches!(&f.kind, FindingKind::HardcodedCredential(c) if c.fingerprint == fp)
                ),
                "{path}:{line}: fingerprint differs"
            );
        }
    }
}

#[test]
fn ignored_binary_and_oversized_files_are_not_reported() {
    let r = report();
    for item in expected()["must_not_report"].as_array().unwrap() {
        let path = item["path"].as_str().unwrap();
        let hits: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.path.starts_with(path))
            .collect();
        assert!(hits.is_empty(), "{path} ({}): {hits:#?}", item["why"]);
        if let Some(fp) = item.get("fingerprint").and_then(Value::as_str) {
            assert!(!r.findings.iter().any(
                |f| matches!(&f.kind, FindingKind::HardcodedCredential(c) if c.fingerprint == fp)
            ));
        }
    }
    let reason = |p: &str| {
        r.skipped
            .iter()
            .find(|s| s.path == p)
            .map(|s| s.reason.clone())
            .unwrap_or_default()
    };
    assert_eq!(reason("ts-openai-mcp/assets/logo.bin"), "binary");
    assert!(reason("ts-openai-mcp/vendor/huge-bundle.js").starts_with("too large"));
    // Ignored files are not even listed: the walk never sees them.
    assert!(
        !r.skipped
            .iter()
            .any(|s| s.path.contains("secrets.local.env"))
    );
}

#[test]
fn the_same_secret_in_two_files_shares_a_fingerprint() {
    let anthropic = crate::support::credentials("anthropic");
    assert_eq!(anthropic.len(), 2);
    assert_ne!(anthropic[0].0.path, anthropic[1].0.path);
    assert_eq!(anthropic[0].1.fingerprint, anthropic[1].1.fingerprint);
    let json = to_json(report());
    assert_eq!(
        json["summary"]["credentials"].as_u64().unwrap(),
        json["summary"]["distinct_secrets"].as_u64().unwrap() + 1
    );
    assert!(to_human(report()).contains("(same value in 2 places)"));
}

#[test]
fn no_output_format_shows_a_planted_secret() {
    let secrets = planted_secrets();
    assert!(
        secrets.len() >= 20,
        "only {} secrets located",
        secrets.len()
    );
    let outputs = [
        ("human", to_human(report())),
        (
            "json",
            serde_json::to_string_pretty(&to_json(report())).unwrap(),
        ),
        (
            "sarif",
            serde_json::to_string_pretty(&to_sarif(report())).unwrap(),
        ),
    ];
    for (format, text) in &outputs {
        for s in &secrets {
            // Neither the value nor the value after its visible prefix.
            assert!(
                !text.contains(s.as_str()),
                "{format} output shows a secret in full"
            );
            let tail: String = s.chars().skip(4).collect();
            assert!(
                !text.contains(&tail),
                "{format} output shows a secret's body"
            );
        }
    }
}
