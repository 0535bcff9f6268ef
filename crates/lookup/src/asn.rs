//! IP → AS number, AS name and covering prefix, from an offline range table.
//!
//! Decisions:
//! - The table is two packed, sorted arrays of non-overlapping ranges (IPv4 as `u32`, IPv6 as
//!   `u128`) with a parallel array of indexes into a sorted AS list whose names sit in one string
//!   blob. A lookup is one binary search (about 19 probes for a full table) with no allocation,
//!   which is what trace hops and flow enrichment need (well over a million lookups per second
//!   per core, see `bench/lookup-asn`).
//! - Inputs are the two common public formats: iptoasn TSV (`start end asn country name`) and
//!   ip-location-db CSV (`start,end,asn,name`, addresses as text or as integers), optionally
//!   gzip-compressed. Where input ranges overlap, the narrower range wins (longest-prefix-match
//!   semantics, as routing would), so a more specific announcement is never hidden.
//! - `vantage data update asn` converts the input once into a compact binary file
//!   (`lookup/asn.bin`, about 12 MB for a full table) that loads in milliseconds; every load
//!   checks the file's structure and ordering, so a damaged file is reported, never misread.
//! - The "covering prefix" reported is the largest CIDR block inside the data set's range that
//!   contains the address. Range tables built from routing data (RouteViews pfx2as) merge
//!   adjacent announcements of one AS, so this can be larger than the single announcement.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::datadir::DatasetInfo;
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"VNTGASN\x01";
const END: &[u8; 8] = b"VNTGEND\x01";

/// Parses an AS number: `AS15169`, `as15169`, `15169` or asdot `AS1.10` (= 65546).
pub fn parse_asn(input: &str) -> Result<u32> {
    let s = input.trim();
    let digits = s
        .strip_prefix("AS")
        .or_else(|| s.strip_prefix("as"))
        .or_else(|| s.strip_prefix("As"))
        .or_else(|| s.strip_prefix("aS"))
        .unwrap_or(s);
    let bad = || {
        Error::Invalid(format!(
            "'{s}' is not an AS number (e.g. AS64500, 64500 or asdot AS1.10)"
        ))
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let too_big = || {
        Error::Invalid(format!(
            "'{s}' is out of range: AS numbers end at 4294967295"
        ))
    };
    match digits.split_once('.') {
        None => digits.parse::<u32>().map_err(|_| too_big()),
        Some((hi, lo)) => {
            let hi: u16 = hi.parse().map_err(|_| bad())?;
            let lo: u16 = lo.parse().map_err(|_| bad())?;
            Ok((u32::from(hi) << 16) | u32::from(lo))
        }
    }
}

/// A key of one address family.
trait Key: Copy + Ord + std::fmt::Debug {
    fn succ(self) -> Self;
    fn pred(self) -> Self;
    fn span(a: Self, b: Self) -> u128;
}

impl Key for u32 {
    fn succ(self) -> Self {
        self + 1
    }
    fn pred(self) -> Self {
        self - 1
    }
    fn span(a: Self, b: Self) -> u128 {
        u128::from(b - a)
    }
}

impl Key for u128 {
    fn succ(self) -> Self {
        self + 1
    }
    fn pred(self) -> Self {
        self - 1
    }
    fn span(a: Self, b: Self) -> u128 {
        b - a
    }
}

/// Sorted, non-overlapping inclusive ranges of one family.
#[derive(Debug, Clone, Default)]
struct Ranges<K> {
    starts: Vec<K>,
    ends: Vec<K>,
    slot: Vec<u32>,
}

impl<K: Key> Ranges<K> {
    #[inline]
    fn find(&self, k: K) -> Option<usize> {
        let i = self.starts.partition_point(|&s| s <= k);
        if i == 0 {
            return None;
        }
        (k <= self.ends[i - 1]).then_some(i - 1)
    }

    fn from_sorted(v: Vec<(K, K, u32)>) -> Self {
        let mut r = Ranges {
            starts: Vec::with_capacity(v.len()),
            ends: Vec::with_capacity(v.len()),
            slot: Vec::with_capacity(v.len()),
        };
        for (s, e, a) in v {
            r.starts.push(s);
            r.ends.push(e);
            r.slot.push(a);
        }
        r
    }

    fn check(&self, slots: usize, what: &str) -> Result<()> {
        for i in 0..self.starts.len() {
            let ok = self.starts[i] <= self.ends[i]
                && (self.slot[i] as usize) < slots
                && (i == 0 || self.ends[i - 1] < self.starts[i]);
            if !ok {
                return Err(Error::Data(format!(
                    "{what} range {i} is out of order or points nowhere"
                )));
            }
        }
        Ok(())
    }
}

/// Resolves overlaps so that narrower ranges win, keeping everything else.
fn paint<K: Key>(mut v: Vec<(K, K, u32)>) -> Vec<(K, K, u32)> {
    v.sort_unstable_by_key(|r| (r.0, r.1));
    v.dedup();
    if v.windows(2).all(|w| w[0].1 < w[1].0) {
        return v;
    }
    v.sort_by(|a, b| {
        K::span(b.0, b.1)
            .cmp(&K::span(a.0, a.1))
            .then(a.0.cmp(&b.0))
    });
    let mut map: BTreeMap<K, (K, u32)> = BTreeMap::new();
    for (s, e, a) in v {
        let mut hit: Vec<K> = Vec::new();
        if let Some((&ks, &(ke, _))) = map.range(..s).next_back()
            && ke >= s
        {
            hit.push(ks);
        }
        hit.extend(map.range(s..=e).map(|(&k, _)| k));
        for ks in hit {
            if let Some((ke, ka)) = map.remove(&ks) {
                if ks < s {
                    map.insert(ks, (s.pred(), ka));
                }
                if ke > e {
                    map.insert(e.succ(), (ke, ka));
                }
            }
        }
        map.insert(s, (e, a));
    }
    map.into_iter().map(|(s, (e, a))| (s, e, a)).collect()
}

/// A range found by [`AsnTable::find`], borrowing from the table (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeRef<'a> {
    /// The AS number.
    pub asn: u32,
    /// The AS name from the data set ("" when it has none).
    pub name: &'a str,
    /// First address of the range.
    pub start: IpAddr,
    /// Last address of the range.
    pub end: IpAddr,
}

/// What the table says about one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsnHit {
    /// The AS number.
    pub asn: u32,
    /// The AS name from the data set.
    pub name: Option<String>,
    /// The largest CIDR block of the range that contains the address.
    pub prefix: IpNet,
    /// First address of the data set's range.
    pub range_start: IpAddr,
    /// Last address of the data set's range.
    pub range_end: IpAddr,
}

/// The ranges and address counts of one AS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsnRanges {
    /// Every range of the AS as the fewest CIDR prefixes, IPv4 then IPv6.
    pub prefixes: Vec<IpNet>,
    /// Number of IPv4 ranges in the data set.
    pub ipv4_ranges: usize,
    /// Number of IPv6 ranges in the data set.
    pub ipv6_ranges: usize,
    /// IPv4 addresses covered.
    pub ipv4_addresses: u64,
}

/// The IP → ASN table.
#[derive(Debug, Clone)]
pub struct AsnTable {
    v4: Ranges<u32>,
    /// `v4_index[h]`: how many IPv4 ranges start below `h << 16` (65 537 entries), so a lookup
    /// bisects only the ranges starting in its own /16.
    v4_index: Vec<u32>,
    v6: Ranges<u128>,
    asns: Vec<u32>,
    name_off: Vec<u32>,
    names: String,
    info: DatasetInfo,
}

impl AsnTable {
    /// Finds the range holding `ip` (IPv4-mapped IPv6 addresses are looked up as IPv4).
    #[inline]
    pub fn find(&self, ip: IpAddr) -> Option<RangeRef<'_>> {
        match ip {
            IpAddr::V4(a) => self.find_v4(a),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => self.find_v4(v4),
                None => {
                    let i = self.v6.find(u128::from(a))?;
                    let slot = self.v6.slot[i] as usize;
                    Some(RangeRef {
                        asn: self.asns[slot],
                        name: self.name_at(slot),
                        start: IpAddr::V6(Ipv6Addr::from(self.v6.starts[i])),
                        end: IpAddr::V6(Ipv6Addr::from(self.v6.ends[i])),
                    })
                }
            },
        }
    }

    /// The IPv4 range holding `x`, through the /16 index.
    #[inline]
    fn find_v4_index(&self, x: u32) -> Option<usize> {
        let h = (x >> 16) as usize;
        let (lo, hi) = (self.v4_index[h] as usize, self.v4_index[h + 1] as usize);
        let j = lo + self.v4.starts[lo..hi].partition_point(|&s| s <= x);
        if j == 0 {
            return None;
        }
        (x <= self.v4.ends[j - 1]).then_some(j - 1)
    }

    #[inline]
    fn find_v4(&self, a: Ipv4Addr) -> Option<RangeRef<'_>> {
        let i = self.find_v4_index(u32::from(a))?;
        let slot = self.v4.slot[i] as usize;
        Some(RangeRef {
            asn: self.asns[slot],
            name: self.name_at(slot),
            start: IpAddr::V4(Ipv4Addr::from(self.v4.starts[i])),
            end: IpAddr::V4(Ipv4Addr::from(self.v4.ends[i])),
        })
    }

    /// Only the AS number of `ip`: the cheapest lookup.
    #[inline]
    pub fn asn_of(&self, ip: IpAddr) -> Option<u32> {
        match ip {
            IpAddr::V4(a) => self
                .find_v4_index(u32::from(a))
                .map(|i| self.asns[self.v4.slot[i] as usize]),
            IpAddr::V6(_) => self.find(ip).map(|r| r.asn),
        }
    }

    /// The full answer for `ip`, with its covering prefix.
    pub fn lookup(&self, ip: IpAddr) -> Option<AsnHit> {
        let r = self.find(ip)?;
        let ip = match ip {
            IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        Some(AsnHit {
            asn: r.asn,
            name: (!r.name.is_empty()).then(|| r.name.to_string()),
            prefix: largest_block(ip, r.start, r.end),
            range_start: r.start,
            range_end: r.end,
        })
    }

    fn name_at(&self, slot: usize) -> &str {
        let (a, b) = (
            self.name_off[slot] as usize,
            self.name_off[slot + 1] as usize,
        );
        self.names.get(a..b).unwrap_or("")
    }

    /// The data set's name for an AS, if the AS appears in the table.
    pub fn name_of(&self, asn: u32) -> Option<&str> {
        let slot = self.asns.binary_search(&asn).ok()?;
        Some(self.name_at(slot)).filter(|n| !n.is_empty())
    }

    /// Whether the AS appears in the table.
    pub fn contains_asn(&self, asn: u32) -> bool {
        self.asns.binary_search(&asn).is_ok()
    }

    /// The ranges of one AS.
    pub fn ranges_of(&self, asn: u32) -> AsnRanges {
        let Ok(slot) = self.asns.binary_search(&asn) else {
            return AsnRanges {
                prefixes: Vec::new(),
                ipv4_ranges: 0,
                ipv6_ranges: 0,
                ipv4_addresses: 0,
            };
        };
        let slot = slot as u32;
        let mut nets = Vec::new();
        let (mut n4, mut n6, mut addrs) = (0, 0, 0u64);
        for i in (0..self.v4.slot.len()).filter(|&i| self.v4.slot[i] == slot) {
            let (s, e) = (
                Ipv4Addr::from(self.v4.starts[i]),
                Ipv4Addr::from(self.v4.ends[i]),
            );
            n4 += 1;
            addrs += u64::from(self.v4.ends[i] - self.v4.starts[i]) + 1;
            nets.extend(ipnet::Ipv4Subnets::new(s, e, 0).map(IpNet::V4));
        }
        for i in (0..self.v6.slot.len()).filter(|&i| self.v6.slot[i] == slot) {
            let (s, e) = (
                Ipv6Addr::from(self.v6.starts[i]),
                Ipv6Addr::from(self.v6.ends[i]),
            );
            n6 += 1;
            nets.extend(ipnet::Ipv6Subnets::new(s, e, 0).map(IpNet::V6));
        }
        AsnRanges {
            prefixes: IpNet::aggregate(&nets),
            ipv4_ranges: n4,
            ipv6_ranges: n6,
            ipv4_addresses: addrs,
        }
    }

    /// Where the table came from.
    pub fn info(&self) -> &DatasetInfo {
        &self.info
    }

    /// Number of (IPv4, IPv6) ranges.
    pub fn len(&self) -> (usize, usize) {
        (self.v4.starts.len(), self.v6.starts.len())
    }

    /// True when the table holds no range.
    pub fn is_empty(&self) -> bool {
        self.v4.starts.is_empty() && self.v6.starts.is_empty()
    }

    /// Number of distinct AS numbers.
    pub fn asn_count(&self) -> usize {
        self.asns.len()
    }

    /// Serialises the table in the compact binary format.
    pub fn write(&self, out: &mut dyn std::io::Write) -> Result<()> {
        let info = serde_json::to_vec(&self.info)
            .map_err(|e| Error::Data(format!("cannot encode the table description: {e}")))?;
        let mut b: Vec<u8> = Vec::with_capacity(
            64 + info.len()
                + self.names.len()
                + self.asns.len() * 8
                + self.v4.starts.len() * 12
                + self.v6.starts.len() * 36,
        );
        b.extend_from_slice(MAGIC);
        put_len(&mut b, info.len());
        b.extend_from_slice(&info);
        put_len(&mut b, self.asns.len());
        self.asns
            .iter()
            .for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
        self.name_off
            .iter()
            .for_each(|v| b.extend_from_slice(&v.to_le_bytes()));
        put_len(&mut b, self.names.len());
        b.extend_from_slice(self.names.as_bytes());
        put_len(&mut b, self.v4.starts.len());
        for v in [&self.v4.starts, &self.v4.ends, &self.v4.slot] {
            v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
        }
        put_len(&mut b, self.v6.starts.len());
        for v in [&self.v6.starts, &self.v6.ends] {
            v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
        }
        self.v6
            .slot
            .iter()
            .for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
        b.extend_from_slice(END);
        out.write_all(&b).map_err(|e| Error::Io {
            what: "cannot write the ASN table".into(),
            source: e,
        })
    }

    /// Reads a table written by [`AsnTable::write`], checking its structure.
    pub fn read(bytes: &[u8], name: &str) -> Result<AsnTable> {
        Self::read_from(bytes, name)
    }

    /// Reads a table from a stream, one array at a time (so loading needs little more memory
    /// than the table itself), checking its structure and ordering.
    pub fn read_from(input: impl Read, name: &str) -> Result<AsnTable> {
        let damaged = |why: &str| {
            Error::Data(format!(
                "{name} is damaged ({why}); run `vantage data update asn` again"
            ))
        };
        let mut c = Src(input);
        if c.take(8).ok_or_else(|| damaged("too short"))? != MAGIC {
            return Err(damaged("not a Vantage ASN table"));
        }
        let t = (|| -> Option<AsnTable> {
            let n = c.len()?;
            let info: DatasetInfo = serde_json::from_slice(&c.take(n)?).ok()?;
            let n_asn = c.len()?;
            let asns = c.u32s(n_asn)?;
            let name_off = c.u32s(n_asn + 1)?;
            let n = c.len()?;
            let names = String::from_utf8(c.take(n)?).ok()?;
            let n4 = c.len()?;
            let v4 = Ranges {
                starts: c.u32s(n4)?,
                ends: c.u32s(n4)?,
                slot: c.u32s(n4)?,
            };
            let n6 = c.len()?;
            let v6 = Ranges {
                starts: c.u128s(n6)?,
                ends: c.u128s(n6)?,
                slot: c.u32s(n6)?,
            };
            (c.take(8)? == END && c.at_end()).then_some(AsnTable {
                v4,
                v4_index: Vec::new(),
                v6,
                asns,
                name_off,
                names,
                info,
            })
        })()
        .ok_or_else(|| damaged("truncated or malformed"))?;
        let offsets_ok = t.asns.windows(2).all(|w| w[0] < w[1])
            && t.name_off.windows(2).all(|w| w[0] <= w[1])
            && t.name_off
                .last()
                .is_some_and(|&l| l as usize == t.names.len())
            && t.name_off
                .iter()
                .all(|&o| t.names.is_char_boundary(o as usize));
        if !offsets_ok {
            return Err(damaged("AS list out of order"));
        }
        t.v4.check(t.asns.len(), "IPv4")
            .map_err(|e| damaged(&e.to_string()))?;
        t.v6.check(t.asns.len(), "IPv6")
            .map_err(|e| damaged(&e.to_string()))?;
        Ok(t.indexed())
    }

    /// Builds the /16 index of the IPv4 ranges.
    fn indexed(mut self) -> AsnTable {
        let mut idx = Vec::with_capacity((1 << 16) + 1);
        let mut i = 0usize;
        for h in 0..=(1u64 << 16) {
            let bound = h << 16;
            while i < self.v4.starts.len() && u64::from(self.v4.starts[i]) < bound {
                i += 1;
            }
            idx.push(i as u32);
        }
        self.v4_index = idx;
        self
    }

    /// Loads the table from a file.
    pub fn load(path: &Path) -> Result<AsnTable> {
        let f = std::fs::File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
        AsnTable::read_from(
            std::io::BufReader::with_capacity(1 << 16, f),
            &path.display().to_string(),
        )
    }
}

fn put_len(b: &mut Vec<u8>, n: usize) {
    b.extend_from_slice(&(n as u32).to_le_bytes());
}

/// A reader of the binary format's pieces; `None` on a short or failed read.
struct Src<R>(R);

impl<R: Read> Src<R> {
    fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        // Grows with the data actually read, so a damaged length cannot allocate gigabytes.
        let mut v = Vec::new();
        (&mut self.0).take(n as u64).read_to_end(&mut v).ok()?;
        (v.len() == n).then_some(v)
    }
    fn len(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
    }
    fn u32s(&mut self, n: usize) -> Option<Vec<u32>> {
        let raw = self.take(n.checked_mul(4)?)?;
        Some(
            raw.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }
    fn u128s(&mut self, n: usize) -> Option<Vec<u128>> {
        let raw = self.take(n.checked_mul(16)?)?;
        Some(
            raw.chunks_exact(16)
                .map(|c| {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(c);
                    u128::from_le_bytes(a)
                })
                .collect(),
        )
    }
    fn at_end(&mut self) -> bool {
        let mut one = [0u8; 1];
        matches!(self.0.read(&mut one), Ok(0))
    }
}

/// The largest CIDR block inside `[start, end]` that contains `ip`.
fn largest_block(ip: IpAddr, start: IpAddr, end: IpAddr) -> IpNet {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    for len in 0..=max {
        if let Ok(n) = IpNet::new(ip, len) {
            let n = n.trunc();
            if n.network() >= start && n.broadcast() <= end {
                return n;
            }
        }
    }
    IpNet::from(ip)
}

/// Collects ranges and names, then builds an [`AsnTable`].
#[derive(Debug, Default)]
pub struct AsnTableBuilder {
    v4: Vec<(u32, u32, u32)>,
    v6: Vec<(u128, u128, u32)>,
    names: HashMap<u32, String>,
}

impl AsnTableBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one inclusive range. AS 0 (iptoasn's "not routed") is skipped.
    pub fn add(&mut self, start: IpAddr, end: IpAddr, asn: u32, name: &str) -> Result<()> {
        if asn == 0 {
            return Ok(());
        }
        match (start, end) {
            (IpAddr::V4(s), IpAddr::V4(e)) if s <= e => self.v4.push((s.into(), e.into(), asn)),
            (IpAddr::V6(s), IpAddr::V6(e)) if s <= e => self.v6.push((s.into(), e.into(), asn)),
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                return Err(Error::Data(format!(
                    "range {start}-{end} ends before it starts"
                )));
            }
            _ => {
                return Err(Error::Data(format!(
                    "range {start}-{end} mixes IPv4 and IPv6"
                )));
            }
        }
        let name = name.trim();
        if !name.is_empty() {
            self.names.entry(asn).or_insert_with(|| name.to_string());
        }
        Ok(())
    }

    /// Number of ranges added so far.
    pub fn ranges(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Resolves overlaps and builds the table.
    pub fn finish(self, mut info: DatasetInfo) -> AsnTable {
        let v4 = paint(self.v4);
        let v6 = paint(self.v6);
        let mut asns: Vec<u32> = v4
            .iter()
            .map(|r| r.2)
            .chain(v6.iter().map(|r| r.2))
            .collect();
        asns.sort_unstable();
        asns.dedup();
        let mut names = String::new();
        let mut name_off = Vec::with_capacity(asns.len() + 1);
        for a in &asns {
            name_off.push(names.len() as u32);
            names.push_str(self.names.get(a).map_or("", String::as_str));
        }
        name_off.push(names.len() as u32);
        let slot_of = |a: u32| asns.binary_search(&a).unwrap_or_default() as u32;
        let v4: Vec<_> = v4.into_iter().map(|(s, e, a)| (s, e, slot_of(a))).collect();
        let v6: Vec<_> = v6.into_iter().map(|(s, e, a)| (s, e, slot_of(a))).collect();
        info.counts.insert("ipv4_ranges".into(), v4.len() as u64);
        info.counts.insert("ipv6_ranges".into(), v6.len() as u64);
        info.counts.insert("asns".into(), asns.len() as u64);
        AsnTable {
            v4: Ranges::from_sorted(v4),
            v4_index: Vec::new(),
            v6: Ranges::from_sorted(v6),
            asns,
            name_off,
            names,
            info,
        }
        .indexed()
    }
}

/// The input formats of IP → ASN range files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeFormat {
    /// ip-location-db CSV: `start,end,asn,name` (addresses as text or integers).
    IpLocationDb,
    /// iptoasn.com TSV: `start end asn country description`.
    IpToAsn,
}

impl RangeFormat {
    /// A phrase naming the format.
    pub fn name(self) -> &'static str {
        match self {
            RangeFormat::IpLocationDb => "ip-location-db CSV",
            RangeFormat::IpToAsn => "iptoasn TSV",
        }
    }
}

/// Reads one range file into `builder`, detecting its format. `name` is used in messages and,
/// for integer-address CSVs, to tell IPv6 files (whose name contains "v6") from IPv4 ones.
pub fn read_ranges(
    mut input: impl BufRead,
    name: &str,
    builder: &mut AsnTableBuilder,
) -> Result<RangeFormat> {
    let head = input
        .fill_buf()
        .map_err(|e| Error::Data(format!("{name}: cannot read: {e}")))?;
    let first_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let format = if first_line.contains(&b'\t') {
        RangeFormat::IpToAsn
    } else {
        RangeFormat::IpLocationDb
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(if format == RangeFormat::IpToAsn {
            b'\t'
        } else {
            b','
        })
        .quoting(format == RangeFormat::IpLocationDb)
        .from_reader(input);
    let file_name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let v6_hint = file_name.to_ascii_lowercase().contains("v6");
    let mut rec = csv::StringRecord::new();
    let mut line = 0u64;
    let before = builder.ranges();
    loop {
        let more = rdr
            .read_record(&mut rec)
            .map_err(|e| Error::Data(format!("{name}: {e}")))?;
        if !more {
            break;
        }
        line = rec.position().map_or(line + 1, |p| p.line());
        let field = |i: usize| rec.get(i).unwrap_or("").trim();
        if rec.len() == 1 && field(0).is_empty() {
            continue;
        }
        let at = |msg: String| Error::Data(format!("{name}, line {line}: {msg}"));
        let start = parse_addr(field(0), v6_hint);
        if start.is_none() && line == 1 {
            continue; // a header line
        }
        let start = start.ok_or_else(|| at(format!("'{}' is not an address", field(0))))?;
        let end = parse_addr(field(1), v6_hint)
            .ok_or_else(|| at(format!("'{}' is not an address", field(1))))?;
        let asn =
            parse_asn(field(2)).map_err(|_| at(format!("'{}' is not an AS number", field(2))))?;
        let name_field = match format {
            RangeFormat::IpToAsn => field(4),
            RangeFormat::IpLocationDb => field(3),
        };
        let name_field = if format == RangeFormat::IpToAsn && name_field == "Not routed" {
            ""
        } else {
            name_field
        };
        builder
            .add(start, end, asn, name_field)
            .map_err(|e| at(e.to_string()))?;
    }
    if builder.ranges() == before && line == 0 {
        return Err(Error::Data(format!("{name}: the file is empty")));
    }
    Ok(format)
}

fn parse_addr(s: &str, v6_hint: bool) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if v6_hint {
        s.parse::<u128>()
            .ok()
            .map(|v| IpAddr::V6(Ipv6Addr::from(v)))
    } else {
        s.parse::<u32>().ok().map(|v| IpAddr::V4(Ipv4Addr::from(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    fn info() -> DatasetInfo {
        DatasetInfo {
            dataset: "asn".into(),
            format: "test".into(),
            sources: vec![],
            updated_at: chrono::Utc::now(),
            data_date: None,
            licence: None,
            attribution: None,
            counts: Default::default(),
        }
    }

    fn table(csv: &str, name: &str) -> AsnTable {
        let mut b = AsnTableBuilder::new();
        read_ranges(csv.as_bytes(), name, &mut b).unwrap();
        b.finish(info())
    }

    const CSV: &str = "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"
8.8.8.0,8.8.8.255,15169,Google LLC
10.0.0.0,10.255.255.255,64512,
2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,64500,Documentation Net
";

    #[test_case("1.0.0.0", Some(13335) ; "first address of a range")]
    #[test_case("1.0.0.255", Some(13335) ; "last address of a range")]
    #[test_case("0.255.255.255", None ; "just before a range")]
    #[test_case("1.0.1.0", None ; "just after a range")]
    #[test_case("8.8.8.8", Some(15169) ; "inside a range")]
    #[test_case("255.255.255.255", None ; "after the last range")]
    #[test_case("0.0.0.0", None ; "before the first range")]
    #[test_case("2001:db8::1", Some(64500) ; "ipv6 range")]
    #[test_case("2001:db9::", None ; "just after the ipv6 range")]
    #[test_case("::ffff:8.8.8.8", Some(15169) ; "ipv4 mapped is looked up as ipv4")]
    fn range_boundaries(ip: &str, asn: Option<u32>) {
        let t = table(CSV, "asn.csv");
        assert_eq!(t.asn_of(ip.parse().unwrap()), asn);
        assert_eq!(t.find(ip.parse().unwrap()).map(|r| r.asn), asn);
    }

    #[test]
    fn names_and_prefixes() {
        let t = table(CSV, "asn.csv");
        let h = t.lookup("1.0.0.7".parse().unwrap()).unwrap();
        assert_eq!(h.name.as_deref(), Some("Cloudflare, Inc."));
        assert_eq!(h.prefix.to_string(), "1.0.0.0/24");
        assert_eq!(t.lookup("10.1.1.1".parse().unwrap()).unwrap().name, None);
        assert_eq!(t.name_of(15169), Some("Google LLC"));
        assert_eq!(t.name_of(1), None);
        let h = t.lookup("2001:db8::1".parse().unwrap()).unwrap();
        assert_eq!(h.prefix.to_string(), "2001:db8::/32");
    }

    #[test]
    fn covering_prefix_of_an_unaligned_range() {
        let t = table("192.0.2.10,192.0.2.40,64496,X\n", "a.csv");
        // 192.0.2.10-40 = .10/31 .12/30 .16/28 .32/29 .40/32
        let p = |ip: &str| t.lookup(ip.parse().unwrap()).unwrap().prefix.to_string();
        assert_eq!(p("192.0.2.10"), "192.0.2.10/31");
        assert_eq!(p("192.0.2.20"), "192.0.2.16/28");
        assert_eq!(p("192.0.2.40"), "192.0.2.40/32");
    }

    #[test]
    fn narrower_overlapping_ranges_win() {
        let t = table(
            "10.0.0.0,10.0.255.255,1,Wide\n10.0.1.0,10.0.1.255,2,Narrow\n10.0.1.128,10.0.1.191,3,Narrowest\n",
            "o.csv",
        );
        let asn = |ip: &str| t.asn_of(ip.parse().unwrap());
        assert_eq!(asn("10.0.0.255"), Some(1));
        assert_eq!(asn("10.0.1.0"), Some(2));
        assert_eq!(asn("10.0.1.127"), Some(2));
        assert_eq!(asn("10.0.1.128"), Some(3));
        assert_eq!(asn("10.0.1.191"), Some(3));
        assert_eq!(asn("10.0.1.192"), Some(2));
        assert_eq!(asn("10.0.2.0"), Some(1));
        assert_eq!(asn("10.0.255.255"), Some(1));
        assert_eq!(t.len(), (5, 0));
    }

    #[test]
    fn iptoasn_tsv_and_integer_csv_are_read() {
        let tsv = "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n1.0.1.0\t1.0.3.255\t0\tNone\tNot routed\n2001:200::\t2001:200:ffff:ffff:ffff:ffff:ffff:ffff\t2500\tJP\tWIDE-BB\n";
        let mut b = AsnTableBuilder::new();
        assert_eq!(
            read_ranges(tsv.as_bytes(), "ip2asn-combined.tsv", &mut b).unwrap(),
            RangeFormat::IpToAsn
        );
        let t = b.finish(info());
        assert_eq!(
            t.asn_of("1.0.2.1".parse().unwrap()),
            None,
            "AS0 rows are unrouted space"
        );
        assert_eq!(
            t.lookup("2001:200::1".parse().unwrap())
                .unwrap()
                .name
                .as_deref(),
            Some("WIDE-BB")
        );
        let t = table("16777216,16777471,13335,Cloudflare\n", "asn-ipv4-num.csv");
        assert_eq!(t.asn_of("1.0.0.1".parse().unwrap()), Some(13335));
        let t = table(
            "42540766411282592856903984951653826560,42540766411282592875350729025363378175,64500,Doc\n",
            "asn-ipv6-num.csv",
        );
        assert_eq!(t.asn_of("2001:db8::1".parse().unwrap()), Some(64500));
    }

    #[test]
    fn bad_lines_name_the_line() {
        let mut b = AsnTableBuilder::new();
        let e = read_ranges(
            "1.0.0.0,1.0.0.255,13335,A\n1.0.1.0,banana,1,B\n".as_bytes(),
            "x.csv",
            &mut b,
        )
        .unwrap_err();
        assert!(e.to_string().contains("x.csv, line 2"), "{e}");
        let mut b = AsnTableBuilder::new();
        let e = read_ranges("1.0.0.9,1.0.0.1,13335,A\n".as_bytes(), "x.csv", &mut b).unwrap_err();
        assert!(e.to_string().contains("ends before it starts"), "{e}");
        let mut b = AsnTableBuilder::new();
        let e =
            read_ranges("1.0.0.0,2001:db8::,13335,A\n".as_bytes(), "x.csv", &mut b).unwrap_err();
        assert!(e.to_string().contains("mixes"), "{e}");
    }

    #[test]
    fn binary_format_round_trips_and_detects_damage() {
        let t = table(CSV, "asn.csv");
        let mut bytes = Vec::new();
        t.write(&mut bytes).unwrap();
        let back = AsnTable::read(&bytes, "asn.bin").unwrap();
        for ip in ["1.0.0.0", "8.8.8.8", "2001:db8::1", "9.9.9.9"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(back.lookup(ip), t.lookup(ip));
        }
        assert_eq!(back.info(), t.info());
        let e = AsnTable::read(&bytes[..bytes.len() - 3], "asn.bin").unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
        // Swap two IPv4 starts: the ordering check must catch it.
        let mut bad = bytes.clone();
        let pos = bad
            .windows(4)
            .position(|w| w == u32::from(Ipv4Addr::new(8, 8, 8, 0)).to_le_bytes())
            .unwrap();
        bad[pos..pos + 4].copy_from_slice(&0u32.to_le_bytes());
        let e = AsnTable::read(&bad, "asn.bin").unwrap_err();
        assert!(e.to_string().contains("out of order"), "{e}");
        assert!(AsnTable::read(b"hello", "asn.bin").is_err());
    }

    #[test]
    fn the_slash16_index_agrees_with_plain_bisection() {
        // Ranges inside one /16, across /16 boundaries, at both ends of the space.
        let t = table(
            "0.0.0.0,0.0.0.255,1,A\n10.0.255.0,10.2.0.255,2,B\n10.2.1.0,10.2.1.0,3,C\n\
             10.2.1.2,10.2.255.255,4,D\n100.0.0.0,100.255.255.255,5,E\n255.255.255.0,255.255.255.255,6,F\n",
            "i.csv",
        );
        let mut probes: Vec<u32> = vec![0, 255, 256, u32::MAX, u32::MAX - 255, u32::MAX - 256];
        for s in &t.v4.starts {
            probes.extend([s.wrapping_sub(1), *s, s.wrapping_add(1)]);
        }
        for e in &t.v4.ends {
            probes.extend([e.wrapping_sub(1), *e, e.wrapping_add(1)]);
        }
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            probes.push(x);
        }
        for p in probes {
            assert_eq!(t.find_v4_index(p), t.v4.find(p), "{}", Ipv4Addr::from(p));
        }
    }

    #[test]
    fn ranges_of_an_asn() {
        let t = table(
            "1.0.0.0,1.0.0.255,1,A\n1.0.1.0,1.0.1.255,1,A\n1.0.3.0,1.0.3.255,1,A\n2001:db8::,2001:db8::ffff,1,A\n",
            "a.csv",
        );
        let r = t.ranges_of(1);
        let got: Vec<String> = r.prefixes.iter().map(|p| p.to_string()).collect();
        assert_eq!(got, ["1.0.0.0/23", "1.0.3.0/24", "2001:db8::/112"]);
        assert_eq!(
            (r.ipv4_ranges, r.ipv6_ranges, r.ipv4_addresses),
            (3, 1, 768)
        );
        assert!(t.ranges_of(2).prefixes.is_empty());
    }

    #[test_case("AS15169", 15169 ; "upper prefix")]
    #[test_case("as15169", 15169 ; "lower prefix")]
    #[test_case("15169", 15169 ; "bare")]
    #[test_case("AS1.10", 65546 ; "asdot")]
    #[test_case("4294967295", u32::MAX ; "largest")]
    fn asn_notations(s: &str, want: u32) {
        assert_eq!(parse_asn(s).unwrap(), want);
    }

    #[test_case("AS" ; "no digits")]
    #[test_case("4294967296" ; "too large")]
    #[test_case("AS-1" ; "negative")]
    #[test_case("AS1.70000" ; "asdot low part too large")]
    fn bad_asns(s: &str) {
        assert!(matches!(parse_asn(s), Err(Error::Invalid(_))));
    }
}
