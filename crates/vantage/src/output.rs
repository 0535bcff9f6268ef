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

/// Hands a one-shot command's big data to the end of the process instead of freeing it: the
/// command returns its exit code and the process ends right after, where the kernel takes the
/// memory back in one step. Freeing a 60 000-target sweep's results and specs one allocation at
/// a time took 15 ms of the sweep's wall time. Only for values of the command that ends the
/// process (`vantage::run` is called once, by `main`); services never call this.
pub fn free_at_exit<T>(value: T) {
    std::mem::forget(value);
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

/// Writes each result as one JSON object per line, in order. A sweep's tens of thousands of
/// results are serialised a block at a time, each block shared out over every core, so that
/// memory holds one block's text, not the whole output.
pub fn print_json_lines(results: &[MeasurementResult]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    // Bytes per line, learnt from the previous block, so that buffers rarely grow.
    let mut per_line = 512;
    for block in results.chunks(JSON_BLOCK) {
        let parts = par_chunks(block, |chunk| -> serde_json::Result<Vec<u8>> {
            let mut buf = Vec::with_capacity(chunk.len() * per_line);
            for r in chunk {
                serde_json::to_writer(&mut buf, r)?;
                buf.push(b'\n');
            }
            Ok(buf)
        });
        let mut bytes = 0;
        for part in parts {
            let part = part?;
            bytes += part.len();
            out.write_all(&part)?;
        }
        per_line = bytes / block.len() + 64;
    }
    out.flush()
}

/// Results serialised per block of JSON Lines output.
const JSON_BLOCK: usize = 8192;

/// Below this many items, output is built on the calling thread alone.
const PARALLEL_MIN: usize = 4096;

/// Applies `f` to `items` split into contiguous chunks, one per available core, on scoped
/// threads (one chunk on the calling thread when there are few items or one core), and returns
/// the chunks' outputs in order.
pub(crate) fn par_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if items.len() < PARALLEL_MIN || cores < 2 {
        return vec![f(items)];
    }
    let chunks: Vec<&[T]> = items.chunks(items.len().div_ceil(cores.min(8))).collect();
    par_map(&chunks, |c| f(c))
}

/// Milliseconds with three decimals, as iputils prints them.
pub fn ms(v: f64) -> String {
    Ms(v).to_string()
}

/// [`ms`] without the allocation, for output built in bulk.
#[derive(Debug, Clone, Copy)]
pub struct Ms(pub f64);

impl std::fmt::Display for Ms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A sweep table prints five of these per row, and `{:.3}` (exact decimal rounding) is
        // most of the cost of formatting it. Below 10⁶ ms the value in microseconds is off by
        // less than 2⁻²³ µs, so rounding it as an integer gives the same digits unless it lies
        // within that of a tie; ties, negatives and huge values take the exact path.
        let v = self.0;
        let us = v * 1000.0;
        if v.is_sign_positive() && us < 1e9 && ((us - us.floor()) - 0.5).abs() > 1e-6 {
            let n = us.round() as u64;
            write!(f, "{}.{:03}", n / 1000, n % 1000)
        } else {
            write!(f, "{v:.3}")
        }
    }
}

/// A loss ratio as a percentage.
pub fn pct(ratio: f64) -> String {
    Pct(ratio).to_string()
}

/// [`pct`] without the allocation, for output built in bulk.
#[derive(Debug, Clone, Copy)]
pub struct Pct(pub f64);

impl std::fmt::Display for Pct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.0 * 100.0;
        if p == 0.0 || p == 100.0 {
            write!(f, "{p:.0}%")
        } else {
            write!(f, "{p:.1}%")
        }
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

/// The cells of many table rows in one string, without an allocation per cell: a sweep formats
/// tens of thousands of rows. Row `r`, column `c` is `text[end(r, c - 1)..end(r, c)]`.
#[derive(Debug, Default)]
pub struct Cells {
    text: String,
    ends: Vec<usize>,
    cols: usize,
}

impl Cells {
    /// Room for `rows` rows of `cols` cells.
    pub fn with_rows(cols: usize, rows: usize) -> Cells {
        Cells {
            text: String::with_capacity(rows * cols * 8),
            ends: Vec::with_capacity(rows * cols),
            cols,
        }
    }

    /// Appends the next cell (rows fill left to right, then the next row begins).
    pub fn push(&mut self, cell: impl std::fmt::Display) {
        use std::fmt::Write as _;
        let _ = write!(self.text, "{cell}");
        self.ends.push(self.text.len());
    }

    fn rows(&self) -> usize {
        self.ends.len() / self.cols.max(1)
    }

    fn row(&self, r: usize) -> impl Iterator<Item = &str> {
        let first = r * self.cols;
        (first..first + self.cols).map(move |i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            &self.text[start..self.ends[i]]
        })
    }
}

/// Prints the rows of `parts`, in order, under a header as aligned columns separated by two
/// spaces, all but the first `left` columns right-aligned: [`print_rows`] for sweeps, each part
/// measured and laid out on a core of its own.
pub fn print_cells(header: &[&str], left: usize, parts: &[Cells]) {
    let mut out = std::io::stdout().lock();
    for text in layout_cells(header, left, parts) {
        let _ = out.write_all(text.as_bytes());
    }
    let _ = out.flush();
}

/// The text [`print_cells`] prints: the header line, then one string per part.
fn layout_cells(header: &[&str], left: usize, parts: &[Cells]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for w in par_map(parts, |p| {
        let mut w = vec![0; header.len()];
        for r in 0..p.rows() {
            for (w, cell) in w.iter_mut().zip(p.row(r)) {
                *w = (*w).max(width(cell));
            }
        }
        w
    }) {
        for (max, w) in widths.iter_mut().zip(w) {
            *max = (*max).max(w);
        }
    }
    let mut head = String::new();
    push_line(&mut head, header.iter().copied(), &widths, |i| i < left);
    let mut texts = vec![head];
    texts.extend(par_map(parts, |p| {
        let mut text = String::with_capacity(p.rows() * (widths.iter().sum::<usize>() + 24));
        for r in 0..p.rows() {
            push_line(&mut text, p.row(r), &widths, |i| i < left);
        }
        text
    }));
    texts
}

/// `f` of every item, each on a scoped thread of its own but the first (on the caller's).
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let Some((first, rest)) = items.split_first() else {
        return Vec::new();
    };
    std::thread::scope(|s| {
        let f = &f;
        let others: Vec<_> = rest.iter().map(|i| s.spawn(move || f(i))).collect();
        let mut out = vec![f(first)];
        out.extend(
            others
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
        );
        out
    })
}

/// Display width of a cell: its length when ASCII, its characters otherwise.
fn width(cell: &str) -> usize {
    if cell.is_ascii() {
        cell.len()
    } else {
        cell.chars().count()
    }
}

/// Appends `n` spaces a slice at a time rather than a character at a time.
fn push_spaces(out: &mut String, mut n: usize) {
    const SPACES: &str = "                                                                ";
    while n > 0 {
        let k = n.min(SPACES.len());
        out.push_str(&SPACES[..k]);
        n -= k;
    }
}

/// Appends one line of aligned cells, without trailing blanks.
fn push_line<'a>(
    out: &mut String,
    cells: impl Iterator<Item = &'a str>,
    widths: &[usize],
    left_aligned: impl Fn(usize) -> bool,
) {
    let start = out.len();
    for (i, (cell, w)) in cells.zip(widths).enumerate() {
        if i > 0 {
            out.push_str("  ");
        }
        let pad = w.saturating_sub(width(cell));
        if left_aligned(i) {
            out.push_str(cell);
            push_spaces(out, pad);
        } else {
            push_spaces(out, pad);
            out.push_str(cell);
        }
    }
    let kept = out[start..].trim_end().len();
    out.truncate(start + kept);
    out.push('\n');
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
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let mut text = String::new();
    push_line(&mut text, header.iter().copied(), &widths, &left_aligned);
    for row in rows {
        push_line(
            &mut text,
            row.iter().map(String::as_str),
            &widths,
            &left_aligned,
        );
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
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

    /// The integer path of `Ms` prints exactly what `{:.3}` prints: on millions of values spread
    /// over every magnitude a measurement can have, on values a hair from a rounding tie, and on
    /// the special ones.
    #[test]
    fn ms_prints_the_digits_of_exact_decimal_rounding() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut values = vec![
            0.0,
            -0.0,
            0.0005,
            0.0015,
            0.0025,
            1.0005,
            2.5,
            999_999.999_5,
            1e6,
            1e9,
            f64::MIN_POSITIVE,
            -1.25,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for _ in 0..2_000_000 {
            let r = next();
            // Mantissa and a magnitude from 10⁻⁶ to 10⁷ ms.
            let mantissa = (r >> 11) as f64 / (1u64 << 53) as f64;
            let exp = (r % 14) as i32 - 6;
            values.push(mantissa * 10f64.powi(exp));
        }
        for _ in 0..200_000 {
            // Microsecond ties and their neighbours, one ulp either side.
            let tie = (next() % 100_000_000) as f64 / 1000.0 + 0.0005;
            values.extend([tie, tie.next_up(), tie.next_down()]);
        }
        for v in values {
            assert_eq!(Ms(v).to_string(), format!("{v:.3}"), "{v:e}");
        }
    }

    #[test]
    fn cells_lay_out_like_rows_across_parts_in_order() {
        let header = ["NAME", "ADDR", "RTT", "NOTE"];
        let rows = [
            ["a", "192.0.2.1", "0.100", "ok"],
            ["bb-long-name", "2001:db8::1", "12.345", ""],
            ["zürich", "-", "-", "timeout: no answer"],
        ];
        let mut first = Cells::with_rows(4, 2);
        let mut second = Cells::with_rows(4, 1);
        for (i, row) in rows.iter().enumerate() {
            for cell in row {
                if i < 2 {
                    first.push(cell);
                } else {
                    second.push(cell);
                }
            }
        }
        let text = layout_cells(&header, 2, &[first, second]).concat();
        assert_eq!(
            text,
            "NAME          ADDR            RTT                NOTE\n\
             a             192.0.2.1     0.100                  ok\n\
             bb-long-name  2001:db8::1  12.345\n\
             zürich        -                 -  timeout: no answer\n"
        );
    }

    #[test]
    fn work_split_over_threads_comes_back_in_order() {
        let items: Vec<u32> = (0..20_000).collect();
        let sums = par_chunks(&items, |c| (c[0], c.len()));
        let mut next = 0;
        for (start, len) in sums {
            assert_eq!(start, next);
            next += len as u32;
        }
        assert_eq!(next, 20_000);
    }

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
