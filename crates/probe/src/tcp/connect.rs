//! TCP connect probes: one non-blocking `connect()` per probe through the kernel's stack, which
//! works without any privilege.
//!
//! Decisions:
//! - **Timing.** A completed handshake reports the kernel's own sample (`TCP_INFO`: SYN sent →
//!   SYN-ACK processed, microseconds, no task wake-up in it). When the SYN had to be
//!   retransmitted the kernel takes no sample (Karn's rule) and the probe reports the user-space
//!   time around `connect()`, which then includes the retransmission wait, as the user felt it.
//!   Refusals and ICMP errors are timed in user space (the kernel keeps no stamp of them).
//! - **Closing.** Every connection is closed at once with `SO_LINGER` 0, i.e. with a reset: no
//!   TIME_WAIT is left on this host (60 s per connection otherwise, and a rotated source port
//!   could not connect to the same target again meanwhile) nor on the target, and the server's
//!   application sees a connection reset, as after a port scanner's connect. A graceful FIN
//!   close would leave our side in TIME_WAIT for every probe.
//! - **Ports.** Probes of one source port run one after another (two connections cannot share a
//!   four-tuple), those of different ports run concurrently, each at its scheduled time. The
//!   ports stay bound by a [`PortHold`] for the whole run, and each probe's socket binds its port
//!   beside it with `SO_REUSEADDR`.
//! - **Errors.** `IP_RECVERR` / `IPV6_RECVERR` on each socket keeps the ICMP error that aborted a
//!   connect on the error queue, so the result says which router reported what.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::try_join_all;
use tokio::io::Interest;
use tokio::time::Instant;
use vantage_proto::{Family, PortProbe, ProbeStatus, SocketKind, TcpSpec, TimestampSource};

use crate::l4::{self, PortHold, Record, Run};
use crate::sock::{self, RecvBatch, Stamp, StampSource, bind_error};
use crate::{Context, Error};

/// Runs every probe of a connect measurement to `addr`.
pub(super) async fn run(spec: &TcpSpec, addr: IpAddr, cx: &Context) -> Result<Run, Error> {
    let local = spec.source.unwrap_or_else(|| l4::unspecified_like(addr));
    let hold = PortHold::tcp(local, l4::ports_in_use(spec.source_ports, spec.count))?;
    let ports = hold.ports.clone();
    let dst = SocketAddr::new(addr, spec.port);
    let _claim = l4::Claim::new(6, &ports, dst)?;
    let interval = Duration::from_secs_f64(spec.interval);
    let timeout = Duration::from_secs_f64(spec.timeout);
    let start = Instant::now();
    let attempts: Mutex<Vec<Option<Attempt>>> = Mutex::new(vec![None; spec.count as usize]);
    let chains = (0..ports.len()).map(|first| {
        let (attempts, ports) = (&attempts, &ports);
        async move {
            let step = ports.len();
            for seq in (first..spec.count as usize).step_by(step) {
                let seq = seq as u32;
                let at = l4::due(start, interval, seq);
                tokio::time::sleep_until(at).await;
                let late_ms = Instant::now().saturating_duration_since(at).as_secs_f64() * 1e3;
                let bind = SocketAddr::new(local, ports[first]);
                let mut attempt = probe(dst, bind, spec, timeout).await?;
                if let Attempt::Done(rec) = &mut attempt {
                    rec.probe.seq = seq;
                    rec.late_ms = Some(late_ms);
                }
                l4::lock(attempts)[seq as usize] = Some(attempt);
            }
            Ok::<(), Error>(())
        }
    });
    tokio::select! {
        r = try_join_all(chains) => { r?; }
        () = cx.cancel.cancelled() => {}
    }
    drop(hold);
    let mut records = Vec::new();
    let mut unsent = Vec::new();
    for a in attempts
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .flatten()
    {
        match a {
            Attempt::Done(r) => records.push(r),
            Attempt::Unsent(why) => unsent.push(why),
        }
    }
    let mut notes = Vec::new();
    let retried = records
        .iter()
        .filter(|r| {
            r.probe.status == ProbeStatus::Open
                && r.sources == Some((StampSource::User, StampSource::User))
        })
        .count();
    if retried > 0 {
        notes.push(format!(
            "{retried} handshake(s) needed a retransmitted SYN; their time is measured in user \
             space and includes the retransmission wait"
        ));
    }
    Ok(Run {
        records,
        unsent,
        socket: SocketKind::Stream,
        privileged: false,
        stamps: (TimestampSource::Kernel, TimestampSource::Kernel),
        notes,
    })
}

/// What became of one connection attempt.
#[derive(Debug, Clone)]
enum Attempt {
    /// The SYN left; the record says what came back.
    Done(Record),
    /// The kernel refused to start the connect (no route …), for this reason.
    Unsent(String),
}

/// One connection attempt from `bind` to `dst`. `Err` only for local setup failures (a port
/// that cannot be bound …); everything the network does is an attempt.
async fn probe(
    dst: SocketAddr,
    bind: SocketAddr,
    spec: &TcpSpec,
    timeout: Duration,
) -> Result<Attempt, Error> {
    let family = Family::of(dst.ip());
    let s = l4::tcp_socket(dst.ip())?;
    let set = |what: &str, r: io::Result<()>| {
        r.map_err(|e| Error::socket(format!("cannot set {what} on a TCP socket"), e))
    };
    set("SO_REUSEADDR", s.set_reuse_address(true))?;
    if let Some(ttl) = spec.ttl {
        match family {
            Family::Ipv4 => set("the TTL", s.set_ttl_v4(u32::from(ttl)))?,
            Family::Ipv6 => set("the hop limit", s.set_unicast_hops_v6(u32::from(ttl)))?,
        }
    }
    if let Some(tos) = spec.tos {
        match family {
            Family::Ipv4 => set("the TOS", s.set_tos_v4(u32::from(tos)))?,
            Family::Ipv6 => set("the traffic class", s.set_tclass_v6(u32::from(tos)))?,
        }
    }
    let recverr = match family {
        Family::Ipv4 => {
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv4RecvErr, &true)
        }
        Family::Ipv6 => {
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv6RecvErr, &true)
        }
    };
    set("ICMP error reporting", recverr.map_err(io::Error::from))?;
    s.bind(&bind.into()).map_err(|e| bind_error(bind, e))?;
    let src_port = s
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map_or(bind.port(), |a| a.port());
    let record = |status, rtt_ms, sources, from, why| Record {
        probe: PortProbe {
            seq: 0,
            src_port,
            status,
            rtt_ms,
            from,
        },
        sources,
        late_ms: None,
        why,
    };

    let t0 = Stamp::now();
    match s.connect(&dst.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {
            return Err(Error::Invalid(format!(
                "cannot connect from source port {} to {dst}: that connection already exists \
                 on this host",
                bind.port()
            )));
        }
        Err(e) => return Ok(Attempt::Unsent(l4::local_why(&e, dst.ip()))),
    }
    let stream = tokio::net::TcpStream::from_std(std::net::TcpStream::from(s))
        .map_err(|e| Error::socket("cannot register a TCP socket with the runtime", e))?;
    let done = tokio::time::timeout(timeout, established(&stream)).await;
    let t1 = Stamp::now();
    let user_rtt = t1.ms_since(t0);
    let rec = match done {
        Err(_) => record(ProbeStatus::Timeout, None, None, None, None),
        Ok(Ok(())) => {
            let kernel = sock::tcp_handshake(stream.as_fd())
                .ok()
                .filter(|h| h.retransmits == 0 && h.rtt_us > 0);
            match kernel {
                Some(h) => record(
                    ProbeStatus::Open,
                    Some(f64::from(h.rtt_us) / 1000.0),
                    Some((StampSource::Kernel, StampSource::Kernel)),
                    None,
                    None,
                ),
                None => record(
                    ProbeStatus::Open,
                    Some(user_rtt),
                    Some((StampSource::User, StampSource::User)),
                    None,
                    None,
                ),
            }
        }
        Ok(Err(e)) => {
            let icmp = icmp_error(&stream, dst.ip());
            let user = Some((StampSource::User, StampSource::User));
            match (e.raw_os_error(), icmp) {
                (Some(libc::ECONNREFUSED), None) => {
                    record(ProbeStatus::Refused, Some(user_rtt), user, None, None)
                }
                (Some(libc::ETIMEDOUT), None) => {
                    record(ProbeStatus::Timeout, None, None, None, None)
                }
                (_, Some((status, from, why))) => {
                    record(status, Some(user_rtt), user, from, Some(why))
                }
                (_, None) => {
                    let why = l4::local_why(&e, dst.ip());
                    record(ProbeStatus::Unreachable, None, None, None, Some(why))
                }
            }
        }
    };
    close(stream);
    Ok(Attempt::Done(rec))
}

/// Waits until the connect completes: `Ok` when established, the connect's error otherwise.
async fn established(stream: &tokio::net::TcpStream) -> io::Result<()> {
    loop {
        stream.writable().await?;
        let r = stream.try_io(Interest::WRITABLE, || {
            if let Some(e) = stream.take_error()? {
                return Ok(Err(e));
            }
            match stream.peer_addr() {
                Ok(_) => Ok(Ok(())),
                // Still in SYN-SENT: the wake-up was spurious.
                Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Ok(Err(e)),
            }
        });
        match r {
            Ok(result) => return result,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The ICMP error that aborted the connect, from the socket's error queue: the probe's status,
/// the router that sent it (when not the target) and what it said.
fn icmp_error(
    stream: &tokio::net::TcpStream,
    target: IpAddr,
) -> Option<(ProbeStatus, Option<IpAddr>, String)> {
    let mut batch = RecvBatch::new(4, 256);
    let n = sock::recv_errors_of(stream.as_fd(), &mut batch).ok()?;
    let e = batch
        .iter()
        .take(n)
        .find_map(|r| r.error.filter(|e| e.is_icmp()))?;
    let family = Family::of(target);
    let (from, why) = l4::icmp_why(target, e.offender, e.icmp_type, e.icmp_code, e.info);
    let status = if l4::is_port_unreachable(family, e.icmp_type, e.icmp_code) && from.is_none() {
        ProbeStatus::Refused
    } else {
        ProbeStatus::Unreachable
    };
    Some((status, from, why))
}

/// Closes with a reset (`SO_LINGER` 0): no TIME_WAIT on either side.
fn close(stream: tokio::net::TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}
