//! RDAP (RFC 7480–7484, 9082, 9083): registration data as JSON over HTTPS. The IANA bootstrap
//! files (RFC 9224) say which server holds each TLD, address block and AS number range; the
//! client picks the server, asks `domain/NAME`, `ip/ADDRESS[/LEN]` or `autnum/N`, follows the
//! registries' redirects, and returns the summary fields beside the raw JSON.
//!
//! Decisions: the four bootstrap files ship inside the binary (a snapshot written from the IANA
//! registries) and `vantage data update rdap` replaces them with current ones in the data
//! directory; each file found there wins over the built-in one. reqwest with rustls on the
//! aws-lc-rs provider is the HTTP client (one crypto provider in the whole workspace). HTTPS
//! base URLs are preferred over plain HTTP ones. Answers are capped at 4 MiB.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::reach::Reach;
use crate::whois::{QueryKind, WhoisQuery, detect};

/// Time allowed for one RDAP request (including redirects).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 5;
/// Largest answer accepted.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;
/// Where `vantage data update rdap` fetches the bootstrap files from by default.
pub const BOOTSTRAP_BASE_URL: &str = "https://data.iana.org/rdap/";

/// The four bootstrap registries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootstrapKind {
    /// Domain names (`dns.json`).
    Dns,
    /// IPv4 blocks (`ipv4.json`).
    Ipv4,
    /// IPv6 blocks (`ipv6.json`).
    Ipv6,
    /// AS number ranges (`asn.json`).
    Asn,
}

impl BootstrapKind {
    /// All four.
    pub const ALL: [BootstrapKind; 4] = [
        BootstrapKind::Asn,
        BootstrapKind::Dns,
        BootstrapKind::Ipv4,
        BootstrapKind::Ipv6,
    ];

    /// The file name IANA publishes it under.
    pub fn file_name(self) -> &'static str {
        match self {
            BootstrapKind::Dns => "dns.json",
            BootstrapKind::Ipv4 => "ipv4.json",
            BootstrapKind::Ipv6 => "ipv6.json",
            BootstrapKind::Asn => "asn.json",
        }
    }

    fn builtin(self) -> &'static str {
        match self {
            BootstrapKind::Dns => include_str!("../data/rdap/dns.json"),
            BootstrapKind::Ipv4 => include_str!("../data/rdap/ipv4.json"),
            BootstrapKind::Ipv6 => include_str!("../data/rdap/ipv6.json"),
            BootstrapKind::Asn => include_str!("../data/rdap/asn.json"),
        }
    }
}

/// One bootstrap file as RFC 9224 §3 writes it.
#[derive(Debug, Clone, Deserialize)]
struct BootstrapFile {
    version: String,
    #[serde(default)]
    publication: Option<String>,
    services: Vec<Vec<Vec<String>>>,
}

/// Where one bootstrap registry came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapSource {
    /// Which registry.
    pub kind: BootstrapKind,
    /// "built-in" or the file it was read from.
    pub origin: String,
    /// The file's publication date.
    pub publication: Option<String>,
    /// Number of entries.
    pub entries: usize,
}

/// The parsed bootstrap registries.
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    dns: Vec<(String, usize)>,
    v4: Vec<(Ipv4Net, usize)>,
    v6: Vec<(Ipv6Net, usize)>,
    asn: Vec<(u32, u32, usize)>,
    urls: Vec<Vec<String>>,
    sources: Vec<BootstrapSource>,
}

/// Checks a bootstrap file's content, returning its entry count.
pub fn validate_bootstrap(kind: BootstrapKind, json: &str) -> Result<usize> {
    let mut b = Bootstrap::default();
    b.add(kind, json, "check")
}

impl Bootstrap {
    /// The built-in snapshot.
    pub fn builtin() -> Result<Bootstrap> {
        Self::load(None)
    }

    /// The files in `dir` where present, the built-in ones otherwise.
    pub fn load(dir: Option<&Path>) -> Result<Bootstrap> {
        let mut b = Bootstrap::default();
        for kind in BootstrapKind::ALL {
            let file = dir.map(|d| d.join(kind.file_name()));
            match file.as_deref().map(std::fs::read_to_string) {
                Some(Ok(text)) => {
                    let path = file.as_deref().unwrap_or(Path::new(""));
                    b.add(kind, &text, &path.display().to_string())?;
                }
                Some(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => {
                    let path = file.as_deref().unwrap_or(Path::new(""));
                    return Err(Error::io("cannot read", path, e));
                }
                _ => {
                    b.add(kind, kind.builtin(), "built-in")?;
                }
            }
        }
        Ok(b)
    }

    fn add(&mut self, kind: BootstrapKind, json: &str, origin: &str) -> Result<usize> {
        let bad = |why: String| {
            Error::Data(format!(
                "{origin}: not an RDAP bootstrap file for {}: {why}",
                kind.file_name()
            ))
        };
        let f: BootstrapFile = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        if f.version != "1.0" {
            return Err(bad(format!("version {} (expected 1.0)", f.version)));
        }
        let mut count = 0;
        for svc in &f.services {
            let [entries, urls, ..] = svc.as_slice() else {
                return Err(bad("a service lacks its entries or URLs".into()));
            };
            if urls.is_empty() {
                return Err(bad("a service has no URL".into()));
            }
            let slot = self.urls.len();
            self.urls.push(urls.clone());
            for e in entries {
                let e = e.trim();
                match kind {
                    BootstrapKind::Dns => self
                        .dns
                        .push((e.trim_matches('.').to_ascii_lowercase(), slot)),
                    BootstrapKind::Ipv4 => self.v4.push((
                        e.parse()
                            .map_err(|_| bad(format!("'{e}' is not an IPv4 prefix")))?,
                        slot,
                    )),
                    BootstrapKind::Ipv6 => self.v6.push((
                        e.parse()
                            .map_err(|_| bad(format!("'{e}' is not an IPv6 prefix")))?,
                        slot,
                    )),
                    BootstrapKind::Asn => {
                        let (a, b) = e.split_once('-').unwrap_or((e, e));
                        let a: u32 = a
                            .trim()
                            .parse()
                            .map_err(|_| bad(format!("'{e}' is not an AS range")))?;
                        let b: u32 = b
                            .trim()
                            .parse()
                            .map_err(|_| bad(format!("'{e}' is not an AS range")))?;
                        self.asn.push((a, b, slot));
                    }
                }
                count += 1;
            }
        }
        if count == 0 {
            return Err(bad("no entries".into()));
        }
        self.sources.push(BootstrapSource {
            kind,
            origin: origin.to_string(),
            publication: f.publication,
            entries: count,
        });
        Ok(count)
    }

    /// Where each registry came from.
    pub fn sources(&self) -> &[BootstrapSource] {
        &self.sources
    }

    /// The base URLs serving `q`, HTTPS first.
    pub fn base_urls(&self, q: &WhoisQuery) -> Option<Vec<String>> {
        let slot = match q.kind {
            QueryKind::Domain => {
                // RFC 9224 §4: the longest matching label suffix wins.
                let labels: Vec<&str> = q.text.split('.').collect();
                (0..labels.len()).find_map(|i| {
                    let suffix = labels[i..].join(".");
                    self.dns.iter().find(|(t, _)| *t == suffix).map(|(_, s)| *s)
                })
            }
            QueryKind::Ip | QueryKind::Network => {
                let net: IpNet = q
                    .text
                    .parse::<IpNet>()
                    .ok()
                    .or_else(|| q.text.parse::<IpAddr>().ok().map(IpNet::from))?;
                match net {
                    IpNet::V4(n) => self
                        .v4
                        .iter()
                        .filter(|(b, _)| b.contains(&n))
                        .max_by_key(|(b, _)| b.prefix_len())
                        .map(|(_, s)| *s),
                    IpNet::V6(n) => self
                        .v6
                        .iter()
                        .filter(|(b, _)| b.contains(&n))
                        .max_by_key(|(b, _)| b.prefix_len())
                        .map(|(_, s)| *s),
                }
            }
            QueryKind::Asn => {
                let n: u32 = q.text.trim_start_matches("AS").parse().ok()?;
                self.asn
                    .iter()
                    .filter(|(a, b, _)| (*a..=*b).contains(&n))
                    .min_by_key(|(a, b, _)| b - a)
                    .map(|(_, _, s)| *s)
            }
        }?;
        let mut urls = self.urls[slot].clone();
        urls.sort_by_key(|u| !u.starts_with("https://"));
        Some(urls)
    }
}

/// The RDAP path for a query (relative to a base URL).
pub fn path_for(q: &WhoisQuery) -> String {
    match q.kind {
        QueryKind::Domain => format!("domain/{}", q.text),
        QueryKind::Ip | QueryKind::Network => format!("ip/{}", q.text),
        QueryKind::Asn => format!("autnum/{}", q.text.trim_start_matches("AS")),
    }
}

/// Summary fields of an RDAP object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdapSummary {
    /// `domain`, `ip network`, `autnum`, `entity` …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_class: Option<String>,
    /// The registry's handle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// Domain name (ldhName) or network / AS name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// First address of a network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_address: Option<String>,
    /// Last address of a network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_address: Option<String>,
    /// CIDR prefixes (the `cidr0` extension).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub cidr: Vec<String>,
    /// First AS number of an autnum range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_autnum: Option<u32>,
    /// Last AS number of an autnum range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_autnum: Option<u32>,
    /// The network's type (e.g. "ALLOCATED PA", "DIRECT ALLOCATION").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_type: Option<String>,
    /// Country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Status values.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub status: Vec<String>,
    /// Registration date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered: Option<String>,
    /// Expiry date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Last change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_changed: Option<String>,
    /// Registrar (entity with role "registrar").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registrar: Option<String>,
    /// Registrant / holder organisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registrant: Option<String>,
    /// Abuse contact e-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abuse_email: Option<String>,
    /// Name servers, lower case.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub name_servers: Vec<String>,
    /// The registry's WHOIS server for this object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port43: Option<String>,
}

/// An RDAP answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RdapAnswer {
    /// The query.
    pub query: WhoisQuery,
    /// The URL that answered (after redirects).
    pub url: String,
    /// Summary fields.
    pub summary: RdapSummary,
    /// The whole JSON answer.
    pub raw: Value,
}

/// Extracts the summary fields from an RDAP object.
pub fn summarize(v: &Value) -> RdapSummary {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    let event = |action: &str| {
        v.get("events")?.as_array()?.iter().find_map(|e| {
            (e.get("eventAction")?.as_str()? == action)
                .then(|| e.get("eventDate")?.as_str().map(String::from))?
        })
    };
    let mut entities = Vec::new();
    collect_entities(v, &mut entities, 0);
    let by_role = |role: &str| {
        entities.iter().find_map(|(roles, e)| {
            roles
                .iter()
                .any(|r| r == role)
                .then(|| vcard(e, "org").or_else(|| vcard(e, "fn")))?
        })
    };
    let abuse_email = entities.iter().find_map(|(roles, e)| {
        roles
            .iter()
            .any(|r| r == "abuse")
            .then(|| vcard(e, "email"))?
    });
    let cidr = v
        .get("cidr0_cidrs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| {
                    let prefix = c.get("v4prefix").or_else(|| c.get("v6prefix"))?.as_str()?;
                    let len = c.get("length")?.as_u64()?;
                    Some(format!("{prefix}/{len}"))
                })
                .collect()
        })
        .unwrap_or_default();
    let strings = |k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let name_servers = v
        .get("nameservers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|n| n.get("ldhName")?.as_str())
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    RdapSummary {
        object_class: s("objectClassName"),
        handle: s("handle"),
        name: s("ldhName")
            .map(|n| n.to_ascii_lowercase())
            .or_else(|| s("name")),
        start_address: s("startAddress"),
        end_address: s("endAddress"),
        cidr,
        start_autnum: v
            .get("startAutnum")
            .and_then(Value::as_u64)
            .map(|n| n as u32),
        end_autnum: v.get("endAutnum").and_then(Value::as_u64).map(|n| n as u32),
        net_type: s("type"),
        country: s("country"),
        status: strings("status"),
        registered: event("registration"),
        expires: event("expiration"),
        last_changed: event("last changed"),
        registrar: by_role("registrar"),
        registrant: by_role("registrant"),
        abuse_email,
        name_servers,
        port43: s("port43"),
    }
}

fn collect_entities<'a>(v: &'a Value, out: &mut Vec<(Vec<String>, &'a Value)>, depth: u8) {
    if depth > 4 {
        return;
    }
    for e in v
        .get("entities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let roles = e
            .get("roles")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        out.push((roles, e));
        collect_entities(e, out, depth + 1);
    }
}

/// A text property of an entity's jCard (RFC 7095): `["fn", {}, "text", "Name"]`.
fn vcard(entity: &Value, prop: &str) -> Option<String> {
    let props = entity.get("vcardArray")?.as_array()?.get(1)?.as_array()?;
    props.iter().find_map(|p| {
        let p = p.as_array()?;
        if p.first()?.as_str()? != prop {
            return None;
        }
        match p.get(3)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Array(a) => a
                .iter()
                .find_map(|x| x.as_str().filter(|s| !s.is_empty()).map(String::from)),
            _ => None,
        }
    })
}

/// The RDAP client.
#[derive(Debug, Clone)]
pub struct RdapClient {
    http: reqwest::Client,
    bootstrap: Arc<Bootstrap>,
    timeout: Duration,
    reach: Reach,
}

impl RdapClient {
    /// A client using `bootstrap`, with a per-request timeout.
    pub fn new(bootstrap: Arc<Bootstrap>, timeout: Duration) -> Result<RdapClient> {
        Self::with_reach(bootstrap, timeout, Reach::anywhere())
    }

    /// A client that connects only where `reach` allows: every resolved address, every URL
    /// with an address for a host, and every redirect target are checked.
    pub fn with_reach(
        bootstrap: Arc<Bootstrap>,
        timeout: Duration,
        reach: Reach,
    ) -> Result<RdapClient> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!(
                "vantage/",
                env!("CARGO_PKG_VERSION"),
                " (RDAP client)"
            ));
        if reach.is_restricted() {
            let policy = reach.clone();
            builder =
                builder
                    .dns_resolver(reach.resolver())
                    .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                        if attempt.previous().len() >= MAX_REDIRECTS {
                            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                        }
                        match literal_host(attempt.url()) {
                            Some(ip) if !policy.permits(ip) => {
                                let e = policy.refusal(attempt.url().as_str(), ip);
                                attempt.error(e.to_string())
                            }
                            _ => attempt.follow(),
                        }
                    }));
        } else {
            builder = builder.redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS));
        }
        let http = builder
            .build()
            .map_err(|e| Error::Upstream(format!("cannot set up the HTTP client: {e}")))?;
        Ok(RdapClient {
            http,
            bootstrap,
            timeout,
            reach,
        })
    }

    /// The bootstrap registries in use.
    pub fn bootstrap(&self) -> &Bootstrap {
        &self.bootstrap
    }

    /// Looks up a domain, address, prefix or AS number. `server` (a base URL) skips the
    /// bootstrap files.
    pub async fn query(&self, input: &str, server: Option<&str>) -> Result<RdapAnswer> {
        let q = detect(input)?;
        if let Some(e) = private_address(&q) {
            return Err(e);
        }
        let base = match server {
            Some(s) => {
                let s = s.trim();
                if !(s.starts_with("https://") || s.starts_with("http://")) {
                    return Err(Error::Invalid(format!(
                        "'{s}' is not an RDAP base URL (e.g. https://rdap.db.ripe.net/)"
                    )));
                }
                s.to_string()
            }
            None => self
                .bootstrap
                .base_urls(&q)
                .and_then(|u| u.into_iter().next())
                .ok_or_else(|| no_service(&q))?,
        };
        let url = format!("{}/{}", base.trim_end_matches('/'), path_for(&q));
        if let Some(ip) = reqwest::Url::parse(&url)
            .ok()
            .as_ref()
            .and_then(literal_host)
            && !self.reach.permits(ip)
        {
            return Err(self.reach.refusal(&base, ip));
        }
        let (final_url, raw) = self.get_json(&url).await?;
        if let Some(class) = raw.get("objectClassName").and_then(Value::as_str)
            && raw.get("errorCode").is_none()
        {
            tracing::debug!(%class, %final_url, "RDAP object");
        } else if raw.get("errorCode").is_some() {
            return Err(rdap_error(&final_url, None, &raw));
        }
        Ok(RdapAnswer {
            summary: summarize(&raw),
            query: q,
            url: final_url,
            raw,
        })
    }

    async fn get_json(&self, url: &str) -> Result<(String, Value)> {
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(String::from))
            .unwrap_or_else(|| url.to_string());
        let resp = self
            .http
            .get(url)
            .header(
                reqwest::header::ACCEPT,
                "application/rdap+json, application/json",
            )
            .send()
            .await
            .map_err(|e| self.transport_error(&host, e))?;
        let status = resp.status();
        let final_url = resp.url().to_string();
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(Error::Upstream(format!(
                "{host} announced an answer larger than {} MiB; refusing it",
                MAX_ANSWER_BYTES >> 20
            )));
        }
        let mut resp = resp;
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.transport_error(&host, e))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER_BYTES {
                return Err(Error::Upstream(format!(
                    "{host} sent more than {} MiB; refusing it",
                    MAX_ANSWER_BYTES >> 20
                )));
            }
        }
        let json: std::result::Result<Value, _> = serde_json::from_slice(&body);
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(Error::NotFound(format!(
                "{host} has no RDAP record for this query (HTTP 404 from {final_url})"
            )));
        }
        if !status.is_success() {
            return Err(rdap_error(
                &final_url,
                Some(status.as_u16()),
                &json.unwrap_or(Value::Null),
            ));
        }
        match json {
            Ok(v @ Value::Object(_)) => Ok((final_url, v)),
            Ok(_) => Err(Error::Upstream(format!(
                "{final_url} answered JSON that is not an RDAP object"
            ))),
            Err(e) => Err(Error::Upstream(format!(
                "{final_url} did not answer with RDAP JSON ({e}); first bytes: {:?}",
                String::from_utf8_lossy(&body[..body.len().min(60)])
            ))),
        }
    }

    fn transport_error(&self, host: &str, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Timeout(format!(
                "{host} did not answer within {} s",
                self.timeout.as_secs_f64()
            ))
        } else if e.is_connect() {
            Error::Upstream(format!("cannot connect to {host}: {}", root_cause(&e)))
        } else if e.is_redirect() {
            Error::Upstream(format!(
                "{host} redirected elsewhere, and the redirect was not followed: {}",
                root_cause(&e)
            ))
        } else {
            Error::Upstream(format!("request to {host} failed: {}", root_cause(&e)))
        }
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// An RDAP error object (RFC 9083 §6) as a sentence.
fn rdap_error(url: &str, status: Option<u16>, v: &Value) -> Error {
    let code = status.or_else(|| v.get("errorCode").and_then(Value::as_u64).map(|c| c as u16));
    let title = v.get("title").and_then(Value::as_str).unwrap_or("");
    let desc = v
        .get("description")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let detail = [title, desc.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    let code = code
        .map(|c| format!("HTTP {c}"))
        .unwrap_or_else(|| "an error".into());
    let msg = if detail.is_empty() {
        format!("{url} answered {code}")
    } else {
        format!("{url} answered {code} ({detail})")
    };
    match code.as_str() {
        "HTTP 400" | "HTTP 422" => Error::Invalid(msg),
        _ => Error::Upstream(msg),
    }
}

/// The address of a URL whose host is an address (name resolution does not see those).
fn literal_host(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Addresses no registry holds (private, loopback, documentation …) are answered locally.
fn private_address(q: &WhoisQuery) -> Option<Error> {
    let ip = q.text.split('/').next()?.parse::<IpAddr>().ok()?;
    let c = crate::special::classify(ip);
    (c.is_special() && c.globally_reachable == Some(false)).then(|| {
        Error::NotFound(format!(
            "{} is {}: no registry holds it, so RDAP has nothing to say",
            q.text, c.label
        ))
    })
}

fn no_service(q: &WhoisQuery) -> Error {
    Error::NotFound(format!(
        "no RDAP service is known for {} in the bootstrap files; refresh them with `vantage data update rdap` or give --server",
        q.text
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test]
    fn builtin_bootstrap_parses() {
        let b = Bootstrap::builtin().unwrap();
        assert_eq!(b.sources().len(), 4);
        assert!(
            b.sources()
                .iter()
                .all(|s| s.origin == "built-in" && s.entries > 0)
        );
    }

    #[test_case("192.0.2.1", Some("https://rdap.arin.net/registry/") ; "192 slash 8 is arin in the bootstrap")]
    #[test_case("193.0.6.139", Some("https://rdap.db.ripe.net/") ; "ripe v4")]
    #[test_case("8.8.8.8", Some("https://rdap.arin.net/registry/") ; "arin v4 prefers https")]
    #[test_case("2001:4860::8888", Some("https://rdap.arin.net/registry/") ; "arin v6")]
    #[test_case("2a00:1450::1", Some("https://rdap.db.ripe.net/") ; "ripe v6")]
    #[test_case("AS3333", Some("https://rdap.db.ripe.net/") ; "ripe asn")]
    #[test_case("AS15169", Some("https://rdap.arin.net/registry/") ; "arin asn")]
    #[test_case("www.example.com", Some("https://rdap.verisign.com/com/v1/") ; "longest label suffix")]
    #[test_case("example.invalid", None ; "unknown tld")]
    fn bootstrap_picks_the_server(q: &str, want: Option<&str>) {
        let b = Bootstrap::builtin().unwrap();
        let got = b.base_urls(&detect(q).unwrap()).map(|u| u[0].clone());
        assert_eq!(got.as_deref(), want);
    }

    #[test]
    fn bad_bootstrap_files_are_refused() {
        assert!(validate_bootstrap(BootstrapKind::Ipv4, "{}").is_err());
        assert!(
            validate_bootstrap(
                BootstrapKind::Ipv4,
                r#"{"version":"1.0","services":[[["300.0.0.0/8"],["https://x/"]]]}"#
            )
            .is_err()
        );
        assert!(
            validate_bootstrap(
                BootstrapKind::Asn,
                r#"{"version":"1.0","services":[[["1-x"],["https://x/"]]]}"#
            )
            .is_err()
        );
        assert_eq!(
            validate_bootstrap(
                BootstrapKind::Dns,
                r#"{"version":"1.0","services":[[["com","net"],["https://x/"]]]}"#
            )
            .unwrap(),
            2
        );
    }

    #[test]
    fn special_addresses_are_explained() {
        let e = private_address(&detect("10.1.2.3").unwrap()).unwrap();
        assert!(e.to_string().contains("RFC 1918"), "{e}");
        assert!(matches!(e, Error::NotFound(_)));
        assert!(
            private_address(&detect("192.0.0.9").unwrap()).is_none(),
            "globally reachable"
        );
        assert!(private_address(&detect("8.8.8.8").unwrap()).is_none());
    }

    #[test]
    fn summary_of_a_domain_object() {
        let v: Value = serde_json::from_str(r#"{
          "objectClassName": "domain", "handle": "2336799_DOMAIN_COM-VRSN", "ldhName": "EXAMPLE.COM",
          "status": ["client delete prohibited"],
          "events": [{"eventAction": "registration", "eventDate": "1995-08-14T04:00:00Z"},
                     {"eventAction": "expiration", "eventDate": "2026-08-13T04:00:00Z"}],
          "entities": [{"objectClassName": "entity", "roles": ["registrar"],
              "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "RESERVED-Internet Assigned Numbers Authority"]]],
              "entities": [{"roles": ["abuse"], "vcardArray": ["vcard", [["email", {}, "text", "abuse@example.net"]]]}]}],
          "nameservers": [{"objectClassName": "nameserver", "ldhName": "A.IANA-SERVERS.NET"}]
        }"#).unwrap();
        let s = summarize(&v);
        assert_eq!(s.name.as_deref(), Some("example.com"));
        assert_eq!(
            s.registrar.as_deref(),
            Some("RESERVED-Internet Assigned Numbers Authority")
        );
        assert_eq!(s.abuse_email.as_deref(), Some("abuse@example.net"));
        assert_eq!(s.registered.as_deref(), Some("1995-08-14T04:00:00Z"));
        assert_eq!(s.name_servers, ["a.iana-servers.net"]);
    }
}
