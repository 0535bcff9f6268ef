//! ICMP extensions (RFC 4884) and the MPLS label stack object they may carry (RFC 4950): a
//! router inside an MPLS tunnel appends the labels the expired packet carried to its time
//! exceeded message, which tells an engineer that a hop is an LSR and which LSP it was on.
//!
//! Decision: extensions are read where RFC 4884 puts them (after the original datagram, whose
//! length the message states) and, for routers that predate RFC 4884 and leave that length at
//! zero, at the fixed offset 128 — but only when a version-2 header with a valid checksum is
//! there, so quoted payload bytes are never mistaken for labels.

use vantage_proto::{Family, MplsLabel};

use crate::sock::icmp;

/// Offset of extensions from the start of the original datagram when the router did not say
/// (RFC 4884 §5: the original datagram is padded to 128 bytes).
const LEGACY_OFFSET: usize = 128;
/// Extension structure version (RFC 4884 §7).
const VERSION: u8 = 2;
/// MPLS label stack object: class-num 1, c-type 1 (RFC 4950).
const CLASS_MPLS: u8 = 1;
const CTYPE_INCOMING_STACK: u8 = 1;

/// The MPLS label stack in the extensions of an ICMP error message (`msg` starts at the ICMP
/// header); empty when there is none.
pub(crate) fn mpls_labels(family: Family, msg: &[u8]) -> Vec<MplsLabel> {
    let Some(ext) = extensions(family, msg) else {
        return Vec::new();
    };
    let mut labels = Vec::new();
    let mut objects = &ext[4..];
    while objects.len() >= 4 {
        let len = usize::from(u16::from_be_bytes([objects[0], objects[1]]));
        if len < 4 || len > objects.len() {
            break;
        }
        let (class, ctype) = (objects[2], objects[3]);
        if class == CLASS_MPLS && ctype == CTYPE_INCOMING_STACK {
            for e in objects[4..len].chunks_exact(4) {
                let v = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
                labels.push(MplsLabel {
                    label: v >> 12,
                    tc: ((v >> 9) & 0x7) as u8,
                    s: (v >> 8) & 1 == 1,
                    ttl: (v & 0xff) as u8,
                });
            }
        }
        objects = &objects[len..];
    }
    labels
}

/// The extension structure (header included) of an ICMP error, if it has one.
fn extensions(family: Family, msg: &[u8]) -> Option<&[u8]> {
    if msg.len() < 8 || !icmp::is_error(family, msg[0]) {
        return None;
    }
    // RFC 4884: the length of the original datagram, in 32-bit words for ICMPv4 (byte 5) and
    // in 64-bit words for ICMPv6 (byte 4).
    let stated = match family {
        Family::Ipv4 => usize::from(msg[5]) * 4,
        Family::Ipv6 => usize::from(msg[4]) * 8,
    };
    let body = &msg[8..];
    if stated > 0 {
        let ext = body.get(stated..)?;
        return valid_header(ext, false).then_some(ext);
    }
    let ext = body.get(LEGACY_OFFSET..)?;
    valid_header(ext, true).then_some(ext)
}

/// A version-2 extension header with a correct checksum (a zero checksum, "not computed", is
/// accepted only where the router stated the length).
fn valid_header(ext: &[u8], strict: bool) -> bool {
    if ext.len() < 4 || ext[0] >> 4 != VERSION {
        return false;
    }
    let sum = u16::from_be_bytes([ext[2], ext[3]]);
    if sum == 0 {
        return !strict;
    }
    icmp::checksum(ext) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An extension structure with one MPLS object holding `entries`.
    fn mpls_ext(entries: &[(u32, u8, bool, u8)], checksum: bool) -> Vec<u8> {
        let mut obj = Vec::new();
        obj.extend_from_slice(&((4 + 4 * entries.len()) as u16).to_be_bytes());
        obj.extend_from_slice(&[CLASS_MPLS, CTYPE_INCOMING_STACK]);
        for &(label, tc, s, ttl) in entries {
            let v = (label << 12) | (u32::from(tc) << 9) | (u32::from(s) << 8) | u32::from(ttl);
            obj.extend_from_slice(&v.to_be_bytes());
        }
        let mut ext = vec![VERSION << 4, 0, 0, 0];
        ext.extend_from_slice(&obj);
        if checksum {
            let c = icmp::checksum(&ext);
            ext[2..4].copy_from_slice(&c.to_be_bytes());
        }
        ext
    }

    /// A time exceeded message: header with the stated length, a quote padded to 128 bytes,
    /// then `ext`.
    fn time_exceeded(family: Family, stated: bool, ext: &[u8]) -> Vec<u8> {
        let ty = match family {
            Family::Ipv4 => icmp::V4_TIME_EXCEEDED,
            Family::Ipv6 => icmp::V6_TIME_EXCEEDED,
        };
        let mut m = vec![ty, 0, 0, 0, 0, 0, 0, 0];
        if stated {
            match family {
                Family::Ipv4 => m[5] = (128 / 4) as u8,
                Family::Ipv6 => m[4] = (128 / 8) as u8,
            }
        }
        m.extend(std::iter::repeat_n(0x45u8, 128));
        m.extend_from_slice(ext);
        m
    }

    #[test]
    fn a_two_label_stack_is_read_for_both_families() {
        let ext = mpls_ext(&[(16004, 0, false, 1), (299_792, 5, true, 1)], true);
        for family in [Family::Ipv4, Family::Ipv6] {
            let labels = mpls_labels(family, &time_exceeded(family, true, &ext));
            assert_eq!(
                labels,
                vec![
                    MplsLabel {
                        label: 16004,
                        tc: 0,
                        s: false,
                        ttl: 1
                    },
                    MplsLabel {
                        label: 299_792,
                        tc: 5,
                        s: true,
                        ttl: 1
                    },
                ],
                "{family}"
            );
        }
    }

    #[test]
    fn routers_that_leave_the_length_at_zero_are_read_at_offset_128() {
        let ext = mpls_ext(&[(24001, 0, true, 254)], true);
        let labels = mpls_labels(Family::Ipv4, &time_exceeded(Family::Ipv4, false, &ext));
        assert_eq!(labels.len(), 1);
        assert_eq!((labels[0].label, labels[0].ttl), (24001, 254));
        // Without a checksum the legacy position is not trusted.
        let ext = mpls_ext(&[(24001, 0, true, 254)], false);
        assert!(mpls_labels(Family::Ipv4, &time_exceeded(Family::Ipv4, false, &ext)).is_empty());
    }

    #[test]
    fn payload_bytes_are_not_taken_for_extensions() {
        // A long quote with no extension: version nibble is not 2 or the checksum fails.
        let mut m = time_exceeded(Family::Ipv4, false, &[0x20, 0, 0x12, 0x34, 0, 8, 1, 1]);
        assert!(mpls_labels(Family::Ipv4, &m).is_empty());
        m.truncate(100);
        assert!(mpls_labels(Family::Ipv4, &m).is_empty());
        // A corrupted checksum with a stated length is refused too.
        let mut ext = mpls_ext(&[(1, 0, true, 1)], true);
        ext[3] ^= 0xff;
        assert!(mpls_labels(Family::Ipv6, &time_exceeded(Family::Ipv6, true, &ext)).is_empty());
        // Echo replies have no extensions.
        assert!(mpls_labels(Family::Ipv4, &[0, 0, 0, 0, 0, 32, 0, 0]).is_empty());
    }
}
