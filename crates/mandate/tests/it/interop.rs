//! The token service issue's interop "done when": `openid-client` (npm)
//! completes discovery, jwt-bearer, private_key_jwt client credentials, token
//! exchange and DPoP against a fresh server; PyJWT validates the tokens
//! (audience, issuer) and reads the `act` chain.
//!
//! The foreign clients live in `interop/` and are installed by
//! `bash interop/install.sh` (CI does). Without them the test says why and
//! passes, except under `CI`, where it fails.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::harness::{Server, interop_dir, ok, python, stderr, stdout};

const API: &str = "https://api.interop.test";
const K8S_ISSUER: &str = "https://k8s.interop.test";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const AGENTS: [&str; 3] = ["parent-bot", "child-bot", "grandchild-bot"];

/// Why the foreign clients cannot run here, if they cannot.
fn missing_clients() -> Option<String> {
    let runs = |cmd: &mut Command| cmd.output().is_ok_and(|o| o.status.success());
    if !runs(Command::new("node").arg("--version")) {
        return Some("node is not installed".into());
    }
    if !interop_dir().join("node_modules/openid-client").exists() {
        return Some("interop/node_modules has no openid-client".into());
    }
    if !runs(Command::new(python()).args(["-c", "import jwt, cryptography"])) {
        return Some("PyJWT[crypto] is not installed".into());
    }
    None
}

fn node(args: &[&str]) -> Output {
    Command::new("node")
        .arg(interop_dir().join("openid_client.mjs"))
        .args(args)
        .output()
        .unwrap()
}

/// `pyjwt_verify.py` on tokens that must all carry `audience`.
fn pyjwt(issuer: &str, audience: &str, dir: &Path, tokens: &[(&str, &str)]) -> Vec<Value> {
    let mut cmd = Command::new(python());
    cmd.arg(interop_dir().join("pyjwt_verify.py")).args([
        "--issuer",
        issuer,
        "--audience",
        audience,
    ]);
    for (name, token) in tokens {
        let path = dir.join(format!("{name}.jwt"));
        std::fs::write(&path, token).unwrap();
        cmd.arg(path);
    }
    let out = cmd.output().unwrap();
    let text = ok(out);
    let list: Value = serde_json::from_str(&text).unwrap();
    assert!(list.is_array(), "pyjwt printed no list: {text}");
    list.as_array().unwrap().clone()
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    assert!(v.is_string(), "{what} is not a string: {v}");
    v.as_str().unwrap()
}

/// `aud` as one string (RFC 9068 allows a one-element array too).
fn audience(claims: &Value) -> &str {
    match &claims["aud"] {
        Value::Array(a) if a.len() == 1 => str_of(&a[0], "aud[0]"),
        v => str_of(v, "aud"),
    }
}

/// The `act` chain, current actor first.
fn act_chain(claims: &Value) -> Vec<String> {
    let mut chain = Vec::new();
    let mut act = &claims["act"];
    while act.is_object() {
        chain.push(str_of(&act["sub"], "act.sub").to_owned());
        act = &act["act"];
    }
    chain
}

#[tokio::test]
async fn openid_client_and_pyjwt_against_a_fresh_server() {
    if let Some(why) = missing_clients() {
        mandate_testkit::skip(
            "the interop test",
            &format!("{why}; run `bash interop/install.sh`"),
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    ok(node(&["keygen", keys.to_str().unwrap()]));
    let server = Server::start(&dir.path().join("data"), None);
    let issuer = server.url.clone();
    let pdp = format!("{issuer}/access/v1");

    // Configure it as an operator would: agents mapped from a cluster's
    // service-account tokens, the parent's own key for private_key_jwt, two
    // resources, and a policy that lets agents get tokens and delegate.
    let k8s_jwks = keys.join("k8s-jwks.json");
    ok(server.cli(&[
        "provider",
        "add",
        "k8s",
        "--kind",
        "kubernetes",
        "--issuer",
        K8S_ISSUER,
        "--audience",
        "mandate",
        "--jwks-file",
        k8s_jwks.to_str().unwrap(),
    ]));
    for agent in AGENTS {
        ok(server.cli(&[
            "agent",
            "register",
            agent,
            "--owner",
            "ann@example.com",
            "--kind",
            "autonomous",
        ]));
        let sa = format!("kubernetes.io.serviceaccount.name={agent}");
        ok(server.cli(&[
            "binding",
            "add",
            "--provider",
            "k8s",
            "--agent",
            agent,
            "--match",
            "kubernetes.io.namespace=interop",
            "--match",
            &sa,
        ]));
    }
    let agent_jwks = keys.join("agent-jwks.json");
    ok(server.cli(&[
        "agent",
        "jwks",
        "set",
        "parent-bot",
        "--jwks-file",
        agent_jwks.to_str().unwrap(),
    ]));
    ok(server.cli(&[
        "resource",
        "add",
        "api",
        "--audience",
        API,
        "--scopes",
        "read,write",
    ]));
    ok(server.cli(&[
        "resource",
        "add",
        "pdp",
        "--audience",
        &pdp,
        "--scopes",
        "authzen:evaluate",
    ]));
    let policy = dir.path().join("interop.cedar");
    std::fs::write(
        &policy,
        "@id(\"agents-get-tokens\")\n\
         permit (principal, action == Mandate::Action::\"token:issue\", resource)\n\
         when { principal.status == \"active\" };\n\
         @id(\"agents-delegate\")\n\
         permit (principal, action == Mandate::Action::\"delegate\", resource);\n",
    )
    .unwrap();
    ok(server.cli(&["policy", "push", policy.to_str().unwrap(), "-m", "interop"]));

    // openid-client runs every flow.
    let config = json!({
        "issuer": issuer,
        "keys_dir": keys,
        "k8s": {"issuer": K8S_ISSUER, "audience": "mandate", "namespace": "interop"},
        "agents": {"parent": "parent-bot", "child": "child-bot", "grandchild": "grandchild-bot"},
        "resource": {"audience": API, "scope": "read write", "child_scope": "read"},
        "pdp": {"audience": pdp, "scope": "authzen:evaluate"},
    });
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let out = node(&["run", config_path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "openid-client failed:\n{}{}",
        stderr(&out),
        stdout(&out)
    );
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();

    // Discovery: both documents name this server, byte for byte.
    assert_eq!(r["discovery"]["issuer"], issuer.as_str());
    assert_eq!(r["discovery"]["oauth2_issuer"], issuer.as_str());
    assert_eq!(
        r["discovery"]["token_endpoint"],
        format!("{issuer}/oauth2/token")
    );

    // Every token: an RFC 9068 JWT from this issuer for the asked resource.
    let spiffe = |agent: &str| {
        let sub = str_of(&r["jwt_bearer"]["claims"]["sub"], "sub");
        let domain = sub.strip_suffix("/agent/parent-bot");
        assert!(domain.is_some(), "jwt-bearer sub {sub} is not the parent's");
        let domain = domain.unwrap();
        format!("{domain}/agent/{agent}")
    };
    let parent_id = spiffe("parent-bot");
    assert!(parent_id.starts_with("spiffe://"), "{parent_id}");
    for (step, agent, aud) in [
        ("jwt_bearer", "parent-bot", API),
        ("client_credentials", "parent-bot", API),
        ("exchange", "parent-bot", API),
        ("exchange2", "parent-bot", API),
        ("dpop", "parent-bot", pdp.as_str()),
    ] {
        let t = &r[step];
        assert_eq!(t["header"]["typ"], "at+jwt", "{step}");
        assert_eq!(t["header"]["alg"], "ES256", "{step}");
        assert_eq!(t["claims"]["iss"], issuer.as_str(), "{step}");
        assert_eq!(audience(&t["claims"]), aud, "{step}");
        assert_eq!(t["claims"]["sub"], spiffe(agent), "{step}");
        for claim in ["exp", "iat", "jti", "txn"] {
            assert!(!t["claims"][claim].is_null(), "{step} lacks {claim}");
        }
    }
    // openid-client lower-cases token_type.
    for step in ["jwt_bearer", "client_credentials", "exchange", "exchange2"] {
        assert_eq!(r[step]["token_type"], "bearer", "{step}");
    }
    assert_eq!(r["jwt_bearer"]["scope"], "read write");
    assert_eq!(r["client_credentials"]["claims"]["client_id"], "parent-bot");

    // Token exchange: the subject stays the parent, the scope narrows, the
    // actors nest current first, the transaction id is kept, and the
    // delegated token never outlives its parent.
    let parent = &r["jwt_bearer"]["claims"];
    for (step, chain) in [
        ("exchange", vec![spiffe("child-bot"), parent_id.clone()]),
        (
            "exchange2",
            vec![
                spiffe("grandchild-bot"),
                spiffe("child-bot"),
                parent_id.clone(),
            ],
        ),
    ] {
        let t = &r[step];
        assert_eq!(t["issued_token_type"], ACCESS_TOKEN_TYPE, "{step}");
        assert_eq!(t["scope"], "read", "{step}");
        assert_eq!(act_chain(&t["claims"]), chain, "{step}");
        assert_eq!(t["claims"]["txn"], parent["txn"], "{step}");
        assert!(
            t["claims"]["exp"].as_i64().unwrap() <= parent["exp"].as_i64().unwrap(),
            "{step} outlives its parent"
        );
    }

    // DPoP: the server asked for a nonce, openid-client retried with it, and
    // the token is bound to the client's key.
    let d = &r["dpop"];
    assert_eq!(d["token_type"], "dpop");
    assert_eq!(d["claims"]["cnf"]["jkt"], d["key_thumbprint"]);
    let calls = d["token_endpoint_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls.iter().all(|c| c["dpop_proof"] == true), "{calls:?}");
    assert_eq!(calls[0]["status"], 400);
    assert_eq!(calls[0]["error"], "use_dpop_nonce");
    assert_eq!(calls[0]["dpop_nonce"], true);
    assert_eq!(calls[1]["status"], 200);
    // The DPoP-bound AuthZEN call is answered with a decision; the same
    // token without its proof is refused.
    assert_eq!(r["authzen"]["status"], 200, "{}", r["authzen"]);
    assert_eq!(r["authzen"]["body"]["decision"], true, "{}", r["authzen"]);
    assert_eq!(r["authzen_without_proof"]["status"], 401);

    // PyJWT verifies every token against the published JWKS, and reads the
    // same act chain.
    let token = |step: &str| str_of(&r[step]["access_token"], step).to_owned();
    let api_tokens = ["jwt_bearer", "client_credentials", "exchange", "exchange2"].map(token);
    let verified = pyjwt(
        &issuer,
        API,
        dir.path(),
        &[
            ("jwt_bearer", &api_tokens[0]),
            ("client_credentials", &api_tokens[1]),
            ("exchange", &api_tokens[2]),
            ("exchange2", &api_tokens[3]),
        ],
    );
    assert_eq!(verified.len(), 4);
    for v in &verified {
        assert_eq!(v["header"]["typ"], "at+jwt");
        assert_eq!(v["claims"]["iss"], issuer.as_str());
    }
    assert_eq!(verified[0]["act_chain"], json!([]));
    assert_eq!(
        verified[3]["act_chain"],
        json!([spiffe("grandchild-bot"), spiffe("child-bot"), parent_id])
    );
    let verified = pyjwt(&issuer, &pdp, dir.path(), &[("dpop", &token("dpop"))]);
    assert_eq!(verified[0]["claims"]["cnf"]["jkt"], d["key_thumbprint"]);
    // A token for one resource does not verify for another.
    let mut cmd = Command::new(python());
    let wrong = dir.path().join("jwt_bearer.jwt");
    cmd.arg(interop_dir().join("pyjwt_verify.py"))
        .args(["--issuer", &issuer, "--audience", &pdp])
        .arg(&wrong);
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("InvalidAudienceError"),
        "{}",
        stderr(&out)
    );

    // Everything the clients did is on the audit chain, and it verifies.
    let out = server.verify();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok: "), "{}", stdout(&out));
    server.stop();
}
