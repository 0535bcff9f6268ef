//! HTTP measurements: one request (or a chain of them when following redirects), each timed by
//! phase, with status, headers, TLS facts and the certificate chain.
//!
//! Main decisions:
//! - Pulse's split: `connect_to` chooses the address while the URL's host stays the Host header
//!   and the TLS name, so one server of a pool can be tested by address. It applies to every hop
//!   whose host and port are the original URL's, like curl's `--connect-to`.
//! - Redirects are not followed unless asked; when they are, each hop is a fresh connection with
//!   its own timings and its own destination-policy check (a redirect to a private address is
//!   refused like a direct request would be).
//! - Outcomes: `ok` for 1xx–3xx, `http_status` for 4xx/5xx, and the failing phase's outcome
//!   (`dns_failure`, `blocked_by_policy`, `refused`, `timeout`, `tls_failure` …) otherwise.

/// One request, timed by phase.
mod fetch;
/// TLS client configuration, recording certificate verifier, certificate description.
mod tls;

use chrono::Utc;
use tokio::time::Instant;
use uuid::Uuid;
use vantage_proto::{
    Detail, HttpDetail, HttpMethod, HttpRedirectHop, HttpSpec, Kind, MeasurementResult, Outcome,
    Quality, SocketKind,
};

use crate::Context;
use fetch::{Fetched, Request};

/// Runs one HTTP measurement.
pub(crate) async fn run(spec: &HttpSpec, cx: &Context) -> MeasurementResult {
    let started_at = Utc::now();
    let start = Instant::now();
    let fail = |outcome: Outcome, error: String| {
        let mut r = MeasurementResult::failure(Kind::Http, &spec.url, outcome, error);
        r.started_at = started_at;
        r.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
        r
    };
    let first = match spec.parsed_url() {
        Ok(u) => u,
        Err(e) => return fail(Outcome::Internal, format!("invalid measurement: {e}")),
    };
    let first_port = first.port_or_known_default();
    let connect_to = match spec.connect_endpoint(first_port.unwrap_or(80)) {
        Ok(c) => c,
        Err(e) => return fail(Outcome::Internal, format!("invalid measurement: {e}")),
    };
    let mut url = first.clone();
    let method = spec.method;
    let mut hops: Vec<HttpRedirectHop> = Vec::new();
    let mut notes = Vec::new();
    let mut roots = None;
    let (fetched, failure) = loop {
        // Trust roots and the crypto library's set-up are needed for https only, and happen
        // before the request's clocks start.
        if url.scheme() == "https" && roots.is_none() {
            tls::warm_up();
            match tls::roots(spec.ca_cert.as_deref()) {
                Ok(r) => roots = Some(r),
                Err(e) => return fail(Outcome::Internal, e),
            }
        }
        let same_origin = url.host() == first.host() && url.port_or_known_default() == first_port;
        let request = Request {
            url: &url,
            method,
            connect_to: connect_to.as_ref().filter(|_| same_origin),
            spec,
            roots: roots.clone(),
            cx,
        };
        let f = tokio::select! {
            f = fetch::fetch(request) => f,
            () = cx.cancel.cancelled() => Fetched {
                failure: Some((Outcome::Cancelled, format!("the request to {url} was cancelled"))),
                ..Fetched::default()
            },
        };
        notes.extend(f.notes.iter().cloned());
        if let Some(failure) = f.failure.clone() {
            break (f, Some(failure));
        }
        let status = f.status.unwrap_or_default();
        let redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
        let Some(location) = f
            .location
            .clone()
            .filter(|_| redirect && spec.follow_redirects)
        else {
            break (f, None);
        };
        if hops.len() >= usize::from(spec.max_redirects) {
            let sentence = format!(
                "gave up after {} redirects (the limit); {url} redirects on to {location}",
                spec.max_redirects
            );
            break (f, Some((Outcome::ProtocolError, sentence)));
        }
        let next = match url.join(&location) {
            Ok(n) if matches!(n.scheme(), "http" | "https") => n,
            Ok(n) => {
                let sentence =
                    format!("{url} redirects to {n}, which is not an http:// or https:// URL");
                break (f, Some((Outcome::ProtocolError, sentence)));
            }
            Err(e) => {
                let sentence = format!("{url} redirects to '{location}', which is not a URL: {e}");
                break (f, Some((Outcome::ProtocolError, sentence)));
            }
        };
        hops.push(HttpRedirectHop {
            url: url.to_string(),
            status,
            location: Some(location),
            remote: f.remote.map(|a| a.to_string()),
            phases: f.phases,
        });
        url = next;
    };

    let (outcome, error) = match failure {
        Some((o, e)) => (o, Some(e)),
        None => match fetched.status {
            Some(s) if s >= 400 => (
                Outcome::HttpStatus,
                Some(format!(
                    "{url} answered {s}{}",
                    fetched.reason.map(|r| format!(" {r}")).unwrap_or_default()
                )),
            ),
            _ => (Outcome::Ok, None),
        },
    };
    if method == HttpMethod::Head && spec.body {
        notes.push("HEAD has no body to download".into());
    }
    MeasurementResult {
        id: Uuid::now_v7(),
        measurement_id: None,
        agent: None,
        kind: Kind::Http,
        target: spec.url.clone(),
        started_at,
        duration_ms: start.elapsed().as_secs_f64() * 1000.0,
        outcome,
        error,
        detail: Some(Detail::Http(Box::new(HttpDetail {
            url: url.to_string(),
            remote: fetched.remote.map(|a| a.to_string()),
            status: fetched.status,
            http_version: fetched.version,
            headers: fetched.headers,
            phases: fetched.phases,
            tls: fetched.tls,
            body_bytes: fetched.body_bytes,
            body_truncated: fetched.body_truncated,
            throughput_bps: fetched.throughput_bps,
            redirects: hops,
        }))),
        quality: Quality {
            socket: Some(SocketKind::Stream),
            notes,
            ..Quality::default()
        },
    }
}
