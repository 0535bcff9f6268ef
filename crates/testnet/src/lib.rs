//! Test bed for Vantage: real network topologies built from network namespaces, veth pairs,
//! router namespaces and a userspace link impairer, removed on drop.
//!
//! Tests that need this bed need root. They call [`privileged`] first: outside CI a test without
//! root skips with a loud note on stderr; under `CI=true` (where CI runs as root) a missing
//! privilege is a failure, so a skipped test can never pass for a green run.

/// Guards for tests that need root or a system binary.
mod guard;

pub use guard::{in_ci, need_binary, privileged};
