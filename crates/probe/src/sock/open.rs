//! Opening sockets and setting their options once, so a probe's per-packet path only sends and
//! receives. Privilege is detected by trying: a raw socket either opens or fails with `EPERM`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol as SockProtocol, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use vantage_proto::Family;

use super::batch::{self, RecvBatch, SendBatch};
use crate::Error;

/// `SOL_RAW` level and its `ICMP_FILTER` option (linux/icmp.h); not exported by libc.
const SOL_RAW: libc::c_int = 255;
const ICMP_FILTER: libc::c_int = 1;
/// `ICMP6_FILTER` at level `IPPROTO_ICMPV6` (linux/icmpv6.h).
const ICMP6_FILTER: libc::c_int = 1;
/// Timestamping flags (linux/net_tstamp.h).
const SOF_TX_SOFTWARE: u32 = 1 << 1;
const SOF_RX_SOFTWARE: u32 = 1 << 3;
const SOF_SOFTWARE: u32 = 1 << 4;
const SOF_OPT_ID: u32 = 1 << 7;
const SOF_OPT_TSONLY: u32 = 1 << 11;
/// `SO_RCVBUFFORCE` (asm-generic/socket.h): like `SO_RCVBUF` but above `rmem_max`, needs
/// `CAP_NET_ADMIN`.
const SO_RCVBUFFORCE: libc::c_int = 33;
/// How long a send keeps retrying while the interface queue is full (`ENOBUFS`).
const ENOBUFS_PATIENCE: Duration = Duration::from_secs(2);

/// The transport a socket carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// ICMP for IPv4, ICMPv6 for IPv6.
    Icmp,
    /// TCP (raw sockets only: the probe builds the segments).
    Tcp,
    /// UDP.
    Udp,
}

/// Raw or datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `SOCK_RAW`: needs `CAP_NET_RAW`; IPv4 raw sockets deliver the IP header.
    Raw,
    /// `SOCK_DGRAM`: for ICMP the unprivileged "ping socket" (allowed by
    /// `net.ipv4.ping_group_range`), for UDP a plain UDP socket.
    Dgram,
}

/// Options set once when a socket opens. `None` leaves the kernel default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Options {
    /// IPv4 TTL / IPv6 unicast hop limit.
    pub ttl: Option<u8>,
    /// IPv4 TOS byte / IPv6 traffic class.
    pub tos: Option<u8>,
    /// Don't fragment: `Some(true)` sets DF (IPv4) and refuses local fragmentation (both
    /// families); `Some(false)` lets the kernel fragment and clears DF.
    pub df: Option<bool>,
    /// Source address to bind to.
    pub source: Option<IpAddr>,
    /// Source port to bind to (UDP sockets; with or without [`Options::source`]). Binding a
    /// port below 1024 needs `CAP_NET_BIND_SERVICE`.
    pub source_port: Option<u16>,
    /// `SO_REUSEADDR` before binding: sockets of one program that all set it may share a
    /// source port (each then connects to its own peer, see [`Socket::connect`]).
    pub reuse_address: bool,
    /// Interface to bind to (`SO_BINDTODEVICE`).
    pub interface: Option<String>,
    /// Receive buffer in bytes; above `net.core.rmem_max` only with `CAP_NET_ADMIN`.
    pub recv_buffer: Option<usize>,
    /// Ask for kernel RX and TX timestamps.
    pub timestamps: bool,
    /// Report the TTL / hop limit of received packets.
    pub recv_ttl: bool,
    /// Report the destination address of received packets (pktinfo).
    pub recv_dst: bool,
    /// Queue ICMP errors about our packets on the error queue (`IP_RECVERR`); for datagram
    /// sockets, whose ICMP errors are otherwise invisible.
    pub recv_errors: bool,
}

/// How the kernel stamps this socket's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamping {
    /// `SO_TIMESTAMPING`: software RX stamps and TX stamps on the error queue.
    Full,
    /// `SO_TIMESTAMPNS`: RX stamps only.
    RxOnly,
    /// None asked for, or none granted.
    Off,
}

/// An open socket, registered with the tokio reactor unless parked ([`Socket::park`]).
#[derive(Debug)]
pub struct Socket {
    io: Io,
    family: Family,
    protocol: Protocol,
    mode: Mode,
    stamping: Stamping,
    /// The ICMP identifier the kernel writes into echo requests of a datagram ICMP socket.
    local_id: Option<u16>,
    /// Whether per-packet TX-stamp keys (`SCM_TS_OPT_ID`) are accepted; cleared on the first
    /// `EINVAL` from a kernel older than 6.13, after which keys are counted.
    key_cmsg: AtomicBool,
    /// The next `OPT_ID` key the kernel will assign when keys are counted.
    next_key: AtomicU32,
}

/// The descriptor: registered with the reactor, or held directly while parked.
#[derive(Debug)]
enum Io {
    Reactor(AsyncFd<socket2::Socket>),
    Parked(socket2::Socket),
}

/// How long a parked socket's sender waits before trying again when the kernel's send buffer
/// is full (it cannot be told when there is room without the reactor).
const PARKED_SEND_RETRY: Duration = Duration::from_millis(1);

/// Whether this process may open raw sockets (it has `CAP_NET_RAW` in this network namespace).
pub fn raw_sockets_allowed() -> bool {
    match socket2::Socket::new(Domain::IPV4, Type::RAW, Some(SockProtocol::ICMPV4)) {
        Ok(_) => true,
        Err(e) => !is_permission(&e),
    }
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

impl Socket {
    /// Opens a socket of `family`, `protocol` and `mode` with `opts` applied.
    ///
    /// Errors are sentences: a missing privilege says which one and how to grant it.
    pub fn open(
        family: Family,
        protocol: Protocol,
        mode: Mode,
        opts: &Options,
    ) -> Result<Socket, Error> {
        let domain = match family {
            Family::Ipv4 => Domain::IPV4,
            Family::Ipv6 => Domain::IPV6,
        };
        let (ty, proto) = match (protocol, mode, family) {
            (Protocol::Icmp, _, Family::Ipv4) => (mode_type(mode), SockProtocol::ICMPV4),
            (Protocol::Icmp, _, Family::Ipv6) => (mode_type(mode), SockProtocol::ICMPV6),
            (Protocol::Udp, _, _) => (mode_type(mode), SockProtocol::UDP),
            (Protocol::Tcp, Mode::Raw, _) => (Type::RAW, SockProtocol::TCP),
            (Protocol::Tcp, Mode::Dgram, _) => {
                return Err(Error::Invalid(
                    "TCP has no datagram sockets; use a raw socket or a TCP connection".into(),
                ));
            }
        };
        let sock = socket2::Socket::new(domain, ty, Some(proto))
            .map_err(|e| open_error(family, protocol, mode, e))?;
        let what = |w: &str| format!("cannot set {w} on the {family} {protocol:?} socket");
        sock.set_nonblocking(true)
            .map_err(|e| Error::socket(what("non-blocking mode"), e))?;
        let fd = sock.as_raw_fd();

        if let Some(ttl) = opts.ttl {
            match family {
                Family::Ipv4 => sock.set_ttl_v4(u32::from(ttl)),
                Family::Ipv6 => sock.set_unicast_hops_v6(u32::from(ttl)),
            }
            .map_err(|e| Error::socket(what("the TTL"), e))?;
        }
        if let Some(tos) = opts.tos {
            match family {
                Family::Ipv4 => sock.set_tos_v4(u32::from(tos)),
                Family::Ipv6 => sock.set_tclass_v6(u32::from(tos)),
            }
            .map_err(|e| Error::socket(what("the TOS / traffic class"), e))?;
        }
        if let Some(df) = opts.df {
            let (level, name, value) = match (family, df) {
                (Family::Ipv4, true) => (
                    libc::IPPROTO_IP,
                    libc::IP_MTU_DISCOVER,
                    libc::IP_PMTUDISC_DO,
                ),
                (Family::Ipv4, false) => (
                    libc::IPPROTO_IP,
                    libc::IP_MTU_DISCOVER,
                    libc::IP_PMTUDISC_DONT,
                ),
                (Family::Ipv6, true) => (
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MTU_DISCOVER,
                    libc::IPV6_PMTUDISC_DO,
                ),
                (Family::Ipv6, false) => (
                    libc::IPPROTO_IPV6,
                    libc::IPV6_MTU_DISCOVER,
                    libc::IPV6_PMTUDISC_DONT,
                ),
            };
            set_int(fd, level, name, value)
                .map_err(|e| Error::socket(what("the don't-fragment mode"), e))?;
        }
        if let Some(dev) = &opts.interface {
            sock.bind_device(Some(dev.as_bytes())).map_err(|e| {
                if e.raw_os_error() == Some(libc::ENODEV) {
                    Error::Invalid(format!("there is no interface named {dev}"))
                } else {
                    Error::socket(format!("cannot bind to interface {dev}"), e)
                }
            })?;
        }
        if let Some(size) = opts.recv_buffer {
            let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
            // SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it SO_RCVBUF is capped at rmem_max.
            if set_int(fd, libc::SOL_SOCKET, SO_RCVBUFFORCE, size).is_err() {
                set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, size)
                    .map_err(|e| Error::socket(what("the receive buffer"), e))?;
            }
        }
        if opts.recv_ttl {
            match family {
                Family::Ipv4 => set_int(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, 1),
                Family::Ipv6 => set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1),
            }
            .map_err(|e| Error::socket(what("TTL reporting"), e))?;
        }
        if opts.recv_dst {
            match family {
                Family::Ipv4 => set_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1),
                Family::Ipv6 => set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1),
            }
            .map_err(|e| Error::socket(what("destination reporting"), e))?;
        }
        if opts.recv_errors {
            match family {
                Family::Ipv4 => set_int(fd, libc::IPPROTO_IP, libc::IP_RECVERR, 1),
                Family::Ipv6 => set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVERR, 1),
            }
            .map_err(|e| Error::socket(what("ICMP error reporting"), e))?;
        }
        let stamping = if opts.timestamps {
            enable_timestamps(fd)
        } else {
            Stamping::Off
        };

        // A datagram ICMP socket gets its identifier when bound; bind now so it is known.
        let bind_to = match (opts.source, opts.source_port, mode, protocol) {
            (ip, Some(port), Mode::Dgram, Protocol::Udp) => Some(SocketAddr::new(
                ip.unwrap_or_else(|| unspecified(family)),
                port,
            )),
            (Some(ip), _, _, _) => Some(SocketAddr::new(ip, 0)),
            (None, _, Mode::Dgram, Protocol::Icmp) => Some(SocketAddr::new(unspecified(family), 0)),
            _ => None,
        };
        if opts.reuse_address {
            sock.set_reuse_address(true)
                .map_err(|e| Error::socket(what("SO_REUSEADDR"), e))?;
        }
        if let Some(addr) = bind_to {
            sock.bind(&addr.into()).map_err(|e| bind_error(addr, e))?;
        }
        let local_id = match (mode, protocol) {
            (Mode::Dgram, Protocol::Icmp) => sock
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .map(|a| a.port()),
            _ => None,
        };
        // SAFETY: `sock` owns an open descriptor; the AsyncFd takes ownership of it, nothing
        // else closes or replaces it, and `as_raw_fd` keeps returning that descriptor until the
        // AsyncFd (and with it the socket) is dropped.
        let fd = unsafe {
            AsyncFd::register_with_interest(sock, Interest::READABLE | Interest::WRITABLE)
        }
        .map_err(|e| Error::socket("cannot register the socket with the runtime", e.into()))?;
        Ok(Socket {
            io: Io::Reactor(fd),
            family,
            protocol,
            mode,
            stamping,
            local_id,
            key_cmsg: AtomicBool::new(true),
            next_key: AtomicU32::new(0),
        })
    }

    /// Opens an ICMP socket the way `privilege` allows: raw when `Raw`, or when `Auto` and the
    /// process has `CAP_NET_RAW`; the unprivileged datagram socket otherwise.
    ///
    /// `recv_errors` is decided here: a raw socket sees ICMP errors as ordinary packets (and
    /// `IP_RECVERR` would only add pending socket errors), a datagram socket sees them only on
    /// its error queue, so it gets `IP_RECVERR` / `IPV6_RECVERR`.
    pub fn open_icmp(
        family: Family,
        privilege: crate::Privilege,
        opts: &Options,
    ) -> Result<Socket, Error> {
        use crate::Privilege;
        let raw = || {
            let o = Options {
                recv_errors: false,
                ..opts.clone()
            };
            Socket::open(family, Protocol::Icmp, Mode::Raw, &o)
        };
        let dgram = || {
            let o = Options {
                recv_errors: true,
                ..opts.clone()
            };
            Socket::open(family, Protocol::Icmp, Mode::Dgram, &o)
        };
        match privilege {
            Privilege::Raw => raw(),
            Privilege::Unprivileged => dgram(),
            Privilege::Auto => match raw() {
                Err(Error::Permission(raw)) => match dgram() {
                    Err(Error::Permission(dgram)) => Err(Error::Permission(format!(
                        "cannot open any ICMP socket: {raw}; and {dgram}"
                    ))),
                    other => other,
                },
                other => other,
            },
        }
    }

    /// The address family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The transport protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Raw or datagram.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// For datagram ICMP sockets: the echo identifier the kernel puts in every request (and
    /// expects in replies), whatever the request said.
    pub fn local_id(&self) -> Option<u16> {
        self.local_id
    }

    /// Whether the kernel stamps received packets.
    pub fn rx_stamps(&self) -> bool {
        self.stamping != Stamping::Off
    }

    /// Whether the kernel reports send stamps on the error queue.
    pub fn tx_stamps(&self) -> bool {
        self.stamping == Stamping::Full
    }

    fn sock(&self) -> &socket2::Socket {
        match &self.io {
            Io::Reactor(fd) => fd.get_ref(),
            Io::Parked(s) => s,
        }
    }

    /// Takes the socket off the reactor. Every packet and every TX stamp the kernel queues on
    /// a registered socket also runs the reactor's wake-up (its epoll entry) inside the kernel:
    /// about 5 % of a 60 000-target sweep's CPU time, while the sending task reads the queues
    /// itself between its batches anyway. A parked socket sends and reads without waiting;
    /// [`Socket::ready`] needs it registered again ([`Socket::unpark`]).
    pub fn park(self) -> Socket {
        match self.io {
            Io::Reactor(fd) => Socket {
                io: Io::Parked(fd.into_inner()),
                ..self
            },
            Io::Parked(_) => self,
        }
    }

    /// Whether the socket is parked.
    pub fn is_parked(&self) -> bool {
        matches!(self.io, Io::Parked(_))
    }

    /// Registers a parked socket with the reactor again. The reactor learns at once of what
    /// is already queued. On failure the socket comes back parked, with the error.
    pub fn unpark(self) -> (Socket, io::Result<()>) {
        match self.io {
            // SAFETY: as in `open`: the socket owns its open descriptor and the AsyncFd keeps
            // it until it is dropped or parked again.
            Io::Parked(s) => match unsafe {
                AsyncFd::register_with_interest(s, Interest::READABLE | Interest::WRITABLE)
            } {
                Ok(fd) => (
                    Socket {
                        io: Io::Reactor(fd),
                        ..self
                    },
                    Ok(()),
                ),
                Err(e) => {
                    let (s, err) = e.into_parts();
                    (
                        Socket {
                            io: Io::Parked(s),
                            ..self
                        },
                        Err(err),
                    )
                }
            },
            Io::Reactor(_) => (self, Ok(())),
        }
    }

    /// The receive buffer the kernel granted, in bytes (the kernel doubles what was asked for to
    /// cover its bookkeeping).
    pub fn recv_buffer(&self) -> io::Result<usize> {
        self.sock().recv_buffer_size()
    }

    /// The local address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock()
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP socket"))
    }

    /// On a raw ICMP socket, passes only the ICMP types in `accept` to this socket (the kernel
    /// drops the rest before they are queued): a ping socket then never sees echo requests, its
    /// own included, or neighbour discovery. No effect on datagram sockets, which the kernel
    /// already demultiplexes.
    pub fn set_icmp_filter(&self, accept: &[u8]) -> io::Result<()> {
        if self.mode != Mode::Raw || self.protocol != Protocol::Icmp {
            return Ok(());
        }
        let fd = self.sock().as_raw_fd();
        match self.family {
            Family::Ipv4 => {
                // A set bit blocks the type; types above 31 are never blocked.
                let mut mask: u32 = !0;
                for &t in accept.iter().filter(|t| **t < 32) {
                    mask &= !(1u32 << t);
                }
                set_opt(fd, SOL_RAW, ICMP_FILTER, &mask)
            }
            Family::Ipv6 => {
                let mut filter = [!0u32; 8];
                for &t in accept {
                    filter[usize::from(t >> 5)] &= !(1u32 << (t & 31));
                }
                set_opt(fd, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &filter)
            }
        }
    }

    /// On a raw ICMP socket, drops in the kernel (classic BPF) every echo reply whose identifier
    /// is not `ident`, so sockets of other pings (or other shards of one sweep) never copy them
    /// to user space. Errors and other types pass. No effect on datagram sockets, which the
    /// kernel already demultiplexes by identifier.
    pub fn set_echo_id_filter(&self, ident: u16) -> io::Result<()> {
        use socket2::SockFilter as F;
        if self.mode != Mode::Raw || self.protocol != Protocol::Icmp {
            return Ok(());
        }
        // Classic BPF opcodes (linux/bpf_common.h).
        const LD_B_ABS: u16 = 0x30;
        const LD_H_ABS: u16 = 0x28;
        const LD_B_IND: u16 = 0x50;
        const LD_H_IND: u16 = 0x48;
        const LDX_B_MSH: u16 = 0xb1;
        const JEQ_K: u16 = 0x15;
        const RET_K: u16 = 0x06;
        let id = u32::from(ident);
        let prog: Vec<F> = match self.family {
            // Raw IPv4 packets start with the IP header: X = its length, then index past it.
            Family::Ipv4 => vec![
                F::new(LDX_B_MSH, 0, 0, 0),
                F::new(LD_B_IND, 0, 0, 0),
                F::new(JEQ_K, 0, 2, u32::from(super::icmp::V4_ECHO_REPLY)),
                F::new(LD_H_IND, 0, 0, 4),
                F::new(JEQ_K, 0, 1, id),
                F::new(RET_K, 0, 0, u32::MAX),
                F::new(RET_K, 0, 0, 0),
            ],
            // Raw ICMPv6 sockets see the packet from the ICMPv6 header on.
            Family::Ipv6 => vec![
                F::new(LD_B_ABS, 0, 0, 0),
                F::new(JEQ_K, 0, 2, u32::from(super::icmp::V6_ECHO_REPLY)),
                F::new(LD_H_ABS, 0, 0, 4),
                F::new(JEQ_K, 0, 1, id),
                F::new(RET_K, 0, 0, u32::MAX),
                F::new(RET_K, 0, 0, 0),
            ],
        };
        self.sock().attach_filter(&prog)
    }

    /// Waits until received packets or error-queue entries (TX stamps, ICMP errors) are
    /// available. Returns `(data, errors)`: which of the two queues to drain.
    pub async fn ready(&self) -> io::Result<(bool, bool)> {
        let Io::Reactor(fd) = &self.io else {
            return Err(io::Error::other("the socket is parked; unpark it to wait"));
        };
        let guard = fd.ready(Interest::READABLE | Interest::ERROR).await?;
        let r = guard.ready();
        Ok((r.is_readable() || r.is_read_closed(), r.is_error()))
    }

    /// Receives up to a batch of packets without waiting. `Err(WouldBlock)` when the queue is
    /// empty (which also re-arms [`Socket::ready`]). Other errors are pending socket errors
    /// (for example an ICMP error reported as `EHOSTUNREACH`); the next call continues.
    pub fn try_recv(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        match &self.io {
            Io::Reactor(fd) => {
                fd.try_io(Interest::READABLE, |s| batch::recv(s.as_raw_fd(), batch, 0))
            }
            Io::Parked(s) => batch::recv(s.as_raw_fd(), batch, 0),
        }
    }

    /// Receives up to a batch of error-queue entries without waiting: TX timestamps and, with
    /// [`Options::recv_errors`], ICMP errors. `Err(WouldBlock)` when the queue is empty.
    pub fn try_recv_errors(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        let errors = libc::MSG_ERRQUEUE;
        match &self.io {
            Io::Reactor(fd) => fd.try_io(Interest::ERROR, |s| {
                batch::recv(s.as_raw_fd(), batch, errors)
            }),
            Io::Parked(s) => batch::recv(s.as_raw_fd(), batch, errors),
        }
    }

    /// Like [`Socket::try_recv`] / [`Socket::try_recv_errors`] but asks the kernel directly,
    /// whatever the reactor believes; for a last drain before giving up on late packets.
    pub fn recv_now(&self, batch: &mut RecvBatch, errors: bool) -> io::Result<usize> {
        let flags = if errors { libc::MSG_ERRQUEUE } else { 0 };
        batch::recv(self.sock().as_raw_fd(), batch, flags)
    }

    /// Receives one batch, waiting until at least one packet is there (a parked socket does not
    /// wait: `Err(WouldBlock)` when the queue is empty).
    pub async fn recv(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        match &self.io {
            Io::Reactor(fd) => {
                fd.async_io(Interest::READABLE, |s| batch::recv(s.as_raw_fd(), batch, 0))
                    .await
            }
            Io::Parked(s) => batch::recv(s.as_raw_fd(), batch, 0),
        }
    }

    /// Sends `batch[from..]` with one `sendmmsg` (more when the batch exceeds [`super::MAX_BATCH`]
    /// or the kernel takes part of it), waiting while the socket buffer is full and retrying
    /// while the interface queue is full (`ENOBUFS`): neither is a lost packet.
    ///
    /// Returns how many packets went out, at least one; `Err` is the error of packet `from`
    /// itself (no route, message too long …), which the caller records and skips.
    /// After it returns, [`SendBatch::key`] gives each sent packet's TX-stamp key.
    pub async fn send(&self, batch: &mut SendBatch, from: usize) -> io::Result<usize> {
        let started = tokio::time::Instant::now();
        loop {
            let use_cmsg = self.tx_stamps() && self.key_cmsg.load(Ordering::Relaxed);
            let res = match &self.io {
                Io::Reactor(fd) => {
                    fd.async_io(Interest::WRITABLE, |s| {
                        batch::send(s.as_raw_fd(), batch, from, use_cmsg)
                    })
                    .await
                }
                Io::Parked(s) => batch::send(s.as_raw_fd(), batch, from, use_cmsg),
            };
            match res {
                Ok(n) => {
                    self.assign_keys(batch, from, n, use_cmsg);
                    return Ok(n);
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && use_cmsg => {
                    // A kernel before 6.13 does not know SCM_TS_OPT_ID: count keys instead. If
                    // EINVAL was about the packet itself, the retry reports it again.
                    self.key_cmsg.store(false, Ordering::Relaxed);
                }
                Err(e)
                    if e.raw_os_error() == Some(libc::ENOBUFS)
                        && started.elapsed() < ENOBUFS_PATIENCE =>
                {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.is_parked() => {
                    tokio::time::sleep(PARKED_SEND_RETRY).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn assign_keys(&self, batch: &mut SendBatch, from: usize, n: usize, cmsg: bool) {
        if !self.tx_stamps() {
            return;
        }
        if cmsg {
            batch.keys_as_requested(from, n);
        } else {
            let first = self.next_key.fetch_add(n as u32, Ordering::Relaxed);
            batch.keys_counted(from, n, first);
        }
    }

    /// The raw descriptor, for options this module does not wrap.
    pub fn as_raw_fd(&self) -> RawFd {
        self.sock().as_raw_fd()
    }

    /// Attaches a classic BPF program that decides, in the kernel, which packets are queued on
    /// this socket. A raw TCP or UDP socket otherwise receives a copy of every segment of its
    /// protocol that reaches the host, and on a busy host the ones a probe waits for could be
    /// dropped behind the others when the receive buffer fills.
    pub fn attach_filter(&self, program: &[socket2::SockFilter]) -> io::Result<()> {
        self.sock().attach_filter(program)
    }

    /// Connects a datagram socket to `peer`: the kernel then delivers to it only datagrams from
    /// `peer` and, among sockets sharing a local port, the ICMP errors about datagrams sent to
    /// `peer`. Nothing is sent.
    pub fn connect(&self, peer: SocketAddr) -> io::Result<()> {
        self.sock().connect(&peer.into())
    }

    /// Takes the pending socket error (`SO_ERROR`), clearing it. An ICMP error about an earlier
    /// packet of a socket with [`Options::recv_errors`] (or of a connected one) stays pending
    /// until read, and the kernel fails the next *send* with it — without sending the packet.
    /// Probes that send again on such a socket clear it first.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock().take_error()
    }
}

fn mode_type(mode: Mode) -> Type {
    match mode {
        Mode::Raw => Type::RAW,
        Mode::Dgram => Type::DGRAM,
    }
}

fn unspecified(family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// Turns a failed `bind()` into a sentence that says what to change.
pub(crate) fn bind_error(addr: SocketAddr, e: io::Error) -> Error {
    let port = addr.port();
    match e.raw_os_error() {
        Some(libc::EADDRNOTAVAIL) => Error::Invalid(format!(
            "source address {} is not an address of this host",
            addr.ip()
        )),
        Some(libc::EADDRINUSE) => Error::Invalid(format!(
            "source port {port} is already in use by another socket on this host"
        )),
        Some(libc::EACCES) | Some(libc::EPERM) if port != 0 && port < 1024 => {
            Error::Permission(format!(
                "source port {port} is below 1024: binding it needs CAP_NET_BIND_SERVICE \
                 (run as root, or pick source ports from 1024 up)"
            ))
        }
        _ => Error::socket(format!("cannot bind the socket to {addr}"), e),
    }
}

/// Turns a failed `socket()` into a sentence that says what to change.
fn open_error(family: Family, protocol: Protocol, mode: Mode, e: io::Error) -> Error {
    if !is_permission(&e) {
        return Error::socket(
            format!("cannot open a {mode:?} {family} {protocol:?} socket"),
            e,
        );
    }
    match mode {
        Mode::Raw => Error::Permission(format!(
            "raw {family} sockets need CAP_NET_RAW (run as root, or grant it with \
             'setcap cap_net_raw+ep' on the binary)"
        )),
        Mode::Dgram => {
            let gid = nix::unistd::getegid();
            let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|_| "unknown".into());
            Error::Permission(format!(
                "unprivileged ICMP sockets are not allowed for group {gid}: \
                 net.ipv4.ping_group_range is '{range}' (widen it with \
                 sysctl -w net.ipv4.ping_group_range='0 2147483647', or use CAP_NET_RAW)"
            ))
        }
    }
}

/// Turns on kernel timestamps: `SO_TIMESTAMPING` with software RX and TX stamps, TX stamps
/// keyed by `OPT_ID` and without the packet (`OPT_TSONLY`); `SO_TIMESTAMPNS` when refused.
fn enable_timestamps(fd: RawFd) -> Stamping {
    let flags = SOF_RX_SOFTWARE | SOF_TX_SOFTWARE | SOF_SOFTWARE | SOF_OPT_ID | SOF_OPT_TSONLY;
    if set_int(
        fd,
        libc::SOL_SOCKET,
        libc::SO_TIMESTAMPING,
        flags as libc::c_int,
    )
    .is_ok()
    {
        return Stamping::Full;
    }
    if set_int(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1).is_ok() {
        return Stamping::RxOnly;
    }
    Stamping::Off
}

fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    set_opt(fd, level, name, &value)
}

fn set_opt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live reference, so the pointer is valid for `size_of::<T>()` bytes
    // for the duration of the call; the kernel only reads that many bytes. `fd` is owned by a
    // socket that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast::<libc::c_void>(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A socket with software RX stamps kept open for the life of the process: while one exists,
/// the kernel's global "timestamp incoming packets" switch stays on.
static STAMP_KEEPER: std::sync::OnceLock<Option<socket2::Socket>> = std::sync::OnceLock::new();
static STAMPS_SETTLED: AtomicBool = AtomicBool::new(false);

/// Waits until the kernel stamps incoming packets. The kernel turns RX stamping on for the whole
/// system only after the first socket asks for it, from a deferred work item: packets arriving
/// in the first moments after a process opens its first stamping socket (on a machine where no
/// other program keeps stamping on) arrive unstamped. Measured here: one run in two lost the
/// first stamps that way. This keeps one stamping socket open for the process and proves the
/// switch is on with a datagram over loopback, waiting at most 200 ms; it returns at once after
/// the first success. If loopback is unusable (a namespace with `lo` down) it returns without
/// proof, and unstamped packets fall back to user-space time as always.
pub async fn settle_rx_stamps() {
    if STAMPS_SETTLED.load(Ordering::Relaxed) {
        return;
    }
    let keeper = STAMP_KEEPER.get_or_init(|| {
        let s = socket2::Socket::new(Domain::IPV4, Type::DGRAM, Some(SockProtocol::UDP)).ok()?;
        s.set_nonblocking(true).ok()?;
        s.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .ok()?;
        let flags = (SOF_RX_SOFTWARE | SOF_SOFTWARE) as libc::c_int;
        set_int(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPING,
            flags,
        )
        .ok()?;
        Some(s)
    });
    let Some(keeper) = keeper else { return };
    let Some(dst) = keeper.local_addr().ok().and_then(|a| a.as_socket()) else {
        return;
    };
    let Ok(probe) = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
        return;
    };
    let mut batch = RecvBatch::new(4, 16);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
    while tokio::time::Instant::now() < deadline {
        if probe.send_to(b"t", dst).is_err() {
            return;
        }
        if let Ok(n) = batch::recv(keeper.as_raw_fd(), &mut batch, 0)
            && batch.iter().take(n).any(|r| r.stamp.is_some())
        {
            STAMPS_SETTLED.store(true, Ordering::Relaxed);
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
