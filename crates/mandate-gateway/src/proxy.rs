//! One request through a route: find the route, refuse bad shapes,
//! authenticate, decide, strip, inject, forward (bodies streamed both ways),
//! scrub what comes back, audit, answer. The audit event is written before
//! the answer leaves; if it cannot be, the caller gets 503 instead.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use mandate_core::{AuditDraft, Outcome};
use mandate_engine::gateway::{CallDecision, GatewayRoute};
use mandate_engine::oauth::AccessToken;
use mandate_policy::{Action, HttpRequest};
use serde_json::{Value, json};

use crate::credential::{Credential, InjectContext, Outbound};
use crate::headers::{self, BadShape, Scrubber};
use crate::verify::Refusal;
use crate::wire::CallSpec;
use crate::{Gateway, mcp, problem};

/// Longest tail of an upstream body chunk held back because it could be
/// the start of a secret the next chunk completes.
const SCRUB_CARRY_MAX: usize = 4096;

/// The gateway's audit event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    /// An HTTP route's request, or a refusal before the route's kind
    /// matters.
    Request,
    /// One MCP message (or an MCP GET stream or DELETE).
    Mcp,
}

impl EventType {
    pub(crate) fn kind(self) -> mandate_core::EventKind {
        match self {
            Self::Request => mandate_core::EventKind::GatewayRequest,
            Self::Mcp => mandate_core::EventKind::GatewayMcp,
        }
    }
}

/// How a gateway call ended: its event's `result`, which decides the
/// event's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallResult {
    /// Allowed and forwarded; the upstream answered (`upstream_status`
    /// says with what).
    Answered,
    /// Allowed, but the upstream or its credential failed: the client got
    /// the gateway's 502/503/504 (`status`, `error`).
    UpstreamFailed,
    /// Refused by policy.
    PolicyDenied,
    /// Refused by authentication: no token, an invalid or revoked one, a
    /// missing scope, a bad DPoP proof.
    AuthRefused,
    /// Refused for its shape before it was decided: path, method
    /// override, framing, body.
    BadRequest,
    /// No such route.
    NoRoute,
}

impl CallResult {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::UpstreamFailed => "upstream_failed",
            Self::PolicyDenied => "policy_denied",
            Self::AuthRefused => "auth_refused",
            Self::BadRequest => "bad_request",
            Self::NoRoute => "no_route",
        }
    }

    pub(crate) fn outcome(self) -> Outcome {
        match self {
            Self::Answered => Outcome::Success,
            Self::UpstreamFailed => Outcome::Failed,
            Self::PolicyDenied | Self::AuthRefused | Self::BadRequest | Self::NoRoute => {
                Outcome::Denied
            }
        }
    }
}

/// The audit event of one request, filled in as facts are established.
pub(crate) struct Audit {
    pub(crate) detail: serde_json::Map<String, Value>,
    agent: Option<String>,
    target: String,
    started: Instant,
}

impl Audit {
    fn new(
        resource: &str,
        method: &Method,
        path: &str,
        request_id: &str,
        ip: Option<IpAddr>,
    ) -> Self {
        let mut detail = serde_json::Map::new();
        detail.insert("resource".into(), resource.into());
        detail.insert("method".into(), method.as_str().into());
        detail.insert(
            "path".into(),
            if path.is_empty() { "/" } else { path }.into(),
        );
        detail.insert("request_id".into(), request_id.into());
        if let Some(ip) = ip {
            detail.insert("client_ip".into(), ip.to_string().into());
        }
        Self {
            detail,
            agent: None,
            target: format!("resource:{resource}"),
            started: Instant::now(),
        }
    }

    /// Takes the event out (for writing), leaving an empty one.
    pub(crate) fn take(&mut self) -> Self {
        std::mem::replace(
            self,
            Self {
                detail: serde_json::Map::new(),
                agent: None,
                target: String::new(),
                started: self.started,
            },
        )
    }

    /// A copy, for an event of its own (one per MCP message).
    pub(crate) fn copy(&self) -> Self {
        Self {
            detail: self.detail.clone(),
            agent: self.agent.clone(),
            target: self.target.clone(),
            started: self.started,
        }
    }

    pub(crate) fn set(&mut self, k: &str, v: impl Into<Value>) {
        self.detail.insert(k.to_owned(), v.into());
    }

    fn token(&mut self, t: &AccessToken) {
        self.agent = Some(t.record.agent.clone());
        self.set("agent", t.record.agent.clone());
        self.set("sub", t.subject.clone());
        self.set("chain", t.record.chain.clone());
        self.set("txn", t.record.txn.clone());
        self.set("jti", t.record.jti.clone());
    }

    pub(crate) fn decision(&mut self, d: &CallDecision) {
        self.set(
            "decision",
            json!({
                "effect": if d.allowed { "allow" } else { "deny" },
                "policies": d.policies,
                "errors": d.errors,
                "policy_version": d.policy_version,
            }),
        );
    }

    fn latency(&mut self) {
        let micros = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.set("latency_us", micros);
    }

    /// Writes the event, with the `result` and the `status` the client
    /// gets.
    pub(crate) async fn write(
        mut self,
        gw: &Gateway,
        event_type: EventType,
        result: CallResult,
        status: StatusCode,
    ) -> Result<(), Response> {
        self.latency();
        self.set("result", result.as_str());
        self.set("status", status.as_u16());
        let draft = AuditDraft::new(event_type.kind(), result.outcome())
            .actor_opt(self.agent.take())
            .target(self.target.clone())
            .detail(Value::Object(self.detail));
        let durable = gw.inner.config.durable_audit;
        gw.inner.plane.audit(draft, durable).await.map_err(|e| {
            tracing::error!(error = %e, "cannot write the gateway's audit event");
            problem::unavailable("the audit log cannot be written")
        })
    }
}

/// Handles one request to route `resource` at `rest` (below the route).
pub(crate) async fn handle(
    gw: Gateway,
    resource: String,
    rest: String,
    client_ip: Option<IpAddr>,
    req: Request,
) -> Response {
    let request_id = match mandate_jose::random::id(20) {
        Ok(id) => format!("req_{id}"),
        Err(_) => return problem::unavailable("no randomness for a request id"),
    };
    let (parts, body) = req.into_parts();
    let origin = parts.headers.get(header::ORIGIN).cloned();
    let mut audit = Audit::new(&resource, &parts.method, &rest, &request_id, client_ip);
    let mut resp = handle_inner(&gw, &resource, &rest, client_ip, parts, body, &mut audit).await;
    if let Some(origin) = origin {
        cors_headers(resp.headers_mut(), &origin);
    }
    resp
}

/// CORS for browser clients: any origin may call (the token, not the
/// origin, is the credential; no cookies are used), and scripts may read
/// the challenge and the MCP session.
fn cors_headers(h: &mut HeaderMap, origin: &HeaderValue) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("WWW-Authenticate, Mcp-Session-Id, DPoP-Nonce, X-Request-Id"),
    );
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

fn preflight() -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "Authorization, DPoP, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID",
        ),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    resp
}

fn refused(gw: &Gateway, resource: &str, r: &Refusal) -> Response {
    let (code, title) = match (r.status, r.error) {
        (401, _) => ("unauthorized", "Unauthorized"),
        (403, _) => ("insufficient_scope", "Insufficient scope"),
        (400, _) => ("invalid_request", "Bad request"),
        _ => ("unavailable", "Service unavailable"),
    };
    let mut resp = problem::problem(r.status, code, title, &r.description);
    if matches!(r.status, 401 | 403) {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            problem::challenge(
                &gw.metadata_url(resource),
                r.error,
                &r.description,
                r.scope.as_deref(),
            ),
        );
    }
    resp
}

async fn handle_inner(
    gw: &Gateway,
    resource: &str,
    raw_rest: &str,
    client_ip: Option<IpAddr>,
    parts: http::request::Parts,
    body: Body,
    audit: &mut Audit,
) -> Response {
    let route = match gw.inner.plane.route(resource).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            audit.set("error", "route_not_found");
            return finish_refusal(gw, audit, CallResult::NoRoute, problem::not_found(resource))
                .await;
        }
        Err(e) => return problem::unavailable(&format!("routes cannot be read: {e}")),
    };
    if parts.method == Method::OPTIONS
        && parts.headers.contains_key(header::ORIGIN)
        && parts
            .headers
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return preflight();
    }
    if let Err(BadShape(why)) = headers::check_shape(&parts.headers) {
        audit.set("error", "invalid_request");
        audit.set("error_description", why.clone());
        let resp = problem::problem(400, "invalid_request", "Bad request", &why);
        return finish_refusal(gw, audit, CallResult::BadRequest, resp).await;
    }
    if let Some(name) = headers::method_override(&parts.headers, parts.uri.query()) {
        let why = format!(
            "`{name}` asks the upstream for another method than the request's; \
             the gateway decides on the request's method and forwards no override"
        );
        audit.set("error", "method_override");
        audit.set("error_description", why.clone());
        let resp = problem::problem(400, "method_override", "Bad request", &why);
        return finish_refusal(gw, audit, CallResult::BadRequest, resp).await;
    }
    // INVARIANT (one path): from here on `rest` is the canonical path; the
    // policy decides on it, the audit records it, the upstream receives it.
    let rest = match crate::path::canonical(raw_rest, route.route.empty_segments) {
        Ok(p) => p,
        Err(refusal) => {
            audit.set("error", "invalid_path");
            audit.set("path_refusal", refusal.code());
            audit.set("error_description", refusal.to_string());
            let resp = problem::problem(400, "invalid_path", "Bad request", &refusal.to_string());
            return finish_refusal(gw, audit, CallResult::BadRequest, resp).await;
        }
    };
    if rest != raw_rest {
        audit.set("raw_path", if raw_rest.is_empty() { "/" } else { raw_rest });
        audit.set("path", if rest.is_empty() { "/" } else { rest.as_str() });
    }
    let rest = rest.as_str();
    let url = format!("{}{rest}", gw.route_url(resource));
    // An HTTP route's decision depends only on the method and path: asked
    // with the token check, it costs a remote control plane no extra trip.
    let http_call = (route.kind != "mcp").then(|| http_call(&parts.method, rest));
    let presented = crate::plane::Presented {
        method: parts.method.as_str(),
        url: &url,
        headers: &parts.headers,
        client_ip,
    };
    let (token, pre_decided) = match gw
        .inner
        .plane
        .authenticate(
            &gw.inner.verified,
            &route,
            presented,
            http_call.iter().cloned().collect(),
        )
        .await
    {
        Ok((t, mut decided)) => (t, decided.pop()),
        Err(r) => {
            audit.set("error", r.error.unwrap_or("missing_token"));
            audit.set("error_description", r.description.clone());
            let resp = refused(gw, resource, &r);
            if r.status == 503 {
                return resp;
            }
            return finish_refusal(gw, audit, CallResult::AuthRefused, resp).await;
        }
    };
    audit.token(&token);
    let token_text = crate::verify::presented_token(&parts.headers)
        .unwrap_or_default()
        .to_owned();
    let call = Call {
        gw,
        route: &route,
        token: &token,
        token_text: &token_text,
        rest,
        client_ip,
    };
    match http_call {
        None => mcp::handle(&call, parts, body, audit).await,
        Some(spec) => {
            let decision = match pre_decided {
                Some(d) => d,
                None => call.decide(spec).await,
            };
            http_request(&call, parts, body, decision, audit).await
        }
    }
}

/// The `http:request` call of `method` on `rest` (below the route).
fn http_call(method: &Method, rest: &str) -> CallSpec {
    CallSpec {
        action: Action::HttpRequest,
        tool: None,
        args: serde_json::Map::new(),
        http: Some(HttpRequest {
            method: method.as_str().to_owned(),
            path: if rest.is_empty() { "/" } else { rest }.to_owned(),
        }),
        mcp: None,
    }
}

/// Audits a refused request, then answers it (503 when the event cannot
/// be written).
async fn finish_refusal(
    gw: &Gateway,
    audit: &mut Audit,
    result: CallResult,
    resp: Response,
) -> Response {
    finish(gw, audit.take(), EventType::Request, result, resp).await
}

/// Writes `audit` with `result` and the status of `resp`, then answers
/// `resp` (503 when the event cannot be written).
pub(crate) async fn finish(
    gw: &Gateway,
    audit: Audit,
    event_type: EventType,
    result: CallResult,
    resp: Response,
) -> Response {
    match audit.write(gw, event_type, result, resp.status()).await {
        Ok(()) => resp,
        Err(unavailable) => unavailable,
    }
}

/// What every forwarded call shares.
pub(crate) struct Call<'a> {
    pub(crate) gw: &'a Gateway,
    pub(crate) route: &'a GatewayRoute,
    pub(crate) token: &'a Arc<AccessToken>,
    /// The token as presented (what a remote control plane checks).
    pub(crate) token_text: &'a str,
    pub(crate) rest: &'a str,
    pub(crate) client_ip: Option<IpAddr>,
}

impl Call<'_> {
    /// Decisions on `calls`, in order (each denies when it cannot be made).
    pub(crate) async fn decide_all(&self, calls: Vec<CallSpec>) -> Vec<CallDecision> {
        self.gw
            .inner
            .plane
            .decide(
                self.token_text,
                self.token,
                &self.route.name,
                self.client_ip,
                calls,
            )
            .await
    }

    /// The decision on one call.
    pub(crate) async fn decide(&self, call: CallSpec) -> CallDecision {
        self.decide_all(vec![call])
            .await
            .pop()
            .unwrap_or_else(|| crate::plane::undecided("no decision".into()))
    }
}

async fn http_request(
    call: &Call<'_>,
    parts: http::request::Parts,
    body: Body,
    decision: CallDecision,
    audit: &mut Audit,
) -> Response {
    audit.decision(&decision);
    if !decision.allowed {
        let detail = if decision.errors.is_empty() {
            "the policy does not allow this request".to_owned()
        } else {
            format!(
                "the policy could not allow this request: {}",
                decision.errors.join("; ")
            )
        };
        let resp = problem::problem(403, "access_denied", "Forbidden", &detail);
        return finish_refusal(call.gw, audit, CallResult::PolicyDenied, resp).await;
    }
    forward_and_finish(
        call,
        &parts,
        Outgoing::Stream(body),
        audit,
        EventType::Request,
    )
    .await
}

/// Forwards an allowed request and audits how it ended: `answered` with
/// the upstream's status, or `upstream_failed` with the gateway's.
pub(crate) async fn forward_and_finish(
    call: &Call<'_>,
    parts: &http::request::Parts,
    body: Outgoing,
    audit: &mut Audit,
    event_type: EventType,
) -> Response {
    let (result, resp) = match forward(call, parts, body, audit).await {
        Ok(f) => (CallResult::Answered, f.into_response()),
        Err(resp) => (CallResult::UpstreamFailed, resp),
    };
    finish(call.gw, audit.take(), event_type, result, resp).await
}

/// The body to send upstream.
pub(crate) enum Outgoing {
    /// Streamed as it arrives.
    Stream(Body),
    /// Already read (an MCP message the gateway inspected).
    Bytes(Bytes),
}

/// The upstream's answer, headers cleaned, body still streaming.
pub(crate) struct Forwarded {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
}

impl Forwarded {
    pub(crate) fn into_response(self) -> Response {
        let mut resp = Response::new(self.body);
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers;
        resp
    }
}

/// The upstream URL for `rest` below the route, with the query minus
/// `access_token` (RFC 6750 §2.3) and the credential's own parameter.
fn upstream_url(
    upstream: &str,
    rest: &str,
    query: Option<&str>,
    credential_query: Option<&str>,
) -> Result<url::Url, String> {
    let mut url =
        url::Url::parse(upstream).map_err(|e| format!("the upstream URL is invalid: {e}"))?;
    if !rest.is_empty() {
        let path = format!("{}{rest}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        // The canonical path needs no further encoding or resolving: were
        // the URL parser to change it, the upstream would get a path the
        // policy did not decide on.
        if url.path() != path {
            return Err(format!(
                "the path `{rest}` would not reach the upstream as decided"
            ));
        }
    }
    url.set_query(None);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        let strip = |k: &str| k == "access_token" || Some(k) == credential_query;
        if url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| strip(&k)) {
            let kept: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| !strip(k))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if !kept.is_empty() {
                url.query_pairs_mut().extend_pairs(kept);
            }
        } else {
            url.set_query(Some(q));
        }
    }
    Ok(url)
}

/// Sends the request upstream with the route's credential. Records the
/// lease and the upstream status in `audit`.
pub(crate) async fn forward(
    call: &Call<'_>,
    parts: &http::request::Parts,
    body: Outgoing,
    audit: &mut Audit,
) -> Result<Forwarded, Response> {
    let gw = call.gw;
    let route = &call.route.route;
    let credential: Option<Arc<Credential>> = match &route.credential {
        Some(name) => match gw.inner.credentials.get(name).await {
            Ok(c) => Some(c),
            Err(why) => {
                tracing::warn!(%why, "credential unavailable");
                audit.set("error", "credential_unavailable");
                return Err(problem::problem(
                    503,
                    "credential_unavailable",
                    "Service unavailable",
                    "the route's upstream credential cannot be used now",
                ));
            }
        },
        None => None,
    };
    let injected_headers = credential
        .as_ref()
        .map(|c| c.injected_headers())
        .unwrap_or_default();
    let mut url = upstream_url(
        &route.upstream,
        call.rest,
        parts.uri.query(),
        credential.as_ref().and_then(|c| c.injected_query()),
    )
    .map_err(|e| problem::problem(502, "bad_gateway", "Bad gateway", &e))?;
    let mut out_headers = headers::forwardable(&parts.headers, &injected_headers);
    let request_id = audit
        .detail
        .get("request_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    for (name, value) in [
        ("x-request-id", request_id.as_str()),
        ("x-mandate-txn", call.token.record.txn.as_str()),
        ("x-mandate-agent", call.token.record.agent.as_str()),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            out_headers.insert(HeaderName::from_static(name), v);
        }
    }
    let needs_body = credential.as_ref().is_some_and(|c| c.needs_body());
    let body = match body {
        Outgoing::Stream(b) if needs_body => {
            let limit = gw.inner.config.max_inspected_body;
            match axum::body::to_bytes(b, limit).await {
                Ok(bytes) => Outgoing::Bytes(bytes),
                Err(_) => {
                    return Err(problem::problem(
                        413,
                        "body_too_large",
                        "Payload too large",
                        &format!("a request signed for this route must be at most {limit} bytes"),
                    ));
                }
            }
        }
        other => other,
    };
    let mut scrub_values: Vec<Vec<u8>> = Vec::new();
    if let Some(c) = &credential {
        let lease_id = mandate_jose::random::id(20)
            .map(|id| format!("lse_{id}"))
            .unwrap_or_default();
        let outbound = Outbound {
            method: &parts.method,
            url: &mut url,
            headers: &mut out_headers,
            body: match &body {
                Outgoing::Bytes(b) => Some(b.as_ref()),
                Outgoing::Stream(_) => None,
            },
        };
        let ctx = InjectContext {
            plane: &gw.inner.plane,
            token: call.token,
            token_text: call.token_text,
            resource: &call.route.name,
            upstream: &call.route.route.upstream,
        };
        match c.inject(outbound, &ctx).await {
            Ok(injected) => {
                audit.set(
                    "lease",
                    json!({
                        "id": lease_id,
                        "provider": c.kind(),
                        "credential": route.credential,
                        "expires_at": injected.expires_at,
                    }),
                );
                scrub_values = injected
                    .scrub
                    .iter()
                    .map(|s| {
                        use mandate_jose::ExposeSecret;
                        s.expose_secret().as_bytes().to_vec()
                    })
                    .collect();
            }
            Err(e) => {
                tracing::warn!(error = %e, "credential injection failed");
                audit.set("error", "credential_unavailable");
                audit.set("error_description", e.to_string());
                return Err(problem::problem(
                    503,
                    "credential_unavailable",
                    "Service unavailable",
                    "the route's upstream credential cannot be used now",
                ));
            }
        }
    }
    let scrubber = Scrubber::new(scrub_values);
    // Every answer's body is scrubbed of the injected secret unless the
    // route opts out; a compressed body could not be, so the upstream is
    // asked for none.
    let scrub = route.scrub_responses && !scrubber.is_empty();
    if scrub {
        out_headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
    }
    let body = match body {
        Outgoing::Bytes(b) => reqwest::Body::from(b),
        Outgoing::Stream(b) => reqwest::Body::wrap_stream(b.into_data_stream()),
    };
    let send = gw
        .inner
        .http
        .request(parts.method.clone(), url)
        .headers(out_headers)
        .body(body)
        .send();
    let timeout = Duration::from_millis(route.timeout_ms.max(1));
    let resp = match tokio::time::timeout(timeout, send).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let (status, code, detail) = if e.is_connect() {
                (
                    502,
                    "upstream_unreachable",
                    "the upstream cannot be reached",
                )
            } else if e.is_timeout() {
                (
                    503,
                    "upstream_timeout",
                    "the upstream did not answer in time",
                )
            } else {
                (
                    502,
                    "bad_gateway",
                    "the upstream's answer could not be read",
                )
            };
            audit.set("error", code);
            return Err(problem::problem(status, code, "Bad gateway", detail));
        }
        Err(_) => {
            audit.set("error", "upstream_timeout");
            let mut resp = problem::problem(
                503,
                "upstream_timeout",
                "Service unavailable",
                &format!(
                    "the upstream did not answer within {} ms",
                    timeout.as_millis()
                ),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Err(resp);
        }
    };
    let status = resp.status();
    audit.set("upstream_status", status.as_u16());
    let mut headers = headers::returnable(resp.headers(), &scrubber);
    let has_body = parts.method != Method::HEAD
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::NOT_MODIFIED;
    let scrubbing = scrub && has_body;
    if scrubbing
        && let Some(coding) = headers
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty() && c != "identity")
    {
        audit.set("error", "unscrubbable_body");
        return Err(problem::problem(
            502,
            "unscrubbable_body",
            "Bad gateway",
            &format!(
                "the upstream answered with a `{coding}`-encoded body, which the gateway cannot \
                 scrub of the injected credential (turn scrubbing off for binary routes with \
                 `--no-scrub-responses`)"
            ),
        ));
    }
    let stream = resp.bytes_stream();
    let body = if scrubbing {
        // The scrubbed body may differ in length.
        headers.remove(header::CONTENT_LENGTH);
        Body::from_stream(scrubbed(stream, scrubber))
    } else {
        Body::from_stream(stream)
    };
    Ok(Forwarded {
        status,
        headers,
        body,
    })
}

/// `stream` with every secret replaced, also one split across chunks: the
/// longest tail that could begin a secret is held back for the next chunk.
/// A chunk with nothing to replace and nothing held back passes as it is.
fn scrubbed<S>(
    stream: S,
    scrubber: Scrubber,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static
where
    S: futures_util::Stream<Item = Result<Bytes, reqwest::Error>> + Send + Unpin + 'static,
{
    let scrubber = Arc::new(scrubber);
    futures_util::stream::unfold(
        (stream, Vec::<u8>::new(), false, scrubber),
        |(mut stream, mut carry, done, scrubber)| async move {
            if done {
                return None;
            }
            match stream.next().await {
                Some(Ok(chunk)) => {
                    if carry.is_empty() && scrubber.scrub(&chunk).is_none() {
                        let keep = scrubber.partial_tail(&chunk).min(SCRUB_CARRY_MAX);
                        let split = chunk.len() - keep;
                        let next_carry = chunk[split..].to_vec();
                        let out = chunk.slice(..split);
                        return Some((Ok(out), (stream, next_carry, false, scrubber)));
                    }
                    carry.extend_from_slice(&chunk);
                    let data = scrubber.scrub(&carry).unwrap_or_else(|| carry.clone());
                    let keep = scrubber.partial_tail(&data).min(SCRUB_CARRY_MAX);
                    let split = data.len() - keep;
                    let out = Bytes::copy_from_slice(&data[..split]);
                    let next_carry = data[split..].to_vec();
                    Some((Ok(out), (stream, next_carry, false, scrubber)))
                }
                Some(Err(e)) => Some((
                    Err(std::io::Error::other(e)),
                    (stream, Vec::new(), true, scrubber),
                )),
                None => {
                    let data = scrubber.scrub(&carry).unwrap_or(carry);
                    Some((Ok(Bytes::from(data)), (stream, Vec::new(), true, scrubber)))
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn upstream_urls_keep_the_path_and_drop_tokens_from_the_query() {
        let u = upstream_url(
            "http://127.0.0.1:9/api/",
            "/v1/x",
            Some("a=1&access_token=t"),
            None,
        )
        .unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:9/api/v1/x?a=1");
        let u = upstream_url("http://127.0.0.1:9", "", Some("key=agent&b=2"), Some("key")).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:9/?b=2");
        let u = upstream_url("http://127.0.0.1:9/mcp", "", Some("q=%20"), None).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:9/mcp?q=%20");
    }

    #[tokio::test]
    async fn a_secret_split_across_chunks_is_scrubbed() {
        let chunks: Vec<Result<Bytes, reqwest::Error>> = vec![
            Ok(Bytes::from_static(b"error: key sk-live-12")),
            Ok(Bytes::from_static(b"345 is invalid")),
        ];
        let s = scrubbed(
            futures_util::stream::iter(chunks),
            Scrubber::new([b"sk-live-12345".to_vec()]),
        );
        let out: Vec<Bytes> = s.map(|r| r.unwrap()).collect().await;
        let all: Vec<u8> = out.concat();
        assert_eq!(
            String::from_utf8(all).unwrap(),
            "error: key [REDACTED] is invalid"
        );
    }
}
