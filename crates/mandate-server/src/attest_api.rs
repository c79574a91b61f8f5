//! Admin endpoints for attestation: trust providers, binding rules, shadow
//! agents, join tokens, and the dry-run `POST /attest`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use mandate_attest::ProviderSpec;
use mandate_attest::binding::ClaimMatch;
use mandate_core::AgentName;
use mandate_engine::{Actor, AttestReport, Binding, ProviderInfo, Shadow};
use mandate_jose::secret::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::extract::{JsonBody, QueryParams};
use crate::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/providers", post(add_provider).get(list_providers))
        .route(
            "/providers/{name}",
            get(get_provider).delete(remove_provider),
        )
        .route("/bindings", post(add_binding).get(list_bindings))
        .route("/bindings/{id}", delete(remove_binding))
        .route("/shadows", get(list_shadows))
        .route("/join-tokens", post(create_join_token))
        .route("/attest", post(attest))
}

type ApiResult<T> = Result<T, ApiError>;

/// Body of `POST /admin/v1/providers`: a name, `kind` and its `config`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddProviderRequest {
    /// Unique name (a DNS label).
    pub name: String,
    /// Allow fetches to private and loopback addresses (tests, on-prem).
    #[serde(default)]
    pub allow_private_network: bool,
    /// Kind and configuration.
    #[serde(flatten)]
    pub spec: ProviderSpec,
}

/// Providers, by name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderList {
    /// The providers.
    pub items: Vec<ProviderInfo>,
}

/// Body of `POST /admin/v1/bindings`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddBindingRequest {
    /// The provider.
    pub provider: String,
    /// The agent.
    pub agent: String,
    /// Conditions, all of which must hold.
    pub matches: Vec<ClaimMatch>,
}

/// Binding rules.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BindingList {
    /// The rules, oldest first.
    pub items: Vec<Binding>,
}

/// Shadow agents.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShadowList {
    /// Most recently seen first.
    pub items: Vec<Shadow>,
}

/// Filter by provider.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProviderFilter {
    /// Only this provider's.
    pub provider: Option<String>,
}

/// Body of `POST /admin/v1/join-tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJoinTokenRequest {
    /// A `join-token` provider.
    pub provider: String,
    /// The agent the token attests as.
    pub agent: String,
    /// Lifetime in seconds (default: the provider's, else 3600).
    pub expires_in_secs: Option<i64>,
}

/// A created join token: the only time its value is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedJoinToken {
    /// Public id.
    pub id: String,
    /// The provider.
    pub provider: String,
    /// The agent.
    pub agent: String,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// `mjt_<id>_<secret>`: give it to the workload; it works once.
    pub token: String,
}

/// Body of `POST /admin/v1/attest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestRequest {
    /// The provider.
    pub provider: String,
    /// The evidence as text: a JWT, a join token, the AWS `rsa2048` PKCS#7,
    /// or `{"document", "signature"}` JSON.
    pub evidence: String,
}

fn agent_name(s: &str) -> ApiResult<AgentName> {
    s.parse::<AgentName>()
        .map_err(|e| ApiError::invalid_field("agent", e.to_string()))
}

/// Adds a trust provider. The configuration is checked (issuer, URLs
/// against the SSRF rules, inline keys); nothing is fetched yet.
#[utoipa::path(post, path = "/admin/v1/providers", tag = "attestation", request_body = AddProviderRequest,
    responses((status = 201, description = "Added", body = ProviderInfo),
        (status = 400, description = "`invalid_field` (`config`)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "`provider_exists`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn add_provider(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<AddProviderRequest>,
) -> ApiResult<(StatusCode, Json<ProviderInfo>)> {
    let p = state
        .engine
        .add_provider(&actor, &req.name, req.spec, req.allow_private_network)
        .await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// Lists trust providers.
#[utoipa::path(get, path = "/admin/v1/providers", tag = "attestation",
    responses((status = 200, description = "By name", body = ProviderList)),
    security(("admin_token" = [])))]
pub(crate) async fn list_providers(State(state): State<AppState>) -> ApiResult<Json<ProviderList>> {
    Ok(Json(ProviderList {
        items: state.engine.list_providers().await?,
    }))
}

/// One trust provider, with its key cache state.
#[utoipa::path(get, path = "/admin/v1/providers/{name}", tag = "attestation",
    params(("name" = String, Path, description = "Provider name")),
    responses((status = 200, description = "The provider", body = ProviderInfo),
        (status = 404, description = "`provider_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn get_provider(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<ProviderInfo>> {
    Ok(Json(state.engine.provider(&name).await?))
}

/// Removes a provider with its binding rules, join tokens and shadows.
#[utoipa::path(delete, path = "/admin/v1/providers/{name}", tag = "attestation",
    params(("name" = String, Path, description = "Provider name")),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "`provider_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn remove_provider(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.remove_provider(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a binding rule. A rule that ties with an existing one (same
/// specificity, could match the same attestation) is refused.
#[utoipa::path(post, path = "/admin/v1/bindings", tag = "attestation", request_body = AddBindingRequest,
    responses((status = 201, description = "Added", body = Binding),
        (status = 409, description = "`binding_tie`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn add_binding(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<AddBindingRequest>,
) -> ApiResult<(StatusCode, Json<Binding>)> {
    let agent = agent_name(&req.agent)?;
    let b = state
        .engine
        .add_binding(&actor, &req.provider, &agent, req.matches)
        .await?;
    Ok((StatusCode::CREATED, Json(b)))
}

/// Lists binding rules.
#[utoipa::path(get, path = "/admin/v1/bindings", tag = "attestation", params(ProviderFilter),
    responses((status = 200, description = "Oldest first", body = BindingList)),
    security(("admin_token" = [])))]
pub(crate) async fn list_bindings(
    State(state): State<AppState>,
    QueryParams(f): QueryParams<ProviderFilter>,
) -> ApiResult<Json<BindingList>> {
    Ok(Json(BindingList {
        items: state.engine.list_bindings(f.provider.as_deref()).await?,
    }))
}

/// Removes a binding rule.
#[utoipa::path(delete, path = "/admin/v1/bindings/{id}", tag = "attestation",
    params(("id" = String, Path, description = "Rule id")),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "`binding_not_found`", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn remove_binding(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.remove_binding(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists shadow agents: verified workloads no binding rule maps.
#[utoipa::path(get, path = "/admin/v1/shadows", tag = "attestation", params(ProviderFilter),
    responses((status = 200, description = "Most recently seen first", body = ShadowList)),
    security(("admin_token" = [])))]
pub(crate) async fn list_shadows(
    State(state): State<AppState>,
    QueryParams(f): QueryParams<ProviderFilter>,
) -> ApiResult<Json<ShadowList>> {
    Ok(Json(ShadowList {
        items: state.engine.list_shadows(f.provider.as_deref()).await?,
    }))
}

/// Creates a one-time join token for an agent.
#[utoipa::path(post, path = "/admin/v1/join-tokens", tag = "attestation", request_body = CreateJoinTokenRequest,
    responses((status = 201, description = "Created; the token is shown once", body = CreatedJoinToken)),
    security(("admin_token" = [])))]
pub(crate) async fn create_join_token(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<CreateJoinTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedJoinToken>)> {
    let agent = agent_name(&req.agent)?;
    let t = state
        .engine
        .create_join_token(&actor, &req.provider, &agent, req.expires_in_secs)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedJoinToken {
            token: t.token.expose_secret().to_owned(),
            id: t.id,
            provider: t.provider,
            agent: t.agent,
            expires_at: t.expires_at,
        }),
    ))
}

/// Dry run: verifies evidence and maps it to an agent, issuing nothing and
/// changing no agent, join token or instance binding. The attestation is
/// audited (and a shadow recorded) as any other. A refusal is a 200 answer
/// with `outcome` `refused` and the exact reason.
#[utoipa::path(post, path = "/admin/v1/attest", tag = "attestation", request_body = AttestRequest,
    responses((status = 200, description = "The outcome", body = AttestReport)),
    security(("admin_token" = [])))]
pub(crate) async fn attest(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<AttestRequest>,
) -> ApiResult<Json<AttestReport>> {
    Ok(Json(
        state
            .engine
            .attest_dry_run(&actor, &req.provider, req.evidence.as_bytes())
            .await?,
    ))
}
