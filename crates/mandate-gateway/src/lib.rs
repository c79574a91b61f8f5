//! `mandate-gateway` is Mandate's enforcement point in front of upstreams:
//! it verifies the agent's Mandate token, decides each request with Cedar
//! (`http:request`, or the MCP actions for MCP servers), removes the agent's
//! own credentials and identity headers, injects the upstream credential
//! (the agent never holds it), streams the exchange and audits it. It owns
//! the credential providers, the request and response rules and the MCP
//! message handling; tokens, policies and storage stay in `mandate-engine`.
//!
//! Routes: `/gw/<resource>/...` for every resource added with an upstream,
//! and the RFC 9728 metadata of each at
//! `/.well-known/oauth-protected-resource/gw/<resource>`.

pub mod credential;
mod credentials;
mod headers;
mod internal;
mod json;
pub mod mcp;
pub mod path;
mod plane;
mod problem;
mod proxy;
mod remote;
mod verify;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use mandate_engine::Engine;

pub use headers::REDACTED;
pub use remote::RemoteConfig;
pub use wire::{GATEWAY_SCOPE, INTERNAL_PATH};

use crate::plane::Plane;

/// Settings of the gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The URL clients reach the gateway's routes under (no trailing
    /// slash): a route's audience is `<public_url>/gw/<resource>` unless
    /// the resource names another.
    pub public_url: String,
    /// The authorization server named in the protected resource metadata
    /// (Mandate's issuer).
    pub authorization_server: String,
    /// Longest wait for an upstream's TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Largest MCP message body the gateway reads (it decides on its
    /// content) and largest body it holds to sign (`aws-sigv4`).
    pub max_inspected_body: usize,
    /// Answer only once the call's audit event is on disk (the default).
    /// When false, once it is queued in order for the next group commit:
    /// far lower latency, and a crash can lose the last commit's events.
    pub durable_audit: bool,
}

impl GatewayConfig {
    /// Defaults for a gateway served at `public_url` by the Mandate at
    /// `authorization_server`.
    pub fn new(public_url: &str, authorization_server: &str) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
            authorization_server: authorization_server.trim_end_matches('/').to_owned(),
            connect_timeout: Duration::from_secs(5),
            max_inspected_body: 4 * 1024 * 1024,
            durable_audit: true,
        }
    }
}

/// The gateway: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    plane: Plane,
    config: GatewayConfig,
    http: reqwest::Client,
    verified: verify::Cache,
    credentials: credentials::Credentials,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("public_url", &self.inner.config.public_url)
            .finish_non_exhaustive()
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The HTTP client cannot be built.
    #[error("cannot build the gateway's HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The control plane cannot be reached or refuses the gateway.
    #[error("the control plane: {0}")]
    ControlPlane(String),
}

fn http_client(config: &GatewayConfig) -> Result<reqwest::Client, StartError> {
    Ok(reqwest::Client::builder()
        // Never follow an upstream's redirect: the credential would go
        // along to wherever it points. The client gets the 3xx.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()?)
}

impl Gateway {
    /// A gateway over `engine`, in the server's process.
    pub fn new(engine: Engine, config: GatewayConfig) -> Result<Self, StartError> {
        let http = http_client(&config)?;
        Ok(Self::over(Plane::Local(engine), config, http))
    }

    /// A standalone gateway whose control plane is the Mandate `remote`
    /// names. `config.authorization_server` is replaced by that Mandate's
    /// issuer. Fails when the Mandate cannot be reached or refuses the
    /// gateway's own token.
    pub async fn remote(
        mut config: GatewayConfig,
        remote: RemoteConfig,
    ) -> Result<Self, StartError> {
        let http = http_client(&config)?;
        let r = remote::Remote::connect(remote, http.clone())
            .await
            .map_err(StartError::ControlPlane)?;
        config.authorization_server = r.issuer().to_owned();
        Ok(Self::over(Plane::Remote(Arc::new(r)), config, http))
    }

    fn over(plane: Plane, config: GatewayConfig, http: reqwest::Client) -> Self {
        Self {
            inner: Arc::new(Inner {
                credentials: credentials::Credentials::new(plane.clone(), http.clone()),
                plane,
                config,
                http,
                verified: verify::Cache::default(),
            }),
        }
    }

    /// The gateway's routes, to merge into a server's router (they carry no
    /// body limit and no other middleware of the admin API).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/gw/{resource}", any(route_request))
            .route("/gw/{resource}/", any(route_request))
            .route("/gw/{resource}/{*rest}", any(route_request))
            .route(
                "/.well-known/oauth-protected-resource/gw/{resource}",
                get(protected_resource_metadata),
            )
            .with_state(self.clone())
    }

    /// The public URL of route `resource` (its default audience).
    pub fn route_url(&self, resource: &str) -> String {
        format!("{}/gw/{resource}", self.inner.config.public_url)
    }

    /// The URL of route `resource`'s protected resource metadata.
    pub fn metadata_url(&self, resource: &str) -> String {
        format!(
            "{}/.well-known/oauth-protected-resource/gw/{resource}",
            self.inner.config.public_url
        )
    }
}

/// Hands the request to its route with the path below the route exactly as
/// the request line carries it, not as the router decoded it (the router
/// would refuse or decode bytes the gateway must decide on itself): the
/// one canonical form is made from that (see [`path`]). The route's name is
/// the raw segment too: a percent-encoded name names no route.
async fn route_request(State(gw): State<Gateway>, req: Request) -> Response {
    let raw = req.uri().path();
    let below_gw = raw.strip_prefix("/gw/").unwrap_or_default();
    let (resource, rest) = below_gw
        .find('/')
        .map_or((below_gw, ""), |i| below_gw.split_at(i));
    let (resource, rest) = (resource.to_owned(), rest.to_owned());
    proxy::handle(gw, resource, rest, client_ip(&req), req).await
}

fn client_ip(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// RFC 9728 metadata of a route: the resource identifier is its audience,
/// Mandate its authorization server.
async fn protected_resource_metadata(
    State(gw): State<Gateway>,
    Path(resource): Path<String>,
) -> Response {
    let route = match gw.inner.plane.route(&resource).await {
        Ok(Some(r)) => r,
        Ok(None) => return problem::not_found(&resource),
        Err(e) => return problem::unavailable(&e),
    };
    let scopes = gw.inner.plane.scopes(&resource).await;
    let body = serde_json::json!({
        "resource": route.audience,
        "authorization_servers": [gw.inner.config.authorization_server],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": route.name,
        "dpop_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "RS256", "PS256"],
    });
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().insert(
        http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        http::HeaderValue::from_static("*"),
    );
    resp
}
