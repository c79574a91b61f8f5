//! Admin API of governance: inventory and access reports, reviews, stale
//! agents, drift findings and registered tools.

use axum::Router;
use utoipa::OpenApi;

use crate::{AppState, middleware};

/// The governance part of the OpenAPI document (merged into the main one).
#[derive(OpenApi)]
#[openapi(tags((name = "governance", description = "Inventory, access review, review dates, stale agents and drift findings")))]
pub(crate) struct ApiDoc;

/// Governance routes, under `/admin/v1`, behind admin authentication.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new().layer(axum::middleware::from_fn_with_state(
        state,
        middleware::require_admin,
    ))
}
