//! The token endpoint's grants end to end over a real SQLite store: the
//! jwt-bearer grant with the Kubernetes fixture keys, private_key_jwt,
//! delegation by token exchange, DPoP, introspection, revocation and the
//! kill switch, with one named test per attack.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mandate_core::StatusChange;
use mandate_engine::oauth::dpop::access_token_hash;
use mandate_engine::oauth::{
    GRANT_JWT_BEARER, GRANT_TOKEN_EXCHANGE, OAuthError, Presented, TOKEN_TYPE_ACCESS,
    TOKEN_TYPE_ID, TOKEN_TYPE_JWT, TokenRequest, TokenResponse,
};
use mandate_engine::{NewResource, PolicyFile, TokenConfig};
use mandate_jose::jws::{Algorithm, SigningKey};
use serde_json::{Value, json};

use crate::support::*;

const ISSUER: &str = "https://mandate.test";
const API: &str = "https://api.test";
const OTHER: &str = "https://other.test";

fn endpoint() -> String {
    format!("{ISSUER}/oauth2/token")
}

const POLICY: &str = r#"
permit(principal, action == Mandate::Action::"token:issue", resource);
permit(principal, action == Mandate::Action::"delegate", resource);
@id("no-other-for-beta")
forbid(principal == Mandate::Agent::"beta", action == Mandate::Action::"token:issue", resource == Mandate::Resource::"other");
"#;

/// An engine with agents alpha..zeta bound to their Kubernetes service
/// accounts, resources `api` and `other`, and the policy above.
async fn setup_with(config: TokenConfig) -> Env {
    let env = env().await;
    env.engine
        .start_token_service([7; 32], ISSUER.into(), config)
        .await
        .unwrap();
    env.k8s_provider().await;
    for a in ["alpha", "beta", "gamma", "delta", "epsilon"] {
        env.agent(a).await;
        env.bind(
            "k8s",
            a,
            &[&format!("kubernetes.io.serviceaccount.name={a}")],
        )
        .await;
    }
    for (name, aud, scopes) in [
        ("api", API, vec!["read", "write", "admin"]),
        ("other", OTHER, vec!["read"]),
    ] {
        env.engine
            .add_resource(
                &env.admin,
                NewResource {
                    name: name.into(),
                    audience: aud.into(),
                    scopes: scopes.into_iter().map(str::to_owned).collect(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    env.engine
        .push_policies(
            &env.admin,
            vec![PolicyFile {
                name: "grants.cedar".into(),
                text: POLICY.into(),
            }],
            "grants".into(),
        )
        .await
        .unwrap();
    env
}

async fn setup() -> Env {
    setup_with(TokenConfig::default()).await
}

fn k8s(sa: &str) -> String {
    sign(&es_key(), &k8s_claims("default", sa))
}

async fn grant(env: &Env, params: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
    grant_dpop(env, params, None).await
}

async fn grant_dpop(
    env: &Env,
    params: &[(&str, &str)],
    dpop: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    grant_on(&env.engine, params, dpop).await
}

async fn grant_on(
    engine: &mandate_engine::Engine,
    params: &[(&str, &str)],
    dpop: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    engine
        .token_grant(TokenRequest {
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            dpop,
            endpoint_url: endpoint(),
            client_ip: None,
        })
        .await
}

/// A jwt-bearer grant for the agent of service account `sa`.
async fn bearer(env: &Env, sa: &str, scope: &str) -> TokenResponse {
    let a = k8s(sa);
    grant(
        env,
        &[
            ("grant_type", GRANT_JWT_BEARER),
            ("assertion", &a),
            ("resource", API),
            ("scope", scope),
        ],
    )
    .await
    .unwrap()
}

/// `child` exchanges `subject` (proving itself with its own workload JWT).
async fn exchange(
    env: &Env,
    subject: &str,
    child: &str,
    extra: &[(&str, &str)],
) -> Result<TokenResponse, OAuthError> {
    let actor = k8s(child);
    let mut p = vec![
        ("grant_type", GRANT_TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", TOKEN_TYPE_ACCESS),
        ("actor_token", actor.as_str()),
        ("actor_token_type", TOKEN_TYPE_JWT),
    ];
    if !extra.iter().any(|(k, _)| *k == "resource") {
        p.push(("resource", API));
    }
    p.extend_from_slice(extra);
    grant(env, &p).await
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn active(env: &Env, token: &str) -> bool {
    env.engine.introspect("test", token).await.unwrap()["active"] == json!(true)
}

/// The newest event must be a `token.denied` naming `error`.
async fn denied(env: &Env, error: &str) -> mandate_core::AuditEvent {
    let ev = env.last_event().await;
    assert_eq!(ev.event_type, "token.denied", "{ev:?}");
    assert_eq!(ev.outcome, mandate_core::Outcome::Denied);
    assert_eq!(ev.detail["error"], error, "{ev:?}");
    ev
}

fn expect_err(r: Result<TokenResponse, OAuthError>, error: &str) -> OAuthError {
    match r {
        Err(e) => {
            assert_eq!(e.error, error, "{e:?}");
            e
        }
        Ok(t) => panic!(
            "expected `{error}`, got a token: {:?}",
            claims(&t.access_token)
        ),
    }
}

fn spiffe(a: &str) -> String {
    format!("spiffe://mandate.local/agent/{a}")
}

#[tokio::test]
async fn jwt_bearer_issues_an_rfc9068_token_and_audits_it() {
    let env = setup().await;
    let t = bearer(&env, "alpha", "read write").await;
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.expires_in, 300);
    assert_eq!(t.scope, "read write");
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(t.access_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let c = claims(&t.access_token);
    assert_eq!(c["iss"], ISSUER);
    assert_eq!(c["sub"], spiffe("alpha"));
    assert_eq!(c["aud"], API);
    assert_eq!(c["client_id"], "alpha");
    assert_eq!(c["agent_kind"], "autonomous");
    assert!(c["txn"].as_str().is_some_and(|t| t.len() >= 16));
    assert!(c.get("act").is_none());
    let ev = env.last_event().await;
    assert_eq!(ev.event_type, "token.issued");
    assert_eq!(ev.detail["jti"], c["jti"]);
    assert_eq!(ev.detail["provider"], "k8s");
    assert_eq!(ev.detail["decision"], "allow");
    assert_eq!(ev.detail["grant_type"], GRANT_JWT_BEARER);
    assert!(!ev.detail.to_string().contains(&t.access_token));
    // The attestation moved last_seen_at.
    let a = env.engine.agent(&"alpha".parse().unwrap()).await.unwrap();
    assert!(a.last_seen_at.is_some());
}

#[tokio::test]
async fn three_hop_delegation_narrows_and_revoking_the_root_kills_the_chain() {
    let env = setup().await;
    let a = bearer(&env, "alpha", "read write admin").await;
    let b = exchange(&env, &a.access_token, "beta", &[("scope", "read write")])
        .await
        .unwrap();
    let c = exchange(&env, &b.access_token, "gamma", &[("scope", "read")])
        .await
        .unwrap();
    assert_eq!(b.issued_token_type, Some(TOKEN_TYPE_ACCESS));
    let (ca, cb, cc) = (
        claims(&a.access_token),
        claims(&b.access_token),
        claims(&c.access_token),
    );
    // act names C, then B, then A; sub stays the original subject.
    assert_eq!(cc["act"]["sub"], spiffe("gamma"));
    assert_eq!(cc["act"]["act"]["sub"], spiffe("beta"));
    assert_eq!(cc["act"]["act"]["act"]["sub"], spiffe("alpha"));
    assert!(cc["act"]["act"]["act"].get("act").is_none());
    assert_eq!(cc["sub"], spiffe("alpha"));
    assert_eq!(cc["txn"], ca["txn"]);
    assert_eq!(cb["txn"], ca["txn"]);
    // Scopes and lifetime only narrow.
    assert_eq!(cc["scope"], "read");
    assert!(cc["exp"].as_i64() <= cb["exp"].as_i64());
    assert!(cb["exp"].as_i64() <= ca["exp"].as_i64());
    assert!(active(&env, &c.access_token).await);
    // Revoking A's token revokes B's and C's.
    let n = env
        .engine
        .revoke_token("test", &a.access_token)
        .await
        .unwrap();
    assert_eq!(n, 3);
    for t in [&a, &b, &c] {
        assert!(!active(&env, &t.access_token).await);
    }
}

#[tokio::test]
async fn tx_08_revoke_parent_kills_children() {
    let env = setup().await;
    let a = bearer(&env, "alpha", "read").await;
    let b = exchange(&env, &a.access_token, "beta", &[]).await.unwrap();
    let c = exchange(&env, &b.access_token, "gamma", &[]).await.unwrap();
    let sibling = exchange(&env, &a.access_token, "delta", &[]).await.unwrap();
    // Revoking B's token kills C's, not A's or B's sibling.
    env.engine
        .revoke_token("test", &b.access_token)
        .await
        .unwrap();
    assert!(!active(&env, &b.access_token).await);
    assert!(!active(&env, &c.access_token).await);
    assert!(active(&env, &a.access_token).await);
    assert!(active(&env, &sibling.access_token).await);
    let ev = env.last_event().await;
    assert_eq!(ev.event_type, "token.introspected");
    // A revoked token can no longer be exchanged.
    expect_err(
        exchange(&env, &c.access_token, "epsilon", &[]).await,
        "invalid_grant",
    );
    denied(&env, "invalid_grant").await;
}

/// The kill switch against another replica that read the agent a moment
/// before the suspension (and may reuse that read for a second): its next
/// grant is refused, audited, and leaves no live token behind.
#[tokio::test]
async fn kill_switch_holds_on_a_replica_that_read_the_agent_before() {
    let env = setup().await;
    let other = env.replica().await;
    other
        .start_token_service([7; 32], ISSUER.into(), TokenConfig::default())
        .await
        .unwrap();
    let assertion = k8s("alpha");
    let params = [
        ("grant_type", GRANT_JWT_BEARER),
        ("assertion", assertion.as_str()),
        ("resource", API),
    ];
    let before = grant_on(&other, &params, None).await.unwrap();
    env.engine
        .change_status(&env.admin, &"alpha".parse().unwrap(), StatusChange::Suspend)
        .await
        .unwrap();
    let e = grant_on(&other, &params, None).await.unwrap_err();
    assert_eq!(e.error, "invalid_grant", "{}", e.description);
    let denied = env
        .engine
        .list_audit(&mandate_store::AuditFilter {
            event_type: Some("token.denied".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(denied.items[0].actor.as_deref(), Some("alpha"));
    assert!(!active(&env, &before.access_token).await);
    let all = env
        .engine
        .list_tokens(Some("alpha"), false, 100)
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "the refused grant recorded no token");
    let live = env
        .engine
        .list_tokens(Some("alpha"), true, 100)
        .await
        .unwrap();
    assert!(live.is_empty(), "{live:?}");
}

#[tokio::test]
async fn kill_switch_revokes_family() {
    let env = setup().await;
    let a1 = bearer(&env, "alpha", "read").await;
    let a2 = bearer(&env, "alpha", "write").await;
    let b = exchange(&env, &a1.access_token, "beta", &[]).await.unwrap();
    let own = bearer(&env, "beta", "read").await;
    env.engine
        .change_status(&env.admin, &"alpha".parse().unwrap(), StatusChange::Suspend)
        .await
        .unwrap();
    for t in [&a1, &a2, &b] {
        assert!(!active(&env, &t.access_token).await, "suspension revokes");
    }
    assert!(
        active(&env, &own.access_token).await,
        "beta's own token lives"
    );
    let page = env
        .engine
        .list_audit(&mandate_store::AuditFilter {
            event_type: Some("agent.suspended".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items[0].detail["tokens_revoked"], 3);
    // A suspended agent gets nothing, and resuming does not revive tokens.
    let assertion = k8s("alpha");
    expect_err(
        grant(
            &env,
            &[
                ("grant_type", GRANT_JWT_BEARER),
                ("assertion", &assertion),
                ("resource", API),
            ],
        )
        .await,
        "invalid_grant",
    );
    env.engine
        .change_status(&env.admin, &"alpha".parse().unwrap(), StatusChange::Resume)
        .await
        .unwrap();
    assert!(!active(&env, &a1.access_token).await);
}

#[tokio::test]
async fn tx_01_scope_widening() {
    let env = setup().await;
    let a = bearer(&env, "alpha", "read").await;
    expect_err(
        exchange(&env, &a.access_token, "beta", &[("scope", "read admin")]).await,
        "invalid_scope",
    );
    let ev = denied(&env, "invalid_scope").await;
    assert_eq!(ev.actor.as_deref(), Some("beta"));
    // A scope the resource does not have at all.
    expect_err(
        grant(
            &env,
            &[
                ("grant_type", GRANT_JWT_BEARER),
                ("assertion", &k8s("alpha")),
                ("resource", API),
                ("scope", "root"),
            ],
        )
        .await,
        "invalid_scope",
    );
    denied(&env, "invalid_scope").await;
}

#[tokio::test]
async fn tx_02_audience_retarget() {
    let env = setup().await;
    let a = bearer(&env, "alpha", "read").await;
    // To a resource policy forbids beta.
    let e = expect_err(
        exchange(&env, &a.access_token, "beta", &[("resource", OTHER)]).await,
        "access_denied",
    );
    assert!(e.description.contains("beta"), "{e:?}");
    let ev = denied(&env, "access_denied").await;
    assert_eq!(ev.detail["policies"], json!(["no-other-for-beta"]));
    // To something that is not a registered resource.
    expect_err(
        exchange(
            &env,
            &a.access_token,
            "beta",
            &[("resource", "https://evil.test")],
        )
        .await,
        "invalid_target",
    );
    denied(&env, "invalid_target").await;
    // Two resources at once.
    expect_err(
        exchange(
            &env,
            &a.access_token,
            "beta",
            &[("resource", API), ("resource", OTHER)],
        )
        .await,
        "invalid_target",
    );
}

#[tokio::test]
async fn tx_03_forged_act() {
    let env = setup().await;
    let a = bearer(&env, "alpha", "read").await;
    // A token claiming a chain, signed by a key Mandate never published.
    let mut forged = claims(&a.access_token);
    forged["act"] = json!({ "sub": spiffe("admin-bot") });
    forged["scope"] = json!("read write admin");
    let attacker = SigningKey::generate(Algorithm::Es256).unwrap();
    let kid = claims_kid(&a.access_token);
    let token = sign_raw(
        &attacker,
        &format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{kid}"}}"#),
        &forged,
    );
    expect_err(exchange(&env, &token, "beta", &[]).await, "invalid_grant");
    denied(&env, "invalid_grant").await;
    // A real token with its payload swapped (signature no longer matches).
    let parts: Vec<&str> = a.access_token.split('.').collect();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap()),
        parts[2]
    );
    expect_err(exchange(&env, &swapped, "beta", &[]).await, "invalid_grant");
    // `act` is never taken from the request.
    let b = exchange(&env, &a.access_token, "beta", &[("act", "{\"sub\":\"x\"}")])
        .await
        .unwrap();
    assert_eq!(claims(&b.access_token)["act"]["sub"], spiffe("beta"));
}

fn claims_kid(token: &str) -> String {
    let h: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    h["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn tx_04_not_in_may_act() {
    let env = setup().await;
    let assertion = k8s("alpha");
    let a = grant(
        &env,
        &[
            ("grant_type", GRANT_JWT_BEARER),
            ("assertion", &assertion),
            ("resource", API),
            ("may_act", "gamma"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(claims(&a.access_token)["may_act"]["sub"], spiffe("gamma"));
    let e = expect_err(
        exchange(&env, &a.access_token, "beta", &[]).await,
        "invalid_grant",
    );
    assert!(e.description.contains("may_act"), "{e:?}");
    denied(&env, "invalid_grant").await;
    exchange(&env, &a.access_token, "gamma", &[]).await.unwrap();
}

#[tokio::test]
async fn tx_05_wrong_subject_token_kind() {
    let env = setup().await;
    // A user identity provider, for ID tokens.
    let jwks: Value = serde_json::from_slice(&read("kubernetes/jwks.json")).unwrap();
    env.engine
        .add_provider(
            &env.admin,
            "corp",
            mandate_attest::ProviderSpec::Oidc(oidc_spec(
                Some("https://login.test"),
                mandate_attest::oidc::KeysSpec::Inline { document: jwks },
            )),
            false,
        )
        .await
        .unwrap();
    let id_token = |aud: &str| {
        sign(
            &es_key(),
            &json!({"iss": "https://login.test", "sub": "u-1", "aud": aud, "email": "ann@example.com",
                    "exp": now() + 600, "iat": now()}),
        )
    };
    let actor = k8s("beta");
    let ex = |subject: String, kind: &'static str| {
        let actor = actor.clone();
        let env = &env;
        async move {
            grant(
                env,
                &[
                    ("grant_type", GRANT_TOKEN_EXCHANGE),
                    ("subject_token", &subject),
                    ("subject_token_type", kind),
                    ("actor_token", &actor),
                    ("actor_token_type", TOKEN_TYPE_JWT),
                    ("resource", API),
                ],
            )
            .await
        }
    };
    // An ID token presented as an access token.
    expect_err(
        ex(id_token(AUDIENCE), TOKEN_TYPE_ACCESS).await,
        "invalid_grant",
    );
    denied(&env, "invalid_grant").await;
    // A workload JWT presented as an access token.
    expect_err(ex(k8s("alpha"), TOKEN_TYPE_ACCESS).await, "invalid_grant");
    // A Mandate token presented as an ID token (lying subject_token_type).
    let a = bearer(&env, "alpha", "read").await;
    expect_err(
        ex(a.access_token.clone(), TOKEN_TYPE_ID).await,
        "invalid_grant",
    );
    // An ID token for another audience.
    expect_err(
        ex(id_token("someone-else"), TOKEN_TYPE_ID).await,
        "invalid_grant",
    );
    // The right ID token works: on behalf of the user.
    let t = ex(id_token(AUDIENCE), TOKEN_TYPE_ID).await.unwrap();
    let c = claims(&t.access_token);
    assert_eq!(c["sub"], "ann@example.com");
    assert_eq!(c["agent_kind"], "on_behalf_of");
    assert_eq!(c["act"]["sub"], spiffe("beta"));
    // An expired Mandate token.
    env.clock.advance(time::Duration::seconds(301));
    expect_err(ex(a.access_token, TOKEN_TYPE_ACCESS).await, "invalid_grant");
    // An unknown token type.
    let b = bearer(&env, "alpha", "read").await;
    expect_err(
        ex(b.access_token, "urn:ietf:params:oauth:token-type:saml2").await,
        "invalid_request",
    );
}

#[tokio::test]
async fn tx_06_loop_and_depth() {
    let env = setup_with(TokenConfig {
        max_delegation_depth: 2,
        ..TokenConfig::default()
    })
    .await;
    let a = bearer(&env, "alpha", "read").await;
    let b = exchange(&env, &a.access_token, "beta", &[]).await.unwrap();
    // Loop: alpha again.
    let e = expect_err(
        exchange(&env, &b.access_token, "alpha", &[]).await,
        "invalid_grant",
    );
    assert!(e.description.contains("loop"), "{e:?}");
    denied(&env, "invalid_grant").await;
    // Depth 2 is allowed, 3 is not.
    let c = exchange(&env, &b.access_token, "gamma", &[]).await.unwrap();
    let e = expect_err(
        exchange(&env, &c.access_token, "delta", &[]).await,
        "invalid_grant",
    );
    assert!(e.description.contains("depth"), "{e:?}");
    // No actor token: no delegation (impersonation is off).
    expect_err(
        grant(
            &env,
            &[
                ("grant_type", GRANT_TOKEN_EXCHANGE),
                ("subject_token", &a.access_token),
                ("subject_token_type", TOKEN_TYPE_ACCESS),
                ("resource", API),
            ],
        )
        .await,
        "invalid_request",
    );
    // A delegated token is no proof of its holder's own identity.
    expect_err(
        grant(
            &env,
            &[
                ("grant_type", GRANT_TOKEN_EXCHANGE),
                ("subject_token", &a.access_token),
                ("subject_token_type", TOKEN_TYPE_ACCESS),
                ("actor_token", &b.access_token),
                ("actor_token_type", TOKEN_TYPE_ACCESS),
                ("resource", API),
            ],
        )
        .await,
        "invalid_grant",
    );
}

#[tokio::test]
async fn tx_07_child_outlives_parent() {
    let env = setup().await;
    let a = bearer(&env, "alpha", "read").await;
    env.clock.advance(time::Duration::seconds(250));
    let b = exchange(&env, &a.access_token, "beta", &[]).await.unwrap();
    assert!(b.expires_in <= 50, "{}", b.expires_in);
    assert!(claims(&b.access_token)["exp"].as_i64() <= claims(&a.access_token)["exp"].as_i64());
    // Once the parent has expired, nothing more.
    env.clock.advance(time::Duration::seconds(60));
    expect_err(
        exchange(&env, &a.access_token, "gamma", &[]).await,
        "invalid_grant",
    );
    denied(&env, "invalid_grant").await;
}

fn dpop_key() -> SigningKey {
    SigningKey::generate(Algorithm::Es256).unwrap()
}

fn proof(key: &SigningKey, htm: &str, htu: &str, nonce: Option<&str>, ath: Option<&str>) -> String {
    mandate_testkit::dpop_proof(key, htm, htu, now(), nonce, ath)
}

async fn dpop_bearer(env: &Env, key: &SigningKey) -> TokenResponse {
    let assertion = k8s("alpha");
    let params = [
        ("grant_type", GRANT_JWT_BEARER),
        ("assertion", assertion.as_str()),
        ("resource", API),
    ];
    let e = expect_err(
        grant_dpop(
            env,
            &params,
            Some(proof(key, "POST", &endpoint(), None, None)),
        )
        .await,
        "use_dpop_nonce",
    );
    let nonce = e.dpop_nonce.expect("a nonce");
    grant_dpop(
        env,
        &params,
        Some(proof(key, "POST", &endpoint(), Some(&nonce), None)),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn dpop_binds_the_token_to_the_proof_key() {
    let env = setup().await;
    let key = dpop_key();
    let t = dpop_bearer(&env, &key).await;
    assert_eq!(t.token_type, "DPoP");
    assert!(t.dpop_nonce.is_some());
    let jkt = key.public_jwk().unwrap().thumbprint();
    assert_eq!(claims(&t.access_token)["cnf"]["jkt"], jkt);
    let intro = env
        .engine
        .introspect("test", &t.access_token)
        .await
        .unwrap();
    assert_eq!(intro["token_type"], "DPoP");
    assert_eq!(intro["cnf"]["jkt"], jkt);
}

#[tokio::test]
async fn dpop_01_proof_replay() {
    let env = setup().await;
    let key = dpop_key();
    let assertion = k8s("alpha");
    let params = [
        ("grant_type", GRANT_JWT_BEARER),
        ("assertion", assertion.as_str()),
        ("resource", API),
    ];
    let nonce = env.engine.dpop_nonce().unwrap();
    let p = proof(&key, "POST", &endpoint(), Some(&nonce), None);
    grant_dpop(&env, &params, Some(p.clone())).await.unwrap();
    let e = expect_err(
        grant_dpop(&env, &params, Some(p)).await,
        "invalid_dpop_proof",
    );
    assert!(e.description.contains("replay"), "{e:?}");
    denied(&env, "invalid_dpop_proof").await;
}

#[tokio::test]
async fn dpop_02_wrong_method_or_url() {
    let env = setup().await;
    let key = dpop_key();
    let assertion = k8s("alpha");
    let params = [
        ("grant_type", GRANT_JWT_BEARER),
        ("assertion", assertion.as_str()),
        ("resource", API),
    ];
    let nonce = env.engine.dpop_nonce().unwrap();
    for p in [
        proof(&key, "GET", &endpoint(), Some(&nonce), None),
        proof(
            &key,
            "POST",
            "https://evil.test/oauth2/token",
            Some(&nonce),
            None,
        ),
    ] {
        expect_err(
            grant_dpop(&env, &params, Some(p)).await,
            "invalid_dpop_proof",
        );
        denied(&env, "invalid_dpop_proof").await;
    }
    // Normalisation: default port, case of scheme and host, query ignored.
    let htu = "HTTPS://Mandate.TEST:443/oauth2/token?x=1";
    grant_dpop(
        &env,
        &params,
        Some(proof(&key, "POST", htu, Some(&nonce), None)),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn dpop_03_stale_or_forged_nonce() {
    let env = setup().await;
    let key = dpop_key();
    let assertion = k8s("alpha");
    let params = [
        ("grant_type", GRANT_JWT_BEARER),
        ("assertion", assertion.as_str()),
        ("resource", API),
    ];
    let old = env.engine.dpop_nonce().unwrap();
    env.clock.advance(time::Duration::minutes(10));
    let now_s = now() + 600;
    // A stale nonce (proof itself fresh) is answered with a new nonce.
    let jwk = key.public_jwk().unwrap().to_json();
    let fresh = |nonce: &str| {
        key.sign_with_header(
            &serde_json::to_vec(&json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": jwk })).unwrap(),
            &serde_json::to_vec(&json!({"htm": "POST", "htu": endpoint(), "iat": now_s,
                "jti": mandate_jose::random::token::<12>().unwrap(), "nonce": nonce}))
            .unwrap(),
        )
        .unwrap()
    };
    let e = expect_err(
        grant_dpop(&env, &params, Some(fresh(&old))).await,
        "use_dpop_nonce",
    );
    assert!(e.dpop_nonce.is_some_and(|n| n != old));
    expect_err(
        grant_dpop(
            &env,
            &params,
            Some(fresh("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")),
        )
        .await,
        "use_dpop_nonce",
    );
    // An old proof (iat 10 minutes ago) is refused outright.
    let current = env.engine.dpop_nonce().unwrap();
    expect_err(
        grant_dpop(
            &env,
            &params,
            Some(proof(&key, "POST", &endpoint(), Some(&current), None)),
        )
        .await,
        "invalid_dpop_proof",
    );
}

#[tokio::test]
async fn dpop_04_bound_token_without_its_key() {
    let env = setup_pdp().await;
    let key = dpop_key();
    let t = dpop_pdp_token(&env, &key).await;
    let url = format!("{ISSUER}/access/v1/evaluation");
    let present = |scheme: &'static str, proof: Option<String>| {
        let token = t.access_token.clone();
        let url = url.clone();
        let env = &env;
        async move {
            env.engine
                .check_presented(
                    Presented {
                        scheme,
                        token: &token,
                        proof: proof.as_deref(),
                        method: "POST",
                        url: &url,
                    },
                    &format!("{ISSUER}/access/v1"),
                    "authzen:evaluate",
                )
                .await
                .unwrap()
        }
    };
    let ath = access_token_hash(&t.access_token);
    // As a plain bearer token: refused.
    assert_eq!(
        present("Bearer", None).await.unwrap_err().error,
        "invalid_token"
    );
    // Without a proof, or with a proof of another key: refused.
    assert_eq!(
        present("DPoP", None).await.unwrap_err().error,
        "invalid_dpop_proof"
    );
    let other = dpop_key();
    assert_eq!(
        present("DPoP", Some(proof(&other, "POST", &url, None, Some(&ath))))
            .await
            .unwrap_err()
            .error,
        "invalid_dpop_proof"
    );
    // With its key: accepted.
    assert!(
        present("DPoP", Some(proof(&key, "POST", &url, None, Some(&ath))))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn dpop_05_ath_mismatch() {
    let env = setup_pdp().await;
    let key = dpop_key();
    let t = dpop_pdp_token(&env, &key).await;
    let url = format!("{ISSUER}/access/v1/evaluation");
    for ath in [Some(access_token_hash("another token")), None] {
        let p = proof(&key, "POST", &url, None, ath.as_deref());
        let r = env
            .engine
            .check_presented(
                Presented {
                    scheme: "DPoP",
                    token: &t.access_token,
                    proof: Some(&p),
                    method: "POST",
                    url: &url,
                },
                &format!("{ISSUER}/access/v1"),
                "authzen:evaluate",
            )
            .await
            .unwrap();
        assert_eq!(r.unwrap_err().error, "invalid_dpop_proof");
    }
}

#[tokio::test]
async fn dpop_06_weak_proof_alg() {
    let env = setup().await;
    let assertion = k8s("alpha");
    let params = [
        ("grant_type", GRANT_JWT_BEARER),
        ("assertion", assertion.as_str()),
        ("resource", API),
    ];
    let nonce = env.engine.dpop_nonce().unwrap();
    let key = dpop_key();
    let jwk = key.public_jwk().unwrap().to_json();
    let body =
        json!({"htm": "POST", "htu": endpoint(), "iat": now(), "jti": "j-weak", "nonce": nonce});
    // HS256 "signed" with the public key as secret, and alg none.
    for alg in ["HS256", "none"] {
        let p = forge(
            &json!({ "typ": "dpop+jwt", "alg": alg, "jwk": jwk }),
            &body,
            b"sig",
        );
        expect_err(
            grant_dpop(&env, &params, Some(p)).await,
            "invalid_dpop_proof",
        );
        denied(&env, "invalid_dpop_proof").await;
    }
    // A header claiming ES256 over an Ed25519 key; a private key in `jwk`.
    let mut private = jwk.clone();
    private["d"] = json!("AAAA");
    for header in [
        json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": private }),
        json!({ "typ": "JWT", "alg": "ES256", "jwk": jwk }),
    ] {
        let p = key
            .sign_with_header(
                &serde_json::to_vec(&header).unwrap(),
                &serde_json::to_vec(&body).unwrap(),
            )
            .unwrap();
        expect_err(
            grant_dpop(&env, &params, Some(p)).await,
            "invalid_dpop_proof",
        );
    }
}

/// `setup` plus a resource for the AuthZEN API.
async fn setup_pdp() -> Env {
    let env = setup().await;
    env.engine
        .add_resource(
            &env.admin,
            NewResource {
                name: "pdp".into(),
                audience: format!("{ISSUER}/access/v1"),
                scopes: vec!["authzen:evaluate".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    env
}

async fn dpop_pdp_token(env: &Env, key: &SigningKey) -> TokenResponse {
    let assertion = k8s("alpha");
    let nonce = env.engine.dpop_nonce().unwrap();
    let aud = format!("{ISSUER}/access/v1");
    grant_dpop(
        env,
        &[
            ("grant_type", GRANT_JWT_BEARER),
            ("assertion", &assertion),
            ("resource", &aud),
        ],
        Some(proof(key, "POST", &endpoint(), Some(&nonce), None)),
    )
    .await
    .unwrap()
}

/// The agent `beta` with a registered key; a client assertion for it.
async fn register_key(env: &Env, agent: &str) -> SigningKey {
    let key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid("k1");
    let mut jwk = key.public_jwk().unwrap().to_json();
    jwk["kid"] = json!("k1");
    env.engine
        .set_agent_jwks(
            &env.admin,
            &agent.parse().unwrap(),
            &json!({ "keys": [jwk] }),
        )
        .await
        .unwrap();
    key
}

fn client_assertion(key: &SigningKey, agent: &str, jti: &str) -> String {
    key.sign(
        None,
        &serde_json::to_vec(&json!({
            "iss": agent, "sub": agent, "aud": ISSUER, "exp": now() + 60, "iat": now(), "jti": jti,
        }))
        .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn private_key_jwt_client_credentials() {
    let env = setup().await;
    let key = register_key(&env, "beta").await;
    let ca = client_assertion(&key, "beta", "j-1");
    let t = grant(
        &env,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "beta"),
            (
                "client_assertion_type",
                mandate_engine::oauth::JWT_BEARER_ASSERTION_TYPE,
            ),
            ("client_assertion", &ca),
            ("resource", API),
            ("scope", "read"),
        ],
    )
    .await
    .unwrap();
    let c = claims(&t.access_token);
    assert_eq!(c["sub"], spiffe("beta"));
    assert_eq!(c["client_id"], "beta");
    assert_eq!(
        env.last_event().await.detail["client_auth"],
        "private_key_jwt"
    );
    // client_credentials without client authentication, or with a secret.
    expect_err(
        grant(
            &env,
            &[("grant_type", "client_credentials"), ("resource", API)],
        )
        .await,
        "invalid_client",
    );
    expect_err(
        grant(
            &env,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "beta"),
                ("client_secret", "s"),
                ("resource", API),
            ],
        )
        .await,
        "invalid_client",
    );
    // Another agent's key does not authenticate beta.
    let other = register_key(&env, "gamma").await;
    let forged = client_assertion(&other, "beta", "j-2");
    expect_err(
        grant(
            &env,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "beta"),
                (
                    "client_assertion_type",
                    mandate_engine::oauth::JWT_BEARER_ASSERTION_TYPE,
                ),
                ("client_assertion", &forged),
                ("resource", API),
            ],
        )
        .await,
        "invalid_client",
    );
    denied(&env, "invalid_client").await;
}

#[tokio::test]
async fn rpl_01_assertion_replay() {
    let env = setup().await;
    let key = register_key(&env, "beta").await;
    let ca = client_assertion(&key, "beta", "once");
    let params = [
        ("grant_type", "client_credentials"),
        ("client_id", "beta"),
        (
            "client_assertion_type",
            mandate_engine::oauth::JWT_BEARER_ASSERTION_TYPE,
        ),
        ("client_assertion", ca.as_str()),
        ("resource", API),
    ];
    grant(&env, &params).await.unwrap();
    let e = expect_err(grant(&env, &params).await, "invalid_client");
    assert!(e.description.contains("replay"), "{e:?}");
    denied(&env, "invalid_client").await;
}

#[tokio::test]
async fn jwt_08_token_kind_confusion() {
    let env = setup_pdp().await;
    let key = dpop_key();
    let aud = format!("{ISSUER}/access/v1");
    let url = format!("{aud}/evaluation");
    let ckey = register_key(&env, "alpha").await;
    // Things that are JWTs but not access tokens.
    let dpop_proof = proof(&key, "POST", &url, None, None);
    let assertion = client_assertion(&ckey, "alpha", "kc");
    let attestation = k8s("alpha");
    let id_like = sign(
        &es_key(),
        &json!({"iss": ISSUER, "aud": aud, "sub": "x", "exp": now() + 60,
        "scope": "authzen:evaluate", "jti": "nope"}),
    );
    for not_a_token in [&dpop_proof, &assertion, &attestation, &id_like] {
        assert!(
            env.engine
                .verify_access_token(not_a_token)
                .await
                .unwrap()
                .is_err()
        );
        let r = env
            .engine
            .check_presented(
                Presented {
                    scheme: "Bearer",
                    token: not_a_token,
                    proof: None,
                    method: "POST",
                    url: &url,
                },
                &aud,
                "authzen:evaluate",
            )
            .await
            .unwrap();
        assert_eq!(r.unwrap_err().error, "invalid_token");
        expect_err(
            exchange(&env, not_a_token, "beta", &[]).await,
            "invalid_grant",
        );
        denied(&env, "invalid_grant").await;
    }
    // And an access token is not a workload assertion or client assertion.
    let t = bearer(&env, "alpha", "read").await;
    expect_err(
        grant(
            &env,
            &[
                ("grant_type", GRANT_JWT_BEARER),
                ("assertion", &t.access_token),
                ("resource", API),
            ],
        )
        .await,
        "invalid_grant",
    );
    // A valid token for another audience, or lacking the scope.
    let r = env
        .engine
        .check_presented(
            Presented {
                scheme: "Bearer",
                token: &t.access_token,
                proof: None,
                method: "POST",
                url: &url,
            },
            &aud,
            "authzen:evaluate",
        )
        .await
        .unwrap();
    assert_eq!(r.unwrap_err().error, "invalid_token");
}

#[tokio::test]
async fn policy_deny_issues_nothing_and_records_the_policy() {
    let env = setup().await;
    let assertion = k8s("beta");
    expect_err(
        grant(
            &env,
            &[
                ("grant_type", GRANT_JWT_BEARER),
                ("assertion", &assertion),
                ("resource", OTHER),
            ],
        )
        .await,
        "access_denied",
    );
    let ev = denied(&env, "access_denied").await;
    assert_eq!(ev.detail["denied_action"], "token:issue");
    assert_eq!(ev.detail["policies"], json!(["no-other-for-beta"]));
    assert!(
        env.engine
            .list_tokens(Some("beta"), false, 0)
            .await
            .unwrap()
            .is_empty()
    );
    // An unmapped workload is a shadow: denied, recorded.
    expect_err(
        grant(
            &env,
            &[
                ("grant_type", GRANT_JWT_BEARER),
                ("assertion", &k8s("stranger")),
                ("resource", API),
            ],
        )
        .await,
        "invalid_grant",
    );
    assert_eq!(env.engine.list_shadows(None).await.unwrap().len(), 1);
    // Bad requests.
    expect_err(
        grant(&env, &[("grant_type", "password")]).await,
        "unsupported_grant_type",
    );
    expect_err(grant(&env, &[]).await, "invalid_request");
    expect_err(
        grant(
            &env,
            &[
                ("grant_type", GRANT_JWT_BEARER),
                ("grant_type", GRANT_JWT_BEARER),
            ],
        )
        .await,
        "invalid_request",
    );
}

#[tokio::test]
async fn key_rotation_under_use_keeps_old_tokens_valid() {
    // Tokens live 10 minutes; the new key activates 5 minutes after the
    // rotation (the JWKS cache time).
    let env = setup_with(TokenConfig {
        default_ttl: time::Duration::minutes(10),
        ..TokenConfig::default()
    })
    .await;
    let before = bearer(&env, "alpha", "read").await;
    env.engine
        .rotate_signing_key(&env.admin, None)
        .await
        .unwrap();
    // During the switch, every token verifies: old ones, and new ones
    // signed by the old key until the new key activates, then by the new.
    let mut kids = std::collections::BTreeSet::new();
    for _ in 0..8 {
        let t = bearer(&env, "alpha", "read").await;
        kids.insert(claims_kid(&t.access_token));
        assert!(active(&env, &t.access_token).await);
        assert!(active(&env, &before.access_token).await);
        env.clock.advance(time::Duration::seconds(45));
    }
    assert_eq!(kids.len(), 2, "both keys signed during the switch");
}

mod chains {
    use proptest::prelude::*;

    use super::*;

    const SCOPES: [&str; 3] = ["read", "write", "admin"];

    fn subset(mask: u8) -> Vec<&'static str> {
        SCOPES
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, s)| *s)
            .collect()
    }

    /// Runs a chain: alpha's token, then one exchange per step by the next
    /// agent with the step's scopes (any subset of all scopes, so some ask
    /// for more than their parent holds) after the step's delay.
    async fn run(steps: Vec<(u8, i64)>) {
        let env = setup().await;
        let mut parent = bearer(&env, "alpha", "read write admin").await;
        for ((mask, delay), child) in steps.into_iter().zip(["beta", "gamma", "delta", "epsilon"]) {
            env.clock.advance(time::Duration::seconds(delay));
            let pc = claims(&parent.access_token);
            let held: Vec<&str> = pc["scope"].as_str().unwrap().split(' ').collect();
            let wanted = subset(mask);
            let scope = wanted.join(" ");
            let r = exchange(&env, &parent.access_token, child, &[("scope", &scope)]).await;
            let narrows = !wanted.is_empty() && wanted.iter().all(|s| held.contains(s));
            let alive = pc["exp"].as_i64().unwrap() > now() + env_elapsed(&env);
            match r {
                Ok(t) => {
                    let c = claims(&t.access_token);
                    let got: Vec<&str> = c["scope"].as_str().unwrap().split(' ').collect();
                    assert!(got.iter().all(|s| held.contains(s)), "{got:?} ⊄ {held:?}");
                    assert!(c["exp"].as_i64() <= pc["exp"].as_i64());
                    assert_eq!(c["txn"], pc["txn"]);
                    assert!(alive, "an expired parent yielded a token");
                    parent = t;
                }
                Err(e) => {
                    assert!(
                        !(narrows && alive),
                        "a narrowing exchange was refused: {e:?}"
                    );
                    return;
                }
            }
        }
    }

    fn env_elapsed(env: &Env) -> i64 {
        use mandate_core::Clock as _;
        (env.clock.now() - T0).whole_seconds()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn every_exchange_narrows_scope_and_lifetime(
            steps in prop::collection::vec((0u8..8, 0i64..120), 1..=4)
        ) {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(run(steps));
        }
    }
}

/// A Kubernetes assertion for `sa` valid at `at` (unix seconds).
fn k8s_at(sa: &str, at: i64) -> String {
    let mut c = k8s_claims("default", sa);
    c["iat"] = json!(at - 10);
    c["nbf"] = json!(at - 10);
    c["exp"] = json!(at + 3600);
    sign(&es_key(), &c)
}

#[tokio::test]
async fn a_stale_agent_suspended_by_apply_gets_no_more_tokens() {
    let env = setup().await;
    let t = bearer(&env, "alpha", "read").await;
    assert!(active(&env, &t.access_token).await);
    env.clock.advance(time::Duration::days(2));
    let later = now() + 2 * 86_400;
    // beta stays busy; alpha has been idle for two days: stale under a
    // one-day rule, and `--apply` suspends it.
    let b = k8s_at("beta", later);
    grant(
        &env,
        &[
            ("grant_type", GRANT_JWT_BEARER),
            ("assertion", &b),
            ("resource", API),
        ],
    )
    .await
    .unwrap();
    let done = env
        .engine
        .suspend_stale_agents(&env.admin, Some(1))
        .await
        .unwrap();
    let names: Vec<&str> = done.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.contains(&"alpha") && !names.contains(&"beta"),
        "{names:?}"
    );
    // It gets no token any more: its platform's proof no longer works.
    let fresh = k8s_at("alpha", later);
    let e = expect_err(
        grant(
            &env,
            &[
                ("grant_type", GRANT_JWT_BEARER),
                ("assertion", &fresh),
                ("resource", API),
            ],
        )
        .await,
        "invalid_grant",
    );
    assert!(e.description.contains("suspended"), "{e:?}");
    denied(&env, "invalid_grant").await;
    assert!(
        env.engine
            .list_tokens(Some("alpha"), true, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn audit_01_granted_scope_and_full_chain_recorded() {
    let env = setup().await;
    // No scope asked: the token gets the resource's scopes, and the event
    // says so (not the empty request).
    let a = grant(
        &env,
        &[
            ("grant_type", GRANT_JWT_BEARER),
            ("assertion", &k8s("alpha")),
            ("resource", API),
        ],
    )
    .await
    .unwrap();
    let ev = env.last_event().await;
    assert_eq!(ev.event_type, "token.issued");
    assert_eq!(ev.detail["scope"], claims(&a.access_token)["scope"]);
    assert_eq!(ev.detail["requested_scope"], "");
    assert_eq!(ev.detail["chain"], serde_json::json!(["alpha"]));
    // An exchange: the chain includes the new token's holder.
    let b = exchange(&env, &a.access_token, "beta", &[("scope", "read")])
        .await
        .unwrap();
    let ev = env.last_event().await;
    assert_eq!(ev.detail["jti"], claims(&b.access_token)["jti"]);
    assert_eq!(ev.detail["chain"], serde_json::json!(["alpha", "beta"]));
    assert_eq!(ev.detail["scope"], "read");
    assert_eq!(ev.detail["requested_scope"], "read");
}

#[tokio::test]
async fn a_workload_jwt_read_from_a_file_with_its_newline_is_accepted() {
    let env = setup().await;
    let assertion = format!("{}\n", k8s("alpha"));
    let t = grant(
        &env,
        &[
            ("grant_type", GRANT_JWT_BEARER),
            ("assertion", &assertion),
            ("resource", API),
            ("scope", "read"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(t.scope, "read");
}
