//! The gateway decides on exactly what it forwards: one canonical path,
//! no method overrides, and every call's event says how it ended. Requests
//! are sent on raw sockets: an HTTP client would normalise the paths these
//! tests are about before they left.

use http::StatusCode;
use mandate_engine::{EmptySegments, NewResource, PolicyFile};
use mandate_gateway::REDACTED;

use crate::support::*;

/// Sends `method target` with `token` (and `extra` header lines) on a raw
/// socket; returns the status and the whole answer.
async fn send(env: &Env, method: &str, target: &str, token: &str, extra: &str) -> (u16, String) {
    let host = env.url.trim_start_matches("http://");
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 0\r\n{extra}Connection: close\r\n\r\n"
    );
    let answer = raw(&env.url, req.as_bytes()).await;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// What the upstream received last, if anything new arrived since `before`.
fn received_since(log: &Log, before: usize) -> Option<Seen> {
    let seen = log.lock().unwrap();
    (seen.len() > before).then(|| seen[seen.len() - 1].clone())
}

/// Adds HTTP route `name` to `upstream` (shaped by `shape`) that policy
/// lets anyone call, besides the suite's usual policies.
async fn add_route(env: &Env, name: &str, upstream: &str, shape: impl FnOnce(&mut NewResource)) {
    let mut r = NewResource {
        name: name.into(),
        audience: format!("{}/gw/{name}", env.url),
        scopes: vec!["read".into()],
        upstream: Some(upstream.to_owned()),
        credential: Some("upstream-key".into()),
        kind: Some("http".into()),
        ..Default::default()
    };
    shape(&mut r);
    env.engine.add_resource(&env.admin, r).await.unwrap();
    let extra = format!(
        "permit(principal, action == Mandate::Action::\"http:request\", resource == Mandate::Resource::\"{name}\");"
    );
    push_with(env, &extra).await;
}

/// Makes the test policy plus `extra` the active set.
async fn push_with(env: &Env, extra: &str) {
    env.engine
        .push_policies(
            &env.admin,
            vec![PolicyFile {
                name: "gw.cedar".into(),
                text: format!("{POLICY}\n{extra}"),
            }],
            "test".into(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn gw_path_01_dot_segments() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    for target in [
        "/gw/api/admin/reset",
        "/gw/api/reports/../admin/reset",
        "/gw/api/./admin/reset",
        "/gw/api/reports/%2e%2E/admin/reset",
        "/gw/api/reports/.%2e/admin/reset",
    ] {
        let (status, answer) = send(&env, "GET", target, &token, "").await;
        assert_eq!(status, 403, "{target}: {answer}");
    }
    assert!(
        log.lock().unwrap().is_empty(),
        "nothing reached the upstream"
    );
    let ev = &env.events("gateway.request").await[0];
    assert_eq!(ev.detail["path"], "/admin/reset");
    assert_eq!(ev.detail["raw_path"], "/reports/.%2e/admin/reset");
    assert_eq!(ev.detail["decision"]["policies"][0], "no-admin-paths");
    for target in ["/gw/api/../x", "/gw/api/a/../../x", "/gw/api/%2e%2e/x"] {
        let (status, answer) = send(&env, "GET", target, &token, "").await;
        assert_eq!(status, 400, "{target}: {answer}");
        assert!(answer.contains("invalid_path"), "{answer}");
    }
    let ev = &env.events("gateway.request").await[0];
    assert_eq!(ev.detail["path_refusal"], "above_root");
    assert_eq!(ev.outcome.as_str(), "denied");
    // A dot segment that stays inside is resolved, and the upstream gets
    // the resolved path.
    let (status, _) = send(&env, "GET", "/gw/api/reports/./2026/../q1?x=1", &token, "").await;
    assert_eq!(status, 200);
    assert_eq!(received_since(&log, 0).unwrap().uri, "/reports/q1?x=1");
}

#[tokio::test]
async fn gw_path_02_encoded_slash_and_backslash() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    for target in [
        "/gw/api/reports%2f..%2fadmin/reset",
        "/gw/api/reports%2F..%2Fadmin/reset",
        "/gw/api/reports%5c..%5cadmin/reset",
        "/gw/api/reports\\..\\admin/reset",
        "/gw/api/admin%00/reset",
        "/gw/api/admin%0d%0a/reset",
        "/gw/api/admin%zz",
        "/gw/api/admin%ff%fe",
    ] {
        let (status, answer) = send(&env, "GET", target, &token, "").await;
        assert_eq!(status, 400, "{target}: {answer}");
    }
    assert!(
        log.lock().unwrap().is_empty(),
        "nothing reached the upstream"
    );
    let refusals: Vec<String> = env
        .events("gateway.request")
        .await
        .iter()
        .filter_map(|e| e.detail["path_refusal"].as_str().map(str::to_owned))
        .collect();
    for code in [
        "encoded_separator",
        "control_character",
        "invalid_percent_encoding",
        "invalid_utf8",
    ] {
        assert!(refusals.iter().any(|r| r == code), "{code} in {refusals:?}");
    }
    // Unreserved characters are decoded before the decision: `%61dmin` is
    // `admin`.
    let (status, _) = send(&env, "GET", "/gw/api/%61dmin/reset", &token, "").await;
    assert_eq!(status, 403);
    // Other encodings reach the upstream as they were decided.
    let (status, _) = send(&env, "GET", "/gw/api/caf%c3%a9/a%20b", &token, "").await;
    assert_eq!(status, 200);
    assert_eq!(received_since(&log, 0).unwrap().uri, "/caf%C3%A9/a%20b");
}

#[tokio::test]
async fn gw_path_03_double_slash() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    let (status, answer) = send(&env, "GET", "/gw/api//admin/reset", &token, "").await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = send(&env, "GET", "/gw/api/admin//reset", &token, "").await;
    assert_eq!(status, 403, "{answer}");
    assert!(log.lock().unwrap().is_empty());
    // Merged, and forwarded merged.
    let (status, _) = send(&env, "GET", "/gw/api//reports///q1", &token, "").await;
    assert_eq!(status, 200);
    assert_eq!(received_since(&log, 0).unwrap().uri, "/reports/q1");
    // A route that refuses empty segments.
    add_route(&env, "strict", &up, |r| {
        r.empty_segments = Some(EmptySegments::Refuse);
    })
    .await;
    let token = env.token("strict", "read", None).await;
    let before = log.lock().unwrap().len();
    let (status, answer) = send(&env, "GET", "/gw/strict//reports", &token, "").await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("empty segment"), "{answer}");
    assert!(received_since(&log, before).is_none());
    let (status, _) = send(&env, "GET", "/gw/strict/reports/", &token, "").await;
    assert_eq!(status, 200);
    assert_eq!(received_since(&log, before).unwrap().uri, "/reports/");
}

#[tokio::test]
async fn gw_path_04_path_params_and_trailing_dot() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    for target in [
        "/gw/api/admin;jsessionid=1/reset",
        "/gw/api/reports;/../admin/reset",
        "/gw/api/admin./reset",
        "/gw/api/admin%2e/reset",
        "/gw/api/admin...",
    ] {
        let (status, answer) = send(&env, "GET", target, &token, "").await;
        assert_eq!(status, 400, "{target}: {answer}");
    }
    assert!(log.lock().unwrap().is_empty());
    // A dot inside a segment is just a character.
    let (status, _) = send(&env, "GET", "/gw/api/v1.2/report.csv", &token, "").await;
    assert_eq!(status, 200);
    assert_eq!(received_since(&log, 0).unwrap().uri, "/v1.2/report.csv");
}

#[tokio::test]
async fn gw_method_01_override_headers() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    // The policy allows GET and POST only; each of these asks the upstream
    // for a DELETE.
    for (target, header) in [
        ("/gw/api/items/1", "X-HTTP-Method-Override: DELETE\r\n"),
        ("/gw/api/items/1", "X-HTTP-Method: DELETE\r\n"),
        ("/gw/api/items/1", "X-Method-Override: DELETE\r\n"),
        ("/gw/api/items/1?_method=DELETE", ""),
        ("/gw/api/items/1?x=1&X-HTTP-Method-Override=DELETE", ""),
    ] {
        let (status, answer) = send(&env, "POST", target, &token, header).await;
        assert_eq!(status, 400, "{target} {header}: {answer}");
        assert!(answer.contains("method_override"), "{answer}");
    }
    assert!(log.lock().unwrap().is_empty());
    let ev = &env.events("gateway.request").await[0];
    assert_eq!(ev.detail["error"], "method_override");
    assert_eq!(ev.detail["result"], "bad_request");
    let (status, _) = send(&env, "POST", "/gw/api/items/1", &token, "").await;
    assert_eq!(status, 200);
    assert_eq!(received_since(&log, 0).unwrap().method, "POST");
}

#[test]
fn gw_path_05_decision_equals_forwarded_path() {
    use proptest::prelude::*;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (up, log) = rt.block_on(upstream(None));
    let env = rt.block_on(env(&up));
    let token = rt.block_on(env.token("api", "read", None));
    let piece = prop_oneof![
        Just("/"),
        Just("//"),
        Just("."),
        Just(".."),
        Just("%2e"),
        Just("%2E%2e"),
        Just("%2F"),
        Just("%5c"),
        Just("a"),
        Just("admin"),
        Just("%61"),
        Just(";"),
        Just("%3B"),
        Just("%20"),
        Just("~"),
        Just("%7e"),
        Just("%"),
        Just("%zz"),
        Just("%c3%a9"),
        Just("%ff"),
        Just("="),
        Just("%3d"),
        Just("'"),
        Just("@:"),
    ];
    let strategy = proptest::collection::vec(piece, 0..8).prop_map(|v| format!("/{}", v.concat()));
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 96,
        failure_persistence: None,
        ..Default::default()
    });
    runner
        .run(&strategy, |rest| {
            rt.block_on(async {
                let before = log.lock().unwrap().len();
                let target = format!("/gw/api{rest}");
                let (status, answer) = send(&env, "GET", &target, &token, "").await;
                let got = received_since(&log, before);
                match status {
                    200 => {
                        let Some(seen) = got else {
                            return Err(proptest::test_runner::TestCaseError::fail(format!(
                                "{rest}: allowed but not forwarded"
                            )));
                        };
                        let ev = &env.events("gateway.request").await[0];
                        let decided = ev.detail["path"].as_str().unwrap().to_owned();
                        prop_assert_eq!(&seen.uri, &decided, "{} decided as {}", rest, decided);
                        prop_assert!(!decided.starts_with("/admin"));
                    }
                    400 | 403 => prop_assert!(got.is_none(), "{}: refused yet forwarded", rest),
                    other => prop_assert!(false, "{}: status {} {}", rest, other, answer),
                }
                Ok(())
            })
        })
        .unwrap();
}

#[tokio::test]
async fn audit_02_upstream_failure_not_success() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let env = env(&dead).await;
    let token = env.token("api", "read", None).await;
    let r = client()
        .get(format!("{}/gw/api/x", env.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let ev = &env.events("gateway.request").await[0];
    assert_eq!(ev.outcome.as_str(), "failed");
    assert_eq!(ev.detail["result"], "upstream_failed");
    assert_eq!(ev.detail["status"], 502);
    assert_eq!(ev.detail["error"], "upstream_unreachable");
    assert_eq!(ev.detail["decision"]["effect"], "allow");
}

#[tokio::test]
async fn audit_03_every_gateway_result_is_recorded() {
    let (up, _log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    let c = client();
    let get = |path: &str, token: Option<&str>| {
        let mut r = c.get(format!("{}{path}", env.url));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let cases = [
        (
            "/gw/api/reports",
            Some(token.as_str()),
            200,
            "answered",
            "success",
        ),
        (
            "/gw/api/admin",
            Some(token.as_str()),
            403,
            "policy_denied",
            "denied",
        ),
        ("/gw/api/reports", None, 401, "auth_refused", "denied"),
        (
            "/gw/api/reports",
            Some("not-a-token"),
            401,
            "auth_refused",
            "denied",
        ),
        (
            "/gw/nothing/x",
            Some(token.as_str()),
            404,
            "no_route",
            "denied",
        ),
    ];
    for (path, token, status, result, outcome) in cases {
        let r = get(path, token).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let ev = &env.events("gateway.request").await[0];
        assert_eq!(ev.detail["result"], result, "{path}");
        assert_eq!(ev.detail["status"], status, "{path}");
        assert_eq!(ev.outcome.as_str(), outcome, "{path}");
    }
    let (status, _) = send(&env, "GET", "/gw/api/a%2fb", &token, "").await;
    assert_eq!(status, 400);
    let ev = &env.events("gateway.request").await[0];
    assert_eq!(ev.detail["result"], "bad_request");
}

#[tokio::test]
async fn prx_07_secret_echo_in_success_body_scrubbed() {
    let (up, _log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    let r = client()
        .get(format!("{}/gw/api/echo-ok", env.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    assert!(!body.contains(SECRET), "{body}");
    assert_eq!(body, format!("{{\"you_sent\": \"{REDACTED}\"}}"));
    // A body the gateway could not read is not passed through unscrubbed.
    let r = client()
        .get(format!("{}/gw/api/echo-gzip", env.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let body = r.text().await.unwrap();
    assert!(!body.contains(SECRET), "{body}");
    assert!(body.contains("unscrubbable_body"), "{body}");
    // The per-route opt-out (for binary bodies) forwards the body as is.
    add_route(&env, "binary", &up, |r| r.scrub_responses = Some(false)).await;
    let token = env.token("binary", "read", None).await;
    let r = client()
        .get(format!("{}/gw/binary/echo-ok", env.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains(SECRET));
}

/// An on-behalf-of token for user `ann@example.com` (groups `sales` and
/// `emea`), held by agent `alpha`,
/// for route `api`: the user's ID token from a company identity provider
/// exchanged with alpha's own token as the actor.
async fn user_token(env: &Env) -> String {
    let idp = mandate_testkit::oidc::TestIssuer::start().await;
    let spec: mandate_attest::oidc::OidcSpec = serde_json::from_value(serde_json::json!({
        "issuer": idp.issuer(),
        "audience": "mandate",
    }))
    .unwrap();
    env.engine
        .add_provider(
            &env.admin,
            "corp",
            mandate_attest::ProviderSpec::Oidc(spec),
            true,
        )
        .await
        .unwrap();
    let id_token = idp.sign(&serde_json::json!({
        "iss": idp.issuer(), "sub": "u-1", "aud": "mandate", "email": "ann@example.com",
        "groups": ["sales", "emea"], "exp": now() + 600, "iat": now(),
    }));
    let actor = env.token("api", "read", None).await;
    let params: Vec<(String, String)> = [
        ("grant_type", mandate_engine::oauth::GRANT_TOKEN_EXCHANGE),
        ("subject_token", id_token.as_str()),
        ("subject_token_type", mandate_engine::oauth::TOKEN_TYPE_ID),
        ("actor_token", actor.as_str()),
        ("actor_token_type", mandate_engine::oauth::TOKEN_TYPE_ACCESS),
        ("resource", &format!("{}/gw/api", env.url)),
        ("scope", "read"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    env.engine
        .token_grant(mandate_engine::oauth::TokenRequest {
            params,
            dpop: None,
            endpoint_url: format!("{}/oauth2/token", env.url),
            client_ip: None,
        })
        .await
        .unwrap()
        .access_token
}

#[tokio::test]
async fn policy_02_on_behalf_of_at_the_gateway() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    let forbid = "@id(\"no-users-on-reports\")\nforbid(principal, action == Mandate::Action::\"http:request\", resource)\n  when { context has on_behalf_of && context has http && context.http.path like \"/reports*\" };";
    push_with(&env, forbid).await;
    let user = user_token(&env).await;
    let own = env.token("api", "read", None).await;
    let get = |token: String| {
        client()
            .get(format!("{}/gw/api/reports/q1", env.url))
            .bearer_auth(token)
            .send()
    };
    // The agent on its own may read reports; acting for a user it may not.
    assert_eq!(get(own).await.unwrap().status(), StatusCode::OK);
    assert_eq!(get(user).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(log.lock().unwrap().len(), 1);
    let ev = &env.events("gateway.request").await[0];
    assert_eq!(ev.detail["decision"]["policies"][0], "no-users-on-reports");
    assert_eq!(ev.detail["sub"], "ann@example.com");
    assert_eq!(ev.detail["result"], "policy_denied");
}

/// The user's groups and email, from their ID token, reach the gateway's
/// policy: a `forbid` on a group the user is in, or on their email, denies;
/// one on a group they are not in does not. (Users are not in the
/// inventory; without the token's `groups`, `in Group` would be false and
/// the `forbid` would do nothing.)
#[tokio::test]
async fn forbid_on_the_users_group_or_email_at_the_gateway_fires() {
    let (up, _log) = upstream(None).await;
    let env = env(&up).await;
    let user = user_token(&env).await;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            user.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["groups"], serde_json::json!(["emea", "sales"]));
    assert_eq!(claims["email"], "ann@example.com");
    for (condition, denied) in [
        ("context.on_behalf_of in Mandate::Group::\"sales\"", true),
        ("context.on_behalf_of.email == \"ann@example.com\"", true),
        ("context.on_behalf_of in Mandate::Group::\"finance\"", false),
    ] {
        let forbid = format!(
            "@id(\"user-rule\")\nforbid(principal, action == Mandate::Action::\"http:request\", resource)\n  when {{ context has on_behalf_of && {condition} }};"
        );
        push_with(&env, &forbid).await;
        let r = client()
            .get(format!("{}/gw/api/ledger", env.url))
            .bearer_auth(&user)
            .send()
            .await
            .unwrap();
        let expected = if denied {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::OK
        };
        assert_eq!(r.status(), expected, "{condition}");
    }
}
