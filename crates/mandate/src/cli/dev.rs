//! `mandate dev ...`: helpers for trying Mandate out on one machine, with no
//! cluster and no real upstream. Not for production: a real cluster mints
//! its own service-account tokens, and real upstreams are real.

use std::path::PathBuf;

use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use clap::Subcommand;
use mandate_jose::jws::{Algorithm, SigningKey};
use serde_json::json;

use crate::client::ClientError;

/// Development helpers.
#[derive(Subcommand)]
pub enum DevCommand {
    /// Print a Kubernetes projected service-account token signed with a
    /// private key you hold, e.g. the test keys in `testdata/kubernetes/`
    /// (whose JWKS is `testdata/kubernetes/jwks.json`). Its `kid` is the
    /// one Kubernetes gives the key, as in that JWKS.
    K8sToken {
        /// PEM private key (EC P-256/P-384 or RSA).
        #[arg(long)]
        key: PathBuf,
        /// The cluster's issuer (`iss`).
        #[arg(long)]
        issuer: String,
        /// The audience (`aud`): the trust provider's.
        #[arg(long, default_value = "mandate")]
        audience: String,
        /// The pod's namespace.
        #[arg(long)]
        namespace: String,
        /// The pod's service account.
        #[arg(long)]
        service_account: String,
        /// The pod's name.
        #[arg(long, default_value = "demo-pod")]
        pod: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 600)]
        ttl: i64,
    },
    /// Run a demo HTTP API to put behind the gateway: it answers 401
    /// unless a request carries an `x-api-key` or `authorization` header
    /// (which the gateway injects), and otherwise echoes the method and
    /// path. Runs until interrupted.
    Upstream {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: String,
    },
}

/// Runs a dev command.
pub async fn run(cmd: DevCommand) -> Result<(), ClientError> {
    let bad = |detail: String| ClientError::Problem {
        status: 400,
        title: "Invalid arguments".into(),
        detail,
    };
    match cmd {
        DevCommand::K8sToken {
            key,
            issuer,
            audience,
            namespace,
            service_account,
            pod,
            ttl,
        } => {
            let pem = std::fs::read(&key)
                .map_err(|e| bad(format!("cannot read `{}`: {e}", key.display())))?;
            let signing = [Algorithm::Es256, Algorithm::Es384, Algorithm::Rs256]
                .into_iter()
                .find_map(|a| SigningKey::from_pem(a, &pem).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "`{}` holds no EC P-256/P-384 or RSA private key",
                        key.display()
                    ))
                })?;
            // Kubernetes' own `kid`: the SHA-256 of the public key's DER
            // SubjectPublicKeyInfo, base64url (as in testdata's jwks.json).
            let spki = signing.public_spki_der().map_err(|e| bad(e.to_string()))?;
            let kid = base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                mandate_jose::digest::sha256(&[&spki]),
            );
            let signing = signing.with_kid(kid);
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let claims = json!({
                "iss": issuer,
                "aud": [audience],
                "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
                "iat": now,
                "nbf": now,
                "exp": now + ttl.clamp(60, 86_400),
                "jti": mandate_jose::random::id(16).map_err(|e| bad(e.to_string()))?,
                "kubernetes.io": {
                    "namespace": namespace,
                    "serviceaccount": {"name": service_account, "uid": "00000000-0000-4000-8000-000000000001"},
                    "pod": {"name": pod, "uid": "00000000-0000-4000-8000-000000000002"},
                },
            });
            let token = signing
                .sign(None, claims.to_string().as_bytes())
                .map_err(|e| bad(e.to_string()))?;
            println!("{token}");
            Ok(())
        }
        DevCommand::Upstream { listen } => {
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .map_err(|e| bad(format!("cannot listen on {listen}: {e}")))?;
            eprintln!("demo upstream listening on http://{listen} (Ctrl-C to stop)");
            let app = Router::new().fallback(demo);
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))
        }
    }
}

async fn demo(method: Method, uri: Uri, headers: HeaderMap) -> impl IntoResponse {
    let keyed = headers.contains_key("x-api-key") || headers.contains_key("authorization");
    if !keyed {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "this demo API wants an x-api-key header"})),
        );
    }
    (
        StatusCode::OK,
        axum::Json(json!({
            "upstream": "mandate dev upstream",
            "method": method.as_str(),
            "path": uri.path(),
            "api_key_received": true,
        })),
    )
}
