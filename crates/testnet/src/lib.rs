//! Test bed for Vantage: real network topologies on the running kernel, built from network
//! namespaces, veth pairs, router namespaces with forwarding, AnyIP ranges and a userspace link
//! impairer (delay, jitter, loss per direction), removed on drop — also when the test panics.
//!
//! ```no_run
//! use vantage_testnet::{Impairment, Link, Topology};
//! # fn main() -> Result<(), vantage_testnet::Error> {
//! if !vantage_testnet::privileged("my_test") { return Ok(()); }
//! let net = Topology::builder()
//!     .host("client")
//!     .router("r1")
//!     .host("server")
//!     .link("client", "r1", Link::v4("10.1.1.0/24").v6("fd00:1:1::/64"))
//!     .link("r1", "server", Link::v4("10.1.2.0/24").impair(Impairment::delay_ms(20.0)))
//!     .anyip("server", "10.200.0.0/16")
//!     .build()?;
//! let out = net.ns("client").command("ping").args(["-c1", "10.200.3.4"]).output();
//! let local = net.ns("server").run(|| std::net::UdpSocket::bind("10.1.2.2:0").unwrap().local_addr());
//! # let _ = (out, local); Ok(()) }
//! ```
//!
//! Tests that need this bed need root. They call [`privileged`] first: outside CI a test without
//! root skips with a loud note on stderr; under `CI=true` (where CI runs as root) a missing
//! privilege is a failure, so a skipped test can never pass for a green run.

/// Running `ip` and `ethtool`.
mod cmd;
/// A small authoritative DNS server on loopback, for DNS measurement tests.
pub mod dns_server;
/// The crate's error type.
mod error;
/// Guards for tests that need root or a system binary.
mod guard;
/// An HTTP/1.1 + HTTP/2 test server on loopback, plain or TLS, and a per-test CA.
pub mod http_server;
/// The userspace link impairer.
mod impair;
/// Network namespaces and running code inside them.
mod ns;
/// TOML scenarios.
mod scenario;
/// Statistics helpers for asserting measured numbers against ground truth.
pub mod stats;
/// The raw system calls (the only module with `unsafe`).
mod sys;
/// Reading the output of classic tools (iputils `ping`) run across a topology.
pub mod tools;
/// Topologies: builder, addressing, routes, teardown.
mod topology;

pub use error::{Error, Result};
pub use guard::{in_ci, need_binary, privileged};
pub use impair::{Direction, DirectionStats, Impairment, LinkStats, SPIN};
pub use ns::{NOBODY, Ns, PING_GROUP_ALL, cleanup_stale};
pub use topology::{Link, NodeKind, Topology, TopologyBuilder};
