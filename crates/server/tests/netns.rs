//! End to end across network namespaces, with nothing of the agents in this process: three real
//! `vantage-agent` processes, each enrolled with `vantage-agent enroll` and run with
//! `ip netns exec` in a namespace of its own, dial the server's agent port on an address of the
//! server namespace's link, through a router namespace that also leads to a target namespace.
//!
//! ```text
//!   srv ── r1 ── tgt          srv 10.60.0.1 fd60::1, tgt 10.62.0.2 fd62::2
//!          ├──── a1 (fra-1)   a_k 10.61.k.2 fd61:k::2, k = 1, 2, 3
//!          ├──── a2 (ber-1)
//!          └──── a3 (par-1)
//! ```
//!
//! Ground truth comes from outside the system under test: nftables counters in the target
//! namespace count echo requests per source address (who measured, how often, and that nothing
//! ran twice), a known delay on one agent's link says what that agent must have measured
//! (iputils `ping` from the same namespace cross-checks it), and the agents' outbox directories
//! say what they still hold. The failures are real ones: SIGKILL of the agent process, the
//! agent's link set down on the router, the router dropping the server's data segments to an
//! agent (its result arrives, the acknowledgement does not), the server stopped and started
//! again on the same data directory and addresses.
//!
//! Decisions:
//! - The server and the test's own API calls run on a tokio runtime whose threads live in the
//!   server's namespace (threads inherit the namespace of the thread that spawns them), so the
//!   API stays on that namespace's loopback and the agent port on its link address.
//! - Cargo tells only the agent crate's own tests where the `vantage-agent` binary is; these
//!   tests take it from beside their executable (`target/<profile>/vantage-agent`), where the
//!   workspace build puts it (`scripts/test`, `cargo build -p vantage-agent`).
//! - A link is cut on the router's side: the agent's interface loses its carrier but keeps its
//!   addresses and routes, exactly like a cable pulled at the far end, and setting it up again
//!   restores the path without touching the agent's namespace.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use support::{TestServer, wait_for};
use uuid::Uuid;
use vantage_proto::{Detail, MeasurementResult, Outcome, PingDetail};
use vantage_testnet::{Impairment, Link, Topology, need_binary, privileged};

/// One-way delay on fra-1's link in the selection test, in ms (so its round trips gain twice
/// this much).
const DELAY_MS: f64 = 20.0;

/// An agent of the bed: its namespace and what it enrols as.
struct Def {
    node: &'static str,
    name: &'static str,
    country: &'static str,
    city: &'static str,
    env: &'static str,
}

const DEFS: [Def; 3] = [
    Def {
        node: "a1",
        name: "fra-1",
        country: "DE",
        city: "Frankfurt",
        env: "prod",
    },
    Def {
        node: "a2",
        name: "ber-1",
        country: "DE",
        city: "Berlin",
        env: "lab",
    },
    Def {
        node: "a3",
        name: "par-1",
        country: "FR",
        city: "Paris",
        env: "prod",
    },
];

/// The bed; with `delay`, fra-1's link to the router delays every frame by `DELAY_MS` each way.
fn topology(delay: bool) -> Topology {
    let mut b = Topology::builder()
        .host("srv")
        .router("r1")
        .host("tgt")
        .link("srv", "r1", Link::v4("10.60.0.0/24").v6("fd60::/64"))
        .link("r1", "tgt", Link::v4("10.62.0.0/24").v6("fd62::/64"));
    for (k, d) in DEFS.iter().enumerate() {
        let k = k + 1;
        let mut link = Link::v4(&format!("10.61.{k}.0/24")).v6(&format!("fd61:{k}::/64"));
        if delay && k == 1 {
            link = link.impair(Impairment::delay_ms(DELAY_MS));
        }
        b = b.host(d.node).link("r1", d.node, link);
    }
    b.build().expect("the namespace topology builds")
}

/// Runs `fut` to completion on a multi-threaded tokio runtime living in `node`'s namespace.
fn in_ns<F>(net: &Topology, node: &str, fut: F)
where
    F: Future<Output = ()> + Send,
{
    net.ns(node).run(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(fut)
    })
}

/// The `vantage-agent` binary built beside this test.
fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/netns-<hash> → target/<profile>/vantage-agent
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("vantage-agent"));
    match bin {
        Some(b) if b.is_file() => {
            // `cargo test -p vantage-server` rebuilds this test but not the agent's binary.
            let age = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
            if age(&b) < age(&exe) {
                eprintln!(
                    "note: {} is older than this test; if the agent changed, rebuild it with \
                     `cargo build -p vantage-agent`",
                    b.display()
                );
            }
            b
        }
        _ => panic!(
            "the vantage-agent binary is not built beside this test ({}): build it with \
             `cargo build -p vantage-agent` (scripts/test builds the whole workspace)",
            exe.display()
        ),
    }
}

/// Starts a server whose agent port listens on `agent_listen` in the current namespace.
async fn server(agent_listen: &str, grace: f64) -> TestServer {
    let addr = agent_listen.parse().expect("a socket address");
    TestServer::start_with(|c| {
        c.agent_listen = addr;
        c.result_grace = grace;
        // Real processes on a shared two-core machine: a missed heartbeat or two is load, not
        // a dead link.
        c.heartbeat_interval = 0.5;
        c.heartbeat_timeout = 3.0;
    })
    .await
}

/// A `vantage-agent` process in its namespace.
struct Agent {
    def: &'static Def,
    dir: PathBuf,
    log: PathBuf,
    id: Uuid,
    v4: Ipv4Addr,
    v6: Ipv6Addr,
    child: Option<tokio::process::Child>,
}

impl Agent {
    /// Enrols through `vantage-agent enroll` with a token from `POST /enrollment-tokens`.
    async fn enroll(net: &Topology, t: &TestServer, def: &'static Def) -> Agent {
        let (status, token) = t
            .post("/api/v1/enrollment-tokens", &json!({"ttl_seconds": 300}))
            .await;
        assert_eq!(status, 201, "{token}");
        let dir = t.dir.path().join(def.name);
        let mut cmd = net.ns(def.node).command(agent_binary());
        cmd.arg("enroll")
            .args(["--server", token["agent_url"].as_str().unwrap()])
            .args(["--token", token["token"].as_str().unwrap()])
            .arg("--data-dir")
            .arg(&dir)
            .args(["--name", def.name, "--country", def.country])
            .args(["--city", def.city, "--label"])
            .arg(format!("env={}", def.env))
            .arg("--json");
        let out = tokio::process::Command::from(cmd)
            .output()
            .await
            .expect("vantage-agent runs");
        assert!(
            out.status.success(),
            "vantage-agent enroll of {} failed ({}): {}",
            def.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "enroll --json printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        assert_eq!(v["name"], def.name, "{v}");
        Agent {
            def,
            log: t.dir.path().join(format!("{}.log", def.name)),
            dir,
            id: v["agent_id"].as_str().unwrap().parse().unwrap(),
            v4: net.link_v4(def.node, "r1"),
            v6: net.link_v6(def.node, "r1"),
            child: None,
        }
    }

    /// Runs the agent (its log goes to a file, printed if the test fails).
    fn start(&mut self, net: &Topology) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("agent log file");
        let mut cmd = net.ns(self.def.node).command(agent_binary());
        cmd.arg("--data-dir")
            .arg(&self.dir)
            .arg("--allow-private")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log));
        let child = tokio::process::Command::from(cmd)
            .kill_on_drop(true)
            .spawn()
            .expect("vantage-agent starts");
        self.child = Some(child);
    }

    /// SIGKILL, and waits until the process is gone.
    async fn kill(&mut self) {
        let mut child = self.child.take().expect("the agent runs");
        child.start_kill().expect("SIGKILL is delivered");
        let status = child.wait().await.expect("the agent is reaped");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{status}");
    }

    /// Results waiting in the on-disk outbox.
    fn outbox(&self) -> usize {
        support::outbox_results(&self.dir)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- last lines of {}'s log ---", self.def.name);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// Enrols and starts all three agents, and waits until the server has them online.
async fn fleet(net: &Topology, t: &TestServer) -> Vec<Agent> {
    let mut agents = Vec::new();
    for def in &DEFS {
        let mut a = Agent::enroll(net, t, def).await;
        a.start(net);
        agents.push(a);
    }
    t.wait_online(3).await;
    agents
}

/// Runs `nft` in `node` with `args` and optional stdin; returns its standard output.
async fn nft(net: &Topology, node: &str, args: &[&str], stdin: Option<&str>) -> String {
    use tokio::io::AsyncWriteExt;
    let mut cmd = net.ns(node).command("nft");
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = tokio::process::Command::from(cmd)
        .spawn()
        .expect("nft runs");
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .await
        .unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "nft {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Counts, in the target namespace, echo requests per agent source address and family (rules
/// named "fra-1 v4" …), and those from any other source ("others v4", "others v6").
async fn count_echo_requests(net: &Topology) {
    let mut rules = String::new();
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for d in &DEFS {
        let (a4, a6) = (net.link_v4(d.node, "r1"), net.link_v6(d.node, "r1"));
        rules += &format!(
            "ip saddr {a4} icmp type echo-request counter comment \"{} v4\"\n",
            d.name
        );
        rules += &format!(
            "ip6 saddr {a6} icmpv6 type echo-request counter comment \"{} v6\"\n",
            d.name
        );
        v4.push(a4.to_string());
        v6.push(a6.to_string());
    }
    rules += &format!(
        "ip saddr != {{ {} }} icmp type echo-request counter comment \"others v4\"\n",
        v4.join(", ")
    );
    rules += &format!(
        "ip6 saddr != {{ {} }} icmpv6 type echo-request counter comment \"others v6\"\n",
        v6.join(", ")
    );
    let ruleset = format!(
        "table inet e2e {{\nchain input {{\ntype filter hook input priority 0; policy accept;\n{rules}}}\n}}\n"
    );
    nft(net, "tgt", &["-f", "-"], Some(&ruleset)).await;
}

/// The packet counters of the named rules of one nftables table in `node`, by rule name.
async fn counters(net: &Topology, node: &str, table: &str) -> BTreeMap<String, u64> {
    let text = nft(net, node, &["-j", "list", "table", "inet", table], None).await;
    let v: Value = serde_json::from_str(&text).expect("nft -j prints JSON");
    let mut out = BTreeMap::new();
    for item in v["nftables"].as_array().expect("an nftables array") {
        let rule = &item["rule"];
        let Some(name) = rule["comment"].as_str() else {
            continue;
        };
        let packets = rule["expr"]
            .as_array()
            .and_then(|e| e.iter().find_map(|x| x["counter"]["packets"].as_u64()))
            .unwrap_or_else(|| panic!("rule {name} has no counter: {rule}"));
        out.insert(name.to_string(), packets);
    }
    out
}

/// The echo-request counters of the target, by rule name.
async fn echo_requests(net: &Topology) -> BTreeMap<String, u64> {
    let out = counters(net, "tgt", "e2e").await;
    assert_eq!(out.len(), 8, "{out:?}");
    out
}

/// The server's `vantage_results_stored_total`.
async fn results_stored(t: &TestServer) -> String {
    let (_, text) = t.req(reqwest::Method::GET, "/metrics", None, None).await;
    text.as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("vantage_results_stored_total "))
        .unwrap_or_else(|| panic!("no vantage_results_stored_total in {text}"))
        .trim()
        .to_string()
}

/// Waits until the target has seen at least `n` echo requests under each of `rules`.
async fn wait_requests(net: &Topology, rules: &[&str], n: u64) {
    wait_for(
        &format!("{n} echo requests from each of {rules:?}"),
        20.0,
        || async {
            let seen = echo_requests(net).await;
            rules.iter().all(|r| seen[*r] >= n).then_some(())
        },
    )
    .await
}

fn ping(target: impl ToString, count: u32, agents: &str) -> Value {
    json!({
        "type": "ping",
        "target": target.to_string(),
        "count": count,
        "interval": 0.2,
        "timeout": 1.0,
        "agents": agents,
    })
}

fn names(created: &Value) -> BTreeSet<String> {
    created["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn entry<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["agent"]["name"] == name)
        .unwrap_or_else(|| panic!("no entry for {name} in {view}"))
}

/// The stored result envelope of an entry and its ping detail.
fn ping_result(e: &Value) -> (MeasurementResult, PingDetail) {
    let r: MeasurementResult = serde_json::from_value(e["result"].clone())
        .unwrap_or_else(|err| panic!("the stored result does not parse ({err}): {e}"));
    match r.detail.clone() {
        Some(Detail::Ping(d)) => (r, d),
        other => panic!("not a ping detail: {other:?} in {e}"),
    }
}

fn id_of(created: &Value) -> String {
    created["id"].as_str().unwrap().to_string()
}

fn time_of(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

/// A complete, successful ping of `count` requests to `target` by `agent`, as stored.
fn assert_complete(view: &Value, agent: &Agent, target: &str, count: u32) -> PingDetail {
    let e = entry(view, agent.def.name);
    assert_eq!(e["status"], "done", "{e}");
    assert!(e.get("late").is_none_or(|l| l == false), "{e}");
    let (r, d) = ping_result(e);
    assert_eq!(r.outcome, Outcome::Ok, "{e}");
    assert_eq!(r.target, target);
    assert_eq!(
        r.measurement_id,
        Some(view["id"].as_str().unwrap().parse().unwrap())
    );
    assert_eq!(d.address.to_string(), target);
    assert_eq!((d.sent, d.received), (count, count), "{e}");
    d
}

#[test]
fn exclusive_netns_selected_agents_alone_ping_the_target_and_their_numbers_are_stored() {
    const NAME: &str =
        "exclusive_netns_selected_agents_alone_ping_the_target_and_their_numbers_are_stored";
    if !privileged(NAME) || need_binary(NAME, "nft").is_none() {
        return;
    }
    let Some(iputils) = need_binary(NAME, "ping") else {
        return;
    };
    let net = topology(true);
    let tgt4 = net.link_v4("tgt", "r1").to_string();
    let tgt6 = net.link_v6("tgt", "r1").to_string();
    in_ns(&net, "srv", async {
        count_echo_requests(&net).await;
        let t = server("10.60.0.1:0", 2.0).await;
        assert_eq!(t.cfg.agent_listen.ip().to_string(), "10.60.0.1");
        let agents = fleet(&net, &t).await;

        // The server knows each agent as enrolled, and saw it come from its own namespace.
        for a in &agents {
            let (status, v) = t.get(&format!("/api/v1/agents/{}", a.id)).await;
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["name"], a.def.name, "{v}");
            assert_eq!(v["status"], "online", "{v}");
            assert_eq!(v["country"], a.def.country, "{v}");
            assert_eq!(v["labels"]["env"], a.def.env, "{v}");
            assert_eq!(v["seen_address"], a.v4.to_string(), "{v}");
            assert_eq!(v["capabilities"]["raw_sockets"], true, "{v}");
        }

        // By country, over IPv4: fra-1 and ber-1, not par-1.
        const COUNT: u32 = 5;
        let c = t.measure(ping(&tgt4, COUNT, "country:DE")).await;
        assert_eq!(names(&c), set(&["fra-1", "ber-1"]));
        let v = t.wait_finished(&id_of(&c), 30.0).await;
        assert_eq!(v["results"].as_array().unwrap().len(), 2, "{v}");
        let seen = echo_requests(&net).await;
        assert_eq!(seen["fra-1 v4"], u64::from(COUNT), "{seen:?}");
        assert_eq!(seen["ber-1 v4"], u64::from(COUNT), "{seen:?}");
        assert_eq!(seen["par-1 v4"], 0, "{seen:?}");
        assert_eq!(seen["others v4"], 0, "{seen:?}");
        let slow = assert_complete(&v, &agents[0], &tgt4, COUNT);
        let fast = assert_complete(&v, &agents[1], &tgt4, COUNT);
        // fra-1's link adds DELAY_MS each way; the impairer never delivers early, and 15 ms
        // covers its lateness plus scheduling on a loaded machine.
        let rtt = slow.rtt_ms.expect("fra-1 has round-trip times");
        let floor = 2.0 * DELAY_MS;
        assert!(rtt.min >= floor - 0.5, "fra-1 {rtt:?}");
        assert!(rtt.p50 <= floor + 15.0, "fra-1 {rtt:?}");
        // ber-1's path is veths and a router only: well below the delay.
        let rtt = fast.rtt_ms.expect("ber-1 has round-trip times");
        assert!(rtt.min < 5.0 && rtt.p50 < floor / 2.0, "ber-1 {rtt:?}");

        // By label, over IPv6: fra-1 and par-1, not ber-1.
        let c = t.measure(ping(&tgt6, COUNT, "env:prod")).await;
        assert_eq!(names(&c), set(&["fra-1", "par-1"]));
        let v = t.wait_finished(&id_of(&c), 30.0).await;
        assert_eq!(v["results"].as_array().unwrap().len(), 2, "{v}");
        let seen = echo_requests(&net).await;
        assert_eq!(seen["fra-1 v6"], u64::from(COUNT), "{seen:?}");
        assert_eq!(seen["par-1 v6"], u64::from(COUNT), "{seen:?}");
        assert_eq!(seen["ber-1 v6"], 0, "{seen:?}");
        assert_eq!(seen["others v6"], 0, "{seen:?}");
        assert_eq!(seen["par-1 v4"], 0, "{seen:?}");
        let slow6 = assert_complete(&v, &agents[0], &tgt6, COUNT);
        let fast6 = assert_complete(&v, &agents[2], &tgt6, COUNT);
        let rtt = slow6.rtt_ms.expect("fra-1 has round-trip times");
        assert!(
            rtt.min >= floor - 0.5 && rtt.p50 <= floor + 15.0,
            "fra-1 {rtt:?}"
        );
        let rtt = fast6.rtt_ms.expect("par-1 has round-trip times");
        assert!(rtt.min < 5.0 && rtt.p50 < floor / 2.0, "par-1 {rtt:?}");
        assert_eq!(
            t.s().store().row_counts().await.unwrap()["results"],
            4,
            "one result per selected agent and measurement"
        );

        // iputils ping from fra-1's namespace, same path, same run, sees the same delay.
        let mut cmd = net.ns("a1").command(&iputils);
        cmd.args(["-n", "-c", "5", "-i", "0.2", "-W", "2", &tgt4]);
        let out = tokio::process::Command::from(cmd).output().await.unwrap();
        let classic = vantage_testnet::tools::parse_ping(&String::from_utf8_lossy(&out.stdout))
            .expect("iputils ping output");
        assert_eq!(classic.received, 5, "{classic:?}");
        let classic_min = classic.rtts().into_iter().fold(f64::INFINITY, f64::min);
        let ours = slow.rtt_ms.unwrap().min;
        assert!(
            (classic_min - ours).abs() < 5.0,
            "iputils min {classic_min} ms, stored min {ours} ms"
        );
    });
}

#[test]
fn netns_an_agent_process_killed_mid_measurement_is_agent_lost_by_the_deadline() {
    const NAME: &str =
        "netns_an_agent_process_killed_mid_measurement_is_agent_lost_by_the_deadline";
    if !privileged(NAME) || need_binary(NAME, "nft").is_none() {
        return;
    }
    let net = topology(false);
    let tgt4 = net.link_v4("tgt", "r1").to_string();
    in_ns(&net, "srv", async {
        count_echo_requests(&net).await;
        let t = server("10.60.0.1:0", 1.5).await;
        let mut agents = fleet(&net, &t).await;
        // 15 requests 0.2 s apart: about three seconds of measuring.
        const COUNT: u32 = 15;
        let c = t.measure(ping(&tgt4, COUNT, "all")).await;
        assert_eq!(names(&c), set(&["fra-1", "ber-1", "par-1"]));
        let id = id_of(&c);
        let deadline = time_of(&c["deadline"]);
        // Kill ber-1 once it is measuring.
        wait_requests(&net, &["ber-1 v4"], 3).await;
        agents[1].kill().await;
        let at_kill = echo_requests(&net).await["ber-1 v4"];
        assert!(
            at_kill < u64::from(COUNT),
            "ber-1 had already finished ({at_kill} requests) when it was killed"
        );

        let v = t.wait_finished(&id, 30.0).await;
        let finished = time_of(&v["finished_at"]);
        assert!(
            finished >= deadline - chrono::Duration::milliseconds(50)
                && finished <= deadline + chrono::Duration::milliseconds(1500),
            "finished at {finished}, deadline {deadline}"
        );
        // A row for every selected agent, the killed one with a sentence.
        assert_eq!(v["results"].as_array().unwrap().len(), 3, "{v}");
        let lost = entry(&v, "ber-1");
        assert_eq!(lost["status"], "agent_lost", "{lost}");
        let reason = lost["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("agent ber-1 disconnected at")
                && reason.contains("did not deliver a result within the deadline"),
            "{lost}"
        );
        assert_eq!(lost["result"]["outcome"], "agent_lost", "{lost}");
        assert_eq!(lost["result"]["error"], reason, "{lost}");
        assert_complete(&v, &agents[0], &tgt4, COUNT);
        assert_complete(&v, &agents[2], &tgt4, COUNT);
        assert_eq!(v["counts"]["agent_lost"], 1, "{v}");
        assert_eq!(v["counts"]["done"], 2, "{v}");
        assert_eq!(
            t.s()
                .store()
                .result_count(id.parse().unwrap())
                .await
                .unwrap(),
            3
        );
        // Nothing of ber-1's reached the target after the kill; the others sent everything.
        let seen = echo_requests(&net).await;
        assert_eq!(seen["ber-1 v4"], at_kill, "{seen:?}");
        assert_eq!(seen["fra-1 v4"], u64::from(COUNT), "{seen:?}");
        assert_eq!(seen["par-1 v4"], u64::from(COUNT), "{seen:?}");
        assert_eq!(t.online().await, 2);
    });
}

#[test]
fn netns_results_held_through_a_link_cut_arrive_exactly_once() {
    const NAME: &str = "netns_results_held_through_a_link_cut_arrive_exactly_once";
    if !privileged(NAME) || need_binary(NAME, "nft").is_none() {
        return;
    }
    let net = topology(false);
    let tgt4 = net.link_v4("tgt", "r1").to_string();
    // ber-1's link, pulled at the router's end.
    let port = net.iface("r1", "a2").to_string();
    in_ns(&net, "srv", async {
        count_echo_requests(&net).await;
        // A long grace: the result may come back only after a reconnect that waits out TCP's
        // SYN retries, and it must then not count as late.
        let t = server("10.60.0.1:0", 25.0).await;
        let agents = fleet(&net, &t).await;
        const COUNT: u32 = 12;
        let c = t.measure(ping(&tgt4, COUNT, "all")).await;
        let id = id_of(&c);
        wait_requests(&net, &["ber-1 v4"], 2).await;
        net.ns("r1")
            .ip(&["link", "set", &port, "down"])
            .expect("link down");

        // ber-1 finishes measuring while cut off: the result waits in its outbox, the server
        // loses the link and still has the job running.
        wait_for("ber-1's result in its outbox", 20.0, || async {
            (agents[1].outbox() == 1).then_some(())
        })
        .await;
        wait_for("the server to notice the dead link", 20.0, || async {
            (t.online().await == 2).then_some(())
        })
        .await;
        let seen = echo_requests(&net).await["ber-1 v4"];
        assert!(seen >= 2 && seen < u64::from(COUNT), "{seen}");
        let during = wait_for("the other agents' results", 20.0, || async {
            let v = t.view(&id).await;
            (v["counts"]["done"] == 2).then_some(v)
        })
        .await;
        assert_eq!(entry(&during, "ber-1")["status"], "running", "{during}");
        assert_eq!(
            t.s()
                .store()
                .result_count(id.parse().unwrap())
                .await
                .unwrap(),
            2
        );

        net.ns("r1")
            .ip(&["link", "set", &port, "up"])
            .expect("link up");
        let v = t.wait_finished(&id, 40.0).await;
        t.wait_online(3).await;
        wait_for("ber-1's outbox to empty", 10.0, || async {
            (agents[1].outbox() == 0).then_some(())
        })
        .await;

        // The result measured during the cut, stored once, not late.
        let e = entry(&v, "ber-1");
        assert_eq!(e["status"], "done", "{e}");
        assert!(e.get("late").is_none_or(|l| l == false), "{e}");
        let (r, d) = ping_result(e);
        assert_eq!(r.outcome, Outcome::Ok, "{e}");
        assert_eq!(d.sent, COUNT, "{e}");
        // Every request that reached the target before the cut was answered, except perhaps
        // the one whose reply met the cut; nothing after it.
        assert!(
            u64::from(d.received) <= seen && u64::from(d.received) + 1 >= seen,
            "received {} of {} requests the target saw",
            d.received,
            seen
        );
        assert_eq!(d.lost.len() as u32, COUNT - d.received, "{e}");
        assert_complete(&v, &agents[0], &tgt4, COUNT);
        assert_complete(&v, &agents[2], &tgt4, COUNT);
        let ids: BTreeSet<String> = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["result"]["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), 3, "{v}");
        assert_eq!(
            t.s()
                .store()
                .result_count(id.parse().unwrap())
                .await
                .unwrap(),
            3
        );
        assert_eq!(results_stored(&t).await, "3");
        // Nothing was measured twice.
        assert_eq!(echo_requests(&net).await["ber-1 v4"], seen);
        for a in &agents {
            assert_eq!(a.outbox(), 0, "{} still holds results", a.def.name);
        }
    });
}

#[test]
fn netns_a_server_restart_during_a_measurement_loses_nothing() {
    const NAME: &str = "netns_a_server_restart_during_a_measurement_loses_nothing";
    if !privileged(NAME) || need_binary(NAME, "nft").is_none() {
        return;
    }
    let net = topology(false);
    let tgt4 = net.link_v4("tgt", "r1").to_string();
    let tgt6 = net.link_v6("tgt", "r1").to_string();
    in_ns(&net, "srv", async {
        count_echo_requests(&net).await;
        // The agent port on the server's IPv6 link address this time.
        let mut t = server("[fd60::1]:0", 3.0).await;
        let agents = fleet(&net, &t).await;
        for a in &agents {
            let (_, v) = t.get(&format!("/api/v1/agents/{}", a.id)).await;
            assert_eq!(v["seen_address"], a.v6.to_string(), "{v}");
        }

        // A finished measurement, to compare after the restart.
        let first = t.measure(ping(&tgt4, 3, "all")).await;
        let before = t.wait_finished(&id_of(&first), 30.0).await;

        const COUNT: u32 = 15;
        let c = t.measure(ping(&tgt6, COUNT, "all")).await;
        let id = id_of(&c);
        wait_requests(&net, &["fra-1 v6", "ber-1 v6", "par-1 v6"], 2).await;
        t.restart().await;
        assert_eq!(t.s().resumed, 1, "the unfinished measurement is resumed");
        t.wait_online(3).await;
        let v = t.wait_finished(&id, 40.0).await;
        for a in &agents {
            assert_complete(&v, a, &tgt6, COUNT);
        }
        assert_eq!(v["counts"]["done"], 3, "{v}");
        assert_eq!(
            t.s()
                .store()
                .result_count(id.parse().unwrap())
                .await
                .unwrap(),
            3
        );
        // Each agent measured once: nothing was re-run because of the restart.
        let seen = echo_requests(&net).await;
        for d in &DEFS {
            assert_eq!(
                seen[&format!("{} v6", d.name)],
                u64::from(COUNT),
                "{seen:?}"
            );
        }
        for a in &agents {
            wait_for("the outbox to empty", 10.0, || async {
                (a.outbox() == 0).then_some(())
            })
            .await;
        }
        // What was stored before the restart is still there, unchanged.
        let after = t.view(&id_of(&first)).await;
        assert_eq!(after, before);
        assert_eq!(t.s().store().row_counts().await.unwrap()["results"], 6);
    });
}

#[test]
fn netns_a_result_whose_acknowledgement_is_lost_is_sent_again_and_stored_once() {
    const NAME: &str = "netns_a_result_whose_acknowledgement_is_lost_is_sent_again_and_stored_once";
    if !privileged(NAME) || need_binary(NAME, "nft").is_none() {
        return;
    }
    let net = topology(false);
    let tgt4 = net.link_v4("tgt", "r1").to_string();
    let srv = net.link_v4("srv", "r1");
    let ber = net.link_v4("a2", "r1");
    in_ns(&net, "srv", async {
        count_echo_requests(&net).await;
        let t = server("10.60.0.1:0", 25.0).await;
        let agents = fleet(&net, &t).await;
        const COUNT: u32 = 6;
        let c = t.measure(ping(&tgt4, COUNT, "name:ber-1")).await;
        assert_eq!(names(&c), set(&["ber-1"]));
        let id = id_of(&c);
        wait_requests(&net, &["ber-1 v4"], 1).await;
        // From now on the router drops every segment with data that the server sends to ber-1
        // (anything longer than the 80 bytes of a bare TCP acknowledgement with every option;
        // a TLS record alone is 22 bytes or more). TCP still acknowledges what ber-1 sends, so
        // its result reaches the server; the result's acknowledgement never comes back.
        let port = t.cfg.agent_listen.port();
        let mute = format!(
            "table inet mute {{\nchain forward {{\ntype filter hook forward priority 0; policy accept;\n\
             ip saddr {srv} ip daddr {ber} tcp sport {port} ip length > 80 counter drop \
             comment \"server to ber-1\"\n}}\n}}\n"
        );
        nft(&net, "r1", &["-f", "-"], Some(&mute)).await;
        let stored = t.wait_finished(&id, 20.0).await;
        let first = entry(&stored, "ber-1").clone();
        assert_eq!(first["status"], "done", "{first}");
        // Unheard, the agent gives up on the link; the result stays in its outbox meanwhile.
        wait_for("ber-1 to drop its silent link", 20.0, || async {
            (t.online().await == 2).then_some(())
        })
        .await;
        assert_eq!(
            agents[1].outbox(),
            1,
            "the acknowledgement must not have arrived"
        );
        let dropped = counters(&net, "r1", "mute").await["server to ber-1"];
        assert!(dropped > 0, "the router dropped nothing");

        nft(&net, "r1", &["delete", "table", "inet", "mute"], None).await;
        t.wait_online(3).await;
        wait_for("the re-sent result to be acknowledged", 20.0, || async {
            (agents[1].outbox() == 0).then_some(())
        })
        .await;
        // Stored once: the same entry, one row, one count in the metric, one measurement run.
        assert_eq!(entry(&t.view(&id).await, "ber-1"), &first);
        assert_eq!(
            t.s()
                .store()
                .result_count(id.parse().unwrap())
                .await
                .unwrap(),
            1
        );
        assert_eq!(results_stored(&t).await, "1");
        assert_eq!(echo_requests(&net).await["ber-1 v4"], u64::from(COUNT));
    });
}
