//! The few system calls that the standard library, `nix` and `socket2` do not wrap safely:
//! binding an `AF_PACKET` socket to one interface, `PACKET_IGNORE_OUTGOING`, and changing the
//! credentials of one thread only.
//!
//! Decision: this is the crate's only module allowed `unsafe`; every block says why it is sound.
//! Everything else (receiving with kernel timestamps, sending, socket options nix knows) goes
//! through `nix`'s safe API here too, so the impairer itself holds no raw pointers.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, SystemTime};

use nix::sys::socket::{
    self, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockProtocol, SockType, sockopt,
};
use nix::sys::time::TimeVal;

/// `PACKET_IGNORE_OUTGOING` from `<linux/if_packet.h>` (Linux ≥ 4.20).
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// Opens an `AF_PACKET`/`SOCK_RAW` socket for every protocol, bound to `ifname` in the network
/// namespace of the calling thread. It does not see frames it (or anyone) sends out of that
/// interface, stamps received frames with the kernel's receive time, and returns from a
/// receive at least every `poll` so its owner can notice a stop request.
pub(crate) fn packet_socket(ifname: &str, poll: Duration) -> io::Result<OwnedFd> {
    let fd = socket::socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::EthAll,
    )?;
    let index = nix::net::if_::if_nametoindex(ifname)?;
    let mut addr: libc::sockaddr_ll = zeroed_sockaddr_ll();
    addr.sll_family = libc::AF_PACKET as libc::c_ushort;
    addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    addr.sll_ifindex = index as libc::c_int;
    // SAFETY: `addr` is a fully initialised `sockaddr_ll` that lives across the call, and the
    // length passed is exactly its size; `fd` is an open socket we own.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let one: libc::c_int = 1;
    // SAFETY: the option value points at a live `c_int` and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            PACKET_IGNORE_OUTGOING,
            (&raw const one).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    socket::setsockopt(&fd, sockopt::ReceiveTimestampns, &true)?;
    // A deep receive buffer so bursts are queued, not dropped, while a thread is descheduled.
    // RcvBufForce needs CAP_NET_ADMIN; fall back to the ordinary (capped) option without it.
    if socket::setsockopt(&fd, sockopt::RcvBufForce, &(8 << 20)).is_err() {
        socket::setsockopt(&fd, sockopt::RcvBuf, &(8 << 20))?;
    }
    let _ = socket::setsockopt(&fd, sockopt::SndBufForce, &(8 << 20));
    socket::setsockopt(
        &fd,
        sockopt::ReceiveTimeout,
        &TimeVal::new(poll.as_secs() as _, poll.subsec_micros() as _),
    )?;
    Ok(fd)
}

fn zeroed_sockaddr_ll() -> libc::sockaddr_ll {
    // SAFETY: `sockaddr_ll` is a plain C struct of integers and byte arrays, for which the
    // all-zero bit pattern is a valid value.
    unsafe { std::mem::zeroed() }
}

/// One frame read from a packet socket.
pub(crate) enum Received {
    /// A frame of this many bytes, with the kernel's receive time when it gave one.
    Frame(usize, Option<SystemTime>),
    /// The frame was longer than the buffer and was discarded.
    Truncated,
    /// Nothing arrived within the socket's receive timeout.
    Idle,
}

/// Receives one frame into `buf` with its kernel receive timestamp.
pub(crate) fn recv_frame(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = match socket::recvmsg::<()>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_TRUNC,
    ) {
        Ok(msg) => msg,
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(Received::Idle),
        Err(e) => return Err(e.into()),
    };
    let len = msg.bytes;
    if msg.flags.contains(MsgFlags::MSG_TRUNC) {
        return Ok(Received::Truncated);
    }
    let mut stamp = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmTimestampns(ts) = c {
                let d = Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32);
                stamp = Some(SystemTime::UNIX_EPOCH + d);
            }
        }
    }
    Ok(Received::Frame(len, stamp))
}

/// Sends one complete Ethernet frame out of the interface the socket is bound to.
pub(crate) fn send_frame(fd: &OwnedFd, frame: &[u8]) -> io::Result<()> {
    loop {
        match socket::send(fd.as_raw_fd(), frame, MsgFlags::empty()) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Turns the calling thread, and only it, into `uid`/`gid` with no supplementary groups. Going
/// from uid 0 to a non-zero uid makes the kernel clear the thread's permitted, effective and
/// ambient capabilities, so `CAP_NET_RAW` is gone for good on this thread (and on threads it
/// spawns later, which inherit its credentials).
///
/// The libc wrappers (`setresuid` …) cannot be used: glibc applies them to every thread of the
/// process, which would drop the privileges of the whole test.
pub(crate) fn drop_thread_privileges(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: raw system calls with integer arguments and a null list pointer with length 0;
    // they touch only the calling thread's credentials and no memory of ours.
    unsafe {
        if libc::syscall(
            libc::SYS_setgroups,
            0 as libc::size_t,
            std::ptr::null::<libc::gid_t>(),
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Gives the calling thread real-time (`SCHED_FIFO`) priority, so that a compiler or another
/// test on the same cores cannot delay it. Needs `CAP_SYS_NICE` (root); returns the error
/// otherwise and the thread keeps its normal priority.
pub(crate) fn make_thread_realtime(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: pid 0 means the calling thread; `param` is a valid, initialised struct that
    // outlives the call, which only reads it.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &raw const param) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
