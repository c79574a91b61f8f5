//! The Foundation issue's "done when" items 1–4, on both backends.

use serde_json::Value;

use crate::harness::{Server, ok, stderr, stdout};

#[tokio::test]
async fn quickstart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mandate-data");
    scenario(&data, None).await;
    // Tamper with one audit row using the sqlite3 tool, as the issue says.
    let db = data.join("mandate.db");
    let status = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("UPDATE audit_events SET target = 'agent/someone-else' WHERE seq = 2;")
        .status();
    match status {
        Ok(s) if s.success() => {}
        _ => {
            // No sqlite3 binary: tamper through the driver instead.
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
                .await
                .unwrap();
            sqlx::raw_sql("UPDATE audit_events SET target = 'agent/someone-else' WHERE seq = 2")
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
    assert_tamper_detected(&data, None, 2);
}

#[tokio::test]
async fn quickstart_on_postgres() {
    let Some(db) = mandate_testkit::TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mandate-data");
    scenario(&data, Some(&db.url_string)).await;
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&db.url_string).await.unwrap();
    sqlx::raw_sql("UPDATE audit_events SET target = 'agent/someone-else' WHERE seq = 2")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    assert_tamper_detected(&data, Some(&db.url_string), 2);
}

fn assert_tamper_detected(data: &std::path::Path, db: Option<&str>, seq: i64) {
    let server = Server {
        child: std::process::Command::new("true").spawn().unwrap(),
        url: String::new(),
        data_dir: data.to_owned(),
        database: db.map(str::to_owned),
    };
    let out = server.verify();
    assert!(!out.status.success(), "verify must fail after tampering");
    assert!(
        stdout(&out).contains(&format!("seq {seq}")),
        "verify must name seq {seq}: {}",
        stdout(&out)
    );
}

async fn scenario(data: &std::path::Path, db: Option<&str>) {
    let server = Server::start(data, db);

    // 1. Health, and the bootstrap token file readable only by its owner.
    let health = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{}/readyz", server.url))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let token_file = data.join("admin-token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(data.join("master.key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }

    // 2. Register, list with the SPIFFE ID, walk the life cycle.
    ok(server.cli(&[
        "agent",
        "register",
        "invoice-bot",
        "--owner",
        "alice@example.com",
        "--kind",
        "autonomous",
        "--label",
        "env=prod",
    ]));
    let list: Value = serde_json::from_str(&ok(server.cli(&["agent", "list", "--json"]))).unwrap();
    assert_eq!(list[0]["name"], "invoice-bot");
    assert_eq!(
        list[0]["spiffe_id"],
        "spiffe://mandate.local/agent/invoice-bot"
    );
    assert_eq!(list[0]["status"], "active");
    for (verb, status) in [("suspend", "suspended"), ("resume", "active")] {
        assert!(ok(server.cli(&["agent", verb, "invoice-bot"])).contains(status));
    }
    ok(server.cli(&[
        "agent",
        "register",
        "report-bot",
        "--owner",
        "bob@example.com",
        "--kind",
        "on-behalf-of",
    ]));
    ok(server.cli(&["agent", "decommission", "report-bot"]));
    let shown: Value =
        serde_json::from_str(&ok(server.cli(&["agent", "show", "report-bot", "--json"]))).unwrap();
    assert_eq!(shown["status"], "decommissioned");

    let dup = server.cli(&[
        "agent",
        "register",
        "invoice-bot",
        "--owner",
        "alice@example.com",
        "--kind",
        "autonomous",
    ]);
    assert!(!dup.status.success());
    assert!(stderr(&dup).contains("409"), "{}", stderr(&dup));
    let reuse = server.cli(&[
        "agent",
        "register",
        "report-bot",
        "--owner",
        "alice@example.com",
        "--kind",
        "autonomous",
    ]);
    assert!(
        stderr(&reuse).contains("409"),
        "a decommissioned name stays reserved: {}",
        stderr(&reuse)
    );
    let no_owner = server.cli(&["agent", "register", "x-bot", "--kind", "autonomous"]);
    assert!(!no_owner.status.success());
    assert!(
        stderr(&no_owner).contains("400") && stderr(&no_owner).contains("`owner`"),
        "{}",
        stderr(&no_owner)
    );
    let bad_name = server.cli(&[
        "agent",
        "register",
        "Bad_Name",
        "--owner",
        "a@example.com",
        "--kind",
        "autonomous",
    ]);
    assert!(
        stderr(&bad_name).contains("400") && stderr(&bad_name).contains("`name`"),
        "{}",
        stderr(&bad_name)
    );

    let wrong = server.cli_with_token(
        "mdt_aaaaaaaaaaaa_bm90LWEtcmVhbC10b2tlbg",
        &["agent", "list"],
    );
    assert!(!wrong.status.success());
    assert!(stderr(&wrong).contains("401"), "{}", stderr(&wrong));
    let none = reqwest::get(format!("{}/admin/v1/agents", server.url))
        .await
        .unwrap();
    assert_eq!(none.status(), 401);

    let audit: Value = serde_json::from_str(&ok(server.cli(&["audit", "list", "--json"]))).unwrap();
    let events = audit.as_array().unwrap();
    let rejected: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "admin.request_rejected")
        .collect();
    let codes: Vec<&str> = rejected
        .iter()
        .map(|e| e["detail"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "agent_exists",
            "agent_exists",
            "invalid_field",
            "invalid_field",
            "unauthorized",
            "unauthorized"
        ]
    );
    assert!(
        rejected[4]["actor"].is_null(),
        "an unauthenticated caller has no actor"
    );
    let text = ok(server.cli(&["audit", "list"]));
    assert!(text.contains("agent.registered") && text.contains("unauthorized"));
    let count = events.len();

    // 3. Restart: everything is still there and the chain verifies.
    server.stop();
    let server = Server::start(data, db);
    let list: Value = serde_json::from_str(&ok(server.cli(&["agent", "list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let table = ok(server.cli(&["agent", "list", "--status", "active"]));
    assert!(
        table.contains("invoice-bot") && !table.contains("report-bot"),
        "{table}"
    );
    let audit: Value = serde_json::from_str(&ok(server.cli(&["audit", "list", "--json"]))).unwrap();
    assert_eq!(audit.as_array().unwrap().len(), count);
    server.stop();
    let server = Server {
        child: std::process::Command::new("true").spawn().unwrap(),
        url: String::new(),
        data_dir: data.to_owned(),
        database: db.map(str::to_owned),
    };
    let out = ok(server.verify());
    assert!(
        out.starts_with(&format!("ok: {count} events, head ")),
        "{out}"
    );
}
