//! The attestation admin endpoints over loopback: problem codes, the dry
//! run's report, and the audit of refused requests.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::support::{Running, start};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");

async fn call(
    r: &Running,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Client::new()
        .request(method, format!("{}/admin/v1{path}", r.url))
        .bearer_auth(&r.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn providers_bindings_and_dry_runs_over_http() {
    use reqwest::Method;
    let r = start().await;
    let (s, _) = call(
        &r,
        Method::POST,
        "/agents",
        Some(json!({"name": "builder", "owner": "a@example.com", "kind": "autonomous"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let aws = json!({"name": "aws", "kind": "aws-iid", "config": {"accounts": ["692406183521"], "max_age_secs": 315_360_000}});
    let (s, p) = call(&r, Method::POST, "/providers", Some(aws.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["kind"], "aws-iid");
    assert_eq!(p["allow_private_network"], false);
    let (s, p) = call(&r, Method::POST, "/providers", Some(aws)).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("provider_exists"))
    );
    let bad = json!({"name": "x", "kind": "oidc", "config": {"issuer": "https://i.example", "audience": "a", "keys": {"from": "url", "url": "https://[::ffff:169.254.169.254]/"}}});
    let (s, p) = call(&r, Method::POST, "/providers", Some(bad)).await;
    assert_eq!(
        (s, p["code"].as_str(), p["field"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("invalid_field"),
            Some("config")
        )
    );
    let (s, p) = call(&r, Method::GET, "/providers/nope", None).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("provider_not_found"))
    );

    let rule = json!({"provider": "aws", "agent": "builder", "matches": [{"claim": "account_id", "op": "exact", "value": "692406183521"}]});
    let (s, b) = call(&r, Method::POST, "/bindings", Some(rule.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, p) = call(&r, Method::POST, "/bindings", Some(rule)).await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("binding_tie"))
    );

    let evidence = std::fs::read_to_string(format!("{DATA}/aws-iid/rsa2048")).unwrap();
    let (s, rep) = call(
        &r,
        Method::POST,
        "/attest",
        Some(json!({"provider": "aws", "evidence": evidence})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(rep["outcome"], "mapped");
    assert_eq!(rep["agent"], "builder");
    assert_eq!(rep["claims"]["instance_id"], "i-0a30e04d85e6f8793");
    let (s, rep) = call(
        &r,
        Method::POST,
        "/attest",
        Some(json!({"provider": "aws", "evidence": "junk"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(rep["outcome"], "refused");
    assert_eq!(rep["code"], "malformed_evidence");

    let (s, _) = call(
        &r,
        Method::DELETE,
        &format!("/bindings/{}", b["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, rep) = call(
        &r,
        Method::POST,
        "/attest",
        Some(json!({"provider": "aws", "evidence": evidence})),
    )
    .await;
    assert_eq!(
        (s, rep["outcome"].as_str()),
        (StatusCode::OK, Some("shadow"))
    );
    let (_, shadows) = call(&r, Method::GET, "/shadows?provider=aws", None).await;
    assert_eq!(shadows["items"][0]["subject"], "i-0a30e04d85e6f8793");
    assert_eq!(shadows["items"][0]["count"], 1);

    // Refused admin requests are audited as before.
    let (_, audit) = call(&r, Method::GET, "/audit?type=admin.request_rejected", None).await;
    let codes: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["detail"]["code"].as_str())
        .collect();
    for code in [
        "provider_exists",
        "invalid_field",
        "provider_not_found",
        "binding_tie",
    ] {
        assert!(codes.contains(&code), "{codes:?}");
    }
}
