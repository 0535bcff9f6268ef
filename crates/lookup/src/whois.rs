//! WHOIS (RFC 3912): one query line over TCP port 43, the answer is text until the server
//! closes. The client detects what is asked (domain, address, prefix, AS number), starts at
//! IANA and follows referrals — `refer:` and `whois:` (IANA), `ReferralServer:` (ARIN),
//! `Registrar WHOIS Server:` (gTLD registries) — to the registry and on to the registrar, with a
//! hop limit, loop detection and a timeout per hop. It returns every hop's raw text and the key
//! fields parsed from the registry styles in use (RPSL inetnum/aut-num objects of RIPE, APNIC,
//! AFRINIC and LACNIC; ARIN's NetRange/OrgName; ICANN-style domain records).
//!
//! Decisions: written on tokio by hand — the protocol is a line and a read to EOF, and the
//! crates that exist mostly wrap static server lists. Answers are capped at 1 MiB, decoded as
//! UTF-8 or else Latin-1 (older registries), and refused when they are binary. A failure at a
//! later hop keeps the earlier hops' answers and says which server failed. Queries containing
//! spaces or starting with `-` are refused, so nobody can smuggle server flags through the API.
//! Where the client may connect is a [`Reach`]: any address for the CLI, public addresses only
//! when the server answers for API users, since referral targets come from remote answers.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::asn::parse_asn;
use crate::error::{Error, Result};
use crate::reach::Reach;

/// The first server asked unless told otherwise.
pub const DEFAULT_SERVER: &str = "whois.iana.org";
/// The WHOIS port.
pub const PORT: u16 = 43;
/// Time allowed for each hop (connect, send, read to the end).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Servers asked at most: IANA, registry, registrar, plus one more referral.
pub const DEFAULT_MAX_HOPS: usize = 4;
/// Largest answer accepted from one server.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// What is being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// A domain name (or a TLD).
    Domain,
    /// One IP address.
    Ip,
    /// A CIDR prefix.
    Network,
    /// An AS number.
    Asn,
}

/// A validated query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoisQuery {
    /// What is asked.
    pub kind: QueryKind,
    /// The normalised text (`AS64500`, lower-case ASCII domain, canonical address).
    pub text: String,
}

/// Validates and classifies a query.
pub fn detect(input: &str) -> Result<WhoisQuery> {
    let s = input.trim();
    if s.is_empty() {
        return Err(Error::Invalid(
            "give a domain name, IP address, prefix or AS number".into(),
        ));
    }
    if s.chars().any(char::is_whitespace) || s.starts_with('-') {
        return Err(Error::Invalid(format!(
            "'{s}': give one domain name, address, prefix or AS number, without spaces or flags"
        )));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(WhoisQuery {
            kind: QueryKind::Ip,
            text: ip.to_string(),
        });
    }
    if s.contains('/') {
        let net = crate::ipcalc::parse_net(s)?;
        return Ok(WhoisQuery {
            kind: QueryKind::Network,
            text: net.to_string(),
        });
    }
    let looks_asn = s.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("as"))
        || s.bytes().all(|b| b.is_ascii_digit());
    if looks_asn && let Ok(n) = parse_asn(s) {
        return Ok(WhoisQuery {
            kind: QueryKind::Asn,
            text: format!("AS{n}"),
        });
    }
    Ok(WhoisQuery {
        kind: QueryKind::Domain,
        text: domain_to_ascii(s)?,
    })
}

/// Normalises a domain name to lower-case ASCII (IDNA), checking label syntax.
pub fn domain_to_ascii(input: &str) -> Result<String> {
    let s = input.trim().trim_end_matches('.');
    let bad = |why: &str| {
        Error::Invalid(format!(
            "'{input}' is not a domain name, IP address, prefix or AS number ({why})"
        ))
    };
    let ascii = idna::domain_to_ascii(s).map_err(|_| bad("invalid international name"))?;
    if ascii.is_empty() || ascii.len() > 253 {
        return Err(bad("a name has 1 to 253 characters"));
    }
    for label in ascii.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(bad(&format!("bad label '{label}'")));
        }
    }
    Ok(ascii)
}

/// A WHOIS server: host name or address and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Server {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.port, self.host.contains(':')) {
            (PORT, _) => write!(f, "{}", self.host),
            (p, true) => write!(f, "[{}]:{p}", self.host),
            (p, false) => write!(f, "{}:{p}", self.host),
        }
    }
}

impl Server {
    /// Parses `HOST`, `HOST:PORT`, `[V6]:PORT`, a bare IPv6 address or `whois://HOST[:PORT]`.
    pub fn parse(input: &str) -> Result<Server> {
        let s = input.trim().trim_end_matches('/');
        let s = s.strip_prefix("whois://").unwrap_or(s);
        let bad = || {
            Error::Invalid(format!(
                "'{input}' is not a WHOIS server: write HOST or HOST:PORT (e.g. whois.ripe.net, [2001:db8::43]:4343)"
            ))
        };
        if s.is_empty() || s.contains("://") || s.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Server {
                host: ip.to_string(),
                port: PORT,
            });
        }
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Ok(Server {
                host: sa.ip().to_string(),
                port: sa.port(),
            });
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
            None => (s, PORT),
        };
        if host.is_empty() || port == 0 || host.contains(':') {
            return Err(bad());
        }
        Ok(Server {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// One server's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhoisHop {
    /// The server asked.
    pub server: String,
    /// The line sent.
    pub query: String,
    /// The raw answer.
    pub text: String,
    /// Where this server referred to, if anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<String>,
    /// Milliseconds from connecting to the end of the answer.
    pub elapsed_ms: f64,
}

/// The key fields, parsed from the answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoisSummary {
    /// The answer's style: "rpsl" (RIPE, APNIC, AFRINIC, LACNIC), "arin", "iana" or "domain".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    /// Address range (inetnum / inet6num / NetRange).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// CIDR prefixes (ARIN CIDR, route / route6).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub cidr: Vec<String>,
    /// Network name (netname / NetName).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netname: Option<String>,
    /// AS number (aut-num / ASNumber / route origin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<String>,
    /// AS name (as-name / ASName).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_name: Option<String>,
    /// Holder organisation (org-name / OrgName / owner / Registrant Organization / descr).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// Country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Abuse contact e-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abuse_email: Option<String>,
    /// Domain name as the registry writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Registrar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registrar: Option<String>,
    /// Creation / registration date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Last update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// Expiry date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Name servers, lower case.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub name_servers: Vec<String>,
    /// Status codes.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub status: Vec<String>,
}

/// The whole answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhoisAnswer {
    /// The query as sent.
    pub query: WhoisQuery,
    /// Every server asked, in order.
    pub hops: Vec<WhoisHop>,
    /// Whether the last server had a record (false for "No match", "no entries found" …).
    pub found: bool,
    /// Key fields.
    pub summary: WhoisSummary,
    /// Why the chain stopped early (hop limit, loop, unsupported referral), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The error of a later hop whose server failed; the earlier hops are kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The WHOIS client.
#[derive(Debug, Clone)]
pub struct WhoisClient {
    timeout: Duration,
    max_hops: usize,
    follow: bool,
    resolve: HashMap<String, SocketAddr>,
    reach: Reach,
}

impl Default for WhoisClient {
    fn default() -> Self {
        WhoisClient {
            timeout: DEFAULT_TIMEOUT,
            max_hops: DEFAULT_MAX_HOPS,
            follow: true,
            resolve: HashMap::new(),
            reach: Reach::anywhere(),
        }
    }
}

impl WhoisClient {
    /// A client with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Time allowed per hop.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Servers asked at most (1 = no referrals).
    pub fn max_hops(mut self, n: usize) -> Self {
        self.max_hops = n.max(1);
        self
    }

    /// Whether to follow referrals.
    pub fn follow(mut self, yes: bool) -> Self {
        self.follow = yes;
        self
    }

    /// Sends queries for server `host` to `addr` instead of resolving it (for sites that reach
    /// WHOIS through a relay, and for tests).
    pub fn resolve(mut self, host: &str, addr: SocketAddr) -> Self {
        self.resolve.insert(host.to_ascii_lowercase(), addr);
        self
    }

    /// Limits the addresses servers may be reached at (referrals come from remote answers).
    /// Servers given to [`WhoisClient::resolve`] are configured by the operator and exempt.
    pub fn reach(mut self, reach: Reach) -> Self {
        self.reach = reach;
        self
    }

    /// Runs a query, starting at `first` (default whois.iana.org).
    pub async fn query(&self, input: &str, first: Option<&Server>) -> Result<WhoisAnswer> {
        let query = detect(input)?;
        let mut server = first.cloned().unwrap_or(Server {
            host: DEFAULT_SERVER.into(),
            port: PORT,
        });
        let mut hops: Vec<WhoisHop> = Vec::new();
        let mut referral_keys: Vec<Option<&'static str>> = Vec::new();
        let mut visited: HashSet<Server> = HashSet::new();
        let mut note = None;
        let mut error = None;
        loop {
            visited.insert(server.clone());
            let line = query_line(&server, &query);
            let started = Instant::now();
            let text = match self.ask(&server, &line).await {
                Ok(t) => t,
                Err(e) if hops.is_empty() => return Err(e),
                Err(e) => {
                    error = Some(format!(
                        "{} referred to {server}, which failed: {e}",
                        hops.last().map(|h| h.server.as_str()).unwrap_or("")
                    ));
                    break;
                }
            };
            let referral = find_referral(&text);
            referral_keys.push(referral.as_ref().map(|r| r.0));
            hops.push(WhoisHop {
                server: server.to_string(),
                query: line,
                text,
                referral: referral.as_ref().map(|r| r.1.clone()),
                elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
            });
            let Some((_, target)) = referral else { break };
            if !self.follow {
                break;
            }
            let next = match referral_target(&target) {
                Ok(s) => s,
                Err(why) => {
                    note = Some(format!(
                        "{server} refers to {target}, which is not followed: {why}"
                    ));
                    break;
                }
            };
            if next == server {
                break; // a registrar naming itself
            }
            if visited.contains(&next) {
                note = Some(format!(
                    "referral loop: {server} refers back to {next}; stopped there"
                ));
                break;
            }
            if hops.len() >= self.max_hops {
                note = Some(format!(
                    "stopped after {} servers; {server} refers on to {next}",
                    hops.len()
                ));
                break;
            }
            server = next;
        }
        let last = hops.last().map(|h| h.text.as_str()).unwrap_or("");
        let found = error.is_none() && has_record(last);
        let summary = summarize(&query, &hops, &referral_keys);
        Ok(WhoisAnswer {
            query,
            hops,
            found,
            summary,
            note,
            error,
        })
    }

    /// Asks one server one line and reads the answer.
    async fn ask(&self, server: &Server, line: &str) -> Result<String> {
        let fut = async {
            let mut stream = self.connect(server).await?;
            let io =
                |e: std::io::Error| Error::Upstream(format!("{server}: connection failed: {e}"));
            stream.write_all(line.as_bytes()).await.map_err(io)?;
            stream.write_all(b"\r\n").await.map_err(io)?;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 16 * 1024];
            loop {
                let n = stream.read(&mut chunk).await.map_err(io)?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_ANSWER_BYTES {
                    return Err(Error::Upstream(format!(
                        "{server} sent more than {} KiB; that is not a WHOIS answer",
                        MAX_ANSWER_BYTES >> 10
                    )));
                }
            }
            Ok(buf)
        };
        let bytes = tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| {
                Error::Timeout(format!(
                    "{server} did not answer within {} s",
                    self.timeout.as_secs_f64()
                ))
            })??;
        decode(server, &bytes)
    }

    async fn connect(&self, server: &Server) -> Result<TcpStream> {
        let addrs: Vec<SocketAddr> = match self.resolve.get(&server.host) {
            Some(a) => vec![*a],
            None => self.reach.filter(
                &server.to_string(),
                match server.host.parse::<IpAddr>() {
                    Ok(ip) => vec![SocketAddr::new(ip, server.port)],
                    Err(_) => tokio::net::lookup_host((server.host.as_str(), server.port))
                        .await
                        .map_err(|e| {
                            Error::Upstream(format!(
                                "cannot resolve the WHOIS server name {}: {e}",
                                server.host
                            ))
                        })?
                        .collect(),
                },
            )?,
        };
        let mut last = None;
        for a in addrs {
            match TcpStream::connect(a).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(Error::Upstream(match last {
            Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                format!(
                    "{server} refused the connection (nothing listens on port {})",
                    server.port
                )
            }
            Some(e) => format!("cannot connect to {server}: {e}"),
            None => format!("the WHOIS server name {} has no address", server.host),
        }))
    }
}

/// The line to send: ARIN wants a record-type flag, everyone else takes the query as is.
fn query_line(server: &Server, q: &WhoisQuery) -> String {
    if server.host == "whois.arin.net" {
        return match q.kind {
            QueryKind::Ip | QueryKind::Network => format!("n + {}", q.text),
            QueryKind::Asn => format!("a + {}", q.text.trim_start_matches("AS")),
            QueryKind::Domain => q.text.clone(),
        };
    }
    q.text.clone()
}

/// Decodes an answer: UTF-8, else Latin-1; binary data and empty answers are errors.
fn decode(server: &Server, bytes: &[u8]) -> Result<String> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::Upstream(format!(
            "{server} closed the connection without answering"
        )));
    }
    let control = bytes
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t'))
        .count();
    if bytes.contains(&0) || control * 20 > bytes.len() {
        return Err(Error::Upstream(format!(
            "{server} sent {} bytes that are not WHOIS text (binary data)",
            bytes.len()
        )));
    }
    Ok(match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    })
}

/// `(key, value)` of the first referral line.
fn find_referral(text: &str) -> Option<(&'static str, String)> {
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let key = match k.trim().to_ascii_lowercase().as_str() {
            "refer" => "refer",
            "whois" => "whois",
            "referralserver" => "referralserver",
            "registrar whois server" => "registrar whois server",
            _ => continue,
        };
        let v = v.trim();
        if !v.is_empty() {
            return Some((key, v.to_string()));
        }
    }
    None
}

/// The server a referral names, or why it is not followed.
fn referral_target(target: &str) -> std::result::Result<Server, String> {
    let t = target.trim();
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("rwhois://") {
        return Err("RWhois is a different protocol".into());
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Err("it is a web address, not a WHOIS server".into());
    }
    Server::parse(t).map_err(|e| e.to_string())
}

/// Whether an answer holds a record rather than a "not found" message.
fn has_record(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    const NONE: [&str; 9] = [
        "no match for",
        "no entries found",
        "no data found",
        "no object found",
        "not found.",
        "domain not found",
        "no matching record",
        "returned 0 objects",
        "object does not exist",
    ];
    if NONE.iter().any(|p| lower.contains(p)) {
        return false;
    }
    fields(text).next().is_some()
}

/// `key: value` pairs, keys lower-cased, comments skipped.
fn fields(text: &str) -> impl Iterator<Item = (String, &str)> {
    text.lines().filter_map(|line| {
        let t = line.trim_start();
        if t.starts_with('%') || t.starts_with('#') || t.starts_with(">>>") {
            return None;
        }
        let (k, v) = t.split_once(':')?;
        let v = v.trim();
        let k = k.trim();
        let key_ok = !k.is_empty()
            && k.len() <= 40
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '/'));
        (key_ok && !v.is_empty()).then(|| (k.to_ascii_lowercase(), v))
    })
}

fn style_of(text: &str) -> Option<&'static str> {
    let keys: HashSet<String> = fields(text).map(|(k, _)| k).collect();
    let has = |k: &str| keys.contains(k);
    if has("netrange") || has("asnumber") || has("orgname") {
        Some("arin")
    } else if has("inetnum") || has("inet6num") || has("aut-num") {
        Some("rpsl")
    } else if has("domain name") || has("registrar") || has("registry domain id") {
        Some("domain")
    } else if has("refer") || has("whois") && has("organisation") {
        Some("iana")
    } else {
        None
    }
}

/// Parses the key fields of one answer into `s`, only filling fields still empty.
fn parse_into(s: &mut WhoisSummary, text: &str, kind: QueryKind) {
    let style = style_of(text);
    let pairs: Vec<(String, &str)> = fields(text).collect();
    // ARIN lists the covering networks from the least to the most specific (8.0.0.0/8 before
    // 8.8.8.0/24), each followed by its organisation: the last occurrence is the holder. RPSL
    // registries put the most specific object first.
    let arin = style == Some("arin");
    let first = |keys: &[&str]| -> Option<String> {
        keys.iter().find_map(|k| {
            let hit = |(pk, _): &&(String, &str)| pk == k;
            let found = if arin {
                pairs.iter().rev().find(hit)
            } else {
                pairs.iter().find(hit)
            };
            found.map(|(_, v)| v.to_string())
        })
    };
    let all = |keys: &[&str]| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (k, v) in &pairs {
            if keys.contains(&k.as_str()) {
                let v = v
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('.');
                if !v.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(v)) {
                    out.push(v.to_string());
                }
            }
        }
        out
    };
    fn fill(slot: &mut Option<String>, v: Option<String>) {
        if slot.is_none() {
            *slot = v;
        }
    }
    fill(&mut s.style, style.map(String::from));
    fill(&mut s.country, first(&["country"]));
    fill(
        &mut s.abuse_email,
        first(&[
            "abuse-mailbox",
            "orgabuseemail",
            "registrar abuse contact email",
        ]),
    );
    if kind != QueryKind::Domain {
        // The holder and dates of a network or AS record, in every registry's words.
        fill(
            &mut s.organisation,
            first(&["org-name", "orgname", "owner", "organization", "descr"]),
        );
        fill(&mut s.created, first(&["created", "regdate"]));
        fill(
            &mut s.updated,
            first(&["last-modified", "updated", "changed"]),
        );
    }
    match kind {
        QueryKind::Ip | QueryKind::Network => {
            fill(&mut s.range, first(&["inetnum", "inet6num", "netrange"]));
            if s.cidr.is_empty() {
                s.cidr = first(&["cidr", "route", "route6"])
                    .map(|v| {
                        v.split(',')
                            .map(|c| c.trim().to_string())
                            .filter(|c| !c.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
            }
            fill(&mut s.netname, first(&["netname"]));
            fill(
                &mut s.asn,
                first(&["origin", "originas"]).filter(|v| !v.is_empty()),
            );
        }
        QueryKind::Asn => {
            fill(&mut s.asn, first(&["aut-num", "asnumber"]));
            fill(&mut s.as_name, first(&["as-name", "asname"]));
        }
        QueryKind::Domain => {
            fill(
                &mut s.domain,
                first(&["domain name", "domain"]).map(|d| d.to_ascii_lowercase()),
            );
            fill(
                &mut s.registrar,
                first(&["registrar", "sponsoring registrar", "registrar name"]),
            );
            fill(
                &mut s.organisation,
                first(&["registrant organization", "registrant organisation", "org"]),
            );
            fill(
                &mut s.created,
                first(&[
                    "creation date",
                    "created",
                    "registered on",
                    "registration time",
                    "registered",
                ]),
            );
            fill(
                &mut s.updated,
                first(&[
                    "updated date",
                    "last-update",
                    "last updated",
                    "last modified",
                    "changed",
                    "modified",
                ]),
            );
            fill(
                &mut s.expires,
                first(&[
                    "registry expiry date",
                    "registrar registration expiration date",
                    "expiry date",
                    "expiration date",
                    "expires",
                    "paid-till",
                    "expire",
                ]),
            );
            if s.name_servers.is_empty() {
                s.name_servers = all(&["name server", "nserver", "nameserver"])
                    .into_iter()
                    .map(|n| n.to_ascii_lowercase())
                    .collect();
            }
            if s.status.is_empty() {
                s.status = all(&["domain status", "status"]);
            }
        }
    }
}

/// Key fields from the last answer; for domains, gaps are filled from the registry's answer
/// (never from IANA's, which describes the TLD, nor for addresses, where the earlier answers
/// describe the registry's whole block).
fn summarize(q: &WhoisQuery, hops: &[WhoisHop], keys: &[Option<&'static str>]) -> WhoisSummary {
    let mut s = WhoisSummary::default();
    for (i, h) in hops.iter().enumerate().rev() {
        let last = i + 1 == hops.len();
        let iana_style = matches!(keys.get(i), Some(Some("refer" | "whois")));
        if last || (q.kind == QueryKind::Domain && !iana_style) {
            parse_into(&mut s, &h.text, q.kind);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("example.com", QueryKind::Domain, "example.com" ; "domain")]
    #[test_case("Example.COM.", QueryKind::Domain, "example.com" ; "domain case and root dot")]
    #[test_case("bücher.example", QueryKind::Domain, "xn--bcher-kva.example" ; "idn")]
    #[test_case("com", QueryKind::Domain, "com" ; "tld")]
    #[test_case("192.0.2.1", QueryKind::Ip, "192.0.2.1" ; "ipv4")]
    #[test_case("2001:DB8::1", QueryKind::Ip, "2001:db8::1" ; "ipv6")]
    #[test_case("192.0.2.7/24", QueryKind::Network, "192.0.2.0/24" ; "prefix")]
    #[test_case("as64500", QueryKind::Asn, "AS64500" ; "asn")]
    #[test_case("64500", QueryKind::Asn, "AS64500" ; "bare asn")]
    fn detects(input: &str, kind: QueryKind, text: &str) {
        let q = detect(input).unwrap();
        assert_eq!((q.kind, q.text.as_str()), (kind, text));
    }

    #[test_case("-B 192.0.2.1" ; "flags")]
    #[test_case("example.com extra" ; "two words")]
    #[test_case("exa_mple..com" ; "empty label")]
    #[test_case("-example.com" ; "leading dash")]
    #[test_case("" ; "empty")]
    #[test_case("192.0.2.0/33" ; "bad prefix")]
    fn refuses(input: &str) {
        assert!(matches!(detect(input), Err(Error::Invalid(_))));
    }

    #[test_case("whois.ripe.net", "whois.ripe.net", 43 ; "host")]
    #[test_case("WHOIS.RIPE.NET:4343", "whois.ripe.net", 4343 ; "host and port")]
    #[test_case("whois://whois.ripe.net", "whois.ripe.net", 43 ; "url form")]
    #[test_case("127.0.0.1:4343", "127.0.0.1", 4343 ; "v4 and port")]
    #[test_case("[::1]:4343", "::1", 4343 ; "v6 and port")]
    #[test_case("2001:db8::43", "2001:db8::43", 43 ; "bare v6")]
    fn servers(input: &str, host: &str, port: u16) {
        let s = Server::parse(input).unwrap();
        assert_eq!((s.host.as_str(), s.port), (host, port));
    }

    #[test]
    fn referrals_of_each_style() {
        assert_eq!(
            find_referral("% IANA\nrefer:        whois.ripe.net\n")
                .unwrap()
                .1,
            "whois.ripe.net"
        );
        assert_eq!(
            find_referral("ReferralServer:  whois://whois.ripe.net\n")
                .unwrap()
                .1,
            "whois://whois.ripe.net"
        );
        assert_eq!(
            find_referral("   Registrar WHOIS Server: whois.markmonitor.com\n")
                .unwrap()
                .1,
            "whois.markmonitor.com"
        );
        assert_eq!(
            find_referral("Registrar WHOIS Server: \nDomain Name: X\n"),
            None
        );
        assert!(referral_target("rwhois://rwhois.example.net:4321").is_err());
        assert!(referral_target("https://whois.example.net/").is_err());
    }

    #[test]
    fn latin1_binary_and_empty_answers() {
        let s = Server::parse("w.example").unwrap();
        assert_eq!(decode(&s, b"owner: Caf\xe9\n").unwrap(), "owner: Café\n");
        let e = decode(&s, b"\x00\x01\x02\x03garbage").unwrap_err();
        assert!(e.to_string().contains("not WHOIS text"), "{e}");
        let e = decode(&s, b"\r\n").unwrap_err();
        assert!(e.to_string().contains("without answering"), "{e}");
    }
}
