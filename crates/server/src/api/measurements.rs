//! `/api/v1/measurements`: create, list, read, and follow live.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;
use vantage_proto::{Kind, MeasurementSpec, Selector};

use super::types::{
    AgentRef, EntryCounts, EntryView, ErrorBody, MeasurementCreated, MeasurementPage,
    MeasurementQuery, MeasurementRequest, MeasurementSummary, MeasurementView,
};
use super::{ApiError, parse_json};
use crate::app::{App, Event, TokenInfo};
use crate::lifecycle::{Coordinator, CreateError, agent_ref};
use crate::model::MeasurementStatus;
use crate::store::{MeasurementFilter, MeasurementRow};

/// Default page size of the list.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page size.
const MAX_LIMIT: u32 = 1000;

/// Splits the body into the selector and the spec, and validates both.
fn parse_request(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(MeasurementSpec, String, Selector), ApiError> {
    let value: serde_json::Value = parse_json(headers, body)?;
    let serde_json::Value::Object(mut map) = value else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the request body must be a JSON object: the spec's fields with 'agents' beside them",
        ));
    };
    let selector_text = match map.remove("agents") {
        Some(serde_json::Value::String(s)) => s,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!("'agents' must be a selector string such as \"country:DE@3\", not {other}"),
            )
            .details(serde_json::json!({"field": "agents"})));
        }
        None => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "'agents' is missing: say which agents run the measurement, for example \"all\" or \"country:DE@3\"",
            )
            .details(serde_json::json!({"field": "agents"})));
        }
    };
    let spec: MeasurementSpec =
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| {
            ApiError::bad_request(
                "invalid_body",
                format!("the measurement spec does not fit: {e}"),
            )
        })?;
    spec.validate().map_err(|e| {
        ApiError::unprocessable(
            "invalid_field",
            format!("invalid {}: {}", e.field, e.message),
        )
        .details(serde_json::json!({"field": e.field}))
    })?;
    let selector: Selector = selector_text
        .parse()
        .map_err(|e: vantage_proto::SelectorError| {
            ApiError::unprocessable("invalid_selector", e.to_string())
                .details(serde_json::json!({"field": "agents"}))
        })?;
    Ok((spec, selector_text, selector))
}

/// Create a measurement on the selected agents.
#[utoipa::path(
    post,
    path = "/api/v1/measurements",
    tag = "measurements",
    request_body(content = MeasurementRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Created; results follow on the stream", body = MeasurementCreated),
        (status = 400, description = "Malformed JSON, wrong types or unknown fields", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid values, invalid selector, or no agent matches", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(app): State<Arc<App>>,
    Extension(token): Extension<TokenInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (spec, text, selector) = parse_request(&headers, &body)?;
    match Coordinator::create(&app, spec, &text, &selector, Some(token.id)).await {
        Ok(created) => {
            let location = format!("/api/v1/measurements/{}", created.id);
            Ok((
                StatusCode::ACCEPTED,
                [(axum::http::header::LOCATION, location)],
                axum::Json(created),
            )
                .into_response())
        }
        Err(CreateError::NoAgents(m)) => Err(ApiError::unprocessable("no_agents", m)),
        Err(CreateError::UnknownMeasurement(id)) => Err(ApiError::unprocessable(
            "invalid_selector",
            format!("the selector refers to measurement {id}, which does not exist"),
        )
        .details(serde_json::json!({"field": "agents"}))),
        Err(CreateError::Store(e)) => Err(e.into()),
    }
}

fn parse_time(name: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                format!(
                    "'{name}' must be an RFC 3339 time such as 2026-11-21T06:00:00Z, not '{v}'"
                ),
            )
        })
}

fn filter_of(q: &MeasurementQuery) -> Result<MeasurementFilter, ApiError> {
    let bad = |m: String| ApiError::bad_request("invalid_query", m);
    let kind = q
        .kind
        .as_deref()
        .map(|k| k.parse::<Kind>().map_err(|e| bad(e.message)))
        .transpose()?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse::<MeasurementStatus>()
                .map_err(|e| bad(format!("'status': {e}")))
        })
        .transpose()?;
    let agent = q
        .agent
        .as_deref()
        .map(|a| {
            Uuid::parse_str(a)
                .map_err(|_| bad(format!("'agent' must be an agent id (a UUID), not '{a}'")))
        })
        .transpose()?;
    let before_id = q
        .cursor
        .as_deref()
        .map(|c| {
            Uuid::parse_str(c)
                .map_err(|_| bad(format!("'{c}' is not a cursor from a previous page")))
        })
        .transpose()?;
    let limit = match q.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(bad(format!(
                    "'limit' must be a whole number from 1 to {MAX_LIMIT}, not '{l}'"
                )));
            }
        },
    };
    Ok(MeasurementFilter {
        kind,
        status,
        target: q.target.clone(),
        agent,
        since: q
            .since
            .as_deref()
            .map(|s| parse_time("since", s))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .map(|s| parse_time("until", s))
            .transpose()?,
        before_id,
        limit,
    })
}

/// List measurements, newest first, with filters and cursor pagination.
#[utoipa::path(
    get,
    path = "/api/v1/measurements",
    tag = "measurements",
    params(MeasurementQuery),
    responses(
        (status = 200, description = "A page of measurements", body = MeasurementPage),
        (status = 400, description = "Invalid filter or cursor", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<Arc<App>>,
    query: Result<Query<MeasurementQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<MeasurementPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let f = filter_of(&q)?;
    let mut rows = app.store.list_measurements(&f).await?;
    let more = rows.len() > f.limit as usize;
    rows.truncate(f.limit as usize);
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let counts = app.store.entry_counts(&ids).await?;
    let next_cursor = if more {
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let items = rows
        .into_iter()
        .map(|r| MeasurementSummary {
            counts: counts
                .get(&r.id)
                .map(EntryCounts::from_map)
                .unwrap_or_default(),
            id: r.id,
            kind: r.spec.kind().to_string(),
            target: r.spec.target().to_string(),
            agents: r.selector,
            status: r.status,
            created_at: r.created_at,
            finished_at: r.finished_at,
        })
        .collect();
    Ok(axum::Json(MeasurementPage { items, next_cursor }))
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("'{id}' is not a measurement id (a UUID)"),
        )
    })
}

async fn load(app: &App, id: Uuid) -> Result<(MeasurementRow, Vec<EntryView>), ApiError> {
    let Some(m) = app.store.measurement(id).await? else {
        return Err(ApiError::not_found(format!(
            "no measurement has the id {id}"
        )));
    };
    let agents: HashMap<Uuid, AgentRef> = app
        .store
        .agents()
        .await?
        .iter()
        .map(|a| (a.id, agent_ref(a)))
        .collect();
    let entries = app
        .store
        .entries(id)
        .await?
        .into_iter()
        .map(|(e, result)| EntryView {
            agent: agents.get(&e.agent_id).cloned().unwrap_or(AgentRef {
                id: e.agent_id,
                name: e.agent_id.to_string(),
                country: None,
                city: None,
                region: None,
                asn: None,
            }),
            status: e.status,
            reason: e.reason,
            late: e.late,
            result,
        })
        .collect();
    Ok((m, entries))
}

/// Read a measurement: its spec, status, and one entry per selected agent.
#[utoipa::path(
    get,
    path = "/api/v1/measurements/{id}",
    tag = "measurements",
    params(("id" = Uuid, Path, description = "Measurement id")),
    responses(
        (status = 200, description = "The measurement", body = MeasurementView),
        (status = 400, description = "Not a measurement id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 404, description = "No such measurement", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_one(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<axum::Json<MeasurementView>, ApiError> {
    let id = parse_id(&id)?;
    let (m, results) = load(&app, id).await?;
    let mut counts = EntryCounts::default();
    for e in &results {
        counts.add(e.status);
    }
    Ok(axum::Json(MeasurementView {
        id: m.id,
        spec: m.spec,
        agents: m.selector,
        status: m.status,
        created_at: m.created_at,
        deadline: m.deadline,
        finished_at: m.finished_at,
        counts,
        results,
    }))
}

fn sse(name: &str, data: &impl serde::Serialize) -> SseEvent {
    SseEvent::default()
        .event(name)
        .data(serde_json::to_string(data).unwrap_or_default())
}

/// Follow a measurement live (Server-Sent Events).
///
/// Events: `measurement` once (the measurement without results), then `result` for each agent
/// as its entry becomes final (already final ones first), then `end` with the final counts.
#[utoipa::path(
    get,
    path = "/api/v1/measurements/{id}/stream",
    tag = "measurements",
    params(("id" = Uuid, Path, description = "Measurement id")),
    responses(
        (status = 200, description = "text/event-stream of `measurement`, `result` (an EntryView) and `end` (EntryCounts) events", content_type = "text/event-stream", body = String),
        (status = 400, description = "Not a measurement id", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 404, description = "No such measurement", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn stream(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    // Subscribe before reading the snapshot so nothing falls between the two.
    let sub = app.events.subscribe();
    let (m, entries) = load(&app, id).await?;
    let (tx, rx) = mpsc::channel::<SseEvent>(256);
    tokio::spawn(feed(app.clone(), m, entries, sub, tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Produces the events of one stream until the measurement ends or the client leaves.
async fn feed(
    app: Arc<App>,
    m: MeasurementRow,
    entries: Vec<EntryView>,
    mut sub: broadcast::Receiver<Arc<Event>>,
    tx: mpsc::Sender<SseEvent>,
) {
    let id = m.id;
    let mut counts = EntryCounts::default();
    for e in &entries {
        counts.add(e.status);
    }
    let head = MeasurementView {
        id,
        spec: m.spec.clone(),
        agents: m.selector.clone(),
        status: m.status,
        created_at: m.created_at,
        deadline: m.deadline,
        finished_at: m.finished_at,
        counts: counts.clone(),
        results: Vec::new(),
    };
    if tx.send(sse("measurement", &head)).await.is_err() {
        return;
    }
    let mut sent: HashSet<(Uuid, bool)> = HashSet::new();
    let send_final = |e: &EntryView, sent: &mut HashSet<(Uuid, bool)>| {
        // A late result is a second, different event for the same agent.
        (e.status.is_final() && sent.insert((e.agent.id, e.late))).then(|| sse("result", e))
    };
    for e in &entries {
        if let Some(ev) = send_final(e, &mut sent)
            && tx.send(ev).await.is_err()
        {
            return;
        }
    }
    if m.status == MeasurementStatus::Finished {
        let _ = tx.send(sse("end", &counts)).await;
        return;
    }
    loop {
        let ev = tokio::select! {
            ev = sub.recv() => ev,
            _ = tx.closed() => return,
            _ = app.shutdown.cancelled() => return,
        };
        match ev {
            Ok(ev) if ev.measurement_id() == id => match &*ev {
                Event::Entry { entry, .. } => {
                    if let Some(e) = send_final(entry, &mut sent)
                        && tx.send(e).await.is_err()
                    {
                        return;
                    }
                }
                Event::Finished { counts, .. } => {
                    let _ = tx.send(sse("end", counts)).await;
                    return;
                }
            },
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Fell behind the live events: catch up from storage.
                let Ok((m, entries)) = load(&app, id).await else {
                    return;
                };
                for e in &entries {
                    if let Some(ev) = send_final(e, &mut sent)
                        && tx.send(ev).await.is_err()
                    {
                        return;
                    }
                }
                if m.status == MeasurementStatus::Finished {
                    let mut counts = EntryCounts::default();
                    for e in &entries {
                        counts.add(e.status);
                    }
                    let _ = tx.send(sse("end", &counts)).await;
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h
    }

    fn err(body: &str) -> (StatusCode, String) {
        let e = parse_request(&json_headers(), body.as_bytes()).unwrap_err();
        (e.status, e.message)
    }

    #[test]
    fn a_valid_request_splits_into_spec_and_selector() {
        let (spec, text, sel) = parse_request(
            &json_headers(),
            br#"{"type":"ping","target":"192.0.2.1","count":3,"interval":0.2,"agents":"country:DE@3"}"#,
        )
        .unwrap();
        assert_eq!(spec.kind(), Kind::Ping);
        assert_eq!(text, "country:DE@3");
        assert_eq!(sel.alternatives[0].limit, Some(3));
    }

    #[test]
    fn bad_requests_get_clear_statuses() {
        let cases = [
            (
                r#"{"type":"ping","target":"192.0.2.1""#,
                StatusCode::BAD_REQUEST,
                "not valid JSON",
            ),
            (r#"["ping"]"#, StatusCode::BAD_REQUEST, "JSON object"),
            (
                r#"{"type":"ping","target":"192.0.2.1"}"#,
                StatusCode::BAD_REQUEST,
                "'agents' is missing",
            ),
            (
                r#"{"type":"ping","target":"192.0.2.1","agents":3}"#,
                StatusCode::BAD_REQUEST,
                "selector string",
            ),
            (
                r#"{"type":"ping","target":"192.0.2.1","cuont":3,"agents":"all"}"#,
                StatusCode::BAD_REQUEST,
                "cuont",
            ),
            (
                r#"{"type":"ping","target":"192.0.2.1","count":"three","agents":"all"}"#,
                StatusCode::BAD_REQUEST,
                "invalid type",
            ),
            (
                r#"{"type":"smoke","target":"192.0.2.1","agents":"all"}"#,
                StatusCode::BAD_REQUEST,
                "smoke",
            ),
            (
                r#"{"type":"ping","target":"192.0.2.1","count":0,"agents":"all"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid count",
            ),
            (
                r#"{"type":"ping","target":"bad host!","agents":"all"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid target",
            ),
            (
                r#"{"type":"ping","target":"192.0.2.1","agents":"country:Germany"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "two-letter",
            ),
        ];
        for (body, status, needle) in cases {
            let (s, m) = err(body);
            assert_eq!(s, status, "{body}: {m}");
            assert!(m.contains(needle), "{body}: {m}");
        }
        let e = parse_request(&HeaderMap::new(), b"{}").unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn list_filters_are_checked() {
        let q = |f: fn(&mut MeasurementQuery)| {
            let mut q = MeasurementQuery::default();
            f(&mut q);
            filter_of(&q)
        };
        assert!(q(|_| {}).is_ok());
        assert!(q(|q| q.kind = Some("icmp".into())).is_err());
        assert!(q(|q| q.status = Some("done".into())).is_err());
        assert!(q(|q| q.limit = Some("0".into())).is_err());
        assert!(q(|q| q.limit = Some("1001".into())).is_err());
        assert!(q(|q| q.since = Some("yesterday".into())).is_err());
        assert!(q(|q| q.cursor = Some("x".into())).is_err());
        assert_eq!(q(|q| q.limit = Some("7".into())).unwrap().limit, 7);
    }
}
