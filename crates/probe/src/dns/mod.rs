//! DNS measurements: one query to each chosen server (or to the system's resolvers), asked
//! concurrently, each answer timed and reported with its rcode, flags, sections and a dig-style
//! rendering.
//!
//! Main decisions:
//! - Messages are built and parsed with hickory-proto, but sent on our own UDP/TCP sockets so
//!   that the timing is ours and every attempt is visible (see `exchange`).
//! - A truncated UDP answer is retried over TCP, as resolvers do, and reported as `tcp_retry`.
//! - Outcomes: `ok` for NOERROR (an empty NODATA answer included), `dns_failure` for NXDOMAIN and
//!   SERVFAIL, `refused` for REFUSED or an ICMP port unreachable, `timeout` when nothing came.
//!   The envelope takes the first failing server's outcome; every server keeps its own.

/// One query to one server over UDP or TCP, with retries and timing.
mod exchange;
/// Records, flags, rcodes and dig-style text.
mod present;
/// Choosing the servers: given ones (resolved, policy-checked) or the system's resolvers.
mod servers;

use std::time::Duration;

use chrono::Utc;
use hickory_proto::rr::{Name, RecordType};
use tokio::time::Instant;
use uuid::Uuid;
use vantage_proto::{
    Detail, DnsDetail, DnsServerResult, DnsSpec, DnsTransport, Kind, MeasurementResult, Outcome,
    Quality, SocketKind, defaults, rr_type_name,
};

use crate::Context;
use exchange::{Exchange, Failure, Question};
use servers::Server;

/// Runs one DNS measurement.
pub(crate) async fn run(spec: &DnsSpec, cx: &Context) -> MeasurementResult {
    let started_at = Utc::now();
    let start = Instant::now();
    let fail = |outcome: Outcome, error: String| {
        let mut r = MeasurementResult::failure(Kind::Dns, &spec.name, outcome, error);
        r.started_at = started_at;
        r.duration_ms = ms(start.elapsed());
        r
    };
    let Some(code) = spec.qtype_code() else {
        return fail(
            Outcome::Internal,
            format!("'{}' is not a DNS record type", spec.qtype),
        );
    };
    let mut name = match Name::from_utf8(&spec.name) {
        Ok(n) => n,
        Err(e) => {
            return fail(
                Outcome::Internal,
                format!("'{}' is not a valid DNS name: {e}", spec.name),
            );
        }
    };
    name.set_fqdn(true);
    let servers = match servers::choose(spec, cx).await {
        Ok(s) => s,
        Err(sentence) => return fail(Outcome::Internal, sentence),
    };
    let edns = match (spec.edns_size, spec.dnssec) {
        (Some(size), dnssec) => Some((size, dnssec)),
        (None, true) => Some((defaults::DNS_EDNS_SIZE, true)),
        (None, false) => None,
    };
    let question = Question {
        name,
        rtype: RecordType::from(code),
        recursion: spec.recursion,
        edns,
    };
    let asks = servers.iter().map(|s| async {
        tokio::select! {
            r = ask(s, &question, spec) => r,
            () = cx.cancel.cancelled() => unanswered(
                s,
                spec.transport,
                Outcome::Cancelled,
                format!("the query to {} was cancelled before an answer came", s.given),
            ),
        }
    });
    let answers: Vec<DnsServerResult> = futures::future::join_all(asks).await;

    let failed: Vec<&DnsServerResult> = answers.iter().filter(|a| !a.outcome.is_ok()).collect();
    let outcome = failed.first().map_or(Outcome::Ok, |a| a.outcome);
    let error = (!failed.is_empty()).then(|| {
        failed
            .iter()
            .filter_map(|a| a.error.as_deref())
            .collect::<Vec<_>>()
            .join("; ")
    });
    let retried = answers.iter().filter(|a| a.tcp_retry).count();
    let mut notes = Vec::new();
    if retried > 0 {
        notes.push(format!(
            "{retried} server(s) truncated the UDP answer; the query was repeated over TCP"
        ));
    }
    MeasurementResult {
        id: Uuid::now_v7(),
        measurement_id: None,
        agent: None,
        kind: Kind::Dns,
        target: spec.name.clone(),
        started_at,
        duration_ms: ms(start.elapsed()),
        outcome,
        error,
        detail: Some(Detail::Dns(DnsDetail {
            name: question.name.to_ascii(),
            qtype: rr_type_name(code),
            servers: answers,
        })),
        quality: Quality {
            socket: Some(match spec.transport {
                DnsTransport::Udp => SocketKind::Dgram,
                DnsTransport::Tcp => SocketKind::Stream,
            }),
            notes,
            ..Quality::default()
        },
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Seconds as people write them: `2`, `0.5`, `1.25`.
pub(crate) fn secs(s: f64) -> String {
    let t = format!("{s:.3}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A server result without an answer.
fn unanswered(
    s: &Server,
    transport: DnsTransport,
    outcome: Outcome,
    error: String,
) -> DnsServerResult {
    DnsServerResult {
        server: match &s.addr {
            Ok(a) => a.to_string(),
            Err(_) => s.given.clone(),
        },
        outcome,
        error: Some(error),
        transport,
        tcp_retry: false,
        attempts: 0,
        rtt_ms: None,
        connect_ms: None,
        rcode: None,
        flags: Vec::new(),
        answers: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
        size: None,
        text: None,
    }
}

/// Asks one server, retrying over TCP when the UDP answer is truncated.
async fn ask(s: &Server, q: &Question, spec: &DnsSpec) -> DnsServerResult {
    let addr = match &s.addr {
        Ok(a) => *a,
        Err((outcome, sentence)) => {
            return unanswered(s, spec.transport, *outcome, sentence.clone());
        }
    };
    let timeout = Duration::from_secs_f64(spec.timeout);
    let tries = spec.retries.saturating_add(1);
    let (ex, transport, tcp_retry): (Exchange, DnsTransport, bool) = match spec.transport {
        DnsTransport::Tcp => (
            exchange::tcp(addr, q, timeout, tries).await,
            DnsTransport::Tcp,
            false,
        ),
        DnsTransport::Udp => {
            let udp = exchange::udp(addr, q, timeout, tries).await;
            match &udp.result {
                Ok(a) if a.message.metadata.truncation => {
                    let tcp = exchange::tcp(addr, q, timeout, tries).await;
                    let merged = Exchange {
                        attempts: udp.attempts + tcp.attempts,
                        connect: tcp.connect,
                        result: tcp.result,
                    };
                    (merged, DnsTransport::Tcp, true)
                }
                _ => (udp, DnsTransport::Udp, false),
            }
        }
    };
    let who = if s.given == addr.ip().to_string() || s.given == addr.to_string() {
        addr.to_string()
    } else {
        format!("{} ({addr})", s.given)
    };
    let qname = q.name.to_ascii();
    let qtype = rr_type_name(u16::from(q.rtype));
    let mut r = unanswered(s, transport, Outcome::Ok, String::new());
    r.error = None;
    r.tcp_retry = tcp_retry;
    r.attempts = ex.attempts;
    r.connect_ms = ex.connect.map(ms);
    let answer = match ex.result {
        Ok(a) => a,
        Err(f) => {
            let retry_note = if tcp_retry {
                "the UDP answer was truncated and the retry over TCP failed: "
            } else {
                ""
            };
            let (outcome, sentence) =
                describe_failure(&f, &who, addr.port(), transport, spec, ex.attempts);
            r.outcome = outcome;
            r.error = Some(if retry_note.is_empty() {
                sentence
            } else {
                format!("{retry_note}{sentence}")
            });
            return r;
        }
    };
    let m = &answer.message;
    let rcode = u16::from(m.metadata.response_code);
    let rcode_text = present::rcode_name(rcode);
    let (outcome, error) = match rcode {
        0 => (Outcome::Ok, None),
        3 => (
            Outcome::DnsFailure,
            Some(format!(
                "DNS lookup failed: {who} answered NXDOMAIN: {qname} does not exist"
            )),
        ),
        2 => (
            Outcome::DnsFailure,
            Some(format!(
                "DNS lookup failed: {who} answered SERVFAIL: the server could not resolve {qname} {qtype}"
            )),
        ),
        5 => (
            Outcome::Refused,
            Some(format!(
                "DNS lookup refused: {who} answered REFUSED: it will not answer {qname} {qtype} for this client"
            )),
        ),
        _ => (
            Outcome::ProtocolError,
            Some(format!(
                "DNS lookup failed: {who} answered {rcode_text} for {qname} {qtype}"
            )),
        ),
    };
    r.outcome = outcome;
    r.error = error;
    r.rtt_ms = Some(ms(answer.rtt));
    r.rcode = Some(rcode_text);
    r.flags = present::flags(&m.metadata);
    r.answers = m.answers.iter().map(present::record).collect();
    r.authority = m.authorities.iter().map(present::record).collect();
    r.additional = m.additionals.iter().map(present::record).collect();
    r.size = Some(answer.size);
    r.text = Some(present::dig_text(
        m,
        &present::Footer {
            server: addr,
            given: &s.given,
            transport,
            tcp_retry,
            rtt: answer.rtt,
            size: answer.size,
        },
    ));
    r
}

fn describe_failure(
    f: &Failure,
    who: &str,
    port: u16,
    transport: DnsTransport,
    spec: &DnsSpec,
    attempts: u8,
) -> (Outcome, String) {
    let over = match transport {
        DnsTransport::Udp => "",
        DnsTransport::Tcp => " over TCP",
    };
    match f {
        Failure::Timeout => (
            Outcome::Timeout,
            format!(
                "DNS lookup timed out: {who} did not answer{over} within {} s ({attempts} attempt{})",
                secs(spec.timeout),
                if attempts == 1 { "" } else { "s" }
            ),
        ),
        Failure::Refused => match transport {
            DnsTransport::Udp => (
                Outcome::Refused,
                format!(
                    "DNS lookup refused: {who} refused the query on UDP port {port} (ICMP port unreachable: nothing listens there)"
                ),
            ),
            DnsTransport::Tcp => (
                Outcome::Refused,
                format!("DNS lookup refused: {who} refused the TCP connection on port {port}"),
            ),
        },
        Failure::Unreachable(why) => (
            Outcome::Unreachable,
            format!("DNS lookup failed: {who} cannot be reached: {why}"),
        ),
        Failure::Malformed(what) => (
            Outcome::ProtocolError,
            format!("DNS lookup failed: {who} answered{over} with {what}"),
        ),
        Failure::Closed => (
            Outcome::ProtocolError,
            format!("DNS lookup failed: {who} closed the TCP connection without answering"),
        ),
        Failure::Local(e) => (
            Outcome::Internal,
            format!("DNS lookup could not be sent to {who}: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_written_without_needless_decimals() {
        assert_eq!(secs(2.0), "2");
        assert_eq!(secs(0.5), "0.5");
        assert_eq!(secs(1.25), "1.25");
    }
}
