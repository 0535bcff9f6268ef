//! TCP segments for SYN probes: the SYN (with the options a Linux stack sends), the reset that
//! ends a half-open connection, both with the pseudo-header checksum computed here (raw TCP
//! sockets leave it to us in both families), the parsing of answers, and the kernel filter that
//! keeps every other TCP segment of the host away from the probe's raw socket.

use std::net::IpAddr;

use etherparse::TcpHeaderSlice;
use socket2::SockFilter;

use crate::sock::icmp::checksum;

/// TCP flag bits (byte 13 of the header).
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
/// The receive window a Linux SYN advertises (64240 = 44 × 1460).
const SYN_WINDOW: u16 = 64240;
/// The window scale a Linux stack with default buffers advertises.
const WINDOW_SCALE: u8 = 7;
/// IP protocol number of TCP.
const PROTO_TCP: u8 = 6;

/// The maximum segment size a SYN announces: what fits an Ethernet MTU of 1500 after the IP
/// and TCP headers, as a real stack on such a link would announce.
pub(super) fn mss(dst: IpAddr) -> u16 {
    match dst {
        IpAddr::V4(_) => 1460,
        IpAddr::V6(_) => 1440,
    }
}

/// Appends a SYN from `src:sport` to `dst:dport` with sequence number `seq`. Options, in Linux's
/// order: MSS, SACK permitted, timestamps (`tsval`), NOP, window scale. Middleboxes that drop
/// option-less SYNs (scanner heuristics) see an ordinary connection attempt.
pub(super) fn syn(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    seq: u32,
    tsval: u32,
    out: &mut Vec<u8>,
) {
    let mut opts = [0u8; 20];
    opts[0..4].copy_from_slice(&[2, 4, 0, 0]);
    opts[2..4].copy_from_slice(&mss(dst).to_be_bytes());
    opts[4..6].copy_from_slice(&[4, 2]);
    opts[6..8].copy_from_slice(&[8, 10]);
    opts[8..12].copy_from_slice(&tsval.to_be_bytes());
    // opts[12..16]: TSecr 0 in a SYN.
    opts[16..20].copy_from_slice(&[1, 3, 3, WINDOW_SCALE]);
    segment(src, sport, dst, dport, seq, 0, SYN, SYN_WINDOW, &opts, out);
}

/// Appends the reset that ends the half-open connection a SYN-ACK opened: sequence number =
/// the SYN-ACK's acknowledgement number, no ACK bit — exactly what a stack sends for a segment
/// that belongs to no connection (RFC 9293 §3.10.7.1).
pub(super) fn reset(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, seq: u32, out: &mut Vec<u8>) {
    segment(src, sport, dst, dport, seq, 0, RST, 0, &[], out);
}

#[allow(clippy::too_many_arguments)]
fn segment(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: &[u8],
    out: &mut Vec<u8>,
) {
    debug_assert!(options.len().is_multiple_of(4) && options.len() <= 40);
    let start = out.len();
    let header_len = 20 + options.len();
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ack.to_be_bytes());
    out.push(((header_len / 4) as u8) << 4);
    out.push(flags);
    out.extend_from_slice(&window.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    out.extend_from_slice(options);
    let sum = transport_checksum(src, dst, PROTO_TCP, &out[start..]);
    out[start + 16..start + 18].copy_from_slice(&sum.to_be_bytes());
}

/// The checksum of a TCP or UDP segment (whose checksum field is zero) over the IPv4 or IPv6
/// pseudo-header (RFC 9293 §3.1, RFC 8200 §8.1).
pub(crate) fn transport_checksum(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> u16 {
    let mut buf = Vec::with_capacity(40 + segment.len());
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&d.octets());
            buf.extend_from_slice(&[0, proto]);
            buf.extend_from_slice(&(segment.len() as u16).to_be_bytes());
        }
        (s, d) => {
            buf.extend_from_slice(&v6_octets(s));
            buf.extend_from_slice(&v6_octets(d));
            buf.extend_from_slice(&(segment.len() as u32).to_be_bytes());
            buf.extend_from_slice(&[0, 0, 0, proto]);
        }
    }
    buf.extend_from_slice(segment);
    checksum(&buf)
}

fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V6(v6) => v6.octets(),
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
    }
}

/// What a received segment says about one of our SYNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reply {
    /// The answering port (the probe's destination port).
    pub sport: u16,
    /// Our source port.
    pub dport: u16,
    /// The peer's sequence number.
    pub seq: u32,
    /// The acknowledgement number: our SYN's sequence number + 1.
    pub ack: u32,
    /// What it is.
    pub kind: ReplyKind,
}

/// The kinds of answer to a SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReplyKind {
    /// SYN-ACK: the port is open.
    SynAck,
    /// RST (with ACK): the port is closed.
    Reset,
    /// A bare ACK: the target still holds a half-open connection of an earlier SYN with the
    /// same ports and answers a new SYN with an acknowledgement of the old one (RFC 9293's
    /// out-of-window rule), instead of a SYN-ACK.
    Ack,
}

/// Parses a TCP segment (from its header on) as an answer to a SYN: a SYN-ACK, an RST-ACK or a
/// bare ACK. Anything else (our own SYNs seen on loopback, data, FINs) is `None`.
pub(super) fn parse_reply(segment: &[u8]) -> Option<Reply> {
    let h = TcpHeaderSlice::from_slice(segment).ok()?;
    let flags = segment[13];
    if flags & ACK == 0 || flags & FIN != 0 {
        return None;
    }
    let kind = if flags & RST != 0 {
        ReplyKind::Reset
    } else if flags & SYN != 0 {
        ReplyKind::SynAck
    } else if h.slice().len() == segment.len() {
        ReplyKind::Ack
    } else {
        return None;
    };
    Some(Reply {
        sport: h.source_port(),
        dport: h.destination_port(),
        seq: h.sequence_number(),
        ack: h.acknowledgment_number(),
        kind,
    })
}

/// A classic BPF program for the probe's raw TCP socket: accept only segments from
/// `remote_port` to a port in `first..=last`. IPv4 raw sockets see the IP header (whose length
/// the program reads), IPv6 raw sockets start at the TCP header.
pub(super) fn answer_filter(v6: bool, remote_port: u16, first: u16, last: u16) -> Vec<SockFilter> {
    answer_program(v6, remote_port, first, last)
        .into_iter()
        .map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k))
        .collect()
}

fn answer_program(v6: bool, remote_port: u16, first: u16, last: u16) -> Vec<libc::sock_filter> {
    use libc::{
        BPF_ABS, BPF_B, BPF_H, BPF_IND, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_K, BPF_LD, BPF_LDX,
        BPF_MSH, BPF_RET,
    };
    let ins = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let mut p = Vec::with_capacity(8);
    let mode = if v6 {
        BPF_ABS
    } else {
        // X = 4 × IHL: the IPv4 header length; ports are then read at X + 0 and X + 2.
        p.push(ins(BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0));
        BPF_IND
    };
    // Jump offsets count from the next instruction: accept is 3/2/1 ahead, drop one further.
    p.push(ins(BPF_LD | BPF_H | mode, 0, 0, 0));
    p.push(ins(BPF_JMP | BPF_JEQ | BPF_K, 0, 4, u32::from(remote_port)));
    p.push(ins(BPF_LD | BPF_H | mode, 0, 0, 2));
    p.push(ins(BPF_JMP | BPF_JGE | BPF_K, 0, 2, u32::from(first)));
    p.push(ins(BPF_JMP | BPF_JGT | BPF_K, 1, 0, u32::from(last)));
    p.push(ins(BPF_RET | BPF_K, 0, 0, u32::MAX));
    p.push(ins(BPF_RET | BPF_K, 0, 0, 0));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_ipv4_syn_has_linux_options_and_a_checksum_etherparse_agrees_with() {
        let (src, dst) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let mut p = Vec::new();
        syn(src, 40000, dst, 80, 0xdead_beef, 12345, &mut p);
        assert_eq!(p.len(), 40);
        let h = TcpHeaderSlice::from_slice(&p).unwrap();
        assert!(h.syn() && !h.ack() && !h.rst());
        assert_eq!((h.source_port(), h.destination_port()), (40000, 80));
        assert_eq!(h.sequence_number(), 0xdead_beef);
        assert_eq!(h.window_size(), SYN_WINDOW);
        // MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
        assert_eq!(&h.options()[..8], &[2, 4, 0x05, 0xb4, 4, 2, 8, 10]);
        assert_eq!(&h.options()[8..12], &12345u32.to_be_bytes());
        assert_eq!(&h.options()[16..], &[1, 3, 3, 7]);
        let (IpAddr::V4(s4), IpAddr::V4(d4)) = (src, dst) else {
            unreachable!()
        };
        let expect = h
            .to_header()
            .calc_checksum_ipv4_raw(s4.octets(), d4.octets(), &[])
            .unwrap();
        assert_eq!(h.checksum(), expect);
    }

    #[test]
    fn an_ipv6_reset_checksums_over_the_ipv6_pseudo_header() {
        let (src, dst) = (ip("2001:db8::1"), ip("2001:db8::2"));
        let mut p = Vec::new();
        reset(src, 40001, dst, 443, 7, &mut p);
        let h = TcpHeaderSlice::from_slice(&p).unwrap();
        assert!(h.rst() && !h.ack() && !h.syn());
        assert_eq!(h.sequence_number(), 7);
        let (IpAddr::V6(s6), IpAddr::V6(d6)) = (src, dst) else {
            unreachable!()
        };
        let expect = h
            .to_header()
            .calc_checksum_ipv6_raw(s6.octets(), d6.octets(), &[])
            .unwrap();
        assert_eq!(h.checksum(), expect);
        // A correct checksum makes the sum over pseudo-header and segment come out as zero.
        let mut zeroed = p.clone();
        zeroed[16..18].copy_from_slice(&[0, 0]);
        assert_eq!(transport_checksum(src, dst, 6, &zeroed), h.checksum());
    }

    #[test]
    fn syn_acks_and_resets_parse_and_everything_else_is_ignored() {
        let (a, b) = (ip("10.0.0.2"), ip("10.0.0.1"));
        let mut synack = Vec::new();
        segment(
            a,
            80,
            b,
            40000,
            555,
            1001,
            SYN | ACK,
            65000,
            &[],
            &mut synack,
        );
        assert_eq!(
            parse_reply(&synack),
            Some(Reply {
                sport: 80,
                dport: 40000,
                seq: 555,
                ack: 1001,
                kind: ReplyKind::SynAck
            })
        );
        let mut rst = Vec::new();
        segment(a, 81, b, 40000, 0, 1001, RST | ACK, 0, &[], &mut rst);
        assert_eq!(parse_reply(&rst).unwrap().kind, ReplyKind::Reset);
        let mut own_syn = Vec::new();
        syn(b, 40000, a, 80, 1000, 1, &mut own_syn);
        assert_eq!(parse_reply(&own_syn), None, "a SYN is not an answer");
        let mut ack = Vec::new();
        segment(a, 80, b, 40000, 556, 1001, ACK, 65000, &[], &mut ack);
        assert_eq!(parse_reply(&ack).unwrap().kind, ReplyKind::Ack);
        let mut data = ack.clone();
        data.extend_from_slice(b"hello");
        assert_eq!(parse_reply(&data), None, "data is no answer to a SYN");
        let mut bare_rst = Vec::new();
        reset(b, 40000, a, 80, 1001, &mut bare_rst);
        assert_eq!(
            parse_reply(&bare_rst),
            None,
            "a reset without ACK answers no SYN"
        );
        assert_eq!(parse_reply(&[0u8; 10]), None);
    }

    /// Runs the subset of classic BPF the filter uses, as the kernel would.
    fn run_bpf(prog: &[libc::sock_filter], pkt: &[u8]) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let half = |at: usize| {
            pkt.get(at..at + 2)
                .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]])))
        };
        loop {
            let i = prog[pc];
            pc += 1;
            let code = u32::from(i.code);
            match code {
                c if c == libc::BPF_LDX | libc::BPF_B | libc::BPF_MSH => {
                    x = 4 * u32::from(pkt[i.k as usize] & 0xf);
                }
                c if c == libc::BPF_LD | libc::BPF_H | libc::BPF_ABS => match half(i.k as usize) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == libc::BPF_LD | libc::BPF_H | libc::BPF_IND => {
                    match half((x + i.k) as usize) {
                        Some(v) => a = v,
                        None => return 0,
                    }
                }
                c if c & 0x07 == libc::BPF_JMP => {
                    let taken = match code & 0xf0 {
                        op if op == libc::BPF_JEQ => a == i.k,
                        op if op == libc::BPF_JGE => a >= i.k,
                        op if op == libc::BPF_JGT => a > i.k,
                        op => panic!("unexpected jump {op:#x}"),
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                c if c == libc::BPF_RET | libc::BPF_K => return i.k,
                c => panic!("unexpected instruction {c:#x}"),
            }
        }
    }

    #[test]
    fn the_filter_accepts_answers_to_our_ports_only() {
        let (us, them) = (ip("10.0.0.1"), ip("10.0.0.2"));
        for v6 in [false, true] {
            let prog = answer_program(v6, 80, 33000, 33003);
            let packet = |sport: u16, dport: u16| {
                let mut tcp = Vec::new();
                segment(them, sport, us, dport, 1, 2, SYN | ACK, 100, &[], &mut tcp);
                if v6 {
                    return tcp;
                }
                // An IPv4 header with options (IHL 6) proves the program reads the length.
                let mut p = vec![0x46, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0];
                p.extend_from_slice(&[10, 0, 0, 2, 10, 0, 0, 1, 1, 1, 1, 1]);
                p.extend_from_slice(&tcp);
                p
            };
            let verdict = |s, d| run_bpf(&prog, &packet(s, d)) != 0;
            assert!(verdict(80, 33000) && verdict(80, 33003), "v6={v6}");
            assert!(!verdict(80, 32999) && !verdict(80, 33004), "v6={v6}");
            assert!(!verdict(81, 33001), "v6={v6}: another remote port");
            assert!(!verdict(33001, 80), "v6={v6}: our own SYN seen on loopback");
        }
    }
}
