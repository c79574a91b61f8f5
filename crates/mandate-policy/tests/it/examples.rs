//! The example policies in `examples/policies` against their cases file.

use std::collections::BTreeSet;

use mandate_policy::cases::{self, CaseFile};
use mandate_policy::{Effect, PolicySet, Schema};

use crate::support::EXAMPLES;

fn cases_path() -> String {
    format!("{EXAMPLES}/cases.yaml")
}

#[test]
fn example_cases_pass() {
    let report = cases::run_file(cases_path()).unwrap();
    assert!(report.passed(), "\n{report}");
    assert!(report.results.len() >= 20);
    let table = report.to_string();
    assert!(
        table.ends_with(&format!("{} passed, 0 failed", report.results.len())),
        "{table}"
    );
}

#[test]
fn flipped_expectation_fails_the_run() {
    let mut file = CaseFile::load(cases_path()).unwrap();
    let case = &mut file.cases[0];
    case.expect = match case.expect {
        Effect::Allow => Effect::Deny,
        Effect::Deny => Effect::Allow,
    };
    let schema = Schema::mandate().unwrap();
    let policies = PolicySet::compile(&schema, &file.policy_sources().unwrap()).unwrap();
    let report = file.run(&file.engine(&schema, policies).unwrap());
    assert!(!report.passed());
    assert_eq!(report.failures().count(), 1);
    let table = report.to_string();
    assert!(table.lines().nth(1).unwrap().contains("FAIL"), "{table}");
    assert!(table.ends_with("1 failed"), "{table}");
}

#[test]
fn wrong_determining_policies_fail_the_case() {
    let mut file = CaseFile::load(cases_path()).unwrap();
    let case = file
        .cases
        .iter_mut()
        .find(|c| c.policies.as_ref().is_some_and(|p| !p.is_empty()))
        .unwrap();
    case.policies = Some(vec!["some-other-policy".into()]);
    let schema = Schema::mandate().unwrap();
    let policies = PolicySet::compile(&schema, &file.policy_sources().unwrap()).unwrap();
    let report = file.run(&file.engine(&schema, policies).unwrap());
    assert_eq!(report.failures().count(), 1);
    assert!(
        report
            .to_string()
            .contains("expected:    [some-other-policy]")
    );
}

/// Every example policy determines at least one case.
#[test]
fn every_example_policy_is_exercised() {
    let file = CaseFile::load(cases_path()).unwrap();
    let schema = Schema::mandate().unwrap();
    let policies = PolicySet::compile(&schema, &file.policy_sources().unwrap()).unwrap();
    let report = file.run(&file.engine(&schema, policies.clone()).unwrap());
    let deciding: BTreeSet<&str> = report
        .results
        .iter()
        .flat_map(|r| r.decision.determining_policies.iter().map(String::as_str))
        .collect();
    for p in policies.policies() {
        assert!(
            deciding.contains(p.id.as_str()),
            "no case exercises `{}`",
            p.id
        );
    }
    assert_eq!(policies.len(), 11);
}

#[test]
fn every_example_file_is_listed_in_the_cases() {
    let file = CaseFile::load(cases_path()).unwrap();
    let listed: BTreeSet<String> = file
        .policies
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(EXAMPLES)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cedar"))
        .collect();
    assert_eq!(listed, on_disk);
}

#[test]
fn case_file_without_policies_is_an_error() {
    let dir = std::env::temp_dir().join(format!("mandate-policy-cases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cases.yaml");
    std::fs::write(&path, "cases: []\n").unwrap();
    let err = cases::run_file(&path).unwrap_err().to_string();
    assert!(
        err.ends_with("names no policy files (`policies:`)"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A refused attestation was never seen by a policy: a case cannot use it.
#[test]
fn case_with_a_refused_attestation_is_an_error() {
    let yaml = r#"
cases:
  - name: refused
    request:
      principal: {agent: a}
      action: token:issue
      resource: {resource: r}
      context:
        attestation: {provider: k8s, provider_kind: kubernetes, outcome: refused, claims: {}, reason: "token expired"}
    expect: deny
"#;
    let err = CaseFile::parse("cases.yaml", yaml).unwrap_err().to_string();
    assert!(
        err.contains("the attestation was refused, so no policy sees it: token expired"),
        "{err}"
    );
}
