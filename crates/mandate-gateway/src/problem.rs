//! The gateway's own answers: RFC 9457 problem JSON (`type`
//! `urn:mandate:problem:<code>`, a stable `code`, the `request_id`), and
//! the RFC 6750 challenges of a protected resource.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

/// A problem response.
pub(crate) fn problem(status: u16, code: &str, title: &str, detail: &str) -> Response {
    with_request_id(status, code, title, detail, None)
}

/// A problem response naming the request id.
pub(crate) fn with_request_id(
    status: u16,
    code: &str,
    title: &str,
    detail: &str,
    request_id: Option<&str>,
) -> Response {
    let mut body = serde_json::json!({
        "type": format!("urn:mandate:problem:{code}"),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    });
    if let Some(id) = request_id {
        body["request_id"] = id.into();
    }
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// 404: no route by that name.
pub(crate) fn not_found(resource: &str) -> Response {
    problem(
        404,
        "route_not_found",
        "No such route",
        &format!("no resource `{resource}` is exposed through the gateway"),
    )
}

/// 503: something the gateway needs is unavailable.
pub(crate) fn unavailable(detail: &str) -> Response {
    problem(503, "unavailable", "Service unavailable", detail)
}

/// Quotes `s` as an RFC 9110 quoted-string (the challenge's parameters).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// The `WWW-Authenticate` challenge of a refused request: `Bearer` first
/// (with `resource_metadata`, and `error` when a token was presented),
/// then `DPoP`, as RFC 6750, RFC 9728 §5.1 and RFC 9449 §7.1 describe.
pub(crate) fn challenge(
    metadata_url: &str,
    error: Option<&str>,
    description: &str,
    scope: Option<&str>,
) -> HeaderValue {
    let mut bearer = format!("Bearer resource_metadata={}", quoted(metadata_url));
    if let Some(e) = error {
        bearer.push_str(&format!(", error={}", quoted(e)));
        bearer.push_str(&format!(", error_description={}", quoted(description)));
    }
    if let Some(s) = scope {
        bearer.push_str(&format!(", scope={}", quoted(s)));
    }
    bearer.push_str(", DPoP algs=\"ES256 ES384 EdDSA RS256 PS256\"");
    HeaderValue::from_str(&bearer).unwrap_or_else(|_| HeaderValue::from_static("Bearer, DPoP"))
}
