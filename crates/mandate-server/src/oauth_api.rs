//! The OAuth endpoints: token (RFC 6749 §3.2), introspection (RFC 7662)
//! and revocation (RFC 7009). Requests are `application/x-www-form-urlencoded`;
//! errors are RFC 6749 JSON (`error`, `error_description`), never problem
//! documents, and every response carries `Cache-Control: no-store`.
//!
//! Introspection needs an admin token (`Authorization: Bearer mdt_...`) or
//! an agent's client assertion. Revocation accepts the same, or no client
//! authentication when the token being revoked is a valid Mandate token
//! (whoever holds a token may give it up; a forged one revokes nothing).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use mandate_engine::oauth::{OAuthError, TokenRequest};
use serde_json::json;

use crate::AppState;
use crate::tokens_api::{INTROSPECTION_PATH, REVOCATION_PATH, TOKEN_PATH};

/// Largest form accepted (assertions included).
const MAX_FORM: usize = 32 * 1024;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(TOKEN_PATH, post(token))
        .route(INTROSPECTION_PATH, post(introspect))
        .route(REVOCATION_PATH, post(revoke))
}

fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

fn error_response(e: &OAuthError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut res = (
        status,
        Json(json!({ "error": e.error, "error_description": e.description })),
    )
        .into_response();
    if let Some(n) = e
        .dpop_nonce
        .as_deref()
        .and_then(|n| HeaderValue::from_str(n).ok())
    {
        res.headers_mut().insert("dpop-nonce", n);
    }
    if e.status == 401
        && let Ok(v) = HeaderValue::from_str(&format!("Bearer error=\"{}\"", e.error))
    {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    no_store(res)
}

fn oauth_error(error: &'static str, description: &str, status: u16) -> OAuthError {
    OAuthError {
        error,
        description: description.to_owned(),
        status,
        dpop_nonce: None,
    }
}

fn invalid_request(why: &str) -> OAuthError {
    oauth_error("invalid_request", why, 400)
}

/// The form's pairs, duplicates kept; `Err` with the answer to give.
fn form(headers: &HeaderMap, body: &Bytes) -> Result<Vec<(String, String)>, OAuthError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    if body.len() > MAX_FORM {
        return Err(invalid_request("the request is too large"));
    }
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map_err(|_| invalid_request("the form does not parse"))
}

/// The single `DPoP` header, or an error when there are several.
fn dpop_header(headers: &HeaderMap) -> Result<Option<String>, OAuthError> {
    let mut all = headers.get_all("dpop").iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(oauth_error(
            "invalid_dpop_proof",
            "more than one DPoP header",
            400,
        ));
    }
    Ok(first.and_then(|v| v.to_str().ok()).map(str::to_owned))
}

async fn token(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    // The peer address, when the server runs with connection info (policies
    // see it as `context.client_ip`).
    let client_ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let Ok(body) = axum::body::to_bytes(body, MAX_FORM).await else {
        return error_response(&invalid_request("the request is too large"));
    };
    let params = match form(&headers, &body) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let dpop = match dpop_header(&headers) {
        Ok(d) => d,
        Err(e) => return error_response(&e),
    };
    let req = TokenRequest {
        params,
        dpop,
        endpoint_url: format!("{}{TOKEN_PATH}", state.public_url),
        client_ip,
    };
    match state.engine.token_grant(req).await {
        Ok(t) => {
            let nonce = t.dpop_nonce.clone();
            let mut res = Json(t).into_response();
            if let Some(n) = nonce.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
                res.headers_mut().insert("dpop-nonce", n);
            }
            no_store(res)
        }
        Err(e) => error_response(&e),
    }
}

/// Who is calling introspection or revocation: an admin token or an agent's
/// client assertion. `Ok(None)` when no credential came with the request.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<Option<String>, OAuthError> {
    if let Some(cred) = crate::middleware::bearer(headers) {
        return match state.engine.authenticate(cred).await {
            Ok(actor) => Ok(Some(actor.token_id)),
            Err(_) => Err(oauth_error(
                "invalid_client",
                "the bearer credential is not a valid admin token",
                401,
            )),
        };
    }
    Ok(state
        .engine
        .authenticate_client_form(params)
        .await?
        .map(|a| format!("agent:{a}")))
}

fn token_param(params: &[(String, String)]) -> Result<String, OAuthError> {
    let mut tokens = params.iter().filter(|(k, _)| k == "token");
    match (tokens.next(), tokens.next()) {
        (Some((_, t)), None) if !t.is_empty() => Ok(t.clone()),
        (Some(_), Some(_)) => Err(invalid_request("parameter `token` is repeated")),
        _ => Err(invalid_request("`token` is required")),
    }
}

async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let params = match form(&headers, &body) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let who = match caller(&state, &headers, &params).await {
        Ok(Some(w)) => w,
        Ok(None) => {
            return error_response(&OAuthError {
                error: "invalid_client",
                description: "introspection needs an admin token or a client assertion".into(),
                status: 401,
                dpop_nonce: None,
            });
        }
        Err(e) => return error_response(&e),
    };
    let token = match token_param(&params) {
        Ok(t) => t,
        Err(e) => return error_response(&e),
    };
    match state.engine.introspect(&who, &token).await {
        Ok(v) => no_store(Json(v).into_response()),
        Err(e) => error_response(&OAuthError::from(e)),
    }
}

async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let params = match form(&headers, &body) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let who = match caller(&state, &headers, &params).await {
        Ok(w) => w.unwrap_or_else(|| "token-holder".to_owned()),
        Err(e) => return error_response(&e),
    };
    let token = match token_param(&params) {
        Ok(t) => t,
        Err(e) => return error_response(&e),
    };
    match state.engine.revoke_token(&who, &token).await {
        Ok(_) => no_store(StatusCode::OK.into_response()),
        Err(e) => error_response(&OAuthError::from(e)),
    }
}
