//! Stored upstream credentials through the real binary: `mandate secret set`
//! reads the value from standard input, and nothing ever prints it again.

use serde_json::Value;

use crate::harness::{Server, ok, stderr, stdout};

const VALUE: &str = "sk-live-9f8e7d6c5b4a39281706";

fn json(out: std::process::Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

#[tokio::test]
async fn secrets_are_write_only_and_routes_use_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None);

    // The value comes from stdin, one trailing newline dropped.
    let set = ok(server.cli_stdin(
        &["secret", "set", "billing-key", "--header", "x-api-key"],
        &format!("{VALUE}\n"),
    ));
    assert!(set.contains("stored secret billing-key"), "{set}");
    assert!(!set.contains(VALUE), "{set}");

    // Neither list nor show prints it, in any format.
    let list = ok(server.cli(&["secret", "list"]));
    assert!(
        list.contains("billing-key") && list.contains("header=x-api-key"),
        "{list}"
    );
    let listed = json(server.cli(&["secret", "list", "--json"]));
    let shown = json(server.cli(&["secret", "show", "billing-key"]));
    for text in [list, listed.to_string(), shown.to_string()] {
        assert!(!text.contains(VALUE), "{text}");
    }
    assert_eq!(shown["kind"], "static");
    assert_eq!(shown["config"]["header"], "x-api-key");
    assert_eq!(shown["has_value"], true);

    // Empty input is refused before anything is sent.
    let empty = server.cli_stdin(&["secret", "set", "nothing"], "\n");
    assert!(!empty.status.success());
    assert!(stderr(&empty).contains("empty"), "{}", stderr(&empty));
    // A mandate-jwt secret needs no input at all.
    let jwt = json(server.cli(&[
        "secret",
        "set",
        "jwt",
        "--kind",
        "mandate-jwt",
        "--ttl",
        "2m",
        "--json",
    ]));
    assert_eq!(jwt["config"]["ttl_secs"], 120);
    // Bad settings name the field.
    let bad = server.cli_stdin(
        &[
            "secret",
            "set",
            "idp",
            "--kind",
            "oauth-client-credentials",
            "--token-url",
            "http://idp.example.com/token",
            "--client-id",
            "mandate",
        ],
        "client-secret",
    );
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("token_url"), "{}", stderr(&bad));

    // A route with the credential; its audience is its public URL.
    let added = json(server.cli(&[
        "resource",
        "add",
        "billing",
        "--scopes",
        "invoices:read",
        "--upstream",
        "https://billing.example.com/api",
        "--credential",
        "billing-key",
        "--require-scope",
        "invoices:read",
        "--timeout",
        "10s",
        "--json",
    ]));
    assert_eq!(added["audience"], format!("{}/gw/billing", server.url));
    assert_eq!(added["upstream"], "https://billing.example.com/api");
    assert_eq!(added["credential"], "billing-key");
    assert_eq!(added["required_scopes"][0], "invoices:read");
    assert_eq!(added["timeout_secs"], 10);
    let unknown = server.cli(&[
        "resource",
        "add",
        "other",
        "--scopes",
        "read",
        "--upstream",
        "https://other.example.com",
        "--credential",
        "missing",
    ]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("credential"),
        "{}",
        stderr(&unknown)
    );

    // In use: refused, with the resource named.
    let shown = json(server.cli(&["secret", "show", "billing-key"]));
    assert_eq!(shown["used_by"][0], "billing");
    let refused = server.cli(&["secret", "remove", "billing-key"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("`billing`"),
        "{}",
        stderr(&refused)
    );
    ok(server.cli(&["resource", "remove", "billing"]));
    ok(server.cli(&["secret", "remove", "billing-key"]));
    let gone = server.cli(&["secret", "show", "billing-key"]);
    assert!(!gone.status.success());
    assert!(stdout(&gone).is_empty());

    // The audit log names the secret and never holds the value.
    let audit = ok(server.cli(&["audit", "list", "--type", "secret.set", "--json"]));
    assert!(
        audit.contains("billing-key") && !audit.contains(VALUE),
        "{audit}"
    );

    // At rest the value is sealed: no file of the data directory holds it.
    server.stop();
    for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()),
                "{} holds the value",
                path.display()
            );
        }
    }
}
