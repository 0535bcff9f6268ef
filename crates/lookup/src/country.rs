//! IP → country, from an MMDB file in the data directory, or from the RIR delegation data
//! built into the binary when there is none.
//!
//! Decisions: MMDB files are read with the `maxminddb` crate and decoded into a record that
//! accepts both common schemas — the flat `country_code` of the ip-location-db files and the
//! nested `country.iso_code` of MaxMind/DB-IP files — so any of the public country databases
//! works. The built-in fallback (`iptocc`, from the five RIRs' delegated statistics) answers the
//! country a block was *registered* in, which is said in the answer's source.

use std::net::IpAddr;
use std::path::Path;

use chrono::DateTime;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::datadir::DatasetInfo;
use crate::error::{Error, Result};

/// The source phrase of the built-in fallback.
pub const BUILTIN_SOURCE: &str =
    "built-in RIR delegated statistics (iptocc 1.4.175 crate): registration country";

/// The country of an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountryHit {
    /// ISO 3166-1 alpha-2 code, upper case.
    pub code: String,
    /// The database network holding the address (MMDB only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<IpNet>,
}

#[derive(Deserialize)]
struct Iso<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

/// The fields we read from an MMDB record (both common schemas).
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(borrow, default)]
    country: Option<Iso<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<Iso<'a>>,
}

enum Inner {
    Mmdb(maxminddb::Reader<Vec<u8>>),
    BuiltIn,
}

/// A country database.
pub struct CountryDb {
    inner: Inner,
    info: Option<DatasetInfo>,
    source: String,
}

impl std::fmt::Debug for CountryDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountryDb")
            .field("source", &self.source)
            .finish()
    }
}

impl CountryDb {
    /// The built-in fallback.
    pub fn builtin() -> CountryDb {
        CountryDb {
            inner: Inner::BuiltIn,
            info: None,
            source: BUILTIN_SOURCE.to_string(),
        }
    }

    /// Opens an MMDB file, checking that it can answer country questions.
    pub fn open(path: &Path, info: Option<DatasetInfo>) -> Result<CountryDb> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
        Self::from_bytes(bytes, &path.display().to_string(), info)
    }

    /// Reads an MMDB image, checking that it can answer country questions.
    pub fn from_bytes(bytes: Vec<u8>, name: &str, info: Option<DatasetInfo>) -> Result<CountryDb> {
        let reader = maxminddb::Reader::from_source(bytes)
            .map_err(|e| Error::Data(format!("{name} is not a usable MMDB file: {e}")))?;
        let m = reader.metadata();
        let built = DateTime::from_timestamp(m.build_epoch as i64, 0)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let source = format!("{} ({}, built {built})", name, m.database_type);
        let db = CountryDb {
            inner: Inner::Mmdb(reader),
            info,
            source,
        };
        // Decoding a known-populated address must not fail on the schema.
        for probe in ["8.8.8.8", "1.1.1.1", "2001:4860::1"] {
            db.lookup(probe.parse().unwrap_or(IpAddr::from([8, 8, 8, 8])))?;
        }
        Ok(db)
    }

    /// The country of `ip`, if the database knows it.
    pub fn lookup(&self, ip: IpAddr) -> Result<Option<CountryHit>> {
        match &self.inner {
            Inner::BuiltIn => Ok(iptocc::country_code(ip).map(|c| CountryHit {
                code: c.to_ascii_uppercase(),
                network: None,
            })),
            Inner::Mmdb(r) => {
                let err = |e: maxminddb::MaxMindDbError| {
                    Error::Data(format!("country database {}: {e}", self.source))
                };
                let res = match r.lookup(ip) {
                    Ok(res) => res,
                    // An IPv6 address in an IPv4-only database simply has no answer.
                    Err(maxminddb::MaxMindDbError::InvalidInput { .. }) => return Ok(None),
                    Err(e) => return Err(err(e)),
                };
                let Some(rec) = res.decode::<Record>().map_err(err)? else {
                    return Ok(None);
                };
                let code = rec
                    .country_code
                    .or(rec.country.and_then(|c| c.iso_code))
                    .or(rec.registered_country.and_then(|c| c.iso_code))
                    .filter(|c| !c.is_empty());
                let network = res
                    .network()
                    .ok()
                    .and_then(|n| IpNet::new(n.ip(), n.prefix()).ok());
                Ok(code.map(|c| CountryHit {
                    code: c.to_ascii_uppercase(),
                    network,
                }))
            }
        }
    }

    /// A phrase naming the source of the answers.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The data set description written by `data update`, if any.
    pub fn info(&self) -> Option<&DatasetInfo> {
        self.info.as_ref()
    }

    /// When the MMDB file was built (its metadata's build epoch).
    pub fn build_time(&self) -> Option<DateTime<chrono::Utc>> {
        match &self.inner {
            Inner::Mmdb(r) => DateTime::from_timestamp(r.metadata().build_epoch as i64, 0),
            Inner::BuiltIn => None,
        }
    }

    /// Whether this is the built-in fallback.
    pub fn is_builtin(&self) -> bool {
        matches!(self.inner, Inner::BuiltIn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Flat {
        country_code: &'static str,
    }

    #[derive(Serialize)]
    struct Nested {
        country: BTreeMap<&'static str, &'static str>,
    }

    fn flat_db() -> Vec<u8> {
        let mut w = mmdb_writer::Writer::new("test-flat-country");
        w.insert(
            "192.0.2.0/25".parse::<IpNet>().unwrap(),
            &Flat { country_code: "de" },
        )
        .unwrap();
        w.insert(
            "192.0.2.128/25".parse::<IpNet>().unwrap(),
            &Flat { country_code: "FR" },
        )
        .unwrap();
        w.insert(
            "2001:db8::/48".parse::<IpNet>().unwrap(),
            &Flat { country_code: "JP" },
        )
        .unwrap();
        w.to_bytes().unwrap()
    }

    #[test]
    fn flat_schema_with_range_boundaries() {
        let db = CountryDb::from_bytes(flat_db(), "flat.mmdb", None).unwrap();
        let code = |ip: &str| db.lookup(ip.parse().unwrap()).unwrap().map(|h| h.code);
        assert_eq!(code("192.0.2.0").as_deref(), Some("DE"));
        assert_eq!(code("192.0.2.127").as_deref(), Some("DE"));
        assert_eq!(code("192.0.2.128").as_deref(), Some("FR"));
        assert_eq!(code("192.0.2.255").as_deref(), Some("FR"));
        assert_eq!(code("192.0.3.0"), None);
        assert_eq!(code("2001:db8::1").as_deref(), Some("JP"));
        assert_eq!(code("2001:db8:1::1"), None);
        let hit = db.lookup("192.0.2.200".parse().unwrap()).unwrap().unwrap();
        assert_eq!(hit.network.unwrap().to_string(), "192.0.2.128/25");
        assert!(db.source().contains("test-flat-country"));
    }

    #[test]
    fn nested_schema() {
        let mut w = mmdb_writer::Writer::new("test-nested-country");
        let rec = Nested {
            country: [("iso_code", "NL")].into_iter().collect(),
        };
        w.insert("198.51.100.0/24".parse::<IpNet>().unwrap(), &rec)
            .unwrap();
        let db = CountryDb::from_bytes(w.to_bytes().unwrap(), "nested.mmdb", None).unwrap();
        let hit = db.lookup("198.51.100.9".parse().unwrap()).unwrap().unwrap();
        assert_eq!(hit.code, "NL");
    }

    #[test]
    fn garbage_is_refused() {
        let e = CountryDb::from_bytes(b"not an mmdb".to_vec(), "x.mmdb", None).unwrap_err();
        assert!(e.to_string().contains("not a usable MMDB file"), "{e}");
    }

    #[test]
    fn builtin_fallback_answers_registration_country() {
        let db = CountryDb::builtin();
        // 193.0.0.0/21 is the RIPE NCC's own block, registered in the Netherlands.
        assert_eq!(
            db.lookup("193.0.6.139".parse().unwrap())
                .unwrap()
                .unwrap()
                .code,
            "NL"
        );
        assert_eq!(db.lookup("10.0.0.1".parse().unwrap()).unwrap(), None);
    }
}
