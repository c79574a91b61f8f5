//! The gateway issue's "done when", through the real binary:
//! - the official MCP Python SDK on both sides: a FastMCP-style upstream
//!   that records what reaches it, behind the gateway, and the SDK's client
//!   authenticating by `private_key_jwt` client credentials, discovering
//!   the authorization server from the 401 and the protected resource
//!   metadata, seeing only the tools it may call, calling an allowed one
//!   and being refused a forbidden one (JSON-RPC error, audited with the
//!   policy id);
//! - an HTTP route: with a token the upstream gets the injected secret,
//!   without one the 401 challenge; `mandate audit list` shows both;
//! - no API answer, CLI output, server log line or audit event holds the
//!   stored secret's value.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::harness::{Server, interop_dir, ok, python, stderr, stdout};

/// The static secret the MCP route injects.
const MCP_SECRET: &str = "mcp-upstream-secret-7d1c9a4b";
/// The static secret the HTTP route injects.
const HTTP_SECRET: &str = "http-upstream-secret-5e2f8b6a";

/// Why the SDK cannot run here, if it cannot.
pub(crate) fn missing_sdk() -> Option<String> {
    let runs = |cmd: &mut Command| cmd.output().is_ok_and(|o| o.status.success());
    if !runs(Command::new("node").arg("--version"))
        || !interop_dir().join("node_modules/openid-client").exists()
    {
        return Some("interop/node_modules is not installed".into());
    }
    if !runs(Command::new(python()).args(["-c", "import mcp, uvicorn, jwt"])) {
        return Some("the MCP Python SDK is not installed".into());
    }
    None
}

/// A process killed when dropped.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `interop/mcp_upstream.py` recording to `record`; its URL.
pub(crate) fn mcp_upstream(record: &Path) -> (Killed, String) {
    let mut child = Command::new(python())
        .arg(interop_dir().join("mcp_upstream.py"))
        .args(["0", "--record", record.to_str().unwrap(), "--json-response"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("the upstream exited before listening")
            .unwrap();
        if let Some(p) = line.strip_prefix("LISTENING ") {
            break p.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Killed(child), format!("http://127.0.0.1:{port}/mcp"))
}

/// A recording HTTP upstream on loopback (Python's standard library),
/// answering 200, or 401 echoing the key it got at `/echo-key`.
pub(crate) fn http_upstream(record: &Path) -> (Killed, String) {
    let script = r#"
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
record = sys.argv[1]
class H(BaseHTTPRequestHandler):
    def handle_one(self):
        with open(record, "a") as f:
            f.write(json.dumps({"path": self.path, "headers": dict(self.headers.items())}) + "\n")
        if self.path.endswith("/echo-key"):
            body = ("bad key " + (self.headers.get("x-api-key") or "")).encode()
            self.send_response(401)
        else:
            body = b'{"ok": true}'
            self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = handle_one
    def log_message(self, *a): pass
s = HTTPServer(("127.0.0.1", 0), H)
print("LISTENING", s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut child = Command::new(python())
        .args(["-c", script, record.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    let line = lines.next().unwrap().unwrap();
    let port = line.strip_prefix("LISTENING ").unwrap().trim().to_owned();
    std::thread::spawn(move || for _ in lines {});
    (Killed(child), format!("http://127.0.0.1:{port}"))
}

pub(crate) fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub(crate) fn header<'a>(record: &'a Value, name: &str) -> Option<&'a str> {
    record["headers"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

const POLICY: &str = r#"
@id("agents-get-tokens")
permit (principal, action == Mandate::Action::"token:issue", resource)
  when { principal.status == "active" };
@id("mcp-tools")
permit (principal, action == Mandate::Action::"mcp:tools/call", resource in Mandate::Resource::"mcp");
@id("no-repo-deletes")
forbid (principal, action == Mandate::Action::"mcp:tools/call", resource == Mandate::Tool::"mcp/delete_repo");
@id("api-calls")
permit (principal, action == Mandate::Action::"http:request", resource)
  when { resource == Mandate::Resource::"api" || resource == Mandate::Resource::"edge" };
"#;

#[tokio::test]
async fn mcp_sdk_through_the_gateway_and_no_secret_anywhere() {
    if let Some(why) = missing_sdk() {
        mandate_testkit::skip(
            "the gateway end-to-end test",
            &format!("{why}; run `bash interop/install.sh`"),
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    ok(Command::new("node")
        .arg(interop_dir().join("openid_client.mjs"))
        .args(["keygen", keys.to_str().unwrap()])
        .output()
        .unwrap());
    let server_log = dir.path().join("server.log");
    // The gateway also gets a listener of its own.
    let edge_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let edge = format!("127.0.0.1:{edge_port}");
    let server = Server::start_logged(
        &dir.path().join("data"),
        None,
        Some(&server_log),
        &["--gateway-listen", &edge],
    );
    let url = server.url.clone();
    let mut outputs: Vec<String> = Vec::new();
    let mut run = |o: std::process::Output| {
        outputs.push(stdout(&o));
        outputs.push(stderr(&o));
        ok(o)
    };

    let mcp_record = dir.path().join("mcp.jsonl");
    let (_mcp, mcp_url) = mcp_upstream(&mcp_record);
    let http_record = dir.path().join("http.jsonl");
    let (_http, http_url) = http_upstream(&http_record);

    run(server.cli(&[
        "agent",
        "register",
        "mcp-bot",
        "--owner",
        "ann@example.com",
        "--kind",
        "autonomous",
    ]));
    let jwks = keys.join("agent-jwks.json");
    run(server.cli(&[
        "agent",
        "jwks",
        "set",
        "mcp-bot",
        "--jwks-file",
        jwks.to_str().unwrap(),
    ]));
    run(server.cli_stdin(
        &["secret", "set", "mcp-upstream", "--bearer"],
        &format!("{MCP_SECRET}\n"),
    ));
    run(server.cli_stdin(
        &["secret", "set", "api-key", "--header", "x-api-key"],
        HTTP_SECRET,
    ));
    run(server.cli(&[
        "resource",
        "add",
        "mcp",
        "--upstream",
        &mcp_url,
        "--kind",
        "mcp",
        "--credential",
        "mcp-upstream",
        "--scopes",
        "tools",
    ]));
    run(server.cli(&[
        "resource",
        "add",
        "api",
        "--upstream",
        &http_url,
        "--kind",
        "http",
        "--credential",
        "api-key",
        "--scopes",
        "read",
    ]));
    let edge_route = format!("http://{edge}/gw/edge");
    run(server.cli(&[
        "resource",
        "add",
        "edge",
        "--upstream",
        &http_url,
        "--credential",
        "api-key",
        "--scopes",
        "read",
        "--audience",
        &edge_route,
    ]));
    let policy = dir.path().join("gw.cedar");
    std::fs::write(&policy, POLICY).unwrap();
    run(server.cli(&["policy", "push", policy.to_str().unwrap(), "-m", "gateway"]));
    run(server.cli(&["secret", "list"]));
    run(server.cli(&["secret", "show", "mcp-upstream"]));
    run(server.cli(&["resource", "show", "mcp"]));

    // The SDK client: 401 -> protected resource metadata -> authorization
    // server metadata -> private_key_jwt client credentials -> MCP.
    let out = Command::new(python())
        .arg(interop_dir().join("mcp_client.py"))
        .arg(format!("{url}/gw/mcp"))
        .args(["--client-id", "mcp-bot", "--issuer", &url, "--key"])
        .arg(keys.join("private-keys.json"))
        .output()
        .unwrap();
    let client: Value = serde_json::from_str(&run(out)).unwrap();
    let tools: Vec<&str> = client["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tools.contains(&"echo"), "{client}");
    assert!(
        !tools.contains(&"delete_repo"),
        "the forbidden tool was listed: {client}"
    );
    assert_eq!(client["echo"]["text"], "hello", "{client}");
    assert_eq!(client["delete_repo"]["error"], true, "{client}");
    assert_eq!(client["delete_repo"]["code"], -32003, "{client}");
    assert_eq!(
        client["access_token"]["claims"]["aud"],
        format!("{url}/gw/mcp")
    );
    let first = &client["http"][0];
    assert_eq!(first["status"], 401, "{client}");

    // The upstream saw the injected credential on every request, never the
    // Mandate token, and never the forbidden call.
    let seen = records(&mcp_record);
    assert!(!seen.is_empty());
    for r in &seen {
        assert_eq!(
            header(r, "authorization"),
            Some(format!("Bearer {MCP_SECRET}").as_str()),
            "{r}"
        );
        assert!(!r.to_string().contains("delete_repo\", \"arguments"), "{r}");
    }
    assert!(
        !seen
            .iter()
            .any(|r| r.to_string().contains("\"delete_repo\"")
                && r.to_string().contains("tools/call"))
    );

    let denied = run(server.cli(&["audit", "list", "--type", "gateway.mcp", "--json"]));
    assert!(denied.contains("delete_repo"), "{denied}");
    assert!(denied.contains("no-repo-deletes"), "{denied}");

    // HTTP route, as curl would call it: a token for the route from the
    // token endpoint (a private_key_jwt assertion signed with PyJWT), then
    // with and without it.
    let assertion = Command::new(python())
        .args([
            "-c",
            "import json, sys, time, uuid, jwt\n\
             from jwt.algorithms import ECAlgorithm\n\
             k = json.load(open(sys.argv[1]))['agent']\n\
             key = ECAlgorithm.from_jwk(json.dumps(k))\n\
             now = int(time.time())\n\
             for _ in range(2): print(jwt.encode({'iss': 'mcp-bot', 'sub': 'mcp-bot', 'aud': sys.argv[2], 'iat': now,\n\
                 'exp': now + 60, 'jti': str(uuid.uuid4())}, key, algorithm='ES256', headers={'kid': k.get('kid')}))",
        ])
        .arg(keys.join("private-keys.json"))
        .arg(&url)
        .output()
        .unwrap();
    let assertions = run(assertion);
    let mut assertions = assertions.lines().map(str::to_owned);
    let assertion = assertions.next().unwrap();
    let edge_assertion = assertions.next().unwrap();
    let route = format!("{url}/gw/api");
    let (status, _, token) = crate::grants::post_form(
        &format!("{url}/oauth2/token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "mcp-bot"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
            ("resource", route.as_str()),
            ("scope", "read"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{token}");
    let token = token["access_token"].as_str().expect("a token").to_owned();
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{url}/gw/api/v1/things"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{url}/gw/api/v1/things"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with(&format!(
        "Bearer resource_metadata=\"{url}/.well-known/oauth-protected-resource/gw/api\""
    )));
    let echoed = http
        .get(format!("{url}/gw/api/echo-key"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 401);
    let echoed = echoed.text().await.unwrap();
    assert!(echoed.contains(mandate_gateway::REDACTED), "{echoed}");
    let seen = records(&http_record);
    assert_eq!(header(&seen[0], "x-api-key"), Some(HTTP_SECRET));
    assert!(header(&seen[0], "authorization").is_none());

    // The gateway's own listener serves the routes (with their public URL
    // there), and nothing of the control plane.
    let (status, _, edge_token) = crate::grants::post_form(
        &format!("{url}/oauth2/token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "mcp-bot"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", edge_assertion.as_str()),
            ("resource", edge_route.as_str()),
            ("scope", "read"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{edge_token}");
    let r = http
        .get(format!("{edge_route}/v1/things"))
        .bearer_auth(edge_token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("http://{edge}/admin/v1/agents"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let list = run(server.cli(&["audit", "list", "--type", "gateway.request", "--json"]));
    assert!(list.contains("\"lease\""), "{list}");
    assert!(list.contains("api-calls"), "{list}");
    assert!(list.contains("missing_token"), "{list}");

    // No answer, CLI output, log line or audit event holds a secret.
    let mut api = String::new();
    for path in [
        "/admin/v1/secrets",
        "/admin/v1/secrets/api-key",
        "/admin/v1/resources",
    ] {
        let admin_token = std::fs::read_to_string(server.data_dir.join("admin-token")).unwrap();
        api.push_str(
            &http
                .get(format!("{url}{path}"))
                .bearer_auth(admin_token.trim())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    api.push_str(&echoed);
    let export = run(server.cli(&["audit", "list", "--json"]));
    let log = std::fs::read_to_string(&server_log).unwrap();
    for (what, text) in [
        ("an API answer", api.as_str()),
        ("the audit log", export.as_str()),
        ("the server log", log.as_str()),
        ("a CLI output", outputs.join("\n").as_str()),
    ] {
        for secret in [MCP_SECRET, HTTP_SECRET] {
            assert!(!text.contains(secret), "{what} holds a stored secret");
        }
    }
    assert!(!log.is_empty(), "the server log was not captured");
}
