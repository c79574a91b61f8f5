//! The OpenID AuthZEN Authorization API 1.0 decision endpoints, for external
//! enforcement points: `POST /access/v1/evaluation`, `POST /access/v1/evaluations`
//! (batch) and `GET /.well-known/authzen-configuration`.
//!
//! Subjects and resources map to Cedar entities by `type` (`agent`, `user`,
//! `group`, `resource`, `tool`, `control_plane`); `action.name` is a Mandate
//! action (`token:issue`, `mcp:tools/call`, ...); `context` is Mandate's
//! request context. Registered agents always carry their inventory
//! attributes; `properties` describe entities the inventory does not know.
//! Every decision is audited with its determining policies.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use mandate_engine::Actor;
use mandate_policy::{
    Action, AgentEntity, Decision, EntityData, EntityRef, Request, RequestContext, ResourceEntity,
    ToolEntity, UserEntity,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::extract::JsonBody;
use crate::{ApiError, AppState};

pub(crate) fn guarded_router() -> Router<AppState> {
    Router::new()
        .route("/access/v1/evaluation", post(evaluation))
        .route("/access/v1/evaluations", post(evaluations))
}

pub(crate) fn public_router() -> Router<AppState> {
    Router::new().route("/.well-known/authzen-configuration", get(configuration))
}

/// An AuthZEN subject or resource.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct Entity {
    /// `agent`, `user`, `group`, `resource`, `tool` or `control_plane`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The entity's id, e.g. `invoice-bot` or `github/create_issue`.
    pub id: String,
    /// Attributes of an entity the inventory does not know.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Option<Map<String, Value>>,
}

/// An AuthZEN action (`properties` are accepted and ignored).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ActionName {
    /// A Mandate action, e.g. `token:issue`.
    pub name: String,
}

/// `POST /access/v1/evaluation`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct EvaluationRequest {
    /// Who asks.
    pub subject: Entity,
    /// What it wants to do.
    pub action: ActionName,
    /// To what.
    pub resource: Entity,
    /// Mandate's request context (`env`, `time`, `attestation`, `delegation`,
    /// `scopes`, `args`, `on_behalf_of`, `client_ip`, `risk`); `time`
    /// defaults to now.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub context: Option<Map<String, Value>>,
}

/// One item of a batch: whatever it leaves out comes from the batch's top level.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct EvaluationItem {
    /// Overrides the default subject.
    pub subject: Option<Entity>,
    /// Overrides the default action.
    pub action: Option<ActionName>,
    /// Overrides the default resource.
    pub resource: Option<Entity>,
    /// Overrides the default context.
    #[schema(value_type = Object)]
    pub context: Option<Map<String, Value>>,
}

/// Batch options.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct EvaluationOptions {
    /// `execute_all` (default), `deny_on_first_deny` or `permit_on_first_permit`.
    pub evaluations_semantic: Option<String>,
}

/// `POST /access/v1/evaluations`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct EvaluationsRequest {
    /// Default subject.
    pub subject: Option<Entity>,
    /// Default action.
    pub action: Option<ActionName>,
    /// Default resource.
    pub resource: Option<Entity>,
    /// Default context.
    #[schema(value_type = Object)]
    pub context: Option<Map<String, Value>>,
    /// The requests to decide; when absent, the top level is one request.
    pub evaluations: Option<Vec<EvaluationItem>>,
    /// How to run the batch.
    pub options: Option<EvaluationOptions>,
}

/// A decision.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EvaluationResponse {
    /// `true` to allow.
    pub decision: bool,
    /// Why: `reason_admin`, the determining `policies`, any `errors`, and the
    /// `policy_version` decided with.
    #[schema(value_type = Object)]
    pub context: Value,
}

/// Decisions of a batch, in request order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EvaluationsResponse {
    /// One per evaluated item (fewer when a short-circuit semantic stopped early).
    pub evaluations: Vec<EvaluationResponse>,
}

fn entity_ref(field: &'static str, e: &Entity) -> Result<EntityRef, ApiError> {
    let kind = e.kind.trim_start_matches("Mandate::").to_ascii_lowercase();
    let id = e.id.clone();
    if id.is_empty() {
        return Err(ApiError::invalid_field(
            format!("{field}.id"),
            format!("`{field}.id` must not be empty"),
        ));
    }
    Ok(match kind.as_str() {
        "agent" => EntityRef::Agent(id),
        "user" => EntityRef::User(id),
        "group" => EntityRef::Group(id),
        "resource" => EntityRef::Resource(id),
        "tool" => EntityRef::Tool(id),
        "control_plane" | "controlplane" => EntityRef::ControlPlane(id),
        other => {
            return Err(ApiError::invalid_field(
                format!("{field}.type"),
                format!(
                    "`{other}` is not one of `agent`, `user`, `group`, `resource`, `tool`, `control_plane`"
                ),
            ));
        }
    })
}

/// Adds an entity described by `properties` to `data`.
fn supply(
    field: &'static str,
    e: &Entity,
    r: &EntityRef,
    data: &mut EntityData,
) -> Result<(), ApiError> {
    let Some(props) = &e.properties else {
        return Ok(());
    };
    let mut obj = props.clone();
    obj.insert("id".into(), Value::String(e.id.clone()));
    let bad = |err: serde_json::Error| {
        ApiError::invalid_field(
            format!("{field}.properties"),
            format!("invalid `{field}.properties`: {err}"),
        )
    };
    let v = Value::Object(obj);
    match r {
        EntityRef::Agent(_) => data
            .agents
            .push(serde_json::from_value::<AgentEntity>(v).map_err(bad)?),
        EntityRef::User(_) => data
            .users
            .push(serde_json::from_value::<UserEntity>(v).map_err(bad)?),
        EntityRef::Resource(_) => data
            .resources
            .push(serde_json::from_value::<ResourceEntity>(v).map_err(bad)?),
        EntityRef::Tool(_) => data
            .tools
            .push(serde_json::from_value::<ToolEntity>(v).map_err(bad)?),
        EntityRef::Group(_) | EntityRef::ControlPlane(_) => {
            return Err(ApiError::invalid_field(
                format!("{field}.properties"),
                format!("`{field}.properties` are not accepted for this entity type"),
            ));
        }
    }
    Ok(())
}

fn context(ctx: Option<&Map<String, Value>>) -> Result<RequestContext, ApiError> {
    let mut obj = ctx.cloned().unwrap_or_default();
    if !obj.contains_key("time") {
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        obj.insert("time".into(), Value::String(now));
    }
    serde_json::from_value(Value::Object(obj))
        .map_err(|e| ApiError::invalid_field("context", format!("invalid `context`: {e}")))
}

fn build(
    subject: &Entity,
    action: &ActionName,
    resource: &Entity,
    ctx: Option<&Map<String, Value>>,
) -> Result<(Request, EntityData), ApiError> {
    let principal = entity_ref("subject", subject)?;
    let target = entity_ref("resource", resource)?;
    let action: Action = action.name.parse().map_err(|e: mandate_policy::Error| {
        ApiError::invalid_field("action.name", e.to_string())
    })?;
    let mut data = EntityData::default();
    supply("subject", subject, &principal, &mut data)?;
    supply("resource", resource, &target, &mut data)?;
    Ok((
        Request {
            principal,
            action,
            resource: target,
            context: context(ctx)?,
        },
        data,
    ))
}

fn response(d: &Decision, version: Option<i64>) -> EvaluationResponse {
    let reason = if d.is_allowed() {
        format!("allowed by {}", d.determining_policies.join(", "))
    } else if !d.errors.is_empty() {
        "denied: evaluation error".to_owned()
    } else if d.determining_policies.is_empty() {
        "denied: no policy permits this request".to_owned()
    } else {
        format!("denied by {}", d.determining_policies.join(", "))
    };
    EvaluationResponse {
        decision: d.is_allowed(),
        context: serde_json::json!({
            "reason_admin": { "en": reason },
            "policies": d.determining_policies,
            "errors": d.errors,
            "policy_version": version,
        }),
    }
}

/// Decides one request.
#[utoipa::path(post, path = "/access/v1/evaluation", tag = "authzen", request_body = EvaluationRequest,
    responses((status = 200, description = "The decision", body = EvaluationResponse),
        (status = 400, description = "A field is invalid", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn evaluation(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<EvaluationRequest>,
) -> Result<Json<EvaluationResponse>, ApiError> {
    let (request, data) = build(
        &req.subject,
        &req.action,
        &req.resource,
        req.context.as_ref(),
    )?;
    let d = state
        .engine
        .decide(&actor.token_id, &request, &data)
        .await?;
    Ok(Json(response(&d, state.engine.loaded_policy_version())))
}

/// Decides a batch of requests.
#[utoipa::path(post, path = "/access/v1/evaluations", tag = "authzen", request_body = EvaluationsRequest,
    responses((status = 200, description = "The decisions", body = EvaluationsResponse),
        (status = 400, description = "A field is invalid", body = crate::problem::Problem, content_type = "application/problem+json")),
    security(("admin_token" = [])))]
pub(crate) async fn evaluations(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<EvaluationsRequest>,
) -> Result<Json<EvaluationsResponse>, ApiError> {
    const MAX_BATCH: usize = 200;
    let items = req
        .evaluations
        .clone()
        .unwrap_or_else(|| vec![EvaluationItem::default()]);
    if items.len() > MAX_BATCH {
        return Err(ApiError::invalid_field(
            "evaluations",
            format!("at most {MAX_BATCH} evaluations per request"),
        ));
    }
    let semantic = req
        .options
        .as_ref()
        .and_then(|o| o.evaluations_semantic.as_deref())
        .unwrap_or("execute_all");
    if !matches!(
        semantic,
        "execute_all" | "deny_on_first_deny" | "permit_on_first_permit"
    ) {
        return Err(ApiError::invalid_field(
            "options.evaluations_semantic",
            format!("unknown semantic `{semantic}`"),
        ));
    }
    // Validate every item before deciding any, so a bad item decides nothing.
    let mut built = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let missing = |what: &str| {
            ApiError::invalid_field(
                "evaluations",
                format!("evaluation {i} has no `{what}` and the batch has no default"),
            )
        };
        let subject = item
            .subject
            .as_ref()
            .or(req.subject.as_ref())
            .ok_or_else(|| missing("subject"))?;
        let action = item
            .action
            .as_ref()
            .or(req.action.as_ref())
            .ok_or_else(|| missing("action"))?;
        let resource = item
            .resource
            .as_ref()
            .or(req.resource.as_ref())
            .ok_or_else(|| missing("resource"))?;
        let ctx = item.context.as_ref().or(req.context.as_ref());
        built.push(build(subject, action, resource, ctx)?);
    }
    let mut out = Vec::with_capacity(built.len());
    for (request, data) in &built {
        let d = state.engine.decide(&actor.token_id, request, data).await?;
        let allowed = d.is_allowed();
        out.push(response(&d, state.engine.loaded_policy_version()));
        if (semantic == "deny_on_first_deny" && !allowed)
            || (semantic == "permit_on_first_permit" && allowed)
        {
            break;
        }
    }
    Ok(Json(EvaluationsResponse { evaluations: out }))
}

/// AuthZEN policy decision point metadata.
pub(crate) async fn configuration(State(state): State<AppState>) -> Json<Value> {
    let base = state.public_url.trim_end_matches('/');
    Json(serde_json::json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
    }))
}
