//! Test harness: a real server on port-0 loopback listeners, real enrolled agents running the
//! real agent code in this process, a TCP proxy that can cut an agent's link, and waiting on
//! conditions with deadlines (never sleeps as synchronisation).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vantage_agent::{AgentConfig, EnrollOptions};
use vantage_server::{Client, RunningServer, ServerConfig, StreamEvent};

pub const ADMIN: &str = "test-admin-token-0123456789";

/// Waits until `f` returns `Some`, polling every 20 ms, failing after `secs`.
pub async fn wait_for<T, F, Fut>(what: &str, secs: f64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub dir: TempDir,
    pub cfg: ServerConfig,
    pub http: reqwest::Client,
    pub base: String,
    pub client: Client,
}

impl TestServer {
    pub async fn start(local_agent: bool) -> TestServer {
        Self::start_with(|c| c.local_agent = local_agent).await
    }

    pub async fn start_with(f: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ServerConfig {
            data_dir: dir.path().join("server"),
            listen: "127.0.0.1:0".parse().unwrap(),
            agent_listen: "127.0.0.1:0".parse().unwrap(),
            local_agent: false,
            heartbeat_interval: 0.2,
            heartbeat_timeout: 1.0,
            result_grace: 1.5,
            admin_token: Some(ADMIN.into()),
            ..ServerConfig::default()
        };
        f(&mut cfg);
        let server = vantage_server::start(cfg.clone()).await.unwrap();
        // Later restarts reuse the ports the kernel picked.
        cfg.listen = server.api_addr;
        cfg.agent_listen = server.agent_addr;
        let base = format!("http://{}", server.api_addr);
        TestServer {
            client: Client::new(&base, ADMIN).unwrap(),
            server: Some(server),
            dir,
            cfg,
            http: reqwest::Client::new(),
            base,
        }
    }

    pub fn s(&self) -> &RunningServer {
        self.server.as_ref().expect("server running")
    }

    pub fn agent_url(&self) -> String {
        format!("https://{}", self.cfg.agent_listen)
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }

    /// Stops and starts again on the same ports and data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.server = Some(vantage_server::start(self.cfg.clone()).await.unwrap());
    }

    pub async fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.req(reqwest::Method::GET, path, Some(ADMIN), None)
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.req(
            reqwest::Method::POST,
            path,
            Some(ADMIN),
            Some(&body.to_string()),
        )
        .await
    }

    /// Enrols an agent through the real enrolment path and returns its data directory.
    pub async fn enroll(
        &self,
        name: &str,
        country: &str,
        city: &str,
        labels: &[(&str, &str)],
    ) -> PathBuf {
        let token = self.client.create_enrollment_token(None).await.unwrap();
        let dir = self.dir.path().join(format!("agent-{name}"));
        vantage_agent::enroll(&EnrollOptions {
            server: token.agent_url.clone(),
            token: token.token,
            data_dir: dir.clone(),
            name: Some(name.into()),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            country: Some(country.into()),
            city: Some(city.into()),
            region: None,
            asn: None,
        })
        .await
        .unwrap();
        dir
    }

    pub async fn online(&self) -> usize {
        self.s().agents_connected()
    }

    pub async fn wait_online(&self, n: usize) {
        wait_for(&format!("{n} agents online"), 20.0, || async {
            (self.server.as_ref().map(|s| s.agents_connected()) == Some(n)).then_some(())
        })
        .await
    }

    pub async fn measure(&self, body: Value) -> Value {
        let (status, v) = self.post("/api/v1/measurements", &body).await;
        assert_eq!(status, 202, "{v}");
        v
    }

    pub async fn view(&self, id: &str) -> Value {
        let (status, v) = self.get(&format!("/api/v1/measurements/{id}")).await;
        assert_eq!(status, 200, "{v}");
        v
    }

    pub async fn wait_finished(&self, id: &str, secs: f64) -> Value {
        wait_for(&format!("measurement {id} to finish"), secs, || async {
            let v = self.view(id).await;
            (v["status"] == "finished").then_some(v)
        })
        .await
    }

    /// Reads the whole live stream of a measurement.
    pub async fn stream(&self, id: Uuid) -> Vec<StreamEvent> {
        let mut s = self.client.stream(id).await.unwrap();
        let mut out = Vec::new();
        while let Some(e) = s.next().await {
            out.push(e.unwrap());
        }
        out
    }
}

/// An agent running the real agent code in this process.
pub struct TestAgent {
    pub dir: PathBuf,
    pub id: Uuid,
    stop: CancellationToken,
    pub handle: Option<JoinHandle<Result<(), vantage_agent::Error>>>,
}

impl TestAgent {
    pub fn spawn(dir: &Path, server: Option<String>) -> TestAgent {
        let state = vantage_agent::Identity::read_state(dir).unwrap();
        let mut cfg = AgentConfig::new(dir);
        cfg.server = server;
        cfg.allow_private = true;
        cfg.min_backoff = Duration::from_millis(50);
        cfg.max_backoff = Duration::from_millis(300);
        let stop = CancellationToken::new();
        let s = stop.clone();
        let handle =
            tokio::spawn(async move { vantage_agent::run(cfg, s.cancelled_owned()).await });
        TestAgent {
            dir: dir.to_path_buf(),
            id: state.agent_id,
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the agent the way a crash would: the task is dropped mid-flight.
    pub fn kill(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }

    pub async fn stop(&mut self) -> Option<Result<(), vantage_agent::Error>> {
        self.stop.cancel();
        match self.handle.take() {
            Some(h) => Some(h.await.unwrap()),
            None => None,
        }
    }

    /// Results waiting in the on-disk outbox.
    pub fn outbox_files(&self) -> usize {
        outbox_results(&self.dir)
    }
}

/// Results waiting in the on-disk outbox of the agent whose data directory is `agent_dir`
/// (the outbox's `.json` files; spares and temporary files are not results).
pub fn outbox_results(agent_dir: &Path) -> usize {
    std::fs::read_dir(agent_dir.join("outbox"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the proxy does with an agent's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Open,
    /// Close every connection and refuse new ones: the link is down.
    Cut,
    /// Forward agent → server, drop server → agent (acknowledgements never arrive).
    MuteDown,
}

/// The proxy's setting: a mode, and a generation that closes every connection when it changes.
type Setting = (Mode, u64);

/// A TCP proxy between agents and the server's agent port.
pub struct Proxy {
    pub addr: SocketAddr,
    setting: Arc<watch::Sender<Setting>>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut setting: watch::Receiver<Setting>,
    downstream: bool,
) {
    let generation = setting.borrow().1;
    let mut buf = vec![0u8; 16384];
    loop {
        tokio::select! {
            r = from.read(&mut buf) => {
                let n = match r { Ok(0) | Err(_) => return, Ok(n) => n };
                let (mode, g) = *setting.borrow();
                if g != generation {
                    return;
                }
                match mode {
                    Mode::Cut => return,
                    Mode::MuteDown if downstream => continue,
                    _ => {
                        if to.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
            r = setting.changed() => {
                let (mode, g) = *setting.borrow();
                if r.is_err() || mode == Mode::Cut || g != generation {
                    return;
                }
            }
        }
    }
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, _) = watch::channel((Mode::Open, 0));
        let setting = Arc::new(tx);
        let st = setting.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if st.borrow().0 == Mode::Cut {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, st.subscribe(), false));
                tokio::spawn(pump(sr, cw, st.subscribe(), true));
            }
        });
        Proxy {
            addr,
            setting,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Changes what happens to traffic from now on.
    pub fn set(&self, m: Mode) {
        self.setting.send_modify(|s| s.0 = m);
    }

    /// Closes every open connection (new ones follow the mode).
    pub fn reset(&self) {
        self.setting.send_modify(|s| s.1 += 1);
    }
}
