//! The crate's one error type. Every message is a sentence a network engineer can act on; the
//! [`ErrorKind`] tells front ends how to report it (exit code 2 or HTTP 400 for bad input, exit 1
//! or 404 when nothing is known, 502/504 when a remote service failed).
//!
//! Failures that are answers — a MAC without a registered vendor, an address no data set covers —
//! are not errors: they come back as `None` or as a result that says so.

use std::path::Path;

/// Why a lookup could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input cannot be understood (address, prefix, MAC, ASN, query, option).
    #[error("{0}")]
    Invalid(String),
    /// Nothing is known about a well-formed query (no RDAP service, no object at the registry).
    #[error("{0}")]
    NotFound(String),
    /// A data file is damaged or not in the expected format.
    #[error("{0}")]
    Data(String),
    /// Reading or writing a local file failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, as a sentence fragment naming the file.
        what: String,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// A remote service (WHOIS server, RDAP server, download source, resolver) failed or
    /// answered something unusable.
    #[error("{0}")]
    Upstream(String),
    /// A remote service did not answer in time.
    #[error("{0}")]
    Timeout(String),
}

/// How a front end should report an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The caller's input is wrong: exit code 2, HTTP 400.
    BadInput,
    /// A well-formed query with no answer: exit code 1, HTTP 404.
    NotFound,
    /// A remote service failed or was too slow: exit code 1, HTTP 502 / 504.
    Upstream,
    /// Local data or files are broken: exit code 2, HTTP 500.
    Local,
}

impl Error {
    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::BadInput,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Upstream(_) | Error::Timeout(_) => ErrorKind::Upstream,
            Error::Data(_) | Error::Io { .. } => ErrorKind::Local,
        }
    }

    /// Wraps an I/O error on `path` with what was being done ("cannot read", "cannot write" …).
    pub fn io(what: &str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            what: format!("{what} {}", path.display()),
            source,
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
