//! The policy engine issue's "done when" items, through the real binary.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::harness::{BIN, Server, ok, stderr, stdout};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies")
}

fn cedar_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(examples())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    files
}

fn offline(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN).args(args).output().unwrap()
}

#[test]
fn policy_test_passes_on_the_examples_and_fails_when_an_expectation_flips() {
    let cases = examples().join("cases.yaml");
    let out = offline(&["policy", "test", cases.to_str().unwrap()]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains(" passed, 0 failed"),
        "{}",
        stdout(&out)
    );

    // Flip the first expectation in a copy next to the policies.
    let text = std::fs::read_to_string(&cases).unwrap();
    let flipped = text.replacen("expect: allow", "expect: deny", 1);
    assert_ne!(text, flipped);
    let dir = tempfile::tempdir().unwrap();
    // The policies and the attestation files the cases name.
    for e in std::fs::read_dir(examples()).unwrap() {
        let f = e.unwrap().path();
        let name = f.file_name().unwrap().to_owned();
        std::fs::copy(&f, dir.path().join(name)).unwrap();
    }
    let copy = dir.path().join("cases.yaml");
    std::fs::write(&copy, flipped).unwrap();
    let out = offline(&["policy", "test", copy.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "a flipped expectation must fail the run"
    );
    assert!(stdout(&out).contains("FAIL"), "{}", stdout(&out));
}

#[tokio::test]
async fn push_refuse_rollback_and_authzen_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None);
    let files = cedar_files();
    let mut push: Vec<&str> = vec!["policy", "push"];
    push.extend(files.iter().map(String::as_str));
    push.extend(["--message", "examples"]);
    assert!(ok(server.cli(&push)).contains("activated policy version 1"));

    // A type error is refused with file:line:column and changes nothing.
    let bad = dir.path().join("bad.cedar");
    std::fs::write(&bad, "@id(\"typo\")\npermit (principal, action, resource)\nwhen { principal.sttus == \"active\" };\n").unwrap();
    let out = offline(&["policy", "validate", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("bad.cedar:3:8"), "{}", stderr(&out));
    let out = server.cli(&["policy", "push", bad.to_str().unwrap(), "-m", "typo"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("bad.cedar:3:8"), "{}", stderr(&out));
    let list: Value = serde_json::from_str(&ok(server.cli(&["policy", "list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["active"], true);

    // A set with no permit would deny everything: validate and push warn.
    let only_forbid = dir.path().join("only-forbid.cedar");
    std::fs::write(
        &only_forbid,
        "@id(\"no-admin\")\nforbid (principal, action == Mandate::Action::\"http:request\", resource);\n",
    )
    .unwrap();
    let out = offline(&["policy", "validate", only_forbid.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("no `permit`"), "{}", stderr(&out));
    let out = offline(&["policy", "validate", files[0].as_str()]);
    assert!(!stderr(&out).contains("no `permit`"), "{}", stderr(&out));

    // A second version, then roll back to the first.
    let lockdown = dir.path().join("lockdown.cedar");
    std::fs::write(
        &lockdown,
        "@id(\"lockdown\")\nforbid (principal, action, resource);\n",
    )
    .unwrap();
    ok(server.cli(&[
        "policy",
        "push",
        lockdown.to_str().unwrap(),
        "-m",
        "incident",
    ]));
    let diff = ok(server.cli(&["policy", "diff", "1", "2"]));
    assert!(
        diff.contains("+forbid (principal, action, resource);"),
        "{diff}"
    );
    ok(server.cli(&["policy", "rollback", "1"]));
    let shown: Value =
        serde_json::from_str(&ok(server.cli(&["policy", "show", "--json"]))).unwrap();
    assert_eq!(shown["version"], 1);
    let events: Value =
        serde_json::from_str(&ok(server.cli(&["audit", "list", "--json"]))).unwrap();
    let events = events.as_array().unwrap();
    let activations: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "policy.activated")
        .collect();
    assert_eq!(activations.len(), 3);
    assert_eq!(activations[2]["detail"]["rollback"], true);
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "admin.request_rejected"
                && e["detail"]["code"] == "invalid_policy")
    );

    // AuthZEN: an allow and a deny the example policies imply.
    ok(server.cli(&[
        "agent",
        "register",
        "deploy-bot",
        "--owner",
        "ann@example.com",
        "--kind",
        "autonomous",
        "--label",
        "env=prod",
        "--label",
        "trust-provider=k8s-prod",
    ]));
    let token = std::fs::read_to_string(dir.path().join("data/admin-token")).unwrap();
    let client = reqwest::Client::new();
    let ask = |resource: Value| {
        json!({
            "subject": {"type": "agent", "id": "deploy-bot"},
            "action": {"name": "token:issue"},
            "resource": resource,
            "context": {"env": "prod", "time": "2026-11-16T10:00:00Z",
                        "attestation": {"provider": "k8s-prod", "claims": {}}}
        })
    };
    let allow = ask(
        json!({"type": "resource", "id": "github", "properties": {"kind": "mcp", "owner": "ben@example.com", "sensitivity": "internal"}}),
    );
    let deny = ask(
        json!({"type": "resource", "id": "ledger", "properties": {"kind": "http", "owner": "fiona@example.com", "sensitivity": "restricted"}}),
    );
    let mut got = Vec::new();
    for body in [allow, deny] {
        let res = client
            .post(format!("{}/access/v1/evaluation", server.url))
            .bearer_auth(token.trim())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        got.push(res.json::<Value>().await.unwrap());
    }
    assert_eq!(got[0]["decision"], true, "{}", got[0]);
    assert_eq!(
        got[0]["context"]["policies"],
        json!(["active-agents-may-act"])
    );
    assert_eq!(got[1]["decision"], false, "{}", got[1]);
    assert_eq!(
        got[1]["context"]["policies"],
        json!(["restricted-needs-finance"])
    );
    let decisions: Value = serde_json::from_str(&ok(server.cli(&[
        "audit",
        "list",
        "--type",
        "authz.decision",
        "--json",
    ])))
    .unwrap();
    let d = decisions.as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0]["outcome"], "success");
    assert_eq!(d[0]["detail"]["policies"], json!(["active-agents-may-act"]));
    assert_eq!(d[1]["outcome"], "denied");
    assert_eq!(
        d[1]["detail"]["policies"],
        json!(["restricted-needs-finance"])
    );
    let meta: Value = reqwest::get(format!("{}/.well-known/authzen-configuration", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["access_evaluation_endpoint"],
        format!("{}/access/v1/evaluation", server.url)
    );
    server.stop();
}
