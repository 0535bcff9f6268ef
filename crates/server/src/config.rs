//! Server configuration: command-line flags over `VANTAGE_*` environment variables over a TOML
//! file over defaults (figment merges them in that precedence).
//!
//! Defaults are safe: both listeners on loopback, data in `./vantage-data`. Unknown keys in the
//! file are rejected with the key named, and every value is range-checked once in
//! [`ServerConfig::validate`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::Error;

/// Default REST API address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7780";
/// Default agent (mutual TLS) address.
pub const DEFAULT_AGENT_LISTEN: &str = "127.0.0.1:7781";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./vantage-data";

/// Keys that may come from `VANTAGE_<KEY>` environment variables.
const ENV_KEYS: &[&str] = &[
    "data_dir",
    "listen",
    "agent_listen",
    "local_agent",
    "agent_url",
    "server_names",
    "heartbeat_interval",
    "heartbeat_timeout",
    "result_grace",
    "max_unacked",
    "enrollment_token_ttl",
    "admin_token",
];

/// Everything the server needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where the database, the CA and the built-in agent's identity live.
    pub data_dir: PathBuf,
    /// REST API address (plain HTTP; put TLS in front when exposing it beyond the host).
    pub listen: SocketAddr,
    /// Agent address (TLS 1.3 with client certificates; enrolment also arrives here).
    pub agent_listen: SocketAddr,
    /// Run the built-in local agent.
    pub local_agent: bool,
    /// The URL agents dial, printed in enrolment commands; `https://<agent_listen>` when absent.
    pub agent_url: Option<String>,
    /// Extra DNS names or addresses put into the server certificate.
    pub server_names: Vec<String>,
    /// Seconds between heartbeats on agent links.
    pub heartbeat_interval: f64,
    /// Seconds without any message after which a link is considered dead.
    pub heartbeat_timeout: f64,
    /// Seconds added to a job's own deadline for delivery before an agent counts as lost.
    pub result_grace: f64,
    /// Results an agent may have in flight without acknowledgement.
    pub max_unacked: u32,
    /// Default lifetime of enrolment tokens, in seconds.
    pub enrollment_token_ttl: f64,
    /// An admin API token to accept (from `VANTAGE_ADMIN_TOKEN`); when absent and no token exists
    /// yet, one is created on first start and printed once.
    #[serde(skip_serializing)]
    pub admin_token: Option<String>,
    /// The lookup API (`[lookup]` in the file): which WHOIS, RDAP and DNS servers it may ask.
    pub lookup: LookupConfig,
}

/// Settings of the lookup API. Requests never choose servers: WHOIS starts at `whois_server`,
/// RDAP follows the bootstrap files of the data directory, reverse DNS asks `rdns_servers` (or
/// the system resolver); referrals and redirects are followed only to public addresses and to
/// `allowed_networks`, so a crafted remote answer cannot steer the server into internal networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LookupConfig {
    /// The first WHOIS server asked (`HOST` or `HOST:PORT`).
    pub whois_server: String,
    /// WHOIS server names sent to a fixed address instead of being resolved (a relay or an
    /// internal mirror); these are trusted as configured.
    pub whois_relays: BTreeMap<String, SocketAddr>,
    /// Seconds allowed per WHOIS server.
    pub whois_timeout: f64,
    /// Seconds allowed per RDAP request.
    pub rdap_timeout: f64,
    /// DNS servers for reverse lookups; empty = the system resolver.
    pub rdns_servers: Vec<SocketAddr>,
    /// Non-public networks WHOIS and RDAP may nevertheless connect to.
    pub allowed_networks: Vec<IpNet>,
}

impl Default for LookupConfig {
    fn default() -> Self {
        LookupConfig {
            whois_server: vantage_lookup::whois::DEFAULT_SERVER.into(),
            whois_relays: BTreeMap::new(),
            whois_timeout: vantage_lookup::whois::DEFAULT_TIMEOUT.as_secs_f64(),
            rdap_timeout: vantage_lookup::rdap::DEFAULT_TIMEOUT.as_secs_f64(),
            rdns_servers: Vec::new(),
            allowed_networks: Vec::new(),
        }
    }
}

impl LookupConfig {
    fn validate(&self) -> Result<(), Error> {
        vantage_lookup::whois::Server::parse(&self.whois_server)
            .map_err(|e| Error::Config(format!("lookup.whois_server: {e}")))?;
        for host in self.whois_relays.keys() {
            vantage_lookup::whois::Server::parse(host)
                .map_err(|e| Error::Config(format!("lookup.whois_relays: {e}")))?;
        }
        for (name, v) in [
            ("lookup.whois_timeout", self.whois_timeout),
            ("lookup.rdap_timeout", self.rdap_timeout),
        ] {
            if !v.is_finite() || !(0.1..=120.0).contains(&v) {
                return Err(Error::Config(format!(
                    "{name} is {v} s; use a value from 0.1 to 120 seconds"
                )));
            }
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            agent_listen: DEFAULT_AGENT_LISTEN.parse().expect("valid default address"),
            local_agent: true,
            agent_url: None,
            server_names: Vec::new(),
            heartbeat_interval: 5.0,
            heartbeat_timeout: 15.0,
            result_grace: 10.0,
            max_unacked: 256,
            enrollment_token_ttl: 3600.0,
            admin_token: None,
            lookup: LookupConfig::default(),
        }
    }
}

/// Values given on the command line; each overrides the environment and the file when set.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerOverrides {
    /// `--data-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--agent-listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_listen: Option<SocketAddr>,
    /// `--no-local-agent` sets this to false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_agent: Option<bool>,
    /// `--agent-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_url: Option<String>,
}

impl ServerConfig {
    /// Merges defaults, the optional TOML file, `VANTAGE_*` variables and the flags, then
    /// validates. A file given explicitly must exist.
    pub fn load(file: Option<&Path>, overrides: &ServerOverrides) -> Result<Self, Error> {
        let mut fig = Figment::from(Serialized::defaults(ServerConfig::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(Error::Config(format!(
                    "the configuration file {} does not exist",
                    path.display()
                )));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig
            .merge(Env::prefixed("VANTAGE_").only(ENV_KEYS))
            .merge(Serialized::globals(overrides));
        let cfg: ServerConfig = fig.extract().map_err(|e| {
            let mut text = String::new();
            for (i, err) in e.into_iter().enumerate() {
                if i > 0 {
                    text.push_str("; ");
                }
                text.push_str(&err.to_string());
            }
            Error::Config(text)
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks ranges and cross-field rules.
    pub fn validate(&self) -> Result<(), Error> {
        let secs = |name: &str, v: f64, min: f64, max: f64| {
            if !v.is_finite() || v < min || v > max {
                Err(Error::Config(format!(
                    "{name} is {v} s; use a value from {min} to {max} seconds"
                )))
            } else {
                Ok(())
            }
        };
        secs("heartbeat_interval", self.heartbeat_interval, 0.05, 300.0)?;
        secs("heartbeat_timeout", self.heartbeat_timeout, 0.1, 3600.0)?;
        if self.heartbeat_timeout <= self.heartbeat_interval {
            return Err(Error::Config(format!(
                "heartbeat_timeout ({} s) must be longer than heartbeat_interval ({} s)",
                self.heartbeat_timeout, self.heartbeat_interval
            )));
        }
        secs("result_grace", self.result_grace, 0.1, 3600.0)?;
        secs(
            "enrollment_token_ttl",
            self.enrollment_token_ttl,
            10.0,
            30.0 * 86400.0,
        )?;
        if self.max_unacked == 0 || self.max_unacked > 65536 {
            return Err(Error::Config(format!(
                "max_unacked is {}; use a value from 1 to 65536",
                self.max_unacked
            )));
        }
        if let Some(url) = &self.agent_url
            && !url.starts_with("https://")
        {
            return Err(Error::Config(format!(
                "agent_url '{url}' must start with https:// (agents always use TLS)"
            )));
        }
        if let Some(t) = &self.admin_token
            && t.len() < 16
        {
            return Err(Error::Config(
                "VANTAGE_ADMIN_TOKEN is shorter than 16 characters; use a long random secret"
                    .into(),
            ));
        }
        self.lookup.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_only() {
        let c = ServerConfig::default();
        assert!(c.listen.ip().is_loopback());
        assert!(c.agent_listen.ip().is_loopback());
        c.validate().unwrap();
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "data_dir = \"/srv/vantage\"\nlisten = \"127.0.0.1:9000\"\nheartbeat_interval = 2.0\n",
        )
        .unwrap();
        let o = ServerOverrides {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Default::default()
        };
        let c = ServerConfig::load(Some(&path), &o).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/vantage"));
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.heartbeat_interval, 2.0);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(&path, "listen_addr = \"127.0.0.1:1\"\n").unwrap();
        let e = ServerConfig::load(Some(&path), &ServerOverrides::default()).unwrap_err();
        assert!(e.to_string().contains("listen_addr"), "{e}");

        std::fs::write(
            &path,
            "heartbeat_interval = 20.0\nheartbeat_timeout = 10.0\n",
        )
        .unwrap();
        let e = ServerConfig::load(Some(&path), &ServerOverrides::default()).unwrap_err();
        assert!(e.to_string().contains("heartbeat_timeout"), "{e}");

        let e = ServerConfig::load(Some(&dir.path().join("missing.toml")), &Default::default())
            .unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    #[test]
    fn lookup_section_parses_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "[lookup]\nwhois_server = \"whois.ripe.net\"\nallowed_networks = [\"10.9.0.0/16\"]\n\
             rdns_servers = [\"[2001:db8::53]:53\"]\n\
             [lookup.whois_relays]\n\"whois.iana.org\" = \"10.9.0.43:43\"\n",
        )
        .unwrap();
        let c = ServerConfig::load(Some(&path), &ServerOverrides::default()).unwrap();
        assert_eq!(c.lookup.whois_server, "whois.ripe.net");
        assert_eq!(c.lookup.allowed_networks, ["10.9.0.0/16".parse().unwrap()]);
        assert_eq!(
            c.lookup.whois_relays["whois.iana.org"],
            "10.9.0.43:43".parse().unwrap()
        );
        assert_eq!(c.lookup.rdns_servers.len(), 1);
        assert_eq!(c.lookup.rdap_timeout, 15.0);

        std::fs::write(&path, "[lookup]\nwhois_host = \"x\"\n").unwrap();
        let e = ServerConfig::load(Some(&path), &ServerOverrides::default()).unwrap_err();
        assert!(e.to_string().contains("whois_host"), "{e}");
        std::fs::write(&path, "[lookup]\nwhois_server = \"a b\"\n").unwrap();
        let e = ServerConfig::load(Some(&path), &ServerOverrides::default()).unwrap_err();
        assert!(e.to_string().contains("lookup.whois_server"), "{e}");
    }
}
