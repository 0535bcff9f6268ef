//! TCP probes, two ways.
//!
//! - **connect** times a full handshake through the kernel's own TCP stack: it needs no
//!   privilege and is what an application sees (a listening socket accepted it). Each probe is
//!   one connection, closed at once with a reset.
//! - **SYN** crafts the SYN on a raw socket (CAP_NET_RAW), matches the SYN-ACK, RST or ICMP error
//!   by ports and sequence numbers, times it with kernel stamps, and resets the half-open
//!   connection. It measures the network and the remote kernel, not the application, and never
//!   completes a connection.
//!
//! Both rotate source ports through the spec's range, one per probe, so each ECMP flow gets its
//! share, and report per probe, per source port and in total ([`TcpDetail::from_probes`]).
//! Outcome: `ok` when any probe found the port open, else `refused` when the host reset (or
//! answered with ICMP port unreachable), else `unreachable` when the path said so, else
//! `timeout` — each with a sentence.

/// Connect probes: handshakes through the kernel.
mod connect;
/// Building SYNs and resets, parsing answers, the raw socket's kernel filter.
mod segment;
/// SYN probes on a raw socket.
mod syn;

use chrono::Utc;
use tokio::time::Instant;
use vantage_proto::{Detail, Kind, MeasurementResult, ProbeStatus, TcpDetail, TcpMode, TcpSpec};

use crate::l4::{self, Run};
use crate::{Context, policy, resolve};

/// Why a TCP probe timed out, in general terms.
const TIMEOUT_HINT: &str = "a firewall may be dropping the packets, or the host is down";

/// Runs one TCP measurement.
pub(crate) async fn run(spec: &TcpSpec, cx: &Context) -> MeasurementResult {
    let started_at = Utc::now();
    let start = Instant::now();
    // TCP specs have no per-spec opt-in for non-global targets (like ping): the host's
    // context decides (the CLI permits them; agents serving remote users may not).
    let resolved = resolve(&spec.target, spec.family).await;
    let addr = match resolved.and_then(|a| policy::check(a, true, cx).map(|()| a)) {
        Ok(a) => a,
        Err(e) => {
            return l4::failure(
                Kind::Tcp,
                &spec.target,
                started_at,
                start,
                e.outcome(),
                e.to_string(),
            );
        }
    };
    let (run, what) = match spec.mode {
        TcpMode::Connect => (connect::run(spec, addr, cx).await, "TCP connect to"),
        TcpMode::Syn => (syn::run(spec, addr, cx).await, "TCP SYN probe to"),
    };
    let run: Run = match run {
        Ok(r) => r,
        Err(e) => {
            return l4::failure(
                Kind::Tcp,
                &spec.target,
                started_at,
                start,
                e.outcome(),
                e.to_string(),
            );
        }
    };
    let what = format!("{what} {}", l4::host_port(addr, spec.port));
    let (outcome, error) = l4::verdict(
        &what,
        spec.timeout,
        &run.records,
        &run.unsent,
        &[ProbeStatus::Open],
        TIMEOUT_HINT,
    );
    let quality = l4::quality(
        &run.records,
        &run.unsent,
        run.stamps,
        run.privileged,
        run.socket,
        run.notes,
    );
    let probes = run.records.into_iter().map(|r| r.probe).collect();
    let detail = TcpDetail::from_probes(addr, spec.port, spec.mode, probes);
    l4::envelope(
        Kind::Tcp,
        &spec.target,
        started_at,
        start,
        outcome,
        error,
        Detail::Tcp(detail),
        quality,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn the_measurement_future_is_send_so_agents_can_spawn_it() {
        let cx = Context::default();
        for mode in [TcpMode::Connect, TcpMode::Syn] {
            let mut spec = TcpSpec::new("192.0.2.1", 80);
            spec.mode = mode;
            assert_send(&run(&spec, &cx));
        }
    }

    #[tokio::test]
    async fn a_non_global_target_is_refused_when_the_host_forbids_it() {
        let cx = Context {
            allow_private: false,
            ..Context::default()
        };
        let r = run(&TcpSpec::new("127.0.0.1", 9), &cx).await;
        assert_eq!(r.outcome, vantage_proto::Outcome::BlockedByPolicy);
        assert!(r.error.unwrap().contains("loopback"));
        assert!(r.detail.is_none(), "nothing was sent");
    }
}
