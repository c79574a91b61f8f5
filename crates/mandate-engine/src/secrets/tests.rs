#![expect(clippy::unwrap_used, clippy::panic, reason = "tests")]

use mandate_core::Clock as _;
use mandate_jose::claims::Validation;
use mandate_jose::jws::Algorithm;
use mandate_jose::jwt::JwtVerifier;
use mandate_store::AuditFilter;

use super::*;
use crate::NewResource;
use crate::tokens::tests::{ISSUER, admin, engine};

const VALUE: &str = "sk-live-0123456789abcdef";

fn static_secret(name: &str, config: SecretConfig) -> NewSecret {
    NewSecret {
        name: name.into(),
        kind: "static".into(),
        config,
        value: Some(SecretString::from(VALUE.to_owned())),
    }
}

fn field_of(e: Error) -> String {
    match e {
        Error::Invalid(v) => v.field.to_string(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_secret_is_stored_sealed_and_only_opened_for_the_gateway() {
    let (_db, engine, _clock) = engine().await;
    let info = engine
        .set_secret(
            &admin(),
            static_secret(
                "billing-key",
                SecretConfig {
                    header: Some("x-api-key".into()),
                    ..Default::default()
                },
            ),
        )
        .await
        .unwrap();
    assert_eq!(info.kind, "static");
    assert_eq!(info.config.inject.as_deref(), Some("header"));
    assert!(info.has_value);
    let shown = serde_json::to_string(&info).unwrap();
    assert!(!shown.contains(VALUE), "{shown}");
    let listed = serde_json::to_string(&engine.list_secrets().await.unwrap()).unwrap();
    assert!(!listed.contains(VALUE));
    assert!(listed.contains("billing-key"));

    // At rest the value is sealed, not stored as is.
    let rec = engine
        .store
        .credential("billing-key")
        .await
        .unwrap()
        .unwrap();
    let sealed = rec.sealed.clone().unwrap();
    assert!(!sealed.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()));

    let opened = engine.open_secret("billing-key").await.unwrap();
    assert_eq!(opened.value.as_ref().unwrap().expose_secret(), VALUE);
    assert_eq!(opened.config["header"], "x-api-key");
    assert!(!format!("{opened:?}").contains(VALUE));

    // The audit trail names the secret, never its value.
    let page = engine
        .list_audit(&AuditFilter {
            event_type: Some("secret.set".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let ev = serde_json::to_string(&page.items).unwrap();
    assert!(ev.contains("billing-key") && !ev.contains(VALUE), "{ev}");
}

#[tokio::test]
async fn replacing_a_secret_keeps_its_creation_time() {
    let (_db, engine, clock) = engine().await;
    let first = engine
        .set_secret(&admin(), static_secret("k", SecretConfig::default()))
        .await
        .unwrap();
    assert_eq!(first.config.inject.as_deref(), Some("bearer"));
    clock.advance(Duration::minutes(3));
    let mut new = static_secret("k", SecretConfig::default());
    new.value = Some(SecretString::from("rotated".to_owned()));
    let second = engine.set_secret(&admin(), new).await.unwrap();
    assert_eq!(second.created_at, first.created_at);
    assert!(second.updated_at > first.updated_at);
    let opened = engine.open_secret("k").await.unwrap();
    assert_eq!(opened.value.unwrap().expose_secret(), "rotated");
}

#[tokio::test]
async fn a_secret_in_use_by_a_route_cannot_be_removed() {
    let (_db, engine, _clock) = engine().await;
    engine
        .set_secret(&admin(), static_secret("gh", SecretConfig::default()))
        .await
        .unwrap();
    let r = engine
        .add_resource(
            &admin(),
            NewResource {
                name: "github".into(),
                scopes: vec!["repo:read".into()],
                upstream: Some("https://api.github.com".into()),
                credential: Some("gh".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The audience of a route defaults to its public URL.
    assert_eq!(r.audience, format!("{ISSUER}/gw/github"));
    assert_eq!(r.timeout_secs, Some(30));
    assert_eq!(engine.secret_info("gh").await.unwrap().used_by, ["github"]);

    let refused = engine.remove_secret(&admin(), "gh").await.unwrap_err();
    assert!(
        matches!(refused, Error::InvalidState(ref m) if m.contains("`github`")),
        "{refused}"
    );
    assert!(engine.open_secret("gh").await.is_ok());

    engine.remove_resource(&admin(), "github").await.unwrap();
    engine.remove_secret(&admin(), "gh").await.unwrap();
    assert!(matches!(
        engine.secret_info("gh").await,
        Err(Error::NotFound { kind: "secret", .. })
    ));
    assert!(matches!(
        engine.remove_secret(&admin(), "gh").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn routes_need_a_known_secret_and_an_http_upstream() {
    let (_db, engine, _clock) = engine().await;
    let base = NewResource {
        name: "api".into(),
        scopes: vec!["read".into()],
        upstream: Some("https://api.example.com".into()),
        ..Default::default()
    };
    let unknown = NewResource {
        credential: Some("nope".into()),
        ..base.clone()
    };
    let e = engine.add_resource(&admin(), unknown).await.unwrap_err();
    assert!(e.to_string().contains("`nope`"));
    assert_eq!(field_of(e), "credential");
    let ftp = NewResource {
        upstream: Some("ftp://api.example.com".into()),
        ..base.clone()
    };
    assert_eq!(
        field_of(engine.add_resource(&admin(), ftp).await.unwrap_err()),
        "upstream"
    );
    let scope = NewResource {
        required_scopes: vec!["write".into()],
        ..base.clone()
    };
    assert_eq!(
        field_of(engine.add_resource(&admin(), scope).await.unwrap_err()),
        "required_scopes"
    );
    let stray = NewResource {
        audience: "https://x.example.com".into(),
        upstream: None,
        credential: Some("x".into()),
        ..base.clone()
    };
    assert_eq!(
        field_of(engine.add_resource(&admin(), stray).await.unwrap_err()),
        "credential"
    );
    let no_audience = NewResource {
        upstream: None,
        ..base
    };
    assert_eq!(
        field_of(
            engine
                .add_resource(&admin(), no_audience)
                .await
                .unwrap_err()
        ),
        "audience"
    );
}

#[tokio::test]
async fn secrets_are_validated_per_kind() {
    let (_db, engine, _clock) = engine().await;
    let cases: Vec<(NewSecret, &str)> = vec![
        (
            NewSecret {
                kind: "vault".into(),
                ..static_secret("a", SecretConfig::default())
            },
            "kind",
        ),
        (
            static_secret(
                "a",
                SecretConfig {
                    header: Some("host".into()),
                    ..Default::default()
                },
            ),
            "header",
        ),
        (
            static_secret(
                "a",
                SecretConfig {
                    header: Some("x-key".into()),
                    query: Some("key".into()),
                    ..Default::default()
                },
            ),
            "inject",
        ),
        (
            static_secret(
                "a",
                SecretConfig {
                    inject: Some("header".into()),
                    ..Default::default()
                },
            ),
            "inject",
        ),
        (
            static_secret(
                "a",
                SecretConfig {
                    region: Some("us-east-1".into()),
                    ..Default::default()
                },
            ),
            "region",
        ),
        (
            NewSecret {
                value: None,
                ..static_secret("a", SecretConfig::default())
            },
            "value",
        ),
        (
            NewSecret {
                value: Some(SecretString::from("  ".to_owned())),
                ..static_secret("a", SecretConfig::default())
            },
            "value",
        ),
        (
            NewSecret {
                kind: "oauth-client-credentials".into(),
                ..static_secret(
                    "a",
                    SecretConfig {
                        token_url: Some("http://idp.example.com/token".into()),
                        client_id: Some("c".into()),
                        ..Default::default()
                    },
                )
            },
            "token_url",
        ),
        (
            NewSecret {
                kind: "oauth-client-credentials".into(),
                ..static_secret(
                    "a",
                    SecretConfig {
                        token_url: Some("https://idp.example.com/token".into()),
                        ..Default::default()
                    },
                )
            },
            "client_id",
        ),
        (
            NewSecret {
                kind: "aws-sigv4".into(),
                ..static_secret(
                    "a",
                    SecretConfig {
                        access_key_id: Some("AKID".into()),
                        region: Some("us-east-1".into()),
                        ..Default::default()
                    },
                )
            },
            "service",
        ),
        (
            NewSecret {
                kind: "mandate-jwt".into(),
                ..static_secret("a", SecretConfig::default())
            },
            "value",
        ),
        (
            NewSecret {
                kind: "mandate-jwt".into(),
                value: None,
                ..static_secret(
                    "a",
                    SecretConfig {
                        ttl_secs: Some(0),
                        ..Default::default()
                    },
                )
            },
            "ttl_secs",
        ),
        (static_secret("Bad Name", SecretConfig::default()), "name"),
    ];
    for (new, field) in cases {
        let kind = new.kind.clone();
        let e = engine.set_secret(&admin(), new).await.unwrap_err();
        assert!(!e.to_string().contains(VALUE));
        assert_eq!(field_of(e), field, "kind {kind}");
    }
    assert!(engine.list_secrets().await.unwrap().is_empty());

    // Loopback token endpoints may be plain http (tests, sidecars).
    let ok = NewSecret {
        kind: "oauth-client-credentials".into(),
        ..static_secret(
            "idp",
            SecretConfig {
                token_url: Some("http://127.0.0.1:9000/token".into()),
                client_id: Some("mandate".into()),
                scope: Some("read".into()),
                ..Default::default()
            },
        )
    };
    engine.set_secret(&admin(), ok).await.unwrap();
}

#[tokio::test]
async fn upstream_jwts_verify_against_the_published_jwks() {
    let (_db, engine, clock) = engine().await;
    let info = engine
        .set_secret(
            &admin(),
            NewSecret {
                name: "jwt".into(),
                kind: "mandate-jwt".into(),
                config: SecretConfig::default(),
                value: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(info.config.ttl_secs, Some(60));
    assert!(!info.has_value);
    let act = serde_json::json!({ "sub": "spiffe://mandate.local/agent/planner" });
    let (jwt, exp) = engine
        .mint_upstream_jwt(UpstreamJwt {
            audience: "https://internal.example.com".into(),
            subject: "spiffe://mandate.local/agent/invoice-bot".into(),
            agent: "invoice-bot".into(),
            act: Some(act.clone()),
            txn: "txn-1".into(),
            ttl: Duration::seconds(60),
        })
        .await
        .unwrap();
    let now = clock.now().unix_timestamp();
    assert_eq!(exp, now + 60);
    let v = JwtVerifier::new(
        engine.published_jwks().await.unwrap(),
        &[Algorithm::Es256],
        Validation::new(ISSUER, "https://internal.example.com"),
    )
    .require_typ(UPSTREAM_JWT_TYP)
    .verify(&jwt, now)
    .unwrap();
    let c = v.claims();
    assert_eq!(c.sub(), Some("spiffe://mandate.local/agent/invoice-bot"));
    assert_eq!(c.get("txn").unwrap(), "txn-1");
    assert_eq!(c.get("act").unwrap(), &act);
    assert_eq!(c.get("client_id").unwrap(), "invoice-bot");
    // Not an access token: a verifier demanding `at+jwt` refuses it.
    assert!(
        JwtVerifier::new(
            engine.published_jwks().await.unwrap(),
            &[Algorithm::Es256],
            Validation::new(ISSUER, "https://internal.example.com"),
        )
        .require_typ(crate::ACCESS_TOKEN_TYP)
        .verify(&jwt, now)
        .is_err()
    );
}
