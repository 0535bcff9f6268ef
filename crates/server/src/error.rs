//! The server's error type: why the server could not start or an internal operation failed.
//! Failures of measurements are data (outcomes and entry statuses), and failures of API calls are
//! `api::ApiError`; this type is for the machinery underneath.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a server operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done ("create the data directory").
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// A database statement failed.
    #[error("database error while {what}: {source}")]
    Db {
        /// What was being done.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database schema could not be brought up to date.
    #[error("cannot update the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row holds something this build cannot read.
    #[error("the database holds an unreadable {what}: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why it could not be read.
        detail: String,
    },
    /// The certificate authority or a certificate could not be created, loaded or used.
    #[error("certificate authority: {0}")]
    Pki(String),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A listener could not be opened.
    #[error("cannot listen on {addr} for {what}: {source}")]
    Listen {
        /// "the API" or "agents".
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// The API answered a client request with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error code of the body.
        code: String,
        /// The sentence of the body.
        message: String,
    },
    /// The API could not be reached, or answered something unexpected.
    #[error("{0}")]
    Client(String),
    /// The lookup data or the lookup servers' settings cannot be used.
    #[error("lookups: {0}")]
    Lookup(String),
    /// The built-in local agent could not be set up.
    #[error("built-in local agent: {0}")]
    LocalAgent(String),
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

/// Attaches what was being done to a database error.
pub(crate) trait DbContext<T> {
    fn ctx(self, what: &'static str) -> Result<T, Error>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn ctx(self, what: &'static str) -> Result<T, Error> {
        self.map_err(|source| Error::Db { what, source })
    }
}
