//! [`Lookup`]: every lookup behind one value that holds the data directory's data sets, loaded
//! on first use and shared. The CLI creates one per command; the server keeps one for its
//! lifetime, serves the REST API from it (each method's result type is the JSON body) and calls
//! [`Lookup::reload`] after `data update`.
//!
//! Decision: data sets load lazily, each on first use, so `vantage oui` never reads the ASN
//! table; a damaged data file is an error that names the file (and how to fix it) rather than a
//! silent fall-back, while a *missing* one falls back to what is built in (OUI table, country
//! from RIR data, RDAP bootstrap) or, for IP → ASN, to an answer that says no table is
//! installed.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::asn::AsnTable;
use crate::country::CountryDb;
use crate::datadir::{DataDir, DatasetInfo};
use crate::error::{Error, Result};
use crate::oui::{OuiMatch, OuiSearch, OuiTable, read_ieee_csv};
use crate::overrides::{AsnOverride, AsnOverrides, NameSource, OverrideFile};
use crate::rdap::{Bootstrap, RdapAnswer, RdapClient};
use crate::rdns::{PtrAnswer, ReverseDns};
use crate::reach::Reach;
use crate::special::{AsnClassification, Classification, classify, classify_asn};
use crate::whois::{Server, WhoisAnswer, WhoisClient};

/// Where an answer's data came from, with the licence's attribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// "asn", "country", "oui" …
    pub dataset: String,
    /// The source phrase (file, URL or "built-in …").
    pub source: String,
    /// The licence, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    /// The attribution the licence asks for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
    /// How old the data are, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_date: Option<DateTime<Utc>>,
}

impl SourceRef {
    fn from_info(info: &DatasetInfo) -> SourceRef {
        SourceRef {
            dataset: info.dataset.clone(),
            source: info.sources.join(", "),
            licence: info.licence.clone(),
            attribution: info.attribution.clone(),
            data_date: info.data_date.or(Some(info.updated_at)),
        }
    }
}

/// Everything known about one IP address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpInfo {
    /// The address.
    pub ip: IpAddr,
    /// What the IANA registries say about it.
    pub classification: Classification,
    /// The origin AS.
    pub asn: Option<u32>,
    /// The AS name (an override when one is set).
    pub as_name: Option<String>,
    /// Where the AS name came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_name_source: Option<NameSource>,
    /// The data set's AS name, when an override replaced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_as_name: Option<String>,
    /// The covering prefix.
    pub prefix: Option<IpNet>,
    /// The data set's range holding the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<[IpAddr; 2]>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// Reverse DNS, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdns: Option<PtrAnswer>,
    /// Why something is missing ("RFC 1918 / private network …", "no IP → ASN table …").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Data sources and their attribution.
    pub sources: Vec<SourceRef>,
}

impl IpInfo {
    /// Whether the answer names an AS (what `vantage asn` asks for).
    pub fn found(&self) -> bool {
        self.asn.is_some()
    }
}

/// Everything known about one AS number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsnInfo {
    /// The AS number.
    pub asn: u32,
    /// The AS name (an override when one is set).
    pub as_name: Option<String>,
    /// Where the AS name came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_name_source: Option<NameSource>,
    /// The data set's AS name, when an override replaced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_as_name: Option<String>,
    /// What the special-purpose AS registry says, for reserved numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification: Option<AsnClassification>,
    /// Whether the IP → ASN data set has ranges for it.
    pub in_dataset: bool,
    /// Its ranges as the fewest prefixes.
    pub prefixes: Vec<IpNet>,
    /// IPv4 ranges in the data set.
    pub ipv4_ranges: usize,
    /// IPv6 ranges in the data set.
    pub ipv6_ranges: usize,
    /// IPv4 addresses it originates.
    pub ipv4_addresses: u64,
    /// Why something is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Data sources and their attribution.
    pub sources: Vec<SourceRef>,
}

/// The state of one installed data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetStatus {
    /// "oui", "asn", "country" or "rdap".
    pub dataset: String,
    /// Whether a data set is installed in the data directory.
    pub installed: bool,
    /// What answers when nothing is installed.
    pub fallback: String,
    /// The installed data set's description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<DatasetInfo>,
}

/// A lazily loaded, replaceable data set.
#[derive(Debug)]
struct Slot<T>(RwLock<Option<Arc<T>>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(RwLock::new(None))
    }
}

impl<T> Slot<T> {
    fn get(&self, load: impl FnOnce() -> Result<T>) -> Result<Arc<T>> {
        if let Some(v) = self.0.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Ok(v.clone());
        }
        let mut w = self.0.write().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = w.as_ref() {
            return Ok(v.clone());
        }
        let v = Arc::new(load()?);
        *w = Some(v.clone());
        Ok(v)
    }

    fn clear(&self) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// All lookups over one data directory.
#[derive(Debug)]
pub struct Lookup {
    dir: DataDir,
    oui: Slot<OuiTable>,
    asn: Slot<Option<Arc<AsnTable>>>,
    country: Slot<CountryDb>,
    bootstrap: Slot<Bootstrap>,
    overrides: Arc<AsnOverrides>,
    override_file: Option<OverrideFile>,
    whois: WhoisClient,
    rdap_timeout: std::time::Duration,
    rdap_reach: Reach,
    rdns: Slot<ReverseDns>,
}

impl Lookup {
    /// Lookups over `dir`, with the overrides kept in its `lookup/asn-overrides.json`.
    pub fn open(dir: DataDir) -> Result<Lookup> {
        let file = OverrideFile::new(dir.asn_overrides());
        let overrides = Arc::new(file.load()?);
        Ok(Self::build(dir, overrides, Some(file)))
    }

    /// Lookups over `dir` with an override table the caller keeps (and persists) itself.
    pub fn with_overrides(dir: DataDir, overrides: Arc<AsnOverrides>) -> Lookup {
        Self::build(dir, overrides, None)
    }

    fn build(dir: DataDir, overrides: Arc<AsnOverrides>, file: Option<OverrideFile>) -> Lookup {
        Lookup {
            dir,
            oui: Slot::default(),
            asn: Slot::default(),
            country: Slot::default(),
            bootstrap: Slot::default(),
            overrides,
            override_file: file,
            whois: WhoisClient::new(),
            rdap_timeout: crate::rdap::DEFAULT_TIMEOUT,
            rdap_reach: Reach::anywhere(),
            rdns: Slot::default(),
        }
    }

    /// Uses this WHOIS client (timeouts, hop limit, relays).
    pub fn set_whois(&mut self, client: WhoisClient) {
        self.whois = client;
    }

    /// Uses this timeout for RDAP requests.
    pub fn set_rdap_timeout(&mut self, t: std::time::Duration) {
        self.rdap_timeout = t;
    }

    /// Limits where RDAP requests may connect (WHOIS takes its own in [`Lookup::set_whois`]).
    pub fn set_rdap_reach(&mut self, reach: Reach) {
        self.rdap_reach = reach;
    }

    /// Uses this reverse-DNS resolver instead of the system one.
    pub fn set_rdns(&mut self, r: ReverseDns) {
        *self.rdns.0.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(r));
    }

    /// The data directory.
    pub fn data_dir(&self) -> &DataDir {
        &self.dir
    }

    /// Forgets the loaded data sets so the next lookup reads the data directory again.
    pub fn reload(&self) {
        self.oui.clear();
        self.asn.clear();
        self.country.clear();
        self.bootstrap.clear();
    }

    /// The OUI table: built in, with the data directory's registries laid over it.
    pub fn oui_table(&self) -> Result<Arc<OuiTable>> {
        self.oui.get(|| {
            let table = OuiTable::builtin();
            let path = self.dir.oui_csv();
            if !path.exists() {
                return Ok(table);
            }
            let info = DataDir::read_info(&path)?;
            let entries = read_ieee_csv(
                crate::datadir::open_maybe_gz(&path)?,
                &path.display().to_string(),
            )?;
            let when = info
                .map(|i| format!(" (updated {})", i.updated_at.format("%Y-%m-%d")))
                .unwrap_or_default();
            Ok(table.overlay(entries, format!("{}{when}", path.display())))
        })
    }

    /// The vendor of a MAC address or prefix.
    pub fn oui(&self, mac: &str) -> Result<OuiMatch> {
        self.oui_table()?.lookup(mac)
    }

    /// Vendors whose name contains `query`.
    pub fn oui_search(&self, query: &str, limit: usize) -> Result<OuiSearch> {
        self.oui_table()?.search(query, limit)
    }

    /// The IP → ASN table, if one is installed.
    pub fn asn_table(&self) -> Result<Option<Arc<AsnTable>>> {
        let slot = self.asn.get(|| {
            let path = self.dir.asn_table();
            if !path.exists() {
                return Ok(None);
            }
            AsnTable::load(&path).map(|t| Some(Arc::new(t)))
        })?;
        Ok(slot.as_ref().clone())
    }

    /// The country database (the data directory's MMDB, else the built-in RIR data).
    pub fn country_db(&self) -> Result<Arc<CountryDb>> {
        self.country.get(|| {
            let path = self.dir.country_mmdb();
            if !path.exists() {
                return Ok(CountryDb::builtin());
            }
            CountryDb::open(&path, DataDir::read_info(&path)?)
        })
    }

    /// The RDAP bootstrap registries.
    pub fn bootstrap(&self) -> Result<Arc<Bootstrap>> {
        self.bootstrap
            .get(|| Bootstrap::load(Some(&self.dir.rdap_dir())))
    }

    /// The override table.
    pub fn overrides(&self) -> &AsnOverrides {
        &self.overrides
    }

    /// Sets an override (and saves it, when the table lives in the data directory: changed on
    /// disk under a lock, so the CLI and a running server do not undo each other's changes).
    pub fn set_override(&self, asn: u32, name: &str) -> Result<AsnOverride> {
        match &self.override_file {
            Some(f) => {
                let (o, list) = f.update(|t| t.set(asn, name))?;
                self.overrides.replace_all(list)?;
                Ok(o)
            }
            None => self.overrides.set(asn, name),
        }
    }

    /// Removes an override; false when there was none.
    pub fn remove_override(&self, asn: u32) -> Result<bool> {
        match &self.override_file {
            Some(f) => {
                let (removed, list) = f.update(|t| Ok(t.remove(asn)))?;
                self.overrides.replace_all(list)?;
                Ok(removed)
            }
            None => Ok(self.overrides.remove(asn)),
        }
    }

    fn with_table<R>(&self, f: impl FnOnce(Option<&AsnTable>) -> R) -> Result<R> {
        let t = self.asn_table()?;
        Ok(f(t.as_deref()))
    }

    /// AS, name, prefix and country of an address (and its reverse DNS when `rdns`).
    pub async fn ip(&self, ip: IpAddr, rdns: bool) -> Result<IpInfo> {
        let classification = classify(ip);
        let lookup_ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let routable = !classify(lookup_ip).is_special()
            || classify(lookup_ip).globally_reachable != Some(false);
        let mut info = IpInfo {
            ip,
            classification: classification.clone(),
            asn: None,
            as_name: None,
            as_name_source: None,
            dataset_as_name: None,
            prefix: None,
            range: None,
            country: None,
            rdns: None,
            note: None,
            sources: Vec::new(),
        };
        if !routable {
            info.note = Some(format!(
                "{}: not routed on the public Internet, so no AS or country holds it",
                classify(lookup_ip).label
            ));
        } else {
            let hit = self.with_table(|t| t.map(|t| (t.lookup(lookup_ip), t.info().clone())))?;
            match hit {
                Some((hit, tinfo)) => {
                    info.sources.push(SourceRef::from_info(&tinfo));
                    if let Some(h) = hit {
                        let name = self.overrides.apply(h.asn, h.name.as_deref());
                        info.asn = Some(h.asn);
                        info.as_name = name.name;
                        info.as_name_source = name.source;
                        info.dataset_as_name = name.dataset_name;
                        info.prefix = Some(h.prefix);
                        info.range = Some([h.range_start, h.range_end]);
                    } else {
                        info.note = Some(
                            "the IP → ASN table has no range for this address (not announced)"
                                .into(),
                        );
                    }
                }
                None => {
                    info.note = Some(format!(
                        "no IP → ASN table is installed in {}; run `vantage data update asn`",
                        self.dir.root().display()
                    ));
                }
            }
            let db = self.country_db()?;
            if let Some(c) = db.lookup(lookup_ip)? {
                info.country = Some(c.code);
            }
            info.sources.push(match db.info() {
                Some(i) => SourceRef::from_info(i),
                None => SourceRef {
                    dataset: "country".into(),
                    source: db.source().to_string(),
                    licence: db
                        .is_builtin()
                        .then(|| "MIT OR Apache-2.0 (iptocc); RIR statistics are public".into()),
                    attribution: None,
                    data_date: None,
                },
            });
        }
        if rdns {
            let r = self.rdns.get(|| ReverseDns::system(Default::default()))?;
            info.rdns = Some(r.lookup(ip).await);
        }
        Ok(info)
    }

    /// What is known about an AS number.
    pub fn asn(&self, asn: u32) -> Result<AsnInfo> {
        let classification = classify_asn(asn);
        let (in_dataset, dataset_name, ranges, tinfo) = self.with_table(|t| match t {
            Some(t) => (
                t.contains_asn(asn),
                t.name_of(asn).map(String::from),
                Some(t.ranges_of(asn)),
                Some(t.info().clone()),
            ),
            None => (false, None, None, None),
        })?;
        let name = self.overrides.apply(asn, dataset_name.as_deref());
        let note = match (&classification, &tinfo, in_dataset) {
            (Some(c), _, false) => Some(format!("{}: not used on the public Internet", c.label)),
            (_, None, _) => Some(format!(
                "no IP → ASN table is installed in {}; run `vantage data update asn`",
                self.dir.root().display()
            )),
            (_, Some(_), false) => Some("the IP → ASN table has no ranges for this AS".into()),
            _ => None,
        };
        let r = ranges.unwrap_or(crate::asn::AsnRanges {
            prefixes: Vec::new(),
            ipv4_ranges: 0,
            ipv6_ranges: 0,
            ipv4_addresses: 0,
        });
        Ok(AsnInfo {
            asn,
            as_name: name.name,
            as_name_source: name.source,
            dataset_as_name: name.dataset_name,
            classification,
            in_dataset,
            prefixes: r.prefixes,
            ipv4_ranges: r.ipv4_ranges,
            ipv6_ranges: r.ipv6_ranges,
            ipv4_addresses: r.ipv4_addresses,
            note,
            sources: tinfo.iter().map(SourceRef::from_info).collect(),
        })
    }

    /// WHOIS, starting at `server` (default whois.iana.org).
    pub async fn whois(&self, query: &str, server: Option<&Server>) -> Result<WhoisAnswer> {
        self.whois.query(query, server).await
    }

    /// RDAP, through the bootstrap files or at `server` (a base URL).
    pub async fn rdap(&self, query: &str, server: Option<&str>) -> Result<RdapAnswer> {
        let client = RdapClient::with_reach(
            self.bootstrap()?,
            self.rdap_timeout,
            self.rdap_reach.clone(),
        )?;
        client.query(query, server).await
    }

    /// Reverse DNS of many addresses (the system resolver unless [`Lookup::set_rdns`]).
    pub async fn rdns(&self, ips: &[IpAddr]) -> Result<Vec<PtrAnswer>> {
        let r = self.rdns.get(|| ReverseDns::system(Default::default()))?;
        Ok(r.lookup_many(ips).await)
    }

    /// The installed data sets.
    pub fn datasets(&self) -> Result<Vec<DatasetStatus>> {
        let st = |name: &str,
                  path: std::path::PathBuf,
                  info_path: std::path::PathBuf,
                  fallback: &str|
         -> Result<DatasetStatus> {
            Ok(DatasetStatus {
                dataset: name.into(),
                installed: path.exists(),
                fallback: fallback.into(),
                info: if path.exists() {
                    DataDir::read_info(&info_path)?
                } else {
                    None
                },
            })
        };
        Ok(vec![
            st(
                "oui",
                self.dir.oui_csv(),
                self.dir.oui_csv(),
                crate::oui::BUILTIN_ORIGIN,
            )?,
            st(
                "asn",
                self.dir.asn_table(),
                self.dir.asn_table(),
                "none: IP → ASN answers need `vantage data update asn`",
            )?,
            st(
                "country",
                self.dir.country_mmdb(),
                self.dir.country_mmdb(),
                crate::country::BUILTIN_SOURCE,
            )?,
            st(
                "rdap",
                self.dir.rdap_dir(),
                self.dir.rdap_dir(),
                "built-in bootstrap snapshot",
            )?,
        ])
    }
}

/// Parses an address for the lookups, with a sentence on failure.
pub fn parse_ip(input: &str) -> Result<IpAddr> {
    input.trim().parse().map_err(|_| {
        Error::Invalid(format!(
            "'{}' is not an IP address (e.g. 192.0.2.1 or 2001:db8::1)",
            input.trim()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>(_: &T) {}
    fn shared<T: Send + Sync>() {}

    /// The server keeps one `Lookup` behind an `Arc` and awaits its methods in handlers, which
    /// must be `Send`.
    #[test]
    fn lookup_can_be_shared_by_a_server() {
        shared::<Lookup>();
        let dir = tempfile::tempdir().unwrap();
        let l = Lookup::open(DataDir::new(dir.path())).unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        send(&l.ip(ip, true));
        send(&l.whois("example.com", None));
        send(&l.rdap("example.com", None));
        send(&l.rdns(&[ip]));
    }
}
