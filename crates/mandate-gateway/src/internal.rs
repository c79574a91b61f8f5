//! The internal API a Mandate serves to its standalone gateways, at
//! [`INTERNAL_PATH`]: each caller presents a Mandate access token for
//! `<issuer>/internal/v1/gateway` with scope `mandate:gateway` (obtained
//! like any agent's token, so the gateway has an identity, an owner and a
//! kill switch), `Bearer` or DPoP-bound. Answers are RFC 9457 problems on
//! error. Every credential handed out is audited as
//! `gateway.credential_fetched` (never its value), every refused caller as
//! `gateway.internal_rejected`, and the events a gateway ships carry its
//! name.

use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderMap, HeaderValue, header};
use mandate_core::{AuditDraft, EventKind, Outcome};
use mandate_engine::Engine;
use mandate_engine::oauth::Presented;
use serde_json::{Value, json};

use crate::plane::{Plane, decide_locally, undecided, upstream_jwt_for};
use crate::verify;
use crate::wire::{
    AuditRequest, AuthenticateAnswer, AuthenticateRequest, CredentialAnswer, CredentialRequest,
    DecisionsAnswer, DecisionsRequest, GATEWAY_SCOPE, INTERNAL_PATH, RouteAnswer,
    UpstreamJwtAnswer, UpstreamJwtRequest,
};
use crate::{Gateway, problem};

/// Largest request body of the internal API.
const MAX_BODY: usize = 4 * 1024 * 1024;

#[derive(Clone)]
struct Internal {
    gw: Gateway,
    engine: Engine,
}

/// The standalone gateway calling (its agent name).
#[derive(Clone)]
struct Caller(String);

impl Gateway {
    /// The internal API for standalone gateways, served by a Mandate (a
    /// gateway whose control plane is the engine of its own process).
    /// `None` for a standalone gateway.
    pub fn internal_router(&self) -> Option<Router> {
        let Plane::Local(engine) = &self.inner.plane else {
            return None;
        };
        let state = Internal {
            gw: self.clone(),
            engine: engine.clone(),
        };
        // Full paths, not a nested router: the caller check compares the
        // DPoP proof's `htu` with the request's whole path.
        let at = |p: &str| format!("{INTERNAL_PATH}{p}");
        let api = Router::new()
            .route(&at("/routes/{name}"), get(route))
            .route(&at("/authenticate"), post(authenticate))
            .route(&at("/decisions"), post(decisions))
            .route(&at("/audit"), post(audit))
            .route(&at("/credentials/{name}"), post(credential))
            .route(&at("/upstream-jwt"), post(upstream_jwt))
            .layer(axum::middleware::from_fn_with_state(state.clone(), caller))
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
            .with_state(state);
        Some(api)
    }
}

fn bad_request(detail: &str) -> Response {
    problem::problem(400, "invalid_request", "Bad request", detail)
}

/// Admits callers holding a Mandate token for the internal API.
async fn caller(State(s): State<Internal>, mut req: Request, next: Next) -> Response {
    let refuse = |status: u16, error: &str, why: String| {
        let (code, title) = match status {
            403 => ("insufficient_scope", "Forbidden"),
            400 => ("invalid_request", "Bad request"),
            _ => ("unauthorized", "Unauthorized"),
        };
        let mut resp = problem::problem(status, code, title, &why);
        let value = format!(
            "Bearer error=\"{error}\", error_description=\"{}\"",
            why.replace(['"', '\\'], "'")
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        (resp, why)
    };
    let (scheme, token) = match verify::credentials(req.headers()) {
        Ok(Some((s, t))) => (s.to_owned(), t.to_owned()),
        Ok(None) => {
            let (resp, why) = refuse(401, "invalid_token", "no access token".into());
            return rejected(&s.engine, resp, why).await;
        }
        Err(r) => {
            let (resp, why) = refuse(r.status, r.error.unwrap_or("invalid_token"), r.description);
            return rejected(&s.engine, resp, why).await;
        }
    };
    let proof = req
        .headers()
        .get("dpop")
        .map(|v| v.to_str().unwrap_or("\u{0}").to_owned());
    let config = &s.gw.inner.config;
    let url = format!("{}{}", config.public_url, req.uri().path());
    let audience = format!("{}{INTERNAL_PATH}", config.authorization_server);
    let presented = Presented {
        scheme: &scheme,
        token: &token,
        proof: proof.as_deref(),
        method: req.method().as_str(),
        url: &url,
    };
    // The caller's token verified once and then found by its hash, as a
    // route's tokens are (a revocation anywhere drops the cached entry);
    // its audience, binding (the DPoP proof, on every call) and scope are
    // checked on every call.
    let verified = match s.gw.inner.verified.verified(&s.engine, &token).await {
        Ok(t) => t,
        Err(r) if r.status == 503 => return problem::unavailable(&r.description),
        Err(r) => {
            let (resp, why) = refuse(401, "invalid_token", r.description);
            return rejected(&s.engine, resp, why).await;
        }
    };
    let t = match s
        .engine
        .check_verified_presented(verified, presented, &audience, GATEWAY_SCOPE)
        .await
    {
        Ok(Ok(t)) => t,
        Ok(Err(r)) => {
            let status = if r.error == "insufficient_scope" {
                403
            } else {
                401
            };
            let (resp, why) = refuse(status, r.error, r.description);
            return rejected(&s.engine, resp, why).await;
        }
        Err(e) => return problem::unavailable(&format!("the caller cannot be checked: {e}")),
    };
    req.extensions_mut().insert(Caller(t.record.agent.clone()));
    next.run(req).await
}

/// Audits a refused caller, then answers.
async fn rejected(engine: &Engine, resp: Response, why: String) -> Response {
    let draft = AuditDraft::new(
        mandate_core::EventKind::GatewayInternalRejected,
        Outcome::Denied,
    )
    .target(INTERNAL_PATH.trim_start_matches('/').to_owned())
    .detail(json!({"status": resp.status().as_u16(), "reason": why}));
    match engine.audit_gateway(draft, true).await {
        Ok(()) => resp,
        Err(_) => problem::unavailable("the audit log cannot be written"),
    }
}

async fn route(State(s): State<Internal>, Path(name): Path<String>) -> Response {
    match s.engine.gateway_route(&name).await {
        Ok(route) => {
            let scopes = match route {
                Some(_) => s.gw.inner.plane.scopes(&name).await,
                None => Vec::new(),
            };
            Json(RouteAnswer { route, scopes }).into_response()
        }
        Err(e) => problem::unavailable(&format!("routes cannot be read: {e}")),
    }
}

async fn authenticate(State(s): State<Internal>, Json(req): Json<AuthenticateRequest>) -> Response {
    let refused = |r: verify::Refusal| AuthenticateAnswer::Refused {
        status: r.status,
        error: r.error.map(str::to_owned),
        description: r.description,
        scope: r.scope,
    };
    let route = match s.engine.gateway_route(&req.resource).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            let r =
                verify::Refusal::new(401, "invalid_token", format!("no route `{}`", req.resource));
            return Json(refused(r)).into_response();
        }
        Err(e) => return problem::unavailable(&format!("routes cannot be read: {e}")),
    };
    let mut headers = HeaderMap::new();
    let Ok(auth) = HeaderValue::from_str(&req.authorization) else {
        return bad_request("`authorization` is not a header value");
    };
    headers.insert(header::AUTHORIZATION, auth);
    if let Some(p) = &req.dpop {
        let Ok(v) = HeaderValue::from_str(p) else {
            return bad_request("`dpop` is not a header value");
        };
        headers.insert("dpop", v);
    }
    let answer = match s
        .gw
        .inner
        .verified
        .authenticate(&s.engine, &route, &req.method, &req.url, &headers)
        .await
    {
        Ok(t) => {
            let decisions = req
                .calls
                .into_iter()
                .map(|c| decide_locally(&s.engine, &t, &route.name, req.client_ip, c))
                .collect();
            AuthenticateAnswer::Token {
                token: Box::new((*t).clone()),
                decisions,
            }
        }
        Err(r) if r.status == 503 => return problem::unavailable(&r.description),
        Err(r) => refused(r),
    };
    Json(answer).into_response()
}

async fn decisions(State(s): State<Internal>, Json(req): Json<DecisionsRequest>) -> Response {
    let n = req.calls.len();
    let deny_all = |why: String| {
        Json(DecisionsAnswer {
            decisions: vec![undecided(why); n],
        })
        .into_response()
    };
    let route = match s.engine.gateway_route(&req.resource).await {
        Ok(Some(r)) => r,
        Ok(None) => return deny_all(format!("no route `{}`", req.resource)),
        Err(e) => return problem::unavailable(&format!("routes cannot be read: {e}")),
    };
    let token = match s.gw.inner.verified.verified(&s.engine, &req.token).await {
        Ok(t) => t,
        Err(r) if r.status == 503 => return problem::unavailable(&r.description),
        Err(r) => return deny_all(format!("the token is not valid: {}", r.description)),
    };
    if token.audience != route.audience {
        return deny_all("the token is not for this route".into());
    }
    let decisions = req
        .calls
        .into_iter()
        .map(|c| decide_locally(&s.engine, &token, &route.name, req.client_ip, c))
        .collect();
    Json(DecisionsAnswer { decisions }).into_response()
}

async fn audit(
    State(s): State<Internal>,
    axum::Extension(Caller(gateway)): axum::Extension<Caller>,
    Json(req): Json<AuditRequest>,
) -> Response {
    let mut drafts = Vec::with_capacity(req.events.len());
    for e in req.events {
        // The kinds a gateway's calls make, and no other (the control
        // plane writes `gateway.credential_fetched` itself).
        let kind = match EventKind::parse(&e.event_type) {
            Some(k @ (EventKind::GatewayRequest | EventKind::GatewayMcp)) => k,
            _ => {
                return bad_request(&format!(
                    "`{}`: a gateway ships only the events of its calls, `gateway.request` and `gateway.mcp`",
                    e.event_type
                ));
            }
        };
        let Some(outcome) = Outcome::parse(&e.outcome) else {
            return bad_request(&format!("`{}` is not an outcome", e.outcome));
        };
        let Value::Object(mut detail) = e.detail else {
            return bad_request("`detail` must be an object");
        };
        detail.insert("gateway".into(), gateway.clone().into());
        let mut draft = AuditDraft::new(kind, outcome)
            .actor_opt(e.actor)
            .detail(Value::Object(detail));
        draft.target = e.target;
        drafts.push(draft);
    }
    let n = drafts.len();
    let writes = drafts
        .into_iter()
        .map(|d| s.engine.audit_gateway(d, req.durable));
    for r in futures_util::future::join_all(writes).await {
        if let Err(e) = r {
            tracing::error!(error = %e, "cannot write a standalone gateway's audit event");
            return problem::unavailable("the audit log cannot be written");
        }
    }
    Json(json!({ "written": n })).into_response()
}

async fn credential(
    State(s): State<Internal>,
    axum::Extension(Caller(gateway)): axum::Extension<Caller>,
    Path(name): Path<String>,
    Json(req): Json<CredentialRequest>,
) -> Response {
    match s.engine.credential_in_use(&name).await {
        Ok(true) => {}
        Ok(false) => {
            return problem::problem(
                404,
                "not_found",
                "Not found",
                &format!("no route injects a credential `{name}`"),
            );
        }
        Err(e) => return problem::unavailable(&format!("routes cannot be read: {e}")),
    }
    let opened = match s
        .gw
        .inner
        .plane
        .credential(&name, req.known_updated_at)
        .await
    {
        Ok(o) => o,
        Err(e) => return problem::unavailable(&format!("credential `{name}`: {e}")),
    };
    let Some((opened, updated_at)) = opened else {
        return Json(CredentialAnswer::Unchanged).into_response();
    };
    let draft = AuditDraft::new(
        mandate_core::EventKind::GatewayCredentialFetched,
        Outcome::Success,
    )
    .actor(format!("agent:{gateway}"))
    .target(format!("credential:{name}"))
    .detail(json!({
        "credential": name,
        "kind": opened.kind,
        "gateway": gateway,
        "version": updated_at.unix_timestamp(),
    }));
    if s.engine.audit_gateway(draft, true).await.is_err() {
        return problem::unavailable("the audit log cannot be written");
    }
    let value = opened.value.map(|v| {
        use mandate_jose::ExposeSecret;
        v.expose_secret().to_owned()
    });
    let mut resp = Json(CredentialAnswer::Opened {
        kind: opened.kind,
        config: opened.config,
        value,
        updated_at,
    })
    .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn upstream_jwt(State(s): State<Internal>, Json(req): Json<UpstreamJwtRequest>) -> Response {
    let route = match s.engine.gateway_route(&req.resource).await {
        Ok(Some(r)) => r,
        Ok(None) => return bad_request(&format!("no route `{}`", req.resource)),
        Err(e) => return problem::unavailable(&format!("routes cannot be read: {e}")),
    };
    let token = match s.gw.inner.verified.verified(&s.engine, &req.token).await {
        Ok(t) if t.audience == route.audience => t,
        Ok(_) => return bad_request("the token is not for this route"),
        Err(r) if r.status == 503 => return problem::unavailable(&r.description),
        Err(r) => return bad_request(&format!("the token is not valid: {}", r.description)),
    };
    let ttl = time::Duration::seconds(i64::try_from(req.ttl_secs).unwrap_or(i64::MAX));
    match s
        .engine
        .mint_upstream_jwt(upstream_jwt_for(&token, req.audience, ttl))
        .await
    {
        Ok((jwt, exp)) => {
            let mut resp = Json(UpstreamJwtAnswer { jwt, exp }).into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => bad_request(&e.to_string()),
    }
}
