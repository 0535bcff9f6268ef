//! Guards that decide whether a privileged or tool-dependent test runs, skips loudly, or fails.

use std::path::PathBuf;

/// Whether we run under CI (`CI` set to anything but `false`/`0`/empty).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// True when the process is root. Otherwise: under CI, panics (CI runs as root, so this is a
/// broken setup, not a reason to skip); outside CI, prints a loud skip note and returns false.
pub fn privileged(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if in_ci() {
        panic!("{test}: needs root, and CI must run privileged tests; refusing to skip");
    }
    eprintln!();
    eprintln!(
        "!!! SKIPPED {test}: needs root (network namespaces, raw sockets). Run as root to test it."
    );
    eprintln!();
    false
}

/// The path of a system binary a test compares against. Under CI a missing binary panics (the
/// CI script installs it); outside CI the test is skipped loudly.
pub fn need_binary(test: &str, name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_some() {
        return found;
    }
    if in_ci() {
        panic!("{test}: needs the '{name}' binary, which .ci/run installs; refusing to skip");
    }
    eprintln!();
    eprintln!(
        "!!! SKIPPED {test}: needs the '{name}' binary (install it, e.g. apt-get install {name})."
    );
    eprintln!();
    None
}
