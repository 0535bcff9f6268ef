//! `/api/v1/agents` and `/api/v1/enrollment-tokens`.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use uuid::Uuid;
use vantage_proto::link::EnrollToken;

use super::types::{
    AgentList, AgentPatch, AgentView, EnrollmentTokenCreated, EnrollmentTokenRequest, ErrorBody,
};
use super::{ApiError, ApiJson, parse_json, validate};
use crate::app::{App, TokenInfo, hash_secret, new_secret};
use crate::model::AgentStatus;
use crate::store::{AgentChanges, AgentRow};

pub(crate) fn view(app: &App, a: AgentRow) -> AgentView {
    let status = if a.revoked_at.is_some() {
        AgentStatus::Revoked
    } else if app.hub.is_online(a.id) {
        AgentStatus::Online
    } else {
        AgentStatus::Offline
    };
    let link = app.hub.link(a.id);
    AgentView {
        id: a.id,
        name: a.name,
        status,
        labels: a.labels,
        country: a.country,
        city: a.city,
        region: a.region,
        asn: a.asn,
        version: a.version,
        capabilities: a.capabilities,
        seen_address: a.seen_address,
        connected_since: if status == AgentStatus::Online {
            link.connected_since.or(a.connected_since)
        } else {
            None
        },
        last_seen: link.last_seen.max(a.last_seen),
        enrolled_at: a.enrolled_at,
        certificate_expires_at: a.cert_not_after,
        revoked_at: a.revoked_at,
        builtin: a.builtin,
    }
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| {
        ApiError::bad_request("invalid_id", format!("'{id}' is not an agent id (a UUID)"))
    })
}

async fn find(app: &App, id: &str) -> Result<AgentRow, ApiError> {
    let id = parse_id(id)?;
    app.store
        .agent(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no agent has the id {id}")))
}

/// List agents with their status (online, offline, revoked).
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "agents",
    responses(
        (status = 200, description = "Every enrolled agent", body = AgentList),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(State(app): State<Arc<App>>) -> Result<axum::Json<AgentList>, ApiError> {
    let rows = app.store.agents().await?;
    Ok(axum::Json(AgentList {
        items: rows.into_iter().map(|a| view(&app, a)).collect(),
    }))
}

/// Read one agent.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}",
    tag = "agents",
    params(("id" = Uuid, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent", body = AgentView),
        (status = 400, description = "Not an agent id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_one(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<axum::Json<AgentView>, ApiError> {
    let a = find(&app, &id).await?;
    Ok(axum::Json(view(&app, a)))
}

fn changes_of(p: AgentPatch) -> Result<AgentChanges, ApiError> {
    let bad = |field: &str, m: String| {
        ApiError::unprocessable("invalid_field", m).details(serde_json::json!({"field": field}))
    };
    if let Some(n) = &p.name {
        validate::name(n).map_err(|m| bad("name", m))?;
    }
    if let Some(l) = &p.labels {
        validate::labels(l).map_err(|m| bad("labels", m))?;
    }
    let country = match p.country {
        Some(Some(c)) => Some(Some(validate::country(&c).map_err(|m| bad("country", m))?)),
        other => other,
    };
    if let Some(Some(c)) = &p.city {
        validate::place("the city", c).map_err(|m| bad("city", m))?;
    }
    if let Some(Some(r)) = &p.region {
        validate::place("the region", r).map_err(|m| bad("region", m))?;
    }
    Ok(AgentChanges {
        name: p.name,
        labels: p.labels,
        country,
        city: p.city,
        region: p.region,
        asn: p.asn,
    })
}

/// Change an agent's name, labels or location.
#[utoipa::path(
    patch,
    path = "/api/v1/agents/{id}",
    tag = "agents",
    params(("id" = Uuid, Path, description = "Agent id")),
    request_body(content = AgentPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed agent", body = AgentView),
        (status = 400, description = "Malformed JSON, wrong types or unknown fields", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 403, description = "The token is not an admin token", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 422, description = "Invalid values", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn patch(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    ApiJson(p): ApiJson<AgentPatch>,
) -> Result<axum::Json<AgentView>, ApiError> {
    let a = find(&app, &id).await?;
    let changes = changes_of(p)?;
    app.store.update_agent(a.id, &changes).await?;
    let a = app
        .store
        .agent(a.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no agent has the id {id}")))?;
    app.hub.update_facts(a.facts());
    Ok(axum::Json(view(&app, a)))
}

/// Revoke an agent: its session ends now and its certificate is refused from now on.
#[utoipa::path(
    delete,
    path = "/api/v1/agents/{id}",
    tag = "agents",
    params(("id" = Uuid, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The revoked agent", body = AgentView),
        (status = 400, description = "Not an agent id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 403, description = "The token is not an admin token", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "The built-in agent cannot be revoked", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn revoke(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<axum::Json<AgentView>, ApiError> {
    let a = find(&app, &id).await?;
    if a.builtin {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "builtin_agent",
            "the built-in local agent cannot be revoked; start the server with --no-local-agent instead",
        ));
    }
    app.store.revoke_agent(a.id, Utc::now()).await?;
    app.revoked
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(a.id);
    app.hub.disconnect(a.id);
    tracing::info!(agent = %a.id, name = %a.name, "agent revoked");
    let a = app.store.agent(a.id).await?.unwrap_or(a);
    Ok(axum::Json(view(&app, a)))
}

/// Create a one-time enrolment token. The token also carries the CA fingerprint, so the agent
/// can verify the server on first contact.
#[utoipa::path(
    post,
    path = "/api/v1/enrollment-tokens",
    tag = "agents",
    request_body(content = Option<EnrollmentTokenRequest>, content_type = "application/json"),
    responses(
        (status = 201, description = "The token (shown only here) and the enrolment command", body = EnrollmentTokenCreated),
        (status = 400, description = "Malformed JSON, wrong types or unknown fields", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 403, description = "The token is not an admin token", body = ErrorBody),
        (status = 422, description = "Invalid lifetime", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_enrollment_token(
    State(app): State<Arc<App>>,
    Extension(token): Extension<TokenInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: EnrollmentTokenRequest = if body.iter().all(u8::is_ascii_whitespace) {
        EnrollmentTokenRequest::default()
    } else {
        parse_json(&headers, &body)?
    };
    let ttl = req.ttl_seconds.unwrap_or(app.config.enrollment_token_ttl);
    if !ttl.is_finite() || !(10.0..=30.0 * 86400.0).contains(&ttl) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!("ttl_seconds is {ttl}; use a value from 10 to 2592000 (30 days)"),
        )
        .details(serde_json::json!({"field": "ttl_seconds"})));
    }
    let secret = new_secret();
    let expires_at = Utc::now() + chrono::Duration::milliseconds((ttl * 1000.0) as i64);
    app.store
        .insert_enroll_token(
            Uuid::now_v7(),
            &hash_secret(&secret),
            expires_at,
            Some(&token.id.to_string()),
        )
        .await?;
    let t = EnrollToken {
        secret,
        ca_fingerprint: app.pki.fingerprint().to_string(),
    };
    let text = t.to_string();
    let created = EnrollmentTokenCreated {
        command: format!(
            "vantage agent enroll --server {} --token {text}",
            app.agent_url
        ),
        token: text,
        expires_at,
        ca_fingerprint: app.pki.fingerprint().to_string(),
        agent_url: app.agent_url.clone(),
    };
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_are_validated_and_normalised() {
        let p: AgentPatch = serde_json::from_str(r#"{"country":"de","city":null}"#).unwrap();
        let c = changes_of(p).unwrap();
        assert_eq!(c.country, Some(Some("DE".into())));
        assert_eq!(c.city, Some(None), "null clears");
        assert_eq!(c.region, None, "absent leaves alone");
        let p: AgentPatch = serde_json::from_str(r#"{"name":"a,b"}"#).unwrap();
        assert!(changes_of(p).is_err());
        assert!(serde_json::from_str::<AgentPatch>(r#"{"colour":"red"}"#).is_err());
        assert!(serde_json::from_str::<AgentPatch>(r#"{"asn":"x"}"#).is_err());
    }
}
