//! The internal API standalone gateways call (`/internal/v1/gateway/...`):
//! who may call it and what a caller can and cannot make it do.

use mandate_engine::{NewSecret, SecretConfig};
use mandate_gateway::{GATEWAY_SCOPE, INTERNAL_PATH};
use mandate_jose::SecretString;
use serde_json::{Value, json};

use crate::support::{SECRET, env, upstream};

/// POSTs `body` to the internal API's `path` with `token`.
async fn post(url: &str, path: &str, token: Option<&str>, body: &Value) -> (u16, Value, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}{INTERNAL_PATH}{path}"))
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, body, challenge)
}

#[tokio::test]
async fn int_01_agent_tokens_for_routes_cannot_open_the_internal_api() {
    let (up, _log) = upstream(None).await;
    let env = env(&up).await;
    let route_token = env.token("api", "read", None).await;
    for token in [None, Some(route_token.as_str()), Some("not-a-token")] {
        let (status, body, challenge) =
            post(&env.url, "/credentials/upstream-key", token, &json!({})).await;
        assert_eq!(status, 401, "{body}");
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(!body.to_string().contains(SECRET));
    }
    // A token for the internal API without its scope: 403.
    let internal = format!("{}{INTERNAL_PATH}", env.url);
    let unscoped = env.token_for(&internal, "other", None).await;
    let (status, _, challenge) = post(
        &env.url,
        "/credentials/upstream-key",
        Some(&unscoped),
        &json!({}),
    )
    .await;
    assert_eq!(status, 403);
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert_eq!(env.events("gateway.internal_rejected").await.len(), 4);
    assert!(env.events("gateway.credential_fetched").await.is_empty());
}

#[tokio::test]
async fn int_02_a_gateway_cannot_ship_events_it_does_not_own() {
    let (up, _log) = upstream(None).await;
    let env = env(&up).await;
    let internal = format!("{}{INTERNAL_PATH}", env.url);
    let token = env.token_for(&internal, GATEWAY_SCOPE, None).await;
    let event = |event_type: &str| {
        json!({"durable": true, "events": [{
            "event_type": event_type, "actor": "agent:alpha", "target": "resource:api",
            "outcome": "success", "detail": {"gateway": "someone-else", "resource": "api"},
        }]})
    };
    for forged in [
        "agent.registered",
        "token.issued",
        "gateway.internal_rejected",
    ] {
        let before = env.events(forged).await.len();
        let (status, body, _) = post(&env.url, "/audit", Some(&token), &event(forged)).await;
        assert_eq!(status, 400, "{forged}: {body}");
        assert_eq!(
            env.events(forged).await.len(),
            before,
            "{forged} was written"
        );
    }
    // Its own events are written, naming the gateway that shipped them,
    // whatever the gateway says.
    let (status, body, _) = post(&env.url, "/audit", Some(&token), &event("gateway.request")).await;
    assert_eq!(status, 200, "{body}");
    let written = env.events("gateway.request").await;
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].detail["gateway"], "alpha");
}

#[tokio::test]
async fn int_03_only_credentials_a_route_injects_are_handed_out() {
    let (up, _log) = upstream(None).await;
    let env = env(&up).await;
    env.engine
        .set_secret(
            &env.admin,
            NewSecret {
                name: "unrouted".into(),
                kind: "static".into(),
                config: SecretConfig::default(),
                value: Some(SecretString::from("unrouted-secret-value".to_owned())),
            },
        )
        .await
        .unwrap();
    let internal = format!("{}{INTERNAL_PATH}", env.url);
    let token = env.token_for(&internal, GATEWAY_SCOPE, None).await;
    let (status, body, _) = post(&env.url, "/credentials/unrouted", Some(&token), &json!({})).await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.to_string().contains("unrouted-secret-value"));

    let (status, body, _) = post(
        &env.url,
        "/credentials/upstream-key",
        Some(&token),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let version = body["opened"]["updated_at"].clone();
    assert_eq!(body["opened"]["kind"], "static");
    let fetched = env.events("gateway.credential_fetched").await;
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].detail["gateway"], "alpha");
    assert!(!fetched[0].detail.to_string().contains(SECRET));
    // Asked again with the version it holds: no secret in the answer, and
    // nothing handed out to audit.
    let (status, body, _) = post(
        &env.url,
        "/credentials/upstream-key",
        Some(&token),
        &json!({ "known_updated_at": version }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!("unchanged"));
    assert_eq!(env.events("gateway.credential_fetched").await.len(), 1);
}

#[tokio::test]
async fn int_04_upstream_jwts_speak_only_for_a_valid_token_of_the_route() {
    let (up, _log) = upstream(None).await;
    let env = env(&up).await;
    let internal = format!("{}{INTERNAL_PATH}", env.url);
    let token = env.token_for(&internal, GATEWAY_SCOPE, None).await;
    let other_route = env.token("other", "read", None).await;
    for (agent_token, why) in [
        ("forged.token.value", "forged"),
        (other_route.as_str(), "another route"),
    ] {
        let (status, body, _) = post(
            &env.url,
            "/upstream-jwt",
            Some(&token),
            &json!({"token": agent_token, "resource": "api", "audience": "https://up", "ttl_secs": 60}),
        )
        .await;
        assert_eq!(status, 400, "{why}: {body}");
    }
    // A valid one: the JWT's subject and txn are the token's.
    let route_token = env.token("api", "read", None).await;
    let (status, body, _) = post(
        &env.url,
        "/upstream-jwt",
        Some(&token),
        &json!({"token": route_token, "resource": "api", "audience": "https://up", "ttl_secs": 60}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let jwt = body["jwt"].as_str().unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["client_id"], "alpha", "{claims}");
    assert_eq!(claims["aud"], "https://up");
}
