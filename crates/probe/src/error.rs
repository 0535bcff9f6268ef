//! Engine errors. They describe why a probe could not run at all; everything the network does
//! (timeouts, refusals) is an outcome instead.

use vantage_proto::Outcome;

/// Why a probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The target name did not resolve.
    #[error("{0}")]
    Resolve(String),
    /// A socket could not be opened or configured.
    #[error("{what}: {source}")]
    Socket {
        /// What was being done, as a sentence fragment.
        what: String,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// Raw sockets were required but the process lacks CAP_NET_RAW.
    #[error("{0}")]
    Permission(String),
    /// The destination policy forbids the target.
    #[error("{0}")]
    Blocked(String),
    /// The spec was invalid.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn socket(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Socket {
            what: what.into(),
            source,
        }
    }

    /// The outcome a result should carry for this error.
    pub fn outcome(&self) -> Outcome {
        match self {
            Error::Resolve(_) => Outcome::DnsFailure,
            Error::Blocked(_) => Outcome::BlockedByPolicy,
            Error::Socket { .. } | Error::Permission(_) | Error::Invalid(_) => Outcome::Internal,
        }
    }
}
