//! Cross-cutting request handling: request ids, admin authentication, and
//! turning every error into a complete problem response after auditing it.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mandate_engine::{Actor, Rejection};
use tracing::Instrument;

use crate::{ApiError, AppState};

/// Header carrying the request id, both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// Keeps a caller's request id when it is short and plain, or makes one.
fn request_id(headers: &HeaderMap) -> String {
    let plain = |v: &&str| {
        !v.is_empty()
            && v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    if let Some(v) = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(plain)
    {
        return v.to_owned();
    }
    mandate_jose::random::id(20).unwrap_or_else(|_| "unknown".to_owned())
}

/// The bearer credential of `Authorization`, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Admits only requests with a valid admin token; the [`Actor`] goes into
/// the request (for handlers) and the response (for auditing).
pub async fn require_admin(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(req.headers()) else {
        return ApiError::unauthorized("missing bearer admin token").into_response();
    };
    match state.engine.authenticate(token).await {
        Ok(actor) => {
            tracing::Span::current().record("actor", actor.token_id.as_str());
            req.extensions_mut().insert(actor.clone());
            let mut res = next.run(req).await;
            res.extensions_mut().insert(actor);
            res
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Path of the AuthZEN API, the audience of tokens for it.
pub const PDP_PATH: &str = "/access/v1";
/// The scope a Mandate token needs at the AuthZEN API.
pub const PDP_SCOPE: &str = "authzen:evaluate";

/// Admits AuthZEN callers: an admin token, or a Mandate access token for
/// `<public URL>/access/v1` with scope `authzen:evaluate` (`Bearer`, or
/// `DPoP` with a proof when the token is bound).
pub async fn require_pdp_caller(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(s, t)| (s.to_owned(), t.trim().to_owned()));
    let Some((scheme, token)) = auth else {
        return ApiError::unauthorized("missing bearer admin token or access token")
            .into_response();
    };
    if scheme.eq_ignore_ascii_case("bearer") && token.starts_with(mandate_engine::TOKEN_PREFIX) {
        return require_admin(State(state), req, next).await;
    }
    let proof = req
        .headers()
        .get("dpop")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let url = format!("{}{}", state.public_url, req.uri().path());
    let presented = mandate_engine::oauth::Presented {
        scheme: &scheme,
        token: &token,
        proof: proof.as_deref(),
        method: req.method().as_str(),
        url: &url,
    };
    let audience = format!("{}{PDP_PATH}", state.public_url);
    match state
        .engine
        .check_presented(presented, &audience, PDP_SCOPE)
        .await
    {
        Ok(Ok(t)) => {
            let actor = Actor {
                token_id: format!("agent:{}", t.record.agent),
            };
            tracing::Span::current().record("actor", actor.token_id.as_str());
            req.extensions_mut().insert(actor.clone());
            let mut res = next.run(req).await;
            res.extensions_mut().insert(actor);
            res
        }
        Ok(Err(refusal)) => {
            let err = if refusal.error == "insufficient_scope" {
                ApiError::forbidden(refusal.description.clone())
            } else {
                ApiError::unauthorized(refusal.description.clone())
            };
            let mut res = err.into_response();
            let scheme = if scheme.eq_ignore_ascii_case("dpop") {
                "DPoP"
            } else {
                "Bearer"
            };
            let value = format!(
                "{scheme} error=\"{}\", error_description=\"{}\"",
                refusal.error,
                refusal.description.replace(['"', '\\'], "'")
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            res
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Outermost layer: assigns the request id and span; for every error
/// response, audits admin rejections (or answers 503 when that fails) and
/// completes the problem body with the path and request id.
pub async fn finish(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let rid = request_id(req.headers());
    if let Ok(v) = HeaderValue::from_str(&rid) {
        req.headers_mut().insert(REQUEST_ID, v);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %rid, %method, %path, actor = tracing::field::Empty);
    let mut res = next.run(req).instrument(span.clone()).await;

    let err = match res.extensions_mut().remove::<ApiError>() {
        Some(e) => Some(e),
        None if res.status() == StatusCode::METHOD_NOT_ALLOWED => {
            Some(ApiError::method_not_allowed())
        }
        None => None,
    };
    if let Some(mut err) = err {
        if path.starts_with("/admin/") || path.starts_with("/access/") {
            let actor = res.extensions().get::<Actor>().cloned();
            let rejection = Rejection {
                actor: actor.as_ref(),
                method: method.as_str(),
                path: &path,
                status: err.status().as_u16(),
                code: err.code(),
                request_id: Some(&rid),
            };
            if let Err(e) = state
                .engine
                .record_rejection(&rejection)
                .instrument(span.clone())
                .await
            {
                span.in_scope(|| tracing::error!(error = %e, "cannot audit a rejected request"));
                err = ApiError::unavailable("the audit log is unavailable; request refused");
            }
        }
        span.in_scope(|| {
            tracing::info!(
                status = err.status().as_u16(),
                code = err.code(),
                "request refused"
            )
        });
        res = problem_response(&err, &res, path, rid.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&rid) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    res
}

/// Rebuilds an error response with the full problem body, keeping headers
/// such as `WWW-Authenticate`.
fn problem_response(err: &ApiError, old: &Response, path: String, rid: String) -> Response {
    let problem = err.problem(Some(path), Some(rid));
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = err.status();
    for (name, value) in old.headers() {
        if name != header::CONTENT_LENGTH {
            res.headers_mut().insert(name.clone(), value.clone());
        }
    }
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if err.status() == StatusCode::UNAUTHORIZED
        && !res.headers().contains_key(header::WWW_AUTHENTICATE)
    {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"mandate-admin\""),
        );
    }
    res
}
