//! The token service's public documents (JWKS, RFC 8414 and OIDC discovery
//! metadata) and its admin endpoints (signing keys, resources).

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use mandate_engine::{Actor, NewResource, Resource, SigningKeyInfo};
use mandate_jose::jws::Algorithm;
use serde::{Deserialize, Serialize};

use crate::extract::JsonBody;
use crate::{ApiError, AppState};

/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth2/token";
/// The authorization endpoint: published because clients (the MCP SDKs)
/// require one in the metadata; the code flow is not offered yet, so it
/// answers `unsupported_response_type`.
pub const AUTHORIZATION_PATH: &str = "/oauth2/authorize";
/// Path of the introspection endpoint.
pub const INTROSPECTION_PATH: &str = "/oauth2/introspect";
/// Path of the revocation endpoint.
pub const REVOCATION_PATH: &str = "/oauth2/revoke";
/// Path of the key set.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Unauthenticated documents under `/.well-known`.
pub(crate) fn public_router() -> Router<AppState> {
    Router::new()
        .route(JWKS_PATH, get(jwks))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
}

/// Admin routes, merged under `/admin/v1` behind `require_admin`.
pub(crate) fn admin_router() -> Router<AppState> {
    Router::new()
        .route("/keys", get(list_keys))
        .route("/keys/rotate", post(rotate_key))
        .route("/resources", post(add_resource).get(list_resources))
        .route(
            "/resources/{name}",
            get(get_resource).delete(remove_resource),
        )
}

type ApiResult<T> = Result<T, ApiError>;

fn cached_json(value: &serde_json::Value, max_age: i64) -> Response {
    let mut res = Json(value).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}

async fn jwks(State(state): State<AppState>) -> ApiResult<Response> {
    let set = state.engine.published_jwks().await?;
    let max_age = state.engine.token_config().jwks_cache.whole_seconds();
    Ok(cached_json(&set.to_json(), max_age))
}

/// RFC 8414 metadata, also served as OIDC discovery. `issuer` is the public
/// URL byte for byte.
async fn metadata(State(state): State<AppState>) -> ApiResult<Response> {
    let base = state.public_url.as_str();
    let scopes: BTreeSet<String> = state
        .engine
        .list_resources()
        .await?
        .into_iter()
        .flat_map(|r| r.scopes)
        .collect();
    let doc = serde_json::json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}{AUTHORIZATION_PATH}"),
        "token_endpoint": format!("{base}{TOKEN_PATH}"),
        "jwks_uri": format!("{base}{JWKS_PATH}"),
        "introspection_endpoint": format!("{base}{INTROSPECTION_PATH}"),
        "revocation_endpoint": format!("{base}{REVOCATION_PATH}"),
        "grant_types_supported": mandate_engine::oauth::GrantType::ALL.map(|g| g.as_str()),
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "RS256", "PS256"],
        "introspection_endpoint_auth_methods_supported": ["private_key_jwt"],
        "revocation_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        "dpop_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "RS256", "PS256"],
        "scopes_supported": scopes,
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    });
    Ok(cached_json(&doc, 300))
}

/// Signing keys, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    /// The keys (never key material).
    pub items: Vec<SigningKeyInfo>,
}

/// Body of `POST /admin/v1/keys/rotate`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// `ES256` or `EdDSA`; the configured algorithm when absent.
    #[serde(default)]
    pub alg: Option<String>,
}

/// Resources, by name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResourceList {
    /// The resources.
    pub items: Vec<Resource>,
}

/// Lists the signing keys with their state now.
#[utoipa::path(get, path = "/admin/v1/keys", tag = "keys",
    responses((status = 200, description = "Oldest first", body = KeyList)),
    security(("admin_token" = [])))]
pub(crate) async fn list_keys(State(state): State<AppState>) -> ApiResult<Json<KeyList>> {
    Ok(Json(KeyList {
        items: state.engine.signing_keys().await?,
    }))
}

/// Publishes a new signing key; it starts signing after the JWKS cache time
/// and the current key stays published for the longest token lifetime plus
/// the cache time after that.
#[utoipa::path(post, path = "/admin/v1/keys/rotate", tag = "keys", request_body = RotateRequest,
    responses((status = 201, description = "The new key, state `next`", body = SigningKeyInfo),
        (status = 409, description = "`invalid_state`: a rotation is pending", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn rotate_key(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<SigningKeyInfo>)> {
    // The body is optional: none means the configured algorithm.
    let req: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid_body(e.to_string()))?
    };
    let alg = match req.alg.as_deref() {
        None => None,
        Some(name) => Some(
            Algorithm::from_name(name)
                .filter(|a| matches!(a, Algorithm::Es256 | Algorithm::EdDsa))
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "alg",
                        format!("invalid `alg`: `{name}` is not one of ES256, EdDSA"),
                    )
                })?,
        ),
    };
    let key = state.engine.rotate_signing_key(&actor, alg).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// Adds a resource tokens can be issued for.
#[utoipa::path(post, path = "/admin/v1/resources", tag = "resources", request_body = NewResource,
    responses((status = 201, description = "Added", body = Resource),
        (status = 400, description = "`invalid_field`, naming the field", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`resource_exists`: the name or audience is taken", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn add_resource(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<NewResource>,
) -> ApiResult<(StatusCode, Json<Resource>)> {
    let r = state.engine.add_resource(&actor, req).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// Lists resources.
#[utoipa::path(get, path = "/admin/v1/resources", tag = "resources",
    responses((status = 200, description = "By name", body = ResourceList)),
    security(("admin_token" = [])))]
pub(crate) async fn list_resources(State(state): State<AppState>) -> ApiResult<Json<ResourceList>> {
    Ok(Json(ResourceList {
        items: state.engine.list_resources().await?,
    }))
}

/// One resource.
#[utoipa::path(get, path = "/admin/v1/resources/{name}", tag = "resources",
    params(("name" = String, Path, description = "Resource name")),
    responses((status = 200, description = "The resource", body = Resource),
        (status = 404, description = "`resource_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn get_resource(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Resource>> {
    Ok(Json(state.engine.resource(&name).await?))
}

/// Removes a resource. Tokens already issued for it stay valid until they
/// expire or are revoked.
#[utoipa::path(delete, path = "/admin/v1/resources/{name}", tag = "resources",
    params(("name" = String, Path, description = "Resource name")),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "`resource_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn remove_resource(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.remove_resource(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
