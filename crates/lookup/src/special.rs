//! Special-purpose addresses and AS numbers, from the IANA registries (IPv4 and IPv6
//! Special-Purpose Address Registries, the IPv4 multicast registry, the IPv6 address space and
//! the Special-Purpose AS Numbers registry).
//!
//! Every lookup that meets such an address answers with what it is — "RFC 1918 / private
//! network" — instead of an error or a silent miss (the old tools either failed or said
//! nothing). The most specific registry block wins (192.0.0.9/32 inside 192.0.0.0/24). IPv6
//! addresses that carry an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo) also report it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// What kind of address this is, coarsely. `global` means no special-purpose block applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressClass {
    /// Ordinary global unicast space.
    Global,
    /// RFC 1918 private-use space.
    Private,
    /// RFC 6598 shared address space (carrier-grade NAT).
    Shared,
    /// Loopback (127/8, ::1).
    Loopback,
    /// Link-local (169.254/16, fe80::/10).
    LinkLocal,
    /// Multicast (224/4, ff00::/8).
    Multicast,
    /// Documentation prefixes (TEST-NETs, 2001:db8::/32, 3fff::/20).
    Documentation,
    /// Benchmarking (198.18/15, 2001:2::/48).
    Benchmarking,
    /// Reserved for future use or by the IETF.
    Reserved,
    /// The unspecified address (0.0.0.0, ::).
    Unspecified,
    /// "This network" (0/8).
    ThisNetwork,
    /// The limited broadcast address 255.255.255.255.
    Broadcast,
    /// IETF protocol assignments (192.0.0.0/24, 2001::/23 and the anycast, AS112, AMT, ORCHID
    /// blocks inside them).
    ProtocolAssignment,
    /// IPv6 unique local addresses (fc00::/7).
    UniqueLocal,
    /// Deprecated IPv6 site-local addresses (fec0::/10).
    SiteLocal,
    /// 6to4 (2002::/16), with the embedded IPv4 address.
    SixToFour,
    /// Teredo (2001::/32), with server and client IPv4 addresses.
    Teredo,
    /// IPv4-mapped IPv6 addresses (::ffff:0:0/96).
    Ipv4Mapped,
    /// Deprecated IPv4-compatible IPv6 addresses (::/96).
    Ipv4Compatible,
    /// NAT64 translation prefixes (64:ff9b::/96, 64:ff9b:1::/48).
    Nat64,
    /// The IPv6 discard-only prefix (100::/64).
    Discard,
    /// SRv6 segment identifiers (5f00::/16).
    SegmentRouting,
}

/// What the IANA registries say about an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    /// The coarse class.
    pub class: AddressClass,
    /// A short phrase for people, e.g. "RFC 1918 / private network".
    pub label: String,
    /// The registry's name for the block, e.g. "Private-Use".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_name: Option<String>,
    /// The registry block the address falls in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<IpNet>,
    /// The defining RFC(s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rfc: Option<String>,
    /// The registry's "globally reachable" column; `None` where it says N/A.
    pub globally_reachable: Option<bool>,
    /// The IPv4 address carried inside an IPv6 address (mapped, NAT64, 6to4, compatible).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedded_ipv4: Option<Ipv4Addr>,
    /// Teredo server, client address and port (RFC 4380 §4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teredo: Option<Teredo>,
}

/// The parts of a Teredo address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Teredo {
    /// The Teredo server's IPv4 address.
    pub server: Ipv4Addr,
    /// The client's public (mapped) IPv4 address.
    pub client: Ipv4Addr,
    /// The client's public (mapped) UDP port.
    pub port: u16,
}

impl Classification {
    /// True unless the address is ordinary global unicast.
    pub fn is_special(&self) -> bool {
        self.class != AddressClass::Global
    }
}

/// One registry row: block, class, registry name, RFC, globally reachable, label.
type Row = (
    &'static str,
    AddressClass,
    &'static str,
    &'static str,
    Option<bool>,
    &'static str,
);

use AddressClass as C;

#[rustfmt::skip]
const V4: &[Row] = &[
    ("0.0.0.0/8", C::ThisNetwork, "\"This network\"", "RFC 791", Some(false), "RFC 791 / \"this network\""),
    ("0.0.0.0/32", C::Unspecified, "\"This host on this network\"", "RFC 1122", Some(false), "unspecified address"),
    ("10.0.0.0/8", C::Private, "Private-Use", "RFC 1918", Some(false), "RFC 1918 / private network"),
    ("100.64.0.0/10", C::Shared, "Shared Address Space", "RFC 6598", Some(false), "RFC 6598 / shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", C::Loopback, "Loopback", "RFC 1122", Some(false), "loopback"),
    ("169.254.0.0/16", C::LinkLocal, "Link Local", "RFC 3927", Some(false), "RFC 3927 / link-local"),
    ("172.16.0.0/12", C::Private, "Private-Use", "RFC 1918", Some(false), "RFC 1918 / private network"),
    ("192.0.0.0/24", C::ProtocolAssignment, "IETF Protocol Assignments", "RFC 6890", Some(false), "RFC 6890 / IETF protocol assignments"),
    ("192.0.0.0/29", C::ProtocolAssignment, "IPv4 Service Continuity Prefix", "RFC 7335", Some(false), "RFC 7335 / IPv4 service continuity prefix"),
    ("192.0.0.8/32", C::ProtocolAssignment, "IPv4 dummy address", "RFC 7600", Some(false), "RFC 7600 / IPv4 dummy address"),
    ("192.0.0.9/32", C::ProtocolAssignment, "Port Control Protocol Anycast", "RFC 7723", Some(true), "RFC 7723 / PCP anycast"),
    ("192.0.0.10/32", C::ProtocolAssignment, "Traversal Using Relays around NAT Anycast", "RFC 8155", Some(true), "RFC 8155 / TURN anycast"),
    ("192.0.0.170/31", C::Nat64, "NAT64/DNS64 Discovery", "RFC 7050, RFC 8880", Some(false), "RFC 7050 / NAT64 discovery"),
    ("192.0.2.0/24", C::Documentation, "Documentation (TEST-NET-1)", "RFC 5737", Some(false), "RFC 5737 / documentation (TEST-NET-1)"),
    ("192.31.196.0/24", C::ProtocolAssignment, "AS112-v4", "RFC 7535", Some(true), "RFC 7535 / AS112"),
    ("192.52.193.0/24", C::ProtocolAssignment, "AMT", "RFC 7450", Some(true), "RFC 7450 / AMT"),
    ("192.88.99.0/24", C::Reserved, "Deprecated (6to4 Relay Anycast)", "RFC 7526", None, "RFC 7526 / deprecated 6to4 relay anycast"),
    ("192.88.99.2/32", C::ProtocolAssignment, "6a44-relay anycast address", "RFC 6751", Some(false), "RFC 6751 / 6a44 relay anycast"),
    ("192.168.0.0/16", C::Private, "Private-Use", "RFC 1918", Some(false), "RFC 1918 / private network"),
    ("192.175.48.0/24", C::ProtocolAssignment, "Direct Delegation AS112 Service", "RFC 7534", Some(true), "RFC 7534 / AS112 direct delegation"),
    ("198.18.0.0/15", C::Benchmarking, "Benchmarking", "RFC 2544", Some(false), "RFC 2544 / benchmarking"),
    ("198.51.100.0/24", C::Documentation, "Documentation (TEST-NET-2)", "RFC 5737", Some(false), "RFC 5737 / documentation (TEST-NET-2)"),
    ("203.0.113.0/24", C::Documentation, "Documentation (TEST-NET-3)", "RFC 5737", Some(false), "RFC 5737 / documentation (TEST-NET-3)"),
    ("224.0.0.0/4", C::Multicast, "Multicast", "RFC 5771", None, "multicast"),
    ("224.0.0.0/24", C::Multicast, "Local Network Control Block", "RFC 5771", Some(false), "multicast (local network control block)"),
    ("232.0.0.0/8", C::Multicast, "Source-Specific Multicast Block", "RFC 4607", None, "multicast (source-specific)"),
    ("233.0.0.0/8", C::Multicast, "GLOP Block", "RFC 3180", None, "multicast (GLOP)"),
    ("239.0.0.0/8", C::Multicast, "Administratively Scoped Block", "RFC 2365", Some(false), "multicast (administratively scoped)"),
    ("240.0.0.0/4", C::Reserved, "Reserved", "RFC 1112", Some(false), "RFC 1112 / reserved (240/4)"),
    ("255.255.255.255/32", C::Broadcast, "Limited Broadcast", "RFC 919, RFC 8190", Some(false), "limited broadcast"),
];

#[rustfmt::skip]
const V6: &[Row] = &[
    ("::/128", C::Unspecified, "Unspecified Address", "RFC 4291", Some(false), "unspecified address"),
    ("::1/128", C::Loopback, "Loopback Address", "RFC 4291", Some(false), "loopback"),
    ("::/96", C::Ipv4Compatible, "IPv4-compatible (deprecated)", "RFC 4291", Some(false), "RFC 4291 / deprecated IPv4-compatible address"),
    ("::ffff:0:0/96", C::Ipv4Mapped, "IPv4-mapped Address", "RFC 4291", Some(false), "RFC 4291 / IPv4-mapped address"),
    ("64:ff9b::/96", C::Nat64, "IPv4-IPv6 Translat.", "RFC 6052", Some(true), "RFC 6052 / NAT64 well-known prefix"),
    ("64:ff9b:1::/48", C::Nat64, "IPv4-IPv6 Translat.", "RFC 8215", Some(false), "RFC 8215 / local-use NAT64 prefix"),
    ("100::/64", C::Discard, "Discard-Only Address Block", "RFC 6666", Some(false), "RFC 6666 / discard-only"),
    ("100:0:0:1::/64", C::ProtocolAssignment, "Dummy IPv6 Prefix", "RFC 9780", Some(false), "RFC 9780 / dummy prefix"),
    ("2001::/23", C::ProtocolAssignment, "IETF Protocol Assignments", "RFC 2928", Some(false), "RFC 2928 / IETF protocol assignments"),
    ("2001::/32", C::Teredo, "TEREDO", "RFC 4380, RFC 8190", None, "RFC 4380 / Teredo"),
    ("2001:1::1/128", C::ProtocolAssignment, "Port Control Protocol Anycast", "RFC 7723", Some(true), "RFC 7723 / PCP anycast"),
    ("2001:1::2/128", C::ProtocolAssignment, "Traversal Using Relays around NAT Anycast", "RFC 8155", Some(true), "RFC 8155 / TURN anycast"),
    ("2001:1::3/128", C::ProtocolAssignment, "DNS-SD Service Registration Protocol Anycast", "RFC 9665", Some(true), "RFC 9665 / SRP anycast"),
    ("2001:2::/48", C::Benchmarking, "Benchmarking", "RFC 5180", Some(false), "RFC 5180 / benchmarking"),
    ("2001:3::/32", C::ProtocolAssignment, "AMT", "RFC 7450", Some(true), "RFC 7450 / AMT"),
    ("2001:4:112::/48", C::ProtocolAssignment, "AS112-v6", "RFC 7535", Some(true), "RFC 7535 / AS112"),
    ("2001:10::/28", C::Reserved, "Deprecated (previously ORCHID)", "RFC 4843", None, "RFC 4843 / deprecated ORCHID"),
    ("2001:20::/28", C::ProtocolAssignment, "ORCHIDv2", "RFC 7343", Some(true), "RFC 7343 / ORCHIDv2"),
    ("2001:30::/28", C::ProtocolAssignment, "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", Some(true), "RFC 9374 / drone remote ID tags"),
    ("2001:db8::/32", C::Documentation, "Documentation", "RFC 3849", Some(false), "RFC 3849 / documentation"),
    ("2002::/16", C::SixToFour, "6to4", "RFC 3056", None, "RFC 3056 / 6to4"),
    ("2620:4f:8000::/48", C::ProtocolAssignment, "Direct Delegation AS112 Service", "RFC 7534", Some(true), "RFC 7534 / AS112 direct delegation"),
    ("3fff::/20", C::Documentation, "Documentation", "RFC 9637", Some(false), "RFC 9637 / documentation"),
    ("5f00::/16", C::SegmentRouting, "Segment Routing (SRv6) SIDs", "RFC 9602", Some(false), "RFC 9602 / SRv6 segment identifiers"),
    ("fc00::/7", C::UniqueLocal, "Unique-Local", "RFC 4193, RFC 8190", Some(false), "RFC 4193 / unique local address (ULA)"),
    ("fe80::/10", C::LinkLocal, "Link-Local Unicast", "RFC 4291", Some(false), "RFC 4291 / link-local"),
    ("fec0::/10", C::SiteLocal, "Site-Local (deprecated)", "RFC 3879", Some(false), "RFC 3879 / deprecated site-local"),
    ("ff00::/8", C::Multicast, "Multicast", "RFC 4291", None, "multicast"),
];

/// A registry row with its block parsed, as integers for fast matching.
struct Entry {
    net: IpNet,
    class: AddressClass,
    name: &'static str,
    rfc: &'static str,
    reachable: Option<bool>,
    label: &'static str,
}

fn table(rows: &'static [Row], cell: &'static OnceLock<Vec<Entry>>) -> &'static [Entry] {
    cell.get_or_init(|| {
        rows.iter()
            .map(|&(net, class, name, rfc, reachable, label)| Entry {
                // The rows are constants checked by the unit tests below.
                net: net
                    .parse()
                    .unwrap_or_else(|_| panic!("bad registry row {net}")),
                class,
                name,
                rfc,
                reachable,
                label,
            })
            .collect()
    })
}

static V4_TABLE: OnceLock<Vec<Entry>> = OnceLock::new();
static V6_TABLE: OnceLock<Vec<Entry>> = OnceLock::new();

/// Classifies an address against the IANA special-purpose registries.
pub fn classify(ip: IpAddr) -> Classification {
    let rows = match ip {
        IpAddr::V4(_) => table(V4, &V4_TABLE),
        IpAddr::V6(_) => table(V6, &V6_TABLE),
    };
    let best = rows
        .iter()
        .filter(|e| e.net.contains(&ip))
        .max_by_key(|e| e.net.prefix_len());
    let mut c = match best {
        Some(e) => Classification {
            class: e.class,
            label: e.label.to_string(),
            registry_name: Some(e.name.to_string()),
            block: Some(e.net),
            rfc: Some(e.rfc.to_string()),
            globally_reachable: e.reachable,
            embedded_ipv4: None,
            teredo: None,
        },
        None => global_or_reserved(ip),
    };
    if let IpAddr::V6(v6) = ip {
        embedded(v6, &mut c);
    }
    c
}

/// True when the address is in no special-purpose block (what an IP→ASN table can answer).
pub fn is_global(ip: IpAddr) -> bool {
    !classify(ip).is_special()
}

fn global_or_reserved(ip: IpAddr) -> Classification {
    let global = |label: &str| Classification {
        class: AddressClass::Global,
        label: label.to_string(),
        registry_name: None,
        block: None,
        rfc: None,
        globally_reachable: Some(true),
        embedded_ipv4: None,
        teredo: None,
    };
    match ip {
        IpAddr::V4(_) => global("global unicast"),
        IpAddr::V6(v6) if v6.segments()[0] & 0xe000 == 0x2000 => {
            global("global unicast (2000::/3)")
        }
        IpAddr::V6(_) => Classification {
            class: AddressClass::Reserved,
            label: "RFC 4291 / reserved by the IETF (outside 2000::/3)".to_string(),
            registry_name: Some("Reserved by IETF".to_string()),
            block: None,
            rfc: Some("RFC 4291".to_string()),
            globally_reachable: Some(false),
            embedded_ipv4: None,
            teredo: None,
        },
    }
}

/// Fills in the IPv4 address an IPv6 address carries, for the classes that carry one.
fn embedded(v6: Ipv6Addr, c: &mut Classification) {
    let bits = u128::from(v6);
    let low32 = Ipv4Addr::from(bits as u32);
    match c.class {
        AddressClass::Ipv4Mapped | AddressClass::Ipv4Compatible => c.embedded_ipv4 = Some(low32),
        AddressClass::Nat64 if c.block.is_some_and(|b| b.prefix_len() == 96) => {
            c.embedded_ipv4 = Some(low32)
        }
        AddressClass::SixToFour => c.embedded_ipv4 = Some(Ipv4Addr::from((bits >> 80) as u32)),
        AddressClass::Teredo => {
            // RFC 4380 §4: prefix(32) | server(32) | flags(16) | ~port(16) | ~client(32).
            c.teredo = Some(Teredo {
                server: Ipv4Addr::from((bits >> 64) as u32),
                client: Ipv4Addr::from(!(bits as u32)),
                port: !((bits >> 32) as u16),
            });
        }
        _ => {}
    }
}

/// What the IANA Special-Purpose AS Numbers registry says about an AS number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsnClassification {
    /// "private_use", "documentation", "reserved" or "as_trans".
    pub class: String,
    /// A short phrase for people, e.g. "RFC 6996 / private-use AS number".
    pub label: String,
    /// The defining RFC.
    pub rfc: String,
}

/// Classifies an AS number; `None` for ordinary (assignable) numbers.
pub fn classify_asn(asn: u32) -> Option<AsnClassification> {
    let (class, label, rfc) = match asn {
        0 => ("reserved", "RFC 7607 / reserved AS number 0", "RFC 7607"),
        23456 => (
            "as_trans",
            "RFC 6793 / AS_TRANS (4-byte AS placeholder)",
            "RFC 6793",
        ),
        64496..=64511 | 65536..=65551 => (
            "documentation",
            "RFC 5398 / documentation AS number",
            "RFC 5398",
        ),
        64512..=65534 | 4_200_000_000..=4_294_967_294 => (
            "private_use",
            "RFC 6996 / private-use AS number",
            "RFC 6996",
        ),
        65535 | 4_294_967_295 => ("reserved", "RFC 7300 / reserved AS number", "RFC 7300"),
        65552..=131_071 => ("reserved", "IANA reserved AS number", "RFC 6793"),
        _ => return None,
    };
    Some(AsnClassification {
        class: class.to_string(),
        label: label.to_string(),
        rfc: rfc.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test]
    fn every_registry_row_parses_and_is_canonical() {
        for (net, ..) in V4.iter().chain(V6.iter()) {
            let parsed: IpNet = net.parse().expect(net);
            assert_eq!(parsed, parsed.trunc(), "{net} has host bits set");
        }
    }

    #[test_case("10.1.2.3", AddressClass::Private, "RFC 1918 / private network" ; "ten slash eight is private")]
    #[test_case("172.31.255.255", AddressClass::Private, "RFC 1918 / private network" ; "top of 172.16/12 is private")]
    #[test_case("172.32.0.0", AddressClass::Global, "global unicast" ; "just above 172.16/12 is global")]
    #[test_case("100.64.0.1", AddressClass::Shared, "RFC 6598 / shared address space (carrier-grade NAT)" ; "cgnat space is shared")]
    #[test_case("100.128.0.0", AddressClass::Global, "global unicast" ; "just above 100.64/10 is global")]
    #[test_case("198.19.255.255", AddressClass::Benchmarking, "RFC 2544 / benchmarking" ; "top of 198.18/15 is benchmarking")]
    #[test_case("192.0.0.9", AddressClass::ProtocolAssignment, "RFC 7723 / PCP anycast" ; "most specific block wins")]
    #[test_case("255.255.255.255", AddressClass::Broadcast, "limited broadcast" ; "limited broadcast")]
    #[test_case("239.1.1.1", AddressClass::Multicast, "multicast (administratively scoped)" ; "admin scoped multicast")]
    #[test_case("0.0.0.0", AddressClass::Unspecified, "unspecified address" ; "v4 unspecified")]
    #[test_case("fd00::1", AddressClass::UniqueLocal, "RFC 4193 / unique local address (ULA)" ; "ula")]
    #[test_case("2001:db8::1", AddressClass::Documentation, "RFC 3849 / documentation" ; "v6 documentation")]
    #[test_case("3fff:1::", AddressClass::Documentation, "RFC 9637 / documentation" ; "new v6 documentation prefix")]
    #[test_case("2606:4700::1111", AddressClass::Global, "global unicast (2000::/3)" ; "v6 global")]
    #[test_case("4000::1", AddressClass::Reserved, "RFC 4291 / reserved by the IETF (outside 2000::/3)" ; "outside 2000::/3 is reserved")]
    #[test_case("::", AddressClass::Unspecified, "unspecified address" ; "v6 unspecified beats ipv4 compatible")]
    #[test_case("fe80::1", AddressClass::LinkLocal, "RFC 4291 / link-local" ; "v6 link local")]
    fn classifies(ip: &str, class: AddressClass, label: &str) {
        let c = classify(ip.parse().unwrap());
        assert_eq!(c.class, class);
        assert_eq!(c.label, label);
    }

    #[test]
    fn embedded_ipv4_addresses_are_extracted() {
        let c = classify("::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(c.class, AddressClass::Ipv4Mapped);
        assert_eq!(c.embedded_ipv4, Some(Ipv4Addr::new(192, 0, 2, 1)));
        let c = classify("64:ff9b::198.51.100.7".parse().unwrap());
        assert_eq!(c.class, AddressClass::Nat64);
        assert_eq!(c.embedded_ipv4, Some(Ipv4Addr::new(198, 51, 100, 7)));
        let c = classify("2002:c000:0204::1".parse().unwrap());
        assert_eq!(c.class, AddressClass::SixToFour);
        assert_eq!(c.embedded_ipv4, Some(Ipv4Addr::new(192, 0, 2, 4)));
    }

    #[test]
    fn teredo_fields_follow_rfc_4380_example() {
        // RFC 4380 §4 example: server 65.54.227.120, client 192.0.2.45, port 40000.
        let c = classify("2001:0:4136:e378:8000:63bf:3fff:fdd2".parse().unwrap());
        assert_eq!(c.class, AddressClass::Teredo);
        let t = c.teredo.unwrap();
        assert_eq!(t.server, Ipv4Addr::new(65, 54, 227, 120));
        assert_eq!(t.client, Ipv4Addr::new(192, 0, 2, 45));
        assert_eq!(t.port, 40000);
    }

    #[test_case(0, Some("reserved") ; "as zero")]
    #[test_case(23456, Some("as_trans") ; "as trans")]
    #[test_case(64496, Some("documentation") ; "first 16 bit documentation")]
    #[test_case(64512, Some("private_use") ; "first 16 bit private")]
    #[test_case(65534, Some("private_use") ; "last 16 bit private")]
    #[test_case(4_200_000_000, Some("private_use") ; "first 32 bit private")]
    #[test_case(4_294_967_295, Some("reserved") ; "last as number")]
    #[test_case(15169, None ; "ordinary asn")]
    #[test_case(131_072, None ; "first 32 bit assignable")]
    fn classifies_asns(asn: u32, class: Option<&str>) {
        assert_eq!(classify_asn(asn).map(|c| c.class), class.map(String::from));
    }
}
