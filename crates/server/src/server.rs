//! Starting and stopping the server: open storage, load or create the CA, bootstrap the first
//! admin token, bind both listeners, resume unfinished measurements, start the built-in agent.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::ServerConfig;
use crate::lifecycle::Coordinator;
use crate::model::Role;
use crate::pki::Pki;
use crate::store::Store;
use crate::{Error, agent_port, api, local_agent};

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// Where agents connect.
    pub agent_addr: SocketAddr,
    /// The URL agents dial (printed in enrolment commands).
    pub agent_url: String,
    /// The admin token created on this start, if none existed (print it once).
    pub first_admin_token: Option<String>,
    /// SHA-256 of the CA certificate.
    pub ca_fingerprint: String,
    /// Measurements resumed from before the start.
    pub resumed: usize,
    app: Arc<App>,
    tasks: Vec<JoinHandle<()>>,
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { what, addr, source })
}

fn default_agent_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        format!("https://{host}:{}", addr.port())
    } else {
        format!("https://{addr}")
    }
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().map(str::to_string);
    }
    Some(
        authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .to_string(),
    )
}

/// Starts the server and returns once it accepts connections.
pub async fn start(config: ServerConfig) -> Result<RunningServer, Error> {
    config.validate()?;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = config.data_dir.clone();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create the data directory", &dir, e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("restrict the data directory", &dir, e))?;
    }
    let store = Store::open_sqlite(&dir).await?;
    let api_listener = bind("the API", config.listen).await?;
    let agent_listener = bind("agents", config.agent_listen).await?;
    let api_addr = api_listener.local_addr().map_err(|source| Error::Listen {
        what: "the API",
        addr: config.listen,
        source,
    })?;
    let agent_addr = agent_listener
        .local_addr()
        .map_err(|source| Error::Listen {
            what: "agents",
            addr: config.agent_listen,
            source,
        })?;
    let agent_url = config
        .agent_url
        .clone()
        .unwrap_or_else(|| default_agent_url(agent_addr));
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !agent_addr.ip().is_unspecified() {
        names.push(agent_addr.ip().to_string());
    }
    names.extend(host_of(&agent_url));
    names.extend(config.server_names.iter().cloned());
    names.sort();
    names.dedup();
    let pki = Pki::load_or_create(&dir.join("pki"), &names)?;
    let tokens = store.api_tokens().await?;
    let revoked = store.revoked_agents().await?.into_iter().collect();
    let shutdown = CancellationToken::new();
    let app = Arc::new(App::new(
        config.clone(),
        store,
        pki,
        Coordinator::new(),
        tokens,
        revoked,
        agent_url.clone(),
        shutdown.clone(),
        api::lookup::LookupService::open(&config)?,
    ));

    let mut first_admin_token = None;
    if let Some(t) = &config.admin_token {
        app.add_api_token("admin (VANTAGE_ADMIN_TOKEN)", Role::Admin, t)
            .await?;
    } else if !app.has_tokens() {
        first_admin_token = Some(app.create_api_token("admin", Role::Admin).await?);
    }
    app.refresh_measurement_gauges().await?;

    let mut tasks = Vec::new();
    tasks.extend(Coordinator::start_writer(&app));
    let resumed = Coordinator::recover(&app).await?;
    if resumed > 0 {
        tracing::info!(measurements = resumed, "resumed unfinished measurements");
    }

    let tls = agent_port::tls_config(&app)?;
    tasks.push(tokio::spawn(agent_port::serve(
        app.clone(),
        agent_listener,
        tls,
    )));

    let router = api::router(app.clone());
    let listener = api_listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(e) = serve.await {
            tracing::error!("the API server failed: {e}");
        }
    }));

    // Last-seen times are kept in memory and written every half minute.
    let flush_app = app.clone();
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = flush_app.shutdown.cancelled() => break,
            }
            if let Err(e) = flush_app
                .store
                .record_seen(&flush_app.hub.last_seen())
                .await
            {
                tracing::warn!("cannot record last-seen times: {e}");
            }
        }
    }));

    if config.local_agent {
        tasks.push(local_agent::start(&app, agent_addr).await?);
    }
    tracing::info!(api = %api_addr, agents = %agent_addr, data = %dir.display(), "server started");
    Ok(RunningServer {
        api_addr,
        agent_addr,
        agent_url,
        first_admin_token,
        ca_fingerprint: app.pki.fingerprint().to_string(),
        resumed,
        app,
        tasks,
    })
}

impl RunningServer {
    /// The storage (for tests and benchmarks that check what was stored).
    pub fn store(&self) -> &Store {
        &self.app.store
    }

    /// Number of agents connected now.
    pub fn agents_connected(&self) -> usize {
        self.app.hub.online_count()
    }

    /// Creates an API token with a role, returning its secret.
    pub async fn create_api_token(&self, name: &str, role: Role) -> Result<String, Error> {
        self.app.create_api_token(name, role).await
    }

    /// Stops accepting, closes agent links, lets the writer store what arrived, and waits for
    /// every task (bounded).
    pub async fn stop(self) {
        self.app.shutdown.cancel();
        self.app.hub.close_all();
        for t in self.tasks {
            if tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .is_err()
            {
                tracing::warn!("a server task did not stop within 5 s");
            }
        }
        let _ = self.app.store.record_seen(&self.app.hub.last_seen()).await;
        tracing::info!("server stopped");
    }
}

/// Runs the server until `shutdown` completes.
pub async fn run(config: ServerConfig, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let server = start(config).await?;
    shutdown.await;
    server.stop().await;
    Ok(())
}
