//! The Vantage measurement engine.
//!
//! A probe measures once and returns a [`MeasurementResult`]; it never schedules (the agent's
//! scheduler decides when). Failures are data: a timeout, a refusal or an unresolvable name is a
//! result with an [`Outcome`](vantage_proto::Outcome) and a sentence, not an `Err`.
//!
//! The main decision: the ICMP engine is our own, on `socket2` + `recvmsg` with kernel
//! timestamps, because no maintained crate gives kernel TX/RX stamps or shares one socket across
//! many targets without a global lock on the receive path.

/// Run-time settings shared by every probe: privilege, destination policy, cancellation.
mod context;
/// DNS queries to chosen servers or the system's resolvers, timed, with dig-style text.
mod dns;
/// The engine's error type and its mapping to outcomes.
mod error;
/// HTTP(S) requests timed by phase, with TLS facts and the certificate chain.
mod http;
/// What the TCP and UDP probes share: source ports, schedule, per-probe log, verdict.
mod l4;
/// ICMP echo to one target or a sweep of many over shared sockets.
mod ping;
/// The destination policy: which addresses measurements may connect to.
pub mod policy;
/// Host name resolution for probe targets.
mod resolve;
/// The raw-socket layer shared by every packet probe: sockets, kernel timestamps, batched I/O,
/// ICMP parsing. The only module allowed `unsafe`.
pub mod sock;
/// TCP probes: connect (handshake through the kernel) and SYN (half-open, raw socket).
mod tcp;
/// Traceroute / mtr: Paris-style probes of every TTL at once, multipath discovery, rounds.
mod trace;
/// UDP probes timed by the ICMP port unreachable.
mod udp;

pub use context::{Context, Privilege};
pub use error::Error;
pub use resolve::{resolve, resolve_all};
pub use trace::{HopEnricher, enrich as enrich_trace};

use vantage_proto::{MeasurementResult, MeasurementSpec, Outcome, PingSpec};

/// Runs one measurement and returns its result. Never panics on bad network conditions; invalid
/// specs give an `internal` outcome naming the problem (callers validate first).
pub async fn run(spec: &MeasurementSpec, cx: &Context) -> MeasurementResult {
    if let Err(e) = spec.validate() {
        return MeasurementResult::failure(
            spec.kind(),
            spec.target(),
            Outcome::Internal,
            format!("invalid measurement: {e}"),
        );
    }
    match spec {
        MeasurementSpec::Ping(s) => ping::run_many(&[s], cx).await.remove(0),
        MeasurementSpec::Tcp(s) => tcp::run(s, cx).await,
        MeasurementSpec::Udp(s) => udp::run(s, cx).await,
        MeasurementSpec::Dns(s) => dns::run(s, cx).await,
        MeasurementSpec::Trace(s) => trace::run(s, cx).await,
        MeasurementSpec::Http(s) => http::run(s, cx).await,
    }
}

/// Runs several measurements together, concurrently. Kinds that can share sockets (ping) do
/// so; results come back in the order of `specs`.
pub async fn run_many(specs: &[MeasurementSpec], cx: &Context) -> Vec<MeasurementResult> {
    // Valid ping specs go to the engine together (one socket per family for all of them);
    // everything else runs one by one through `run`.
    let pings: Option<Vec<&PingSpec>> = specs
        .iter()
        .map(|s| match s {
            MeasurementSpec::Ping(p) if s.validate().is_ok() => Some(p),
            _ => None,
        })
        .collect();
    if let Some(pings) = pings {
        return ping::run_many(&pings, cx).await;
    }
    let mut results: Vec<Option<MeasurementResult>> = vec![None; specs.len()];
    let mut pings = Vec::new();
    let mut ping_at = Vec::new();
    let mut is_ping = vec![false; specs.len()];
    for (i, spec) in specs.iter().enumerate() {
        if let MeasurementSpec::Ping(p) = spec
            && spec.validate().is_ok()
        {
            pings.push(p);
            ping_at.push(i);
            is_ping[i] = true;
        }
    }
    let others = specs
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_ping[*i])
        .map(|(i, s)| async move { (i, run(s, cx).await) });
    let (ping_results, other_results) = futures::future::join(
        ping::run_many(&pings, cx),
        futures::future::join_all(others),
    )
    .await;
    for (i, r) in ping_at.into_iter().zip(ping_results) {
        results[i] = Some(r);
    }
    for (i, r) in other_results {
        results[i] = Some(r);
    }
    results.into_iter().flatten().collect()
}
