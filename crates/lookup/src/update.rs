//! `vantage data update`: installs a data set into the data directory from its public source,
//! or from files or URLs the user names.
//!
//! Decisions: downloading is always a user action (nothing fetches at build, test or lookup
//! time). Every source is fetched completely into a temporary file, parsed and checked, and
//! only then is the data set replaced atomically — a broken download, a wrong file or an
//! interruption leaves the installed data untouched. Gzip is recognised by its content.
//! Each installed data set records its sources, dates, licence and attribution, which every
//! answer then reports.
//!
//! Default public sources:
//! - `oui`: the IEEE registries, `https://standards-oui.ieee.org/{oui/oui.csv, oui28/mam.csv,
//!   oui36/oui36.csv, cid/cid.csv, iab/iab.csv}`;
//! - `asn`: iptoasn.com, `https://iptoasn.com/data/ip2asn-combined.tsv.gz` (PDDL 1.0);
//! - `country`: DB-IP Country Lite, `https://download.db-ip.com/free/dbip-country-lite-YYYY-MM.mmdb.gz`
//!   (CC BY 4.0; this month's file, else last month's);
//! - `rdap`: the IANA bootstrap files, `https://data.iana.org/rdap/{asn,dns,ipv4,ipv6}.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Months, Utc};
use serde::{Deserialize, Serialize};

use crate::asn::{AsnTableBuilder, RangeFormat, read_ranges};
use crate::country::CountryDb;
use crate::datadir::{
    DataDir, DatasetInfo, open_maybe_gz, read_maybe_gz, write_atomic, write_info,
};
use crate::error::{Error, Result};
use crate::oui::{Registry, read_ieee_csv, write_ieee_csv};
use crate::rdap::{BOOTSTRAP_BASE_URL, BootstrapKind, validate_bootstrap};

/// The data sets `vantage data update` installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    /// MAC vendors (IEEE CSV).
    Oui,
    /// IP → ASN ranges (iptoasn TSV or ip-location-db CSV).
    Asn,
    /// IP → country (MMDB).
    Country,
    /// RDAP bootstrap files (RFC 9224 JSON).
    Rdap,
}

impl Dataset {
    /// All of them.
    pub const ALL: [Dataset; 4] = [Dataset::Oui, Dataset::Asn, Dataset::Country, Dataset::Rdap];

    /// The name used on the command line and in the API.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Oui => "oui",
            Dataset::Asn => "asn",
            Dataset::Country => "country",
            Dataset::Rdap => "rdap",
        }
    }
}

impl FromStr for Dataset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Dataset::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown data set '{s}': choose oui, asn, country or rdap"
                ))
            })
    }
}

/// The public sources used when none is given.
pub fn default_sources(ds: Dataset, now: DateTime<Utc>) -> Vec<String> {
    match ds {
        Dataset::Oui => [
            "oui/oui.csv",
            "oui28/mam.csv",
            "oui36/oui36.csv",
            "cid/cid.csv",
            "iab/iab.csv",
        ]
        .iter()
        .map(|p| format!("https://standards-oui.ieee.org/{p}"))
        .collect(),
        Dataset::Asn => vec!["https://iptoasn.com/data/ip2asn-combined.tsv.gz".into()],
        Dataset::Country => {
            let last = now.checked_sub_months(Months::new(1)).unwrap_or(now);
            [now, last]
                .iter()
                .map(|d| {
                    format!(
                        "https://download.db-ip.com/free/dbip-country-lite-{:04}-{:02}.mmdb.gz",
                        d.year(),
                        d.month()
                    )
                })
                .collect()
        }
        Dataset::Rdap => vec![BOOTSTRAP_BASE_URL.into()],
    }
}

/// Download progress: source, bytes so far, total if known.
pub type Progress = Arc<dyn Fn(&str, u64, Option<u64>) + Send + Sync>;

/// How to update.
#[derive(Clone)]
pub struct UpdateOptions {
    /// Files or URLs; empty means the public defaults.
    pub sources: Vec<String>,
    /// Time allowed per download.
    pub timeout: Duration,
    /// Largest download accepted (and largest decompressed size).
    pub max_bytes: u64,
    /// Licence to record instead of the one recognised from the source.
    pub licence: Option<String>,
    /// Attribution to record instead of the one recognised from the source.
    pub attribution: Option<String>,
    /// Called as downloads progress.
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for UpdateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateOptions")
            .field("sources", &self.sources)
            .field("timeout", &self.timeout)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl Default for UpdateOptions {
    fn default() -> Self {
        UpdateOptions {
            sources: Vec::new(),
            timeout: Duration::from_secs(600),
            max_bytes: 1 << 30,
            licence: None,
            attribution: None,
            progress: None,
        }
    }
}

/// What an update installed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateReport {
    /// The data set.
    pub dataset: Dataset,
    /// The files written.
    pub files: Vec<PathBuf>,
    /// The description recorded with it.
    pub info: DatasetInfo,
}

/// A fetched source: a local file (the user's, or a temporary download).
struct Fetched {
    path: PathBuf,
    source: String,
    data_date: Option<DateTime<Utc>>,
    temp: bool,
}

impl Drop for Fetched {
    fn drop(&mut self) {
        if self.temp {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

fn http_client(opts: &UpdateOptions) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(opts.timeout)
        .connect_timeout(Duration::from_secs(20))
        .user_agent(concat!(
            "vantage/",
            env!("CARGO_PKG_VERSION"),
            " (data update)"
        ))
        .build()
        .map_err(|e| Error::Upstream(format!("cannot set up the HTTP client: {e}")))
}

/// Fetches one source: a local file is used in place; a URL is downloaded into `tmp_dir`.
async fn fetch(
    client: &reqwest::Client,
    src: &str,
    tmp_dir: &Path,
    opts: &UpdateOptions,
) -> Result<Fetched> {
    if !is_url(src) {
        let path = PathBuf::from(src);
        let meta = std::fs::metadata(&path).map_err(|e| Error::io("cannot read", &path, e))?;
        if !meta.is_file() {
            return Err(Error::Invalid(format!("{src} is not a file")));
        }
        // A file's time is its data's date when the user downloaded it (curl -R, wget);
        // times before 2000 are placeholders (npm packs every file as 1985-10-26) and unknown.
        let data_date = meta
            .modified()
            .ok()
            .map(DateTime::<Utc>::from)
            .filter(|d| d.year() >= 2000);
        return Ok(Fetched {
            data_date,
            path,
            source: src.to_string(),
            temp: false,
        });
    }
    let host = reqwest::Url::parse(src)
        .ok()
        .and_then(|u| u.host_str().map(String::from))
        .unwrap_or_else(|| src.to_string());
    let net = |e: reqwest::Error| {
        if e.is_timeout() {
            Error::Timeout(format!(
                "{host} did not deliver {src} within {} s",
                opts.timeout.as_secs()
            ))
        } else {
            let mut cause: &dyn std::error::Error = &e;
            while let Some(next) = cause.source() {
                cause = next;
            }
            Error::Upstream(format!("cannot download {src}: {cause}"))
        }
    };
    let mut resp = client.get(src).send().await.map_err(net)?;
    if !resp.status().is_success() {
        return Err(Error::Upstream(format!(
            "{host} answered HTTP {} for {src}",
            resp.status()
        )));
    }
    let total = resp.content_length();
    if total.is_some_and(|t| t > opts.max_bytes) {
        return Err(Error::Upstream(format!(
            "{src} is larger than {} MiB; refusing it",
            opts.max_bytes >> 20
        )));
    }
    let data_date = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
        .map(|d| d.with_timezone(&Utc));
    std::fs::create_dir_all(tmp_dir).map_err(|e| Error::io("cannot create", tmp_dir, e))?;
    let path = tmp_dir.join(format!(
        ".download-{}-{}",
        std::process::id(),
        rand_suffix(src)
    ));
    let fetched = Fetched {
        path: path.clone(),
        source: src.to_string(),
        data_date,
        temp: true,
    };
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| Error::io("cannot create", &path, e))?;
    let mut got: u64 = 0;
    while let Some(chunk) = resp.chunk().await.map_err(net)? {
        got += chunk.len() as u64;
        if got > opts.max_bytes {
            return Err(Error::Upstream(format!(
                "{src} is larger than {} MiB; refusing it",
                opts.max_bytes >> 20
            )));
        }
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
            .await
            .map_err(|e| Error::io("cannot write", &path, e))?;
        if let Some(p) = &opts.progress {
            p(src, got, total);
        }
    }
    tokio::io::AsyncWriteExt::flush(&mut file)
        .await
        .map_err(|e| Error::io("cannot write", &path, e))?;
    Ok(fetched)
}

fn rand_suffix(src: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(src.as_bytes());
    format!("{:016x}", h.finish())
}

/// Installs a data set. Nothing installed changes unless every source was fetched and checked.
pub async fn update(dir: &DataDir, ds: Dataset, opts: UpdateOptions) -> Result<UpdateReport> {
    let client = http_client(&opts)?;
    let tmp = dir.lookup_dir();
    let defaults = opts.sources.is_empty();
    let sources = if defaults {
        default_sources(ds, Utc::now())
    } else {
        opts.sources.clone()
    };
    match ds {
        Dataset::Oui => {
            let mut fetched = Vec::new();
            for s in &sources {
                fetched.push(fetch(&client, s, &tmp, &opts).await?);
            }
            install_oui(dir, &fetched, &opts).await
        }
        Dataset::Asn => {
            let mut fetched = Vec::new();
            for s in &sources {
                fetched.push(fetch(&client, s, &tmp, &opts).await?);
            }
            install_asn(dir, fetched, &opts).await
        }
        Dataset::Country => {
            if !defaults && sources.len() > 1 {
                return Err(Error::Invalid(
                    "the country data set is one MMDB file: give a single --from".into(),
                ));
            }
            // The defaults are alternatives (this month's file, else last month's).
            let mut last_err = None;
            for s in &sources {
                match fetch(&client, s, &tmp, &opts).await {
                    Ok(f) => return install_country(dir, f, &opts).await,
                    Err(e) => last_err = Some(e),
                }
            }
            Err(last_err.unwrap_or_else(|| Error::Invalid("no source given".into())))
        }
        Dataset::Rdap => {
            let mut fetched: Vec<(BootstrapKind, Fetched)> = Vec::new();
            for s in &sources {
                for (kind, src) in rdap_sources(s)? {
                    fetched.push((kind, fetch(&client, &src, &tmp, &opts).await?));
                }
            }
            install_rdap(dir, fetched, &opts)
        }
    }
}

/// The bootstrap files a source names: a directory or base URL holds all four; a `.json` file
/// or URL is the one its name says.
fn rdap_sources(src: &str) -> Result<Vec<(BootstrapKind, String)>> {
    let name = src.rsplit('/').next().unwrap_or(src);
    if name.ends_with(".json") {
        let kind = BootstrapKind::ALL
            .into_iter()
            .find(|k| k.file_name() == name)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{src}: a bootstrap file is named asn.json, dns.json, ipv4.json or ipv6.json"
                ))
            })?;
        return Ok(vec![(kind, src.to_string())]);
    }
    Ok(BootstrapKind::ALL
        .into_iter()
        .map(|k| {
            let s = if is_url(src) {
                format!("{}/{}", src.trim_end_matches('/'), k.file_name())
            } else {
                Path::new(src).join(k.file_name()).display().to_string()
            };
            (k, s)
        })
        .collect())
}

fn info(ds: Dataset, format: &str, fetched: &[&Fetched], opts: &UpdateOptions) -> DatasetInfo {
    let sources: Vec<String> = fetched.iter().map(|f| f.source.clone()).collect();
    let (licence, attribution) = recognise(ds, &sources);
    DatasetInfo {
        dataset: ds.name().into(),
        format: format.into(),
        data_date: fetched.iter().filter_map(|f| f.data_date).min(),
        sources,
        updated_at: Utc::now(),
        licence: opts.licence.clone().or(licence),
        attribution: opts.attribution.clone().or(attribution),
        counts: BTreeMap::new(),
    }
}

/// Licence and attribution of the well-known sources, recognised by name.
fn recognise(ds: Dataset, sources: &[String]) -> (Option<String>, Option<String>) {
    let all = sources.join(" ").to_ascii_lowercase();
    let s = |a: &str, b: &str| (Some(a.to_string()), Some(b.to_string()));
    match ds {
        Dataset::Oui => (
            None,
            Some("IEEE Registration Authority public listing".into()),
        ),
        Dataset::Rdap => (
            None,
            Some("IANA RDAP bootstrap registries (RFC 9224)".into()),
        ),
        Dataset::Asn if all.contains("iptoasn") || all.contains("ip2asn") => {
            s("PDDL 1.0", "IP to ASN data from iptoasn.com")
        }
        Dataset::Asn if all.contains("ip-location-db") || all.contains("asn-ipv") => s(
            "CC BY 4.0",
            "ip-location-db (sapics): RouteViews, NRO and DB-IP data (https://db-ip.com)",
        ),
        Dataset::Country if all.contains("db-ip") || all.contains("dbip") => {
            s("CC BY 4.0", "IP Geolocation by DB-IP (https://db-ip.com)")
        }
        Dataset::Country if all.contains("geo-whois-asn-country") => s(
            "CC0 1.0, with NRO data under CC BY 4.0",
            "ip-location-db geo-whois-asn-country (sapics), including NRO data",
        ),
        Dataset::Country if all.contains("geolite2") => s(
            "MaxMind GeoLite2 End User License Agreement",
            "This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com",
        ),
        _ => (None, None),
    }
}

async fn install_oui(
    dir: &DataDir,
    fetched: &[Fetched],
    opts: &UpdateOptions,
) -> Result<UpdateReport> {
    let mut entries = Vec::new();
    for f in fetched {
        let r = open_maybe_gz(&f.path)?;
        entries.extend(read_ieee_csv(r, &f.source)?);
    }
    let mut info = info(
        Dataset::Oui,
        "IEEE CSV",
        &fetched.iter().collect::<Vec<_>>(),
        opts,
    );
    for r in Registry::ALL {
        let n = entries.iter().filter(|e| e.registry == r).count();
        if n > 0 {
            info.counts.insert(r.name().to_string(), n as u64);
        }
    }
    let path = dir.oui_csv();
    write_atomic(&path, |w| write_ieee_csv(&entries, w))?;
    write_info(&path, &info)?;
    Ok(UpdateReport {
        dataset: Dataset::Oui,
        files: vec![path],
        info,
    })
}

async fn install_asn(
    dir: &DataDir,
    fetched: Vec<Fetched>,
    opts: &UpdateOptions,
) -> Result<UpdateReport> {
    let paths: Vec<(PathBuf, String)> = fetched
        .iter()
        .map(|f| (f.path.clone(), f.source.clone()))
        .collect();
    let (builder, formats) = tokio::task::spawn_blocking(move || -> Result<_> {
        let mut b = AsnTableBuilder::new();
        let mut formats: Vec<RangeFormat> = Vec::new();
        for (path, source) in &paths {
            let fmt = read_ranges(open_maybe_gz(path)?, source, &mut b)?;
            if !formats.contains(&fmt) {
                formats.push(fmt);
            }
        }
        Ok((b, formats))
    })
    .await
    .map_err(|e| Error::Data(format!("the conversion failed: {e}")))??;
    let format = formats
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(" + ");
    let info = info(
        Dataset::Asn,
        &format,
        &fetched.iter().collect::<Vec<_>>(),
        opts,
    );
    let table = tokio::task::spawn_blocking(move || builder.finish(info))
        .await
        .map_err(|e| Error::Data(format!("the conversion failed: {e}")))?;
    if table.is_empty() {
        return Err(Error::Data(
            "the sources hold no routed ranges; the installed table was kept".into(),
        ));
    }
    let path = dir.asn_table();
    write_atomic(&path, |w| table.write(w))?;
    write_info(&path, table.info())?;
    Ok(UpdateReport {
        dataset: Dataset::Asn,
        files: vec![path],
        info: table.info().clone(),
    })
}

async fn install_country(dir: &DataDir, f: Fetched, opts: &UpdateOptions) -> Result<UpdateReport> {
    let bytes = read_maybe_gz(&f.path, opts.max_bytes)?;
    let db = CountryDb::from_bytes(bytes.clone(), &f.source, None)?;
    let mut info = info(Dataset::Country, "MMDB", &[&f], opts);
    info.counts.insert("bytes".into(), bytes.len() as u64);
    // The database's own build time is the best date there is.
    if let Some(built) = db.build_time() {
        info.data_date = Some(built);
    }
    tracing::info!(source = db.source(), "country database checked");
    let path = dir.country_mmdb();
    write_atomic(&path, |w| {
        w.write_all(&bytes)
            .map_err(|e| Error::io("cannot write", &path, e))
    })?;
    write_info(&path, &info)?;
    Ok(UpdateReport {
        dataset: Dataset::Country,
        files: vec![path],
        info,
    })
}

fn install_rdap(
    dir: &DataDir,
    fetched: Vec<(BootstrapKind, Fetched)>,
    opts: &UpdateOptions,
) -> Result<UpdateReport> {
    let mut checked = Vec::new();
    let mut counts = BTreeMap::new();
    for (kind, f) in &fetched {
        let bytes = read_maybe_gz(&f.path, 64 << 20)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::Data(format!("{}: not UTF-8 text", f.source)))?;
        let n = validate_bootstrap(*kind, &text)
            .map_err(|e| Error::Data(format!("{}: {e}", f.source)))?;
        counts.insert(
            kind.file_name().trim_end_matches(".json").to_string(),
            n as u64,
        );
        checked.push((*kind, text));
    }
    let mut info = info(
        Dataset::Rdap,
        "RFC 9224 bootstrap JSON",
        &fetched.iter().map(|(_, f)| f).collect::<Vec<_>>(),
        opts,
    );
    info.counts = counts;
    let rdap = dir.rdap_dir();
    let mut files = Vec::new();
    for (kind, text) in checked {
        let path = rdap.join(kind.file_name());
        write_atomic(&path, |w| {
            w.write_all(text.as_bytes())
                .map_err(|e| Error::io("cannot write", &path, e))
        })?;
        files.push(path);
    }
    write_info(&rdap, &info)?;
    Ok(UpdateReport {
        dataset: Dataset::Rdap,
        files,
        info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn default_country_sources_are_this_and_last_month() {
        let now = Utc.with_ymd_and_hms(2026, 1, 15, 0, 0, 0).unwrap();
        let s = default_sources(Dataset::Country, now);
        assert!(s[0].ends_with("dbip-country-lite-2026-01.mmdb.gz"), "{s:?}");
        assert!(s[1].ends_with("dbip-country-lite-2025-12.mmdb.gz"), "{s:?}");
    }

    #[test]
    fn rdap_sources_expand_directories_and_name_files() {
        let s = rdap_sources("https://data.iana.org/rdap/").unwrap();
        assert_eq!(s.len(), 4);
        assert!(
            s.iter()
                .any(|(_, u)| u == "https://data.iana.org/rdap/ipv6.json")
        );
        let s = rdap_sources("/tmp/x/asn.json").unwrap();
        assert_eq!(s, vec![(BootstrapKind::Asn, "/tmp/x/asn.json".to_string())]);
        assert!(rdap_sources("/tmp/x/other.json").is_err());
    }

    #[test]
    fn datasets_parse_by_name() {
        assert_eq!("ASN".parse::<Dataset>().unwrap(), Dataset::Asn);
        assert!(matches!("geo".parse::<Dataset>(), Err(Error::Invalid(_))));
    }
}
