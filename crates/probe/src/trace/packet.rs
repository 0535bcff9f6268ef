//! Trace probes on the wire: ICMP echo requests, UDP datagrams and TCP SYNs whose flow identity
//! stays constant along a flow (Paris traceroute) while each probe still carries its own number,
//! and the reverse: reading that number back out of whatever answers.
//!
//! Where the number lives, and why there:
//! - **ICMP**: in the echo sequence number. Load balancers that hash ICMP look at the first
//!   four bytes (type, code, checksum), so two payload bytes are chosen to keep the checksum at
//!   the flow's constant whatever the sequence number is. The identifier is the trace's own.
//! - **UDP**: in the checksum. Ports, the flow's identity, never change; two payload bytes are
//!   chosen so that the checksum equals the probe's number and is still valid.
//! - **TCP**: in the sequence number (high half: the trace's cookie, low half: the number),
//!   which routers quote in the first eight bytes and a SYN-ACK or RST acknowledges plus one.
//!
//! All three sit in the first eight bytes of the transport header, which every router quotes in
//! its ICMP errors (RFC 792), so a probe is recognised even from a minimal quote.

use std::net::IpAddr;

use vantage_proto::{Family, MplsLabel, TraceProtocol};

use crate::sock::icmp;

/// The IP protocol numbers we carry.
pub(crate) const PROTO_ICMP: u8 = 1;
pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;
pub(crate) const PROTO_ICMPV6: u8 = 58;
/// Length of our TCP SYN: 20-byte header plus one MSS option.
const TCP_SYN_LEN: usize = 24;
/// TCP flags.
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;
/// Filler of the payload after the two adjusted bytes, so captures show what the packet is.
const FILLER: &[u8] = b"vantage-trace:";

/// One's complement addition of two 16-bit words (end-around carry).
fn ones_add(a: u16, b: u16) -> u16 {
    let s = u32::from(a) + u32::from(b);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// One's complement sum of `data` as 16-bit big-endian words (an odd last byte is padded).
fn ones_sum(data: &[u8]) -> u16 {
    // The complement of the Internet checksum is the folded sum; 0xffff and 0 are the same
    // value in one's complement arithmetic, which is all we need here.
    !icmp::checksum(data)
}

/// The one's complement sum of the pseudo-header the checksum of `protocol` covers (zero for
/// ICMPv4, which has none).
fn pseudo_sum(protocol: u8, src: IpAddr, dst: IpAddr, len: usize) -> u16 {
    let mut b = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            if protocol == PROTO_ICMP {
                return 0;
            }
            b.extend_from_slice(&s.octets());
            b.extend_from_slice(&d.octets());
            b.extend_from_slice(&[0, protocol]);
            b.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (s, d) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V6(v) => v.octets(),
                IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
            };
            b.extend_from_slice(&v6(s));
            b.extend_from_slice(&v6(d));
            b.extend_from_slice(&(len as u32).to_be_bytes());
            b.extend_from_slice(&[0, 0, 0, protocol]);
        }
    }
    ones_sum(&b)
}

/// The two bytes that make a message whose other words sum (one's complement, pseudo-header
/// included) to `rest` carry the checksum `want`: the checksum is the complement of the total
/// sum, so the adjustment is `!want − rest`.
fn compensation(want: u16, rest: u16) -> u16 {
    ones_add(!want, !rest)
}

/// Fills a payload of `len` bytes (at least 2): two zero bytes to be adjusted, then filler.
fn payload(len: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 0]);
    out.extend(FILLER.iter().cycle().take(len.saturating_sub(2)));
}

/// Everything that stays constant over a trace's probes.
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    pub protocol: TraceProtocol,
    pub family: Family,
    /// Our address (the sockets are bound to it, so it is what the kernel puts in the header
    /// and what the pseudo-header must say).
    pub src: IpAddr,
    /// The target.
    pub dst: IpAddr,
    /// Destination port (UDP, TCP).
    pub dport: u16,
    /// ICMP echo identifier of this trace.
    pub ident: u16,
    /// High half of TCP sequence numbers of this trace.
    pub cookie: u16,
    /// Payload bytes of ICMP and UDP probes.
    pub size: usize,
}

/// What identifies one flow: its source port (UDP, TCP) and its constant ICMP checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flow {
    pub sport: u16,
    pub icmp_checksum: u16,
}

impl Wire {
    /// Appends probe number `id` (1–65534) of `flow` to `out`: the transport header and
    /// payload; the kernel adds the IP header.
    pub fn build(&self, flow: Flow, id: u16, out: &mut Vec<u8>) {
        match self.protocol {
            TraceProtocol::Icmp => self.icmp(flow, id, out),
            TraceProtocol::Udp => self.udp(flow, id, out),
            TraceProtocol::Tcp => self.tcp(flow, id, out),
        }
    }

    fn icmp(&self, flow: Flow, id: u16, out: &mut Vec<u8>) {
        let start = out.len();
        let ty = match self.family {
            Family::Ipv4 => icmp::V4_ECHO_REQUEST,
            Family::Ipv6 => icmp::V6_ECHO_REQUEST,
        };
        out.extend_from_slice(&[ty, 0, 0, 0]);
        out.extend_from_slice(&self.ident.to_be_bytes());
        out.extend_from_slice(&id.to_be_bytes());
        payload(self.size, out);
        let len = out.len() - start;
        let proto = match self.family {
            Family::Ipv4 => PROTO_ICMP,
            Family::Ipv6 => PROTO_ICMPV6,
        };
        let rest = ones_add(
            ones_sum(&out[start..]),
            pseudo_sum(proto, self.src, self.dst, len),
        );
        let c = compensation(flow.icmp_checksum, rest);
        out[start + 8..start + 10].copy_from_slice(&c.to_be_bytes());
        // ICMPv6: the kernel computes the same value itself (it needs the pseudo-header).
        out[start + 2..start + 4].copy_from_slice(&flow.icmp_checksum.to_be_bytes());
    }

    fn udp(&self, flow: Flow, id: u16, out: &mut Vec<u8>) {
        let start = out.len();
        let len = 8 + self.size;
        out.extend_from_slice(&flow.sport.to_be_bytes());
        out.extend_from_slice(&self.dport.to_be_bytes());
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        payload(self.size, out);
        let rest = ones_add(
            ones_sum(&out[start..]),
            pseudo_sum(PROTO_UDP, self.src, self.dst, len),
        );
        let c = compensation(id, rest);
        out[start + 8..start + 10].copy_from_slice(&c.to_be_bytes());
        out[start + 6..start + 8].copy_from_slice(&id.to_be_bytes());
    }

    fn tcp(&self, flow: Flow, id: u16, out: &mut Vec<u8>) {
        let start = out.len();
        let seq = (u32::from(self.cookie) << 16) | u32::from(id);
        let mss: u16 = match self.family {
            Family::Ipv4 => 1460,
            Family::Ipv6 => 1440,
        };
        out.extend_from_slice(&flow.sport.to_be_bytes());
        out.extend_from_slice(&self.dport.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&[((TCP_SYN_LEN / 4) as u8) << 4, TCP_SYN]);
        out.extend_from_slice(&64240u16.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&[2, 4]);
        out.extend_from_slice(&mss.to_be_bytes());
        let sum = ones_add(
            ones_sum(&out[start..]),
            pseudo_sum(PROTO_TCP, self.src, self.dst, TCP_SYN_LEN),
        );
        out[start + 16..start + 18].copy_from_slice(&(!sum).to_be_bytes());
    }

    /// Bytes of one probe, headers of the IP layer excluded.
    pub fn probe_len(&self) -> usize {
        match self.protocol {
            TraceProtocol::Icmp | TraceProtocol::Udp => 8 + self.size,
            TraceProtocol::Tcp => TCP_SYN_LEN,
        }
    }
}

/// What an answer said about the probe it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A router on the way: time (hop limit) exceeded in transit.
    TimeExceeded,
    /// Destination unreachable (ICMP type 3 / ICMPv6 type 1) with its code and phrase.
    Unreachable { code: u8, phrase: String },
    /// Another ICMP error quoting the probe (parameter problem, packet too big …).
    OtherError { phrase: String },
    /// The target's echo reply (ICMP probes).
    EchoReply,
    /// The target's SYN-ACK (TCP probes: the port is open).
    SynAck,
    /// The target's RST (TCP probes: the port is closed, but the host answered).
    Reset,
}

/// An answer recognised as being about one of our probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The probe's number.
    pub id: u16,
    /// The flow's source port as the answer quotes it (UDP, TCP), to check against the probe.
    pub sport: Option<u16>,
    /// Who answered.
    pub from: IpAddr,
    /// What it said.
    pub kind: Kind,
    /// MPLS labels from the ICMP extensions of the answer (RFC 4950).
    pub mpls: Vec<MplsLabel>,
}

impl Wire {
    /// Recognises an ICMP or ICMPv6 message (`msg` starts at the ICMP header) from `from` as an
    /// answer to one of this trace's probes.
    pub fn match_icmp(&self, from: IpAddr, msg: &[u8]) -> Option<Answer> {
        match icmp::parse(self.family, msg)? {
            icmp::Message::EchoReply { id, seq, .. }
                if self.protocol == TraceProtocol::Icmp && id == self.ident =>
            {
                Some(Answer {
                    id: seq,
                    sport: None,
                    from,
                    kind: Kind::EchoReply,
                    mpls: Vec::new(),
                })
            }
            icmp::Message::Error {
                icmp_type,
                code,
                info,
                quoted: Some(q),
            } => {
                if q.dst != self.dst {
                    return None;
                }
                let (id, sport) = self.quoted_probe(&q)?;
                let kind = match (self.family, icmp_type) {
                    (Family::Ipv4, icmp::V4_TIME_EXCEEDED)
                    | (Family::Ipv6, icmp::V6_TIME_EXCEEDED)
                        if code == 0 =>
                    {
                        Kind::TimeExceeded
                    }
                    (Family::Ipv4, icmp::V4_DEST_UNREACH)
                    | (Family::Ipv6, icmp::V6_DEST_UNREACH) => Kind::Unreachable {
                        code,
                        phrase: icmp::describe(self.family, icmp_type, code, info),
                    },
                    _ => Kind::OtherError {
                        phrase: icmp::describe(self.family, icmp_type, code, info),
                    },
                };
                Some(Answer {
                    id,
                    sport,
                    from,
                    kind,
                    mpls: super::ext::mpls_labels(self.family, msg),
                })
            }
            _ => None,
        }
    }

    /// The probe number (and quoted source port) in the datagram an ICMP error quotes.
    fn quoted_probe(&self, q: &icmp::Quoted<'_>) -> Option<(u16, Option<u16>)> {
        let t = q.transport;
        match self.protocol {
            TraceProtocol::Icmp => {
                let (ident, seq, _) = q.echo()?;
                (ident == self.ident).then_some((seq, None))
            }
            TraceProtocol::Udp => {
                if q.protocol != PROTO_UDP || t.len() < 8 {
                    return None;
                }
                let (sport, dport) = q.ports()?;
                let sum = u16::from_be_bytes([t[6], t[7]]);
                (dport == self.dport).then_some((sum, Some(sport)))
            }
            TraceProtocol::Tcp => {
                if q.protocol != PROTO_TCP || t.len() < 8 {
                    return None;
                }
                let (sport, dport) = q.ports()?;
                let seq = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
                (dport == self.dport && (seq >> 16) as u16 == self.cookie)
                    .then_some((seq as u16, Some(sport)))
            }
        }
    }

    /// Recognises a TCP segment (`seg` starts at the TCP header) from `from` as the target's
    /// SYN-ACK or RST to one of this trace's SYNs.
    pub fn match_tcp(&self, from: IpAddr, seg: &[u8]) -> Option<Answer> {
        if self.protocol != TraceProtocol::Tcp || from != self.dst || seg.len() < 20 {
            return None;
        }
        let sport = u16::from_be_bytes([seg[0], seg[1]]);
        let dport = u16::from_be_bytes([seg[2], seg[3]]);
        let ack = u32::from_be_bytes([seg[8], seg[9], seg[10], seg[11]]);
        let flags = seg[13];
        if sport != self.dport || flags & TCP_ACK == 0 {
            return None;
        }
        let kind = if flags & TCP_RST != 0 {
            Kind::Reset
        } else if flags & (TCP_SYN | TCP_FIN) == TCP_SYN {
            Kind::SynAck
        } else {
            return None;
        };
        let seq = ack.wrapping_sub(1);
        ((seq >> 16) as u16 == self.cookie).then_some(Answer {
            id: seq as u16,
            sport: Some(dport),
            from,
            kind,
            mpls: Vec::new(),
        })
    }
}

impl Kind {
    /// Whether this answer came from the destination itself: it answered (echo reply, SYN-ACK,
    /// RST), or refused with an unreachable of its own (port unreachable for UDP).
    pub fn is_destination_answer(&self, from: IpAddr, dst: IpAddr) -> bool {
        match self {
            Kind::EchoReply | Kind::SynAck | Kind::Reset => true,
            Kind::Unreachable { .. } => from == dst,
            Kind::TimeExceeded | Kind::OtherError { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, PacketBuilder};

    fn wire(protocol: TraceProtocol, family: Family) -> Wire {
        let (src, dst): (IpAddr, IpAddr) = match family {
            Family::Ipv4 => ("10.1.1.1".parse().unwrap(), "10.9.9.9".parse().unwrap()),
            Family::Ipv6 => ("fd00::1".parse().unwrap(), "fd00:9::9".parse().unwrap()),
        };
        Wire {
            protocol,
            family,
            src,
            dst,
            dport: 33434,
            ident: 0x4242,
            cookie: 0xbeef,
            size: 32,
        }
    }

    const FLOW: Flow = Flow {
        sport: 40000,
        icmp_checksum: 0x7777,
    };

    /// The checksum a receiver computes over the whole message (pseudo-header included) is
    /// valid when the total one's complement sum is 0xffff.
    fn valid(proto: u8, w: &Wire, msg: &[u8]) -> bool {
        ones_add(ones_sum(msg), pseudo_sum(proto, w.src, w.dst, msg.len())) == 0xffff
    }

    #[test]
    fn icmp_probes_keep_the_flow_checksum_whatever_their_number() {
        for family in [Family::Ipv4, Family::Ipv6] {
            let w = wire(TraceProtocol::Icmp, family);
            let proto = if family == Family::Ipv4 {
                PROTO_ICMP
            } else {
                PROTO_ICMPV6
            };
            for id in [1u16, 2, 77, 0x8000, 0xfffe] {
                let mut p = Vec::new();
                w.build(FLOW, id, &mut p);
                assert_eq!(p.len(), 40);
                assert_eq!(&p[2..4], &[0x77, 0x77], "{family} id {id}");
                assert_eq!(u16::from_be_bytes([p[6], p[7]]), id);
                assert!(valid(proto, &w, &p), "{family} id {id}: invalid checksum");
            }
        }
    }

    #[test]
    fn ipv4_icmp_probes_agree_with_etherparse() {
        let w = wire(TraceProtocol::Icmp, Family::Ipv4);
        let mut p = Vec::new();
        w.build(FLOW, 1234, &mut p);
        let hdr = etherparse::Icmpv4Header::with_checksum(
            etherparse::Icmpv4Type::EchoRequest(etherparse::IcmpEchoHeader {
                id: 0x4242,
                seq: 1234,
            }),
            &p[8..],
        );
        assert_eq!(hdr.checksum, 0x7777);
    }

    #[test]
    fn udp_probes_keep_their_ports_and_carry_their_number_in_a_valid_checksum() {
        for family in [Family::Ipv4, Family::Ipv6] {
            let w = wire(TraceProtocol::Udp, family);
            for id in [1u16, 500, 0xfffe] {
                let mut p = Vec::new();
                w.build(FLOW, id, &mut p);
                assert_eq!(&p[0..4], &[0x9c, 0x40, 0x82, 0x9a]);
                assert_eq!(u16::from_be_bytes([p[6], p[7]]), id);
                assert!(valid(PROTO_UDP, &w, &p), "{family} id {id}");
            }
        }
        // Cross-check one with etherparse's own UDP checksum over the same pseudo-header.
        let w = wire(TraceProtocol::Udp, Family::Ipv4);
        let mut p = Vec::new();
        w.build(FLOW, 4321, &mut p);
        let ip = Ipv4Header::new(
            p.len() as u16,
            64,
            IpNumber::UDP,
            [10, 1, 1, 1],
            [10, 9, 9, 9],
        )
        .unwrap();
        let udp = etherparse::UdpHeader::from_slice(&p).unwrap().0;
        assert_eq!(udp.calc_checksum_ipv4(&ip, &p[8..]).unwrap(), 4321);
    }

    #[test]
    fn tcp_syns_carry_the_cookie_and_number_with_a_valid_checksum() {
        for family in [Family::Ipv4, Family::Ipv6] {
            let w = wire(TraceProtocol::Tcp, family);
            let mut p = Vec::new();
            w.build(FLOW, 99, &mut p);
            assert_eq!(p.len(), TCP_SYN_LEN);
            assert_eq!(&p[4..8], &[0xbe, 0xef, 0, 99]);
            assert_eq!(p[13], TCP_SYN);
            assert!(valid(PROTO_TCP, &w, &p), "{family}");
        }
    }

    /// Builds the ICMP error a router sends about `probe`: IP header + transport of the probe,
    /// quoted in full or only its first eight bytes.
    fn error_about(w: &Wire, probe: &[u8], ty: u8, code: u8, quote8: bool) -> Vec<u8> {
        let proto = match w.protocol {
            TraceProtocol::Icmp if w.family == Family::Ipv4 => IpNumber::ICMP,
            TraceProtocol::Icmp => IpNumber::IPV6_ICMP,
            TraceProtocol::Udp => IpNumber::UDP,
            TraceProtocol::Tcp => IpNumber::TCP,
        };
        let mut msg = vec![ty, code, 0, 0, 0, 0, 0, 0];
        match (w.src, w.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                Ipv4Header::new(probe.len() as u16, 1, proto, s.octets(), d.octets())
                    .unwrap()
                    .write(&mut msg)
                    .unwrap();
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                Ipv6Header {
                    traffic_class: 0,
                    flow_label: Ipv6FlowLabel::ZERO,
                    payload_length: probe.len() as u16,
                    next_header: proto,
                    hop_limit: 1,
                    source: s.octets(),
                    destination: d.octets(),
                }
                .write(&mut msg)
                .unwrap();
            }
            _ => unreachable!(),
        }
        msg.extend_from_slice(if quote8 { &probe[..8] } else { probe });
        msg
    }

    #[test]
    fn time_exceeded_quoting_only_eight_bytes_is_matched_for_every_protocol() {
        let router: IpAddr = "10.1.2.2".parse().unwrap();
        for protocol in [TraceProtocol::Icmp, TraceProtocol::Udp, TraceProtocol::Tcp] {
            for family in [Family::Ipv4, Family::Ipv6] {
                let w = wire(protocol, family);
                let mut p = Vec::new();
                w.build(FLOW, 321, &mut p);
                let te = if family == Family::Ipv4 {
                    icmp::V4_TIME_EXCEEDED
                } else {
                    icmp::V6_TIME_EXCEEDED
                };
                let msg = error_about(&w, &p, te, 0, true);
                let a = w
                    .match_icmp(router, &msg)
                    .unwrap_or_else(|| panic!("{protocol:?} {family}: not matched"));
                assert_eq!(a.id, 321);
                assert_eq!(a.kind, Kind::TimeExceeded);
                assert_eq!(a.from, router);
                let want_sport = (protocol != TraceProtocol::Icmp).then_some(40000);
                assert_eq!(a.sport, want_sport);
                // Another trace (other identifier, cookie or port) does not match.
                let mut other = w.clone();
                other.ident ^= 1;
                other.cookie ^= 1;
                other.dport ^= 1;
                assert_eq!(
                    other.match_icmp(router, &msg),
                    None,
                    "{protocol:?} {family}"
                );
            }
        }
    }

    #[test]
    fn the_destinations_port_unreachable_is_its_answer() {
        let w = wire(TraceProtocol::Udp, Family::Ipv4);
        let mut p = Vec::new();
        w.build(FLOW, 7, &mut p);
        let msg = error_about(&w, &p, icmp::V4_DEST_UNREACH, 3, false);
        let a = w.match_icmp(w.dst, &msg).unwrap();
        assert_eq!(
            a.kind,
            Kind::Unreachable {
                code: 3,
                phrase: "destination port unreachable".into()
            }
        );
        assert!(a.kind.is_destination_answer(a.from, w.dst));
        let router: IpAddr = "10.1.2.2".parse().unwrap();
        assert!(!a.kind.is_destination_answer(router, w.dst));
    }

    #[test]
    fn echo_replies_and_tcp_answers_are_matched() {
        let w = wire(TraceProtocol::Icmp, Family::Ipv4);
        let mut reply = Vec::new();
        icmp::echo_request(Family::Ipv4, 0x4242, 55, b"xx", &mut reply);
        reply[0] = icmp::V4_ECHO_REPLY;
        let a = w.match_icmp(w.dst, &reply).unwrap();
        assert_eq!((a.id, a.kind), (55, Kind::EchoReply));

        let w = wire(TraceProtocol::Tcp, Family::Ipv4);
        let syn_ack = |flags: u8, ack: u32| {
            let b = PacketBuilder::ipv4([10, 9, 9, 9], [10, 1, 1, 1], 64)
                .tcp(33434, 40000, 1, 1000)
                .ack(ack);
            let b = if flags & TCP_RST != 0 {
                b.rst()
            } else {
                b.syn()
            };
            let mut out = Vec::new();
            b.write(&mut out, &[]).unwrap();
            out[20..].to_vec()
        };
        let a = w
            .match_tcp(w.dst, &syn_ack(TCP_SYN, 0xbeef_0063 + 1))
            .unwrap();
        assert_eq!((a.id, a.kind, a.sport), (99, Kind::SynAck, Some(40000)));
        let a = w.match_tcp(w.dst, &syn_ack(TCP_RST, 0xbeef_0064)).unwrap();
        assert_eq!((a.id, a.kind), (99, Kind::Reset));
        // Wrong cookie: somebody else's connection.
        assert_eq!(w.match_tcp(w.dst, &syn_ack(TCP_SYN, 0x1234_0064)), None);
    }
}
