//! The REST API under `/api/v1`, its OpenAPI 3 document, and the unauthenticated operational
//! endpoints (`/healthz`, `/readyz`, `/metrics`).
//!
//! The main decisions: routes are registered through `utoipa-axum`, so the OpenAPI document is
//! built from the very handlers that serve (a route cannot exist undocumented); every failure
//! leaves through one [`ApiError`] that picks the status and renders
//! `{"error":{"code","message","details"}}` without internals; JSON bodies are parsed by
//! [`ApiJson`] so malformed JSON, wrong types and unknown fields all get a 4xx sentence; every
//! `/api/v1` route needs a bearer token whose role covers the method.

/// `/agents` and `/enrollment-tokens`.
mod agents;
/// `/lookup/*` and `/asn-overrides`: lookups over the data directory.
pub(crate) mod lookup;
/// `/measurements`, including the live stream.
mod measurements;
/// Health, readiness, metrics and the OpenAPI document.
mod system;
/// Request and response bodies.
pub mod types;
/// Validation of agent descriptions (names, labels, locations), shared with enrolment.
pub(crate) mod validate;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{App, TokenInfo};
use crate::model::Role;
use types::{ErrorBody, ErrorDetail};

/// An API failure: status, stable code, sentence, optional details.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<serde_json::Value>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds structured details.
    pub fn details(mut self, d: serde_json::Value) -> Self {
        self.details = Some(d);
        self
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 422 with a code.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        // The sentence goes to the log; the client learns only that the server failed.
        tracing::error!("request failed: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server could not complete the request; its log says why",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                details: self.details,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// Parses a JSON body with errors a person can act on.
pub(crate) fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be JSON: send 'Content-Type: application/json'",
        ));
    }
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::bad_request(
            "invalid_body",
            format!("the request body does not fit: {e}"),
        ),
        _ => ApiError::bad_request(
            "invalid_json",
            format!("the request body is not valid JSON: {e}"),
        ),
    })
}

/// A JSON body parsed by [`parse_json`].
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_body",
                format!("cannot read the request body: {e}"),
            )
        })?;
        parse_json(&headers, &body).map(ApiJson)
    }
}

/// The role a request needs: reading is for viewers, creating measurements for operators,
/// managing agents and enrolment for admins.
fn needed_role(method: &Method, path: &str) -> Role {
    if method == Method::GET || method == Method::HEAD {
        Role::Viewer
    } else if path.starts_with("/api/v1/measurements") {
        Role::Operator
    } else {
        Role::Admin
    }
}

/// Checks the bearer token and its role; puts the [`TokenInfo`] into the request.
async fn auth(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(header) = header else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs an API token: send 'Authorization: Bearer <token>'",
        )
        .into_response();
    };
    let secret = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim);
    let Some(secret) = secret else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the Authorization header must be 'Bearer <token>'",
        )
        .into_response();
    };
    let Some(info) = app.authenticate(secret) else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the API token is not valid (unknown or revoked)",
        )
        .into_response();
    };
    let needed = needed_role(req.method(), req.uri().path());
    if !info.role.allows(needed) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this API token has the role {}, and this call needs {needed}",
                info.role
            ),
        )
        .into_response();
    }
    req.extensions_mut().insert::<TokenInfo>(info);
    next.run(req).await
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vantage API",
        description = "Distributed network measurements: create measurements on selected agents, follow their results live, manage agents and enrolment.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "measurements", description = "On-demand measurements from many agents"),
        (name = "agents", description = "Agents and their enrolment"),
        (name = "lookup", description = "IP calculator, MAC vendors, IP and AS facts, WHOIS, RDAP and local AS names"),
        (name = "system", description = "Health, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token: 'Authorization: Bearer vt_…'"))
                    .build(),
            ),
        );
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; the API lives under /api/v1 (see /api/v1/openapi.json)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method (see /api/v1/openapi.json)",
    )
}

/// The documented routes, split into the authenticated API and the open system endpoints.
fn routers() -> (OpenApiRouter<Arc<App>>, OpenApiRouter<Arc<App>>) {
    let api = OpenApiRouter::new()
        .routes(routes!(measurements::create, measurements::list))
        .routes(routes!(measurements::get_one))
        .routes(routes!(measurements::stream))
        .routes(routes!(agents::list))
        .routes(routes!(agents::get_one, agents::patch, agents::revoke))
        .routes(routes!(agents::create_enrollment_token))
        .routes(routes!(lookup::ipcalc))
        .routes(routes!(lookup::oui_search))
        .routes(routes!(lookup::oui))
        .routes(routes!(lookup::ip))
        .routes(routes!(lookup::asn))
        .routes(routes!(lookup::whois))
        .routes(routes!(lookup::rdap))
        .routes(routes!(lookup::overrides_list, lookup::overrides_create))
        .routes(routes!(
            lookup::overrides_get,
            lookup::overrides_put,
            lookup::overrides_delete
        ));
    let open = OpenApiRouter::new()
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .routes(routes!(system::metrics))
        .routes(routes!(system::openapi_json));
    (api, open)
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (api, open) = routers();
    let mut doc = ApiDoc::openapi();
    doc.merge(api.into_openapi());
    doc.merge(open.into_openapi());
    doc
}

/// The HTTP application of the API port.
pub(crate) fn router(app: Arc<App>) -> Router {
    let (api, open) = routers();
    let (api, _) = api.split_for_parts();
    let (open, _) = open.split_for_parts();
    let api = api.route_layer(middleware::from_fn_with_state(app.clone(), auth));
    api.merge(open)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_the_method_and_path() {
        assert_eq!(needed_role(&Method::GET, "/api/v1/agents"), Role::Viewer);
        assert_eq!(
            needed_role(&Method::POST, "/api/v1/measurements"),
            Role::Operator
        );
        assert_eq!(
            needed_role(&Method::DELETE, "/api/v1/agents/x"),
            Role::Admin
        );
        assert_eq!(
            needed_role(&Method::POST, "/api/v1/enrollment-tokens"),
            Role::Admin
        );
    }
}
