//! MCP routes (Streamable HTTP): each JSON-RPC message a client POSTs is
//! decided on its own — `tools/call` as `mcp:tools/call` on
//! `Tool::"<resource>/<tool>"` with the arguments in context,
//! `resources/read` as `mcp:resources/read`, `prompts/get` as
//! `mcp:prompts/get` — and a denied request is answered with a JSON-RPC
//! error in place of the upstream's answer, not a transport failure.
//! `tools/list`, `resources/list` and `prompts/list` answers (JSON or SSE)
//! are filtered to what the caller may use. Batches, notifications and
//! responses pass; GET streams and DELETE pass as they are.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use mandate_policy::{Action, McpMessage};
use serde_json::{Value, json};

use crate::proxy::{self, Audit, Call, CallResult, EventType, Forwarded, Outgoing};
use crate::wire::CallSpec;

/// JSON-RPC error code of a call the policy refused (implementation-defined
/// server error range, JSON-RPC 2.0 §5.1).
pub const ACCESS_DENIED: i64 = -32003;

/// The list answers the gateway filters, by the request id they answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    Tools,
    Resources,
    Prompts,
}

/// What one message asks, for policy and audit.
struct Inspected {
    /// The message, forwarded when allowed.
    message: Value,
    /// JSON-RPC method (`None` for a response).
    method: Option<String>,
    /// The id, for requests.
    id: Option<Value>,
    /// The decision, for the messages policies decide on.
    denied: Option<Value>,
    /// Its audit event.
    audit: Audit,
    /// How it ended, when the gateway ended it (`None`: forwarded).
    result: Option<CallResult>,
}

fn jsonrpc_error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(d) = data {
        error["data"] = d;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn args_digest(args: &Value) -> String {
    mandate_jose::digest::sha256_hex(args.to_string().as_bytes())
}

pub(crate) async fn handle(
    call: &Call<'_>,
    parts: http::request::Parts,
    body: Body,
    audit: &mut Audit,
) -> Response {
    if parts.method != Method::POST {
        // A GET stream (server-to-client messages) or a session DELETE.
        audit.set("mcp_method", Value::Null);
        return proxy::forward_and_finish(
            call,
            &parts,
            Outgoing::Stream(body),
            audit,
            EventType::Mcp,
        )
        .await;
    }
    let limit = call.gw.inner.config.max_inspected_body;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            audit.set("error", "body_too_large");
            let resp = crate::problem::problem(
                413,
                "body_too_large",
                "Payload too large",
                &format!("an MCP message must be at most {limit} bytes"),
            );
            return finish(call, audit.take(), CallResult::BadRequest, resp).await;
        }
    };
    let parsed: Value = match crate::json::parse_unambiguous(&bytes) {
        Ok(v) => v,
        Err(e) => {
            audit.set("error", "parse_error");
            let body = jsonrpc_error(&Value::Null, -32700, &format!("parse error: {e}"), None);
            let resp = json_response(StatusCode::BAD_REQUEST, &body);
            return finish(call, audit.take(), CallResult::BadRequest, resp).await;
        }
    };
    let (batch, messages) = match parsed {
        Value::Array(items) if !items.is_empty() => (true, items),
        Value::Object(_) => (false, vec![parsed]),
        _ => {
            audit.set("error", "invalid_request");
            let body = jsonrpc_error(
                &Value::Null,
                -32600,
                "invalid request: not a JSON-RPC message or a non-empty batch",
                None,
            );
            let resp = json_response(StatusCode::BAD_REQUEST, &body);
            return finish(call, audit.take(), CallResult::BadRequest, resp).await;
        }
    };
    if let Some(why) = headers_disagree(&parts.headers, batch, &messages) {
        audit.set("error", "invalid_request");
        audit.set("error_description", why.clone());
        let id = messages[0].get("id").cloned().unwrap_or(Value::Null);
        let body = jsonrpc_error(&id, -32600, &format!("invalid request: {why}"), None);
        let resp = json_response(StatusCode::BAD_REQUEST, &body);
        return finish(call, audit.take(), CallResult::BadRequest, resp).await;
    }
    let mut inspected: Vec<Inspected> = Vec::with_capacity(messages.len());
    for m in messages {
        inspected.push(inspect(call, m, audit).await);
    }
    let mut listings: HashMap<String, Listing> = HashMap::new();
    let mut errors: Vec<Value> = Vec::new();
    let mut forward: Vec<Value> = Vec::new();
    let mut events: Vec<(Audit, Option<CallResult>)> = Vec::new();
    for i in inspected {
        if let Some(err) = i.denied {
            errors.push(err);
        } else {
            if let (Some(id), Some(method)) = (&i.id, i.method.as_deref()) {
                let listing = match method {
                    "tools/list" => Some(Listing::Tools),
                    "resources/list" => Some(Listing::Resources),
                    "prompts/list" => Some(Listing::Prompts),
                    _ => None,
                };
                if let Some(l) = listing {
                    listings.insert(id.to_string(), l);
                }
            }
            forward.push(i.message);
        }
        events.push((i.audit, i.result));
    }
    if forward.is_empty() {
        let body = if batch {
            Value::Array(errors)
        } else {
            errors.into_iter().next().unwrap_or(Value::Null)
        };
        return finish_all(call, events, None, json_response(StatusCode::OK, &body)).await;
    }
    let out = if batch {
        Bytes::from(Value::Array(forward).to_string())
    } else if errors.is_empty() {
        bytes
    } else {
        Bytes::from(
            forward
                .into_iter()
                .next()
                .unwrap_or(Value::Null)
                .to_string(),
        )
    };
    let mut parts = parts;
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut fwd_audit = audit.take();
    let forwarded = match proxy::forward(call, &parts, Outgoing::Bytes(out), &mut fwd_audit).await {
        Ok(f) => f,
        Err(resp) => {
            return finish_all(call, events, Some((&fwd_audit, false)), resp).await;
        }
    };
    let resp = shape_answer(call, forwarded, errors, listings).await;
    finish_all(call, events, Some((&fwd_audit, true)), resp).await
}

/// Since protocol revision 2026-07-28 a POST names its method and target in
/// `Mcp-Method` and `Mcp-Name` too. Policy is decided on the body, so a
/// request whose headers say something else is refused here rather than
/// left for the upstream to notice.
fn headers_disagree(headers: &http::HeaderMap, batch: bool, messages: &[Value]) -> Option<String> {
    let header = |n: &str| {
        headers
            .get(n)
            .map(|v| v.to_str().unwrap_or("\u{0}").to_owned())
    };
    let (method, name) = (header("mcp-method"), header("mcp-name"));
    if method.is_none() && name.is_none() {
        return None;
    }
    if batch {
        return Some("`Mcp-Method` and `Mcp-Name` cannot describe a batch".into());
    }
    let msg = &messages[0];
    let body_method = msg.get("method").and_then(Value::as_str);
    if let Some(m) = &method
        && Some(m.as_str()) != body_method
    {
        return Some(format!(
            "`Mcp-Method: {m}` does not match the body's method"
        ));
    }
    if let Some(n) = &name {
        let params = msg.get("params");
        let body_name = params
            .and_then(|p| p.get("name").or_else(|| p.get("uri")))
            .and_then(Value::as_str);
        if Some(n.as_str()) != body_name {
            return Some(format!("`Mcp-Name: {n}` does not match the body's target"));
        }
    }
    None
}

/// Reads one message and decides on it.
async fn inspect(call: &Call<'_>, message: Value, base: &Audit) -> Inspected {
    let mut audit = base.copy();
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let id = message.get("id").cloned().filter(|_| method.is_some());
    audit.set(
        "mcp_method",
        method.clone().map_or(Value::Null, Value::from),
    );
    if let Some(id) = &id {
        audit.set("mcp_id", id.clone());
    }
    let params = message.get("params").cloned().unwrap_or(Value::Null);
    let text = |k: &str| params.get(k).and_then(Value::as_str).map(str::to_owned);
    let decided = match method.as_deref() {
        Some("tools/call") => Some((Action::McpToolsCall, text("name"), "name")),
        Some("resources/read") => Some((Action::McpResourcesRead, text("uri"), "uri")),
        Some("prompts/get") => Some((Action::McpPromptsGet, text("name"), "name")),
        _ => None,
    };
    let Some((action, target, field)) = decided else {
        return Inspected {
            message,
            method,
            id,
            denied: None,
            audit,
            result: None,
        };
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    let Some(target) = target else {
        audit.set("error", "invalid_params");
        let err = jsonrpc_error(
            &reply_id,
            -32602,
            &format!("invalid params: `{field}` must be a string"),
            None,
        );
        return Inspected {
            message,
            method,
            id,
            denied: Some(err),
            audit,
            result: Some(CallResult::BadRequest),
        };
    };
    let arguments = params.get("arguments").cloned().unwrap_or(json!({}));
    let args = match &arguments {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    if action == Action::McpToolsCall {
        audit.set("tool", target.clone());
        if call.route.route.record_arguments {
            audit.set("arguments", arguments.clone());
        } else {
            audit.set("arguments_sha256", args_digest(&arguments));
        }
    } else {
        audit.set("mcp_target", target.clone());
    }
    let decision = call
        .decide(CallSpec {
            action,
            tool: (action == Action::McpToolsCall).then(|| target.clone()),
            args,
            http: None,
            mcp: Some(McpMessage {
                method: method.clone().unwrap_or_default(),
                target: target.clone(),
            }),
        })
        .await;
    audit.decision(&decision);
    if decision.allowed {
        return Inspected {
            message,
            method,
            id,
            denied: None,
            audit,
            result: None,
        };
    }
    let err = jsonrpc_error(
        &reply_id,
        ACCESS_DENIED,
        &format!(
            "access denied: the policy does not allow {} `{target}`",
            method.as_deref().unwrap_or_default()
        ),
        Some(json!({"policies": decision.policies, "errors": decision.errors})),
    );
    Inspected {
        message,
        method,
        id,
        denied: Some(err),
        audit,
        result: Some(CallResult::PolicyDenied),
    }
}

/// Filters one list answer in place: only what the caller may use stays
/// (all its entries decided at once).
async fn filter_listing(call: &Call<'_>, listing: Listing, msg: &mut Value) {
    let (field, action, key) = match listing {
        Listing::Tools => ("tools", Action::McpToolsCall, "name"),
        Listing::Resources => ("resources", Action::McpResourcesRead, "uri"),
        Listing::Prompts => ("prompts", Action::McpPromptsGet, "name"),
    };
    let method = match listing {
        Listing::Tools => "tools/call",
        Listing::Resources => "resources/read",
        Listing::Prompts => "prompts/get",
    };
    let Some(Value::Array(items)) = msg.get_mut("result").and_then(|r| r.get_mut(field)) else {
        return;
    };
    items.retain(|item| item.get(key).and_then(Value::as_str).is_some());
    let calls: Vec<CallSpec> = items
        .iter()
        .filter_map(|item| item.get(key).and_then(Value::as_str))
        .map(|target| CallSpec {
            action,
            tool: (listing == Listing::Tools).then(|| target.to_owned()),
            args: serde_json::Map::new(),
            http: None,
            mcp: Some(McpMessage {
                method: method.to_owned(),
                target: target.to_owned(),
            }),
        })
        .collect();
    let allowed: Vec<bool> = if calls.is_empty() {
        Vec::new()
    } else {
        call.decide_all(calls)
            .await
            .into_iter()
            .map(|d| d.allowed)
            .collect()
    };
    let mut verdicts = allowed.into_iter();
    items.retain(|_| verdicts.next().unwrap_or(false));
}

/// Applies the listing filters to one JSON-RPC message or batch.
async fn filter_value(call: &Call<'_>, listings: &HashMap<String, Listing>, v: &mut Value) {
    let messages: Vec<&mut Value> = match v {
        Value::Array(items) => items.iter_mut().collect(),
        Value::Object(_) => vec![v],
        _ => Vec::new(),
    };
    for m in messages {
        let listing = m
            .get("id")
            .and_then(|id| listings.get(&id.to_string()))
            .copied();
        if let Some(l) = listing {
            filter_listing(call, l, m).await;
        }
    }
}

/// The upstream's answer with the denied messages' errors added and the
/// listings filtered.
async fn shape_answer(
    call: &Call<'_>,
    forwarded: Forwarded,
    errors: Vec<Value>,
    listings: HashMap<String, Listing>,
) -> Response {
    let content_type = forwarded
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if errors.is_empty() && listings.is_empty() {
        return forwarded.into_response();
    }
    if forwarded.status == StatusCode::ACCEPTED && !errors.is_empty() {
        // Only notifications and responses went up: answer the denied
        // requests ourselves.
        return json_response(StatusCode::OK, &Value::Array(errors));
    }
    if !forwarded.status.is_success() {
        return forwarded.into_response();
    }
    if content_type.starts_with("application/json") {
        let limit = call.gw.inner.config.max_inspected_body;
        let Forwarded {
            status,
            mut headers,
            body,
        } = forwarded;
        let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
            return crate::problem::problem(
                502,
                "bad_gateway",
                "Bad gateway",
                "the upstream's MCP answer is too large to inspect",
            );
        };
        let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
            return crate::problem::problem(
                502,
                "bad_gateway",
                "Bad gateway",
                "the upstream's MCP answer is not JSON",
            );
        };
        filter_value(call, &listings, &mut v).await;
        if !errors.is_empty() {
            v = match v {
                Value::Array(mut items) => {
                    items.extend(errors);
                    Value::Array(items)
                }
                one => {
                    let mut items = vec![one];
                    items.extend(errors);
                    Value::Array(items)
                }
            };
        }
        headers.remove(header::CONTENT_LENGTH);
        let mut resp = Response::new(Body::from(v.to_string()));
        *resp.status_mut() = status;
        *resp.headers_mut() = headers;
        return resp;
    }
    if content_type.starts_with("text/event-stream") {
        let Forwarded {
            status,
            mut headers,
            body,
        } = forwarded;
        headers.remove(header::CONTENT_LENGTH);
        let prefix: Vec<Result<Bytes, std::io::Error>> = errors
            .iter()
            .map(|e| Ok(Bytes::from(format!("event: message\ndata: {e}\n\n"))))
            .collect();
        let filter = Arc::new(SseFilter {
            listings,
            decide: FilterCall::new(call),
        });
        let events = sse_filtered(body, filter);
        let stream = futures_util::stream::iter(prefix).chain(events);
        let mut resp = Response::new(Body::from_stream(stream));
        *resp.status_mut() = status;
        *resp.headers_mut() = headers;
        return resp;
    }
    forwarded.into_response()
}

/// What an SSE filter needs of the call, owned (the stream outlives it).
struct FilterCall {
    gw: crate::Gateway,
    route: mandate_engine::gateway::GatewayRoute,
    token: Arc<mandate_engine::oauth::AccessToken>,
    token_text: String,
    rest: String,
    client_ip: Option<std::net::IpAddr>,
}

impl FilterCall {
    fn new(call: &Call<'_>) -> Self {
        Self {
            gw: call.gw.clone(),
            route: call.route.clone(),
            token: call.token.clone(),
            token_text: call.token_text.to_owned(),
            rest: call.rest.to_owned(),
            client_ip: call.client_ip,
        }
    }

    fn call(&self) -> Call<'_> {
        Call {
            gw: &self.gw,
            route: &self.route,
            token: &self.token,
            token_text: &self.token_text,
            rest: &self.rest,
            client_ip: self.client_ip,
        }
    }
}

struct SseFilter {
    listings: HashMap<String, Listing>,
    decide: FilterCall,
}

impl SseFilter {
    /// One SSE event (without its terminating blank line), filtered.
    async fn event(&self, event: &str) -> String {
        let mut data = String::new();
        let mut other: Vec<&str> = Vec::new();
        for line in event.lines() {
            if let Some(d) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            } else {
                other.push(line);
            }
        }
        let Ok(mut v) = serde_json::from_str::<Value>(&data) else {
            return format!("{event}\n\n");
        };
        filter_value(&self.decide.call(), &self.listings, &mut v).await;
        let mut out = String::new();
        for l in other {
            out.push_str(l);
            out.push('\n');
        }
        out.push_str("data: ");
        out.push_str(&v.to_string());
        out.push_str("\n\n");
        out
    }
}

/// The SSE body with each complete event passed through the filter.
fn sse_filtered(
    body: Body,
    filter: Arc<SseFilter>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let stream = body.into_data_stream();
    futures_util::stream::unfold(
        (stream, String::new(), false, filter),
        |(mut stream, mut buf, done, filter)| async move {
            if done {
                return None;
            }
            loop {
                // Events end at a blank line (`\n\n`, or `\r\n\r\n`).
                let normalized = buf.replace("\r\n", "\n");
                if let Some(end) = normalized.find("\n\n") {
                    let event = normalized[..end].to_owned();
                    let rest = normalized[end + 2..].to_owned();
                    let out = filter.event(&event).await;
                    return Some((Ok(Bytes::from(out)), (stream, rest, false, filter)));
                }
                buf = normalized;
                match stream.next().await {
                    Some(Ok(chunk)) => buf.push_str(&String::from_utf8_lossy(&chunk)),
                    Some(Err(e)) => {
                        return Some((
                            Err(std::io::Error::other(e)),
                            (stream, String::new(), true, filter),
                        ));
                    }
                    None => {
                        let out = Bytes::from(std::mem::take(&mut buf));
                        return Some((Ok(out), (stream, String::new(), true, filter)));
                    }
                }
            }
        },
    )
}

/// Writes the request's audit event, then answers.
async fn finish(call: &Call<'_>, audit: Audit, result: CallResult, resp: Response) -> Response {
    proxy::finish(call.gw, audit, EventType::Mcp, result, resp).await
}

/// Writes every message's event (with the upstream facts of the forwarded
/// request: how it ended, its status and lease), together, then answers.
/// `upstream` is `None` when nothing was forwarded, `Some((audit, ok))`
/// when the forwarded messages were answered (`ok`) or not.
async fn finish_all(
    call: &Call<'_>,
    events: Vec<(Audit, Option<CallResult>)>,
    upstream: Option<(&Audit, bool)>,
    resp: Response,
) -> Response {
    let status = resp.status();
    let writes = events.into_iter().map(|(mut a, result)| {
        let result = match (result, upstream) {
            (Some(r), _) => r,
            (None, Some((up, answered))) => {
                for k in ["upstream_status", "lease", "error", "error_description"] {
                    if let Some(v) = up.detail.get(k) {
                        a.set(k, v.clone());
                    }
                }
                if answered {
                    CallResult::Answered
                } else {
                    CallResult::UpstreamFailed
                }
            }
            (None, None) => CallResult::Answered,
        };
        a.write(call.gw, EventType::Mcp, result, status)
    });
    for r in futures_util::future::join_all(writes).await {
        if let Err(unavailable) = r {
            return unavailable;
        }
    }
    resp
}
