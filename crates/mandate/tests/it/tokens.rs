//! The token service's keys, metadata and resources, through the real binary.

use serde_json::Value;

use crate::harness::{Server, ok, stderr};

async fn get_json(url: &str) -> (reqwest::header::HeaderMap, Value) {
    let res = reqwest::get(url).await.unwrap();
    assert!(res.status().is_success(), "{url}: {}", res.status());
    let headers = res.headers().clone();
    (headers, res.json().await.unwrap())
}

#[tokio::test]
async fn keys_metadata_and_resources_on_sqlite() {
    scenario(None).await;
}

#[tokio::test]
async fn keys_metadata_and_resources_on_postgres() {
    let Some(db) = mandate_testkit::TestDb::postgres().await else {
        return;
    };
    scenario(Some(&db.url_string)).await;
}

async fn scenario(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), database);

    // Metadata: the issuer is the public URL byte for byte, in both documents.
    for doc in ["oauth-authorization-server", "openid-configuration"] {
        let (_, meta) = get_json(&format!("{}/.well-known/{doc}", server.url)).await;
        assert_eq!(meta["issuer"], server.url.as_str(), "{doc}");
        assert_eq!(
            meta["jwks_uri"],
            format!("{}/.well-known/jwks.json", server.url)
        );
        assert_eq!(
            meta["token_endpoint"],
            format!("{}/oauth2/token", server.url)
        );
        let grants = meta["grant_types_supported"].as_array().unwrap();
        assert!(grants.contains(&Value::from("client_credentials")));
        assert_eq!(meta["dpop_signing_alg_values_supported"][0], "ES256");
        assert_eq!(meta["scopes_supported"], Value::Array(vec![]));
    }

    // One key at first start, published with a cache lifetime.
    let jwks_url = format!("{}/.well-known/jwks.json", server.url);
    let (headers, jwks) = get_json(&jwks_url).await;
    assert_eq!(
        headers["cache-control"].to_str().unwrap(),
        "public, max-age=300"
    );
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["alg"], "ES256");
    assert!(keys[0].get("d").is_none(), "no private material");
    let first_kid = keys[0]["kid"].as_str().unwrap().to_owned();
    let listed: Value = serde_json::from_str(&ok(server.cli(&["keys", "list", "--json"]))).unwrap();
    assert_eq!(listed[0]["kid"], first_kid.as_str());
    assert_eq!(listed[0]["state"], "active");

    // Rotation publishes a second key that is `next`.
    let rotated: Value =
        serde_json::from_str(&ok(server.cli(&["keys", "rotate", "--json"]))).unwrap();
    assert_eq!(rotated["state"], "next");
    let (_, jwks) = get_json(&jwks_url).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [first_kid.as_str(), rotated["kid"].as_str().unwrap()]);
    let listed = ok(server.cli(&["keys", "list"]));
    assert!(
        listed.contains("next") && listed.contains("active"),
        "{listed}"
    );
    // A second rotation while one is pending is refused.
    let out = server.cli(&["keys", "rotate"]);
    assert!(!out.status.success());

    // Resources.
    let added: Value = serde_json::from_str(&ok(server.cli(&[
        "resource",
        "add",
        "billing",
        "--audience",
        "https://billing.example.com",
        "--scopes",
        "invoices:read,invoices:write",
        "--max-ttl",
        "5m",
        "--kind",
        "http",
        "--sensitivity",
        "confidential",
        "--owner",
        "fiona@example.com",
        "--json",
    ])))
    .unwrap();
    assert_eq!(added["max_ttl_secs"], 300);
    let list: Value =
        serde_json::from_str(&ok(server.cli(&["resource", "list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["audience"], "https://billing.example.com");
    let shown: Value =
        serde_json::from_str(&ok(server.cli(&["resource", "show", "billing"]))).unwrap();
    assert_eq!(shown["scopes"][1], "invoices:write");
    let (_, meta) = get_json(&format!(
        "{}/.well-known/oauth-authorization-server",
        server.url
    ))
    .await;
    assert_eq!(
        meta["scopes_supported"],
        serde_json::json!(["invoices:read", "invoices:write"])
    );

    // Duplicate audience: 409 resource_exists. Bad audience: 400 naming the field.
    let token = std::fs::read_to_string(dir.path().join("data/admin-token")).unwrap();
    let client = reqwest::Client::new();
    let post = |body: Value| {
        client
            .post(format!("{}/admin/v1/resources", server.url))
            .bearer_auth(token.trim())
            .json(&body)
            .send()
    };
    let res = post(serde_json::json!({"name": "billing2", "audience": "https://billing.example.com", "scopes": ["x"]}))
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "resource_exists");
    let res =
        post(serde_json::json!({"name": "ledger", "audience": "ledger.internal", "scopes": ["x"]}))
            .await
            .unwrap();
    assert_eq!(res.status(), 400);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_field");
    assert_eq!(problem["field"], "audience");
    let out = server.cli(&[
        "resource",
        "add",
        "slow",
        "--audience",
        "https://slow.example.com",
        "--scopes",
        "x",
        "--max-ttl",
        "2h",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("max_ttl"), "{}", stderr(&out));

    ok(server.cli(&["resource", "remove", "billing"]));
    let list: Value =
        serde_json::from_str(&ok(server.cli(&["resource", "list", "--json"]))).unwrap();
    assert!(list.as_array().unwrap().is_empty());

    // Every change is audited, never with key material.
    let events: Value =
        serde_json::from_str(&ok(server.cli(&["audit", "list", "--json"]))).unwrap();
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for t in [
        "key.created",
        "key.rotated",
        "resource.added",
        "resource.removed",
    ] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
    server.stop();

    // A restart keeps both keys (no new first key).
    let server = Server::start(&dir.path().join("data"), database);
    let (_, jwks) = get_json(&format!("{}/.well-known/jwks.json", server.url)).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    server.stop();
}
