//! A gateway over a real SQLite store on loopback, an upstream that records
//! what reaches it, and tokens from the real token endpoint logic
//! (`private_key_jwt` client credentials).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use mandate_core::{AgentKind, SystemClock};
use mandate_engine::oauth::{JWT_BEARER_ASSERTION_TYPE, TokenRequest};
use mandate_engine::{Actor, Engine, EngineConfig, NewAgent, NewResource, PolicyFile, TokenConfig};
use mandate_gateway::{Gateway, GatewayConfig};
use mandate_jose::jws::{Algorithm, SigningKey};
use mandate_testkit::TestDb;
use serde_json::json;

/// The static secret the gateway injects.
pub const SECRET: &str = "sk-live-gw-9f8e7d6c5b4a";

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every header line, for "never seen anywhere" checks.
    pub fn all_text(&self) -> String {
        let mut s = format!("{} {}\n", self.method, self.uri);
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s.push_str(&String::from_utf8_lossy(&self.body));
        s
    }
}

pub type Log = Arc<Mutex<Vec<Seen>>>;

/// An upstream on loopback recording every request. `/redirect` answers
/// 302 to `redirect_to`; `/echo-key` answers 401 echoing the `x-api-key` it
/// got, in the body and in `WWW-Authenticate`; `/echo-ok` answers 200
/// echoing it in a chunked body, `/echo-gzip` in a body labelled gzip;
/// anything else 200 with `{"ok": true}`.
pub async fn upstream(redirect_to: Option<String>) -> (String, Log) {
    let log: Log = Arc::default();
    let state = (log.clone(), redirect_to);
    let app = Router::new().fallback(record).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, log)
}

async fn record(State((log, redirect)): State<(Log, Option<String>)>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let key = seen.header("x-api-key").unwrap_or_default().to_owned();
    log.lock().unwrap().push(seen);
    let path = parts.uri.path();
    if path.ends_with("/redirect")
        && let Some(to) = redirect
    {
        return (
            http::StatusCode::FOUND,
            [(http::header::LOCATION, to)],
            "moved",
        )
            .into_response();
    }
    if path.ends_with("/echo-key") {
        return (
            http::StatusCode::UNAUTHORIZED,
            [(
                http::header::WWW_AUTHENTICATE,
                format!("Bearer error=\"invalid_token\", error_description=\"bad key {key}\""),
            )],
            format!("{{\"error\": \"the key {key} is not valid\"}}"),
        )
            .into_response();
    }
    if path.ends_with("/echo-ok") {
        // An echo API: a success whose body repeats the key, split across
        // chunks so a scrubber has to carry.
        let (a, b) = key.split_at(key.len() / 2);
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from(format!("{{\"you_sent\": \"{a}"))),
            Ok(Bytes::from(format!("{b}\"}}"))),
        ];
        return (
            [(http::header::CONTENT_TYPE, "application/json")],
            axum::body::Body::from_stream(futures_util::stream::iter(chunks)),
        )
            .into_response();
    }
    if path.ends_with("/echo-gzip") {
        return (
            [(http::header::CONTENT_ENCODING, "gzip")],
            format!("not really gzip: {key}"),
        )
            .into_response();
    }
    axum::Json(json!({"ok": true})).into_response()
}

pub struct Env {
    pub _db: TestDb,
    pub engine: Engine,
    pub admin: Actor,
    /// The gateway's (and issuer's) URL.
    pub url: String,
    pub key: SigningKey,
}

pub const POLICY: &str = r#"
permit(principal, action == Mandate::Action::"token:issue", resource);
@id("api-reads")
permit(principal, action == Mandate::Action::"http:request", resource == Mandate::Resource::"api")
  when { context has http && (context.http.method == "GET" || context.http.method == "POST") };
@id("mcp-tools")
permit(principal, action == Mandate::Action::"mcp:tools/call", resource in Mandate::Resource::"api");
@id("no-deletes")
forbid(principal, action == Mandate::Action::"mcp:tools/call", resource == Mandate::Tool::"api/delete_repo");
@id("no-admin-paths")
forbid(principal, action == Mandate::Action::"http:request", resource)
  when { context has http && context.http.path like "/admin*" };
"#;

/// A gateway with route `api` (HTTP, static secret injected as
/// `x-api-key`) to `upstream_url`, route `other` to the same upstream, and
/// agent `alpha` with a registered key.
pub async fn env(upstream_url: &str) -> Env {
    env_with(upstream_url, &[]).await
}

pub async fn env_with(upstream_url: &str, required_scopes: &[&str]) -> Env {
    env_kind(upstream_url, "http", required_scopes).await
}

/// As [`env`], with route `api` of `kind`.
pub async fn env_kind(upstream_url: &str, kind: &str, required_scopes: &[&str]) -> Env {
    env_full(upstream_url, kind, required_scopes, true).await
}

/// As [`env`], with the gateway's audit buffered (not durable per answer).
pub async fn env_buffered(upstream_url: &str) -> Env {
    env_full(upstream_url, "http", &[], false).await
}

async fn env_full(
    upstream_url: &str,
    kind: &str,
    required_scopes: &[&str],
    durable_audit: bool,
) -> Env {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let engine = Engine::new(
        store,
        Arc::new(SystemClock),
        EngineConfig {
            trust_domain: "mandate.local".parse().unwrap(),
            review_period: time::Duration::days(90),
        },
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    engine
        .start_token_service([7; 32], url.clone(), TokenConfig::default())
        .await
        .unwrap();
    let admin = Actor {
        token_id: "testadmin000".into(),
    };
    engine
        .register_agent(
            &admin,
            NewAgent {
                name: "alpha".parse().unwrap(),
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
    let key = SigningKey::generate(Algorithm::Es256)
        .unwrap()
        .with_kid("k1");
    let mut jwk = key.public_jwk().unwrap().to_json();
    jwk["kid"] = json!("k1");
    engine
        .set_agent_jwks(&admin, &"alpha".parse().unwrap(), &json!({ "keys": [jwk] }))
        .await
        .unwrap();
    crate::secrets::static_header(&engine, &admin, "upstream-key", "x-api-key", SECRET).await;
    for name in ["api", "other"] {
        engine
            .add_resource(
                &admin,
                NewResource {
                    name: name.into(),
                    audience: format!("{url}/gw/{name}"),
                    scopes: vec!["read".into(), "write".into()],
                    upstream: Some(upstream_url.to_owned()),
                    credential: Some("upstream-key".into()),
                    required_scopes: required_scopes.iter().map(|s| (*s).to_owned()).collect(),
                    kind: Some(if name == "api" { kind } else { "http" }.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    engine
        .add_resource(
            &admin,
            NewResource {
                name: "mandate-internal".into(),
                audience: format!("{url}{}", mandate_gateway::INTERNAL_PATH),
                scopes: vec![mandate_gateway::GATEWAY_SCOPE.into(), "other".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    engine
        .push_policies(
            &admin,
            vec![PolicyFile {
                name: "gw.cedar".into(),
                text: POLICY.into(),
            }],
            "gateway".into(),
        )
        .await
        .unwrap();
    let mut config = GatewayConfig::new(&url, &url);
    config.durable_audit = durable_audit;
    let gw = Gateway::new(engine.clone(), config).unwrap();
    let app = gw.router().merge(gw.internal_router().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    Env {
        _db: db,
        engine,
        admin,
        url,
        key,
    }
}

impl Env {
    /// A token for route `route` with `scope`, optionally DPoP-bound to
    /// `dpop_key`.
    pub async fn token(&self, route: &str, scope: &str, dpop_key: Option<&SigningKey>) -> String {
        let resource = format!("{}/gw/{route}", self.url);
        self.token_for(&resource, scope, dpop_key).await
    }

    /// A token for audience `resource` with `scope`, optionally DPoP-bound.
    pub async fn token_for(
        &self,
        resource: &str,
        scope: &str,
        dpop_key: Option<&SigningKey>,
    ) -> String {
        let endpoint = format!("{}/oauth2/token", self.url);
        let assertion = self
            .key
            .sign(
                None,
                &serde_json::to_vec(&json!({
                    "iss": "alpha", "sub": "alpha", "aud": self.url, "exp": now() + 60,
                    "iat": now(), "jti": mandate_jose::random::token::<12>().unwrap(),
                }))
                .unwrap(),
            )
            .unwrap();
        let params: Vec<(String, String)> = [
            ("grant_type", "client_credentials"),
            ("client_id", "alpha"),
            ("client_assertion_type", JWT_BEARER_ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
            ("resource", resource),
            ("scope", scope),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let request = |dpop: Option<String>| TokenRequest {
            params: params.clone(),
            dpop,
            endpoint_url: endpoint.clone(),
            client_ip: None,
        };
        let first = self
            .engine
            .token_grant(request(
                dpop_key.map(|k| proof(k, "POST", &endpoint, None, None)),
            ))
            .await;
        let resp = match (first, dpop_key) {
            (Ok(r), _) => r,
            (Err(e), Some(k)) if e.error == "use_dpop_nonce" => {
                let nonce = e.dpop_nonce.clone().unwrap();
                self.engine
                    .token_grant(request(Some(proof(
                        k,
                        "POST",
                        &endpoint,
                        Some(&nonce),
                        None,
                    ))))
                    .await
                    .unwrap()
            }
            (Err(e), _) => panic!("token grant failed: {} {}", e.error, e.description),
        };
        resp.access_token
    }

    /// The newest audit events of `event_type`, newest first.
    pub async fn events(&self, event_type: &str) -> Vec<mandate_core::AuditEvent> {
        let mut items = self
            .engine
            .list_audit(&mandate_store::AuditFilter {
                event_type: Some(event_type.into()),
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap()
            .items;
        items.reverse();
        items
    }
}

/// A DPoP proof, issued now.
pub fn proof(
    key: &SigningKey,
    htm: &str,
    htu: &str,
    nonce: Option<&str>,
    ath: Option<&str>,
) -> String {
    mandate_testkit::dpop_proof(key, htm, htu, now(), nonce, ath)
}

/// Sends raw bytes to `url`'s host and returns the raw answer.
pub async fn raw(url: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
