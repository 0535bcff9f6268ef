//! The crate's one error type. Messages are sentences that say what the bed tried to do and
//! what the system answered, so a failing test explains itself.

/// Why a topology could not be built or changed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The description itself is wrong (unknown node, bad prefix, duplicate name …).
    #[error("invalid topology: {0}")]
    Invalid(String),
    /// A TOML scenario could not be read.
    #[error("invalid scenario: {0}")]
    Scenario(String),
    /// A system command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, as a person would type it.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A system command could not be started at all.
    #[error("could not run `{program}` (is it installed?): {source}")]
    Spawn {
        /// The program that was not found or not executable.
        program: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What the bed was doing.
        context: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Error::Io {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
