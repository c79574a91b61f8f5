//! A test OIDC issuer served on loopback: discovery document and JWKS over
//! plain HTTP on `127.0.0.1`, signing keys that can be rotated mid-test, a
//! switch that makes the JWKS endpoint fail, and a count of JWKS fetches.
//!
//! Its issuer is `http://127.0.0.1:<port>`, so a provider for it must allow
//! private network targets (which also admits `http` to a loopback literal).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mandate_jose::jwk::JwkSet;
use mandate_jose::jws::{Algorithm, SigningKey};
use serde_json::{Value, json};

#[derive(Debug)]
struct Inner {
    issuer: String,
    keys: Mutex<Vec<SigningKey>>,
    jwks_fetches: AtomicUsize,
    failing: AtomicBool,
    next_kid: AtomicUsize,
}

/// A running test issuer; the server stops when the runtime ends.
#[derive(Debug, Clone)]
pub struct TestIssuer {
    inner: Arc<Inner>,
}

impl TestIssuer {
    /// Starts an issuer with one ES256 key (`kid` `key-1`).
    pub async fn start() -> TestIssuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let inner = Arc::new(Inner {
            issuer: format!("http://{addr}"),
            keys: Mutex::new(Vec::new()),
            jwks_fetches: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
            next_kid: AtomicUsize::new(1),
        });
        let issuer = TestIssuer { inner };
        issuer.rotate(false);
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(issuer.inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        issuer
    }

    /// The issuer URL (`iss`).
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.inner.issuer)
    }

    /// Adds a new current ES256 key; with `drop_old`, the others leave the JWKS.
    /// Returns the new key's `kid`.
    pub fn rotate(&self, drop_old: bool) -> String {
        let n = self.inner.next_kid.fetch_add(1, Ordering::SeqCst);
        let kid = format!("key-{n}");
        let key = SigningKey::generate(Algorithm::Es256)
            .expect("generate key")
            .with_kid(kid.clone());
        let mut keys = self.inner.keys.lock().expect("keys lock");
        if drop_old {
            keys.clear();
        }
        keys.push(key);
        kid
    }

    /// Signs `claims` with the current key.
    pub fn sign(&self, claims: &Value) -> String {
        let keys = self.inner.keys.lock().expect("keys lock");
        let key = keys.last().expect("a key");
        key.sign(None, &serde_json::to_vec(claims).expect("claims json"))
            .expect("sign")
    }

    /// Makes the JWKS endpoint answer 500 (or work again).
    pub fn set_failing(&self, failing: bool) {
        self.inner.failing.store(failing, Ordering::SeqCst);
    }

    /// How often the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.inner.jwks_fetches.load(Ordering::SeqCst)
    }
}

async fn discovery(State(inner): State<Arc<Inner>>) -> Response {
    let doc = json!({
        "issuer": inner.issuer,
        "jwks_uri": format!("{}/jwks", inner.issuer),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.to_string(),
    )
        .into_response()
}

async fn jwks(State(inner): State<Arc<Inner>>) -> Response {
    inner.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if inner.failing.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let set = {
        let keys = inner.keys.lock().expect("keys lock");
        let jwks: Vec<_> = keys
            .iter()
            .map(|k| k.public_jwk().expect("public jwk"))
            .collect();
        JwkSet::from_keys(jwks).expect("key set").to_json()
    };
    (
        [(header::CONTENT_TYPE, "application/jwk-set+json")],
        set.to_string(),
    )
        .into_response()
}
