//! MAC address vendors from the IEEE registries: MA-L (24-bit OUI), MA-M (28-bit), MA-S
//! (36-bit), IAB (36-bit, the predecessor of MA-S) and CID (24-bit, locally administered).
//!
//! Decisions: the complete registry is built in (a gzip'd snapshot of the IEEE CSVs, decoded on
//! first use) so lookups work offline out of the box; `vantage data update oui` writes a fresher
//! IEEE CSV into the data directory, whose registries then replace the built-in ones of the same
//! name.
//! Lookups take the longest match first (MA-S, then MA-M, then MA-L), accept every common
//! notation in any case, and explain addresses that cannot have a vendor (locally administered,
//! multicast) instead of answering "not found". Vendor search is a case-insensitive substring
//! match and never dumps the table for an empty query.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The IEEE registry an assignment comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Registry {
    /// MA-L: 24-bit Organizationally Unique Identifier.
    #[serde(rename = "MA-L")]
    MaL,
    /// MA-M: 28-bit block.
    #[serde(rename = "MA-M")]
    MaM,
    /// MA-S: 36-bit block.
    #[serde(rename = "MA-S")]
    MaS,
    /// CID: 24-bit Company ID in locally administered space.
    #[serde(rename = "CID")]
    Cid,
    /// IAB: 36-bit Individual Address Block (closed to new assignments).
    #[serde(rename = "IAB")]
    Iab,
}

impl Registry {
    /// Every registry, in the order the IEEE lists them.
    pub const ALL: [Registry; 5] = [
        Registry::MaL,
        Registry::MaM,
        Registry::MaS,
        Registry::Cid,
        Registry::Iab,
    ];

    /// The IEEE's name ("MA-L" …).
    pub fn name(self) -> &'static str {
        match self {
            Registry::MaL => "MA-L",
            Registry::MaM => "MA-M",
            Registry::MaS => "MA-S",
            Registry::Cid => "CID",
            Registry::Iab => "IAB",
        }
    }

    /// Parses the IEEE's name, in any case.
    pub fn from_name(s: &str) -> Option<Self> {
        Registry::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Length of the assigned prefix in bits.
    pub fn bits(self) -> u8 {
        match self {
            Registry::MaL | Registry::Cid => 24,
            Registry::MaM => 28,
            Registry::MaS | Registry::Iab => 36,
        }
    }
}

/// One assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OuiEntry {
    /// The assigned prefix as the IEEE writes it: upper-case hex digits ("001A2B", "8C1F64AFA").
    pub assignment: String,
    /// The prefix in colon notation ("00:1A:2B", "8C:1F:64:AF:A").
    pub prefix: String,
    /// Prefix length in bits (24, 28 or 36).
    pub bits: u8,
    /// The registry.
    pub registry: Registry,
    /// The organisation the block is assigned to.
    pub organization: String,
    /// The organisation's address, when the source has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// A parsed MAC address or prefix: up to 16 hex digits (EUI-64), most significant first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac {
    value: u64,
    nibbles: u8,
}

impl Mac {
    /// Parses `00:1A:2B:3C:4D:5E`, `00-1a-2b-3c-4d-5e`, `001a.2b3c.4d5e`, `001A2B3C4D5E`,
    /// `0:1a:2b:3c:4d:5e` and prefixes of these (at least 6 hex digits), in any case.
    pub fn parse(input: &str) -> Result<Mac> {
        let s = input.trim();
        let bad = || {
            Error::Invalid(format!(
                "'{s}' is not a MAC address or prefix: use hex digits, e.g. 00:1A:2B:3C:4D:5E, 00-1a-2b, 001a.2b3c.4d5e or 001A2B"
            ))
        };
        let seps: HashSet<char> = s.chars().filter(|c| !c.is_ascii_hexdigit()).collect();
        let digits: String = match seps.len() {
            0 => s.to_string(),
            1 => {
                let sep = *seps.iter().next().ok_or_else(bad)?;
                let groups: Vec<&str> = s.split(sep).collect();
                let mut out = String::new();
                match sep {
                    ':' | '-' => {
                        for (i, g) in groups.iter().enumerate() {
                            let last_partial = i + 1 == groups.len() && groups.len() < 6;
                            match g.len() {
                                2 => out.push_str(g),
                                // A lone digit is an octet written without its leading zero,
                                // except as the last group of a prefix ("00:1A:2B:3" is 7 digits).
                                1 if last_partial => out.push_str(g),
                                1 => {
                                    out.push('0');
                                    out.push_str(g);
                                }
                                _ => return Err(bad()),
                            }
                        }
                    }
                    '.' => {
                        for (i, g) in groups.iter().enumerate() {
                            if g.is_empty() || g.len() > 4 || (g.len() < 4 && i + 1 != groups.len())
                            {
                                return Err(bad());
                            }
                            out.push_str(g);
                        }
                    }
                    _ => return Err(bad()),
                }
                out
            }
            _ => return Err(bad()),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        if digits.len() > 16 {
            return Err(Error::Invalid(format!(
                "'{s}' has {} hex digits; a MAC address has 12 (EUI-64: 16)",
                digits.len()
            )));
        }
        if digits.len() < 6 {
            return Err(Error::Invalid(format!(
                "'{s}' is too short: a vendor prefix has at least 6 hex digits (3 bytes)"
            )));
        }
        let value = u64::from_str_radix(&digits, 16).map_err(|_| bad())?;
        Ok(Mac {
            value,
            nibbles: digits.len() as u8,
        })
    }

    /// The first `bits` bits (a multiple of 4, at most the length given).
    fn prefix(self, bits: u8) -> Option<u64> {
        let have = u32::from(self.nibbles) * 4;
        (u32::from(bits) <= have).then(|| self.value >> (have - u32::from(bits)))
    }

    fn first_octet(self) -> u8 {
        (self.value >> (u32::from(self.nibbles) * 4 - 8)) as u8
    }

    /// The digits in colon notation, upper case ("00:1A:2B:3C:4D:5E").
    pub fn colon(self) -> String {
        colon(&format!(
            "{:0width$X}",
            self.value,
            width = self.nibbles as usize
        ))
    }

    /// Whether the address was given in full (12 or 16 hex digits).
    pub fn is_complete(self) -> bool {
        self.nibbles == 12 || self.nibbles == 16
    }
}

fn colon(hex: &str) -> String {
    hex.as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// The answer for one MAC address or prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OuiMatch {
    /// The input, normalised to colon notation.
    pub mac: String,
    /// The longest matching assignment, if any.
    pub entry: Option<OuiEntry>,
    /// The group (multicast) bit is set.
    pub multicast: bool,
    /// The locally administered bit is set.
    pub locally_administered: bool,
    /// An explanation when there is no vendor or the match needs a caveat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Where the matching entry came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The answer to a vendor-name search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OuiSearch {
    /// The search text.
    pub query: String,
    /// How many assignments matched in total.
    pub total: usize,
    /// The first matches (up to the limit), by organisation then prefix.
    pub entries: Vec<OuiEntry>,
}

/// Where a table's entries came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OuiSource {
    /// A phrase naming the source.
    pub origin: String,
    /// The registries taken from it.
    pub registries: Vec<Registry>,
    /// How many entries it contributed.
    pub entries: usize,
}

/// The vendor table: entries indexed by (prefix length, prefix).
#[derive(Debug, Clone)]
pub struct OuiTable {
    entries: Vec<OuiEntry>,
    origin: Vec<u8>,
    index: HashMap<(u8, u64), u32>,
    subdivided: HashSet<u64>,
    sources: Vec<OuiSource>,
}

/// What the built-in table is.
pub const BUILTIN_ORIGIN: &str = "built-in IEEE registry snapshot (as bundled by oui-data 0.2.4)";

/// The built-in snapshot: the IEEE CSV exports in one gzip'd CSV (`data/oui.csv.gz`, made by
/// `data/make-oui-snapshot.py`). One byte blob, decoded on first use, rather than a static table
/// of string pointers: such a table needs a load-time relocation per pointer, which every
/// `vantage` command would pay at start-up (over 150 000 relocations, about 5 ms).
const BUILTIN_CSV_GZ: &[u8] = include_bytes!("../data/oui.csv.gz");

impl OuiTable {
    /// The table bundled with the binary.
    pub fn builtin() -> OuiTable {
        let mut entries = read_ieee_csv(flate2::read::GzDecoder::new(BUILTIN_CSV_GZ), "built-in")
            .expect("the built-in IEEE snapshot is a valid IEEE CSV (checked by a unit test)");
        entries.sort_by(|a, b| (a.bits, &a.assignment).cmp(&(b.bits, &b.assignment)));
        let mut t = OuiTable::empty();
        t.add_source(entries, BUILTIN_ORIGIN.to_string());
        t
    }

    fn empty() -> OuiTable {
        OuiTable {
            entries: Vec::new(),
            origin: Vec::new(),
            index: HashMap::new(),
            subdivided: HashSet::new(),
            sources: Vec::new(),
        }
    }

    /// Builds a table from entries only (no built-in data).
    pub fn from_entries(entries: Vec<OuiEntry>, origin: String) -> OuiTable {
        let mut t = OuiTable::empty();
        t.add_source(entries, origin);
        t
    }

    /// This table with `entries` laid over it: every registry present in `entries` replaces the
    /// same registry here; the others stay.
    pub fn overlay(self, entries: Vec<OuiEntry>, origin: String) -> OuiTable {
        let replaced: HashSet<Registry> = entries.iter().map(|e| e.registry).collect();
        let mut t = OuiTable::empty();
        let mut kept: Vec<Vec<OuiEntry>> = vec![Vec::new(); self.sources.len()];
        for (e, o) in self.entries.into_iter().zip(self.origin) {
            if !replaced.contains(&e.registry) {
                kept[o as usize].push(e);
            }
        }
        for (src, es) in self.sources.into_iter().zip(kept) {
            if !es.is_empty() {
                t.add_source(es, src.origin);
            }
        }
        t.add_source(entries, origin);
        t
    }

    fn add_source(&mut self, entries: Vec<OuiEntry>, origin: String) {
        let o = self.sources.len() as u8;
        let mut registries = Vec::new();
        let mut added = 0;
        for e in entries {
            let Ok(value) = u64::from_str_radix(&e.assignment, 16) else {
                continue;
            };
            if self.index.contains_key(&(e.bits, value)) {
                continue;
            }
            if e.bits > 24 {
                self.subdivided.insert(value >> (e.bits - 24));
            }
            if !registries.contains(&e.registry) {
                registries.push(e.registry);
            }
            self.index
                .insert((e.bits, value), self.entries.len() as u32);
            self.entries.push(e);
            self.origin.push(o);
            added += 1;
        }
        registries.sort();
        self.sources.push(OuiSource {
            origin,
            registries,
            entries: added,
        });
    }

    /// Number of assignments.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where the entries came from.
    pub fn sources(&self) -> &[OuiSource] {
        &self.sources
    }

    /// The vendor of a MAC address or prefix (longest match first).
    pub fn lookup(&self, input: &str) -> Result<OuiMatch> {
        let mac = Mac::parse(input)?;
        let first = mac.first_octet();
        let multicast = first & 1 == 1;
        let local = first & 2 == 2;
        let mut found = None;
        for bits in [36u8, 28, 24] {
            let Some(p) = mac.prefix(bits) else { continue };
            // Assignments are made for the unicast form; a group address belongs to the
            // holder of the same prefix with the group bit clear.
            let shift = u32::from(bits) - 8;
            let p = p & !(1u64 << shift);
            if let Some(&i) = self.index.get(&(bits, p)) {
                found = Some(i as usize);
                break;
            }
        }
        let entry = found.map(|i| self.entries[i].clone());
        let source = found.map(|i| self.sources[self.origin[i] as usize].origin.clone());
        let note = note(mac, multicast, local, entry.as_ref(), |p| {
            self.subdivided.contains(&p)
        });
        Ok(OuiMatch {
            mac: mac.colon(),
            entry,
            multicast,
            locally_administered: local,
            note,
            source,
        })
    }

    /// Assignments whose organisation contains `query` (case-insensitive), at most `limit`.
    pub fn search(&self, query: &str, limit: usize) -> Result<OuiSearch> {
        let q = query.trim().to_lowercase();
        if q.is_empty() {
            return Err(Error::Invalid(
                "give part of a vendor name to search for (the whole table is not listed)".into(),
            ));
        }
        let mut hits: Vec<&OuiEntry> = self
            .entries
            .iter()
            .filter(|e| e.organization.to_lowercase().contains(&q))
            .collect();
        hits.sort_by(|a, b| {
            (a.organization.to_lowercase(), a.bits, &a.assignment).cmp(&(
                b.organization.to_lowercase(),
                b.bits,
                &b.assignment,
            ))
        });
        Ok(OuiSearch {
            query: query.trim().to_string(),
            total: hits.len(),
            entries: hits.into_iter().take(limit).cloned().collect(),
        })
    }

    /// Every entry (for writing the table out).
    pub fn entries(&self) -> &[OuiEntry] {
        &self.entries
    }
}

fn note(
    mac: Mac,
    multicast: bool,
    local: bool,
    entry: Option<&OuiEntry>,
    subdivided: impl Fn(u64) -> bool,
) -> Option<String> {
    let oui = mac.prefix(24).unwrap_or_default();
    if mac.value == u64::MAX >> (64 - u32::from(mac.nibbles) * 4) && mac.is_complete() {
        return Some("the broadcast address".into());
    }
    if mac.prefix(16) == Some(0x3333) {
        return Some("IPv6 multicast (RFC 2464): the last 32 bits are the group".into());
    }
    if oui == 0x01_00_5e {
        return Some("IPv4 multicast (RFC 1112): the last 23 bits are the group".into());
    }
    if oui == 0x01_80_c2 {
        return Some("IEEE 802.1 reserved group address (STP, LLDP, pause …)".into());
    }
    match entry {
        Some(e) if e.bits == 24 && subdivided(oui) && mac.nibbles * 4 < 36 => Some(format!(
            "{} is divided into smaller MA-M/MA-S blocks: give more digits to name the holder",
            e.prefix
        )),
        Some(_) => multicast.then(|| "a group (multicast) address of this vendor's block".into()),
        None if local => Some(
            "locally administered address (randomised or set by software): no vendor is registered for it"
                .into(),
        ),
        None if multicast => Some("a group (multicast) address with no registered vendor".into()),
        None => None,
    }
}

/// Builds an entry, normalising the assignment and organisation text.
pub fn entry(
    registry: Registry,
    assignment: &str,
    organization: &str,
    address: Option<&str>,
) -> Result<OuiEntry> {
    let hex: String = assignment
        .chars()
        .filter(|c| !matches!(c, '-' | ':' | '.' | ' '))
        .collect::<String>()
        .to_ascii_uppercase();
    let want = usize::from(registry.bits() / 4);
    if hex.len() != want || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Data(format!(
            "assignment '{assignment}' is not {want} hex digits as {} requires",
            registry.name()
        )));
    }
    let clean = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(OuiEntry {
        prefix: colon(&hex),
        assignment: hex,
        bits: registry.bits(),
        registry,
        organization: clean(organization),
        address: address.map(clean).filter(|a| !a.is_empty()),
    })
}

/// Reads the IEEE CSV format (`Registry,Assignment,Organization Name,Organization Address`),
/// as published at standards-oui.ieee.org (oui.csv, mam.csv, oui36.csv, cid.csv, iab.csv).
pub fn read_ieee_csv(input: impl Read, name: &str) -> Result<Vec<OuiEntry>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let headers = rdr
        .headers()
        .map_err(|e| Error::Data(format!("{name}: not an IEEE CSV file: {e}")))?
        .clone();
    let expected = ["registry", "assignment", "organization name"];
    let ok = headers.len() >= 3
        && expected
            .iter()
            .zip(headers.iter())
            .all(|(want, got)| got.trim().eq_ignore_ascii_case(want));
    if !ok {
        return Err(Error::Data(format!(
            "{name}: not an IEEE CSV file: the header must start with Registry,Assignment,Organization Name (found '{}')",
            headers.iter().collect::<Vec<_>>().join(",")
        )));
    }
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| Error::Data(format!("{name}, line {line}: {e}")))?;
        let field = |n: usize| rec.get(n).unwrap_or("").trim();
        let registry = Registry::from_name(field(0)).ok_or_else(|| {
            Error::Data(format!(
                "{name}, line {line}: unknown registry '{}' (expected MA-L, MA-M, MA-S, CID or IAB)",
                field(0)
            ))
        })?;
        let e = entry(registry, field(1), field(2), rec.get(3))
            .map_err(|e| Error::Data(format!("{name}, line {line}: {e}")))?;
        out.push(e);
    }
    if out.is_empty() {
        return Err(Error::Data(format!("{name}: no assignments in the file")));
    }
    Ok(out)
}

/// Writes entries in the IEEE CSV format.
pub fn write_ieee_csv(entries: &[OuiEntry], out: impl std::io::Write) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let err = |e: csv::Error| Error::Data(format!("cannot write the OUI table: {e}"));
    w.write_record([
        "Registry",
        "Assignment",
        "Organization Name",
        "Organization Address",
    ])
    .map_err(err)?;
    for e in entries {
        w.write_record([
            e.registry.name(),
            &e.assignment,
            &e.organization,
            e.address.as_deref().unwrap_or(""),
        ])
        .map_err(err)?;
    }
    w.flush()
        .map_err(|e| Error::Data(format!("cannot write the OUI table: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    const CSV: &str = "Registry,Assignment,Organization Name,Organization Address
MA-L,001A2B,Ayecom Technology Co.,\"No. 25, R&D Road, Hsinchu  TW 300 \"
MA-L,8C1F64,IEEE Registration Authority,445 Hoes Lane Piscataway NJ US 08554
MA-S,8C1F64AFA,\"DATA ELECTRONIC DEVICES, INC\",32 NORTHWESTERN DR SALEM NH US 03079
MA-M,C85CE27,SYNERGY SYSTEMS AND SOLUTIONS,Faridabad IN
MA-L,C85CE2,IEEE Registration Authority,Piscataway NJ US
";

    fn table() -> OuiTable {
        OuiTable::from_entries(read_ieee_csv(CSV.as_bytes(), "t").unwrap(), "test".into())
    }

    #[test_case("00:1A:2B:3C:4D:5E" ; "colons upper case")]
    #[test_case("00:1a:2b:3c:4d:5e" ; "colons lower case")]
    #[test_case("00-1A-2B-3C-4D-5E" ; "dashes")]
    #[test_case("001a.2b3c.4d5e" ; "cisco dots")]
    #[test_case("001A2B3C4D5E" ; "bare")]
    #[test_case("0:1a:2b:3c:4d:5e" ; "octet without leading zero")]
    #[test_case("00:1a:2b" ; "three octet prefix")]
    #[test_case("001a2b" ; "bare prefix")]
    #[test_case("  001A.2B  " ; "partial cisco group with spaces")]
    fn every_notation_finds_the_vendor(mac: &str) {
        let m = table().lookup(mac).unwrap();
        assert_eq!(m.entry.unwrap().organization, "Ayecom Technology Co.");
    }

    #[test]
    fn longest_match_wins() {
        let t = table();
        let m = t.lookup("8c:1f:64:af:a1:23").unwrap();
        assert_eq!(m.entry.as_ref().unwrap().registry, Registry::MaS);
        assert_eq!(
            m.entry.unwrap().organization,
            "DATA ELECTRONIC DEVICES, INC"
        );
        let m = t.lookup("C8:5C:E2:71:00:01").unwrap();
        assert_eq!(m.entry.unwrap().registry, Registry::MaM);
        // Same MA-L but outside the MA-S block: the parent, with a note for prefixes.
        let m = t.lookup("8c:1f:64:00:00:01").unwrap();
        assert_eq!(m.entry.unwrap().organization, "IEEE Registration Authority");
        let m = t.lookup("8c:1f:64").unwrap();
        assert!(m.note.unwrap().contains("give more digits"));
        let m = t.lookup("C8:5C:E2:7").unwrap();
        assert_eq!(m.entry.unwrap().registry, Registry::MaM);
    }

    #[test_case("00:1A" , "too short" ; "two octets")]
    #[test_case("00:1A:2B:3C:4D:5E:6F:70:81", "hex digits" ; "too long")]
    #[test_case("00:1A-2B", "not a MAC" ; "mixed separators")]
    #[test_case("00:1G:2B", "not a MAC" ; "not hex")]
    #[test_case("001:a2b:3c", "not a MAC" ; "three digit group")]
    #[test_case("", "not a MAC" ; "empty")]
    fn bad_macs_are_explained(mac: &str, phrase: &str) {
        let e = table().lookup(mac).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)));
        assert!(e.to_string().contains(phrase), "{e}");
    }

    #[test]
    fn local_and_group_addresses_are_explained() {
        let t = table();
        let m = t.lookup("02:00:00:12:34:56").unwrap();
        assert!(m.entry.is_none() && m.locally_administered);
        assert!(m.note.unwrap().contains("locally administered"));
        let m = t.lookup("01:1a:2b:00:00:01").unwrap();
        assert!(m.multicast);
        assert_eq!(m.entry.unwrap().organization, "Ayecom Technology Co.");
        let m = t.lookup("33:33:00:00:00:01").unwrap();
        assert!(m.note.unwrap().contains("IPv6 multicast"));
        let m = t.lookup("ff:ff:ff:ff:ff:ff").unwrap();
        assert_eq!(m.note.as_deref(), Some("the broadcast address"));
    }

    #[test]
    fn search_is_case_insensitive_and_refuses_empty_queries() {
        let t = table();
        let s = t.search("ieee registration", 10).unwrap();
        assert_eq!(s.total, 2);
        let s = t.search("AYECOM", 10).unwrap();
        assert_eq!(s.entries[0].assignment, "001A2B");
        assert!(t.search("  ", 10).is_err());
        assert_eq!(t.search("e", 1).unwrap().entries.len(), 1);
    }

    #[test]
    fn overlay_replaces_only_the_registries_it_carries() {
        let t = table();
        let fresh = vec![entry(Registry::MaL, "001A2B", "Renamed Vendor", None).unwrap()];
        let t = t.overlay(fresh, "fresh".into());
        let m = t.lookup("00:1a:2b:00:00:00").unwrap();
        assert_eq!(m.entry.unwrap().organization, "Renamed Vendor");
        assert_eq!(m.source.as_deref(), Some("fresh"));
        // MA-L entries not in the overlay are gone; MA-S and MA-M stay.
        assert!(t.lookup("8c:1f:64:00:00:01").unwrap().entry.is_none());
        assert!(t.lookup("8c:1f:64:af:a0:00").unwrap().entry.is_some());
    }

    #[test]
    fn csv_round_trips_and_rejects_other_files() {
        let entries = read_ieee_csv(CSV.as_bytes(), "t").unwrap();
        let mut out = Vec::new();
        write_ieee_csv(&entries, &mut out).unwrap();
        assert_eq!(read_ieee_csv(out.as_slice(), "t").unwrap(), entries);
        assert!(read_ieee_csv("a,b,c\n1,2,3\n".as_bytes(), "x").is_err());
        let bad = "Registry,Assignment,Organization Name\nMA-L,12345,X\n";
        let e = read_ieee_csv(bad.as_bytes(), "x").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn builtin_table_is_complete() {
        let t = OuiTable::builtin();
        // Every row of data/oui.csv.gz (59 015 assignments, see make-oui-snapshot.py) parsed.
        assert_eq!(t.len(), 59_015);
        let m = t.lookup("00:00:00:00:00:01").unwrap();
        assert_eq!(m.entry.unwrap().organization, "XEROX CORPORATION");
        let regs: HashSet<Registry> = t.entries().iter().map(|e| e.registry).collect();
        assert_eq!(regs.len(), 5);
    }
}
