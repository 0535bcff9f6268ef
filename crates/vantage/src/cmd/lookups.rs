//! Helpers shared by the lookup subcommands: exit codes for lookup errors, JSON lines,
//! aligned key/value blocks and data-source attribution lines.
//!
//! Exit codes follow the rest of the CLI: 2 for bad input or broken local data, 1 when a
//! well-formed query found nothing or a remote service failed, 0 otherwise.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use vantage_lookup::{DataDir, Error, ErrorKind, Lookup, SourceRef};

use crate::output::{EXIT_SETUP, EXIT_SOME_FAILED};

/// Prints a lookup error as a sentence and returns its exit code.
pub(crate) fn fail(e: &Error) -> u8 {
    eprintln!("vantage: {e}");
    code(e)
}

/// The exit code of a lookup error.
pub(crate) fn code(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::BadInput | ErrorKind::Local => EXIT_SETUP,
        ErrorKind::NotFound | ErrorKind::Upstream => EXIT_SOME_FAILED,
    }
}

/// Opens the lookups over a data directory.
pub(crate) fn open(dir: &Path) -> Result<Lookup, u8> {
    Lookup::open(DataDir::new(dir)).map_err(|e| fail(&e))
}

/// Prints one value as a JSON line.
pub(crate) fn json_line<T: Serialize>(v: &T) -> Result<(), u8> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    serde_json::to_writer(&mut out, v)
        .map_err(std::io::Error::from)
        .and_then(|_| out.write_all(b"\n"))
        .map_err(|e| crate::output::usage_error(format!("cannot write output: {e}")))
}

/// Prints `key: value` lines with the values aligned; empty values are skipped.
pub(crate) fn print_block(rows: &[(&str, String)]) {
    let width = rows
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0);
    for (k, v) in rows.iter().filter(|(_, v)| !v.is_empty()) {
        println!("{:width$}  {v}", format!("{k}:"), width = width + 1);
    }
}

/// "Data: asn from … (licence; attribution)" lines, one per source.
pub(crate) fn print_sources(sources: &[SourceRef]) {
    let mut seen = Vec::new();
    for s in sources {
        let line = source_line(s);
        if !seen.contains(&line) {
            println!("{line}");
            seen.push(line);
        }
    }
}

fn source_line(s: &SourceRef) -> String {
    let mut parts = Vec::new();
    if let Some(d) = s.data_date {
        parts.push(format!("data of {}", d.format("%Y-%m-%d")));
    }
    if let Some(l) = &s.licence {
        parts.push(l.clone());
    }
    if let Some(a) = &s.attribution {
        parts.push(a.clone());
    }
    let extra = if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    };
    format!("Data: {} from {}{extra}", s.dataset, s.source)
}
