#![expect(clippy::unwrap_used, reason = "tests")]

use std::sync::Arc;

use mandate_core::Clock as _;
use mandate_jose::claims::Validation;
use mandate_jose::jwt::JwtVerifier;
use mandate_jose::secret::ExposeSecret;
use mandate_store::AuditFilter;
use mandate_testkit::{FakeClock, TestDb};
use time::macros::datetime;

use super::*;
use crate::{EngineConfig, NewResource};

pub(crate) const ISSUER: &str = "https://mandate.example.com";

pub(crate) async fn engine() -> (TestDb, Engine, Arc<FakeClock>) {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let clock = Arc::new(FakeClock::at(datetime!(2026-11-23 12:00:00 UTC)));
    let cfg = EngineConfig {
        trust_domain: "mandate.local".parse().unwrap(),
        review_period: Duration::days(90),
    };
    let engine = Engine::new(store, clock.clone(), cfg).await.unwrap();
    engine
        .start_token_service([9; 32], ISSUER.into(), TokenConfig::default())
        .await
        .unwrap();
    (db, engine, clock)
}

pub(crate) fn admin() -> Actor {
    Actor {
        token_id: "tok-admin".into(),
    }
}

async fn add_billing(engine: &Engine, max_ttl: Option<i64>) {
    engine
        .add_resource(
            &admin(),
            NewResource {
                name: "billing".into(),
                audience: "https://billing.example.com".into(),
                scopes: vec!["invoices:read".into(), "invoices:write".into()],
                max_ttl_secs: max_ttl,
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

fn mint_request() -> MintRequest {
    MintRequest {
        subject: "spiffe://mandate.local/agent/invoice-bot".into(),
        agent: "invoice-bot".into(),
        client_id: "invoice-bot".into(),
        agent_kind: "autonomous".into(),
        audience: "https://billing.example.com".into(),
        scopes: vec!["invoices:read".into()],
        ..Default::default()
    }
}

fn states_of(keys: &[SigningKeyInfo]) -> Vec<KeyState> {
    keys.iter().map(|k| k.state).collect()
}

#[tokio::test]
async fn first_start_creates_one_active_key_and_restart_keeps_it() {
    let (_db, engine, _clock) = engine().await;
    let keys = engine.signing_keys().await.unwrap();
    assert_eq!(states_of(&keys), [KeyState::Active]);
    assert_eq!(keys[0].alg, "ES256");
    engine
        .start_token_service([9; 32], ISSUER.into(), TokenConfig::default())
        .await
        .unwrap();
    assert_eq!(engine.signing_keys().await.unwrap().len(), 1);
    let jwks = engine.published_jwks().await.unwrap();
    assert_eq!(jwks.len(), 1);
    assert_eq!(jwks.keys()[0].kid(), Some(keys[0].kid.as_str()));
}

#[tokio::test]
async fn rotation_publishes_first_signs_after_cache_time_and_unpublishes_later() {
    let (_db, engine, clock) = engine().await;
    add_billing(&engine, None).await;
    let old = engine.signing_keys().await.unwrap().remove(0);
    let new = engine.rotate_signing_key(&admin(), None).await.unwrap();
    assert_eq!(new.state, KeyState::Next);

    // Published at once, not yet signing.
    assert_eq!(engine.published_jwks().await.unwrap().len(), 2);
    let t = engine.mint_token(mint_request()).await.unwrap();
    assert_eq!(t.kid, old.kid);
    // A second rotation while one is pending is refused.
    assert!(matches!(
        engine.rotate_signing_key(&admin(), None).await,
        Err(Error::InvalidState(_))
    ));

    // After the JWKS cache time the new key signs; the old stays published.
    clock.advance(Duration::seconds(300));
    let keys = engine.signing_keys().await.unwrap();
    assert_eq!(states_of(&keys), [KeyState::Retired, KeyState::Active]);
    assert_eq!(
        engine.mint_token(mint_request()).await.unwrap().kid,
        new.kid
    );
    assert_eq!(engine.published_jwks().await.unwrap().len(), 2);

    // Kept for the longest token lifetime plus the cache time, then dropped.
    clock.advance(Duration::hours(1) + Duration::seconds(299));
    assert_eq!(engine.published_jwks().await.unwrap().len(), 2);
    clock.advance(Duration::seconds(1));
    let keys = engine.signing_keys().await.unwrap();
    assert_eq!(states_of(&keys), [KeyState::Expired, KeyState::Active]);
    let jwks = engine.published_jwks().await.unwrap();
    assert_eq!(jwks.len(), 1);
    assert_eq!(jwks.keys()[0].kid(), Some(new.kid.as_str()));

    // Every key change is audited, without key material.
    let page = engine
        .list_audit(&AuditFilter {
            event_type: Some("key.rotated".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let text = serde_json::to_string(&page.items[0]).unwrap();
    assert!(!text.contains("sealed"));
}

#[tokio::test]
async fn eddsa_keys_can_be_chosen() {
    let (_db, engine, clock) = engine().await;
    add_billing(&engine, None).await;
    let k = engine
        .rotate_signing_key(&admin(), Some(Algorithm::EdDsa))
        .await
        .unwrap();
    assert_eq!(k.alg, "EdDSA");
    clock.advance(Duration::seconds(300));
    let t = engine.mint_token(mint_request()).await.unwrap();
    assert_eq!(t.kid, k.kid);
    let verifier = JwtVerifier::new(
        engine.published_jwks().await.unwrap(),
        &[Algorithm::Es256, Algorithm::EdDsa],
        Validation::new(ISSUER, "https://billing.example.com"),
    );
    let now = clock.now().unix_timestamp();
    verifier
        .verify(t.access_token.expose_secret(), now)
        .unwrap();
}

#[tokio::test]
async fn minted_tokens_verify_against_the_published_jwks() {
    let (_db, engine, clock) = engine().await;
    add_billing(&engine, None).await;
    let mut req = mint_request();
    req.act = Some(serde_json::json!({ "sub": "spiffe://mandate.local/agent/planner" }));
    req.cnf_jkt = Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into());
    let t = engine.mint_token(req).await.unwrap();
    let now = clock.now().unix_timestamp();
    let verifier = JwtVerifier::new(
        engine.published_jwks().await.unwrap(),
        &[Algorithm::Es256, Algorithm::EdDsa],
        Validation::new(ISSUER, "https://billing.example.com"),
    )
    .require_typ(ACCESS_TOKEN_TYP);
    let v = verifier
        .verify(t.access_token.expose_secret(), now)
        .unwrap();
    let c = v.claims();
    assert_eq!(c.iss(), Some(ISSUER));
    assert_eq!(c.sub(), Some("spiffe://mandate.local/agent/invoice-bot"));
    assert_eq!(c.audiences().unwrap(), ["https://billing.example.com"]);
    assert_eq!(c.get("aud").unwrap(), "https://billing.example.com");
    assert_eq!(c.exp().unwrap(), Some(now + 300));
    assert_eq!(c.nbf().unwrap(), Some(now));
    assert_eq!(c.jti(), Some(t.jti.as_str()));
    assert_eq!(c.get("client_id").unwrap(), "invoice-bot");
    assert_eq!(c.get("scope").unwrap(), "invoices:read");
    assert_eq!(c.get("agent_kind").unwrap(), "autonomous");
    assert_eq!(c.get("txn").unwrap(), t.txn.as_str());
    assert_eq!(
        c.get("act").unwrap()["sub"],
        "spiffe://mandate.local/agent/planner"
    );
    assert_eq!(
        c.get("cnf").unwrap()["jkt"],
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    );
    assert_eq!(v.header().typ(), Some("at+jwt"));

    // Wrong audience or issuer: refused.
    let other_aud = JwtVerifier::new(
        engine.published_jwks().await.unwrap(),
        &[Algorithm::Es256],
        Validation::new(ISSUER, "https://other.example.com"),
    );
    assert!(
        other_aud
            .verify(t.access_token.expose_secret(), now)
            .is_err()
    );
    let other_iss = JwtVerifier::new(
        engine.published_jwks().await.unwrap(),
        &[Algorithm::Es256],
        Validation::new("https://evil.example.com", "https://billing.example.com"),
    );
    assert!(
        other_iss
            .verify(t.access_token.expose_secret(), now)
            .is_err()
    );

    // Recorded for family revocation.
    let rec = engine.store.token(&t.jti).await.unwrap().unwrap();
    assert_eq!(rec.agent, "invoice-bot");
    assert_eq!(rec.txn, t.txn);
    assert_eq!(rec.expires_at.unix_timestamp(), now + 300);
}

#[tokio::test]
async fn lifetime_is_capped_by_resource_and_configured_maximum() {
    let (_db, engine, _clock) = engine().await;
    add_billing(&engine, Some(120)).await;
    let mut req = mint_request();
    req.ttl = Some(Duration::hours(5));
    assert_eq!(engine.mint_token(req).await.unwrap().expires_in, 120);
    // Default 5 minutes when the resource allows more.
    engine
        .add_resource(
            &admin(),
            NewResource {
                name: "crm".into(),
                audience: "https://crm.example.com".into(),
                scopes: vec!["read".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut req = mint_request();
    req.audience = "https://crm.example.com".into();
    req.scopes = vec![];
    let t = engine.mint_token(req.clone()).await.unwrap();
    assert_eq!(t.expires_in, 300);
    assert_eq!(t.scope, "read");
    req.ttl = Some(Duration::hours(2));
    assert_eq!(engine.mint_token(req).await.unwrap().expires_in, 3600);
}

#[tokio::test]
async fn unknown_audience_and_foreign_scopes_are_refused() {
    let (_db, engine, _clock) = engine().await;
    add_billing(&engine, None).await;
    let mut req = mint_request();
    req.audience = "https://unknown.example.com".into();
    assert!(matches!(
        engine.mint_token(req).await,
        Err(Error::NotFound {
            kind: "resource",
            ..
        })
    ));
    let mut req = mint_request();
    req.scopes = vec!["admin".into()];
    assert!(matches!(
        engine.mint_token(req).await,
        Err(Error::Invalid(v)) if v.field == "scope"
    ));
}

#[tokio::test]
async fn resources_are_validated_unique_and_policy_entities() {
    let (_db, engine, _clock) = engine().await;
    add_billing(&engine, None).await;
    let dup = engine
        .add_resource(
            &admin(),
            NewResource {
                name: "billing2".into(),
                audience: "https://billing.example.com".into(),
                scopes: vec!["x".into()],
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(
        dup,
        Err(Error::AlreadyExists {
            kind: "resource_audience",
            ..
        })
    ));
    let too_long = engine
        .add_resource(
            &admin(),
            NewResource {
                name: "slow".into(),
                audience: "https://slow.example.com".into(),
                scopes: vec!["x".into()],
                max_ttl_secs: Some(7200),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(too_long, Err(Error::Invalid(v)) if v.field == "max_ttl"));
    engine.remove_resource(&admin(), "billing").await.unwrap();
    assert!(matches!(
        engine.resource("billing").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn another_replicas_resources_are_picked_up() {
    let (db, engine, clock) = engine().await;
    let cfg = EngineConfig {
        trust_domain: "mandate.local".parse().unwrap(),
        review_period: Duration::days(90),
    };
    let other = Engine::new(db.open().await, clock.clone(), cfg)
        .await
        .unwrap();
    assert!(!engine.refresh_policy_if_changed().await.unwrap());
    add_billing(&other, None).await;
    assert!(engine.refresh_policy_if_changed().await.unwrap());
    assert!(!engine.refresh_policy_if_changed().await.unwrap());
}

#[tokio::test]
async fn keys_sealed_under_another_master_key_are_never_used() {
    let (db, _engine, clock) = engine().await;
    let cfg = EngineConfig {
        trust_domain: "mandate.local".parse().unwrap(),
        review_period: Duration::days(90),
    };
    let other = Engine::new(db.open().await, clock.clone(), cfg)
        .await
        .unwrap();
    other
        .start_token_service([8; 32], ISSUER.into(), TokenConfig::default())
        .await
        .unwrap();
    assert!(matches!(
        other.published_jwks().await,
        Err(Error::Internal(_))
    ));
    add_billing(&other, None).await;
    assert!(matches!(
        other.mint_token(mint_request()).await,
        Err(Error::Internal(_))
    ));
}
