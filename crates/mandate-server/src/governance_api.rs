//! Admin API of governance: inventory and access reports, reviews, stale
//! agents, drift findings and the tools a resource offers. Every route is
//! under `/admin/v1` behind admin authentication; errors are RFC 9457
//! problems like the rest of the admin API.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use mandate_core::{Agent, AgentName, ValidationError};
use mandate_engine::Actor;
use mandate_engine::governance::{
    AccessReport, DriftRun, Finding, InventoryReport, ReviewDue, StaleAgent,
};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

use crate::extract::{JsonBody, QueryParams};
use crate::{ApiError, AppState, middleware};

/// The governance part of the OpenAPI document (merged into the main one).
#[derive(OpenApi)]
#[openapi(
    paths(
        inventory_report, access_report, reviews_due, review_agent, stale_agents,
        suspend_stale, list_findings, ack_finding, run_detector, get_tools, set_tools,
    ),
    tags((name = "governance", description = "Inventory, access review, review dates, stale agents, drift findings and registered tools")),
)]
pub(crate) struct ApiDoc;

/// Governance routes, under `/admin/v1`, behind admin authentication.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/v1/governance/inventory", get(inventory_report))
        .route("/admin/v1/governance/access", get(access_report))
        .route("/admin/v1/governance/reviews", get(reviews_due))
        .route("/admin/v1/agents/{name}/review", post(review_agent))
        .route("/admin/v1/governance/stale", get(stale_agents))
        .route("/admin/v1/governance/stale/suspend", post(suspend_stale))
        .route("/admin/v1/governance/findings", get(list_findings))
        .route("/admin/v1/governance/findings/{id}/ack", post(ack_finding))
        .route("/admin/v1/governance/detector/run", post(run_detector))
        .route(
            "/admin/v1/resources/{name}/tools",
            get(get_tools).put(set_tools),
        )
        .layer(axum::middleware::from_fn_with_state(
            state,
            middleware::require_admin,
        ))
}

type ApiResult<T> = Result<T, ApiError>;

fn agent_name(s: &str) -> ApiResult<AgentName> {
    s.parse()
        .map_err(|e: ValidationError| ApiError::invalid_field(e.field, e.to_string()))
}

/// The inventory: every agent with owner, kind, status, trust providers,
/// bindings, reachable resources, last seen, review-by date and risk; and
/// the shadow identities.
#[utoipa::path(get, path = "/admin/v1/governance/inventory", tag = "governance",
    responses((status = 200, description = "The inventory report", body = InventoryReport)),
    security(("admin_token" = [])))]
pub(crate) async fn inventory_report(
    State(state): State<AppState>,
) -> ApiResult<Json<InventoryReport>> {
    Ok(Json(state.engine.inventory_report().await?))
}

/// Filters of `GET /admin/v1/governance/access`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AccessParams {
    /// Only this agent (default: every agent not decommissioned).
    pub agent: Option<String>,
    /// The usage window in days (1–3650, default 90).
    pub window_days: Option<i64>,
}

/// Access review: what policy grants each agent against what the audit
/// log shows it used in the window. Grants with `used: false` are
/// least-privilege findings, with the ids of the policies that grant them.
#[utoipa::path(get, path = "/admin/v1/governance/access", tag = "governance", params(AccessParams),
    responses((status = 200, description = "The access report", body = AccessReport),
        (status = 400, description = "`invalid_field`: a bad agent name or window", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "`agent_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn access_report(
    State(state): State<AppState>,
    QueryParams(p): QueryParams<AccessParams>,
) -> ApiResult<Json<AccessReport>> {
    if let Some(a) = &p.agent {
        agent_name(a)?;
    }
    let report = state
        .engine
        .access_report(p.agent.as_deref(), p.window_days.unwrap_or(90))
        .await?;
    Ok(Json(report))
}

/// A list of agents due for review.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewList {
    /// Oldest review-by date first.
    pub items: Vec<ReviewDue>,
}

/// Agents (not decommissioned) past their review-by date.
#[utoipa::path(get, path = "/admin/v1/governance/reviews", tag = "governance",
    responses((status = 200, description = "Oldest date first", body = ReviewList)),
    security(("admin_token" = [])))]
pub(crate) async fn reviews_due(State(state): State<AppState>) -> ApiResult<Json<ReviewList>> {
    Ok(Json(ReviewList {
        items: state.engine.reviews_due().await?,
    }))
}

/// Body of `POST /admin/v1/agents/{name}/review`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// What was reviewed and concluded (required).
    pub note: String,
    /// Days until the next review (default: the configured review period).
    pub days: Option<i64>,
}

/// Records a review of an agent (an `agent.reviewed` audit event with the
/// note) and moves its review-by date.
#[utoipa::path(post, path = "/admin/v1/agents/{name}/review", tag = "governance", request_body = ReviewRequest,
    params(("name" = String, Path, description = "Agent name")),
    responses((status = 200, description = "The agent with its new review-by date", body = Agent),
        (status = 400, description = "`invalid_field`: empty note or bad days", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "`agent_not_found`", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`invalid_state`: decommissioned", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn review_agent(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<ReviewRequest>,
) -> ApiResult<Json<Agent>> {
    let name = agent_name(&name)?;
    let agent = state
        .engine
        .review_agent(&actor, &name, &req.note, req.days)
        .await?;
    Ok(Json(agent))
}

/// Parameters of the stale rule.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StaleParams {
    /// Days without a successful attestation or token (default: the server's rule, 90).
    pub days: Option<i64>,
}

/// Stale agents.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaleList {
    /// The agents the rule matches (or, after `suspend`, the ones suspended).
    pub items: Vec<StaleAgent>,
}

/// Active agents the stale rule matches.
#[utoipa::path(get, path = "/admin/v1/governance/stale", tag = "governance", params(StaleParams),
    responses((status = 200, description = "Stale agents", body = StaleList),
        (status = 400, description = "`invalid_field`: bad days", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn stale_agents(
    State(state): State<AppState>,
    QueryParams(p): QueryParams<StaleParams>,
) -> ApiResult<Json<StaleList>> {
    Ok(Json(StaleList {
        items: state.engine.stale_agents(p.days).await?,
    }))
}

/// Suspends every stale agent, which revokes its tokens. Each suspension
/// follows an `agent.stale` audit event with the reason.
#[utoipa::path(post, path = "/admin/v1/governance/stale/suspend", tag = "governance", params(StaleParams),
    responses((status = 200, description = "The agents suspended", body = StaleList),
        (status = 400, description = "`invalid_field`: bad days", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn suspend_stale(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    QueryParams(p): QueryParams<StaleParams>,
) -> ApiResult<Json<StaleList>> {
    Ok(Json(StaleList {
        items: state.engine.suspend_stale_agents(&actor, p.days).await?,
    }))
}

/// Filters of `GET /admin/v1/governance/findings`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FindingParams {
    /// Only this agent's.
    pub agent: Option<String>,
    /// Also acknowledged findings (default false).
    pub all: Option<bool>,
}

/// Drift findings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FindingList {
    /// Newest first (at most 500).
    pub items: Vec<Finding>,
}

/// Drift findings, open ones unless `all=true`.
#[utoipa::path(get, path = "/admin/v1/governance/findings", tag = "governance", params(FindingParams),
    responses((status = 200, description = "Newest first", body = FindingList)),
    security(("admin_token" = [])))]
pub(crate) async fn list_findings(
    State(state): State<AppState>,
    QueryParams(p): QueryParams<FindingParams>,
) -> ApiResult<Json<FindingList>> {
    let items = state
        .engine
        .list_findings(p.agent.as_deref(), p.all.unwrap_or(false))
        .await?;
    Ok(Json(FindingList { items }))
}

/// Body of `POST /admin/v1/governance/findings/{id}/ack`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// Why it is acknowledged.
    #[serde(default)]
    pub note: String,
}

/// Acknowledges a finding: it stops counting towards the agent's risk
/// score. Acknowledging twice changes nothing.
#[utoipa::path(post, path = "/admin/v1/governance/findings/{id}/ack", tag = "governance", request_body = AckRequest,
    params(("id" = String, Path, description = "Finding id")),
    responses((status = 200, description = "The finding", body = Finding),
        (status = 404, description = "`not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn ack_finding(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<AckRequest>,
) -> ApiResult<Json<Finding>> {
    Ok(Json(
        state.engine.ack_finding(&actor, &id, &req.note).await?,
    ))
}

/// Runs the drift detector over the audit events written since its last
/// run now, instead of waiting for the background interval.
#[utoipa::path(post, path = "/admin/v1/governance/detector/run", tag = "governance",
    responses((status = 200, description = "What the run read and raised", body = DriftRun)),
    security(("admin_token" = [])))]
pub(crate) async fn run_detector(State(state): State<AppState>) -> ApiResult<Json<DriftRun>> {
    Ok(Json(state.engine.run_drift_detector().await?))
}

/// The tools a resource offers.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolList {
    /// Tool names without the resource prefix (policies see
    /// `Tool::"<resource>/<tool>"`).
    pub tools: Vec<String>,
}

/// The tools a resource offers (what access review evaluates
/// `mcp:tools/call` on).
#[utoipa::path(get, path = "/admin/v1/resources/{name}/tools", tag = "governance",
    params(("name" = String, Path, description = "Resource name")),
    responses((status = 200, description = "Sorted", body = ToolList),
        (status = 404, description = "`resource_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn get_tools(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ToolList>> {
    Ok(Json(ToolList {
        tools: state.engine.resource_tools(&name).await?,
    }))
}

/// Replaces the tools a resource offers. They become policy entities
/// (`Tool::"<resource>/<tool>"` in `Resource::"<resource>"`).
#[utoipa::path(put, path = "/admin/v1/resources/{name}/tools", tag = "governance", request_body = ToolList,
    params(("name" = String, Path, description = "Resource name")),
    responses((status = 200, description = "The tools as stored", body = ToolList),
        (status = 400, description = "`invalid_field`: a bad tool name", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "`resource_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn set_tools(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<ToolList>,
) -> ApiResult<Json<ToolList>> {
    let tools = state
        .engine
        .set_resource_tools(&actor, &name, &req.tools)
        .await?;
    Ok(Json(ToolList { tools }))
}
