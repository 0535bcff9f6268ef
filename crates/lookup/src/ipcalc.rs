//! The IP calculator: one prefix described completely (IPv4 and IPv6), split into subnets,
//! a list summarised into the fewest prefixes, and containment / overlap between two prefixes.
//!
//! Decisions: host bits are allowed in the input (the address and its network are both
//! reported); /31 and /127 have two usable addresses (RFC 3021, RFC 6164) and /32 and /128 one;
//! in other IPv6 prefixes the first address is the Subnet-Router anycast address (RFC 4291
//! §2.6.1) and is not counted as usable — the same rules as Python's `ipaddress`, which the tests
//! use as the independent reference. Address counts are exact decimal strings because an IPv6
//! /0 holds 2^128 addresses, one more than a `u128` can.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv4Subnets, Ipv6Net, Ipv6Subnets};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::special::{Classification, classify};

/// Default cap on the number of subnets [`split`] produces.
pub const DEFAULT_MAX_SUBNETS: u64 = 65_536;

/// Everything about one prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpCalc {
    /// The address as given (host bits kept).
    pub address: IpAddr,
    /// 4 or 6.
    pub version: u8,
    /// The network the address belongs to, in CIDR notation.
    pub network: IpNet,
    /// Prefix length.
    pub prefix_len: u8,
    /// The netmask (dotted for IPv4, colon-hex for IPv6).
    pub netmask: IpAddr,
    /// The wildcard (host) mask, as ACLs write it.
    pub wildcard: IpAddr,
    /// The IPv4 broadcast address; absent for IPv6 and for /31 and /32 (RFC 3021).
    pub broadcast: Option<Ipv4Addr>,
    /// The first address of the prefix.
    pub first_address: IpAddr,
    /// The last address of the prefix.
    pub last_address: IpAddr,
    /// The first address a host can use.
    pub first_usable: IpAddr,
    /// The last address a host can use.
    pub last_usable: IpAddr,
    /// Number of addresses, exact, in decimal.
    pub addresses: String,
    /// Number of usable host addresses, exact, in decimal.
    pub usable: String,
    /// Number of host bits (`addresses` is 2 to this power).
    pub host_bits: u8,
    /// Whether the input had host bits set (the address is not the network address).
    pub host_bits_set: bool,
    /// What the IANA registries say about the address.
    pub classification: Classification,
}

/// Parses `ADDRESS`, `ADDRESS/LEN`, `ADDRESS/NETMASK` or `ADDRESS NETMASK` (IPv4 netmasks
/// must be contiguous). A bare address is a host prefix (/32 or /128).
pub fn parse(input: &str) -> Result<(IpAddr, u8)> {
    let s = input.trim();
    if s.is_empty() {
        return Err(Error::Invalid(
            "give an address or prefix, e.g. 192.0.2.0/24".into(),
        ));
    }
    let (addr, len) = match s.split_once(['/', ' ']) {
        Some((a, l)) => (a.trim(), Some(l.trim())),
        None => (s, None),
    };
    if addr.contains('%') {
        return Err(Error::Invalid(format!(
            "'{s}': zone identifiers (%…) are not part of an address; leave them out"
        )));
    }
    let ip: IpAddr = addr.parse().map_err(|_| {
        Error::Invalid(format!(
            "'{s}' is not an IP address or prefix (e.g. 192.0.2.0/24, 192.0.2.1/255.255.255.0 or 2001:db8::/32)"
        ))
    })?;
    let max = max_len(ip);
    let len = match len {
        None => max,
        Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u32 = l.parse().unwrap_or(u32::MAX);
            if n > u32::from(max) {
                return Err(Error::Invalid(format!(
                    "'{s}': prefix length /{l} is too long for IPv{} (at most /{max})",
                    version(ip)
                )));
            }
            n as u8
        }
        Some(l) => match (ip, l.parse::<IpAddr>()) {
            (IpAddr::V4(_), Ok(IpAddr::V4(mask))) => mask_len(u32::from(mask).into(), 32)
                .ok_or_else(|| {
                    Error::Invalid(format!("'{s}': netmask {mask} is not contiguous"))
                })?,
            (IpAddr::V6(_), Ok(IpAddr::V6(mask))) => {
                mask_len(u128::from(mask), 128).ok_or_else(|| {
                    Error::Invalid(format!("'{s}': netmask {mask} is not contiguous"))
                })?
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "'{s}': '{l}' is neither a prefix length nor a netmask of the same family"
                )));
            }
        },
    };
    Ok((ip, len))
}

/// Parses a prefix, keeping host bits out of the result (`10.0.0.5/24` → `10.0.0.0/24`).
pub fn parse_net(input: &str) -> Result<IpNet> {
    let (ip, len) = parse(input)?;
    Ok(net(ip, len).trunc())
}

/// Describes one prefix completely.
pub fn calc(input: &str) -> Result<IpCalc> {
    let (address, prefix_len) = parse(input)?;
    let n = net(address, prefix_len);
    let network = n.trunc();
    let host_bits = max_len(address) - prefix_len;
    let first = network.network();
    let last = network.broadcast();
    let (first_usable, last_usable, usable) = match address {
        IpAddr::V4(_) => match prefix_len {
            32 => (first, last, 1u128),
            31 => (first, last, 2),
            _ => (add(first, 1), add(last, -1), (1u128 << host_bits) - 2),
        },
        IpAddr::V6(_) => match prefix_len {
            128 => (first, last, 1u128),
            127 => (first, last, 2),
            0 => (add(first, 1), last, u128::MAX),
            _ => (add(first, 1), last, (1u128 << host_bits) - 1),
        },
    };
    let broadcast = match last {
        IpAddr::V4(b) if prefix_len < 31 => Some(b),
        _ => None,
    };
    Ok(IpCalc {
        address,
        version: version(address),
        network,
        prefix_len,
        netmask: network.netmask(),
        wildcard: network.hostmask(),
        broadcast,
        first_address: first,
        last_address: last,
        first_usable,
        last_usable,
        addresses: pow2(host_bits),
        usable: usable.to_string(),
        host_bits,
        host_bits_set: address != first,
        classification: classify(address),
    })
}

/// A prefix split into equal subnets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// The prefix that was split (host bits cleared).
    pub network: IpNet,
    /// The length of every subnet.
    pub subnet_len: u8,
    /// The subnets, in address order.
    pub subnets: Vec<IpNet>,
}

/// Splits `input` into subnets of length `subnet_len`, refusing to produce more than `max`.
pub fn split(input: &str, subnet_len: u8, max: u64) -> Result<Split> {
    let network = parse_net(input)?;
    let len = network.prefix_len();
    let limit = network.max_prefix_len();
    if subnet_len > limit {
        return Err(Error::Invalid(format!(
            "/{subnet_len} is too long for IPv{} (at most /{limit})",
            version(network.addr())
        )));
    }
    if subnet_len < len {
        return Err(Error::Invalid(format!(
            "cannot split {network} into /{subnet_len} subnets: they are larger than the prefix itself"
        )));
    }
    let extra = u32::from(subnet_len - len);
    let count = if extra >= 64 {
        None
    } else {
        Some(1u64 << extra)
    };
    match count {
        Some(c) if c <= max => {}
        _ => {
            return Err(Error::Invalid(format!(
                "splitting {network} into /{subnet_len} subnets gives {} of them; the limit is {max}",
                pow2(extra as u8)
            )));
        }
    }
    let subnets = network
        .subnets(subnet_len)
        .map_err(|_| Error::Invalid(format!("cannot split {network} into /{subnet_len}")))?
        .collect();
    Ok(Split {
        network,
        subnet_len,
        subnets,
    })
}

/// A list summarised into the fewest prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The fewest prefixes covering exactly the inputs, IPv4 first, in address order.
    pub prefixes: Vec<IpNet>,
    /// Notes about inputs that were adjusted (host bits cleared).
    pub notes: Vec<String>,
}

/// Summarises prefixes, addresses and `FIRST-LAST` ranges into the fewest prefixes covering
/// exactly the same addresses.
pub fn summarize<S: AsRef<str>>(inputs: &[S]) -> Result<Summary> {
    if inputs.is_empty() {
        return Err(Error::Invalid(
            "give at least one prefix to summarise".into(),
        ));
    }
    let mut nets = Vec::new();
    let mut notes = Vec::new();
    for item in inputs {
        let item = item.as_ref().trim();
        if let Some((a, b)) = item.split_once('-') {
            nets.extend(range_to_nets(item, a.trim(), b.trim())?);
            continue;
        }
        let (ip, len) = parse(item)?;
        let n = net(ip, len);
        if n.trunc() != n {
            notes.push(format!("{item} has host bits set; used {}", n.trunc()));
        }
        nets.push(n.trunc());
    }
    Ok(Summary {
        prefixes: IpNet::aggregate(&nets),
        notes,
    })
}

fn range_to_nets(item: &str, a: &str, b: &str) -> Result<Vec<IpNet>> {
    let bad = || {
        Error::Invalid(format!(
            "'{item}' is not a range: write FIRST-LAST with two addresses of the same family"
        ))
    };
    let (a, b): (IpAddr, IpAddr) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    let nets: Vec<IpNet> = match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => {
            Ipv4Subnets::new(a, b, 0).map(IpNet::V4).collect()
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => {
            Ipv6Subnets::new(a, b, 0).map(IpNet::V6).collect()
        }
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
            return Err(Error::Invalid(format!(
                "'{item}': the range ends before it starts"
            )));
        }
        _ => return Err(bad()),
    };
    Ok(nets)
}

/// How two prefixes relate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// The first prefix (host bits cleared).
    pub a: IpNet,
    /// The second prefix (host bits cleared).
    pub b: IpNet,
    /// Same network and length.
    pub equal: bool,
    /// Every address of `b` is in `a`.
    pub a_contains_b: bool,
    /// Every address of `a` is in `b`.
    pub b_contains_a: bool,
    /// They share at least one address (for prefixes: one contains the other).
    pub overlap: bool,
}

/// Compares two prefixes or addresses.
pub fn compare(a: &str, b: &str) -> Result<Comparison> {
    let (a, b) = (parse_net(a)?, parse_net(b)?);
    let a_contains_b = a.contains(&b);
    let b_contains_a = b.contains(&a);
    Ok(Comparison {
        a,
        b,
        equal: a == b,
        a_contains_b,
        b_contains_a,
        overlap: a_contains_b || b_contains_a,
    })
}

fn net(ip: IpAddr, len: u8) -> IpNet {
    // `len` was checked against the family's maximum by `parse`.
    match ip {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new_assert(a, len)),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new_assert(a, len)),
    }
}

fn max_len(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn version(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 4 } else { 6 }
}

/// The prefix length of a contiguous mask of `bits` bits (held in the low bits), or `None`.
fn mask_len(mask: u128, bits: u32) -> Option<u8> {
    let m = mask << (128 - bits);
    let ones = m.leading_ones();
    let expected = if ones == 0 {
        0
    } else {
        u128::MAX << (128 - ones)
    };
    (m == expected).then_some(ones as u8)
}

/// Adds a small signed offset to an address (the caller stays inside the prefix).
fn add(ip: IpAddr, d: i8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add_signed(d.into()))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add_signed(d.into()))),
    }
}

/// 2^k in decimal, exact for k up to 128.
pub fn pow2(k: u8) -> String {
    if k >= 128 {
        "340282366920938463463374607431768211456".to_string()
    } else {
        (1u128 << k).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("192.0.2.0/31", "192.0.2.0", "192.0.2.1", "2", None ; "slash 31 has two usable addresses")]
    #[test_case("192.0.2.7/32", "192.0.2.7", "192.0.2.7", "1", None ; "slash 32 is the host itself")]
    #[test_case("192.0.2.130/25", "192.0.2.129", "192.0.2.254", "126", Some("192.0.2.255") ; "host bits are allowed")]
    #[test_case("2001:db8::/127", "2001:db8::", "2001:db8::1", "2", None ; "slash 127 has two usable addresses")]
    #[test_case("2001:db8::5/128", "2001:db8::5", "2001:db8::5", "1", None ; "slash 128 is the host itself")]
    #[test_case("::/0", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "340282366920938463463374607431768211455", None ; "the whole ipv6 space")]
    fn usable_ranges(input: &str, first: &str, last: &str, usable: &str, bcast: Option<&str>) {
        let c = calc(input).unwrap();
        assert_eq!(c.first_usable.to_string(), first);
        assert_eq!(c.last_usable.to_string(), last);
        assert_eq!(c.usable, usable);
        assert_eq!(c.broadcast.map(|b| b.to_string()), bcast.map(String::from));
    }

    #[test]
    fn whole_ipv6_space_counts_two_to_the_128() {
        let c = calc("::/0").unwrap();
        assert_eq!(c.addresses, "340282366920938463463374607431768211456");
        assert_eq!(c.host_bits, 128);
    }

    #[test_case("10.1.2.3/255.255.0.0", "10.1.0.0/16" ; "dotted netmask after a slash")]
    #[test_case("10.1.2.3 255.255.255.252", "10.1.2.0/30" ; "dotted netmask after a space")]
    #[test_case("10.1.2.3/0.0.0.0", "0.0.0.0/0" ; "empty netmask")]
    #[test_case("2001:db8::1/ffff:ffff::", "2001:db8::/32" ; "ipv6 netmask")]
    #[test_case("192.0.2.9", "192.0.2.9/32" ; "bare address is a host prefix")]
    fn netmask_notations(input: &str, network: &str) {
        assert_eq!(calc(input).unwrap().network.to_string(), network);
    }

    #[test_case("10.0.0.0/33", "too long for IPv4" ; "v4 prefix too long")]
    #[test_case("2001:db8::/129", "too long for IPv6" ; "v6 prefix too long")]
    #[test_case("10.0.0.0/255.0.255.0", "not contiguous" ; "holes in the netmask")]
    #[test_case("10.0.0.256/24", "not an IP address" ; "octet out of range")]
    #[test_case("fe80::1%eth0/64", "zone identifiers" ; "zone id")]
    #[test_case("10.0.0.0/-1", "neither a prefix length" ; "negative length")]
    #[test_case("10.0.0.0/ffff::", "neither a prefix length" ; "mask of the other family")]
    #[test_case("", "give an address" ; "empty input")]
    fn bad_input_is_explained(input: &str, phrase: &str) {
        let e = calc(input).unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e:?}");
        assert!(e.to_string().contains(phrase), "{e}");
    }

    #[test]
    fn split_refuses_absurd_counts_and_bigger_subnets() {
        let e = split("10.0.0.0/8", 32, DEFAULT_MAX_SUBNETS).unwrap_err();
        assert!(e.to_string().contains("16777216"), "{e}");
        let e = split("2001:db8::/32", 128, DEFAULT_MAX_SUBNETS).unwrap_err();
        assert!(
            e.to_string().contains("79228162514264337593543950336"),
            "{e}"
        );
        assert!(split("10.0.0.0/24", 16, 10).is_err());
        let s = split("10.0.0.77/24", 26, 4).unwrap();
        let got: Vec<String> = s.subnets.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            got,
            [
                "10.0.0.0/26",
                "10.0.0.64/26",
                "10.0.0.128/26",
                "10.0.0.192/26"
            ]
        );
    }

    #[test]
    fn summarize_merges_prefixes_addresses_and_ranges() {
        let s = summarize(&[
            "192.0.2.0/25",
            "192.0.2.128/25",
            "198.51.100.5",
            "198.51.100.4",
            "10.0.0.1-10.0.0.6",
            "2001:db8::/33",
            "2001:db8:8000::/33",
        ])
        .unwrap();
        let got: Vec<String> = s.prefixes.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            got,
            [
                "10.0.0.1/32",
                "10.0.0.2/31",
                "10.0.0.4/31",
                "10.0.0.6/32",
                "192.0.2.0/24",
                "198.51.100.4/31",
                "2001:db8::/32"
            ]
        );
        let e = summarize(&["10.0.0.9-10.0.0.1"]).unwrap_err();
        assert!(e.to_string().contains("ends before it starts"));
        let e = summarize(&["10.0.0.1-2001:db8::1"]).unwrap_err();
        assert!(e.to_string().contains("same family"));
    }

    #[test]
    fn compare_reports_containment_and_overlap() {
        let c = compare("10.0.0.0/8", "10.1.2.0/24").unwrap();
        assert!(c.a_contains_b && !c.b_contains_a && c.overlap && !c.equal);
        let c = compare("10.0.0.0/24", "10.0.1.0/24").unwrap();
        assert!(!c.overlap);
        let c = compare("10.0.0.0/8", "2001:db8::/32").unwrap();
        assert!(!c.overlap);
        let c = compare("192.0.2.1", "192.0.2.0/24").unwrap();
        assert!(c.b_contains_a);
    }
}
