//! One query to one server over UDP or TCP, timed here.
//!
//! hickory's clients report no timings and retry on their own, so the query is built with
//! hickory-proto and sent on our own sockets: the clock starts just before the query is written
//! and stops when the whole answer has been read. Each UDP attempt gets a fresh message id;
//! an answer to an earlier attempt that arrives late is still accepted, timed against the
//! attempt it answers, so a slow server is reported as slow rather than as lost.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

/// What to ask, independent of the transport.
#[derive(Debug, Clone)]
pub(super) struct Question {
    pub name: Name,
    pub rtype: RecordType,
    pub recursion: bool,
    /// EDNS payload size and DO bit; no OPT record when `None`.
    pub edns: Option<(u16, bool)>,
}

impl Question {
    /// The query in wire format with message id `id`.
    fn wire(&self, id: u16) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = self.recursion;
        m.add_query(Query::query(self.name.clone(), self.rtype));
        if let Some((size, dnssec_ok)) = self.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(size);
            edns.set_dnssec_ok(dnssec_ok);
            m.set_edns(edns);
        }
        // A query of one question with an optional OPT record always encodes.
        m.to_vec().unwrap_or_default()
    }

    /// Whether `m` answers this question (servers may omit the question in error answers).
    fn answered_by(&self, m: &Message) -> bool {
        m.metadata.message_type == MessageType::Response
            && match m.queries.as_slice() {
                [] => true,
                [q] => q.query_type() == self.rtype && *q.name() == self.name,
                _ => false,
            }
    }
}

/// An answer and how long it took.
#[derive(Debug)]
pub(super) struct Answer {
    pub message: Message,
    /// Wire size of the answer in bytes.
    pub size: usize,
    /// From the query written to the answer read.
    pub rtt: Duration,
}

/// Why no usable answer came.
#[derive(Debug)]
pub(super) enum Failure {
    /// Nothing answered in time.
    Timeout,
    /// ICMP port unreachable (UDP) or a reset (TCP).
    Refused,
    /// No route, network or host unreachable.
    Unreachable(String),
    /// Something answered with bytes that are not a DNS answer to our question.
    Malformed(String),
    /// The TCP connection closed before a whole answer came.
    Closed,
    /// A local socket error.
    Local(String),
}

/// The result of all attempts over one transport.
#[derive(Debug)]
pub(super) struct Exchange {
    pub attempts: u8,
    /// TCP handshake time of the attempt that answered.
    pub connect: Option<Duration>,
    pub result: Result<Answer, Failure>,
}

fn local_bind(server: SocketAddr) -> SocketAddr {
    match server {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

fn io_failure(e: &std::io::Error) -> Failure {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused | K::ConnectionReset => Failure::Refused,
        K::NetworkUnreachable => Failure::Unreachable("the network is unreachable".into()),
        K::HostUnreachable => Failure::Unreachable("the host is unreachable".into()),
        _ => match e.raw_os_error() {
            Some(libc::ENETUNREACH) => Failure::Unreachable("the network is unreachable".into()),
            Some(libc::EHOSTUNREACH) => Failure::Unreachable("the host is unreachable".into()),
            _ => Failure::Local(e.to_string()),
        },
    }
}

/// Asks over UDP, `tries` times at most, waiting `timeout` for each attempt.
pub(super) async fn udp(
    server: SocketAddr,
    q: &Question,
    timeout: Duration,
    tries: u8,
) -> Exchange {
    let mut ex = Exchange {
        attempts: 0,
        connect: None,
        result: Err(Failure::Timeout),
    };
    let sock = match UdpSocket::bind(local_bind(server)).await {
        Ok(s) => s,
        Err(e) => {
            ex.result = Err(Failure::Local(format!("cannot open a UDP socket: {e}")));
            return ex;
        }
    };
    if let Err(e) = sock.connect(server).await {
        ex.result = Err(io_failure(&e));
        return ex;
    }
    let mut sent: Vec<(u16, Instant)> = Vec::new();
    let mut malformed: Option<String> = None;
    let mut buf = vec![0u8; 65535];
    for _ in 0..tries.max(1) {
        let id = fresh_id(&sent);
        let wire = q.wire(id);
        ex.attempts += 1;
        let t0 = Instant::now();
        if let Err(e) = sock.send(&wire).await {
            ex.result = Err(io_failure(&e));
            return ex;
        }
        sent.push((id, t0));
        let deadline = t0 + timeout;
        loop {
            let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => {
                    ex.result = Err(io_failure(&e));
                    return ex;
                }
                Ok(Ok(n)) => n,
            };
            let now = Instant::now();
            let message = match Message::from_vec(&buf[..n]) {
                Ok(m) => m,
                Err(e) => {
                    malformed = Some(format!("an undecodable message of {n} bytes ({e})"));
                    continue;
                }
            };
            let Some(&(_, at)) = sent.iter().find(|(id, _)| *id == message.metadata.id) else {
                malformed = Some(format!(
                    "a message with id {} that matches no query sent",
                    message.metadata.id
                ));
                continue;
            };
            if !q.answered_by(&message) {
                malformed = Some("a message that does not answer the question asked".into());
                continue;
            }
            ex.result = Ok(Answer {
                message,
                size: n,
                rtt: now - at,
            });
            return ex;
        }
    }
    ex.result = Err(match malformed {
        Some(m) => Failure::Malformed(m),
        None => Failure::Timeout,
    });
    ex
}

/// Asks over TCP (RFC 7766 framing), `tries` times at most; `timeout` covers the handshake and
/// the exchange of each attempt.
pub(super) async fn tcp(
    server: SocketAddr,
    q: &Question,
    timeout: Duration,
    tries: u8,
) -> Exchange {
    let mut ex = Exchange {
        attempts: 0,
        connect: None,
        result: Err(Failure::Timeout),
    };
    for _ in 0..tries.max(1) {
        ex.attempts += 1;
        let start = Instant::now();
        let deadline = start + timeout;
        let mut stream = match tokio::time::timeout_at(deadline, TcpStream::connect(server)).await {
            Err(_) => {
                ex.result = Err(Failure::Timeout);
                continue;
            }
            Ok(Err(e)) => {
                ex.result = Err(io_failure(&e));
                return ex;
            }
            Ok(Ok(s)) => s,
        };
        let connected = Instant::now();
        let _ = stream.set_nodelay(true);
        let id: u16 = rand::random();
        let wire = q.wire(id);
        let Ok(len) = u16::try_from(wire.len()) else {
            ex.result = Err(Failure::Local(
                "the query does not fit a TCP message".into(),
            ));
            return ex;
        };
        let mut framed = Vec::with_capacity(wire.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&wire);
        let t0 = Instant::now();
        let exchange = async {
            stream.write_all(&framed).await?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await?;
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>(body)
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Err(_) => {
                ex.result = Err(Failure::Timeout);
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                ex.result = Err(Failure::Closed);
                return ex;
            }
            Ok(Err(e)) => {
                ex.result = Err(io_failure(&e));
                return ex;
            }
            Ok(Ok(body)) => {
                let rtt = t0.elapsed();
                ex.connect = Some(connected - start);
                ex.result = match Message::from_vec(&body) {
                    Ok(m) if m.metadata.id == id && q.answered_by(&m) => Ok(Answer {
                        message: m,
                        size: body.len(),
                        rtt,
                    }),
                    Ok(_) => Err(Failure::Malformed(
                        "a message that does not answer the question asked".into(),
                    )),
                    Err(e) => Err(Failure::Malformed(format!(
                        "an undecodable message of {} bytes ({e})",
                        body.len()
                    ))),
                };
                return ex;
            }
        }
    }
    ex
}

/// A random message id not used by an earlier attempt.
fn fresh_id(sent: &[(u16, Instant)]) -> u16 {
    loop {
        let id: u16 = rand::random();
        if !sent.iter().any(|(s, _)| *s == id) {
            return id;
        }
    }
}
