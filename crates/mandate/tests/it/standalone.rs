//! `mandate gateway` on its own, near the agents, with a `mandate serve`
//! as its control plane: the gateway proves itself as an agent, checks
//! tokens with the published JWKS, injects a credential it fetched over the
//! internal API, ships its audit events to the control plane, and a
//! revocation on the control plane holds at the gateway at once.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;
use mandate_jose::jws::{Algorithm, SigningKey};
use serde_json::{Value, json};

use crate::gateway::{Killed, header, http_upstream, mcp_upstream, missing_sdk, records};
use crate::grants::post_form;
use crate::harness::{BIN, Server, ok};
use crate::harness::{interop_dir, python};

const SECRET: &str = "edge-upstream-secret-93b1c7d2";

/// A fresh ES256 key with `kid`; its JWKS is written to `dir/<kid>.json`.
fn key(dir: &Path, kid: &str) -> SigningKey {
    let k = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid(kid);
    let jwks = json!({ "keys": [k.public_jwk().unwrap().to_json()] });
    std::fs::write(dir.join(format!("{kid}.json")), jwks.to_string()).unwrap();
    k
}

/// `key` as a PKCS#8 PEM file.
fn write_pem(key: &SigningKey, path: &Path) {
    let der = key.to_pkcs8_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&*der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    std::fs::write(path, pem).unwrap();
}

/// A `private_key_jwt` client assertion by `agent` for `issuer`.
fn assertion(key: &SigningKey, agent: &str, issuer: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "iss": agent, "sub": agent, "aud": issuer, "iat": now, "exp": now + 60,
        "jti": mandate_jose::random::token::<16>().unwrap(),
    });
    key.sign(Some("JWT"), claims.to_string().as_bytes())
        .unwrap()
}

/// Starts `mandate gateway` on `listen`; waits for its "listening" line.
fn start_gateway(control_plane: &str, key_file: &Path, listen: &str) -> Killed {
    let mut child = Command::new(BIN)
        .args([
            "gateway",
            "--control-plane",
            control_plane,
            "--agent",
            "edge-gw",
        ])
        .arg("--key-file")
        .arg(key_file)
        .args(["--key-id", "edge-gw", "--listen", listen])
        .env("MANDATE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    loop {
        let line = lines
            .next()
            .expect("the gateway exited before listening")
            .unwrap();
        if line.starts_with("Gateway listening on ") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Killed(child)
}

/// The policy that lets the gateway get its token for the internal API.
const GATEWAY_POLICY: &str = r#"
@id("gateway-control")
permit (principal == Mandate::Agent::"edge-gw", action == Mandate::Action::"token:issue",
        resource == Mandate::Resource::"mandate-internal");
"#;

/// A control plane with the gateway's agent `edge-gw` (its key in
/// `edge-gw.pem`), the internal API as resource `mandate-internal`, a free
/// address for the gateway, and agents `others` (their keys returned).
struct Edge {
    server: Server,
    listen: String,
    gw_pem: std::path::PathBuf,
    keys: Vec<SigningKey>,
}

fn edge(dir: &Path, others: &[&str]) -> Edge {
    let server = Server::start(&dir.join("data"), None);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gw_pem = dir.join("edge-gw.pem");
    write_pem(&key(dir, "edge-gw"), &gw_pem);
    let mut keys = Vec::new();
    for name in std::iter::once("edge-gw").chain(others.iter().copied()) {
        if name != "edge-gw" {
            keys.push(key(dir, name));
        }
        ok(server.cli(&[
            "agent",
            "register",
            name,
            "--owner",
            "ops@example.com",
            "--kind",
            "autonomous",
        ]));
        let jwks = dir.join(format!("{name}.json"));
        ok(server.cli(&[
            "agent",
            "jwks",
            "set",
            name,
            "--jwks-file",
            jwks.to_str().unwrap(),
        ]));
    }
    let internal = format!("{}/internal/v1/gateway", server.url);
    ok(server.cli(&[
        "resource",
        "add",
        "mandate-internal",
        "--audience",
        &internal,
        "--scopes",
        "mandate:gateway",
    ]));
    Edge {
        server,
        listen: format!("127.0.0.1:{port}"),
        gw_pem,
        keys,
    }
}

#[tokio::test]
async fn standalone_gateway_against_a_remote_mandate() {
    let dir = tempfile::tempdir().unwrap();
    let Edge {
        server,
        listen,
        gw_pem,
        keys,
    } = edge(dir.path(), &["worker"]);
    let worker_key = &keys[0];
    let url = server.url.clone();
    let internal = format!("{url}/internal/v1/gateway");
    let record = dir.path().join("upstream.jsonl");
    let (_upstream, upstream_url) = http_upstream(&record);
    let route = format!("http://{listen}/gw/api");
    ok(server.cli_stdin(
        &["secret", "set", "edge-key", "--header", "x-api-key"],
        SECRET,
    ));
    ok(server.cli(&[
        "resource",
        "add",
        "api",
        "--upstream",
        &upstream_url,
        "--credential",
        "edge-key",
        "--audience",
        &route,
        "--scopes",
        "read",
    ]));
    let policy = dir.path().join("edge.cedar");
    std::fs::write(
        &policy,
        GATEWAY_POLICY.to_owned()
            + r#"
@id("worker-tokens")
permit (principal == Mandate::Agent::"worker", action == Mandate::Action::"token:issue",
        resource == Mandate::Resource::"api");
@id("worker-reads")
permit (principal == Mandate::Agent::"worker", action == Mandate::Action::"http:request",
        resource == Mandate::Resource::"api")
  when { context has http && context.http.method == "GET" };
"#,
    )
    .unwrap();
    ok(server.cli(&["policy", "push", policy.to_str().unwrap(), "-m", "edge"]));

    // The internal API refuses anyone without a gateway token: no token,
    // and an agent's token for another audience.
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{internal}/credentials/edge-key"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let token_endpoint = format!("{url}/oauth2/token");
    let grant = |key: &SigningKey, agent: &str, resource: &str, scope: &str| {
        let a = assertion(key, agent, &url);
        let (agent, resource, scope) = (agent.to_owned(), resource.to_owned(), scope.to_owned());
        let endpoint = token_endpoint.clone();
        async move {
            post_form(
                &endpoint,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &agent),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &a),
                    ("resource", &resource),
                    ("scope", &scope),
                ],
                None,
            )
            .await
        }
    };
    let (status, _, body) = grant(worker_key, "worker", &route, "read").await;
    assert_eq!(status, 200, "{body}");
    let worker_token = body["access_token"].as_str().unwrap().to_owned();
    let r = http
        .post(format!("{internal}/credentials/edge-key"))
        .bearer_auth(&worker_token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "an agent's token opened the internal API");
    let body = r.text().await.unwrap();
    assert!(!body.contains(SECRET));
    // The worker may not get a gateway token either.
    let (status, _, _) = grant(worker_key, "worker", &internal, "mandate:gateway").await;
    assert_ne!(status, 200);

    let _gw = start_gateway(&url, &gw_pem, &listen);

    // With the worker's token: through the standalone gateway to the
    // upstream, which sees the injected secret and not the token.
    let r = http
        .get(format!("{route}/hello?x=1"))
        .bearer_auth(&worker_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = records(&record);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(header(&seen[0], "x-api-key"), Some(SECRET));
    assert_eq!(header(&seen[0], "authorization"), None);
    assert!(!seen[0].to_string().contains(&worker_token));
    assert_eq!(seen[0]["path"], "/hello?x=1");

    // A POST is not allowed by the policy: refused at the gateway.
    let r = http
        .post(format!("{route}/hello"))
        .bearer_auth(&worker_token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(records(&record).len(), 1);

    // Without a token: 401 with the challenge naming the route's metadata,
    // which names the control plane as the authorization server.
    let r = http.get(format!("{route}/hello")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let metadata = format!("http://{listen}/.well-known/oauth-protected-resource/gw/api");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains(&metadata), "{challenge}");
    let meta: Value = http
        .get(&metadata)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["resource"], route);
    assert_eq!(meta["authorization_servers"][0], url);

    // A forged token (signed by the worker's own key) never reaches the
    // control plane's token check: refused with the published JWKS.
    let forged = worker_key
        .sign(
            Some("at+jwt"),
            json!({"iss": url, "aud": route, "sub": "worker", "exp": 4102444800_i64,
                   "jti": "forged"})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
    let r = http
        .get(format!("{route}/hello"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(records(&record).len(), 1);

    // The control plane's audit log has the gateway's events, each naming
    // the gateway, and the credential hand-out, never the secret.
    let events: Value = serde_json::from_str(&ok(server.cli(&[
        "audit",
        "list",
        "--type",
        "gateway.request",
        "--json",
    ])))
    .unwrap();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 4, "{events:?}");
    for e in events {
        assert_eq!(e["detail"]["gateway"], "edge-gw", "{e}");
    }
    let allowed = events
        .iter()
        .find(|e| e["outcome"] == "success")
        .expect("the forwarded call is audited");
    assert_eq!(allowed["detail"]["agent"], "worker");
    assert_eq!(allowed["detail"]["upstream_status"], 200);
    assert_eq!(allowed["detail"]["lease"]["credential"], "edge-key");
    assert_eq!(allowed["detail"]["decision"]["policies"][0], "worker-reads");
    let fetched = ok(server.cli(&[
        "audit",
        "list",
        "--type",
        "gateway.credential_fetched",
        "--json",
    ]));
    assert!(fetched.contains("edge-gw"), "{fetched}");
    let everything = ok(server.cli(&["audit", "list", "--json"]));
    assert!(!everything.contains(SECRET));
    // The gateway's own token is bound to its DPoP key.
    let issued: Value = serde_json::from_str(&ok(server.cli(&[
        "audit",
        "list",
        "--type",
        "token.issued",
        "--json",
    ])))
    .unwrap();
    let gateway_tokens: Vec<&Value> = issued
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"]["agent"] == "edge-gw")
        .collect();
    assert!(!gateway_tokens.is_empty());
    for t in gateway_tokens {
        assert_eq!(t["detail"]["dpop_bound"], true, "{t}");
    }

    // Revoked on the control plane: refused at the gateway on the next
    // request, with no wait for a cache.
    let jti = allowed["detail"]["jti"].as_str().unwrap();
    ok(server.cli(&["token", "revoke", jti]));
    let r = http
        .get(format!("{route}/hello"))
        .bearer_auth(&worker_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(records(&record).len(), 1);

    // The gateway's own agent suspended: the kill switch revokes its token
    // for the internal API, and the gateway, cut off, fails closed.
    let (status, _, body) = grant(worker_key, "worker", &route, "read").await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["access_token"].as_str().unwrap().to_owned();
    ok(server.cli(&["agent", "suspend", "edge-gw"]));
    let r = http
        .get(format!("{route}/hello"))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(records(&record).len(), 1);
}

/// The official MCP Python SDK on both sides of a standalone gateway: the
/// client discovers the control plane from the gateway's 401 and metadata,
/// gets its token there by `private_key_jwt`, sees only the tools the
/// control plane's policy lets it call (a listing decided in one batch
/// over the internal API), and is refused the forbidden one.
#[tokio::test]
async fn standalone_gateway_with_the_mcp_sdk_on_both_sides() {
    if let Some(why) = missing_sdk() {
        mandate_testkit::skip(
            "the standalone MCP test",
            &format!("{why}; run `bash interop/install.sh`"),
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Edge {
        server,
        listen,
        gw_pem,
        keys,
    } = edge(dir.path(), &["mcp-bot"]);
    let url = server.url.clone();
    let bot_pem = dir.path().join("mcp-bot.pem");
    write_pem(&keys[0], &bot_pem);
    let record = dir.path().join("mcp.jsonl");
    let (_mcp, mcp_url) = mcp_upstream(&record);
    let route = format!("http://{listen}/gw/tools");
    ok(server.cli_stdin(&["secret", "set", "tools-key", "--bearer"], SECRET));
    ok(server.cli(&[
        "resource",
        "add",
        "tools",
        "--upstream",
        &mcp_url,
        "--kind",
        "mcp",
        "--credential",
        "tools-key",
        "--audience",
        &route,
        "--scopes",
        "tools",
    ]));
    let policy = dir.path().join("edge.cedar");
    std::fs::write(
        &policy,
        GATEWAY_POLICY.to_owned()
            + r#"
@id("bot-tokens")
permit (principal == Mandate::Agent::"mcp-bot", action == Mandate::Action::"token:issue",
        resource == Mandate::Resource::"tools");
@id("bot-tools")
permit (principal == Mandate::Agent::"mcp-bot", action == Mandate::Action::"mcp:tools/call",
        resource in Mandate::Resource::"tools");
@id("no-repo-deletes")
forbid (principal, action == Mandate::Action::"mcp:tools/call",
        resource == Mandate::Tool::"tools/delete_repo");
"#,
    )
    .unwrap();
    ok(server.cli(&["policy", "push", policy.to_str().unwrap(), "-m", "edge"]));
    let _gw = start_gateway(&url, &gw_pem, &listen);

    let out = Command::new(python())
        .arg(interop_dir().join("mcp_client.py"))
        .arg(&route)
        .args(["--client-id", "mcp-bot", "--issuer", &url, "--key"])
        .arg(&bot_pem)
        .output()
        .unwrap();
    let client: Value = serde_json::from_str(&ok(out)).unwrap();
    let tools: Vec<&str> = client["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tools.contains(&"echo"), "{client}");
    assert!(!tools.contains(&"delete_repo"), "{client}");
    assert_eq!(client["echo"]["text"], "hello", "{client}");
    assert_eq!(client["delete_repo"]["error"], true, "{client}");
    assert_eq!(client["delete_repo"]["code"], -32003, "{client}");
    assert_eq!(client["access_token"]["claims"]["aud"], route);
    assert_eq!(client["access_token"]["claims"]["iss"], url);

    let seen = records(&record);
    assert!(!seen.is_empty());
    for r in &seen {
        let expected = format!("Bearer {SECRET}");
        assert_eq!(header(r, "authorization"), Some(expected.as_str()), "{r}");
        assert!(
            !(r.to_string().contains("tools/call") && r.to_string().contains("delete_repo")),
            "the forbidden call reached the upstream: {r}"
        );
    }
    let denied = ok(server.cli(&["audit", "list", "--type", "gateway.mcp", "--json"]));
    assert!(denied.contains("no-repo-deletes"), "{denied}");
    assert!(denied.contains("edge-gw"), "{denied}");
    assert!(!denied.contains(SECRET));
}
