//! The raw-socket layer every packet probe builds on: ICMP echo (ping, sweep), TCP SYN, UDP and
//! traceroute all send and receive through a [`Socket`] from here.
//!
//! What it gives a probe:
//! - sockets for IPv4 and IPv6: raw (`CAP_NET_RAW`) or unprivileged ICMP datagram sockets for
//!   ICMP, raw sockets for TCP and UDP, with TTL / hop limit, TOS / traffic class, DF, source
//!   address and interface set once at open time ([`Options`]);
//! - kernel timestamps: `SO_TIMESTAMPING` with software RX and TX stamps, TX stamps read back from
//!   the error queue and matched to their packet by `OPT_ID` (the key is chosen per packet with
//!   `SCM_TS_OPT_ID` where the kernel supports it, Linux 6.13+, and counted otherwise); falls back
//!   to `SO_TIMESTAMPNS` (receive only) when `SO_TIMESTAMPING` is refused. Every stamp says where
//!   it came from so results can report it;
//! - batched I/O: [`SendBatch`] goes out with one `sendmmsg`, [`RecvBatch`] comes in with one
//!   `recvmmsg`, with control messages parsed into [`Received`] (RX stamp, received TTL / hop
//!   limit, destination address, extended errors with the ICMP offender);
//! - ICMP errors two ways: on raw sockets they are ordinary ICMP packets whose quoted header
//!   [`icmp::parse`] decodes; on datagram sockets the kernel queues them on the error queue
//!   (`IP_RECVERR` / `IPV6_RECVERR`) with the original packet, which [`Received::error`] exposes;
//! - for TCP stream sockets (connect probes): the kernel's handshake RTT from `TCP_INFO` and the
//!   error queue of a connect an ICMP error aborted ([`tcp_handshake`], [`recv_errors_of`]).
//!
//! The main decision: this is hand-written on `libc` `sendmmsg` / `recvmmsg` with our own
//! control-message parsing, wrapped in tokio's `AsyncFd`, because no maintained crate gives kernel
//! TX stamps, batched I/O and error-queue access together, and the sweep's speed depends on all
//! three. It is the only module of the workspace allowed `unsafe`; every block says why it holds.
//!
//! Gotchas measured on Linux 6.18 and handled here: a control buffer under 512 bytes truncates
//! (`MSG_CTRUNC`) when an error cmsg and a stamp arrive together; a raw IPv4 ICMP socket sees every
//! ICMP packet of the host including its own echo requests on loopback (use
//! [`Socket::set_icmp_filter`] and match id, sequence and payload); unprivileged ICMP sockets
//! rewrite the echo identifier to their local port and deliver no IP header; the per-namespace
//! `net.ipv4.ping_group_range` decides whether they may be opened at all (even by root).
#![allow(unsafe_code)]

/// Batched `sendmmsg` / `recvmmsg` and control-message parsing.
mod batch;
/// ICMP and ICMPv6 packet building and parsing, including quoted headers of ICMP errors.
pub mod icmp;
/// Opening sockets, setting their options, and capability detection.
mod open;
/// Kernel and user-space timestamps on one clock.
mod stamp;
/// TCP stream sockets: the kernel's handshake RTT and the error queue of a failed connect.
mod stream;

pub use batch::{ExtendedError, MAX_BATCH, Received, RecvBatch, SendBatch};
pub(crate) use open::bind_error;
pub use open::{Mode, Options, Protocol, Socket, raw_sockets_allowed, settle_rx_stamps};
pub use stamp::{Stamp, StampSource};
pub use stream::{TcpHandshake, recv_errors_of, tcp_handshake};
