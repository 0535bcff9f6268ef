//! Operational endpoints without authentication: liveness, readiness, Prometheus metrics and the
//! OpenAPI document (it holds no secrets, and tools fetch it before they have a token).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::types::Health;
use crate::app::App;

/// Liveness: the process serves requests.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "system",
    responses((status = 200, description = "Alive", body = Health))
)]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
        agents_connected: None,
    })
}

/// Readiness: the database answers and the server is not stopping.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "system",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready, and why", body = Health),
    )
)]
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let problem = if app.shutdown.is_cancelled() {
        Some("stopping".to_string())
    } else if let Err(e) = app.store.ping().await {
        Some(format!("database: {e}"))
    } else {
        None
    };
    let status = if problem.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        status,
        axum::Json(Health {
            status: problem.unwrap_or_else(|| "ok".into()),
            agents_connected: Some(app.hub.online_count()),
        }),
    )
        .into_response()
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "system",
    responses((status = 200, description = "Metrics in OpenMetrics text format", body = String, content_type = "application/openmetrics-text"))
)]
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}

/// This API's OpenAPI 3 document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "system",
    responses((status = 200, description = "The OpenAPI document", body = Object))
)]
pub async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(super::openapi())
}
