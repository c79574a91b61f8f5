//! The attestation issue's "done when" items 1 and 2, through the real
//! binary: providers of every kind, binding rules, `mandate attest` mapping
//! the Kubernetes fixture token, the AWS fixture document and a join token,
//! precise refusals, and a shadow agent whose count rises.

use std::path::Path;

use mandate_jose::jws::{Algorithm, SigningKey};
use serde_json::{Value, json};

use crate::harness::{Server, ok, stdout};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");
const RS_KID: &str = "JHJehTTTZlsspKHT-GaJxK7Kd1NQgZJu3fyK6K_QDYU";

fn data(rel: &str) -> String {
    format!("{DATA}/{rel}")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A projected service-account token signed now with the fixture RSA key.
fn k8s_token(namespace: &str, sa: &str, exp_in: i64, aud: &str) -> String {
    let key = SigningKey::from_pem(
        Algorithm::Rs256,
        &std::fs::read(data("kubernetes/rsa-private-key.pem")).unwrap(),
    )
    .unwrap()
    .with_kid(RS_KID);
    let now = now();
    let claims = json!({
        "aud": [aud], "exp": now + exp_in, "iat": now - 5, "nbf": now - 5,
        "iss": "https://issuer.example.com",
        "kubernetes.io": {
            "namespace": namespace,
            "pod": {"name": "my-pod", "uid": "5f2a8e61-1c4d-4b7a-a0e9-3d6b2c8f7e15"},
            "serviceaccount": {"name": sa, "uid": "a3c9e0f4-7d21-4e8b-b5f6-0c1d2e3f4a5b"}
        },
        "sub": format!("system:serviceaccount:{namespace}:{sa}"),
    });
    key.sign(None, &serde_json::to_vec(&claims).unwrap())
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn attest(server: &Server, provider: &str, file: &str) -> (bool, String) {
    let out = server.cli(&["attest", "--provider", provider, "--evidence-file", file]);
    (out.status.success(), stdout(&out))
}

#[tokio::test]
async fn providers_bindings_attest_and_shadows_on_sqlite() {
    scenario(None).await;
}

#[tokio::test]
async fn providers_bindings_attest_and_shadows_on_postgres() {
    let Some(db) = mandate_testkit::TestDb::postgres().await else {
        return;
    };
    scenario(Some(&db.url_string)).await;
}

async fn scenario(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("mandate-data"), database);
    for a in ["invoice-bot", "builder", "dev-bot"] {
        ok(server.cli(&[
            "agent",
            "register",
            a,
            "--owner",
            "alice@example.com",
            "--kind",
            "autonomous",
        ]));
    }

    // 1. A provider of every kind.
    let jwks = data("kubernetes/jwks.json");
    let bundle = data("spiffe/spiffebundle/spiffebundle_valid_2.json");
    for args in [
        vec![
            "k8s",
            "--kind",
            "kubernetes",
            "--issuer",
            "https://issuer.example.com",
            "--audience",
            "mandate",
            "--jwks-file",
            &jwks,
        ],
        vec![
            "aws",
            "--kind",
            "aws-iid",
            "--account",
            "692406183521",
            "--region",
            "us-west-2",
            "--max-age",
            "7300d",
        ],
        vec![
            "gha",
            "--kind",
            "github-actions",
            "--audience",
            "mandate",
            "--require",
            "repository_owner=acme",
        ],
        vec!["gitlab", "--kind", "gitlab-ci", "--audience", "mandate"],
        vec![
            "corp",
            "--kind",
            "oidc",
            "--issuer",
            "https://login.example.com",
            "--audience",
            "mandate",
            "--jwks-url",
            "https://login.example.com/keys",
            "--alg",
            "ES256",
        ],
        vec![
            "partner",
            "--kind",
            "spiffe",
            "--trust-domain",
            "example.org",
            "--audience",
            "mandate",
            "--bundle-file",
            &bundle,
        ],
        vec!["dev", "--kind", "join-token", "--default-ttl", "1h"],
        vec![
            "lab",
            "--kind",
            "oidc",
            "--issuer",
            "http://127.0.0.1:9",
            "--audience",
            "mandate",
            "--allow-private-network",
        ],
    ] {
        let mut full = vec!["provider", "add"];
        full.extend(args);
        let out = ok(server.cli(&full));
        assert!(out.starts_with("added provider"), "{out}");
    }
    let show = ok(server.cli(&["provider", "show", "k8s"]));
    for want in [
        "kind:",
        "kubernetes",
        "https://issuer.example.com",
        "inline (2 keys)",
        "kubernetes.io.namespace",
        "allow_private_network: false",
        "RS256, ES256, EdDSA (the default)",
    ] {
        assert!(show.contains(want), "provider show lacks {want:?}:\n{show}");
    }
    let show = ok(server.cli(&["provider", "show", "gha"]));
    assert!(
        show.contains("https://token.actions.githubusercontent.com") || show.contains("discovery"),
        "{show}"
    );
    let show = ok(server.cli(&["provider", "show", "lab", "--json"]));
    let lab: Value = serde_json::from_str(&show).unwrap();
    assert_eq!(lab["allow_private_network"], true);
    let list = ok(server.cli(&["provider", "list"]));
    for name in [
        "k8s", "aws", "gha", "gitlab", "corp", "partner", "dev", "lab",
    ] {
        assert!(list.contains(name), "{list}");
    }
    // SSRF: a metadata-service JWKS URL is refused with the reason.
    let out = server.cli(&[
        "provider",
        "add",
        "evil",
        "--kind",
        "oidc",
        "--issuer",
        "https://x.example",
        "--audience",
        "a",
        "--jwks-url",
        "https://169.254.169.254/latest",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("169.254.169.254"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Binding rules; a tie is refused at creation.
    ok(server.cli(&[
        "binding",
        "add",
        "--provider",
        "k8s",
        "--agent",
        "invoice-bot",
        "--match",
        "kubernetes.io.namespace=billing",
        "--match",
        "kubernetes.io.serviceaccount.name=invoice-bot",
    ]));
    ok(server.cli(&[
        "binding",
        "add",
        "--provider",
        "aws",
        "--agent",
        "builder",
        "--match",
        "account_id=692406183521",
        "--match",
        "region~us-*",
    ]));
    let tie = server.cli(&[
        "binding",
        "add",
        "--provider",
        "k8s",
        "--agent",
        "builder",
        "--match",
        "kubernetes.io.serviceaccount.name=invoice-bot",
        "--match",
        "kubernetes.io.pod.name=my-pod",
    ]);
    assert!(!tie.status.success());
    assert!(
        String::from_utf8_lossy(&tie.stderr).contains("ties with"),
        "{}",
        String::from_utf8_lossy(&tie.stderr)
    );

    // `mandate attest` maps the Kubernetes token, the AWS document and a join token.
    let t = write(
        dir.path(),
        "k8s.jwt",
        &k8s_token("billing", "invoice-bot", 600, "mandate"),
    );
    let (mapped, out) = attest(&server, "k8s", &t);
    assert!(mapped, "{out}");
    assert!(
        out.contains("mapped: agent invoice-bot (spiffe://"),
        "{out}"
    );
    assert!(out.contains("kubernetes.io.namespace = billing"), "{out}");
    assert!(out.contains("kubernetes.io.pod.name = my-pod"), "{out}");
    let (mapped, out) = attest(&server, "aws", &data("aws-iid/rsa2048"));
    assert!(mapped, "{out}");
    assert!(out.contains("mapped: agent builder"), "{out}");
    assert!(out.contains("instance_id = i-0a30e04d85e6f8793"), "{out}");
    let jt = ok(server.cli(&[
        "join-token",
        "create",
        "--provider",
        "dev",
        "--agent",
        "dev-bot",
        "--expires-in",
        "10m",
    ]));
    let token = jt.lines().nth(1).unwrap().trim().to_owned();
    assert!(token.starts_with("mjt_"), "{jt}");
    let f = write(dir.path(), "join", &token);
    let (mapped, out) = attest(&server, "dev", &f);
    assert!(mapped, "{out}");
    assert!(
        out.contains("mapped: agent dev-bot") && out.contains("join token"),
        "{out}"
    );

    // Each refusal explained precisely.
    let cases = [
        ("k8s", k8s_token("billing", "invoice-bot", -120, "mandate"), "[expired]"),
        ("k8s", k8s_token("billing", "invoice-bot", 600, "someone-else"), "[wrong_audience]"),
        ("k8s", "not.a.token".to_owned(), "[malformed_token]"),
        ("nope", "x".to_owned(), "[unknown_provider]"),
        ("dev", "mjt_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".to_owned(), "[unknown_join_token]"),
        ("aws", json!({"document": std::fs::read_to_string(data("aws-iid/document")).unwrap().replace("t2.nano", "t2.large"), "signature": std::fs::read_to_string(data("aws-iid/signature")).unwrap()}).to_string(), "[bad_signature]"),
    ];
    for (i, (provider, evidence, code)) in cases.iter().enumerate() {
        let f = write(dir.path(), &format!("bad-{i}"), evidence);
        let (mapped, out) = attest(&server, provider, &f);
        assert!(!mapped, "{out}");
        assert!(
            out.starts_with("refused: ") && out.contains(code),
            "expected {code}: {out}"
        );
    }
    let out = ok(server.cli(&["audit", "list", "--type", "attestation.refused"]));
    assert!(out.contains("attestation.refused"), "{out}");

    // 2. No binding: a shadow agent whose count rises on repeats.
    let stray = write(
        dir.path(),
        "stray.jwt",
        &k8s_token("ops", "stray-bot", 600, "mandate"),
    );
    for n in 1..=3 {
        let (mapped, out) = attest(&server, "k8s", &stray);
        assert!(!mapped);
        assert!(out.contains(&format!("(seen {n} times)")), "{out}");
        let shadows = ok(server.cli(&["agent", "shadows", "--json"]));
        let v: Value = serde_json::from_str(&shadows).unwrap();
        assert_eq!(v[0]["subject"], "system:serviceaccount:ops:stray-bot");
        assert_eq!(v[0]["count"], n);
    }
    let table = ok(server.cli(&["agent", "shadows"]));
    assert!(
        table.contains("system:serviceaccount:ops:stray-bot") && table.contains("k8s"),
        "{table}"
    );

    // The evidence never reaches the audit log; the chain still verifies.
    let audit = ok(server.cli(&["audit", "list", "--json"]));
    assert!(
        !audit.contains(&token) && !audit.contains(std::fs::read_to_string(&t).unwrap().as_str())
    );
    let verified = server.verify();
    assert!(verified.status.success(), "{}", stdout(&verified));
    server.stop();
}
