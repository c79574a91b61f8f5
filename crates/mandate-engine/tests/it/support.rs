//! Shared fixtures: an engine on a fixed clock, the Kubernetes fixture keys,
//! token minting, and reading the audit event an attestation wrote.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mandate_attest::ProviderSpec;
use mandate_attest::oidc::{KeysSpec, OidcSpec};
use mandate_core::{AgentKind, AuditEvent};
use mandate_engine::{Actor, Engine, EngineConfig, Error, NewAgent};
use mandate_jose::jws::{Algorithm, SigningKey};
use mandate_store::AuditFilter;
use mandate_testkit::{FakeClock, TestDb};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

/// The shared test data folder (the repository's sibling `shared/`).
pub const TEST_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");

pub const K8S_ISSUER: &str = "https://issuer.example.com";
pub const AUDIENCE: &str = "mandate";
pub const RS_KID: &str = "JHJehTTTZlsspKHT-GaJxK7Kd1NQgZJu3fyK6K_QDYU";
pub const ES_KID: &str = "SoABiieYuNx4UdqYvZRVeuC6SihxgLrhLy9peHMHpTc";
pub const T0: OffsetDateTime = datetime!(2026-11-23 12:00:00 UTC);

pub fn now() -> i64 {
    T0.unix_timestamp()
}

pub fn read(rel: &str) -> Vec<u8> {
    let path = format!("{TEST_DATA}/{rel}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub struct Env {
    pub _db: TestDb,
    pub engine: Engine,
    pub clock: Arc<FakeClock>,
    pub admin: Actor,
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        trust_domain: "mandate.local".parse().unwrap(),
        review_period: time::Duration::days(90),
    }
}

pub async fn env() -> Env {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let clock = Arc::new(FakeClock::at(T0));
    let engine = Engine::new(store, clock.clone(), engine_config())
        .await
        .unwrap();
    Env {
        _db: db,
        engine,
        clock,
        admin: Actor {
            token_id: "testadmin000".into(),
        },
    }
}

impl Env {
    /// A second engine on the same database and clock: another replica.
    pub async fn replica(&self) -> Engine {
        Engine::new(self._db.open().await, self.clock.clone(), engine_config())
            .await
            .unwrap()
    }

    pub async fn agent(&self, name: &str) {
        self.engine
            .register_agent(
                &self.admin,
                NewAgent {
                    name: name.parse().unwrap(),
                    kind: AgentKind::Autonomous,
                    owner: "alice@example.com".parse().unwrap(),
                    description: String::new(),
                    provenance: Default::default(),
                    labels: Default::default(),
                    envelope: String::new(),
                    review_by: None,
                },
            )
            .await
            .unwrap();
    }

    /// A Kubernetes provider `k8s` trusting the fixture JWKS (inline).
    pub async fn k8s_provider(&self) {
        let jwks: Value = serde_json::from_slice(&read("kubernetes/jwks.json")).unwrap();
        let spec = ProviderSpec::Kubernetes(oidc_spec(
            Some(K8S_ISSUER),
            KeysSpec::Inline { document: jwks },
        ));
        self.engine
            .add_provider(&self.admin, "k8s", spec, false)
            .await
            .unwrap();
    }

    pub async fn bind(&self, provider: &str, agent: &str, matches: &[&str]) -> String {
        let m = matches
            .iter()
            .map(|s| mandate_attest::binding::ClaimMatch::parse(s).unwrap())
            .collect();
        self.engine
            .add_binding(&self.admin, provider, &agent.parse().unwrap(), m)
            .await
            .unwrap()
            .id
    }

    /// The newest audit event.
    pub async fn last_event(&self) -> AuditEvent {
        let page = self
            .engine
            .list_audit(&AuditFilter {
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap();
        page.items.last().cloned().expect("an audit event")
    }

    /// Attests on the real path and expects a refusal with `code`, audited
    /// as `attestation.refused` with that code and no evidence in it.
    pub async fn refused(&self, provider: &str, evidence: &str, code: &str) -> AuditEvent {
        match self.engine.attest(provider, evidence.as_bytes()).await {
            Err(Error::AttestationRefused { code: got, reason }) => {
                assert_eq!(got, code, "reason: {reason}");
            }
            other => panic!("expected refusal `{code}`, got {other:?}"),
        }
        let ev = self.last_event().await;
        assert_eq!(ev.event_type, "attestation.refused");
        assert_eq!(ev.outcome, mandate_core::Outcome::Denied);
        assert_eq!(ev.detail["code"], code);
        assert_eq!(ev.detail["provider"], provider);
        assert!(ev.detail["reason"].as_str().is_some_and(|r| !r.is_empty()));
        let text = ev.detail.to_string();
        if evidence.len() > 20 {
            assert!(
                !text.contains(evidence),
                "the audit event must not hold the evidence"
            );
            if let Some(sig) = evidence.rsplit('.').next().filter(|s| s.len() > 20) {
                assert!(
                    !text.contains(sig),
                    "the audit event must not hold the signature"
                );
            }
        }
        ev
    }
}

pub fn oidc_spec(issuer: Option<&str>, keys: KeysSpec) -> OidcSpec {
    OidcSpec {
        issuer: issuer.map(str::to_owned),
        audience: AUDIENCE.into(),
        keys,
        algorithms: vec![],
        required_claims: Default::default(),
        skew_secs: None,
        jwks_max_age_secs: None,
        jwks_min_refresh_secs: None,
    }
}

pub fn rs_key() -> SigningKey {
    SigningKey::from_pem(Algorithm::Rs256, &read("kubernetes/rsa-private-key.pem"))
        .unwrap()
        .with_kid(RS_KID)
}

pub fn es_key() -> SigningKey {
    SigningKey::from_pem(
        Algorithm::Es256,
        &read("kubernetes/ecdsa-p256-private-key.pem"),
    )
    .unwrap()
    .with_kid(ES_KID)
}

/// Projected service-account token claims valid at [`T0`].
pub fn k8s_claims(namespace: &str, sa: &str) -> Value {
    let now = now();
    json!({
        "aud": [AUDIENCE],
        "exp": now + 3600,
        "iat": now - 10,
        "nbf": now - 10,
        "iss": K8S_ISSUER,
        "jti": "7c0b1a52-3f3e-4d0e-9b7a-2f6c1d9e8a41",
        "kubernetes.io": {
            "namespace": namespace,
            "pod": {"name": "my-pod", "uid": "5f2a8e61-1c4d-4b7a-a0e9-3d6b2c8f7e15"},
            "serviceaccount": {"name": sa, "uid": "a3c9e0f4-7d21-4e8b-b5f6-0c1d2e3f4a5b"}
        },
        "sub": format!("system:serviceaccount:{namespace}:{sa}"),
    })
}

pub fn sign(key: &SigningKey, claims: &Value) -> String {
    key.sign(None, &serde_json::to_vec(claims).unwrap())
        .unwrap()
}

/// Signs `claims` under a hand-written header.
pub fn sign_raw(key: &SigningKey, header: &str, claims: &Value) -> String {
    key.sign_with_header(header.as_bytes(), &serde_json::to_vec(claims).unwrap())
        .unwrap()
}

/// A token with exactly these parts.
pub fn forge(header: &Value, claims: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(claims).unwrap()),
        b64(sig)
    )
}
