//! Batched I/O: one `sendmmsg` for up to [`MAX_BATCH`] packets, one `recvmmsg` for up to
//! [`MAX_BATCH`] packets with their control messages.
//!
//! Buffers are plain byte vectors owned by the batch; the kernel's `mmsghdr` / `iovec` arrays are
//! rebuilt on the stack for each call, so no raw pointer outlives a system call and the batches
//! are `Send` (they can live in a tokio task across awaits). Control messages and socket
//! addresses are decoded from bytes by hand, which needs no `unsafe` and no alignment.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

use super::stamp::Stamp;

/// Most packets moved by one system call.
pub const MAX_BATCH: usize = 64;
/// Control buffer per received packet. Smaller buffers truncate (`MSG_CTRUNC`, reported by some
/// wrappers as `ENOBUFS`) when an IPv6 extended error and a timestamp arrive together.
const CTRL_LEN: usize = 512;
/// Room for socket addresses (`sockaddr_storage`).
const NAME_LEN: usize = 128;
/// Control buffer per sent packet: a TX-stamp key and a TTL fit in 48 bytes.
const SEND_CTRL_LEN: usize = 64;
/// `SCM_TS_OPT_ID` (asm-generic/socket.h, Linux 6.13): the TX-stamp key of this packet.
const SCM_TS_OPT_ID: libc::c_int = 81;
/// `SCM_TSTAMP_SND` (linux/errqueue.h): the stamp taken as the packet left for the device.
const SCM_TSTAMP_SND: u32 = 0;
/// `SO_EE_ORIGIN_TIMESTAMPING` (linux/errqueue.h).
const ORIGIN_TIMESTAMPING: u8 = 4;

// Kernel timespecs are decoded as two native i64; this layout is that of every 64-bit Linux.
const _: () = assert!(size_of::<libc::timespec>() == 16);

/// A set of received packets and their metadata, reused from call to call.
pub struct RecvBatch {
    capacity: usize,
    buf_len: usize,
    data: Vec<u8>,
    ctrl: Vec<u8>,
    names: Vec<u8>,
    meta: Vec<Meta>,
    count: usize,
}

#[derive(Debug, Clone, Copy, Default)]
struct Meta {
    len: usize,
    ctrl_len: usize,
    name_len: usize,
    flags: libc::c_int,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("capacity", &self.capacity)
            .field("buf_len", &self.buf_len)
            .field("count", &self.count)
            .finish()
    }
}

impl RecvBatch {
    /// A batch for up to `capacity` packets (at most [`MAX_BATCH`]) of up to `buf_len` bytes
    /// each; longer packets are truncated and flagged.
    pub fn new(capacity: usize, buf_len: usize) -> RecvBatch {
        let capacity = capacity.clamp(1, MAX_BATCH);
        let buf_len = buf_len.max(1);
        RecvBatch {
            capacity,
            buf_len,
            data: vec![0; capacity * buf_len],
            ctrl: vec![0; capacity * CTRL_LEN],
            names: vec![0; capacity * NAME_LEN],
            meta: vec![Meta::default(); capacity],
            count: 0,
        }
    }

    /// Most packets one call can receive.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Packets received by the last call.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the last call received nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Packet `i` of the last call, with its decoded control messages.
    pub fn get(&self, i: usize) -> Received<'_> {
        let m = self.meta[i];
        let start = i * self.buf_len;
        let data = &self.data[start..start + m.len.min(self.buf_len)];
        let name = &self.names[i * NAME_LEN..i * NAME_LEN + m.name_len.min(NAME_LEN)];
        let ctrl = &self.ctrl[i * CTRL_LEN..i * CTRL_LEN + m.ctrl_len.min(CTRL_LEN)];
        let mut r = Received {
            data,
            from: decode_sockaddr(name),
            stamp: None,
            ttl: None,
            dst: None,
            error: None,
            truncated: m.flags & libc::MSG_TRUNC != 0 || m.len > self.buf_len,
            control_truncated: m.flags & libc::MSG_CTRUNC != 0,
        };
        decode_cmsgs(ctrl, &mut r);
        r
    }

    /// Every packet of the last call.
    pub fn iter(&self) -> impl Iterator<Item = Received<'_>> {
        (0..self.count).map(|i| self.get(i))
    }
}

/// One received packet (or error-queue entry) and what the kernel said about it.
#[derive(Debug, Clone)]
pub struct Received<'a> {
    /// The bytes: for raw IPv4 sockets from the IP header on, otherwise the transport header
    /// on; for error-queue ICMP entries the packet that caused the error; empty for TX stamps.
    pub data: &'a [u8],
    /// The sender (for error-queue entries: the original destination).
    pub from: Option<SocketAddr>,
    /// The kernel stamp: arrival time for packets, departure time for TX-stamp entries.
    pub stamp: Option<Stamp>,
    /// TTL / hop limit of the received packet.
    pub ttl: Option<u8>,
    /// Destination address of the received packet (with [`super::Options::recv_dst`]).
    pub dst: Option<IpAddr>,
    /// The extended error of an error-queue entry.
    pub error: Option<ExtendedError>,
    /// The packet was longer than the buffer.
    pub truncated: bool,
    /// Some control messages did not fit (never expected with our buffer size).
    pub control_truncated: bool,
}

impl Received<'_> {
    /// For a TX-stamp entry of the error queue: the packet's key and its departure time.
    pub fn tx_stamp(&self) -> Option<(u32, Stamp)> {
        let e = self.error.as_ref()?;
        if e.origin == ORIGIN_TIMESTAMPING && e.info == SCM_TSTAMP_SND {
            Some((e.data, self.stamp?))
        } else {
            None
        }
    }
}

/// An error-queue entry's `sock_extended_err`: an ICMP error about one of our packets, or a TX
/// timestamp notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtendedError {
    /// The errno the error maps to (`EHOSTUNREACH`, `ENOMSG` for timestamps …).
    pub errno: u32,
    /// `SO_EE_ORIGIN_*`: 2 ICMP, 3 ICMPv6, 4 timestamping.
    pub origin: u8,
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub icmp_code: u8,
    /// ICMP: the MTU for "fragmentation needed"; timestamps: the stamp type.
    pub info: u32,
    /// Timestamps: the packet's `OPT_ID` key.
    pub data: u32,
    /// The address that sent the ICMP error.
    pub offender: Option<IpAddr>,
}

impl ExtendedError {
    /// Whether this is an ICMP or ICMPv6 error (not a timestamp).
    pub fn is_icmp(&self) -> bool {
        self.origin == libc::SO_EE_ORIGIN_ICMP || self.origin == libc::SO_EE_ORIGIN_ICMP6
    }
}

/// `recvmmsg` into `batch` without blocking; `flags` adds e.g. `MSG_ERRQUEUE`.
pub(super) fn recv(fd: RawFd, batch: &mut RecvBatch, flags: libc::c_int) -> io::Result<usize> {
    let cap = batch.capacity;
    // SAFETY: iovec and mmsghdr are plain C structs for which all-zero bytes (null pointers,
    // zero lengths) are a valid value.
    let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
    let data = batch.data.as_mut_ptr();
    let ctrl = batch.ctrl.as_mut_ptr();
    let names = batch.names.as_mut_ptr();
    for (i, iov) in iovs.iter_mut().enumerate().take(cap) {
        iov.iov_base = data.wrapping_add(i * batch.buf_len).cast();
        iov.iov_len = batch.buf_len;
    }
    let iov_base = iovs.as_mut_ptr();
    for (i, hdr) in hdrs.iter_mut().enumerate().take(cap) {
        let h = &mut hdr.msg_hdr;
        h.msg_name = names.wrapping_add(i * NAME_LEN).cast();
        h.msg_namelen = NAME_LEN as libc::socklen_t;
        h.msg_iov = iov_base.wrapping_add(i);
        h.msg_iovlen = 1;
        h.msg_control = ctrl.wrapping_add(i * CTRL_LEN).cast();
        h.msg_controllen = CTRL_LEN;
    }
    // SAFETY: every header points into buffers owned by `batch` (data, control and name areas
    // of exactly the advertised lengths, disjoint per message) or into `iovs`, all of which
    // live until the call returns; `cap` ≤ MAX_BATCH headers are initialised. `fd` is an open
    // socket owned by the caller.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            hdrs.as_mut_ptr(),
            cap as libc::c_uint,
            flags | libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        batch.count = 0;
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    for (m, h) in batch.meta.iter_mut().zip(&hdrs).take(n) {
        *m = Meta {
            len: h.msg_len as usize,
            ctrl_len: h.msg_hdr.msg_controllen,
            name_len: h.msg_hdr.msg_namelen as usize,
            flags: h.msg_hdr.msg_flags,
        };
    }
    batch.count = n;
    Ok(n)
}

/// Packets to send with one `sendmmsg`: destination, bytes, and the key under which the
/// kernel should report the packet's TX stamp.
#[derive(Debug, Default)]
pub struct SendBatch {
    data: Vec<u8>,
    items: Vec<Item>,
}

#[derive(Debug)]
struct Item {
    dst: socket2::SockAddr,
    start: usize,
    len: usize,
    want_key: u32,
    key: Option<u32>,
    ttl: Option<u8>,
}

impl SendBatch {
    /// An empty batch.
    pub fn new() -> SendBatch {
        SendBatch::default()
    }

    /// Adds a packet for `dst`. `key` is the TX-stamp key to ask for (the probe's own number);
    /// see [`SendBatch::key`] for the key actually assigned.
    pub fn push(&mut self, dst: SocketAddr, packet: &[u8], key: u32) {
        self.push_item(dst, packet, key, None);
    }

    /// Adds a packet that leaves with its own TTL / hop limit (traceroute), overriding the
    /// socket's.
    pub fn push_with_ttl(&mut self, dst: SocketAddr, packet: &[u8], key: u32, ttl: u8) {
        self.push_item(dst, packet, key, Some(ttl));
    }

    fn push_item(&mut self, dst: SocketAddr, packet: &[u8], key: u32, ttl: Option<u8>) {
        let start = self.data.len();
        self.data.extend_from_slice(packet);
        self.items.push(Item {
            dst: dst.into(),
            start,
            len: packet.len(),
            want_key: key,
            key: None,
            ttl,
        });
    }

    /// Removes every packet.
    pub fn clear(&mut self) {
        self.data.clear();
        self.items.clear();
    }

    /// Number of packets.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch holds no packet.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The key the kernel will report packet `i`'s TX stamp under, once it was sent on a socket
    /// with TX stamps: the requested key where the kernel takes per-packet keys, the socket's
    /// running count otherwise.
    pub fn key(&self, i: usize) -> Option<u32> {
        self.items[i].key
    }

    pub(super) fn keys_as_requested(&mut self, from: usize, n: usize) {
        for it in &mut self.items[from..from + n] {
            it.key = Some(it.want_key);
        }
    }

    pub(super) fn keys_counted(&mut self, from: usize, n: usize, first: u32) {
        for (j, it) in self.items[from..from + n].iter_mut().enumerate() {
            it.key = Some(first.wrapping_add(j as u32));
        }
    }
}

/// `sendmmsg` of `batch[from..]` (at most [`MAX_BATCH`]) without blocking. With `key_cmsg`
/// every packet carries its TX-stamp key as `SCM_TS_OPT_ID`.
pub(super) fn send(fd: RawFd, batch: &SendBatch, from: usize, key_cmsg: bool) -> io::Result<usize> {
    let n = batch.items.len().saturating_sub(from).min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: plain C structs; all-zero bytes are a valid value.
    let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
    let mut ctrls = [[0u8; SEND_CTRL_LEN]; MAX_BATCH];
    let mut clens = [0usize; MAX_BATCH];
    let data = batch.data.as_ptr();
    let items = &batch.items[from..from + n];
    for (j, it) in items.iter().enumerate() {
        iovs[j].iov_base = data.wrapping_add(it.start).cast_mut().cast();
        iovs[j].iov_len = it.len;
        let buf = &mut ctrls[j];
        let mut clen = 0;
        if key_cmsg {
            let key = it.want_key.to_ne_bytes();
            clen += put_cmsg(&mut buf[clen..], libc::SOL_SOCKET, SCM_TS_OPT_ID, &key);
        }
        if let Some(ttl) = it.ttl {
            let (level, ty) = if it.dst.is_ipv6() {
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT)
            } else {
                (libc::IPPROTO_IP, libc::IP_TTL)
            };
            let v = libc::c_int::from(ttl).to_ne_bytes();
            clen += put_cmsg(&mut buf[clen..], level, ty, &v);
        }
        clens[j] = clen;
    }
    let iov_base = iovs.as_mut_ptr();
    let ctrl_base = ctrls.as_mut_ptr();
    for (j, it) in items.iter().enumerate() {
        let h = &mut hdrs[j].msg_hdr;
        h.msg_name = it.dst.as_ptr().cast_mut().cast();
        h.msg_namelen = it.dst.len();
        h.msg_iov = iov_base.wrapping_add(j);
        h.msg_iovlen = 1;
        if clens[j] > 0 {
            h.msg_control = ctrl_base.wrapping_add(j).cast();
            h.msg_controllen = clens[j];
        }
    }
    // SAFETY: the `n` headers point into `batch` (packet bytes and destination addresses, which
    // the kernel only reads), into `iovs` and into `ctrls`, all alive until the call returns,
    // with exact lengths. `fd` is an open socket owned by the caller.
    let rc =
        unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

const fn cmsg_align(len: usize) -> usize {
    (len + size_of::<usize>() - 1) & !(size_of::<usize>() - 1)
}

/// Size of `struct cmsghdr` (`cmsg_len` is a `size_t` on glibc, then two ints).
const CMSG_HDR: usize = size_of::<libc::cmsghdr>();

/// Writes one control message into `buf`; returns the space it takes.
fn put_cmsg(buf: &mut [u8], level: libc::c_int, ty: libc::c_int, data: &[u8]) -> usize {
    let hdr = cmsg_align(CMSG_HDR);
    let len = hdr + data.len();
    let space = hdr + cmsg_align(data.len());
    buf[..size_of::<usize>()].copy_from_slice(&len.to_ne_bytes());
    let o = size_of::<usize>();
    buf[o..o + 4].copy_from_slice(&level.to_ne_bytes());
    buf[o + 4..o + 8].copy_from_slice(&ty.to_ne_bytes());
    buf[hdr..hdr + data.len()].copy_from_slice(data);
    space
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn read_i64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Walks the control messages of one packet and fills in what we understand.
fn decode_cmsgs(ctrl: &[u8], r: &mut Received<'_>) {
    let hdr = cmsg_align(CMSG_HDR);
    let mut off = 0;
    while off + CMSG_HDR <= ctrl.len() {
        let len_bytes = &ctrl[off..off + size_of::<usize>()];
        let len = usize::from_ne_bytes(len_bytes.try_into().unwrap_or_default());
        if len < CMSG_HDR || off + len > ctrl.len() {
            break;
        }
        let o = off + size_of::<usize>();
        let level = read_u32(ctrl, o).unwrap_or_default() as libc::c_int;
        let ty = read_u32(ctrl, o + 4).unwrap_or_default() as libc::c_int;
        let data = &ctrl[off + hdr..off + len];
        decode_one(level, ty, data, r);
        off += cmsg_align(len);
    }
}

fn decode_one(level: libc::c_int, ty: libc::c_int, data: &[u8], r: &mut Received<'_>) {
    match (level, ty) {
        (libc::SOL_SOCKET, libc::SO_TIMESTAMPING) => {
            // Three timespecs: software, (deprecated), raw hardware. We ask for software.
            if let (Some(s), Some(ns)) = (read_i64(data, 0), read_i64(data, 8)) {
                let st = Stamp::from_timespec(s, ns);
                if !st.is_zero() {
                    r.stamp = Some(st);
                }
            }
        }
        (libc::SOL_SOCKET, libc::SO_TIMESTAMPNS) => {
            if let (Some(s), Some(ns)) = (read_i64(data, 0), read_i64(data, 8)) {
                r.stamp = Some(Stamp::from_timespec(s, ns));
            }
        }
        (libc::IPPROTO_IP, libc::IP_TTL) | (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
            r.ttl = read_u32(data, 0).and_then(|v| u8::try_from(v).ok());
        }
        (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
            // struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
            if let Some(b) = data.get(8..12) {
                r.dst = Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])));
            }
        }
        (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
            // struct in6_pktinfo { in6_addr addr; int ifindex; }
            if let Some(b) = data.get(0..16) {
                let a: [u8; 16] = b.try_into().unwrap_or_default();
                r.dst = Some(IpAddr::V6(Ipv6Addr::from(a)));
            }
        }
        (libc::IPPROTO_IP, libc::IP_RECVERR) | (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
            if data.len() >= 16 =>
        {
            // struct sock_extended_err (16 bytes), then the offender's sockaddr.
            r.error = Some(ExtendedError {
                errno: read_u32(data, 0).unwrap_or_default(),
                origin: data[4],
                icmp_type: data[5],
                icmp_code: data[6],
                info: read_u32(data, 8).unwrap_or_default(),
                data: read_u32(data, 12).unwrap_or_default(),
                offender: decode_sockaddr(&data[16..]).map(|a| a.ip()),
            });
        }
        _ => {}
    }
}

/// Decodes a `sockaddr_in` / `sockaddr_in6`; `None` for anything else (`AF_UNSPEC` offenders
/// of timestamp entries, empty names).
fn decode_sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
    match libc::c_int::from(family) {
        libc::AF_INET => {
            let a = b.get(4..8)?;
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::new(a[0], a[1], a[2], a[3]),
                port,
            )))
        }
        libc::AF_INET6 => {
            let flow = u32::from_be_bytes(b.get(4..8)?.try_into().ok()?);
            let addr: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let scope = read_u32(b, 24)?;
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(addr),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_round_trip_through_the_encoder_and_decoder() {
        let mut buf = [0u8; 256];
        let mut n = put_cmsg(
            &mut buf,
            libc::IPPROTO_IP,
            libc::IP_TTL,
            &61i32.to_ne_bytes(),
        );
        let mut ts = Vec::new();
        ts.extend_from_slice(&1_700_000_000i64.to_ne_bytes());
        ts.extend_from_slice(&250_000i64.to_ne_bytes());
        ts.extend_from_slice(&[0u8; 32]);
        n += put_cmsg(&mut buf[n..], libc::SOL_SOCKET, libc::SO_TIMESTAMPING, &ts);
        let mut r = Received {
            data: &[],
            from: None,
            stamp: None,
            ttl: None,
            dst: None,
            error: None,
            truncated: false,
            control_truncated: false,
        };
        decode_cmsgs(&buf[..n], &mut r);
        assert_eq!(r.ttl, Some(61));
        assert_eq!(r.stamp, Some(Stamp::from_timespec(1_700_000_000, 250_000)));
    }

    #[test]
    fn socket_addresses_decode_from_their_kernel_layout() {
        let v4: socket2::SockAddr = "192.0.2.7:33434".parse::<SocketAddr>().unwrap().into();
        // SAFETY (test): reading the bytes of a live sockaddr of the length it reports.
        let bytes =
            unsafe { std::slice::from_raw_parts(v4.as_ptr().cast::<u8>(), v4.len() as usize) };
        assert_eq!(
            decode_sockaddr(bytes),
            Some("192.0.2.7:33434".parse().unwrap())
        );
        let v6: socket2::SockAddr = "[2001:db8::5]:80".parse::<SocketAddr>().unwrap().into();
        // SAFETY (test): as above.
        let bytes =
            unsafe { std::slice::from_raw_parts(v6.as_ptr().cast::<u8>(), v6.len() as usize) };
        assert_eq!(
            decode_sockaddr(bytes),
            Some("[2001:db8::5]:80".parse().unwrap())
        );
        assert_eq!(decode_sockaddr(&[0u8; 16]), None);
    }
}
