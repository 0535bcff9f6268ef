//! The agent's error type: why it could not enrol, start or keep a link. Failures of
//! measurements are results with an outcome, never errors.

use std::path::PathBuf;

/// Why an agent operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory holds no identity.
    #[error(
        "this agent is not enrolled ({} holds no identity); run 'vantage agent enroll --server URL --token TOKEN' first",
        .0.display()
    )]
    NotEnrolled(PathBuf),
    /// The data directory already holds an identity.
    #[error(
        "{} already holds the identity of agent '{name}' ({id}); use another --data-dir, or delete that directory to enrol again",
        dir.display()
    )]
    AlreadyEnrolled {
        /// The data directory.
        dir: PathBuf,
        /// The enrolled name.
        name: String,
        /// The enrolled id.
        id: uuid::Uuid,
    },
    /// A file could not be read or written.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// A stored identity file is damaged.
    #[error("{} is damaged: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Keys, certificates or TLS set-up failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server could not be reached or answered unexpectedly.
    #[error("{0}")]
    Connect(String),
    /// The server refused the enrolment.
    #[error("the server refused the enrolment: {0}")]
    EnrollRefused(String),
    /// The server refused this agent's certificate because the agent was revoked.
    #[error(
        "the server refused this agent's certificate: the agent has been revoked; enrol it again with a new token"
    )]
    Revoked,
    /// Invalid settings.
    #[error("{0}")]
    Config(String),
}

impl Error {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }
}
