//! The destination policy: which addresses a measurement may connect to.
//!
//! Agents run HTTP and DNS measurements for remote users, so they must not become a path into the
//! networks they sit in (server-side request forgery). The policy refuses every address that is
//! not globally reachable — loopback, RFC 1918, link-local, CGNAT, documentation, benchmarking,
//! multicast, reserved, ULA … — unless the spec asks for it *and* the host permits it.
//!
//! Main decisions:
//! - It is checked on the address actually connected, after DNS, and callers connect to exactly
//!   the address they checked (no second resolution, so no time-of-check/time-of-use gap).
//! - IPv6 is an allow list: only global unicast (2000::/3) can pass, minus its special-purpose
//!   blocks. Addresses that carry an IPv4 address (IPv4-mapped, the NAT64 well-known prefix,
//!   6to4) are judged by that IPv4 address, since that is where the packets end up.
//! - The special-purpose ranges follow the IANA IPv4 and IPv6 Special-Purpose Address
//!   Registries; blocks the registries mark globally reachable (PCP/TURN anycast, AS112, AMT)
//!   stay allowed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{Context, Error};

/// Why an address is not a global destination: the name of its range.
pub fn non_global_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

/// Whether `ip` is globally reachable (the policy lets it pass without permission).
pub fn is_global(ip: IpAddr) -> bool {
    non_global_reason(ip).is_none()
}

/// Checks `ip` against the policy. `spec_allows` is the spec's `allow_private`; the context says
/// whether this host permits it at all. The error sentence says what to change.
pub fn check(ip: IpAddr, spec_allows: bool, cx: &Context) -> Result<(), Error> {
    let Some(reason) = non_global_reason(ip) else {
        return Ok(());
    };
    if spec_allows && cx.allow_private {
        return Ok(());
    }
    let hint = if spec_allows {
        "this agent does not permit measurements towards non-global addresses".to_string()
    } else {
        "measurements towards non-global addresses are refused unless allowed \
         (allow_private, or --allow-private on the command line)"
            .to_string()
    };
    Err(Error::Blocked(format!("{ip} is {reason}; {hint}")))
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// IPv4 special-purpose blocks that are not globally reachable, most specific first.
const V4_BLOCKS: &[([u8; 4], u8, &str)] = &[
    ([0, 0, 0, 0], 8, "in 0.0.0.0/8 (\"this network\")"),
    ([10, 0, 0, 0], 8, "a private address (RFC 1918, 10.0.0.0/8)"),
    (
        [100, 64, 0, 0],
        10,
        "a carrier-grade NAT address (100.64.0.0/10)",
    ),
    ([127, 0, 0, 0], 8, "a loopback address (127.0.0.0/8)"),
    (
        [169, 254, 0, 0],
        16,
        "a link-local address (169.254.0.0/16)",
    ),
    (
        [172, 16, 0, 0],
        12,
        "a private address (RFC 1918, 172.16.0.0/12)",
    ),
    (
        [192, 0, 0, 0],
        24,
        "an IETF protocol assignment (192.0.0.0/24)",
    ),
    (
        [192, 0, 2, 0],
        24,
        "a documentation address (TEST-NET-1, 192.0.2.0/24)",
    ),
    (
        [192, 88, 99, 0],
        24,
        "the deprecated 6to4 relay anycast block (192.88.99.0/24)",
    ),
    (
        [192, 168, 0, 0],
        16,
        "a private address (RFC 1918, 192.168.0.0/16)",
    ),
    (
        [198, 18, 0, 0],
        15,
        "a benchmarking address (198.18.0.0/15)",
    ),
    (
        [198, 51, 100, 0],
        24,
        "a documentation address (TEST-NET-2, 198.51.100.0/24)",
    ),
    (
        [203, 0, 113, 0],
        24,
        "a documentation address (TEST-NET-3, 203.0.113.0/24)",
    ),
    ([224, 0, 0, 0], 4, "a multicast address (224.0.0.0/4)"),
    ([255, 255, 255, 255], 32, "the limited broadcast address"),
    ([240, 0, 0, 0], 4, "a reserved address (240.0.0.0/4)"),
];

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    // Globally reachable exceptions inside 192.0.0.0/24: PCP anycast and TURN anycast.
    if ip == Ipv4Addr::new(192, 0, 0, 9) || ip == Ipv4Addr::new(192, 0, 0, 10) {
        return None;
    }
    V4_BLOCKS
        .iter()
        .find(|(net, len, _)| in_v4(ip, *net, *len))
        .map(|&(_, _, why)| why)
}

/// Special-purpose blocks inside 2000::/3 that are not globally reachable, with the globally
/// reachable exceptions listed first in `V6_GLOBAL_EXCEPTIONS`.
const V6_BLOCKS: &[([u16; 8], u8, &str)] = &[
    (
        [0x2001, 0x2, 0, 0, 0, 0, 0, 0],
        48,
        "a benchmarking address (2001:2::/48)",
    ),
    (
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        32,
        "a Teredo address (2001::/32)",
    ),
    (
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "an IETF protocol assignment (2001::/23)",
    ),
    (
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        "a documentation address (2001:db8::/32)",
    ),
    (
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "a documentation address (3fff::/20)",
    ),
];

/// Globally reachable blocks inside 2001::/23 (IANA registry).
const V6_GLOBAL_EXCEPTIONS: &[([u16; 8], u8)] = &[
    ([0x2001, 0x1, 0, 0, 0, 0, 0, 0x1], 128),
    ([0x2001, 0x1, 0, 0, 0, 0, 0, 0x2], 128),
    ([0x2001, 0x1, 0, 0, 0, 0, 0, 0x3], 128),
    ([0x2001, 0x3, 0, 0, 0, 0, 0, 0], 32),
    ([0x2001, 0x4, 0x112, 0, 0, 0, 0, 0], 48),
    ([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28),
    ([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28),
];

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    // Addresses that carry an IPv4 destination are judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4).map(|_| "an IPv4-mapped address of a non-global IPv4 address");
    }
    if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        let v4 = Ipv4Addr::from(u128::from(ip) as u32);
        return v4_reason(v4)
            .map(|_| "a NAT64 address (64:ff9b::/96) of a non-global IPv4 address");
    }
    if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::from((u32::from(seg[1]) << 16) | u32::from(seg[2]));
        return v4_reason(v4).map(|_| "a 6to4 address (2002::/16) of a non-global IPv4 address");
    }
    if ip.is_loopback() {
        return Some("the IPv6 loopback address (::1)");
    }
    if ip.is_unspecified() {
        return Some("the unspecified IPv6 address (::)");
    }
    if seg[0] & 0xfe00 == 0xfc00 {
        return Some("a unique local address (ULA, fc00::/7)");
    }
    if seg[0] & 0xffc0 == 0xfe80 {
        return Some("a link-local address (fe80::/10)");
    }
    if seg[0] & 0xffc0 == 0xfec0 {
        return Some("a deprecated site-local address (fec0::/10)");
    }
    if seg[0] & 0xff00 == 0xff00 {
        return Some("a multicast address (ff00::/8)");
    }
    if seg[0] & 0xe000 != 0x2000 {
        return Some("outside IPv6 global unicast space (2000::/3)");
    }
    if V6_GLOBAL_EXCEPTIONS
        .iter()
        .any(|(net, len)| in_v6(ip, *net, *len))
    {
        return None;
    }
    V6_BLOCKS
        .iter()
        .find(|(net, len, _)| in_v6(ip, *net, *len))
        .map(|&(_, _, why)| why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("127.0.0.1", "loopback" ; "IPv4 loopback is refused")]
    #[test_case("127.255.0.9", "loopback" ; "all of 127/8 is loopback")]
    #[test_case("10.1.2.3", "RFC 1918" ; "10/8 is private")]
    #[test_case("172.16.0.1", "RFC 1918" ; "172.16/12 start is private")]
    #[test_case("172.31.255.255", "RFC 1918" ; "172.16/12 end is private")]
    #[test_case("192.168.1.1", "RFC 1918" ; "192.168/16 is private")]
    #[test_case("169.254.169.254", "link-local" ; "the cloud metadata address is link-local")]
    #[test_case("100.64.0.1", "carrier-grade" ; "CGNAT start is refused")]
    #[test_case("100.127.255.254", "carrier-grade" ; "CGNAT end is refused")]
    #[test_case("0.0.0.0", "this network" ; "the unspecified address is refused")]
    #[test_case("0.1.2.3", "this network" ; "0/8 is refused")]
    #[test_case("192.0.0.8", "IETF" ; "IETF protocol assignments are refused")]
    #[test_case("192.0.2.1", "TEST-NET-1" ; "TEST-NET-1 is refused")]
    #[test_case("198.51.100.7", "TEST-NET-2" ; "TEST-NET-2 is refused")]
    #[test_case("203.0.113.9", "TEST-NET-3" ; "TEST-NET-3 is refused")]
    #[test_case("198.18.0.1", "benchmarking" ; "benchmarking start is refused")]
    #[test_case("198.19.255.255", "benchmarking" ; "benchmarking end is refused")]
    #[test_case("224.0.0.1", "multicast" ; "IPv4 multicast is refused")]
    #[test_case("239.255.255.250", "multicast" ; "SSDP multicast is refused")]
    #[test_case("240.0.0.1", "reserved" ; "class E is refused")]
    #[test_case("255.255.255.255", "broadcast" ; "broadcast is refused")]
    #[test_case("::1", "loopback" ; "IPv6 loopback is refused")]
    #[test_case("::", "unspecified" ; "the IPv6 unspecified address is refused")]
    #[test_case("fc00::1", "ULA" ; "ULA fc00 is refused")]
    #[test_case("fd12:3456::1", "ULA" ; "ULA fd is refused")]
    #[test_case("fe80::1", "link-local" ; "IPv6 link-local is refused")]
    #[test_case("fec0::1", "site-local" ; "site-local is refused")]
    #[test_case("ff02::1", "multicast" ; "IPv6 multicast is refused")]
    #[test_case("::ffff:127.0.0.1", "IPv4-mapped" ; "a mapped loopback is refused")]
    #[test_case("::ffff:10.0.0.1", "IPv4-mapped" ; "a mapped private address is refused")]
    #[test_case("64:ff9b::a00:1", "NAT64" ; "NAT64 of a private address is refused")]
    #[test_case("64:ff9b::7f00:1", "NAT64" ; "NAT64 of loopback is refused")]
    #[test_case("64:ff9b:1::1", "global unicast" ; "local-use NAT64 is refused")]
    #[test_case("2002:c0a8:0101::1", "6to4" ; "6to4 of a private address is refused")]
    #[test_case("2001:db8::1", "documentation" ; "IPv6 documentation is refused")]
    #[test_case("3fff::1", "documentation" ; "the new IPv6 documentation block is refused")]
    #[test_case("2001:2::1", "benchmarking" ; "IPv6 benchmarking is refused")]
    #[test_case("2001:0:4136:e378::1", "Teredo" ; "Teredo is refused")]
    #[test_case("2001:10::1", "IETF" ; "ORCHID (deprecated) is refused")]
    #[test_case("100::1", "global unicast" ; "the discard prefix is refused")]
    #[test_case("::10.0.0.1", "global unicast" ; "IPv4-compatible addresses are refused")]
    #[test_case("5f00::1", "global unicast" ; "SRv6 SIDs are refused")]
    fn non_global_addresses_are_refused(ip: &str, why: &str) {
        let ip: IpAddr = ip.parse().unwrap();
        let reason = non_global_reason(ip).unwrap_or_else(|| panic!("{ip} passed"));
        assert!(reason.contains(why), "{ip}: {reason}");
    }

    #[test_case("1.1.1.1" ; "a public IPv4 address passes")]
    #[test_case("8.8.8.8" ; "another public IPv4 address passes")]
    #[test_case("100.63.255.255" ; "just below CGNAT passes")]
    #[test_case("100.128.0.0" ; "just above CGNAT passes")]
    #[test_case("172.15.255.255" ; "just below 172.16/12 passes")]
    #[test_case("172.32.0.0" ; "just above 172.16/12 passes")]
    #[test_case("192.0.0.9" ; "PCP anycast passes")]
    #[test_case("192.0.0.10" ; "TURN anycast passes")]
    #[test_case("198.17.255.255" ; "just below benchmarking passes")]
    #[test_case("223.255.255.255" ; "just below multicast passes")]
    #[test_case("2606:4700:4700::1111" ; "a public IPv6 address passes")]
    #[test_case("::ffff:1.1.1.1" ; "a mapped public address passes")]
    #[test_case("64:ff9b::101:101" ; "NAT64 of a public address passes")]
    #[test_case("2002:0101:0101::1" ; "6to4 of a public address passes")]
    #[test_case("2001:4:112::1" ; "AS112 inside 2001::/23 passes")]
    #[test_case("2001:3::1" ; "AMT inside 2001::/23 passes")]
    #[test_case("2001:200::1" ; "just above 2001::/23 passes")]
    fn global_addresses_pass(ip: &str) {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(non_global_reason(ip), None, "{ip}");
        assert!(is_global(ip));
    }

    #[test]
    fn private_destinations_need_both_the_spec_and_the_host() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let host_allows = Context::default();
        let host_forbids = Context {
            allow_private: false,
            ..Context::default()
        };
        assert!(check(loopback, true, &host_allows).is_ok());
        let e = check(loopback, false, &host_allows).unwrap_err();
        assert!(e.to_string().contains("--allow-private"), "{e}");
        assert!(e.to_string().starts_with("127.0.0.1 is a loopback"), "{e}");
        let e = check(loopback, true, &host_forbids).unwrap_err();
        assert!(e.to_string().contains("this agent does not permit"), "{e}");
        assert!(matches!(e, Error::Blocked(_)));
        let public: IpAddr = "1.1.1.1".parse().unwrap();
        assert!(check(public, false, &host_forbids).is_ok());
    }
}
