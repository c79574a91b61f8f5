//! `mandate-server` is Mandate's HTTP face: health probes, the admin API
//! under `/admin/v1` (with its OpenAPI document), and the mapping of domain
//! errors to RFC 9457 problem responses. It owns routing, request ids,
//! body limits, admin authentication and the auditing of refused requests;
//! the use cases themselves live in `mandate-engine`.

mod admin;
mod attest_api;
mod authzen;
mod extract;
mod governance_api;
mod grants_admin;
mod middleware;
mod oauth_api;
pub mod openapi;
mod policy_api;
mod problem;
mod secrets_api;
mod tokens_api;

use std::future::Future;

use axum::Router;
use axum::routing::get;
use mandate_engine::Engine;
use tokio::net::TcpListener;

pub use problem::ApiError;

/// Largest request body the admin API accepts.
pub const MAX_BODY: usize = 64 * 1024;

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The use cases.
    pub engine: Engine,
    /// The URL clients use to reach this server (no trailing slash).
    pub public_url: String,
}

/// The complete router: the control plane, and the gateway's routes
/// (`/gw/<resource>/...`), which carry none of the admin API's middleware
/// or body limit.
pub fn router(state: AppState) -> Router {
    let config = mandate_gateway::GatewayConfig::new(&state.public_url, &state.public_url);
    router_with(state, config)
}

/// [`router`] with the gateway's settings.
pub fn router_with(state: AppState, gateway: mandate_gateway::GatewayConfig) -> Router {
    let gateway = mandate_gateway::Gateway::new(state.engine.clone(), gateway);
    let control = control_router(state);
    match gateway {
        Ok(gw) => {
            let router = gw.router().merge(control);
            match gw.internal_router() {
                Some(internal) => router.merge(internal),
                None => router,
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "the gateway cannot start; its routes answer 404");
            control
        }
    }
}

fn control_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .nest("/admin/v1", admin::router(state.clone()))
        .merge(governance_api::router(state.clone()))
        .merge(authzen::public_router())
        .merge(tokens_api::public_router())
        .merge(oauth_api::router())
        .merge(
            authzen::guarded_router().layer(axum::middleware::from_fn_with_state(
                state.clone(),
                middleware::require_pdp_caller,
            )),
        )
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::finish,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// `listener` with `TCP_NODELAY` on every accepted connection: answers are
/// written as headers and then body chunks, and Nagle's algorithm would
/// hold a small last chunk until the client's delayed ACK (up to 40 ms).
pub fn no_delay(
    listener: TcpListener,
) -> axum::serve::TapIo<TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    fn set(tcp: &mut tokio::net::TcpStream) {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    }
    listener.tap_io(set as fn(&mut tokio::net::TcpStream))
}

/// Serves [`router`] on `listener` until `shutdown` resolves, then lets
/// in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = mandate_gateway::GatewayConfig::new(&state.public_url, &state.public_url);
    serve_with(listener, state, config, shutdown).await
}

/// [`serve`] with the gateway's settings.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    gateway: mandate_gateway::GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        no_delay(listener),
        router_with(state, gateway).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, ApiError> {
    state
        .engine
        .store()
        .ping()
        .await
        .map_err(|_| ApiError::unavailable("the database is not reachable"))?;
    Ok("ready\n")
}

async fn fallback() -> ApiError {
    ApiError::not_found_route()
}
