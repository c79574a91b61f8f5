//! Admin endpoints of the stored upstream credentials ("secrets") the
//! gateway injects. Write-only: no endpoint ever answers with a value.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use mandate_engine::{Actor, NewSecret, SecretConfig, SecretInfo};
use mandate_jose::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

use crate::extract::JsonBody;
use crate::{ApiError, AppState};

type ApiResult<T> = Result<T, ApiError>;

/// This part of the OpenAPI document (merged into the main one).
#[derive(OpenApi)]
#[openapi(
    paths(set_secret, list_secrets, get_secret, remove_secret),
    tags((name = "secrets", description = "Upstream credentials the gateway injects (write-only)"))
)]
pub(crate) struct ApiDoc;

/// Routes under `/admin/v1`, behind admin authentication.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/secrets", get(list_secrets)).route(
        "/secrets/{name}",
        get(get_secret).put(set_secret).delete(remove_secret),
    )
}

/// The body of `PUT /admin/v1/secrets/{name}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSecret {
    /// `static`, `oauth-client-credentials`, `aws-sigv4` or `mandate-jwt`.
    pub kind: String,
    /// The secret: the static value, the OAuth client secret or the AWS
    /// secret access key. Absent for `mandate-jwt`. Never returned.
    #[serde(default)]
    pub value: Option<String>,
    /// `aws-sigv4`: a session token to send with temporary keys. Never
    /// returned.
    #[serde(default)]
    pub session_token: Option<String>,
    /// Non-secret settings of the kind.
    #[serde(default)]
    pub config: SecretConfig,
}

impl std::fmt::Debug for SetSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetSecret")
            .field("kind", &self.kind)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Stored secrets.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SecretList {
    /// By name.
    pub items: Vec<SecretInfo>,
}

/// Stores a secret, replacing one of the same name. The answer never holds
/// the value.
#[utoipa::path(put, path = "/admin/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "Secret name")),
    request_body = SetSecret,
    responses((status = 200, description = "Stored", body = SecretInfo),
        (status = 400, description = "`invalid_field`, naming the field", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn set_secret(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<SetSecret>,
) -> ApiResult<Json<SecretInfo>> {
    let value = match (body.value, body.session_token) {
        (v, None) => v.map(SecretString::from),
        (Some(v), Some(t)) if body.kind == "aws-sigv4" => {
            Some(SecretString::from(format!("{v}\n{t}")))
        }
        (_, Some(_)) => {
            return Err(ApiError::invalid_field(
                "session_token",
                "`session_token` goes with an `aws-sigv4` value",
            ));
        }
    };
    let new = NewSecret {
        name,
        kind: body.kind,
        config: body.config,
        value,
    };
    Ok(Json(state.engine.set_secret(&actor, new).await?))
}

/// Lists secrets (never their values).
#[utoipa::path(get, path = "/admin/v1/secrets", tag = "secrets",
    responses((status = 200, description = "By name", body = SecretList)),
    security(("admin_token" = [])))]
pub(crate) async fn list_secrets(State(state): State<AppState>) -> ApiResult<Json<SecretList>> {
    Ok(Json(SecretList {
        items: state.engine.list_secrets().await?,
    }))
}

/// One secret's kind, settings and users (never its value).
#[utoipa::path(get, path = "/admin/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "Secret name")),
    responses((status = 200, description = "The secret, without its value", body = SecretInfo),
        (status = 404, description = "`secret_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn get_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<SecretInfo>> {
    Ok(Json(state.engine.secret_info(&name).await?))
}

/// Removes a secret. Refused while a resource's gateway route uses it.
#[utoipa::path(delete, path = "/admin/v1/secrets/{name}", tag = "secrets",
    params(("name" = String, Path, description = "Secret name")),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "`secret_not_found`", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_state`: a resource's route uses it", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn remove_secret(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.remove_secret(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
