//! The OAuth endpoints through the real binary: the jwt-bearer grant over
//! HTTP with the Kubernetes fixture keys, RFC 6749 errors, introspection
//! and revocation, the AuthZEN API called with a Mandate token, and the
//! token CLI with the kill switch.

use mandate_jose::jws::{Algorithm, SigningKey};
use serde_json::{Value, json};

use crate::harness::{Server, ok};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");

fn k8s_token(sa: &str) -> String {
    let pem = std::fs::read(format!("{TESTDATA}/kubernetes/ecdsa-p256-private-key.pem")).unwrap();
    let key = SigningKey::from_pem(Algorithm::Es256, &pem)
        .unwrap()
        .with_kid("SoABiieYuNx4UdqYvZRVeuC6SihxgLrhLy9peHMHpTc");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "aud": ["mandate"], "exp": now + 600, "iat": now, "nbf": now,
        "iss": "https://issuer.example.com",
        "kubernetes.io": {"namespace": "default",
            "serviceaccount": {"name": sa, "uid": "a3c9e0f4-7d21-4e8b-b5f6-0c1d2e3f4a5b"}},
        "sub": format!("system:serviceaccount:default:{sa}"),
    });
    key.sign(None, &serde_json::to_vec(&claims).unwrap())
        .unwrap()
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) async fn post_form(
    url: &str,
    form: &[(&str, &str)],
    auth: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn oauth_endpoints_over_http_with_the_kill_switch() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None);
    let admin = format!(
        "Bearer {}",
        std::fs::read_to_string(dir.path().join("data/admin-token"))
            .unwrap()
            .trim()
    );
    let pdp = format!("{}/access/v1", server.url);
    let policy = dir.path().join("grants.cedar");
    std::fs::write(
        &policy,
        "permit(principal, action == Mandate::Action::\"token:issue\", resource);\n\
         permit(principal, action == Mandate::Action::\"delegate\", resource);\n\
         permit(principal, action == Mandate::Action::\"http:request\", resource);\n",
    )
    .unwrap();
    for args in [
        vec![
            "agent",
            "register",
            "alpha",
            "--owner",
            "ann@example.com",
            "--kind",
            "autonomous",
        ],
        vec![
            "provider",
            "add",
            "k8s",
            "--kind",
            "kubernetes",
            "--issuer",
            "https://issuer.example.com",
            "--audience",
            "mandate",
            "--jwks-file",
            &format!("{TESTDATA}/kubernetes/jwks.json"),
        ],
        vec![
            "binding",
            "add",
            "--provider",
            "k8s",
            "--agent",
            "alpha",
            "--match",
            "kubernetes.io.serviceaccount.name=alpha",
        ],
        vec![
            "resource",
            "add",
            "api",
            "--audience",
            "https://api.test",
            "--scopes",
            "read,write",
        ],
        vec![
            "resource",
            "add",
            "pdp",
            "--audience",
            &pdp,
            "--scopes",
            "authzen:evaluate",
        ],
        vec!["policy", "push", policy.to_str().unwrap(), "-m", "grants"],
    ] {
        ok(server.cli(&args));
    }
    let token_url = format!("{}/oauth2/token", server.url);
    let assertion = k8s_token("alpha");
    let grant = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", assertion.as_str()),
        ("resource", "https://api.test"),
        ("scope", "read"),
    ];
    let (status, headers, body) = post_form(&token_url, &grant, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read");
    let token = body["access_token"].as_str().unwrap().to_owned();

    // RFC 6749 errors: JSON with `error`, never a problem document.
    let res = reqwest::Client::new()
        .post(&token_url)
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let (status, _, body) = post_form(&token_url, &[("grant_type", "password")], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, _, body) = post_form(
        &token_url,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &assertion),
            ("resource", "https://unknown.test"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_target"))
    );
    // Every refusal is audited, with the client's address.
    let denied = ok(server.cli(&["audit", "list", "--type", "token.denied", "--json"]));
    assert!(denied.contains("invalid_target"), "{denied}");
    assert!(denied.contains("\"client_ip\": \"127.0.0.1\""), "{denied}");
    let (status, headers, body) = post_form(
        &token_url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "alpha"),
            ("client_secret", "x"),
            ("resource", "https://api.test"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(headers.contains_key("www-authenticate"));

    // Introspection needs a caller.
    let intro_url = format!("{}/oauth2/introspect", server.url);
    let (status, _, body) = post_form(&intro_url, &[("token", &token)], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, _, body) = post_form(&intro_url, &[("token", &token)], Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["aud"], "https://api.test");
    assert_eq!(body["username"], "alpha");

    // The AuthZEN API with a Mandate token for it.
    let pdp_grant = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", assertion.as_str()),
        ("resource", pdp.as_str()),
    ];
    let (_, _, body) = post_form(&token_url, &pdp_grant, None).await;
    let pdp_token = body["access_token"].as_str().unwrap().to_owned();
    let question = json!({"subject": {"type": "agent", "id": "alpha"}, "action": {"name": "http:request"},
                          "resource": {"type": "resource", "id": "api"}});
    let ask = |t: String| {
        let url = format!("{pdp}/evaluation");
        let q = question.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(t)
                .json(&q)
                .send()
                .await
                .unwrap()
        }
    };
    let res = ask(pdp_token.clone()).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["decision"], true);
    // A token for another audience is refused, with an RFC 6750 challenge.
    let res = ask(token.clone()).await;
    assert_eq!(res.status().as_u16(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // ... and the refusal is in the audit log.
    let audit = ok(server.cli(&[
        "audit",
        "list",
        "--type",
        "admin.request_rejected",
        "--json",
    ]));
    assert!(audit.contains("/access/v1/evaluation"), "{audit}");

    // Governance sees the grants: the access review marks `api` and `pdp`
    // used by alpha (issue 7 over this flows).
    let review: Value = serde_json::from_str(&ok(
        server.cli(&["report", "access", "--agent", "alpha", "--format", "json"])
    ))
    .unwrap();
    let grants = review["agents"][0]["grants"].as_array().unwrap().clone();
    for res in ["api", "pdp"] {
        assert!(
            grants
                .iter()
                .any(|g| g["action"] == "token:issue" && g["resource"] == res && g["used"] == true),
            "{review}"
        );
    }
    let inventory = ok(server.cli(&["report", "inventory"]));
    assert!(inventory.contains("| alpha |"), "{inventory}");

    // The CLI lists tokens; suspending the agent revokes them all.
    let list = ok(server.cli(&["token", "list", "--agent", "alpha", "--live"]));
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(ok(server.cli(&["agent", "suspend", "alpha"])).contains("suspended"));
    for t in [&token, &pdp_token] {
        let (_, _, body) = post_form(&intro_url, &[("token", t)], Some(&admin)).await;
        assert_eq!(body, json!({"active": false}));
    }
    assert_eq!(ask(pdp_token.clone()).await.status().as_u16(), 401);
    let all: Value = serde_json::from_str(&ok(
        server.cli(&["token", "list", "--agent", "alpha", "--json"])
    ))
    .unwrap();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "revoked"),
        "{all}"
    );
    assert!(
        ok(server.cli(&["token", "list", "--agent", "alpha", "--live"]))
            .lines()
            .count()
            <= 1
    );

    // Revocation: the holder may revoke its own token without credentials.
    ok(server.cli(&["agent", "resume", "alpha"]));
    let (_, _, body) = post_form(&token_url, &grant, None).await;
    let fresh = body["access_token"].as_str().unwrap().to_owned();
    let (status, headers, _) = post_form(
        &format!("{}/oauth2/revoke", server.url),
        &[("token", &fresh)],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-store");
    let (_, _, body) = post_form(&intro_url, &[("token", &fresh)], Some(&admin)).await;
    assert_eq!(body["active"], false);
    let jti = all[0]["jti"].as_str().unwrap();
    let out = server.cli(&["token", "revoke", "no-such-jti"]);
    assert!(!out.status.success());
    assert!(ok(server.cli(&["token", "revoke", jti])).contains("revoked 0 token(s)"));
    assert!(ok(server.verify()).contains("ok"));
}
