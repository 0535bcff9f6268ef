//! Settings a probe runs under that are not part of the measurement spec: what the host allows
//! (privilege, destination policy) and when to stop (cancellation).

use tokio_util::sync::CancellationToken;

/// Which sockets a probe may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Privilege {
    /// Raw sockets when the process has CAP_NET_RAW, unprivileged sockets otherwise.
    #[default]
    Auto,
    /// Raw sockets only; fail if they cannot be opened.
    Raw,
    /// Never raw sockets (unprivileged ICMP datagram sockets, TCP connect).
    Unprivileged,
}

/// Settings shared by every probe of a run.
#[derive(Debug, Clone)]
pub struct Context {
    /// Which sockets may be used.
    pub privilege: Privilege,
    /// Whether the host permits measurements towards non-global addresses (loopback, RFC 1918,
    /// link-local …) when a spec asks for it. Agents running jobs for remote users keep this off.
    pub allow_private: bool,
    /// Packets per second across all targets of a multi-target run; 0 means as fast as the
    /// socket takes them.
    pub rate: u32,
    /// Cancelled when the run must stop early; probes return what they have.
    pub cancel: CancellationToken,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            privilege: Privilege::Auto,
            allow_private: true,
            rate: 0,
            cancel: CancellationToken::new(),
        }
    }
}
