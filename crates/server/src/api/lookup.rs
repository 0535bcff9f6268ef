//! `/api/v1/lookup/*` and `/api/v1/asn-overrides`: the lookup tools of `vantage-lookup` over
//! HTTP — IP calculator, MAC vendors, IP → AS / prefix / country / reverse DNS, AS numbers,
//! WHOIS and RDAP — and the local AS name overrides.
//!
//! Decisions:
//! - One `Lookup` over the server's data directory, the very directory `vantage data update`
//!   writes and the CLI reads. Before each request the server compares the data files' size,
//!   time and inode with what it loaded and re-reads what changed, so updated data sets and names
//!   set with `vantage asn --set-name` apply without a restart.
//! - Overrides live in the data directory's `lookup/asn-overrides.json`, not in the database, so
//!   the CLI and the API apply the same names to every answer that carries an AS name. Writes
//!   are serialised, start from the file's current content and replace it atomically.
//! - Requests never choose a server: WHOIS starts at `lookup.whois_server`, RDAP asks where the
//!   bootstrap files say, reverse DNS asks `lookup.rdns_servers` or the system resolver. WHOIS
//!   referrals and RDAP redirects come from remote answers, so they may only reach public
//!   addresses and `lookup.allowed_networks` (`vantage_lookup::reach`); configured WHOIS relays
//!   are trusted as configured.
//! - Answers are the lookup crate's own serde types (the CLI's `--json` prints the same fields).
//!   That crate has no OpenAPI derives, so the document describes their fields here by hand; the
//!   API tests compare these descriptions with real answers.

use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use vantage_lookup::asn::parse_asn;
use vantage_lookup::ipcalc;
use vantage_lookup::overrides::{AsnOverride, OverrideFile};
use vantage_lookup::rdap::BootstrapKind;
use vantage_lookup::rdns::{RdnsOptions, ReverseDns};
use vantage_lookup::reach::Reach;
use vantage_lookup::whois::{Server, WhoisClient};
use vantage_lookup::{DataDir, ErrorKind, Lookup, parse_ip};

use super::types::ErrorBody;
use super::{ApiError, ApiJson};
use crate::app::App;
use crate::config::ServerConfig;

/// Subnets one `split` answer lists at most.
pub const MAX_SPLIT_SUBNETS: u64 = 4096;
/// Items one `summarize` request may hold.
pub const MAX_SUMMARIZE_ITEMS: usize = 10_000;
/// Vendors a search lists unless `limit` says otherwise.
pub const DEFAULT_OUI_LIMIT: usize = 50;
/// Largest `limit` of a vendor search.
pub const MAX_OUI_LIMIT: usize = 1000;

/// What identifies one version of a file: modification time, size, inode.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &FsPath) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The server's lookups over its data directory.
#[derive(Debug)]
pub struct LookupService {
    lookup: Lookup,
    whois_server: Server,
    data_files: Vec<PathBuf>,
    data_stamps: Mutex<Vec<Stamp>>,
    override_file: OverrideFile,
    override_stamp: Mutex<Stamp>,
    writes: tokio::sync::Mutex<()>,
}

impl LookupService {
    /// Lookups over the server's data directory with the configured servers.
    pub(crate) fn open(cfg: &ServerConfig) -> Result<LookupService, crate::Error> {
        let dir = DataDir::new(&cfg.data_dir);
        let lc = &cfg.lookup;
        let mut data_files = vec![dir.oui_csv(), dir.asn_table(), dir.country_mmdb()];
        data_files.extend(
            BootstrapKind::ALL
                .iter()
                .map(|k| dir.rdap_dir().join(k.file_name())),
        );
        let infos: Vec<PathBuf> = data_files.iter().map(|p| DataDir::info_path(p)).collect();
        data_files.extend(infos);
        let override_file = OverrideFile::new(dir.asn_overrides());
        let override_stamp = stamp(override_file.path());
        let data_stamps = data_files.iter().map(|p| stamp(p)).collect();
        let mut lookup = Lookup::open(dir).map_err(|e| crate::Error::Lookup(e.to_string()))?;
        let reach = Reach::public_only(lc.allowed_networks.clone());
        let mut whois = WhoisClient::new()
            .timeout(Duration::from_secs_f64(lc.whois_timeout))
            .reach(reach.clone());
        for (host, addr) in &lc.whois_relays {
            whois = whois.resolve(host, *addr);
        }
        lookup.set_whois(whois);
        lookup.set_rdap_timeout(Duration::from_secs_f64(lc.rdap_timeout));
        lookup.set_rdap_reach(reach);
        if !lc.rdns_servers.is_empty() {
            let r = ReverseDns::with_servers(&lc.rdns_servers, RdnsOptions::default())
                .map_err(|e| crate::Error::Lookup(e.to_string()))?;
            lookup.set_rdns(r);
        }
        let whois_server = Server::parse(&lc.whois_server)
            .map_err(|e| crate::Error::Config(format!("lookup.whois_server: {e}")))?;
        Ok(LookupService {
            lookup,
            whois_server,
            data_files,
            data_stamps: Mutex::new(data_stamps),
            override_file,
            override_stamp: Mutex::new(override_stamp),
            writes: tokio::sync::Mutex::new(()),
        })
    }

    /// The lookups, after re-reading whatever changed in the data directory.
    fn current(&self) -> Result<&Lookup, ApiError> {
        let now: Vec<Stamp> = self.data_files.iter().map(|p| stamp(p)).collect();
        {
            let mut seen = lock(&self.data_stamps);
            if *seen != now {
                tracing::info!("lookup data changed on disk; reloading it");
                self.lookup.reload();
                *seen = now;
            }
        }
        self.sync_overrides(false)?;
        Ok(&self.lookup)
    }

    /// Re-reads the override file when it changed (or when `force`). The stamp is taken before
    /// reading, so a change during the read is seen by the next request.
    fn sync_overrides(&self, force: bool) -> Result<(), ApiError> {
        let mut seen = lock(&self.override_stamp);
        let now = stamp(self.override_file.path());
        if *seen == now && !force {
            return Ok(());
        }
        let table = self.override_file.load().map_err(lookup_error("invalid"))?;
        self.lookup
            .overrides()
            .replace_all(table.list())
            .map_err(lookup_error("invalid"))?;
        *seen = now;
        Ok(())
    }

    /// Runs one change of the override table: serialised, on top of the file's current content;
    /// if saving fails, the table is read back from the file so memory and disk agree.
    async fn change<T>(
        &self,
        f: impl FnOnce(&Lookup) -> Result<T, vantage_lookup::Error>,
    ) -> Result<T, ApiError> {
        let _one_at_a_time = self.writes.lock().await;
        self.sync_overrides(false)?;
        let r = f(&self.lookup);
        if r.is_err() {
            self.sync_overrides(true)?;
        }
        r.map_err(|e| match e.kind() {
            ErrorKind::BadInput => ApiError::unprocessable("invalid_field", e.to_string())
                .details(serde_json::json!({"field": "name"})),
            _ => lookup_error("invalid")(e),
        })
    }
}

/// Maps a lookup error to the API's: bad input → 400 with `code`, nothing known → 404, remote
/// failures → 502 / 504, broken local data → 500 (details only in the log).
fn lookup_error(code: &'static str) -> impl Fn(vantage_lookup::Error) -> ApiError {
    move |e| match e.kind() {
        ErrorKind::BadInput => ApiError::bad_request(code, e.to_string()),
        ErrorKind::NotFound => ApiError::not_found(e.to_string()),
        ErrorKind::Upstream => match e {
            vantage_lookup::Error::Timeout(m) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", m)
            }
            other => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_failed",
                other.to_string(),
            ),
        },
        ErrorKind::Local => {
            tracing::error!("lookup data: {e}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "lookup_data",
                "the server's lookup data cannot be read; its log says why",
            )
        }
    }
}

/// Refuses parameters on the routes that take none: in particular nobody can choose the WHOIS
/// or RDAP server through the request.
fn no_parameters(raw: Option<String>) -> Result<(), ApiError> {
    match raw.filter(|r| !r.is_empty()) {
        None => Ok(()),
        Some(r) => Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "this endpoint takes no parameters (got '{r}'); the servers asked are set in the server's configuration"
            ),
        )),
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

// ---------------------------------------------------------------------------------------------
// IP calculator

/// Parameters of `GET /lookup/ipcalc`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IpcalcQuery {
    /// The prefix or address to describe: `192.0.2.77/26`, `2001:db8::/48`,
    /// `10.1.2.3 255.255.255.0`; host bits are allowed.
    pub cidr: Option<String>,
    /// Split `cidr` into subnets of this length (at most 4096 subnets).
    pub split: Option<u8>,
    /// Compare `cidr` with this prefix: equality, containment both ways, overlap.
    pub compare: Option<String>,
    /// Summarise these prefixes, addresses or `FIRST-LAST` ranges (comma-separated) into the
    /// fewest prefixes; used without `cidr`.
    pub summarize: Option<String>,
}

/// One of the four calculator answers, depending on the parameters.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum IpcalcAnswer {
    /// `cidr` alone.
    Calc(Box<ipcalc::IpCalc>),
    /// `cidr` and `split`.
    Split(ipcalc::Split),
    /// `cidr` and `compare`.
    Comparison(ipcalc::Comparison),
    /// `summarize`.
    Summary(ipcalc::Summary),
}

fn ipcalc_answer(q: IpcalcQuery) -> Result<IpcalcAnswer, ApiError> {
    let bad = |m: &str| ApiError::bad_request("invalid_query", m);
    let cidr_err = lookup_error("invalid_cidr");
    if let Some(list) = q.summarize {
        if q.cidr.is_some() || q.split.is_some() || q.compare.is_some() {
            return Err(bad(
                "summarize works on its own list; leave out cidr, split and compare",
            ));
        }
        let items: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.len() > MAX_SUMMARIZE_ITEMS {
            return Err(bad(&format!(
                "summarize takes at most {MAX_SUMMARIZE_ITEMS} items; {} were given",
                items.len()
            )));
        }
        return ipcalc::summarize(&items)
            .map(IpcalcAnswer::Summary)
            .map_err(cidr_err);
    }
    let Some(cidr) = q.cidr else {
        return Err(bad(
            "give cidr=PREFIX (e.g. cidr=192.0.2.0/24), or summarize=PREFIX,PREFIX,…",
        ));
    };
    match (q.split, q.compare) {
        (Some(_), Some(_)) => Err(bad("split and compare cannot be asked together")),
        (Some(len), None) => ipcalc::split(&cidr, len, MAX_SPLIT_SUBNETS)
            .map(IpcalcAnswer::Split)
            .map_err(cidr_err),
        (None, Some(other)) => ipcalc::compare(&cidr, &other)
            .map(IpcalcAnswer::Comparison)
            .map_err(cidr_err),
        (None, None) => ipcalc::calc(&cidr)
            .map(|c| IpcalcAnswer::Calc(Box::new(c)))
            .map_err(cidr_err),
    }
}

/// IP calculator: describe a prefix, split it, compare it with another, or summarise a list.
#[utoipa::path(
    get,
    path = "/api/v1/lookup/ipcalc",
    tag = "lookup",
    params(IpcalcQuery),
    responses(
        (status = 200, description = "The description, subnets, comparison or summary asked for", body = IpcalcAnswer),
        (status = 400, description = "Not a prefix, or parameters that do not go together", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn ipcalc(
    q: Result<Query<IpcalcQuery>, QueryRejection>,
) -> Result<axum::Json<IpcalcAnswer>, ApiError> {
    ipcalc_answer(query(q)?).map(axum::Json)
}

// ---------------------------------------------------------------------------------------------
// MAC vendors

/// The vendor of a MAC address or prefix (any notation: colons, dashes, dots, bare, partial).
#[utoipa::path(
    get,
    path = "/api/v1/lookup/oui/{mac}",
    tag = "lookup",
    params(("mac" = String, Path, description = "MAC address or prefix, e.g. 00:1b:63:84:45:e6, 001B.6384.45E6, 00-1B-63")),
    responses(
        (status = 200, description = "The longest matching assignment (entry is null when none matches)", body = OuiMatch),
        (status = 400, description = "Not a MAC address", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn oui(
    State(app): State<Arc<App>>,
    Path(mac): Path<String>,
) -> Result<Response, ApiError> {
    let m = app
        .lookup
        .current()?
        .oui(&mac)
        .map_err(lookup_error("invalid_mac"))?;
    Ok(axum::Json(m).into_response())
}

/// Parameters of `GET /lookup/oui`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OuiQuery {
    /// Part of a vendor name (case-insensitive).
    pub search: Option<String>,
    /// Entries listed at most (1 to 1000, default 50); `total` counts them all.
    pub limit: Option<usize>,
}

/// Vendors whose registered name contains a text.
#[utoipa::path(
    get,
    path = "/api/v1/lookup/oui",
    tag = "lookup",
    params(OuiQuery),
    responses(
        (status = 200, description = "Matching assignments", body = OuiSearch),
        (status = 400, description = "No search text, or a bad limit", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn oui_search(
    State(app): State<Arc<App>>,
    q: Result<Query<OuiQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(DEFAULT_OUI_LIMIT);
    if !(1..=MAX_OUI_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be from 1 to {MAX_OUI_LIMIT}"),
        ));
    }
    let Some(text) = q.search else {
        return Err(ApiError::bad_request(
            "invalid_query",
            "give search=TEXT (part of a vendor name), or ask /lookup/oui/{mac}",
        ));
    };
    let s = app
        .lookup
        .current()?
        .oui_search(&text, limit)
        .map_err(lookup_error("invalid_query"))?;
    Ok(axum::Json(s).into_response())
}

// ---------------------------------------------------------------------------------------------
// Addresses and AS numbers

/// Parameters of `GET /lookup/ip/{ip}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IpQuery {
    /// Also look up the reverse DNS name (default true).
    pub rdns: Option<bool>,
}

/// What is known about an address: classification, origin AS and its name (a local override
/// wins), covering prefix, country and reverse DNS.
#[utoipa::path(
    get,
    path = "/api/v1/lookup/ip/{ip}",
    tag = "lookup",
    params(("ip" = String, Path, description = "IPv4 or IPv6 address"), IpQuery),
    responses(
        (status = 200, description = "The address's facts; special-purpose addresses are answered as such", body = IpInfo),
        (status = 400, description = "Not an IP address", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn ip(
    State(app): State<Arc<App>>,
    Path(ip): Path<String>,
    q: Result<Query<IpQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let ip = parse_ip(&ip).map_err(lookup_error("invalid_ip"))?;
    let info = app
        .lookup
        .current()?
        .ip(ip, q.rdns.unwrap_or(true))
        .await
        .map_err(lookup_error("invalid_ip"))?;
    Ok(axum::Json(info).into_response())
}

/// What is known about an AS number: its name (a local override wins), its prefixes and
/// address counts in the IP → ASN data set, and whether it is reserved.
#[utoipa::path(
    get,
    path = "/api/v1/lookup/asn/{asn}",
    tag = "lookup",
    params(("asn" = String, Path, description = "AS number: 64500, AS64500 or asdot AS1.10")),
    responses(
        (status = 200, description = "The AS's facts", body = AsnInfo),
        (status = 400, description = "Not an AS number", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn asn(
    State(app): State<Arc<App>>,
    Path(asn): Path<String>,
) -> Result<Response, ApiError> {
    let n = parse_asn(&asn).map_err(lookup_error("invalid_asn"))?;
    let info = app
        .lookup
        .current()?
        .asn(n)
        .map_err(lookup_error("invalid_asn"))?;
    Ok(axum::Json(info).into_response())
}

// ---------------------------------------------------------------------------------------------
// WHOIS and RDAP

/// WHOIS for a domain, address, prefix (write `/` as `%2F`) or AS number, starting at the
/// server's configured WHOIS server and following referrals to the registry and registrar.
#[utoipa::path(
    get,
    path = "/api/v1/lookup/whois/{query}",
    tag = "lookup",
    params(("query" = String, Path, description = "Domain, address, prefix (193.0.0.0%2F21) or AS number")),
    responses(
        (status = 200, description = "Every server's answer and the key fields; found is false when the registry has no record", body = WhoisAnswer),
        (status = 400, description = "Not a domain, address, prefix or AS number", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 502, description = "The first WHOIS server failed or may not be contacted", body = ErrorBody),
        (status = 504, description = "The first WHOIS server did not answer in time", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn whois(
    State(app): State<Arc<App>>,
    Path(q): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    no_parameters(raw)?;
    let svc = &app.lookup;
    vantage_lookup::whois::detect(&q).map_err(lookup_error("invalid_query"))?;
    let a = svc
        .current()?
        .whois(&q, Some(&svc.whois_server))
        .await
        .map_err(lookup_error("invalid_query"))?;
    Ok(axum::Json(a).into_response())
}

/// RDAP for a domain, address, prefix (write `/` as `%2F`) or AS number, at the registry the
/// bootstrap files name.
#[utoipa::path(
    get,
    path = "/api/v1/lookup/rdap/{query}",
    tag = "lookup",
    params(("query" = String, Path, description = "Domain, address, prefix (193.0.0.0%2F21) or AS number")),
    responses(
        (status = 200, description = "The registry's object: summary fields and the raw JSON", body = RdapAnswer),
        (status = 400, description = "Not a domain, address, prefix or AS number", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 404, description = "No registry holds it, or the registry has no record", body = ErrorBody),
        (status = 502, description = "The registry failed or may not be contacted", body = ErrorBody),
        (status = 504, description = "The registry did not answer in time", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rdap(
    State(app): State<Arc<App>>,
    Path(q): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    no_parameters(raw)?;
    vantage_lookup::whois::detect(&q).map_err(lookup_error("invalid_query"))?;
    let a = app
        .lookup
        .current()?
        .rdap(&q, None)
        .await
        .map_err(lookup_error("invalid_query"))?;
    Ok(axum::Json(a).into_response())
}

// ---------------------------------------------------------------------------------------------
// AS name overrides

/// A local AS name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AsnOverrideView {
    /// The AS number.
    pub asn: u32,
    /// The name shown for it in every answer that carries an AS name.
    pub name: String,
    /// When it was last set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<AsnOverride> for AsnOverrideView {
    fn from(o: AsnOverride) -> Self {
        AsnOverrideView {
            asn: o.asn,
            name: o.name,
            updated_at: o.updated_at,
        }
    }
}

/// Every local AS name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AsnOverrideList {
    /// By AS number.
    pub items: Vec<AsnOverrideView>,
}

/// An AS number in a body: a number, or text such as "AS64500".
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AsnValue {
    /// 64500
    Number(u64),
    /// "AS64500", "64500" or asdot "AS1.10"
    Text(String),
}

/// Body of `POST /asn-overrides`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AsnOverrideCreate {
    /// The AS number.
    pub asn: AsnValue,
    /// The name to show (1 to 200 characters, no control characters).
    pub name: String,
}

/// Body of `PUT /asn-overrides/{asn}`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AsnOverrideName {
    /// The name to show (1 to 200 characters, no control characters).
    pub name: String,
}

fn path_asn(s: &str) -> Result<u32, ApiError> {
    parse_asn(s).map_err(lookup_error("invalid_asn"))
}

fn body_asn(v: &AsnValue) -> Result<u32, ApiError> {
    let bad = |m: String| {
        ApiError::unprocessable("invalid_field", m).details(serde_json::json!({"field": "asn"}))
    };
    match v {
        AsnValue::Number(n) => u32::try_from(*n)
            .map_err(|_| bad(format!("{n} is out of range: AS numbers end at 4294967295"))),
        AsnValue::Text(t) => parse_asn(t).map_err(|e| bad(e.to_string())),
    }
}

/// Every local AS name.
#[utoipa::path(
    get,
    path = "/api/v1/asn-overrides",
    tag = "lookup",
    responses(
        (status = 200, description = "The override table", body = AsnOverrideList),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn overrides_list(
    State(app): State<Arc<App>>,
) -> Result<axum::Json<AsnOverrideList>, ApiError> {
    let l = app.lookup.current()?;
    Ok(axum::Json(AsnOverrideList {
        items: l.overrides().list().into_iter().map(Into::into).collect(),
    }))
}

/// Set a local AS name (created or replaced).
#[utoipa::path(
    post,
    path = "/api/v1/asn-overrides",
    tag = "lookup",
    request_body = AsnOverrideCreate,
    responses(
        (status = 201, description = "Created", body = AsnOverrideView),
        (status = 200, description = "Replaced an existing name", body = AsnOverrideView),
        (status = 400, description = "Malformed JSON or unknown fields", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 403, description = "The token's role may not change overrides", body = ErrorBody),
        (status = 422, description = "Bad AS number or name", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn overrides_create(
    State(app): State<Arc<App>>,
    ApiJson(body): ApiJson<AsnOverrideCreate>,
) -> Result<Response, ApiError> {
    let asn = body_asn(&body.asn)?;
    set(&app, asn, &body.name).await
}

async fn set(app: &App, asn: u32, name: &str) -> Result<Response, ApiError> {
    let (existed, o) = app
        .lookup
        .change(|l| {
            let existed = l.overrides().get(asn).is_some();
            l.set_override(asn, name).map(|o| (existed, o))
        })
        .await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, axum::Json(AsnOverrideView::from(o))).into_response())
}

/// One local AS name.
#[utoipa::path(
    get,
    path = "/api/v1/asn-overrides/{asn}",
    tag = "lookup",
    params(("asn" = String, Path, description = "AS number: 64500 or AS64500")),
    responses(
        (status = 200, description = "The override", body = AsnOverrideView),
        (status = 400, description = "Not an AS number", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 404, description = "No local name for this AS", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn overrides_get(
    State(app): State<Arc<App>>,
    Path(asn): Path<String>,
) -> Result<axum::Json<AsnOverrideView>, ApiError> {
    let asn = path_asn(&asn)?;
    app.lookup
        .current()?
        .overrides()
        .get(asn)
        .map(|o| axum::Json(o.into()))
        .ok_or_else(|| ApiError::not_found(format!("AS{asn} has no local name")))
}

/// Set the local name of an AS (created or replaced).
#[utoipa::path(
    put,
    path = "/api/v1/asn-overrides/{asn}",
    tag = "lookup",
    params(("asn" = String, Path, description = "AS number: 64500 or AS64500")),
    request_body = AsnOverrideName,
    responses(
        (status = 201, description = "Created", body = AsnOverrideView),
        (status = 200, description = "Replaced an existing name", body = AsnOverrideView),
        (status = 400, description = "Not an AS number, malformed JSON or unknown fields", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 403, description = "The token's role may not change overrides", body = ErrorBody),
        (status = 422, description = "Bad name", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn overrides_put(
    State(app): State<Arc<App>>,
    Path(asn): Path<String>,
    ApiJson(body): ApiJson<AsnOverrideName>,
) -> Result<Response, ApiError> {
    let asn = path_asn(&asn)?;
    set(&app, asn, &body.name).await
}

/// Remove the local name of an AS (answers show the data set's name again).
#[utoipa::path(
    delete,
    path = "/api/v1/asn-overrides/{asn}",
    tag = "lookup",
    params(("asn" = String, Path, description = "AS number: 64500 or AS64500")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Not an AS number", body = ErrorBody),
        (status = 401, description = "Missing or wrong API token", body = ErrorBody),
        (status = 403, description = "The token's role may not change overrides", body = ErrorBody),
        (status = 404, description = "No local name for this AS", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn overrides_delete(
    State(app): State<Arc<App>>,
    Path(asn): Path<String>,
) -> Result<StatusCode, ApiError> {
    let asn = path_asn(&asn)?;
    let removed = app.lookup.change(|l| l.remove_override(asn)).await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("AS{asn} has no local name")))
    }
}

// ---------------------------------------------------------------------------------------------
// The answers' schemas, described by hand (see the module documentation).

/// A property: name, JSON types (`null` included when it may be null), whether it is always
/// present, description.
type Prop = (&'static str, &'static [Type], bool, &'static str);

const STR: &[Type] = &[Type::String];
const STR_NULL: &[Type] = &[Type::String, Type::Null];
const INT: &[Type] = &[Type::Integer];
const INT_NULL: &[Type] = &[Type::Integer, Type::Null];
const BOOL: &[Type] = &[Type::Boolean];
const OBJ: &[Type] = &[Type::Object];
const OBJ_NULL: &[Type] = &[Type::Object, Type::Null];
const ARR: &[Type] = &[Type::Array];

fn object(description: &str, props: &[Prop]) -> ObjectBuilder {
    let mut b = ObjectBuilder::new().description(Some(description));
    for (name, types, required, desc) in props {
        let ty = match types {
            [one] => SchemaType::Type(one.clone()),
            many => many.iter().cloned().collect(),
        };
        let p: RefOr<Schema> = if types.contains(&Type::Array) {
            ArrayBuilder::new()
                .description(Some(*desc))
                .items(ObjectBuilder::new())
                .into()
        } else {
            ObjectBuilder::new()
                .schema_type(ty)
                .description(Some(*desc))
                .into()
        };
        b = b.property(*name, p);
        if *required {
            b = b.required(*name);
        }
    }
    b
}

const IP_INFO: &[Prop] = &[
    ("ip", STR, true, "The address."),
    (
        "classification",
        OBJ,
        true,
        "What the IANA special-purpose registries say (class, label, block, RFC, globally_reachable, embedded IPv4, Teredo parts).",
    ),
    ("asn", INT_NULL, true, "The origin AS."),
    (
        "as_name",
        STR_NULL,
        true,
        "The AS name; a local override when one is set.",
    ),
    (
        "as_name_source",
        STR,
        false,
        "Where the name came from: override or dataset.",
    ),
    (
        "dataset_as_name",
        STR,
        false,
        "The data set's own name, when an override replaced it.",
    ),
    ("prefix", STR_NULL, true, "The covering prefix (CIDR)."),
    (
        "range",
        ARR,
        false,
        "The data set's range holding the address: [first, last].",
    ),
    (
        "country",
        STR_NULL,
        true,
        "ISO 3166-1 alpha-2 country code.",
    ),
    (
        "rdns",
        OBJ,
        false,
        "Reverse DNS: names, status (ok, no_name, timeout, error), cached, elapsed_ms.",
    ),
    (
        "note",
        STR,
        false,
        "Why something is missing (special-purpose address, no table installed, not announced).",
    ),
    (
        "sources",
        ARR,
        true,
        "The data sets used, with source, licence, attribution and date.",
    ),
];

const ASN_INFO: &[Prop] = &[
    ("asn", INT, true, "The AS number."),
    (
        "as_name",
        STR_NULL,
        true,
        "The AS name; a local override when one is set.",
    ),
    (
        "as_name_source",
        STR,
        false,
        "Where the name came from: override or dataset.",
    ),
    (
        "dataset_as_name",
        STR,
        false,
        "The data set's own name, when an override replaced it.",
    ),
    (
        "classification",
        OBJ,
        false,
        "For reserved AS numbers: what the special-purpose AS registry says.",
    ),
    (
        "in_dataset",
        BOOL,
        true,
        "Whether the IP → ASN data set has ranges for it.",
    ),
    ("prefixes", ARR, true, "Its ranges as the fewest prefixes."),
    ("ipv4_ranges", INT, true, "IPv4 ranges in the data set."),
    ("ipv6_ranges", INT, true, "IPv6 ranges in the data set."),
    ("ipv4_addresses", INT, true, "IPv4 addresses it originates."),
    ("note", STR, false, "Why something is missing."),
    (
        "sources",
        ARR,
        true,
        "The data sets used, with source, licence, attribution and date.",
    ),
];

const OUI_MATCH: &[Prop] = &[
    ("mac", STR, true, "The input in colon notation."),
    (
        "entry",
        OBJ_NULL,
        true,
        "The longest matching assignment (registry, assignment, organization, address), or null.",
    ),
    ("multicast", BOOL, true, "The group bit is set."),
    (
        "locally_administered",
        BOOL,
        true,
        "The locally administered bit is set (no vendor owns such addresses).",
    ),
    (
        "note",
        STR,
        false,
        "An explanation when there is no vendor or the match needs a caveat.",
    ),
    ("source", STR, false, "Where the matching entry came from."),
];

const OUI_SEARCH: &[Prop] = &[
    ("query", STR, true, "The search text."),
    ("total", INT, true, "How many assignments matched."),
    (
        "entries",
        ARR,
        true,
        "The first matches (up to the limit), by organisation then prefix.",
    ),
];

const IPCALC: &[Prop] = &[
    (
        "address",
        STR,
        true,
        "The address as given (host bits kept).",
    ),
    ("version", INT, true, "4 or 6."),
    ("network", STR, true, "The network in CIDR notation."),
    ("prefix_len", INT, true, "Prefix length."),
    ("netmask", STR, true, "The netmask."),
    ("wildcard", STR, true, "The wildcard (host) mask."),
    (
        "broadcast",
        STR_NULL,
        true,
        "The IPv4 broadcast address; null for IPv6, /31 and /32.",
    ),
    ("first_address", STR, true, "The first address."),
    ("last_address", STR, true, "The last address."),
    ("first_usable", STR, true, "The first usable host address."),
    ("last_usable", STR, true, "The last usable host address."),
    (
        "addresses",
        STR,
        true,
        "Number of addresses, exact, in decimal (IPv6 counts exceed 64 bits).",
    ),
    (
        "usable",
        STR,
        true,
        "Number of usable host addresses, exact.",
    ),
    ("host_bits", INT, true, "Number of host bits."),
    (
        "host_bits_set",
        BOOL,
        true,
        "Whether the input had host bits set.",
    ),
    (
        "classification",
        OBJ,
        true,
        "What the IANA registries say about the address.",
    ),
];

const SPLIT: &[Prop] = &[
    ("network", STR, true, "The prefix that was split."),
    ("subnet_len", INT, true, "The length of every subnet."),
    ("subnets", ARR, true, "The subnets in address order."),
];

const COMPARISON: &[Prop] = &[
    ("a", STR, true, "cidr, host bits cleared."),
    ("b", STR, true, "compare, host bits cleared."),
    ("equal", BOOL, true, "Same network and length."),
    ("a_contains_b", BOOL, true, "Every address of b is in a."),
    ("b_contains_a", BOOL, true, "Every address of a is in b."),
    ("overlap", BOOL, true, "They share at least one address."),
];

const SUMMARY: &[Prop] = &[
    (
        "prefixes",
        ARR,
        true,
        "The fewest prefixes covering exactly the inputs, IPv4 first.",
    ),
    (
        "notes",
        ARR,
        true,
        "Inputs that were adjusted (host bits cleared).",
    ),
];

const WHOIS: &[Prop] = &[
    (
        "query",
        OBJ,
        true,
        "The query as sent: kind (domain, ip, network, asn) and normalised text.",
    ),
    (
        "hops",
        ARR,
        true,
        "Every server asked, in order: server, query line, raw text, referral, elapsed_ms.",
    ),
    ("found", BOOL, true, "Whether the last server had a record."),
    (
        "summary",
        OBJ,
        true,
        "Key fields: range, cidr, netname, asn, as_name, organisation, country, abuse_email, domain, registrar, dates, name_servers, status.",
    ),
    (
        "note",
        STR,
        false,
        "Why the chain stopped early (hop limit, loop, referral not followed).",
    ),
    (
        "error",
        STR,
        false,
        "The failure of a later server; the earlier answers are kept.",
    ),
];

const RDAP: &[Prop] = &[
    ("query", OBJ, true, "The query: kind and normalised text."),
    ("url", STR, true, "The URL that answered (after redirects)."),
    (
        "summary",
        OBJ,
        true,
        "Key fields: object class, handle, name, addresses, cidr, AS range, type, country, status, dates, registrar, registrant, abuse_email, name_servers, port43.",
    ),
    ("raw", OBJ, true, "The registry's whole JSON answer."),
];

/// Documentation-only schema types, named as the document names them.
macro_rules! described {
    ($($name:ident => $desc:literal, $props:expr;)*) => {
        $(
            #[doc = $desc]
            #[derive(Debug)]
            pub struct $name;

            impl PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    object($desc, $props).into()
                }
            }

            impl ToSchema for $name {}
        )*
    };
}

described! {
    IpInfo => "Everything known about one IP address.", IP_INFO;
    AsnInfo => "Everything known about one AS number.", ASN_INFO;
    OuiMatch => "The vendor of a MAC address or prefix.", OUI_MATCH;
    OuiSearch => "Vendors whose name contains the search text.", OUI_SEARCH;
    WhoisAnswer => "A WHOIS answer: every server's text and the key fields.", WHOIS;
    RdapAnswer => "An RDAP answer: summary fields and the raw JSON.", RDAP;
}

impl PartialSchema for IpcalcAnswer {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "One of: the description of cidr; its split into subnets (split); its comparison \
                 with another prefix (compare); the summary of a list (summarize).",
            ))
            .item(object("The description of one prefix.", IPCALC))
            .item(object("A prefix split into equal subnets.", SPLIT))
            .item(object("How two prefixes relate.", COMPARISON))
            .item(object(
                "A list summarised into the fewest prefixes.",
                SUMMARY,
            ))
            .into()
    }
}

impl ToSchema for IpcalcAnswer {}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(f: impl FnOnce(&mut IpcalcQuery)) -> IpcalcQuery {
        let mut q = IpcalcQuery::default();
        f(&mut q);
        q
    }

    fn keys(v: &serde_json::Value) -> std::collections::BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    fn check(props: &[Prop], v: &serde_json::Value) {
        let documented: std::collections::BTreeSet<String> =
            props.iter().map(|p| p.0.to_string()).collect();
        for k in keys(v) {
            assert!(documented.contains(&k), "undocumented field {k} in {v}");
        }
        for (name, _, required, _) in props {
            if *required {
                assert!(
                    v.get(name).is_some(),
                    "required field {name} missing in {v}"
                );
            }
        }
    }

    #[test]
    fn calculator_answers_match_their_documented_shapes() {
        let ans =
            |f: fn(&mut IpcalcQuery)| serde_json::to_value(ipcalc_answer(q(f)).unwrap()).unwrap();
        let calc = ans(|q| q.cidr = Some("192.0.2.77/26".into()));
        assert_eq!(calc["network"], "192.0.2.64/26");
        check(IPCALC, &calc);
        let split = ans(|q| {
            q.cidr = Some("2001:db8::/46".into());
            q.split = Some(48);
        });
        assert_eq!(split["subnets"].as_array().unwrap().len(), 4);
        check(SPLIT, &split);
        let cmp = ans(|q| {
            q.cidr = Some("10.0.0.0/8".into());
            q.compare = Some("10.1.0.0/16".into());
        });
        assert_eq!(cmp["a_contains_b"], true);
        check(COMPARISON, &cmp);
        let sum =
            ans(|q| q.summarize = Some("10.0.0.0/24, 10.0.1.0/24,10.0.2.0-10.0.3.255".into()));
        assert_eq!(sum["prefixes"], serde_json::json!(["10.0.0.0/22"]));
        check(SUMMARY, &sum);
    }

    #[test]
    fn calculator_refuses_what_does_not_fit() {
        let err = |f: fn(&mut IpcalcQuery)| ipcalc_answer(q(f)).unwrap_err();
        let e = err(|_| {});
        assert_eq!(e.code, "invalid_query");
        let e = err(|q| q.cidr = Some("300.1.2.3/8".into()));
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "invalid_cidr")
        );
        let e = err(|q| {
            q.cidr = Some("10.0.0.0/8".into());
            q.split = Some(24);
        });
        assert!(e.message.contains("4096"), "{}", e.message);
        let e = err(|q| {
            q.cidr = Some("10.0.0.0/8".into());
            q.summarize = Some("10.0.0.0/9".into());
        });
        assert_eq!(e.code, "invalid_query");
    }
}
