//! Admin endpoints for versioned policy sets.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use mandate_engine::{Actor, PolicyFile, PolicyVersion};
use serde::{Deserialize, Serialize};

use crate::extract::JsonBody;
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/policies", post(push_policies).get(list_policies))
        .route("/policies/validate", post(validate_policies))
        .route("/policies/active", get(active_policy))
        .route("/policies/{version}", get(get_policy))
        .route("/policies/{version}/activate", post(activate_policy))
}

type ApiResult<T> = Result<T, ApiError>;

/// Body of `POST /admin/v1/policies` and `/policies/validate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushPoliciesRequest {
    /// The policy files that together form the new set.
    pub files: Vec<PolicyFile>,
    /// Why (kept with the version and in the audit log).
    #[serde(default)]
    pub message: Option<String>,
}

/// Policy versions, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyVersionList {
    /// Versions without their files.
    pub items: Vec<PolicyVersion>,
}

/// The result of a dry-run validation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ValidationReport {
    /// Ids of the policies the files hold.
    pub policy_ids: Vec<String>,
    /// What the set tests that nothing configured here produces (a claim no
    /// trust provider fills, a tool argument with no MCP route), and a set
    /// with no `permit`.
    pub warnings: Vec<String>,
}

fn version_param(v: &str) -> ApiResult<i64> {
    v.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
        ApiError::invalid_field(
            "version",
            format!("invalid `version`: `{v}` is not a positive integer"),
        )
    })
}

/// Validates, stores and activates a new policy set. An invalid set is
/// refused with every problem located (`file:line:column`) and the active
/// version stays as it was.
#[utoipa::path(post, path = "/admin/v1/policies", tag = "policies", request_body = PushPoliciesRequest,
    responses((status = 201, description = "Stored and active", body = PolicyVersion),
        (status = 400, description = "`invalid_policy`, with `errors`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn push_policies(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<PushPoliciesRequest>,
) -> ApiResult<(StatusCode, Json<PolicyVersion>)> {
    let v = state
        .engine
        .push_policies(&actor, req.files, req.message.unwrap_or_default())
        .await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Validates policy files against the schema without storing them.
#[utoipa::path(post, path = "/admin/v1/policies/validate", tag = "policies", request_body = PushPoliciesRequest,
    responses((status = 200, description = "Valid", body = ValidationReport),
        (status = 400, description = "`invalid_policy`, with `errors`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn validate_policies(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<PushPoliciesRequest>,
) -> ApiResult<Json<ValidationReport>> {
    let set = state.engine.validate_policies(&req.files)?;
    Ok(Json(ValidationReport {
        policy_ids: set.policies().iter().map(|p| p.id.clone()).collect(),
        warnings: state.engine.policy_warnings(&set).await?,
    }))
}

/// Lists policy versions.
#[utoipa::path(get, path = "/admin/v1/policies", tag = "policies",
    responses((status = 200, description = "Newest first", body = PolicyVersionList)),
    security(("admin_token" = [])))]
pub(crate) async fn list_policies(
    State(state): State<AppState>,
) -> ApiResult<Json<PolicyVersionList>> {
    Ok(Json(PolicyVersionList {
        items: state.engine.policy_versions().await?,
    }))
}

/// The active version with its files.
#[utoipa::path(get, path = "/admin/v1/policies/active", tag = "policies",
    responses((status = 200, description = "The active version", body = PolicyVersion),
        (status = 404, description = "No policy was ever pushed", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn active_policy(State(state): State<AppState>) -> ApiResult<Json<PolicyVersion>> {
    Ok(Json(state.engine.policy_version(None).await?))
}

/// One version with its files.
#[utoipa::path(get, path = "/admin/v1/policies/{version}", tag = "policies",
    params(("version" = i64, Path, description = "Version number")),
    responses((status = 200, description = "The version", body = PolicyVersion),
        (status = 404, description = "`policy_version_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn get_policy(
    State(state): State<AppState>,
    Path(v): Path<String>,
) -> ApiResult<Json<PolicyVersion>> {
    Ok(Json(
        state
            .engine
            .policy_version(Some(version_param(&v)?))
            .await?,
    ))
}

/// Activates a stored version again (rollback).
#[utoipa::path(post, path = "/admin/v1/policies/{version}/activate", tag = "policies",
    params(("version" = i64, Path, description = "Version number")),
    responses((status = 200, description = "Active again", body = PolicyVersion),
        (status = 404, description = "`policy_version_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn activate_policy(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(v): Path<String>,
) -> ApiResult<Json<PolicyVersion>> {
    Ok(Json(
        state
            .engine
            .rollback_policy(&actor, version_param(&v)?)
            .await?,
    ))
}
