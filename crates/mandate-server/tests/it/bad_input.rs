//! Bad input gets a problem document with a stable code, is audited, and
//! never causes a 5xx.

use mandate_store::AuditFilter;
use serde_json::Value;

use crate::support::{Running, start};

/// What a bad request looks like and what it must get back.
type Case = (
    &'static str,
    u16,
    &'static str,
    Option<&'static str>,
    Vec<u8>,
);

async fn send(
    r: &Running,
    method: reqwest::Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let client = reqwest::Client::new();
    let mut req = client
        .request(method, format!("{}{path}", r.url))
        .bearer_auth(&r.token)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let json = res.json::<Value>().await.unwrap_or(Value::Null);
    (status, json, headers)
}

async fn rejected_codes(r: &Running) -> Vec<String> {
    let f = AuditFilter {
        event_type: Some("admin.request_rejected".into()),
        ..Default::default()
    };
    r.engine
        .list_audit(&f)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.detail["code"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn malformed_oversized_and_unknown_input_is_a_4xx_problem_and_audited() {
    let r = start().await;
    let post = reqwest::Method::POST;
    let json = Some("application/json");
    let cases: Vec<Case> = vec![
        (
            "malformed json",
            400,
            "invalid_body",
            json,
            b"{\"name\": ".to_vec(),
        ),
        (
            "bad utf-8",
            400,
            "invalid_body",
            json,
            b"{\"name\": \"\xff\xfe\"}".to_vec(),
        ),
        (
            "unknown field",
            400,
            "invalid_body",
            json,
            br#"{"name":"a","owner":"a@b.c","kind":"autonomous","admin":true}"#.to_vec(),
        ),
        (
            "wrong type",
            400,
            "invalid_body",
            json,
            br#"{"name":7}"#.to_vec(),
        ),
        (
            "huge body",
            413,
            "body_too_large",
            json,
            vec![b' '; 200_000],
        ),
        (
            "not json",
            415,
            "unsupported_media_type",
            Some("text/plain"),
            b"name=a".to_vec(),
        ),
        (
            "bad kind",
            400,
            "invalid_field",
            json,
            br#"{"name":"a","owner":"a@b.c","kind":"robot"}"#.to_vec(),
        ),
        (
            "bad label",
            400,
            "invalid_field",
            json,
            br#"{"name":"a","owner":"a@b.c","kind":"autonomous","labels":{"k":"has space"}}"#
                .to_vec(),
        ),
    ];
    let mut expected = Vec::new();
    for (what, status, code, ct, body) in cases {
        let (got, problem, headers) = send(&r, post.clone(), "/admin/v1/agents", ct, body).await;
        assert_eq!(got, status, "{what}: {problem}");
        assert_eq!(problem["code"], code, "{what}: {problem}");
        assert_eq!(problem["status"], status, "{what}");
        assert_eq!(problem["instance"], "/admin/v1/agents", "{what}");
        assert!(problem["request_id"].is_string(), "{what}");
        assert_eq!(
            headers["content-type"], "application/problem+json",
            "{what}"
        );
        expected.push(code.to_owned());
    }
    assert_eq!(rejected_codes(&r).await, expected);
    // Nothing was registered by any of them.
    let (_, page, _) = send(&r, reqwest::Method::GET, "/admin/v1/agents", None, vec![]).await;
    assert_eq!(page["items"], Value::Array(vec![]));
}

#[tokio::test]
async fn unknown_routes_methods_agents_and_filters_are_problems() {
    let r = start().await;
    let (s, p, _) = send(
        &r,
        reqwest::Method::GET,
        "/admin/v1/agents/nobody",
        None,
        vec![],
    )
    .await;
    assert_eq!((s, p["code"].as_str()), (404, Some("agent_not_found")));
    let (s, p, _) = send(
        &r,
        reqwest::Method::GET,
        "/admin/v1/agents/Not%20A%20Name",
        None,
        vec![],
    )
    .await;
    assert_eq!(
        (s, p["code"].as_str(), p["field"].as_str()),
        (400, Some("invalid_field"), Some("name"))
    );
    let (s, p, _) = send(
        &r,
        reqwest::Method::GET,
        "/admin/v1/nothing-here",
        None,
        vec![],
    )
    .await;
    assert_eq!((s, p["code"].as_str()), (404, Some("route_not_found")));
    let (s, p, _) = send(
        &r,
        reqwest::Method::DELETE,
        "/admin/v1/agents",
        None,
        vec![],
    )
    .await;
    assert_eq!((s, p["code"].as_str()), (405, Some("method_not_allowed")));
    let (s, p, _) = send(
        &r,
        reqwest::Method::GET,
        "/admin/v1/agents?status=sleeping",
        None,
        vec![],
    )
    .await;
    assert_eq!((s, p["field"].as_str()), (400, Some("status")));
    let (s, p, _) = send(
        &r,
        reqwest::Method::GET,
        "/admin/v1/agents?limit=-3",
        None,
        vec![],
    )
    .await;
    assert_eq!((s, p["code"].as_str()), (400, Some("invalid_query")));
    let (s, p, _) = send(
        &r,
        reqwest::Method::GET,
        "/admin/v1/audit?since=yesterday",
        None,
        vec![],
    )
    .await;
    assert_eq!((s, p["field"].as_str()), (400, Some("since")));
    assert_eq!(rejected_codes(&r).await.len(), 7);
}

#[tokio::test]
async fn missing_and_wrong_tokens_get_401_with_a_bearer_challenge() {
    let r = start().await;
    let client = reqwest::Client::new();
    for auth in [
        None,
        Some("Bearer mdt_aaaaaaaaaaaa_xxxxxxxx"),
        Some("Basic YWRtaW46YWRtaW4="),
        Some("Bearer "),
    ] {
        let mut req = client.get(format!("{}/admin/v1/agents", r.url));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{auth:?}");
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["code"], "unauthorized");
    }
    let events = r
        .engine
        .list_audit(&AuditFilter::default())
        .await
        .unwrap()
        .items;
    let unauth: Vec<_> = events
        .iter()
        .filter(|e| e.detail["code"] == "unauthorized")
        .collect();
    assert_eq!(unauth.len(), 4);
    assert!(unauth.iter().all(|e| e.actor.is_none()));
}

#[tokio::test]
async fn admin_tokens_are_shown_once_and_never_listed_or_audited() {
    let r = start().await;
    let (s, created, _) = send(
        &r,
        reqwest::Method::POST,
        "/admin/v1/admin-tokens",
        Some("application/json"),
        br#"{"name":"ci","expires_in":3600}"#.to_vec(),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("mdt_"));
    let (_, list, _) = send(
        &r,
        reqwest::Method::GET,
        "/admin/v1/admin-tokens",
        None,
        vec![],
    )
    .await;
    assert!(!list.to_string().contains(&secret[16..]));
    let events = serde_json::to_string(
        &r.engine
            .list_audit(&AuditFilter::default())
            .await
            .unwrap()
            .items,
    )
    .unwrap();
    assert!(
        !events.contains(&secret[16..]),
        "a token secret reached the audit log"
    );
    assert!(
        !events.contains(&r.token[17..]),
        "the bootstrap secret reached the audit log"
    );
    // The new token works, and stops working once revoked.
    let id = created["id"].as_str().unwrap();
    let client = reqwest::Client::new();
    let res = client
        .get(format!("{}/admin/v1/agents", r.url))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (s, _, _) = send(
        &r,
        reqwest::Method::POST,
        &format!("/admin/v1/admin-tokens/{id}/revoke"),
        None,
        vec![],
    )
    .await;
    assert_eq!(s, 200);
    let res = client
        .get(format!("{}/admin/v1/agents", r.url))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}
