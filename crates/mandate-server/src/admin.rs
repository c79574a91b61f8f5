//! The admin API: agent inventory, admin tokens, audit log.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use mandate_core::{
    Agent, AgentKind, AgentName, AgentStatus, AuditEvent, Email, Labels, Provenance, StatusChange,
    ValidationError,
};
use mandate_engine::{Actor, AdminToken, AgentPatch, NewAgent};
use mandate_jose::secret::ExposeSecret;
use mandate_store::{AgentFilter, AuditFilter};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::extract::{JsonBody, QueryParams};
use crate::{ApiError, AppState, middleware, openapi};

pub(crate) fn router(state: AppState) -> Router<AppState> {
    let guarded = Router::new()
        .route("/agents", post(register_agent).get(list_agents))
        .route("/agents/{name}", get(get_agent).patch(update_agent))
        .route("/agents/{name}/suspend", post(suspend_agent))
        .route("/agents/{name}/resume", post(resume_agent))
        .route("/agents/{name}/decommission", post(decommission_agent))
        .route(
            "/admin-tokens",
            post(create_admin_token).get(list_admin_tokens),
        )
        .route("/admin-tokens/{id}/revoke", post(revoke_admin_token))
        .route("/audit", get(list_audit))
        .merge(crate::policy_api::router())
        .merge(crate::attest_api::router())
        .merge(crate::tokens_api::admin_router())
        .merge(crate::grants_admin::router())
        .merge(crate::secrets_api::router())
        .layer(axum::middleware::from_fn_with_state(
            state,
            middleware::require_admin,
        ));
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .merge(guarded)
}

type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn parse<T: std::str::FromStr<Err = ValidationError>>(s: &str) -> ApiResult<T> {
    s.parse::<T>()
        .map_err(|e| ApiError::invalid_field(e.field, e.to_string()))
}

fn parse_opt<T: std::str::FromStr<Err = ValidationError>>(s: Option<&str>) -> ApiResult<Option<T>> {
    s.map(parse).transpose()
}

fn parse_time(field: &'static str, s: Option<&str>) -> ApiResult<Option<OffsetDateTime>> {
    s.map(|s| {
        OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
            ApiError::invalid_field(
                field,
                format!("invalid `{field}`: `{s}` is not an RFC 3339 time"),
            )
        })
    })
    .transpose()
}

fn labels(map: Option<BTreeMap<String, String>>) -> ApiResult<Option<Labels>> {
    map.map(|m| Labels::try_from(m).map_err(|e| ApiError::invalid_field(e.field, e.to_string())))
        .transpose()
}

/// Body of `POST /admin/v1/agents`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgentRequest {
    /// Unique name: a DNS label.
    #[schema(example = "invoice-bot")]
    pub name: Option<String>,
    /// `autonomous` or `on-behalf-of`.
    #[schema(value_type = Option<AgentKind>)]
    pub kind: Option<String>,
    /// The accountable human's e-mail address (required).
    #[schema(example = "alice@example.com")]
    pub owner: Option<String>,
    /// What the agent is for.
    pub description: Option<String>,
    /// What it runs on and who made it.
    pub provenance: Option<Provenance>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// What it is expected to use (free text).
    pub envelope: Option<String>,
    /// Review date (RFC 3339); default 90 days from now.
    pub review_by: Option<String>,
}

/// Body of `PATCH /admin/v1/agents/{name}`: only the fields present change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgentRequest {
    /// New owner.
    pub owner: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New provenance (replaces it whole).
    pub provenance: Option<Provenance>,
    /// New labels (replace all).
    pub labels: Option<BTreeMap<String, String>>,
    /// New envelope.
    pub envelope: Option<String>,
    /// New review date (RFC 3339).
    pub review_by: Option<String>,
}

/// Filters of `GET /admin/v1/agents`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListAgentsParams {
    /// Only agents of this owner.
    pub owner: Option<String>,
    /// Only agents of this kind.
    pub kind: Option<String>,
    /// Only agents with this status.
    pub status: Option<String>,
    /// Only agents with this label, `key=value`.
    pub label: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (1–500, default 50).
    pub limit: Option<u32>,
}

/// A page of agents.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AgentPage {
    /// Agents, ordered by name.
    pub items: Vec<Agent>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Body of `POST /admin/v1/admin-tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAdminTokenRequest {
    /// Human label.
    pub name: Option<String>,
    /// Lifetime in seconds; absent for a token that lives until revoked.
    pub expires_in: Option<i64>,
}

/// A new admin token. `token` is shown only here, once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedAdminToken {
    /// The token's record.
    #[serde(flatten)]
    pub info: AdminToken,
    /// The bearer value, `mdt_<id>_<secret>`: store it now.
    pub token: String,
}

/// Admin tokens.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminTokenList {
    /// Newest first.
    pub items: Vec<AdminToken>,
}

/// Filters of `GET /admin/v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListAuditParams {
    /// Only this event type, e.g. `agent.registered`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Only this target, e.g. `agent/invoice-bot`.
    pub target: Option<String>,
    /// Only events at or after this RFC 3339 time.
    pub since: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (1–500, default 50).
    pub limit: Option<u32>,
}

/// A page of audit events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Events in chain order.
    pub items: Vec<AuditEvent>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Registers an agent.
#[utoipa::path(post, path = "/admin/v1/agents", tag = "agents",
    request_body = RegisterAgentRequest,
    responses(
        (status = 201, description = "Registered", body = Agent),
        (status = 400, description = "A field is missing or invalid", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or a wrong admin token", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken (`agent_exists`)", body = crate::problem::Problem, content_type = "application/problem+json"),
    ),
    security(("admin_token" = [])))]
pub(crate) async fn register_agent(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<RegisterAgentRequest>,
) -> ApiResult<(StatusCode, Json<Agent>)> {
    let name: AgentName = parse(
        req.name
            .as_deref()
            .ok_or_else(|| ApiError::invalid_field("name", "`name` is required"))?,
    )?;
    let kind: AgentKind = parse(req.kind.as_deref().ok_or_else(|| {
        ApiError::invalid_field("kind", "`kind` is required: `autonomous` or `on-behalf-of`")
    })?)?;
    let owner: Email = parse(req.owner.as_deref().ok_or_else(|| {
        ApiError::invalid_field(
            "owner",
            "`owner` is required: every agent needs an accountable human",
        )
    })?)?;
    let new = NewAgent {
        name,
        kind,
        owner,
        description: req.description.unwrap_or_default(),
        provenance: req.provenance.unwrap_or_default(),
        labels: labels(req.labels)?.unwrap_or_default(),
        envelope: req.envelope.unwrap_or_default(),
        review_by: parse_time("review_by", req.review_by.as_deref())?,
    };
    let agent = state.engine.register_agent(&actor, new).await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

/// Lists agents, filtered and paginated.
#[utoipa::path(get, path = "/admin/v1/agents", tag = "agents", params(ListAgentsParams),
    responses((status = 200, description = "One page", body = AgentPage),
        (status = 400, description = "A bad filter", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn list_agents(
    State(state): State<AppState>,
    QueryParams(p): QueryParams<ListAgentsParams>,
) -> ApiResult<Json<AgentPage>> {
    let filter = AgentFilter {
        owner: parse_opt(p.owner.as_deref())?,
        kind: parse_opt(p.kind.as_deref())?,
        status: parse_opt::<AgentStatus>(p.status.as_deref())?,
        label: p
            .label
            .as_deref()
            .map(|l| {
                Labels::parse_pair(l).map_err(|e| ApiError::invalid_field("label", e.to_string()))
            })
            .transpose()?,
        after: p.cursor,
        limit: p.limit.unwrap_or(0),
    };
    let page = state.engine.list_agents(&filter).await?;
    Ok(Json(AgentPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Shows one agent.
#[utoipa::path(get, path = "/admin/v1/agents/{name}", tag = "agents",
    params(("name" = String, Path, description = "Agent name")),
    responses((status = 200, description = "The agent", body = Agent),
        (status = 404, description = "`agent_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn get_agent(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Agent>> {
    Ok(Json(state.engine.agent(&parse(&name)?).await?))
}

/// Changes an agent's owner, description, provenance, labels, envelope or review date.
#[utoipa::path(patch, path = "/admin/v1/agents/{name}", tag = "agents",
    params(("name" = String, Path, description = "Agent name")),
    request_body = UpdateAgentRequest,
    responses((status = 200, description = "The updated agent", body = Agent),
        (status = 400, description = "A field is invalid", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "`agent_not_found`", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Decommissioned, or changed concurrently", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn update_agent(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<UpdateAgentRequest>,
) -> ApiResult<Json<Agent>> {
    let name: AgentName = parse(&name)?;
    let patch = AgentPatch {
        owner: parse_opt(req.owner.as_deref())?,
        description: req.description,
        provenance: req.provenance,
        labels: labels(req.labels)?,
        envelope: req.envelope,
        review_by: parse_time("review_by", req.review_by.as_deref())?,
    };
    Ok(Json(state.engine.update_agent(&actor, &name, patch).await?))
}

async fn change_status(
    state: AppState,
    actor: Actor,
    name: String,
    change: StatusChange,
) -> ApiResult<Json<Agent>> {
    let name: AgentName = parse(&name)?;
    Ok(Json(
        state.engine.change_status(&actor, &name, change).await?,
    ))
}

/// Suspends an active agent.
#[utoipa::path(post, path = "/admin/v1/agents/{name}/suspend", tag = "agents",
    params(("name" = String, Path, description = "Agent name")),
    responses((status = 200, description = "Suspended", body = Agent),
        (status = 409, description = "`invalid_state`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn suspend_agent(
    State(s): State<AppState>,
    Extension(a): Extension<Actor>,
    Path(n): Path<String>,
) -> ApiResult<Json<Agent>> {
    change_status(s, a, n, StatusChange::Suspend).await
}

/// Resumes a suspended agent.
#[utoipa::path(post, path = "/admin/v1/agents/{name}/resume", tag = "agents",
    params(("name" = String, Path, description = "Agent name")),
    responses((status = 200, description = "Active again", body = Agent),
        (status = 409, description = "`invalid_state`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn resume_agent(
    State(s): State<AppState>,
    Extension(a): Extension<Actor>,
    Path(n): Path<String>,
) -> ApiResult<Json<Agent>> {
    change_status(s, a, n, StatusChange::Resume).await
}

/// Decommissions an agent for good; its name stays reserved.
#[utoipa::path(post, path = "/admin/v1/agents/{name}/decommission", tag = "agents",
    params(("name" = String, Path, description = "Agent name")),
    responses((status = 200, description = "Decommissioned", body = Agent),
        (status = 409, description = "`invalid_state`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn decommission_agent(
    State(s): State<AppState>,
    Extension(a): Extension<Actor>,
    Path(n): Path<String>,
) -> ApiResult<Json<Agent>> {
    change_status(s, a, n, StatusChange::Decommission).await
}

/// Creates an admin token; the response is the only time its value is shown.
#[utoipa::path(post, path = "/admin/v1/admin-tokens", tag = "admin-tokens",
    request_body = CreateAdminTokenRequest,
    responses((status = 201, description = "Created", body = CreatedAdminToken),
        (status = 400, description = "A field is invalid", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn create_admin_token(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<CreateAdminTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedAdminToken>)> {
    let name = req
        .name
        .ok_or_else(|| ApiError::invalid_field("name", "`name` is required"))?;
    let ttl = req.expires_in.map(time::Duration::seconds);
    let issued = state.engine.create_admin_token(&actor, &name, ttl).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedAdminToken {
            info: issued.token,
            token: issued.secret.expose_secret().to_owned(),
        }),
    ))
}

/// Lists admin tokens (never their values).
#[utoipa::path(get, path = "/admin/v1/admin-tokens", tag = "admin-tokens",
    responses((status = 200, description = "All tokens", body = AdminTokenList)),
    security(("admin_token" = [])))]
pub(crate) async fn list_admin_tokens(
    State(state): State<AppState>,
) -> ApiResult<Json<AdminTokenList>> {
    Ok(Json(AdminTokenList {
        items: state.engine.list_admin_tokens().await?,
    }))
}

/// Revokes an admin token; it stops working at once.
#[utoipa::path(post, path = "/admin/v1/admin-tokens/{id}/revoke", tag = "admin-tokens",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, description = "Revoked", body = AdminToken),
        (status = 404, description = "`admin_token_not_found`", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already revoked", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn revoke_admin_token(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<Json<AdminToken>> {
    Ok(Json(state.engine.revoke_admin_token(&actor, &id).await?))
}

/// Lists audit events in chain order.
#[utoipa::path(get, path = "/admin/v1/audit", tag = "audit", params(ListAuditParams),
    responses((status = 200, description = "One page", body = AuditPage),
        (status = 400, description = "A bad filter", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn list_audit(
    State(state): State<AppState>,
    QueryParams(p): QueryParams<ListAuditParams>,
) -> ApiResult<Json<AuditPage>> {
    let after_seq = p
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::invalid_field("cursor", format!("invalid `cursor`: `{c}`")))
        })
        .transpose()?;
    let filter = AuditFilter {
        event_type: p.event_type,
        target: p.target,
        since: parse_time("since", p.since.as_deref())?,
        after_seq,
        limit: p.limit.unwrap_or(0),
    };
    let page = state.engine.list_audit(&filter).await?;
    Ok(Json(AuditPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// This API's OpenAPI document.
pub(crate) async fn openapi_json() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi::document(),
    )
}
