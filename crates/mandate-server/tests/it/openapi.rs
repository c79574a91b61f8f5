//! The checked-in OpenAPI document matches the code. Regenerate with
//! `MANDATE_UPDATE_OPENAPI=1 cargo test -p mandate-server openapi`.

use crate::support::start;

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

#[test]
fn checked_in_openapi_document_matches_the_code() {
    let generated = mandate_server::openapi::document();
    if std::env::var_os("MANDATE_UPDATE_OPENAPI").is_some() {
        std::fs::write(CHECKED_IN, &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/openapi.json is out of date: run `MANDATE_UPDATE_OPENAPI=1 cargo test -p mandate-server openapi` and commit it"
    );
}

#[tokio::test]
async fn openapi_document_is_served_and_describes_every_admin_route() {
    let r = start().await;
    let doc: serde_json::Value = reqwest::get(format!("{}/admin/v1/openapi.json", r.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/admin/v1/agents",
        "/admin/v1/agents/{name}",
        "/admin/v1/agents/{name}/suspend",
        "/admin/v1/admin-tokens",
        "/admin/v1/audit",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
}
