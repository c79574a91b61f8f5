//! The gateway's rules, one named test per attack, each asserting the
//! refusal (or the neutralised effect) and, where the gateway itself
//! refuses, the audit event.

use http::StatusCode;
use mandate_engine::oauth::dpop::access_token_hash;
use mandate_gateway::REDACTED;

use crate::support::*;

#[tokio::test]
async fn static_secret_is_injected_and_the_agent_token_never_reaches_the_upstream() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    let r = client()
        .get(format!("{}/gw/api/v1/items?x=1", env.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri, "/v1/items?x=1");
    assert_eq!(seen[0].header("x-api-key"), Some(SECRET));
    assert_eq!(seen[0].header("x-mandate-agent"), Some("alpha"));
    assert!(seen[0].header("x-mandate-txn").is_some());
    assert!(seen[0].header("authorization").is_none());
    assert!(!seen[0].all_text().contains(&token));
    let ev = &env.events("gateway.request").await[0];
    assert_eq!(ev.outcome.as_str(), "success");
    assert_eq!(ev.detail["upstream_status"], 200);
    assert_eq!(ev.detail["decision"]["policies"][0], "api-reads");
    assert_eq!(ev.detail["lease"]["provider"], "static");
    assert_eq!(ev.detail["lease"]["credential"], "upstream-key");
    assert!(!ev.detail.to_string().contains(SECRET));
}

#[tokio::test]
async fn no_token_gets_the_challenge_naming_the_protected_resource_metadata() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    let r = client()
        .get(format!("{}/gw/api/x", env.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let prm = format!("{}/.well-known/oauth-protected-resource/gw/api", env.url);
    assert!(
        challenge.starts_with(&format!("Bearer resource_metadata=\"{prm}\"")),
        "{challenge}"
    );
    let meta: serde_json::Value = client()
        .get(&prm)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["resource"], format!("{}/gw/api", env.url));
    assert_eq!(meta["authorization_servers"][0], env.url);
    assert!(log.lock().unwrap().is_empty());
    let ev = &env.events("gateway.request").await[0];
    assert_eq!(ev.outcome.as_str(), "denied");
    assert_eq!(ev.detail["error"], "missing_token");
}

#[tokio::test]
async fn a_policy_deny_is_403_and_audited_with_the_policy_id() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    let r = client()
        .get(format!("{}/gw/api/admin/users", env.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(log.lock().unwrap().is_empty());
    let ev = &env.events("gateway.request").await[0];
    assert_eq!(ev.outcome.as_str(), "denied");
    assert_eq!(ev.detail["decision"]["policies"][0], "no-admin-paths");
}

#[tokio::test]
async fn a_token_lacking_the_required_scope_gets_insufficient_scope() {
    let (up, log) = upstream(None).await;
    let env = env_with(&up, &["write"]).await;
    let token = env.token("api", "read", None).await;
    let r = client()
        .get(format!("{}/gw/api/x", env.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"write\""), "{challenge}");
    assert!(log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn mcp_01_token_passthrough() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    // A token for another route is refused here.
    let other = env.token("other", "read", None).await;
    let r = client()
        .get(format!("{}/gw/api/x", env.url))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(log.lock().unwrap().is_empty());
    let ev = &env.events("gateway.request").await[0];
    assert_eq!(ev.outcome.as_str(), "denied");
    assert_eq!(ev.detail["error"], "invalid_token");
    // And the right token, in any form the agent sends it, never reaches
    // the upstream.
    let token = env.token("api", "read", None).await;
    let r = client()
        .get(format!("{}/gw/api/x?access_token={token}", env.url))
        .bearer_auth(&token)
        .header("cookie", format!("session={token}"))
        .header("dpop", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for seen in log.lock().unwrap().iter() {
        assert!(!seen.all_text().contains(&token), "{}", seen.all_text());
    }
}

#[tokio::test]
async fn prx_01_spoofed_identity_headers() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    let r = client()
        .get(format!("{}/gw/api/x", env.url))
        .bearer_auth(&token)
        .header("x-forwarded-for", "10.0.0.1")
        .header("x-forwarded-user", "root")
        .header("forwarded", "for=10.0.0.1;by=evil")
        .header("x-real-ip", "10.0.0.1")
        .header("x-mandate-agent", "root")
        .header("x-mandate-txn", "forged-txn")
        .header("x-request-id", "forged-id")
        .header("x-remote-user", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let seen = log.lock().unwrap()[0].clone();
    let text = seen.all_text();
    for forged in [
        "10.0.0.1",
        "root",
        "forged-txn",
        "forged-id",
        "admin",
        "evil",
    ] {
        assert!(
            !text.contains(forged),
            "`{forged}` reached the upstream:\n{text}"
        );
    }
    assert_eq!(seen.header("x-mandate-agent"), Some("alpha"));
}

#[tokio::test]
async fn prx_02_crlf_injection() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    // Encoded CR LF in the path is refused (a path has no use for control
    // characters); in the query it stays encoded upstream: no header or
    // request line can be injected.
    let r = client()
        .get(format!("{}/gw/api/a%0d%0aX-Injected:%201", env.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(log.lock().unwrap().is_empty());
    let r = client()
        .get(format!(
            "{}/gw/api/a?q=%0d%0aX-Injected:%201&r=%0d%0aX-Injected2:%201",
            env.url
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let seen = log.lock().unwrap()[0].clone();
    assert!(seen.header("x-injected").is_none());
    assert!(seen.header("x-injected2").is_none());
    assert!(!seen.uri.contains('\r') && !seen.uri.contains('\n'));
    // A bare CR or a control character inside a header value is refused.
    for value in ["a\rX-Injected: 1", "a\u{1}b"] {
        let req = format!(
            "GET /gw/api/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nX-Note: {value}\r\nConnection: close\r\n\r\n"
        );
        let answer = raw(&env.url, req.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
    assert_eq!(log.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn prx_03_hop_by_hop_strips_injected_header() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    let r = client()
        .get(format!("{}/gw/api/x", env.url))
        .bearer_auth(&token)
        .header(
            "connection",
            "keep-alive, x-api-key, x-mandate-txn, x-request-id",
        )
        .header("x-api-key", "agent-chosen-key")
        .header("te", "trailers")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let seen = log.lock().unwrap()[0].clone();
    // The agent cannot make the gateway drop (or replace) what it injects.
    assert_eq!(seen.header("x-api-key"), Some(SECRET));
    assert!(seen.header("x-mandate-txn").is_some());
    assert!(seen.header("x-request-id").is_some());
    assert!(!seen.all_text().contains("agent-chosen-key"));
    assert!(seen.header("te").is_none());
}

#[tokio::test]
async fn prx_04_redirect_does_not_leak_credential() {
    let (evil, evil_log) = upstream(None).await;
    let (up, log) = upstream(Some(format!("{evil}/steal"))).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    let r = client()
        .get(format!("{}/gw/api/redirect", env.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    // The client gets the redirect; the gateway did not follow it.
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(log.lock().unwrap().len(), 1);
    assert!(evil_log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn prx_05_request_smuggling() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "write", None).await;
    let smuggle = format!(
        "POST /gw/api/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
         0\r\n\r\nGET /gw/api/smuggled HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    // Both framings: hyper lets Transfer-Encoding win and closes the
    // connection after answering (RFC 9112 §6.3), so the bytes after the
    // chunked body are never read as a second request, and the upstream
    // gets one request framed one way only.
    let answer = raw(&env.url, smuggle.as_bytes()).await;
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    for seen in log.lock().unwrap().iter() {
        assert!(
            !(seen.header("content-length").is_some()
                && seen.header("transfer-encoding").is_some()),
            "the upstream got both framings"
        );
    }
    let two_lengths = format!(
        "POST /gw/api/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 4\r\nContent-Length: 40\r\n\r\nabcd"
    );
    let answer = raw(&env.url, two_lengths.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .all(|s| !s.uri.contains("smuggled")),
        "a smuggled request reached the upstream"
    );
}

#[tokio::test]
async fn prx_06_secret_echo_scrubbed() {
    let (up, _log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    let r = client()
        .get(format!("{}/gw/api/echo-key", env.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    assert!(!body.contains(SECRET), "{body}");
    assert!(body.contains(REDACTED), "{body}");
    assert!(!challenge.contains(SECRET), "{challenge}");
}

#[tokio::test]
async fn dpop_05_bound_token_without_proof() {
    let (up, log) = upstream(None).await;
    let env = env(&up).await;
    let key = mandate_jose::jws::SigningKey::generate(mandate_jose::jws::Algorithm::Es256).unwrap();
    let token = env.token("api", "read", Some(&key)).await;
    let url = format!("{}/gw/api/x", env.url);
    // As a bearer token: refused.
    let r = client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // With the DPoP scheme but no proof: refused.
    let r = client()
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_dpop_proof"), "{challenge}");
    // With a proof by another key: refused.
    let other =
        mandate_jose::jws::SigningKey::generate(mandate_jose::jws::Algorithm::Es256).unwrap();
    let ath = access_token_hash(&token);
    let r = client()
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof(&other, "GET", &url, None, Some(&ath)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(log.lock().unwrap().is_empty());
    // With a proof of its key for this request: forwarded, proof stripped.
    let r = client()
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof(&key, "GET", &url, None, Some(&ath)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let seen = log.lock().unwrap()[0].clone();
    assert!(seen.header("dpop").is_none());
    let refusals = env.events("gateway.request").await;
    assert!(
        refusals
            .iter()
            .filter(|e| e.outcome.as_str() == "denied")
            .count()
            >= 3
    );
}

#[tokio::test]
async fn revoking_the_token_is_seen_at_once_despite_the_verification_cache() {
    let (up, _log) = upstream(None).await;
    let env = env(&up).await;
    let token = env.token("api", "read", None).await;
    let url = format!("{}/gw/api/x", env.url);
    let r = client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let jti = env.events("gateway.request").await[0].detail["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    env.engine
        .admin_revoke_token(&env.admin, &jti)
        .await
        .unwrap();
    let r = client().get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_problem_not_a_hang() {
    // A port nothing listens on.
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
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "upstream_unreachable");
}

#[tokio::test]
async fn buffered_audit_still_records_every_call_in_order() {
    let (up, _log) = upstream(None).await;
    let env = env_buffered(&up).await;
    let token = env.token("api", "read", None).await;
    for i in 0..5 {
        let r = client()
            .get(format!("{}/gw/api/item/{i}", env.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // A durable write after them is committed after them.
    env.engine
        .store()
        .append_audit(
            mandate_core::AuditDraft::new(
                mandate_core::EventKind::AgentUpdated,
                mandate_core::Outcome::Success,
            ),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let paths: Vec<String> = env
        .events("gateway.request")
        .await
        .iter()
        .rev()
        .map(|e| e.detail["path"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..5).map(|i| format!("/item/{i}")).collect();
    assert_eq!(paths, expected);
}
