//! RFC 9457 problem responses: one exhaustive mapping from domain errors to
//! status, stable `code` and public message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mandate_engine::Error;
use serde::Serialize;

/// The problem body. `type` is `urn:mandate:problem:<code>`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:mandate:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short, stable summary of the problem kind.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong in this request.
    pub detail: String,
    /// Stable machine-readable code, e.g. `agent_exists`.
    pub code: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Every problem found, when there are several (e.g. policy
    /// diagnostics with `file`, `line`, `column`, `message`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub errors: Option<serde_json::Value>,
    /// Correlates with server logs and the audit event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An error on its way to becoming a problem response.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
    field: Option<String>,
    errors: Option<Box<serde_json::Value>>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
            field: None,
            errors: None,
        }
    }

    /// 400 naming the bad field.
    pub fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "Invalid field",
            detail,
        );
        e.field = Some(field.into());
        e
    }

    /// 400 for a body that is not valid JSON of the expected shape.
    pub fn invalid_body(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Invalid request body",
            detail,
        )
    }

    /// 400 for query parameters that do not parse.
    pub fn invalid_query(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "Invalid query parameters",
            detail,
        )
    }

    /// 413.
    pub fn body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "Request body too large",
            format!("request bodies are limited to {} bytes", crate::MAX_BODY),
        )
    }

    /// 415.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            "send the body as `application/json`",
        )
    }

    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
    }

    /// 403: authenticated, but not allowed (a token lacking a scope).
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "Forbidden",
            detail,
        )
    }

    /// 404 for a path no route serves.
    pub fn not_found_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            "Not found",
            "no such endpoint",
        )
    }

    /// 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed",
            "this endpoint does not accept that method",
        )
    }

    /// 503.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        )
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body for this error, with the request's path and id.
    pub fn problem(&self, instance: Option<String>, request_id: Option<String>) -> Problem {
        Problem {
            type_uri: format!("urn:mandate:problem:{}", self.code),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            field: self.field.clone(),
            errors: self.errors.as_deref().cloned(),
            instance,
            request_id,
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let detail = e.to_string();
        match e {
            Error::Invalid(v) => Self::invalid_field(v.field, detail),
            Error::NotFound { kind, .. } => {
                let code = match kind {
                    "agent" => "agent_not_found",
                    "admin_token" => "admin_token_not_found",
                    "policy_version" => "policy_version_not_found",
                    "provider" => "provider_not_found",
                    "binding" => "binding_not_found",
                    "resource" => "resource_not_found",
                    "token" => "token_not_found",
                    "secret" => "secret_not_found",
                    _ => "not_found",
                };
                Self::new(StatusCode::NOT_FOUND, code, "Not found", detail)
            }
            Error::AlreadyExists { kind, .. } => {
                let code = match kind {
                    "agent" => "agent_exists",
                    "provider" => "provider_exists",
                    "resource" | "resource_audience" => "resource_exists",
                    _ => "already_exists",
                };
                Self::new(StatusCode::CONFLICT, code, "Already exists", detail)
            }
            Error::BindingTie(_) => Self::new(
                StatusCode::CONFLICT,
                "binding_tie",
                "Binding rules tie",
                detail,
            ),
            Error::AttestationRefused { .. } => Self::new(
                StatusCode::FORBIDDEN,
                "attestation_refused",
                "Attestation refused",
                detail,
            ),
            Error::InvalidState(_) => Self::new(
                StatusCode::CONFLICT,
                "invalid_state",
                "Invalid state",
                detail,
            ),
            Error::Conflict(_) => Self::new(
                StatusCode::CONFLICT,
                "concurrent_modification",
                "Concurrent modification",
                detail,
            ),
            Error::Unauthorized(_) => Self::unauthorized(detail),
            Error::InvalidPolicy(diagnostics) => {
                let mut e = Self::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_policy",
                    "Invalid policy",
                    detail,
                );
                e.errors = Some(Box::new(
                    serde_json::to_value(&diagnostics).unwrap_or_default(),
                ));
                e
            }
            Error::Internal(_) => {
                tracing::error!(error = %detail, "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "an internal error occurred",
                )
            }
            Error::Unavailable(source) => {
                tracing::error!(error = %source, "storage unavailable");
                Self::unavailable("storage is unavailable; nothing was changed")
            }
            // `Error` is non-exhaustive for other crates; a new variant is a
            // server error until it gets its own mapping.
            #[allow(unreachable_patterns)]
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "an internal error occurred",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem(None, None);
        let mut res = (self.status, axum::Json(&problem)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mandate-admin\""),
            );
        }
        res.extensions_mut().insert(self);
        res
    }
}
