//! The agents benchmark (`bench/agents.sh`): N real agents — the real agent code, real TLS 1.3
//! with client certificates issued through the real enrolment API — connected over loopback to a
//! real server running as its own process; one ping measurement (127.0.0.1, count 1) to all of
//! them, timed from the API call to the last result stored, repeated, with the server's memory
//! and CPU read from `/proc`.
//!
//! The main decisions:
//! - **Three kinds of process.** `server` (the server, nothing else, so `/proc/PID` is its own
//!   RSS and CPU), `agents` (a share of the agents, several per process as a real fleet could
//!   not be), and `bench`, which starts the others, drives the API like any client and prints
//!   the table. Children read their stdin and stop when it closes, so they also stop when the
//!   bench dies.
//! - **"Stored" is observed through the live stream's `end` event.** The server publishes it only
//!   after the transaction holding the last result committed (the writer acknowledges, publishes
//!   and finishes a measurement only after its commit, `synchronous = FULL`), and a stream opened
//!   after the finish reads it from storage; so `end` cannot arrive before every result is on
//!   disk. Polling `GET /measurements/{id}` would bound it as well, but adds its polling period
//!   to every figure and load to the server. After each timed run the stored measurement is
//!   read back and every agent's entry must be `done` with one echo answered, or the run fails.
//! - The clock starts before `POST /measurements` is sent and stops when `end` is parsed, so
//!   the time includes the API call, selection, storing the jobs, dispatch, the probe, the link
//!   back, the batched write and the stream: everything a user waits for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vantage_agent::{AgentConfig, EnrollOptions};
use vantage_probe::Privilege;
use vantage_proto::{Detail, MeasurementSpec, Outcome, PingSpec, SocketKind};
use vantage_server::model::EntryStatus;
use vantage_server::{Client, ServerConfig, StreamEvent};

/// The goal of issue 4: p99 of the time to the last stored result at 1000 agents.
const GOAL_SECS: f64 = 1.0;
/// The agent count the goal is stated for.
const GOAL_AGENTS: usize = 1000;
/// Enrolments in flight at once per agents process.
const ENROLL_CONCURRENCY: usize = 16;
/// How long children get to stop after their stdin closes.
const STOP_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Parser)]
#[command(
    name = "agents_bench",
    about = "Time one ping measurement to N real agents, from the API call to the last stored result.",
    after_help = "Example:\n  agents_bench bench --agents 100,1000 --runs 20"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the benchmark: starts a server and agent processes per N, prints the table.
    Bench(BenchArgs),
    /// (internal) Run only the server; prints `ready API_ADDR AGENT_ADDR`, stops when stdin closes.
    Server(ServerArgs),
    /// (internal) Enrol and run agents; prints `running K`, stops when stdin closes.
    Agents(AgentsArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Socket {
    /// Raw when the process may (CAP_NET_RAW), unprivileged datagram otherwise (the default).
    Auto,
    /// Raw sockets only.
    Raw,
    /// Unprivileged ICMP datagram sockets only (net.ipv4.ping_group_range must allow it).
    Unprivileged,
}

impl Socket {
    fn privilege(self) -> Privilege {
        match self {
            Socket::Auto => Privilege::Auto,
            Socket::Raw => Privilege::Raw,
            Socket::Unprivileged => Privilege::Unprivileged,
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Socket::Auto => "auto",
            Socket::Raw => "raw",
            Socket::Unprivileged => "unprivileged",
        }
    }
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Agent counts to measure, one fresh server and fleet each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    agents: Vec<usize>,
    /// Timed runs per agent count.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Untimed runs before the timed ones (first sockets, caches).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Processes the agents are spread over.
    #[arg(long, default_value_t = 4)]
    procs: usize,
    /// Milliseconds of quiet between runs, so one run's acknowledgements and outbox clean-up do
    /// not overlap the next.
    #[arg(long, default_value_t = 250)]
    pause_ms: u64,
    /// ICMP sockets the agents' probes use.
    #[arg(long, value_enum, default_value_t = Socket::Auto)]
    socket: Socket,
    /// Do not sync the agents' outbox writes to disk (each real agent syncs on its own disk; here
    /// a thousand share one). The server always commits with synchronous = FULL.
    #[arg(long)]
    no_agent_fsync: bool,
    /// Directory for the server's and agents' data (a temporary directory is made inside).
    #[arg(long, default_value = "/var/tmp")]
    work_dir: PathBuf,
    /// Keep the data directory afterwards.
    #[arg(long)]
    keep: bool,
    /// Also print each agent count's figures as one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ServerArgs {
    /// The server's data directory.
    #[arg(long)]
    data_dir: PathBuf,
    /// The admin API token to accept.
    #[arg(long, env = "VANTAGE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
}

#[derive(Debug, Args)]
struct AgentsArgs {
    /// The server's API (`http://HOST:PORT`).
    #[arg(long)]
    api: String,
    /// An API token allowed to create enrolment tokens.
    #[arg(long, env = "VANTAGE_TOKEN", hide_env_values = true)]
    token: String,
    /// Where the agents' data directories go.
    #[arg(long)]
    dir: PathBuf,
    /// Number of the first agent (names are `bench-NNNN`).
    #[arg(long, default_value_t = 0)]
    first: usize,
    /// Agents in this process.
    #[arg(long)]
    count: usize,
    /// ICMP sockets the probes use.
    #[arg(long, value_enum, default_value_t = Socket::Auto)]
    socket: Socket,
    /// Do not sync outbox writes.
    #[arg(long)]
    no_fsync: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if let Err(e) = raise_nofile() {
        eprintln!("agents_bench: {e:#}");
        return std::process::ExitCode::from(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let r = runtime.block_on(async {
        match cli.cmd {
            Cmd::Bench(a) => bench(a).await,
            Cmd::Server(a) => server(a).await,
            Cmd::Agents(a) => agents(a).await,
        }
    });
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agents_bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A thousand agents need a few thousand descriptors (links, outbox files, ICMP sockets, and the
/// server's side of every link): the soft limit goes up to the hard one.
fn raise_nofile() -> Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("reading RLIMIT_NOFILE")?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("raising RLIMIT_NOFILE")?;
    }
    Ok(())
}

/// Resolves when stdin reaches its end (the parent closed it or died).
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server process.

async fn server(a: ServerArgs) -> Result<()> {
    let cfg = ServerConfig {
        data_dir: a.data_dir,
        listen: "127.0.0.1:0".parse()?,
        agent_listen: "127.0.0.1:0".parse()?,
        local_agent: false,
        admin_token: Some(a.admin_token),
        ..ServerConfig::default()
    };
    let s = vantage_server::start(cfg).await?;
    println!("ready {} {}", s.api_addr, s.agent_addr);
    stdin_closed().await;
    s.stop().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// An agents process.

async fn agents(a: AgentsArgs) -> Result<()> {
    let client = Client::new(&a.api, &a.token)?;
    let enrolled: Vec<PathBuf> = futures::stream::iter(a.first..a.first + a.count)
        .map(|i| {
            let client = client.clone();
            let dir = a.dir.join(format!("agent-{i:04}"));
            async move {
                let t = client.create_enrollment_token(None).await?;
                vantage_agent::enroll(&EnrollOptions {
                    server: t.agent_url,
                    token: t.token,
                    data_dir: dir.clone(),
                    name: Some(format!("bench-{i:04}")),
                    labels: BTreeMap::from([("role".to_string(), "bench".to_string())]),
                    country: None,
                    city: None,
                    region: None,
                    asn: None,
                })
                .await
                .with_context(|| format!("enrolling agent {i}"))?;
                anyhow::Ok(dir)
            }
        })
        .buffer_unordered(ENROLL_CONCURRENCY)
        .try_collect()
        .await?;
    let stop = CancellationToken::new();
    let mut set = tokio::task::JoinSet::new();
    for dir in enrolled {
        let mut cfg = AgentConfig::new(&dir);
        cfg.allow_private = true;
        cfg.privilege = a.socket.privilege();
        cfg.outbox_fsync = !a.no_fsync;
        set.spawn(vantage_agent::run(cfg, stop.clone().cancelled_owned()));
    }
    println!("running {}", a.count);
    tokio::select! {
        _ = stdin_closed() => {}
        Some(r) = set.join_next() => {
            // An agent that stops on its own (revoked, identity unreadable) spoils the figures.
            bail!("an agent stopped during the benchmark: {:?}", r);
        }
    }
    stop.cancel();
    while set.join_next().await.is_some() {}
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The bench process.

/// A child process of the benchmark, stopped by closing its stdin.
struct Proc {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Proc {
    fn spawn(what: String, args: &[String], log: &Path) -> Result<Proc> {
        let exe = std::env::current_exe().context("finding this program")?;
        let log =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the {what}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("child stdout")?;
        Ok(Proc {
            what,
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// The next line the child prints (its readiness report).
    async fn line(&mut self, within: Duration) -> Result<String> {
        match tokio::time::timeout(within, self.lines.next_line()).await {
            Err(_) => bail!("the {} did not report within {within:?}", self.what),
            Ok(Err(e)) => bail!("reading from the {}: {e}", self.what),
            Ok(Ok(None)) => bail!("the {} exited early (see its log)", self.what),
            Ok(Ok(Some(l))) => Ok(l),
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn stop(mut self) {
        drop(self.stdin.take());
        if tokio::time::timeout(STOP_WAIT, self.child.wait())
            .await
            .is_err()
        {
            eprintln!(
                "the {} did not stop within {STOP_WAIT:?}; killing it",
                self.what
            );
            let _ = self.child.kill().await;
        }
    }
}

/// Memory and CPU of a process from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
struct ProcStat {
    rss_kib: u64,
    hwm_kib: u64,
    cpu_secs: f64,
}

fn proc_stat(pid: u32) -> Result<ProcStat> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): utime and stime are fields 14
    // and 15 of the whole line, 12 and 13 after the closing parenthesis.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    Ok(ProcStat {
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
        cpu_secs: (ticks(11) + ticks(12)) as f64 / hz,
    })
}

/// One value of a Prometheus text exposition (first sample of that name, no labels).
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().parse().ok())?
    })
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    percentile(&s, 50.0)
}

/// What one run observed, in seconds from the start of the API call.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// `POST /measurements` answered 202.
    created: f64,
    /// The first `result` event arrived.
    first: f64,
    /// The `end` event arrived: every result stored.
    end: f64,
    /// Server CPU seconds during the run.
    server_cpu: f64,
}

/// Figures of one agent count.
#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    agents: usize,
    runs: usize,
    p50_s: f64,
    p99_s: f64,
    max_s: f64,
    created_p50_s: f64,
    first_result_p50_s: f64,
    server_cpu_per_run_s: f64,
    agents_cpu_per_run_s: f64,
    commits_per_run: f64,
    commit_mean_ms: f64,
    rss_idle_mib: f64,
    rss_after_mib: f64,
    rss_peak_mib: f64,
    enrol_s: f64,
    connect_s: f64,
    socket: String,
}

async fn bench(a: BenchArgs) -> Result<()> {
    ensure!(a.runs >= 1, "--runs must be at least 1");
    ensure!(a.procs >= 1, "--procs must be at least 1");
    ensure!(
        a.agents.iter().all(|n| *n >= 1),
        "every agent count must be at least 1"
    );
    std::fs::create_dir_all(&a.work_dir)
        .with_context(|| format!("creating {}", a.work_dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix("vantage-agents-bench-")
        .tempdir_in(&a.work_dir)
        .context("creating the work directory")?;
    let root = if a.keep {
        work.keep()
    } else {
        work.path().to_path_buf()
    };
    eprintln!("data and logs in {}", root.display());
    let mut rows = Vec::new();
    for &n in &a.agents {
        let row = one_count(&a, n, &root.join(format!("n{n}"))).await?;
        if a.json {
            println!("{}", serde_json::to_string(&row)?);
        }
        rows.push(row);
    }
    print_table(&a, &rows);
    Ok(())
}

async fn one_count(a: &BenchArgs, n: usize, dir: &Path) -> Result<Row> {
    std::fs::create_dir_all(dir)?;
    let token = format!("vt_bench_{}", Uuid::new_v4().simple());
    eprintln!("== {n} agents: starting the server");
    let mut server = Proc::spawn(
        "server".into(),
        &[
            "server".into(),
            "--data-dir".into(),
            dir.join("server").display().to_string(),
            "--admin-token".into(),
            token.clone(),
        ],
        &dir.join("server.log"),
    )?;
    let ready = server.line(Duration::from_secs(60)).await?;
    let mut parts = ready.split_whitespace();
    ensure!(parts.next() == Some("ready"), "the server said '{ready}'");
    let api = format!("http://{}", parts.next().context("no API address")?);
    let server_pid = server.pid().context("the server has no pid")?;
    let client = Client::new(&api, &token)?;
    let http = reqwest::Client::new();
    let scrape = || async {
        let r = http.get(format!("{api}/metrics")).send().await?;
        anyhow::Ok(r.text().await?)
    };

    // Enrol and start the agents, spread over the processes.
    let t_enrol = Instant::now();
    let procs = a.procs.min(n);
    let mut fleet = Vec::new();
    let mut first = 0;
    for p in 0..procs {
        let count = n / procs + usize::from(p < n % procs);
        let mut args = vec![
            "agents".to_string(),
            "--api".into(),
            api.clone(),
            "--token".into(),
            token.clone(),
            "--dir".into(),
            dir.join("agents").display().to_string(),
            "--first".into(),
            first.to_string(),
            "--count".into(),
            count.to_string(),
            "--socket".into(),
            a.socket.flag().into(),
        ];
        if a.no_agent_fsync {
            args.push("--no-fsync".into());
        }
        fleet.push(Proc::spawn(
            format!("agents process {p}"),
            &args,
            &dir.join(format!("agents-{p}.log")),
        )?);
        first += count;
    }
    for p in &mut fleet {
        let l = p.line(Duration::from_secs(600)).await?;
        ensure!(l.starts_with("running"), "the {} said '{l}'", p.what);
    }
    let enrol_s = t_enrol.elapsed().as_secs_f64();
    let t_connect = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let m = scrape().await?;
        if metric(&m, "vantage_agents_connected") == Some(n as f64) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "only {:?} of {n} agents connected after 300 s",
            metric(&m, "vantage_agents_connected")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_s = t_connect.elapsed().as_secs_f64();
    eprintln!("   {n} agents enrolled in {enrol_s:.1} s, all connected {connect_s:.1} s later");
    let idle = proc_stat(server_pid)?;

    let mut spec = PingSpec::new("127.0.0.1");
    spec.count = 1;
    let spec = MeasurementSpec::Ping(spec);
    let mut runs = Vec::new();
    let mut socket_kinds = BTreeMap::<String, usize>::new();
    let agents_cpu = |fleet: &[Proc]| -> f64 {
        fleet
            .iter()
            .filter_map(|p| p.pid().and_then(|pid| proc_stat(pid).ok()))
            .map(|s| s.cpu_secs)
            .sum()
    };
    let mut before_metrics = None;
    let mut agents_cpu0 = 0.0;
    for i in 0..a.warmup + a.runs {
        if i == a.warmup {
            before_metrics = Some(scrape().await?);
            agents_cpu0 = agents_cpu(&fleet);
        }
        tokio::time::sleep(Duration::from_millis(a.pause_ms)).await;
        let cpu0 = proc_stat(server_pid)?.cpu_secs;
        let (run, id) = one_run(&client, &spec, n).await?;
        let run = Run {
            server_cpu: proc_stat(server_pid)?.cpu_secs - cpu0,
            ..run
        };
        // Outside the timed part: every agent's stored entry must be a real answer.
        let view = client.measurement(id).await?;
        ensure!(
            view.results.len() == n,
            "run {i}: {} entries stored for {n} agents",
            view.results.len()
        );
        for e in &view.results {
            let r = e
                .result
                .as_ref()
                .with_context(|| format!("run {i}: agent {} has no stored result", e.agent.name))?;
            let answered = matches!(&r.detail, Some(Detail::Ping(d)) if d.received == 1);
            ensure!(
                e.status == EntryStatus::Done && r.outcome == Outcome::Ok && answered,
                "run {i}: agent {} ended {:?} with outcome {:?}: {}",
                e.agent.name,
                e.status,
                r.outcome,
                r.error.clone().unwrap_or_default()
            );
            let kind = match r.quality.socket {
                Some(SocketKind::Raw) => "raw",
                Some(SocketKind::Dgram) => "unprivileged datagram",
                Some(SocketKind::Stream) => "stream",
                None => "unknown",
            };
            *socket_kinds.entry(kind.to_string()).or_default() += 1;
        }
        let label = if i < a.warmup { "warm-up" } else { "run" };
        eprintln!(
            "   {label} {:>2}: created {:>6.1} ms, first result {:>6.1} ms, all stored {:>7.1} ms, server CPU {:.2} s",
            i + 1,
            run.created * 1e3,
            run.first * 1e3,
            run.end * 1e3,
            run.server_cpu
        );
        if i >= a.warmup {
            runs.push(run);
        }
    }
    let after_metrics = scrape().await?;
    let agents_cpu_total = agents_cpu(&fleet) - agents_cpu0;
    let after = proc_stat(server_pid)?;
    for p in fleet {
        p.stop().await;
    }
    server.stop().await;

    let before_metrics = before_metrics.unwrap_or_default();
    let delta = |name: &str| {
        metric(&after_metrics, name).unwrap_or(0.0) - metric(&before_metrics, name).unwrap_or(0.0)
    };
    let commits = delta("vantage_store_write_seconds_count");
    let commit_secs = delta("vantage_store_write_seconds_sum");
    let mut ends: Vec<f64> = runs.iter().map(|r| r.end).collect();
    ends.sort_by(f64::total_cmp);
    let r = runs.len() as f64;
    Ok(Row {
        agents: n,
        runs: runs.len(),
        p50_s: percentile(&ends, 50.0),
        p99_s: percentile(&ends, 99.0),
        max_s: *ends.last().unwrap_or(&f64::NAN),
        created_p50_s: median(&runs.iter().map(|r| r.created).collect::<Vec<_>>()),
        first_result_p50_s: median(&runs.iter().map(|r| r.first).collect::<Vec<_>>()),
        server_cpu_per_run_s: median(&runs.iter().map(|r| r.server_cpu).collect::<Vec<_>>()),
        agents_cpu_per_run_s: agents_cpu_total / r,
        commits_per_run: commits / r,
        commit_mean_ms: if commits > 0.0 {
            commit_secs / commits * 1e3
        } else {
            f64::NAN
        },
        rss_idle_mib: idle.rss_kib as f64 / 1024.0,
        rss_after_mib: after.rss_kib as f64 / 1024.0,
        rss_peak_mib: after.hwm_kib as f64 / 1024.0,
        enrol_s,
        connect_s,
        socket: socket_kinds
            .iter()
            .map(|(k, v)| format!("{k} ×{v}"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// One timed measurement; returns the run (server CPU not yet filled in) and the measurement id.
async fn one_run(client: &Client, spec: &MeasurementSpec, n: usize) -> Result<(Run, Uuid)> {
    let t0 = Instant::now();
    let created = client.create_measurement(spec, "role:bench").await?;
    let t_created = t0.elapsed().as_secs_f64();
    ensure!(
        created.agents.len() == n,
        "the measurement chose {} agents, not {n}",
        created.agents.len()
    );
    let mut stream = client.stream(created.id).await?;
    let mut first = None;
    let mut results = 0usize;
    let end = loop {
        match stream.next().await {
            None => bail!("the stream of {} closed before its end event", created.id),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(StreamEvent::Result(_))) => {
                results += 1;
                first.get_or_insert(t0.elapsed().as_secs_f64());
            }
            Some(Ok(StreamEvent::End(counts))) => {
                let t = t0.elapsed().as_secs_f64();
                ensure!(
                    counts.done as usize == n && results == n,
                    "measurement {} ended with {counts:?} and {results} result events for {n} agents",
                    created.id
                );
                break t;
            }
            Some(Ok(StreamEvent::Measurement(_))) => {}
        }
    };
    Ok((
        Run {
            created: t_created,
            first: first.unwrap_or(end),
            end,
            server_cpu: 0.0,
        },
        created.id,
    ))
}

fn print_table(a: &BenchArgs, rows: &[Row]) {
    println!();
    println!(
        "One ping (127.0.0.1, count 1) to N agents: time from POST /measurements to the stream's end event (every result committed)."
    );
    println!(
        "{} timed runs after {} warm-up runs; p99 is nearest-rank (with 20 runs it is the slowest run). Agents in {} processes, outbox fsync {}.",
        a.runs,
        a.warmup,
        a.procs,
        if a.no_agent_fsync { "off" } else { "on" }
    );
    println!();
    println!(
        "{:>6} {:>5} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10} {:>8} {:>9} {:>9} {:>9}  goal (p99 ≤ 1 s at 1000)",
        "N",
        "runs",
        "p50",
        "p99",
        "max",
        "created50",
        "first50",
        "srv CPU/r",
        "agt CPU/r",
        "commits",
        "RSS idle",
        "RSS after",
        "RSS peak",
    );
    for r in rows {
        let verdict = if r.agents == GOAL_AGENTS {
            if r.p99_s <= GOAL_SECS {
                "met"
            } else {
                "MISSED"
            }
        } else {
            "-"
        };
        println!(
            "{:>6} {:>5} {:>7.0}ms {:>7.0}ms {:>7.0}ms {:>8.0}ms {:>8.0}ms {:>9.2}s {:>9.2}s {:>8.1} {:>6.1}MiB {:>6.1}MiB {:>6.1}MiB  {}",
            r.agents,
            r.runs,
            r.p50_s * 1e3,
            r.p99_s * 1e3,
            r.max_s * 1e3,
            r.created_p50_s * 1e3,
            r.first_result_p50_s * 1e3,
            r.server_cpu_per_run_s,
            r.agents_cpu_per_run_s,
            r.commits_per_run,
            r.rss_idle_mib,
            r.rss_after_mib,
            r.rss_peak_mib,
            verdict
        );
    }
    println!();
    for r in rows {
        println!(
            "N={}: enrolment {:.1} s, connect {:.1} s, mean commit {:.2} ms, probe sockets: {}",
            r.agents, r.enrol_s, r.connect_s, r.commit_mean_ms, r.socket
        );
    }
}
