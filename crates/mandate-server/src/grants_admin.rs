//! Admin endpoints of the grants: the keys agents sign client assertions
//! with, the issued tokens and their revocation (with every token derived
//! from them).

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use mandate_core::AgentName;
use mandate_engine::Actor;
use mandate_engine::oauth::TokenInfo;
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

use crate::extract::JsonBody;
use crate::{ApiError, AppState};

type ApiResult<T> = Result<T, ApiError>;

/// This part of the OpenAPI document (merged into the main one).
#[derive(OpenApi)]
#[openapi(
    paths(set_agent_jwks, get_agent_jwks, list_tokens, revoke_token),
    tags((name = "tokens", description = "Issued access tokens and the keys agents authenticate with"))
)]
pub(crate) struct ApiDoc;

/// Routes under `/admin/v1`, behind admin authentication.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/agents/{name}/jwks",
            get(get_agent_jwks).put(set_agent_jwks),
        )
        .route("/tokens", get(list_tokens))
        .route("/tokens/{jti}/revoke", post(revoke_token))
}

fn agent_name(s: &str) -> ApiResult<AgentName> {
    crate::admin::parse(s)
}

/// Sets the public keys (a JWKS) an agent signs `private_key_jwt` client
/// assertions with, replacing any before.
#[utoipa::path(put, path = "/admin/v1/agents/{name}/jwks", tag = "tokens",
    params(("name" = String, Path, description = "Agent name")),
    request_body(content = Object, description = "A JWK Set of public keys"),
    responses((status = 200, description = "The stored key set", body = Object),
        (status = 400, description = "`invalid_field` `jwks`: private material, unusable or no keys", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "`agent_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn set_agent_jwks(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    JsonBody(jwks): JsonBody<serde_json::Value>,
) -> ApiResult<Json<serde_json::Value>> {
    let name = agent_name(&name)?;
    Ok(Json(
        state.engine.set_agent_jwks(&actor, &name, &jwks).await?,
    ))
}

/// The public keys registered on an agent.
#[utoipa::path(get, path = "/admin/v1/agents/{name}/jwks", tag = "tokens",
    params(("name" = String, Path, description = "Agent name")),
    responses((status = 200, description = "The key set (empty when none)", body = Object),
        (status = 404, description = "`agent_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn get_agent_jwks(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let name = agent_name(&name)?;
    Ok(Json(state.engine.agent_jwks(&name).await?))
}

/// Filters of `GET /admin/v1/tokens`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    /// Only this agent's tokens.
    pub agent: Option<String>,
    /// Only tokens neither expired nor revoked.
    #[serde(default)]
    pub live: bool,
    /// Most rows (default 50, at most 500).
    pub limit: Option<u32>,
}

/// Issued tokens.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenList {
    /// Newest first.
    pub items: Vec<TokenInfo>,
}

/// Lists issued tokens (never the tokens themselves), newest first.
#[utoipa::path(get, path = "/admin/v1/tokens", tag = "tokens", params(TokenQuery),
    responses((status = 200, description = "Newest first", body = TokenList)),
    security(("admin_token" = [])))]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    Query(q): Query<TokenQuery>,
) -> ApiResult<Json<TokenList>> {
    if let Some(a) = &q.agent {
        agent_name(a)?;
    }
    Ok(Json(TokenList {
        items: state
            .engine
            .list_tokens(q.agent.as_deref(), q.live, q.limit.unwrap_or(0))
            .await?,
    }))
}

/// The answer of a revocation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Revoked {
    /// The token named.
    pub jti: String,
    /// How many tokens were revoked now: it and its live descendants.
    pub revoked: u64,
}

/// Revokes a token and every token derived from it.
#[utoipa::path(post, path = "/admin/v1/tokens/{jti}/revoke", tag = "tokens",
    params(("jti" = String, Path, description = "The token's `jti`")),
    responses((status = 200, description = "Revoked", body = Revoked),
        (status = 404, description = "`token_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(jti): Path<String>,
) -> ApiResult<Json<Revoked>> {
    let revoked = state.engine.admin_revoke_token(&actor, &jti).await?;
    Ok(Json(Revoked { jti, revoked }))
}
