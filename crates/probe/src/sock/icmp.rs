//! ICMP and ICMPv6 messages: echo requests built by hand (eight bytes and a checksum), received
//! messages parsed into echo replies or errors, and the original datagram an ICMP error quotes
//! decoded with `etherparse` so a probe can match the error to what it sent (echo id/sequence,
//! TCP/UDP ports, payload cookie when the router quoted enough).

use std::net::IpAddr;

use etherparse::{Ipv4HeaderSlice, Ipv6ExtensionsSlice, Ipv6HeaderSlice};
use vantage_proto::Family;

/// ICMPv4 echo reply.
pub const V4_ECHO_REPLY: u8 = 0;
/// ICMPv4 destination unreachable.
pub const V4_DEST_UNREACH: u8 = 3;
/// ICMPv4 source quench (deprecated, still seen).
pub const V4_SOURCE_QUENCH: u8 = 4;
/// ICMPv4 redirect.
pub const V4_REDIRECT: u8 = 5;
/// ICMPv4 echo request.
pub const V4_ECHO_REQUEST: u8 = 8;
/// ICMPv4 time exceeded.
pub const V4_TIME_EXCEEDED: u8 = 11;
/// ICMPv4 parameter problem.
pub const V4_PARAM_PROBLEM: u8 = 12;
/// ICMPv6 destination unreachable.
pub const V6_DEST_UNREACH: u8 = 1;
/// ICMPv6 packet too big.
pub const V6_PACKET_TOO_BIG: u8 = 2;
/// ICMPv6 time exceeded.
pub const V6_TIME_EXCEEDED: u8 = 3;
/// ICMPv6 parameter problem.
pub const V6_PARAM_PROBLEM: u8 = 4;
/// ICMPv6 echo request.
pub const V6_ECHO_REQUEST: u8 = 128;
/// ICMPv6 echo reply.
pub const V6_ECHO_REPLY: u8 = 129;

/// The ICMP types a ping socket needs to see: echo replies and every error.
pub fn ping_types(family: Family) -> &'static [u8] {
    match family {
        Family::Ipv4 => &[
            V4_ECHO_REPLY,
            V4_DEST_UNREACH,
            V4_SOURCE_QUENCH,
            V4_REDIRECT,
            V4_TIME_EXCEEDED,
            V4_PARAM_PROBLEM,
        ],
        Family::Ipv6 => &[
            V6_ECHO_REPLY,
            V6_DEST_UNREACH,
            V6_PACKET_TOO_BIG,
            V6_TIME_EXCEEDED,
            V6_PARAM_PROBLEM,
        ],
    }
}

/// Appends an echo request to `out`. The IPv4 checksum is computed here; for ICMPv6 the kernel
/// computes it (it needs the pseudo-header), and datagram sockets overwrite the identifier.
pub fn echo_request(family: Family, id: u16, seq: u16, payload: &[u8], out: &mut Vec<u8>) {
    echo_request_with(family, id, seq, payload.len(), out, |p| {
        p.copy_from_slice(payload)
    });
}

/// Like [`echo_request`], with a payload of `len` bytes written in place by `fill` (no copy).
pub fn echo_request_with(
    family: Family,
    id: u16,
    seq: u16,
    len: usize,
    out: &mut Vec<u8>,
    fill: impl FnOnce(&mut [u8]),
) {
    let start = out.len();
    let ty = match family {
        Family::Ipv4 => V4_ECHO_REQUEST,
        Family::Ipv6 => V6_ECHO_REQUEST,
    };
    out.extend_from_slice(&[ty, 0, 0, 0]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.resize(start + 8 + len, 0);
    fill(&mut out[start + 8..]);
    if family == Family::Ipv4 {
        let sum = checksum(&out[start..]);
        out[start + 2..start + 4].copy_from_slice(&sum.to_be_bytes());
    }
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The IP header fields a probe needs from a packet received on a raw IPv4 socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Info {
    /// Sender.
    pub src: IpAddr,
    /// Destination.
    pub dst: IpAddr,
    /// TTL as received.
    pub ttl: u8,
    /// Transport protocol number.
    pub protocol: u8,
}

/// Splits a raw IPv4 packet into its header fields and its payload.
pub fn strip_ipv4(packet: &[u8]) -> Option<(Ipv4Info, &[u8])> {
    let h = Ipv4HeaderSlice::from_slice(packet).ok()?;
    let info = Ipv4Info {
        src: IpAddr::V4(h.source_addr()),
        dst: IpAddr::V4(h.destination_addr()),
        ttl: h.ttl(),
        protocol: h.protocol().0,
    };
    Some((info, &packet[h.slice().len()..]))
}

/// A parsed ICMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// An echo reply.
    EchoReply {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
        /// Data after the eight-byte header.
        payload: &'a [u8],
    },
    /// An echo request (seen by raw sockets without a filter).
    EchoRequest {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
    },
    /// An error about a datagram somebody sent.
    Error {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// Bytes 4–7 of the header: next-hop MTU for "fragmentation needed" / "packet too big".
        info: u32,
        /// The quoted original datagram, when it parses.
        quoted: Option<Quoted<'a>>,
    },
    /// Anything else.
    Other {
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
    },
}

/// Parses an ICMP (`family` v4) or ICMPv6 message starting at its header.
pub fn parse(family: Family, icmp: &[u8]) -> Option<Message<'_>> {
    if icmp.len() < 8 {
        return None;
    }
    let (ty, code) = (icmp[0], icmp[1]);
    let id = u16::from_be_bytes([icmp[4], icmp[5]]);
    let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    let (reply, request) = match family {
        Family::Ipv4 => (V4_ECHO_REPLY, V4_ECHO_REQUEST),
        Family::Ipv6 => (V6_ECHO_REPLY, V6_ECHO_REQUEST),
    };
    Some(if ty == reply {
        Message::EchoReply {
            id,
            seq,
            payload: &icmp[8..],
        }
    } else if ty == request {
        Message::EchoRequest { id, seq }
    } else if is_error(family, ty) {
        Message::Error {
            icmp_type: ty,
            code,
            info: u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
            quoted: parse_quoted(family, &icmp[8..]),
        }
    } else {
        Message::Other {
            icmp_type: ty,
            code,
        }
    })
}

/// Whether `icmp_type` is an error message (one that quotes the offending datagram).
pub fn is_error(family: Family, icmp_type: u8) -> bool {
    match family {
        Family::Ipv4 => matches!(
            icmp_type,
            V4_DEST_UNREACH | V4_SOURCE_QUENCH | V4_REDIRECT | V4_TIME_EXCEEDED | V4_PARAM_PROBLEM
        ),
        Family::Ipv6 => icmp_type < 128,
    }
}

/// Whether an ICMP error says the datagram did not arrive (unreachable, time or hop limit
/// exceeded, parameter problem, too big). Redirects and source quenches are advice to the
/// sender: the datagram was still forwarded.
pub fn is_delivery_failure(family: Family, icmp_type: u8) -> bool {
    match family {
        Family::Ipv4 => matches!(
            icmp_type,
            V4_DEST_UNREACH | V4_TIME_EXCEEDED | V4_PARAM_PROBLEM
        ),
        Family::Ipv6 => matches!(
            icmp_type,
            V6_DEST_UNREACH | V6_PACKET_TOO_BIG | V6_TIME_EXCEEDED | V6_PARAM_PROBLEM
        ),
    }
}

/// The start of the datagram an ICMP error quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted<'a> {
    /// Its source (normally us).
    pub src: IpAddr,
    /// Its destination (the probe's target).
    pub dst: IpAddr,
    /// Its transport protocol.
    pub protocol: u8,
    /// Its transport header and as much data as was quoted.
    pub transport: &'a [u8],
}

impl<'a> Quoted<'a> {
    /// For a quoted echo request: identifier, sequence and the quoted part of the payload.
    pub fn echo(&self) -> Option<(u16, u16, &'a [u8])> {
        let (req, proto) = if self.dst.is_ipv4() {
            (V4_ECHO_REQUEST, 1)
        } else {
            (V6_ECHO_REQUEST, 58)
        };
        let t = self.transport;
        if self.protocol != proto || t.len() < 8 || t[0] != req {
            return None;
        }
        Some((
            u16::from_be_bytes([t[4], t[5]]),
            u16::from_be_bytes([t[6], t[7]]),
            &t[8..],
        ))
    }

    /// For a quoted TCP or UDP datagram: source and destination ports.
    pub fn ports(&self) -> Option<(u16, u16)> {
        let t = self.transport;
        if !matches!(self.protocol, 6 | 17) || t.len() < 4 {
            return None;
        }
        Some((
            u16::from_be_bytes([t[0], t[1]]),
            u16::from_be_bytes([t[2], t[3]]),
        ))
    }
}

/// Parses the quoted original datagram of an ICMP error.
pub fn parse_quoted(family: Family, data: &[u8]) -> Option<Quoted<'_>> {
    match family {
        Family::Ipv4 => {
            let (info, rest) = strip_ipv4(data)?;
            Some(Quoted {
                src: info.src,
                dst: info.dst,
                protocol: info.protocol,
                transport: rest,
            })
        }
        Family::Ipv6 => {
            let h = Ipv6HeaderSlice::from_slice(data).ok()?;
            let rest = &data[h.slice().len()..];
            let (exts, protocol, transport) =
                Ipv6ExtensionsSlice::from_slice(h.next_header(), rest).ok()?;
            let _ = exts;
            Some(Quoted {
                src: IpAddr::V6(h.source_addr()),
                dst: IpAddr::V6(h.destination_addr()),
                protocol: protocol.0,
                transport,
            })
        }
    }
}

/// A person's phrase for an ICMP error ("destination host unreachable").
pub fn describe(family: Family, icmp_type: u8, code: u8, info: u32) -> String {
    let s = match (family, icmp_type, code) {
        (Family::Ipv4, V4_DEST_UNREACH, 0) => "destination network unreachable",
        (Family::Ipv4, V4_DEST_UNREACH, 1) => "destination host unreachable",
        (Family::Ipv4, V4_DEST_UNREACH, 2) => "destination protocol unreachable",
        (Family::Ipv4, V4_DEST_UNREACH, 3) => "destination port unreachable",
        (Family::Ipv4, V4_DEST_UNREACH, 4) => {
            return format!(
                "fragmentation needed and DF set (next-hop MTU {})",
                info & 0xffff
            );
        }
        (Family::Ipv4, V4_DEST_UNREACH, 5) => "source route failed",
        (Family::Ipv4, V4_DEST_UNREACH, 6) => "destination network unknown",
        (Family::Ipv4, V4_DEST_UNREACH, 7) => "destination host unknown",
        (Family::Ipv4, V4_DEST_UNREACH, 9 | 10 | 13) => "communication administratively prohibited",
        (Family::Ipv4, V4_DEST_UNREACH, 11 | 12) => {
            "destination unreachable for this type of service"
        }
        (Family::Ipv4, V4_DEST_UNREACH, 14) => "host precedence violation",
        (Family::Ipv4, V4_DEST_UNREACH, 15) => "precedence cutoff in effect",
        (Family::Ipv4, V4_DEST_UNREACH, _) => "destination unreachable",
        (Family::Ipv4, V4_SOURCE_QUENCH, _) => "source quench",
        (Family::Ipv4, V4_REDIRECT, _) => "redirect",
        (Family::Ipv4, V4_TIME_EXCEEDED, 0) => "time to live exceeded",
        (Family::Ipv4, V4_TIME_EXCEEDED, _) => "fragment reassembly time exceeded",
        (Family::Ipv4, V4_PARAM_PROBLEM, _) => "parameter problem",
        (Family::Ipv6, V6_DEST_UNREACH, 0) => "destination unreachable: no route",
        (Family::Ipv6, V6_DEST_UNREACH, 1) => {
            "destination unreachable: administratively prohibited"
        }
        (Family::Ipv6, V6_DEST_UNREACH, 2) => {
            "destination unreachable: beyond scope of source address"
        }
        (Family::Ipv6, V6_DEST_UNREACH, 3) => "destination unreachable: address unreachable",
        (Family::Ipv6, V6_DEST_UNREACH, 4) => "destination unreachable: port unreachable",
        (Family::Ipv6, V6_DEST_UNREACH, 5) => {
            "destination unreachable: source address failed ingress/egress policy"
        }
        (Family::Ipv6, V6_DEST_UNREACH, 6) => "destination unreachable: reject route",
        (Family::Ipv6, V6_DEST_UNREACH, _) => "destination unreachable",
        (Family::Ipv6, V6_PACKET_TOO_BIG, _) => {
            return format!("packet too big (MTU {info})");
        }
        (Family::Ipv6, V6_TIME_EXCEEDED, 0) => "hop limit exceeded",
        (Family::Ipv6, V6_TIME_EXCEEDED, _) => "fragment reassembly time exceeded",
        (Family::Ipv6, V6_PARAM_PROBLEM, _) => "parameter problem",
        _ => return format!("ICMP error type {icmp_type} code {code}"),
    };
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_echo_request_carries_a_valid_checksum() {
        let mut p = Vec::new();
        echo_request(Family::Ipv4, 0x1234, 7, b"abcdefgh", &mut p);
        assert_eq!(p.len(), 16);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        // A correct checksum makes the sum over the whole message 0xffff, i.e. checksum 0.
        assert_eq!(checksum(&p), 0);
        // Cross-check with etherparse's own computation.
        let hdr = etherparse::Icmpv4Header::with_checksum(
            etherparse::Icmpv4Type::EchoRequest(etherparse::IcmpEchoHeader { id: 0x1234, seq: 7 }),
            b"abcdefgh",
        );
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), hdr.checksum);
    }

    #[test]
    fn odd_length_payloads_checksum_correctly() {
        let mut p = Vec::new();
        echo_request(Family::Ipv4, 1, 2, b"abc", &mut p);
        assert_eq!(checksum(&p), 0);
    }

    #[test]
    fn an_echo_reply_parses() {
        let mut p = Vec::new();
        echo_request(Family::Ipv6, 9, 10, b"xy", &mut p);
        p[0] = V6_ECHO_REPLY;
        assert_eq!(
            parse(Family::Ipv6, &p),
            Some(Message::EchoReply {
                id: 9,
                seq: 10,
                payload: b"xy"
            })
        );
    }

    #[test]
    fn a_host_unreachable_quoting_our_request_is_matched_to_it() {
        // Build the quoted datagram: IPv4 header (10.0.0.2 → 10.0.0.99, ICMP) + our request.
        let mut req = Vec::new();
        echo_request(Family::Ipv4, 0xbeef, 3, b"cookie!!", &mut req);
        let ip = etherparse::Ipv4Header::new(
            req.len() as u16,
            64,
            etherparse::IpNumber::ICMP,
            [10, 0, 0, 2],
            [10, 0, 0, 99],
        )
        .unwrap();
        let mut err = vec![V4_DEST_UNREACH, 1, 0, 0, 0, 0, 0, 0];
        ip.write(&mut err).unwrap();
        err.extend_from_slice(&req);
        let Some(Message::Error {
            icmp_type,
            code,
            quoted: Some(q),
            ..
        }) = parse(Family::Ipv4, &err)
        else {
            panic!("not parsed as an error");
        };
        assert_eq!((icmp_type, code), (V4_DEST_UNREACH, 1));
        assert_eq!(q.dst, "10.0.0.99".parse::<IpAddr>().unwrap());
        assert_eq!(q.echo(), Some((0xbeef, 3, &b"cookie!!"[..])));
        assert_eq!(
            describe(Family::Ipv4, icmp_type, code, 0),
            "destination host unreachable"
        );
    }

    #[test]
    fn a_quoted_ipv6_udp_datagram_gives_its_ports() {
        let ip = etherparse::Ipv6Header {
            traffic_class: 0,
            flow_label: Default::default(),
            payload_length: 8,
            next_header: etherparse::IpNumber::UDP,
            hop_limit: 1,
            source: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            destination: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        };
        let mut err = vec![V6_TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0];
        ip.write(&mut err).unwrap();
        err.extend_from_slice(&[0x80, 0x00, 0x82, 0x9a, 0, 8, 0, 0]);
        let Some(Message::Error {
            quoted: Some(q), ..
        }) = parse(Family::Ipv6, &err)
        else {
            panic!("not parsed as an error");
        };
        assert_eq!(q.ports(), Some((32768, 33434)));
        assert_eq!(q.echo(), None);
    }

    #[test]
    fn truncated_messages_do_not_parse() {
        assert_eq!(parse(Family::Ipv4, &[0, 0, 0]), None);
        assert_eq!(strip_ipv4(&[0x45, 0]), None);
    }
}
