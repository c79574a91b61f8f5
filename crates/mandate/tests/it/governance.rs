//! The governance issue's reports through the real binary: registered
//! tools, access review, inventory, reviews, stale agents and findings.

use serde_json::{Value, json};

use crate::harness::{Server, ok, stderr};

const POLICY: &str = r#"@id("triage-github")
permit (principal == Mandate::Agent::"triage", action == Mandate::Action::"token:issue", resource == Mandate::Resource::"github");
@id("triage-tools")
permit (principal == Mandate::Agent::"triage", action == Mandate::Action::"mcp:tools/call", resource in Mandate::Resource::"github");
@id("risky-deny")
forbid (principal, action, resource) when { context.risk > 70 };
"#;

#[tokio::test]
async fn reports_review_and_findings_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None);
    for name in ["triage", "idle"] {
        ok(server.cli(&[
            "agent",
            "register",
            name,
            "--owner",
            "ann@example.com",
            "--kind",
            "autonomous",
        ]));
    }
    ok(server.cli(&[
        "resource",
        "add",
        "github",
        "--audience",
        "https://mcp.github.example",
        "--kind",
        "mcp",
        "--scopes",
        "repo",
    ]));
    let tools = ok(server.cli(&[
        "resource",
        "tools",
        "github",
        "--set",
        "list_issues,create_issue,close_issue",
    ]));
    assert_eq!(tools, "close_issue\ncreate_issue\nlist_issues\n");
    let bad = server.cli(&["resource", "tools", "github", "--set", "no/slash"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("field `tools`"), "{}", stderr(&bad));
    let policy = dir.path().join("triage.cedar");
    std::fs::write(&policy, POLICY).unwrap();
    ok(server.cli(&["policy", "push", policy.to_str().unwrap(), "-m", "triage"]));

    // triage gets a token decision and calls one of its three tools.
    let token = std::fs::read_to_string(dir.path().join("data/admin-token")).unwrap();
    let client = reqwest::Client::new();
    for (action, resource) in [
        ("token:issue", json!({"type": "resource", "id": "github"})),
        (
            "mcp:tools/call",
            json!({"type": "tool", "id": "github/list_issues"}),
        ),
    ] {
        let res = client
            .post(format!("{}/access/v1/evaluation", server.url))
            .bearer_auth(token.trim())
            .json(&json!({
                "subject": {"type": "agent", "id": "triage"},
                "action": {"name": action},
                "resource": resource,
            }))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["decision"], true, "{body}");
    }

    // Access review: two unused grants, each naming the granting policy.
    let md = ok(server.cli(&["report", "access", "--agent", "triage"]));
    assert!(
        md.contains("| triage | mcp:tools/call | github/create_issue | no (unused grant) | - | triage-tools |"),
        "{md}"
    );
    assert!(
        md.contains("| triage | mcp:tools/call | github/list_issues | yes |"),
        "{md}"
    );
    assert!(md.contains("2 unused grant(s) in the last 90 days"), "{md}");
    let report: Value = serde_json::from_str(&ok(server.cli(&[
        "report", "access", "--all", "--window", "30", "--format", "json",
    ])))
    .unwrap();
    assert_eq!(report["window_days"], 30);
    let idle = report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"] == "idle")
        .unwrap();
    assert_eq!(idle["grants"], json!([]));
    let missing = server.cli(&["report", "access"]);
    assert!(!missing.status.success(), "--agent or --all is required");

    // Inventory in the three formats.
    let inv = ok(server.cli(&["report", "inventory"]));
    assert!(inv.starts_with("| AGENT | OWNER |"), "{inv}");
    assert!(
        inv.contains("| triage | ann@example.com | autonomous | active | - | 0 | github |"),
        "{inv}"
    );
    let csv = ok(server.cli(&["report", "inventory", "--format", "csv"]));
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("idle,ann@example.com,autonomous,active,-,0,-,")),
        "{csv}"
    );
    let json_inv: Value = serde_json::from_str(&ok(server.cli(&[
        "report",
        "inventory",
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(json_inv["agents"][1]["resources"], json!(["github"]));
    assert_eq!(json_inv["agents"][1]["review_overdue"], false);

    // Reviews: none due yet; a review moves the date and is audited.
    assert!(ok(server.cli(&["review"])).contains("no agent is past its review-by date"));
    let out = ok(server.cli(&[
        "agent",
        "review",
        "triage",
        "--note",
        "still needs github",
        "--days",
        "30",
    ]));
    assert!(out.starts_with("reviewed triage; next review by "), "{out}");
    let empty_note = server.cli(&["agent", "review", "triage", "--note", " "]);
    assert!(!empty_note.status.success());
    assert!(
        stderr(&empty_note).contains("field `note`"),
        "{}",
        stderr(&empty_note)
    );
    let events: Value = serde_json::from_str(&ok(server.cli(&[
        "audit",
        "list",
        "--type",
        "agent.reviewed",
        "--json",
    ])))
    .unwrap();
    assert_eq!(events[0]["detail"]["note"], "still needs github");

    // Nothing is stale minutes after registration; the detector has read
    // the decisions and, with no baseline learned yet, raised nothing.
    assert!(ok(server.cli(&["agent", "stale", "--apply"])).contains("no stale agents"));
    assert!(ok(server.cli(&["findings", "scan"])).contains("raised 0 finding(s)"));
    let findings: Value =
        serde_json::from_str(&ok(server.cli(&["findings", "list", "--json"]))).unwrap();
    assert_eq!(findings, json!([]));
    let unknown = server.cli(&["findings", "ack", "fnd_nope"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("404"), "{}", stderr(&unknown));
    assert!(ok(server.verify()).starts_with("ok: "));
    server.stop();
}
