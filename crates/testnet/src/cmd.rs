//! Running the system tools (`ip`, `ethtool`) that set a topology up, with their stderr
//! turned into an [`Error`] that shows the exact command line.
//!
//! Decision: configuration goes through `ip` rather than a netlink crate: it is what a network
//! engineer reads and can replay by hand from an error message, and setup cost (a few ms per
//! command) is small next to what the tests measure.

use std::process::Command;

use crate::error::{Error, Result};

/// Runs `program args…` and returns its stdout, or an error carrying its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| Error::Spawn {
            program: program.to_string(),
            source,
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::Command {
            command: format!("{program} {}", args.join(" ")),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// Runs `ip args…`.
pub(crate) fn ip(args: &[&str]) -> Result<String> {
    run("ip", args)
}
