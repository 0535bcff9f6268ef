//! The server and agents through the `vantage` binary, as a user runs them: `vantage server` as
//! a process on port-0 loopback listeners (the addresses read back from its start-up line), its
//! built-in agent answering `--from` measurements against loopback servers the tests start, a
//! second agent enrolled with `vantage agent enroll` and run as a `vantage agent` process, the
//! `vantage agents` list, and the exit-2 sentences for a bad token, an unreachable server and a
//! server that cannot start. Plus: the lean `vantage-agent` binary links no server code.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use vantage_server::Client;
use vantage_server::api::types::AgentView;
use vantage_server::model::AgentStatus;
use vantage_testnet::dns_server::{Behaviour, DnsServer};

const ADMIN: &str = "cli-test-admin-token-0123456789";
const BIN: &str = env!("CARGO_BIN_EXE_vantage");

/// What one run of the binary produced.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn both(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

/// A command with an environment that no developer setting leaks into: no VANTAGE_* variables,
/// and a configuration home with no client file.
fn clean(cmd: &mut tokio::process::Command, home: &Path) {
    for (k, _) in std::env::vars() {
        if k.starts_with("VANTAGE_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"));
}

/// Runs `vantage ARGS…` with extra environment variables.
async fn vantage_env(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(BIN);
    clean(&mut cmd, home);
    cmd.args(args).envs(env.iter().copied());
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("vantage {args:?} did not finish within 120 s"))
        .expect("vantage runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A child process stopped with SIGTERM (then SIGKILL) when dropped, also on panic.
struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    fn spawn(name: &'static str, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("VANTAGE_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .envs(env.iter().copied())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { child, name }
    }

    /// The first line of its stdout, parsed as JSON (the start-up line of `vantage server
    /// --json`). Read on a thread so a hung start fails the test instead of blocking it; the
    /// thread keeps reading so the pipe stays open for the process's lifetime.
    fn first_json_line(&mut self) -> Value {
        let stdout = self.child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut reader = BufReader::new(stdout);
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            let mut rest = String::new();
            while reader.read_line(&mut rest).unwrap_or(0) > 0 {
                rest.clear();
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{} printed no line within 60 s", self.name));
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{}: first line is not JSON ({e}): {line:?}", self.name))
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).expect("signal sent");
    }

    /// Stops it with SIGTERM and returns its exit code.
    fn terminate(&mut self) -> Option<i32> {
        // A stopped process would hold SIGTERM pending.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGCONT,
        );
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "{} did not stop within 15 s of SIGTERM; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// A `vantage server` process with its data in a temporary directory.
struct Server {
    _proc: Proc,
    api: String,
    started: Value,
    dir: TempDir,
}

impl Server {
    async fn start(extra: &[&str]) -> Server {
        Self::start_env(extra, &[]).await
    }

    async fn start_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("server");
        let data = data.to_str().unwrap();
        let mut args = vec![
            "server",
            "--data-dir",
            data,
            "--listen",
            "127.0.0.1:0",
            "--agent-listen",
            "127.0.0.1:0",
            "--json",
        ];
        args.extend_from_slice(extra);
        let mut all_env = vec![("VANTAGE_ADMIN_TOKEN", ADMIN)];
        all_env.extend_from_slice(env);
        let mut proc = Proc::spawn("vantage server", dir.path(), &args, &all_env);
        let started = proc.first_json_line();
        let api = started["api"].as_str().unwrap().to_string();
        assert!(api.starts_with("http://127.0.0.1:"), "{started}");
        assert_eq!(
            started.get("admin_token"),
            None,
            "a token from VANTAGE_ADMIN_TOKEN is not printed"
        );
        Server {
            _proc: proc,
            api,
            started,
            dir,
        }
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    fn client(&self) -> Client {
        Client::new(&self.api, ADMIN).unwrap()
    }

    /// Waits until the agent called `name` (the built-in one when `None`) is online.
    async fn wait_online(&self, name: Option<&str>) -> AgentView {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(list) = client.agents().await
                && let Some(a) = list.items.into_iter().find(|a| {
                    a.status == AgentStatus::Online
                        && match name {
                            Some(n) => a.name == n,
                            None => a.builtin,
                        }
                })
            {
                return a;
            }
            assert!(
                Instant::now() < deadline,
                "agent {name:?} not online within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `vantage ARGS… --server API --token ADMIN`.
    async fn cli(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&["--server", &self.api, "--token", ADMIN]);
        vantage_env(self.home(), &[], &all).await
    }
}

/// Enrols an agent called `name` through `vantage agent enroll` and runs it as a `vantage agent`
/// process; returns the process and the agent once the server lists it online.
async fn enrolled_agent(srv: &Server, name: &'static str, extra: &[&str]) -> (Proc, AgentView) {
    let r = srv.cli(&["agents", "token", "--json", "--ttl", "60"]).await;
    assert_eq!(r.code, 0, "{}", r.both());
    let token = &r.json_lines()[0];
    let expires: chrono::DateTime<chrono::Utc> =
        token["expires_at"].as_str().unwrap().parse().unwrap();
    let ttl = (expires - chrono::Utc::now()).num_seconds();
    assert!((1..=60).contains(&ttl), "--ttl 60 gave {ttl} s: {token}");
    let dir = srv.home().join(format!("agent-{name}"));
    let dir = dir.to_str().unwrap();
    let mut args = vec![
        "agent",
        "enroll",
        "--server",
        token["agent_url"].as_str().unwrap(),
        "--token",
        token["token"].as_str().unwrap(),
        "--data-dir",
        dir,
        "--name",
        name,
    ];
    args.extend_from_slice(extra);
    let r = vantage_env(srv.home(), &[], &args).await;
    assert_eq!(r.code, 0, "{}", r.both());
    let proc = Proc::spawn(
        "vantage agent",
        srv.home(),
        &["agent", "--data-dir", dir, "--allow-private"],
        &[],
    );
    let view = srv.wait_online(Some(name)).await;
    (proc, view)
}

/// An HTTP server on loopback answering every request with 204; counts the requests it read.
fn http_server() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            if buf.starts_with(b"GET /probe ") {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn ping_from_all_runs_on_the_builtin_agent_in_text_and_json() {
    if !vantage_testnet::privileged("ping_from_all_runs_on_the_builtin_agent_in_text_and_json") {
        return;
    }
    let srv = Server::start(&[]).await;
    let local = srv.wait_online(None).await;

    let r = srv
        .cli(&["ping", "--from", "all", "-c", "2", "-i", "0.2", "127.0.0.1"])
        .await;
    assert_eq!(r.code, 0, "{}", r.both());
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with(&local.name))
        .unwrap_or_else(|| panic!("no row for {}: {}", local.name, r.both()));
    let cells: Vec<&str> = row.split_whitespace().collect();
    // AGENT LOCATION ADDRESS SENT RECV LOSS MIN AVG MAX OUTCOME
    assert_eq!(cells[2..6], ["127.0.0.1", "2", "2", "0%"], "{row}");
    assert_eq!(cells.last(), Some(&"ok"), "{row}");
    assert!(
        r.stdout
            .contains("ping 127.0.0.1 from 1 agent: measurement "),
        "{}",
        r.both()
    );

    let r = srv
        .cli(&[
            "ping",
            "--from",
            "all",
            "-c",
            "2",
            "-i",
            "0.2",
            "--json",
            "127.0.0.1",
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.both());
    let lines = r.json_lines();
    assert_eq!(lines.len(), 1, "{}", r.both());
    let j = &lines[0];
    assert_eq!(j["type"], "ping");
    assert_eq!(j["agent"], local.id.to_string());
    assert_eq!(j["outcome"], "ok");
    assert_eq!(j["detail"]["sent"], 2);
    assert_eq!(j["detail"]["received"], 2);
    assert!(j["measurement_id"].is_string(), "{j}");
    // The stored measurement holds the very result printed.
    let id = j["measurement_id"].as_str().unwrap().parse().unwrap();
    let stored = srv.client().measurement(id).await.unwrap();
    assert_eq!(stored.results.len(), 1);
    assert_eq!(
        stored.results[0].result.as_ref().unwrap().id.to_string(),
        j["id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn tcp_dns_and_http_from_the_builtin_agent_reach_loopback_servers_the_test_started() {
    let srv = Server::start(&[]).await;
    let local = srv.wait_online(None).await;

    // TCP: an open port answers every probe; a closed one refuses, exit 1 with the sentence.
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = open.local_addr().unwrap().port().to_string();
    let r = srv
        .cli(&[
            "tcp",
            "--from",
            "all",
            "-p",
            &port,
            "-c",
            "3",
            "-i",
            "0.1",
            "--json",
            "127.0.0.1",
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.both());
    let lines = r.json_lines();
    assert_eq!(lines.len(), 1, "{}", r.both());
    assert_eq!(lines[0]["agent"], local.id.to_string());
    assert_eq!(lines[0]["outcome"], "ok");
    assert_eq!(lines[0]["detail"]["sent"], 3);
    assert_eq!(lines[0]["detail"]["open"], 3);

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let r = srv
        .cli(&[
            "tcp",
            "--from",
            "all",
            "-p",
            &closed,
            "-c",
            "2",
            "-i",
            "0.1",
            "127.0.0.1",
        ])
        .await;
    assert_eq!(r.code, 1, "{}", r.both());
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with(&local.name))
        .unwrap_or_else(|| panic!("no row for {}: {}", local.name, r.both()));
    // AGENT LOCATION ADDRESS PORT SENT OPEN REFUSED LOSS AVG OUTCOME…
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[2..7],
        ["127.0.0.1", closed.as_str(), "2", "0", "2"],
        "{row}"
    );
    assert!(row.contains("refused"), "{row}");

    // DNS: the agent asks the test's server, which saw exactly one query for the name.
    let dns = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let at = format!("@{}", dns.addr().ip());
    let r = srv
        .cli(&[
            "dns",
            "--from",
            "all",
            "--allow-private",
            "-p",
            &dns.addr().port().to_string(),
            &at,
            "www.vantage.test",
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.both());
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with(&local.name))
        .unwrap_or_else(|| panic!("no row: {}", r.both()));
    // AGENT LOCATION SERVER RCODE ANSWERS RTT OUTCOME
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[2], dns.addr().to_string(), "{row}");
    // The zone holds two A records for the name.
    assert_eq!(cells[3..5], ["NOERROR", "2"], "{row}");
    let seen = dns.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].name.trim_end_matches('.'), "www.vantage.test");

    // HTTP: the status the test's server sent, and the one request it read.
    let (addr, requests) = http_server();
    let url = format!("http://{addr}/probe");
    let r = srv
        .cli(&["http", "--from", "all", "--allow-private", "--json", &url])
        .await;
    assert_eq!(r.code, 0, "{}", r.both());
    let lines = r.json_lines();
    assert_eq!(lines.len(), 1, "{}", r.both());
    assert_eq!(lines[0]["detail"]["status"], 204);
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);

    // The list shows the built-in agent, online.
    let r = srv.cli(&["agents", "--json"]).await;
    assert_eq!(r.code, 0, "{}", r.both());
    let agents = r.json_lines();
    assert_eq!(agents.len(), 1, "{}", r.both());
    assert_eq!(agents[0]["id"], local.id.to_string());
    assert_eq!(agents[0]["status"], "online");
    assert_eq!(agents[0]["builtin"], true);
}

#[tokio::test]
async fn an_agent_enrolled_and_run_from_the_cli_answers_exactly_when_selected() {
    let srv = Server::start(&[]).await;
    let local = srv.wait_online(None).await;
    // `vantage agents token` prints the command to run on the agent's host.
    let r = srv.cli(&["agents", "token"]).await;
    assert_eq!(r.code, 0, "{}", r.both());
    let command = r
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("vantage agent enroll "))
        .unwrap_or_else(|| panic!("no enrol command: {}", r.both()));
    let agent_url = srv.started["agent_url"].as_str().unwrap();
    assert!(
        command.contains(&format!("--server {agent_url} --token vantage-enroll.")),
        "{command}"
    );
    let given: Vec<&str> = command.split_whitespace().skip(1).collect();
    let token = given[given.iter().position(|a| *a == "--token").unwrap() + 1];

    let agent_dir = srv.home().join("agent-lab-2");
    let agent_dir_s = agent_dir.to_str().unwrap();
    let mut args = given.clone();
    args.extend_from_slice(&[
        "--data-dir",
        agent_dir_s,
        "--name",
        "lab-2",
        "--label",
        "role=cli-test",
        "--country",
        "DE",
        "--city",
        "Frankfurt",
    ]);
    let r = vantage_env(srv.home(), &[], &args).await;
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(r.stdout.contains("Enrolled as 'lab-2'"), "{}", r.both());

    // The same token a second time is refused: exit 2 with a sentence.
    let again = srv.home().join("agent-again");
    let r = vantage_env(
        srv.home(),
        &[],
        &[
            "agent",
            "enroll",
            "--server",
            agent_url,
            "--token",
            token,
            "--data-dir",
            again.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(r.stderr.contains("vantage agent:"), "{}", r.both());

    let _agent = Proc::spawn(
        "vantage agent",
        srv.home(),
        &["agent", "--data-dir", agent_dir_s, "--allow-private"],
        &[],
    );
    let lab2 = srv.wait_online(Some("lab-2")).await;
    assert_eq!(
        lab2.labels.get("role").map(String::as_str),
        Some("cli-test")
    );

    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = open.local_addr().unwrap().port().to_string();
    let tcp = |from: &'static str, json: bool| {
        let port = port.clone();
        let srv = &srv;
        async move {
            let mut args = vec!["tcp", "--from", from, "-p", &port, "-c", "2", "-i", "0.1"];
            if json {
                args.push("--json");
            }
            args.push("127.0.0.1");
            srv.cli(&args).await
        }
    };

    // Selected by name: exactly it answered.
    let r = tcp("name:lab-2", true).await;
    assert_eq!(r.code, 0, "{}", r.both());
    let lines = r.json_lines();
    assert_eq!(lines.len(), 1, "{}", r.both());
    assert_eq!(lines[0]["agent"], lab2.id.to_string());
    assert_eq!(lines[0]["detail"]["open"], 2);

    // By label and location too.
    let r = tcp("role:cli-test+country:DE", true).await;
    assert_eq!(r.code, 0, "{}", r.both());
    let ids: Vec<String> = r
        .json_lines()
        .iter()
        .map(|j| j["agent"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [lab2.id.to_string()], "{}", r.both());

    // All: both agents, one row each, with the location of the enrolled one.
    let r = tcp("all", false).await;
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(
        r.stdout.contains("tcp 127.0.0.1 from 2 agents"),
        "{}",
        r.both()
    );
    let lab_row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("lab-2 "))
        .unwrap_or_else(|| panic!("no lab-2 row: {}", r.both()));
    assert!(lab_row.contains("Frankfurt, DE"), "{lab_row}");
    assert!(lab_row.trim_end().ends_with("ok"), "{lab_row}");
    assert!(
        r.stdout.lines().any(|l| l.starts_with(&local.name)),
        "{}",
        r.both()
    );

    // A selector that matches nobody is a setup error naming the problem.
    let r = tcp("name:nobody", false).await;
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(r.stderr.contains("nobody"), "{}", r.both());

    // The table of agents.
    let r = srv.cli(&["agents"]).await;
    assert_eq!(r.code, 0, "{}", r.both());
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with("lab-2 "))
        .unwrap_or_else(|| panic!("no lab-2 row: {}", r.both()));
    assert!(
        row.contains("online") && row.contains("role=cli-test"),
        "{row}"
    );
}

#[tokio::test]
async fn an_agent_that_stops_answering_is_listed_as_agent_lost_with_the_reason() {
    // A short grace after each job's own deadline keeps the test short.
    let srv = Server::start_env(&[], &[("VANTAGE_RESULT_GRACE", "0.5")]).await;
    let local = srv.wait_online(None).await;
    let (agent, lab3) = enrolled_agent(&srv, "lab-3", &["--city", "Paris"]).await;
    // Frozen, it stays connected (heartbeats time out only after 15 s) but answers nothing.
    agent.signal(nix::sys::signal::Signal::SIGSTOP);

    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = open.local_addr().unwrap().port().to_string();
    let args = [
        "tcp",
        "--from",
        "all",
        "-p",
        &port,
        "-c",
        "2",
        "-i",
        "0.2",
        "-W",
        "0.5",
        "127.0.0.1",
    ];
    let r = srv.cli(&args).await;
    assert_eq!(r.code, 1, "{}", r.both());
    assert!(r.stdout.contains("from 2 agents"), "{}", r.both());
    let lost = r
        .stdout
        .lines()
        .find(|l| l.starts_with("lab-3 "))
        .unwrap_or_else(|| panic!("no lab-3 row: {}", r.both()));
    assert!(lost.contains("Paris"), "{lost}");
    assert!(
        lost.contains(
            "agent_lost: agent lab-3 is connected but returned no result within the deadline"
        ),
        "{lost}"
    );
    let ok = r
        .stdout
        .lines()
        .find(|l| l.starts_with(&local.name))
        .unwrap_or_else(|| panic!("no row for {}: {}", local.name, r.both()));
    assert!(ok.trim_end().ends_with("ok"), "{ok}");

    let mut json_args = args.to_vec();
    json_args.insert(1, "--json");
    let r = srv.cli(&json_args).await;
    assert_eq!(r.code, 1, "{}", r.both());
    let lines = r.json_lines();
    assert_eq!(lines.len(), 2, "{}", r.both());
    let of = |id: String| {
        lines
            .iter()
            .find(|j| j["agent"] == id.as_str())
            .unwrap_or_else(|| panic!("no line of {id}: {}", r.both()))
    };
    assert_eq!(of(lab3.id.to_string())["outcome"], "agent_lost");
    assert!(
        of(lab3.id.to_string())["error"]
            .as_str()
            .unwrap()
            .contains("lab-3")
    );
    assert_eq!(of(local.id.to_string())["outcome"], "ok");
}

#[tokio::test]
async fn bad_tokens_missing_configuration_and_unreachable_servers_exit_2_with_a_sentence() {
    let srv = Server::start(&["--no-local-agent"]).await;
    let home = srv.home();

    // Wrong token.
    let r = vantage_env(
        home,
        &[],
        &[
            "ping",
            "--from",
            "all",
            "--server",
            &srv.api,
            "--token",
            "wrong-token-value",
            "127.0.0.1",
        ],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(r.stderr.contains("refused the API token"), "{}", r.both());
    assert!(r.stdout.is_empty(), "{}", r.both());

    // No token anywhere.
    let r = vantage_env(home, &[], &["agents", "--server", &srv.api]).await;
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(
        r.stderr.contains("no API token") && r.stderr.contains("VANTAGE_TOKEN"),
        "{}",
        r.both()
    );

    // Nothing listens: a port the kernel gave and took back.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let r = vantage_env(
        home,
        &[],
        &[
            "tcp",
            "--from",
            "all",
            "-p",
            "80",
            "--server",
            &dead,
            "--token",
            ADMIN,
            "127.0.0.1",
        ],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(
        r.stderr.contains("cannot connect to the Vantage server"),
        "{}",
        r.both()
    );

    // Not a URL.
    let r = vantage_env(
        home,
        &[],
        &["agents", "--server", "127.0.0.1:1", "--token", ADMIN],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(r.stderr.contains("not a server URL"), "{}", r.both());

    // --server without --from is a usage error, not a silent local run.
    let r = vantage_env(
        home,
        &[],
        &["tcp", "-p", "80", "--server", &srv.api, "127.0.0.1"],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(r.stderr.contains("only with --from"), "{}", r.both());

    // Flags that only make sense locally are refused with --from.
    let r = srv
        .cli(&["ping", "--from", "all", "--raw", "127.0.0.1"])
        .await;
    assert_eq!(r.code, 2, "{}", r.both());

    // Invalid input is caught before anything is sent, in terms of the flag.
    let r = srv
        .cli(&["ping", "--from", "all", "-c", "0", "127.0.0.1"])
        .await;
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(r.stderr.contains("-c/--count"), "{}", r.both());
    // An invalid selector is the server's sentence.
    let r = srv.cli(&["ping", "--from", "country:", "127.0.0.1"]).await;
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(r.stderr.contains("selector"), "{}", r.both());
    // A server without agents: nothing to measure from.
    let r = srv.cli(&["ping", "--from", "all", "127.0.0.1"]).await;
    assert_eq!(r.code, 2, "{}", r.both());
}

#[tokio::test]
async fn server_url_and_token_come_from_the_environment_or_the_client_file() {
    let srv = Server::start(&["--no-local-agent"]).await;
    let home = srv.home();
    let r = vantage_env(
        home,
        &[("VANTAGE_SERVER", &srv.api), ("VANTAGE_TOKEN", ADMIN)],
        &["agents", "--json"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.both());

    let dir = home.join("config").join("vantage");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("client.toml");
    std::fs::write(
        &file,
        format!("server = \"{}\"\ntoken = \"{ADMIN}\"\n", srv.api),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let r = vantage_env(home, &[], &["agents"]).await;
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(r.stdout.contains("No agents yet"), "{}", r.both());
    assert!(r.stderr.is_empty(), "{}", r.both());

    // The environment wins over the file; a wrong token there is refused.
    let r = vantage_env(home, &[("VANTAGE_TOKEN", "not-the-token")], &["agents"]).await;
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(r.stderr.contains("refused the API token"), "{}", r.both());
}

#[tokio::test]
async fn server_flags_override_the_environment_which_overrides_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let file = dir.path().join("server.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\nagent_listen = \"127.0.0.1:0\"\n\
             local_agent = false\nagent_url = \"https://file.example.net:7781\"\n",
            at("file-data")
        ),
    )
    .unwrap();
    let env_data = at("env-data");
    let flag_data = at("flag-data");
    let mut server = Proc::spawn(
        "vantage server",
        dir.path(),
        &[
            "server",
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            &flag_data,
            "--json",
        ],
        &[
            ("VANTAGE_ADMIN_TOKEN", ADMIN),
            ("VANTAGE_DATA_DIR", &env_data),
            ("VANTAGE_AGENT_URL", "https://env.example.net:7781"),
        ],
    );
    let started = server.first_json_line();
    assert_eq!(started["data_dir"], flag_data.as_str(), "{started}");
    assert_eq!(started["agent_url"], "https://env.example.net:7781");
    assert_eq!(started["local_agent"], false, "{started}");
    assert!(Path::new(&flag_data).join("pki").is_dir());
    assert!(!Path::new(&env_data).exists() && !Path::new(&at("file-data")).exists());
    // Without a local agent and any enrolled one, the list is empty; SIGTERM stops it cleanly.
    let api = started["api"].as_str().unwrap();
    let r = vantage_env(
        dir.path(),
        &[],
        &["agents", "--json", "--server", api, "--token", ADMIN],
    )
    .await;
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{}", r.both());
    assert_eq!(server.terminate(), Some(0));
}

#[tokio::test]
async fn a_server_that_cannot_start_exits_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let r = vantage_env(
        dir.path(),
        &[],
        &[
            "server",
            "--data-dir",
            data,
            "--listen",
            &taken_addr,
            "--agent-listen",
            "127.0.0.1:0",
        ],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(
        r.stderr.contains(&format!("cannot listen on {taken_addr}")),
        "{}",
        r.both()
    );

    let r = vantage_env(
        dir.path(),
        &[],
        &["server", "--config", "/nonexistent/vantage.toml"],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(r.stderr.contains("does not exist"), "{}", r.both());

    let file = dir.path().join("server.toml");
    std::fs::write(&file, "listen_port = 1\n").unwrap();
    let r = vantage_env(
        dir.path(),
        &[],
        &["server", "--config", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(r.stderr.contains("listen_port"), "{}", r.both());
}

/// Packages `package` links on this host: its normal dependencies, transitively (`cargo tree
/// -e normal`; build scripts and dev-dependencies are not linked into the binary).
fn linked_packages(package: &str) -> Vec<String> {
    let manifest: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "-p", package, "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_lean_agent_links_no_server_code() {
    let agent = linked_packages("vantage-agent");
    assert!(agent.iter().any(|n| n == "vantage-probe"), "{agent:?}");
    for server_side in ["vantage-server", "sqlx", "axum", "utoipa", "figment"] {
        assert!(
            !agent.iter().any(|n| n == server_side),
            "vantage-agent links {server_side}: {agent:?}"
        );
    }
    // The check can fail: the full binary does link the server.
    let full = linked_packages("vantage");
    for server_side in ["vantage-server", "sqlx", "axum"] {
        assert!(full.iter().any(|n| n == server_side), "{full:?}");
    }
}
