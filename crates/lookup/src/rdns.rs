//! Reverse DNS: PTR lookups for many addresses at once, with a cache.
//!
//! Decisions: `hickory-resolver` does the DNS work (system resolver from /etc/resolv.conf and
//! /etc/hosts, or explicit servers); its own cache is switched off and replaced by ours, which
//! keeps answers for their TTL, keeps "no name" answers for the negative TTL (at most
//! [`RdnsOptions::negative_ttl`]), never caches failures, and is bounded in size — so a
//! long-running server or a flow enricher can call it for every address it sees. Many addresses
//! are resolved concurrently, at most [`RdnsOptions::concurrency`] at a time, and the answers
//! come back in the order asked.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::RData;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Tuning for reverse lookups.
#[derive(Debug, Clone)]
pub struct RdnsOptions {
    /// Time allowed per query attempt.
    pub timeout: Duration,
    /// Attempts per query.
    pub attempts: usize,
    /// Lookups in flight at once.
    pub concurrency: usize,
    /// Cached addresses at most.
    pub cache_capacity: usize,
    /// Longest time a "no name" answer is kept.
    pub negative_ttl: Duration,
}

impl Default for RdnsOptions {
    fn default() -> Self {
        RdnsOptions {
            timeout: Duration::from_secs(2),
            attempts: 2,
            concurrency: 32,
            cache_capacity: 65_536,
            negative_ttl: Duration::from_secs(300),
        }
    }
}

/// How a PTR lookup ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PtrStatus {
    /// One or more names.
    Ok,
    /// The address has no PTR record (NXDOMAIN or no data).
    NoName,
    /// No server answered in time.
    Timeout,
    /// The lookup failed (SERVFAIL, refused, network error).
    Error,
}

/// The answer for one address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PtrAnswer {
    /// The address.
    pub ip: IpAddr,
    /// Its names, without the trailing dot.
    pub names: Vec<String>,
    /// How the lookup ended.
    pub status: PtrStatus,
    /// A sentence for failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the answer came from the cache.
    pub cached: bool,
    /// Milliseconds spent (0 for cached answers).
    pub elapsed_ms: f64,
}

struct Entry {
    expires: Instant,
    names: Vec<String>,
    status: PtrStatus,
}

/// A concurrent, caching PTR resolver.
pub struct ReverseDns {
    resolver: TokioResolver,
    opts: RdnsOptions,
    cache: Mutex<HashMap<IpAddr, Entry>>,
    servers: String,
}

impl std::fmt::Debug for ReverseDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReverseDns")
            .field("servers", &self.servers)
            .finish()
    }
}

impl ReverseDns {
    /// Uses the system's resolver configuration (/etc/resolv.conf, /etc/hosts).
    pub fn system(opts: RdnsOptions) -> Result<ReverseDns> {
        let b = TokioResolver::builder_tokio().map_err(|e| {
            Error::Upstream(format!(
                "cannot read the system resolver configuration: {e}"
            ))
        })?;
        Self::build(b, ResolveHosts::Always, opts, "system resolver".into())
    }

    /// Finishes a resolver: our options, hickory's cache off (ours replaces it).
    fn build(
        mut b: hickory_resolver::ResolverBuilder<TokioRuntimeProvider>,
        hosts: ResolveHosts,
        opts: RdnsOptions,
        servers: String,
    ) -> Result<ReverseDns> {
        let o = b.options_mut();
        o.timeout = opts.timeout;
        o.attempts = opts.attempts;
        o.cache_size = 0;
        o.use_hosts_file = hosts;
        let resolver = b
            .build()
            .map_err(|e| Error::Upstream(format!("cannot set up the resolver: {e}")))?;
        Ok(ReverseDns {
            resolver,
            opts,
            cache: Mutex::new(HashMap::new()),
            servers,
        })
    }

    /// Asks exactly these servers (UDP, falling back to TCP on truncation).
    pub fn with_servers(servers: &[SocketAddr], opts: RdnsOptions) -> Result<ReverseDns> {
        if servers.is_empty() {
            return Err(Error::Invalid("give at least one DNS server".into()));
        }
        let ns = servers
            .iter()
            .map(|sa| {
                let conn = |p| {
                    let mut c = ConnectionConfig::new(p);
                    c.port = sa.port();
                    c
                };
                NameServerConfig::new(
                    sa.ip(),
                    true,
                    vec![conn(ProtocolConfig::Udp), conn(ProtocolConfig::Tcp)],
                )
            })
            .collect();
        let b = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(ns),
            TokioRuntimeProvider::default(),
        );
        let names = servers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Self::build(b, ResolveHosts::Never, opts, names)
    }

    /// The servers asked.
    pub fn servers(&self) -> &str {
        &self.servers
    }

    /// Number of cached addresses.
    pub fn cache_len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The names of one address.
    pub async fn lookup(&self, ip: IpAddr) -> PtrAnswer {
        let now = Instant::now();
        if let Some(e) = self.lock().get(&ip).filter(|e| e.expires > now) {
            return PtrAnswer {
                ip,
                names: e.names.clone(),
                status: e.status,
                error: None,
                cached: true,
                elapsed_ms: 0.0,
            };
        }
        let started = Instant::now();
        let res = self.resolver.reverse_lookup(ip).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        let (names, status, error, ttl) = match res {
            Ok(lookup) => {
                let mut names: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::PTR(p) => Some(p.0.to_ascii().trim_end_matches('.').to_string()),
                        _ => None,
                    })
                    .collect();
                names.dedup();
                let ttl = lookup
                    .valid_until()
                    .saturating_duration_since(Instant::now());
                if names.is_empty() {
                    (
                        names,
                        PtrStatus::NoName,
                        None,
                        Some(self.opts.negative_ttl.min(ttl)),
                    )
                } else {
                    (names, PtrStatus::Ok, None, Some(ttl))
                }
            }
            Err(e) => self.classify(ip, e),
        };
        if let Some(ttl) = ttl.filter(|t| !t.is_zero()) {
            let mut cache = self.lock();
            if cache.len() >= self.opts.cache_capacity {
                let now = Instant::now();
                cache.retain(|_, e| e.expires > now);
                if cache.len() >= self.opts.cache_capacity {
                    cache.clear();
                }
            }
            cache.insert(
                ip,
                Entry {
                    expires: Instant::now() + ttl,
                    names: names.clone(),
                    status,
                },
            );
        }
        PtrAnswer {
            ip,
            names,
            status,
            error,
            cached: false,
            elapsed_ms,
        }
    }

    fn classify(
        &self,
        ip: IpAddr,
        e: NetError,
    ) -> (Vec<String>, PtrStatus, Option<String>, Option<Duration>) {
        match e {
            NetError::Dns(DnsError::NoRecordsFound(nr)) => {
                let ttl = nr
                    .negative_ttl
                    .map(|s| Duration::from_secs(s.into()))
                    .unwrap_or(self.opts.negative_ttl)
                    .min(self.opts.negative_ttl);
                (Vec::new(), PtrStatus::NoName, None, Some(ttl))
            }
            NetError::Timeout => (
                Vec::new(),
                PtrStatus::Timeout,
                Some(format!(
                    "no answer for {ip} from {} within {} s ({} attempts)",
                    self.servers,
                    self.opts.timeout.as_secs_f64(),
                    self.opts.attempts
                )),
                None,
            ),
            NetError::Dns(DnsError::ResponseCode(code)) => (
                Vec::new(),
                PtrStatus::Error,
                Some(format!("{} answered {code} for {ip}", self.servers)),
                None,
            ),
            other => (
                Vec::new(),
                PtrStatus::Error,
                Some(format!("reverse lookup of {ip} failed: {other}")),
                None,
            ),
        }
    }

    /// The names of many addresses, resolved concurrently, in the order given.
    pub async fn lookup_many(&self, ips: &[IpAddr]) -> Vec<PtrAnswer> {
        // Owned addresses keep the future `Send` (a closure over `&IpAddr` is not general
        // enough for the compiler to prove it).
        let ips: Vec<IpAddr> = ips.to_vec();
        futures::stream::iter(ips.into_iter().map(|ip| self.lookup(ip)))
            .buffered(self.opts.concurrency.max(1))
            .collect()
            .await
    }
}
