//! TCP stream sockets: what the kernel knows about a connection attempt that tokio and socket2
//! do not expose. The handshake round trip the kernel measured (`TCP_INFO`), and the ICMP error
//! that aborted a connect, read from the socket's error queue (`IP_RECVERR` / `IPV6_RECVERR`).
//!
//! The main decision: a connect probe reports the kernel's own handshake sample (SYN sent by the
//! TCP layer → SYN-ACK processed in softirq, microsecond clock) instead of the user-space time
//! around `connect()`, which adds the wake-up of the probing task. The kernel takes that sample
//! only when the SYN was not retransmitted (Karn's rule), so callers check
//! [`TcpHandshake::retransmits`] and fall back to their own clock otherwise.

use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd};

use super::batch::{self, RecvBatch};

/// The kernel's view of a connection's first round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHandshake {
    /// Smoothed RTT in microseconds; right after the handshake it is the handshake sample itself
    /// (0 when the kernel took no sample).
    pub rtt_us: u32,
    /// Segments retransmitted on this connection so far (a retransmitted SYN counts).
    pub retransmits: u32,
}

/// Reads `TCP_INFO` of a TCP socket.
pub fn tcp_handshake(fd: BorrowedFd<'_>) -> io::Result<TcpHandshake> {
    // Read into bytes and pick the two fields by their offsets in the C struct: older kernels
    // return a shorter struct, and nothing here depends on the fields we do not read.
    let mut buf = [0u8; size_of::<libc::tcp_info>()];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` is writable for `len` bytes, `len` is a live socklen_t the kernel updates
    // with the bytes it wrote (never more than given); `fd` is an open socket borrowed for the
    // duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            buf.as_mut_ptr().cast::<libc::c_void>(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let field = |off: usize| -> io::Result<u32> {
        buf.get(off..off + 4)
            .filter(|_| off + 4 <= len as usize)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
            .ok_or_else(|| io::Error::other("the kernel's TCP_INFO is too short"))
    };
    Ok(TcpHandshake {
        rtt_us: field(offset_of!(libc::tcp_info, tcpi_rtt))?,
        retransmits: field(offset_of!(libc::tcp_info, tcpi_total_retrans))?,
    })
}

/// Receives error-queue entries of any socket (for example a TCP socket whose connect an ICMP
/// error aborted) without waiting. `Err(WouldBlock)` when the queue is empty.
pub fn recv_errors_of(fd: BorrowedFd<'_>, batch: &mut RecvBatch) -> io::Result<usize> {
    batch::recv(fd.as_raw_fd(), batch, libc::MSG_ERRQUEUE)
}
