//! Providers, binding rules, shadows and join tokens through the engine.

use mandate_attest::ProviderSpec;
use mandate_attest::oidc::KeysSpec;
use mandate_engine::{AttestOutcome, Error};
use mandate_jose::jws::{Algorithm, SigningKey};
use mandate_jose::secret::ExposeSecret;
use mandate_testkit::oidc::TestIssuer;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn kubernetes_tokens_map_to_their_agent_and_touch_last_seen() {
    let env = env().await;
    env.agent("invoice-bot").await;
    env.k8s_provider().await;
    let rule = env
        .bind(
            "k8s",
            "invoice-bot",
            &[
                "kubernetes.io.namespace=billing",
                "kubernetes.io.serviceaccount.name=invoice-bot",
            ],
        )
        .await;
    for key in [rs_key(), es_key()] {
        let t = sign(&key, &k8s_claims("billing", "invoice-bot"));
        let a = env.engine.attest("k8s", t.as_bytes()).await.unwrap();
        assert_eq!(a.agent.as_str(), "invoice-bot");
        assert_eq!(a.rule.as_deref(), Some(rule.as_str()));
        assert_eq!(a.claims["kubernetes.io.pod.name"], "my-pod");
        let ev = env.last_event().await;
        assert_eq!(ev.event_type, "attestation.verified");
        assert_eq!(ev.detail["agent"], "invoice-bot");
        assert_eq!(ev.detail["dry_run"], false);
    }
    let agent = env
        .engine
        .agent(&"invoice-bot".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(agent.last_seen_at, Some(T0));

    // A dry run maps the same way but does not touch the agent.
    env.clock.advance(time::Duration::seconds(5));
    let t = sign(&rs_key(), &k8s_claims("billing", "invoice-bot"));
    let r = env
        .engine
        .attest_dry_run(&env.admin, "k8s", t.as_bytes())
        .await
        .unwrap();
    assert_eq!(r.outcome, AttestOutcome::Mapped);
    assert_eq!(r.agent.as_deref(), Some("invoice-bot"));
    assert_eq!(env.last_event().await.detail["dry_run"], true);
    let agent = env
        .engine
        .agent(&"invoice-bot".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(agent.last_seen_at, Some(T0));
}

#[tokio::test]
async fn legacy_service_account_tokens_are_refused_precisely() {
    let env = env().await;
    env.agent("invoice-bot").await;
    env.k8s_provider().await;
    env.bind("k8s", "invoice-bot", &["kubernetes.io.namespace=billing"])
        .await;
    let legacy = json!({
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": "billing",
        "kubernetes.io/serviceaccount/service-account.name": "invoice-bot",
        "sub": "system:serviceaccount:billing:invoice-bot",
    });
    let ev = env
        .refused("k8s", &sign(&rs_key(), &legacy), "legacy_token")
        .await;
    assert!(
        ev.detail["reason"]
            .as_str()
            .unwrap()
            .contains("legacy non-expiring")
    );
}

#[tokio::test]
async fn suspended_and_decommissioned_agents_never_attest() {
    let env = env().await;
    env.agent("invoice-bot").await;
    env.k8s_provider().await;
    env.bind("k8s", "invoice-bot", &["kubernetes.io.namespace=billing"])
        .await;
    let name = "invoice-bot".parse().unwrap();
    let t = sign(&rs_key(), &k8s_claims("billing", "invoice-bot"));
    env.engine
        .change_status(&env.admin, &name, mandate_core::StatusChange::Suspend)
        .await
        .unwrap();
    let ev = env.refused("k8s", &t, "agent_inactive").await;
    assert!(ev.detail["reason"].as_str().unwrap().contains("suspended"));
    env.engine
        .change_status(&env.admin, &name, mandate_core::StatusChange::Decommission)
        .await
        .unwrap();
    env.refused("k8s", &t, "agent_inactive").await;
}

#[tokio::test]
async fn most_specific_rule_wins_and_ties_are_refused_at_creation() {
    let env = env().await;
    for a in ["billing-any", "invoice-bot", "globbed"] {
        env.agent(a).await;
    }
    env.k8s_provider().await;
    env.bind("k8s", "billing-any", &["kubernetes.io.namespace=billing"])
        .await;
    env.bind(
        "k8s",
        "invoice-bot",
        &[
            "kubernetes.io.namespace=billing",
            "kubernetes.io.serviceaccount.name=invoice-bot",
        ],
    )
    .await;
    env.bind(
        "k8s",
        "globbed",
        &[
            "kubernetes.io.namespace=billing",
            "kubernetes.io.serviceaccount.name~report-*",
        ],
    )
    .await;
    for (sa, agent) in [
        ("invoice-bot", "invoice-bot"),
        ("report-7", "globbed"),
        ("other", "billing-any"),
    ] {
        let t = sign(&rs_key(), &k8s_claims("billing", sa));
        assert_eq!(
            env.engine
                .attest("k8s", t.as_bytes())
                .await
                .unwrap()
                .agent
                .as_str(),
            agent
        );
    }
    let m = |s: &str| mandate_attest::binding::ClaimMatch::parse(s).unwrap();
    let tie = env
        .engine
        .add_binding(
            &env.admin,
            "k8s",
            &"globbed".parse().unwrap(),
            vec![m("kubernetes.io.serviceaccount.name=invoice-bot")],
        )
        .await;
    assert!(matches!(tie, Err(Error::BindingTie(_))), "{tie:?}");
    let unknown = env
        .engine
        .add_binding(
            &env.admin,
            "k8s",
            &"nobody".parse().unwrap(),
            vec![m("sub=x")],
        )
        .await;
    assert!(matches!(
        unknown,
        Err(Error::NotFound { kind: "agent", .. })
    ));
}

#[tokio::test]
async fn shadows_are_recorded_and_counted() {
    let env = env().await;
    env.k8s_provider().await;
    for i in 1..=3 {
        env.clock.advance(time::Duration::seconds(1));
        let t = sign(&rs_key(), &k8s_claims("ops", "stray-bot"));
        let r = env
            .engine
            .attest_dry_run(&env.admin, "k8s", t.as_bytes())
            .await
            .unwrap();
        assert_eq!(r.outcome, AttestOutcome::Shadow);
        assert_eq!(r.shadow_count, Some(i));
    }
    let s = env.engine.list_shadows(Some("k8s")).await.unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].count, 3);
    assert_eq!(s[0].subject, "system:serviceaccount:ops:stray-bot");
    assert_eq!(s[0].first_seen, T0 + time::Duration::seconds(1));
    assert_eq!(s[0].last_seen, T0 + time::Duration::seconds(3));
    assert_eq!(s[0].claims["kubernetes.io.namespace"], "ops");
}

#[tokio::test]
async fn join_tokens_are_one_time_and_expire() {
    let env = env().await;
    env.agent("dev-bot").await;
    let spec: ProviderSpec =
        serde_json::from_value(json!({"kind": "join-token", "config": {}})).unwrap();
    env.engine
        .add_provider(&env.admin, "dev", spec, false)
        .await
        .unwrap();
    let issued = env
        .engine
        .create_join_token(&env.admin, "dev", &"dev-bot".parse().unwrap(), Some(600))
        .await
        .unwrap();
    let token = issued.token.expose_secret().to_owned();
    let ev = env.last_event().await;
    assert!(!ev.detail.to_string().contains(&token));
    // A dry run does not consume it.
    let r = env
        .engine
        .attest_dry_run(&env.admin, "dev", token.as_bytes())
        .await
        .unwrap();
    assert_eq!(r.agent.as_deref(), Some("dev-bot"));
    let a = env.engine.attest("dev", token.as_bytes()).await.unwrap();
    assert_eq!(a.agent.as_str(), "dev-bot");
    env.refused("dev", &token, "join_token_spent").await;
    // Expiry, and a wrong secret for a real id.
    let issued = env
        .engine
        .create_join_token(&env.admin, "dev", &"dev-bot".parse().unwrap(), Some(60))
        .await
        .unwrap();
    let token = issued.token.expose_secret().to_owned();
    let forged = format!("mjt_{}_{}", issued.id, "A".repeat(43));
    env.refused("dev", &forged, "unknown_join_token").await;
    env.clock.advance(time::Duration::seconds(61));
    env.refused("dev", &token, "expired").await;
}

#[tokio::test]
async fn oidc_discovery_rotation_and_rate_limited_refresh() {
    let env = env().await;
    env.agent("ci-bot").await;
    let issuer = TestIssuer::start().await;
    let mut spec = oidc_spec(Some(issuer.issuer()), KeysSpec::Discovery);
    spec.jwks_min_refresh_secs = Some(30);
    // Loopback needs the explicit permission.
    let refused = env
        .engine
        .add_provider(&env.admin, "ci", ProviderSpec::Oidc(spec.clone()), false)
        .await;
    assert!(refused.is_err());
    env.engine
        .add_provider(&env.admin, "ci", ProviderSpec::Oidc(spec), true)
        .await
        .unwrap();
    let info = env.engine.provider("ci").await.unwrap();
    assert!(info.allow_private_network);
    env.bind("ci", "ci-bot", &["sub=repo:acme/app"]).await;
    let claims = |c: &mut serde_json::Value| {
        c["iss"] = json!(issuer.issuer());
        c["sub"] = json!("repo:acme/app");
    };
    let mut c = k8s_claims("x", "y");
    claims(&mut c);
    let t1 = issuer.sign(&c);
    assert_eq!(
        env.engine
            .attest("ci", t1.as_bytes())
            .await
            .unwrap()
            .agent
            .as_str(),
        "ci-bot"
    );
    assert_eq!(issuer.jwks_fetches(), 1);

    // Rotation mid-test: the new kid triggers one refresh.
    env.clock.advance(time::Duration::seconds(31));
    issuer.rotate(true);
    let t2 = issuer.sign(&c);
    assert_eq!(
        env.engine
            .attest("ci", t2.as_bytes())
            .await
            .unwrap()
            .agent
            .as_str(),
        "ci-bot"
    );
    assert_eq!(issuer.jwks_fetches(), 2);
    // The old key left the set.
    env.refused("ci", &t1, "unknown_key").await;

    // Random kids: at most one fetch per interval.
    let attacker = SigningKey::generate(Algorithm::Es256).unwrap();
    for i in 0..20 {
        let header = json!({"alg": "ES256", "kid": format!("random-{i}")}).to_string();
        let t = sign_raw(&attacker, &header, &c);
        env.refused("ci", &t, "unknown_key").await;
    }
    assert!(
        issuer.jwks_fetches() <= 3,
        "fetches: {}",
        issuer.jwks_fetches()
    );

    // A failing issuer: the last good set stays in use.
    issuer.set_failing(true);
    env.clock.advance(time::Duration::seconds(3601));
    assert!(env.engine.attest("ci", t2.as_bytes()).await.is_ok());
    let keys = env.engine.provider("ci").await.unwrap().keys.unwrap();
    assert!(keys.last_error.is_some());
    assert_eq!(keys.keys, 1);
}

#[tokio::test]
async fn spiffe_jwt_svids_of_a_federated_domain() {
    let env = env().await;
    env.agent("payments").await;
    let key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid("td-key-1");
    let mut jwk = key.public_jwk().unwrap().to_json();
    jwk["use"] = json!("jwt-svid");
    let bundle = json!({"spiffe_refresh_hint": 60, "keys": [jwk]});
    let spec: ProviderSpec = serde_json::from_value(json!({
        "kind": "spiffe",
        "config": {"trust_domain": "partner.example", "audience": AUDIENCE, "bundle": {"from": "inline", "document": bundle}}
    }))
    .unwrap();
    env.engine
        .add_provider(&env.admin, "partner", spec, false)
        .await
        .unwrap();
    env.bind(
        "partner",
        "payments",
        &["spiffe_id=spiffe://partner.example/ns/pay/sa/payments"],
    )
    .await;
    let svid = |sub: &str| {
        sign_raw(
            &key,
            r#"{"alg":"ES256","kid":"td-key-1","typ":"JWT"}"#,
            &json!({
                "sub": sub, "aud": [AUDIENCE], "exp": now() + 300, "iat": now(),
            }),
        )
    };
    let a = env
        .engine
        .attest(
            "partner",
            svid("spiffe://partner.example/ns/pay/sa/payments").as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(a.agent.as_str(), "payments");
    for bad in [
        "spiffe://other.example/ns/pay/sa/payments",
        "spiffe://partner.example",
        "spiffe://partner.example/ns//x",
        "spiffe://Partner.example/x",
        "https://partner.example/x",
        "spiffe://partner.example/x/../y",
    ] {
        env.refused("partner", &svid(bad), "bad_spiffe_id").await;
    }
}

#[tokio::test]
async fn ci_presets_check_their_claims() {
    let env = env().await;
    env.agent("release-bot").await;
    let key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid("gh-1");
    let jwks = json!({"keys": [key.public_jwk().unwrap().to_json()]});
    let mut spec = oidc_spec(
        None,
        KeysSpec::Inline {
            document: jwks.clone(),
        },
    );
    spec.required_claims
        .insert("repository_owner".into(), "acme".into());
    env.engine
        .add_provider(&env.admin, "gha", ProviderSpec::GithubActions(spec), false)
        .await
        .unwrap();
    let gitlab = oidc_spec(
        Some("https://gitlab.example.com"),
        KeysSpec::Inline { document: jwks },
    );
    env.engine
        .add_provider(&env.admin, "gitlab", ProviderSpec::GitlabCi(gitlab), false)
        .await
        .unwrap();
    let gha = env.engine.provider("gha").await.unwrap();
    assert!(gha.binding_claims.contains(&"job_workflow_ref".to_owned()));
    env.bind(
        "gha",
        "release-bot",
        &["repository=acme/app", "ref~refs/tags/*"],
    )
    .await;
    env.bind("gitlab", "release-bot", &["project_path=acme/app"])
        .await;
    let gh = |owner: &str, repo: Option<&str>| {
        let mut c = json!({
            "iss": "https://token.actions.githubusercontent.com", "aud": AUDIENCE,
            "exp": now() + 300, "iat": now(), "sub": "repo:acme/app:ref:refs/tags/v1",
            "repository_owner": owner, "ref": "refs/tags/v1", "job_workflow_ref": "acme/app/.github/workflows/release.yml@refs/tags/v1",
        });
        if let Some(r) = repo {
            c["repository"] = json!(r);
        }
        sign(&key, &c)
    };
    let a = env
        .engine
        .attest("gha", gh("acme", Some("acme/app")).as_bytes())
        .await
        .unwrap();
    assert_eq!(a.agent.as_str(), "release-bot");
    assert_eq!(
        a.claims["job_workflow_ref"],
        "acme/app/.github/workflows/release.yml@refs/tags/v1"
    );
    env.refused("gha", &gh("evil", Some("acme/app")), "claim_mismatch")
        .await;
    env.refused("gha", &gh("acme", None), "missing_claim").await;
    let gl = sign(
        &key,
        &json!({
            "iss": "https://gitlab.example.com", "aud": AUDIENCE, "exp": now() + 300,
            "sub": "project_path:acme/app:ref_type:branch:ref:main", "project_path": "acme/app",
        }),
    );
    let a = env.engine.attest("gitlab", gl.as_bytes()).await.unwrap();
    assert_eq!(a.agent.as_str(), "release-bot");
}

#[tokio::test]
async fn spiffe_bundles_are_fetched_from_their_url() {
    let env = env().await;
    env.agent("payments").await;
    let issuer = TestIssuer::start().await;
    let spec: ProviderSpec = serde_json::from_value(json!({
        "kind": "spiffe",
        "config": {"trust_domain": "partner.example", "audience": AUDIENCE, "bundle": {"from": "url", "url": issuer.jwks_url()}}
    }))
    .unwrap();
    assert!(
        env.engine
            .add_provider(&env.admin, "partner", spec.clone(), false)
            .await
            .is_err()
    );
    env.engine
        .add_provider(&env.admin, "partner", spec, true)
        .await
        .unwrap();
    env.bind(
        "partner",
        "payments",
        &["spiffe_id~spiffe://partner.example/ns/pay/*"],
    )
    .await;
    let svid = issuer.sign(&json!({
        "sub": "spiffe://partner.example/ns/pay/sa/payments", "aud": AUDIENCE, "exp": now() + 300,
    }));
    let a = env.engine.attest("partner", svid.as_bytes()).await.unwrap();
    assert_eq!(a.subject, "spiffe://partner.example/ns/pay/sa/payments");
    assert_eq!(issuer.jwks_fetches(), 1);
}

#[tokio::test]
async fn algorithms_off_the_providers_list_are_refused() {
    let env = env().await;
    env.agent("invoice-bot").await;
    let jwks: serde_json::Value = serde_json::from_slice(&read("kubernetes/jwks.json")).unwrap();
    let mut spec = oidc_spec(Some(K8S_ISSUER), KeysSpec::Inline { document: jwks });
    spec.algorithms = vec!["ES256".into()];
    spec.skew_secs = Some(0);
    env.engine
        .add_provider(&env.admin, "es-only", ProviderSpec::Kubernetes(spec), false)
        .await
        .unwrap();
    env.bind(
        "es-only",
        "invoice-bot",
        &["kubernetes.io.namespace=billing"],
    )
    .await;
    let claims = k8s_claims("billing", "invoice-bot");
    assert!(
        env.engine
            .attest("es-only", sign(&es_key(), &claims).as_bytes())
            .await
            .is_ok()
    );
    env.refused("es-only", &sign(&rs_key(), &claims), "alg_not_allowed")
        .await;
    // Skew 0: a token expiring this second is already refused.
    let mut c = claims.clone();
    c["exp"] = json!(now());
    env.refused("es-only", &sign(&es_key(), &c), "expired")
        .await;
    // A provider asking for an unknown algorithm or too much skew is refused.
    let mut bad = oidc_spec(Some(K8S_ISSUER), KeysSpec::Discovery);
    bad.algorithms = vec!["HS256".into()];
    assert!(
        env.engine
            .add_provider(&env.admin, "bad", ProviderSpec::Oidc(bad), false)
            .await
            .is_err()
    );
    let mut bad = oidc_spec(Some(K8S_ISSUER), KeysSpec::Discovery);
    bad.skew_secs = Some(61);
    assert!(
        env.engine
            .add_provider(&env.admin, "bad", ProviderSpec::Oidc(bad), false)
            .await
            .is_err()
    );
}

/// A provider remembers the signatures it verified (a pod presents the same
/// projected token many times); what it remembers must not outlive the
/// token, nor vouch for a token whose signature was changed.
#[tokio::test]
async fn att_remembered_verification_does_not_outlive_or_cover_the_token() {
    let env = env().await;
    env.agent("invoice-bot").await;
    env.k8s_provider().await;
    env.bind("k8s", "invoice-bot", &["kubernetes.io.namespace=billing"])
        .await;
    let t = sign(&es_key(), &k8s_claims("billing", "invoice-bot"));
    for _ in 0..3 {
        let a = env.engine.attest("k8s", t.as_bytes()).await.unwrap();
        assert_eq!(a.agent.as_str(), "invoice-bot");
    }
    // Same header and claims, another signature: verified on its own.
    let (signed, sig) = t.rsplit_once('.').unwrap();
    let mut forged = sig.as_bytes().to_vec();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let forged = format!("{signed}.{}", String::from_utf8(forged).unwrap());
    env.refused("k8s", &forged, "bad_signature").await;
    // Past its `exp`, the remembered token is refused as a new one would be.
    env.clock.advance(time::Duration::hours(2));
    env.refused("k8s", &t, "expired").await;
}
