//! Output shared by subcommands: JSON Lines, tables, number formatting, progress, exit codes.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};
use indicatif::{ProgressBar, ProgressStyle};
use vantage_proto::{MeasurementResult, Outcome, Quality, RttStats, TimestampSource};

/// Every target answered.
pub const EXIT_OK: u8 = 0;
/// Some target did not answer (or answered with an error).
pub const EXIT_SOME_FAILED: u8 = 1;
/// Bad usage or a setup problem (bad arguments, unknown host, no permission).
pub const EXIT_SETUP: u8 = 2;

/// Prints a sentence on stderr, prefixed with the program name, and returns the setup exit code.
pub fn usage_error(message: impl std::fmt::Display) -> u8 {
    eprintln!("vantage: {message}");
    EXIT_SETUP
}

/// Exit code for a set of results of a probe whose target name had to resolve: unresolvable
/// targets, refused policies and internal failures are setup errors; any other non-ok outcome
/// means some target did not answer.
pub fn exit_code(results: &[MeasurementResult]) -> u8 {
    let setup = results.iter().any(|r| {
        matches!(
            r.outcome,
            Outcome::DnsFailure | Outcome::Internal | Outcome::BlockedByPolicy
        )
    });
    if setup {
        EXIT_SETUP
    } else if results.iter().all(|r| r.outcome.is_ok()) {
        EXIT_OK
    } else {
        EXIT_SOME_FAILED
    }
}

/// Writes each result as one JSON object per line.
pub fn print_json_lines(results: &[MeasurementResult]) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for r in results {
        serde_json::to_writer(&mut out, r)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Milliseconds with three decimals, as iputils prints them.
pub fn ms(v: f64) -> String {
    format!("{v:.3}")
}

/// A loss ratio as a percentage.
pub fn pct(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p == 0.0 || p == 100.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// `min/avg/max/mdev` line, and a `p50/p95/p99, jitter` line.
pub fn rtt_lines(stats: &RttStats) -> [String; 2] {
    [
        format!(
            "rtt min/avg/max/mdev = {}/{}/{}/{} ms",
            ms(stats.min),
            ms(stats.avg),
            ms(stats.max),
            ms(stats.mdev)
        ),
        format!(
            "rtt p50/p95/p99 = {}/{}/{} ms, jitter {} ms",
            ms(stats.p50),
            ms(stats.p95),
            ms(stats.p99),
            ms(stats.jitter)
        ),
    ]
}

/// A short phrase saying how the numbers were taken ("raw socket, kernel timestamps").
pub fn quality_phrase(q: &Quality) -> String {
    let socket = match q.socket {
        Some(vantage_proto::SocketKind::Raw) => "raw socket",
        Some(vantage_proto::SocketKind::Dgram) => "datagram socket",
        Some(vantage_proto::SocketKind::Stream) => "TCP connect",
        None if q.privileged => "privileged",
        None => "unprivileged",
    };
    let stamps = match (q.tx_timestamp, q.rx_timestamp) {
        (TimestampSource::Kernel, TimestampSource::Kernel) => "kernel timestamps",
        (TimestampSource::User, TimestampSource::Kernel) => "kernel receive timestamps",
        (TimestampSource::User, TimestampSource::User) => "user-space timestamps",
        _ => "mixed timestamps",
    };
    format!("{socket}, {stamps}")
}

/// A borderless table with right-aligned numeric columns (all but the first `left` columns).
pub fn table(header: &[&str], left: usize) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(Cell::new));
    for i in left..header.len() {
        if let Some(col) = t.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// Prints a table to stdout, trimming the padding comfy-table leaves at line ends.
pub fn print_table(t: &Table) {
    let text = t.to_string();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in text.lines() {
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = out.flush();
}

/// Prints rows under a header as aligned columns separated by two spaces, all but the first
/// `left` columns right-aligned. Built by hand rather than with comfy-table because sweeps print
/// tens of thousands of rows and this costs one pass to measure and one to write.
pub fn print_rows(header: &[&str], left: usize, rows: &[Vec<String>]) {
    write_rows(header, |i| i < left, rows);
}

/// Like [`print_rows`], with the last column left-aligned too: it holds sentences, whose
/// length would otherwise push the header far to the right.
pub fn print_rows_text_last(header: &[&str], left: usize, rows: &[Vec<String>]) {
    let last = header.len().saturating_sub(1);
    write_rows(header, |i| i < left || i == last, rows);
}

fn write_rows(header: &[&str], left_aligned: impl Fn(usize) -> bool, rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut line = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        line.clear();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = w.saturating_sub(cell.chars().count());
            if left_aligned(i) {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            } else {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = out.flush();
}

/// A spinner on stderr while a run expected to take more than two seconds is under way; hidden
/// when stderr is not a terminal.
pub fn progress(expected: Duration, message: String) -> Option<ProgressBar> {
    // Not even a hidden bar when nobody watches: its ticker is a thread of its own.
    if expected < Duration::from_secs(2) || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(message);
    pb.enable_steady_tick(Duration::from_millis(120));
    Some(pb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vantage_proto::Kind;

    fn with(outcome: Outcome) -> MeasurementResult {
        let mut r = MeasurementResult::failure(Kind::Ping, "t", outcome, "x");
        r.error = None;
        r
    }

    #[test]
    fn exit_codes_follow_the_documented_rules() {
        assert_eq!(exit_code(&[with(Outcome::Ok), with(Outcome::Ok)]), EXIT_OK);
        assert_eq!(
            exit_code(&[with(Outcome::Ok), with(Outcome::Timeout)]),
            EXIT_SOME_FAILED
        );
        assert_eq!(
            exit_code(&[with(Outcome::Ok), with(Outcome::DnsFailure)]),
            EXIT_SETUP
        );
        assert_eq!(exit_code(&[with(Outcome::Internal)]), EXIT_SETUP);
    }

    #[test]
    fn percentages_drop_needless_decimals() {
        assert_eq!(pct(0.0), "0%");
        assert_eq!(pct(1.0), "100%");
        assert_eq!(pct(0.125), "12.5%");
    }
}
