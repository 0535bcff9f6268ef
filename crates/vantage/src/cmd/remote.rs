//! `--from SELECTOR` on the measurement commands: the specs a command built for a local run are
//! sent to a Vantage server instead (`POST /api/v1/measurements`, one measurement per spec), each
//! selected agent's result is followed live over the measurement's event stream, and one table
//! with a row per agent (per target) is printed at the end; `--json` prints each agent's result
//! envelope as a JSON line the moment it arrives.
//!
//! The main decisions: the live stream is for speed and progress, the stored measurement is the
//! truth — after the stream ends (or breaks and cannot be re-opened) the measurement is read once
//! with `GET /api/v1/measurements/{id}`, so the table always holds every selected agent, with a
//! result or the sentence saying why there is none (`agent_lost`, `failed`). Exit codes: 0 when
//! every agent returned an `ok` result, 1 when some did not, 2 when the measurement could not be
//! made (no server, bad token, a selector that matches nothing, invalid input).

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use uuid::Uuid;
use vantage_proto::{Detail, Kind, MeasurementResult, MeasurementSpec, Outcome};
use vantage_server::api::types::{AgentRef, EntryView, MeasurementCreated, MeasurementView};
use vantage_server::model::EntryStatus;
use vantage_server::{Client, StreamEvent};

use super::validate_all;
use crate::cli::{RemoteArgs, ServerConnArgs};
use crate::endpoint;
use crate::output::{self, EXIT_OK, EXIT_SOME_FAILED, ms, pct};

/// Most targets one `--from` command may measure (each is a measurement on every agent).
pub const MAX_REMOTE_TARGETS: usize = 256;

/// How long after a measurement's deadline the client keeps trying to read its outcome.
const AFTER_DEADLINE: Duration = Duration::from_secs(30);

/// Runs `specs` remotely when `--from` was given and returns the exit code; `None` means run
/// locally as usual.
pub(crate) async fn maybe_run(
    remote: &RemoteArgs,
    specs: &[MeasurementSpec],
    json: bool,
) -> Option<u8> {
    let Some(selector) = remote.from.as_deref() else {
        if remote.conn.url.is_some() || remote.conn.token.is_some() {
            return Some(output::usage_error(
                "--server and --token apply only with --from SELECTOR (a remote run)",
            ));
        }
        return None;
    };
    Some(run(specs, selector, &remote.conn, json).await)
}

/// A client of the server the flags, environment or client file name; the exit code on failure.
pub(crate) fn client_for(conn: &ServerConnArgs) -> Result<Client, u8> {
    let ep = endpoint::resolve(conn).map_err(output::usage_error)?;
    Client::new(&ep.url, &ep.token).map_err(|e| output::usage_error(e.to_string()))
}

/// An API client error as a sentence for the person at the terminal.
pub(crate) fn describe_client_error(e: &vantage_server::Error) -> String {
    match e {
        vantage_server::Error::Api {
            status: 401,
            message,
            ..
        } => format!(
            "the server refused the API token ({message}); check --token, {} or the client file",
            endpoint::ENV_TOKEN
        ),
        vantage_server::Error::Api {
            status: 403,
            message,
            ..
        } => format!("the API token may not do this: {message}"),
        vantage_server::Error::Api {
            status, message, ..
        } => format!("the server refused the request (HTTP {status}): {message}"),
        other => other.to_string(),
    }
}

/// "Frankfurt, DE, AS3320" from the location fields present; "-" when none is.
pub(crate) fn location(
    city: Option<&str>,
    region: Option<&str>,
    country: Option<&str>,
    asn: Option<u32>,
) -> String {
    let asn = asn.map(|a| format!("AS{a}"));
    let parts: Vec<&str> = [city, region, country, asn.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// One measurement made for one spec, and what is known of its agents so far.
struct Remote {
    spec: MeasurementSpec,
    created: MeasurementCreated,
    /// Latest entry per agent (a late result replaces `agent_lost`).
    entries: BTreeMap<Uuid, EntryView>,
}

/// What the followers report to the printer.
enum Update {
    /// An agent's entry became final.
    Entry(usize, Box<EntryView>),
    /// The stored measurement, read once the stream is over.
    Stored(usize, Box<MeasurementView>),
    /// The outcome could not be read; the sentence says why.
    Lost(usize, String),
}

async fn run(specs: &[MeasurementSpec], selector: &str, conn: &ServerConnArgs, json: bool) -> u8 {
    if let Err(code) = validate_all(specs) {
        return code;
    }
    if specs.len() > MAX_REMOTE_TARGETS {
        return output::usage_error(format!(
            "{} targets are too many for one remote run (at most {MAX_REMOTE_TARGETS}: each is a \
             measurement on every selected agent)",
            specs.len()
        ));
    }
    let client = match client_for(conn) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut remotes = Vec::with_capacity(specs.len());
    for spec in specs {
        match client.create_measurement(spec, selector).await {
            Ok(created) => {
                for alt in &created.unmatched {
                    eprintln!("vantage: no connected agent matches '{alt}' of the selector");
                }
                remotes.push(Remote {
                    spec: spec.clone(),
                    created,
                    entries: BTreeMap::new(),
                });
            }
            Err(e) => {
                let started: Vec<String> =
                    remotes.iter().map(|r| r.created.id.to_string()).collect();
                if !started.is_empty() {
                    eprintln!(
                        "vantage: measurements already created go on at the server: {}",
                        started.join(", ")
                    );
                }
                return output::usage_error(describe_client_error(&e));
            }
        }
    }
    let expected: usize = remotes.iter().map(|r| r.created.agents.len()).sum();
    if expected == 0 {
        return output::usage_error(format!("no agent matches the selector '{selector}'"));
    }

    let (tx, mut rx) = mpsc::channel::<Update>(64);
    for (i, r) in remotes.iter().enumerate() {
        tokio::spawn(follow(client.clone(), i, r.created.clone(), tx.clone()));
    }
    drop(tx);

    let progress = Progress::new(&remotes, expected);
    let mut printed: HashSet<(usize, Uuid, bool)> = HashSet::new();
    let mut interrupted = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let update = tokio::select! {
            u = rx.recv() => u,
            _ = &mut ctrl_c => { interrupted = true; None }
        };
        let Some(update) = update else { break };
        let (i, entries) = match update {
            Update::Entry(i, e) => (i, vec![*e]),
            Update::Stored(i, view) => (i, view.results),
            Update::Lost(i, why) => {
                progress.note(&format!("measurement {}: {why}", remotes[i].created.id));
                continue;
            }
        };
        for e in entries {
            if !e.status.is_final() {
                continue;
            }
            if json && printed.insert((i, e.agent.id, e.late)) {
                let envelope = envelope(&remotes[i], &e);
                match serde_json::to_string(&envelope) {
                    Ok(line) => progress.out(&line),
                    Err(e) => return output::usage_error(format!("cannot write output: {e}")),
                }
            }
            remotes[i].entries.insert(e.agent.id, e);
        }
        progress.update(&remotes);
    }
    progress.finish();
    if interrupted {
        let ids: Vec<String> = remotes.iter().map(|r| r.created.id.to_string()).collect();
        eprintln!(
            "vantage: interrupted; the measurement(s) go on at the server: {}",
            ids.join(", ")
        );
    }
    if !json {
        print_table(&remotes, interrupted);
    }
    exit_code(&remotes)
}

/// Follows one measurement's event stream, re-opening it if it breaks, until its end event or
/// its deadline (plus slack) passes; then reads the stored measurement.
async fn follow(client: Client, i: usize, created: MeasurementCreated, tx: mpsc::Sender<Update>) {
    let left = (created.deadline - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    let give_up = tokio::time::Instant::now() + left + AFTER_DEADLINE;
    let mut ended = false;
    let mut failures = 0u32;
    let mut last_error = None;
    while !ended && tokio::time::Instant::now() < give_up {
        match client.stream(created.id).await {
            Ok(mut events) => loop {
                match tokio::time::timeout_at(give_up, events.next()).await {
                    Ok(Some(Ok(StreamEvent::Result(e)))) => {
                        failures = 0;
                        if tx.send(Update::Entry(i, e)).await.is_err() {
                            return;
                        }
                    }
                    Ok(Some(Ok(StreamEvent::End(_)))) => {
                        ended = true;
                        break;
                    }
                    Ok(Some(Ok(StreamEvent::Measurement(_)))) => {}
                    Ok(Some(Err(e))) => {
                        last_error = Some(e.to_string());
                        break;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        last_error = Some("the server sent nothing until the deadline".into());
                        break;
                    }
                }
            },
            // A refusal (token, unknown id) will not change on a retry.
            Err(e @ vantage_server::Error::Api { .. }) => {
                last_error = Some(describe_client_error(&e));
                break;
            }
            Err(e) => last_error = Some(e.to_string()),
        }
        if !ended {
            // Back off before re-opening a broken stream: 0.25 s, 0.5 s … at most 2 s.
            failures += 1;
            let pause = Duration::from_millis(250 << failures.min(3)).min(Duration::from_secs(2));
            tokio::time::sleep_until((tokio::time::Instant::now() + pause).min(give_up)).await;
        }
    }
    let update = match client.measurement(created.id).await {
        Ok(view) => Update::Stored(i, Box::new(view)),
        Err(e) => Update::Lost(
            i,
            format!(
                "cannot read its outcome: {}{}",
                describe_client_error(&e),
                last_error
                    .map(|l| format!(" (the live stream said: {l})"))
                    .unwrap_or_default()
            ),
        ),
    };
    let _ = tx.send(update).await;
}

/// The result envelope of an entry; one stating the reason when the server holds no result
/// (so every agent appears in JSON output).
fn envelope(r: &Remote, e: &EntryView) -> MeasurementResult {
    if let Some(res) = &e.result {
        return res.clone();
    }
    let outcome = match e.status {
        EntryStatus::AgentLost => Outcome::AgentLost,
        _ => Outcome::Internal,
    };
    let reason = e
        .reason
        .clone()
        .unwrap_or_else(|| format!("the agent's job ended as {} without a result", e.status));
    let mut res = MeasurementResult::failure(r.spec.kind(), r.spec.target(), outcome, reason);
    res.measurement_id = Some(r.created.id);
    res.agent = Some(e.agent.id.to_string());
    res
}

fn exit_code(remotes: &[Remote]) -> u8 {
    let all_ok = remotes.iter().all(|r| {
        r.created.agents.iter().all(|a| {
            r.entries.get(&a.id).is_some_and(|e| {
                e.status == EntryStatus::Done
                    && e.result.as_ref().is_some_and(|res| res.outcome.is_ok())
            })
        })
    });
    if all_ok { EXIT_OK } else { EXIT_SOME_FAILED }
}

/// The progress line on stderr (only when it is a terminal).
struct Progress {
    bar: Option<ProgressBar>,
    expected: usize,
    what: String,
}

impl Progress {
    fn new(remotes: &[Remote], expected: usize) -> Progress {
        let what = match remotes {
            [one] => format!("{} {}", one.spec.kind(), one.spec.target()),
            many => format!("{} {} targets", many[0].spec.kind(), many.len()),
        };
        let bar = std::io::stderr().is_terminal().then(|| {
            let pb = ProgressBar::new_spinner();
            pb.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        let p = Progress {
            bar,
            expected,
            what,
        };
        p.update(remotes);
        p
    }

    fn update(&self, remotes: &[Remote]) {
        let Some(pb) = &self.bar else { return };
        let mut waiting: Vec<&str> = Vec::new();
        let mut done = 0usize;
        for r in remotes {
            for a in &r.created.agents {
                if r.entries.contains_key(&a.id) {
                    done += 1;
                } else if !waiting.contains(&a.name.as_str()) {
                    waiting.push(&a.name);
                }
            }
        }
        let names = match waiting.len() {
            0 => String::new(),
            1..=3 => format!(", waiting for {}", waiting.join(", ")),
            n => format!(
                ", waiting for {} and {} more",
                waiting[..3].join(", "),
                n - 3
            ),
        };
        pb.set_message(format!(
            "{}: {done}/{} agent results{names}",
            self.what, self.expected
        ));
    }

    /// Prints a line on stdout without tearing the progress line.
    fn out(&self, line: &str) {
        match &self.bar {
            Some(pb) => pb.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    /// Prints a note on stderr without tearing the progress line.
    fn note(&self, line: &str) {
        match &self.bar {
            Some(pb) => pb.suspend(|| eprintln!("vantage: {line}")),
            None => eprintln!("vantage: {line}"),
        }
    }

    fn finish(&self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }
}

/// The kind's key figures: column names, and cells for one result.
fn columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Ping => &["ADDRESS", "SENT", "RECV", "LOSS", "MIN", "AVG", "MAX"],
        Kind::Tcp => &["ADDRESS", "PORT", "SENT", "OPEN", "REFUSED", "LOSS", "AVG"],
        Kind::Udp => &["ADDRESS", "PORT", "SENT", "UNREACH", "OPEN", "LOSS", "AVG"],
        Kind::Trace => &["ADDRESS", "HOPS", "REACHED", "LOSS", "AVG"],
        Kind::Dns => &["SERVER", "RCODE", "ANSWERS", "RTT"],
        Kind::Http => &["STATUS", "CONNECT", "TLS", "TTFB", "TOTAL"],
    }
}

fn figures(kind: Kind, r: Option<&MeasurementResult>) -> Vec<String> {
    let dash = || "-".to_string();
    let opt = |v: Option<f64>| v.map(ms).unwrap_or_else(dash);
    let cells = match r.and_then(|r| r.detail.as_ref()) {
        Some(Detail::Ping(d)) => {
            let s = d.rtt_ms.as_ref();
            vec![
                d.address.to_string(),
                d.sent.to_string(),
                d.received.to_string(),
                pct(d.loss),
                opt(s.map(|s| s.min)),
                opt(s.map(|s| s.avg)),
                opt(s.map(|s| s.max)),
            ]
        }
        Some(Detail::Tcp(d)) => vec![
            d.address.to_string(),
            d.port.to_string(),
            d.sent.to_string(),
            d.open.to_string(),
            d.refused.to_string(),
            pct(d.loss),
            opt(d.rtt_ms.as_ref().map(|s| s.avg)),
        ],
        Some(Detail::Udp(d)) => vec![
            d.address.to_string(),
            d.port.to_string(),
            d.sent.to_string(),
            d.port_unreachable.to_string(),
            d.open.to_string(),
            pct(d.loss),
            opt(d.rtt_ms.as_ref().map(|s| s.avg)),
        ],
        Some(Detail::Trace(d)) => {
            // The destination's hop: the last one when the trace reached it.
            let last = d.hops.last().filter(|_| d.reached);
            vec![
                d.address.to_string(),
                d.hops.len().to_string(),
                if d.reached { "yes" } else { "no" }.to_string(),
                last.map(|h| pct(h.loss)).unwrap_or_else(dash),
                opt(last.and_then(|h| h.rtt_ms.as_ref()).map(|s| s.avg)),
            ]
        }
        Some(Detail::Dns(d)) => {
            let join = |f: &dyn Fn(&vantage_proto::DnsServerResult) -> String| {
                let v: Vec<String> = d.servers.iter().map(f).collect();
                if v.is_empty() { dash() } else { v.join(" ") }
            };
            vec![
                join(&|s| s.server.clone()),
                join(&|s| s.rcode.clone().unwrap_or_else(dash)),
                join(&|s| s.answers.len().to_string()),
                join(&|s| s.rtt_ms.map(ms).unwrap_or_else(dash)),
            ]
        }
        Some(Detail::Http(d)) => vec![
            d.status.map(|s| s.to_string()).unwrap_or_else(dash),
            opt(d.phases.connect_ms),
            opt(d.phases.tls_ms),
            opt(d.phases.ttfb_ms),
            ms(d.phases.total_ms),
        ],
        None => Vec::new(),
    };
    if cells.len() == columns(kind).len() {
        cells
    } else {
        vec![dash(); columns(kind).len()]
    }
}

/// The last cell of a row: the outcome, and the sentence when it is not `ok`.
fn outcome_cell(e: Option<&EntryView>, interrupted: bool) -> String {
    let Some(e) = e else {
        return if interrupted {
            "running: interrupted before this agent's result arrived".into()
        } else {
            "unknown: the server's answer about this agent never arrived".into()
        };
    };
    let late = if e.late { " (arrived late)" } else { "" };
    match (&e.result, e.status) {
        (_, EntryStatus::AgentLost) => {
            let why = e
                .reason
                .clone()
                .or_else(|| e.result.as_ref().and_then(|r| r.error.clone()))
                .unwrap_or_else(|| "no result by the deadline".into());
            format!("agent_lost: {why}")
        }
        (Some(r), _) => match &r.error {
            Some(err) if !r.outcome.is_ok() => format!("{}: {err}{late}", r.outcome),
            _ => format!("{}{late}", r.outcome),
        },
        (None, status) => format!(
            "{status}: {}",
            e.reason
                .clone()
                .unwrap_or_else(|| "no result yet".to_string())
        ),
    }
}

fn agent_cells(a: &AgentRef) -> [String; 2] {
    [
        a.name.clone(),
        location(
            a.city.as_deref(),
            a.region.as_deref(),
            a.country.as_deref(),
            a.asn,
        ),
    ]
}

fn print_table(remotes: &[Remote], interrupted: bool) {
    let Some(first) = remotes.first() else { return };
    let kind = first.spec.kind();
    let several = remotes.len() > 1;
    for r in remotes {
        println!(
            "{} {} from {} agent{}: measurement {}",
            r.spec.kind(),
            r.spec.target(),
            r.created.agents.len(),
            if r.created.agents.len() == 1 { "" } else { "s" },
            r.created.id
        );
    }
    println!();
    let mut header = vec!["AGENT", "LOCATION"];
    if several {
        header.push("TARGET");
    }
    header.extend_from_slice(columns(kind));
    header.push("OUTCOME");
    let mut rows = Vec::new();
    for r in remotes {
        let mut agents: Vec<&AgentRef> = r.created.agents.iter().collect();
        agents.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        for a in agents {
            let e = r.entries.get(&a.id);
            let mut row: Vec<String> = agent_cells(a).into();
            if several {
                row.push(r.spec.target().to_string());
            }
            row.extend(figures(kind, e.and_then(|e| e.result.as_ref())));
            row.push(outcome_cell(e, interrupted));
            rows.push(row);
        }
    }
    // The first figure is an address (a server for dns) for every kind but http.
    let left = if several { 3 } else { 2 } + usize::from(kind != Kind::Http);
    // Left-aligned: agent, location (and target), and the outcome sentence; right-aligned: the
    // figures.
    output::print_rows_text_last(&header, left, &rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(status: EntryStatus, result: Option<MeasurementResult>) -> EntryView {
        EntryView {
            agent: AgentRef {
                id: Uuid::nil(),
                name: "lab-1".into(),
                country: Some("DE".into()),
                city: Some("Frankfurt".into()),
                region: None,
                asn: Some(64500),
            },
            status,
            reason: (status == EntryStatus::AgentLost)
                .then(|| "the agent disconnected before it answered".into()),
            late: false,
            result,
        }
    }

    #[test]
    fn locations_join_what_is_known() {
        assert_eq!(
            location(Some("Frankfurt"), None, Some("DE"), Some(3320)),
            "Frankfurt, DE, AS3320"
        );
        assert_eq!(location(None, None, None, None), "-");
    }

    #[test]
    fn a_lost_agent_shows_its_sentence_and_a_missing_entry_says_so() {
        let e = entry(EntryStatus::AgentLost, None);
        assert_eq!(
            outcome_cell(Some(&e), false),
            "agent_lost: the agent disconnected before it answered"
        );
        assert!(outcome_cell(None, false).starts_with("unknown:"));
        assert!(outcome_cell(None, true).starts_with("running: interrupted"));
        let timeout = MeasurementResult::failure(
            Kind::Ping,
            "192.0.2.1",
            Outcome::Timeout,
            "no reply within 1 s",
        );
        let e = entry(EntryStatus::Done, Some(timeout));
        assert_eq!(
            outcome_cell(Some(&e), false),
            "timeout: no reply within 1 s"
        );
    }

    #[test]
    fn results_without_detail_fill_every_figure_column_with_a_dash() {
        for kind in Kind::ALL {
            let cells = figures(kind, None);
            assert_eq!(cells.len(), columns(kind).len());
            assert!(cells.iter().all(|c| c == "-"));
        }
    }

    #[test]
    fn entries_without_a_result_still_get_an_envelope_with_the_reason() {
        let spec = MeasurementSpec::Ping(vantage_proto::PingSpec::new("192.0.2.1"));
        let created = MeasurementCreated {
            id: Uuid::now_v7(),
            status: vantage_server::model::MeasurementStatus::Running,
            agents: vec![],
            unmatched: vec![],
            deadline: chrono::Utc::now(),
        };
        let r = Remote {
            spec,
            created: created.clone(),
            entries: BTreeMap::new(),
        };
        let env = envelope(&r, &entry(EntryStatus::AgentLost, None));
        assert_eq!(env.outcome, Outcome::AgentLost);
        assert_eq!(env.measurement_id, Some(created.id));
        assert_eq!(env.agent.as_deref(), Some(Uuid::nil().to_string().as_str()));
        assert_eq!(
            env.error.as_deref(),
            Some("the agent disconnected before it answered")
        );
    }
}
