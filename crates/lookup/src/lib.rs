//! Vantage lookup tools: the IP calculator, MAC vendors, IP → ASN / prefix / country, WHOIS,
//! RDAP, reverse DNS and local ASN name overrides.
//!
//! The main decision: every lookup is a plain function or a method of [`Lookup`] returning a
//! serde type, so the CLI prints it, the server returns it as the JSON body, and trace hops and
//! flow enrichment reuse it. Offline data live in the data directory
//! (`vantage data update` writes there) and fall back to what is built in.

/// IP → ASN range tables.
pub mod asn;
/// IP → country (MMDB, built-in fallback).
pub mod country;
/// The data directory and atomic writes.
pub mod datadir;
/// The crate's error type.
mod error;
/// The IP calculator.
pub mod ipcalc;
/// MAC address vendors (IEEE OUI registries).
pub mod oui;
/// Local AS name overrides.
pub mod overrides;
/// RDAP client and bootstrap registries.
pub mod rdap;
/// Reverse DNS with a cache.
pub mod rdns;
/// Which addresses WHOIS and RDAP may connect to.
pub mod reach;
/// The `Lookup` service over a data directory.
mod service;
/// IANA special-purpose addresses and AS numbers.
pub mod special;

/// `vantage data update`: fetching and installing data sets.
pub mod update;
/// WHOIS client with referral following.
pub mod whois;

pub use datadir::{DataDir, DatasetInfo};
pub use error::{Error, ErrorKind, Result};
pub use service::{AsnInfo, DatasetStatus, IpInfo, Lookup, SourceRef, parse_ip};
