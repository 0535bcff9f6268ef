//! A small authoritative DNS server for tests, on UDP and TCP of one loopback port.
//!
//! It serves one fixed zone, `vantage.test.`, with the answers a real authoritative server gives:
//! answers with the AA bit, CNAME chasing inside the zone, NODATA and NXDOMAIN with the SOA in
//! the authority section, REFUSED outside the zone, and real truncation (TC) when a UDP answer
//! does not fit the client's payload size (512 bytes without EDNS). `servfail.vantage.test.`
//! always answers SERVFAIL. Every query received is recorded so tests can check what was sent.
//!
//! The zone is built here, in code, so a test can compare the answers with `dig` on the same
//! server without any zone file.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, NULL, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// The zone served.
pub const ZONE: &str = "vantage.test.";
/// Number of A records of `big.vantage.test.`: too many for 512 bytes, so UDP answers truncate.
pub const BIG_COUNT: u8 = 40;

/// How the server treats queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer from the zone.
    Answer,
    /// Answer from the zone after this delay.
    Delay(Duration),
    /// Answer every query with REFUSED.
    RefuseAll,
    /// Set TC on every UDP answer (with no records), answer fully over TCP.
    TruncateUdp,
}

/// A query the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenQuery {
    /// `"udp"` or `"tcp"`.
    pub transport: &'static str,
    /// Query name as received.
    pub name: String,
    /// Query type code.
    pub qtype: u16,
    /// RD flag.
    pub recursion_desired: bool,
    /// EDNS payload size, when the query had an OPT record.
    pub edns_size: Option<u16>,
    /// EDNS DO bit.
    pub dnssec_ok: bool,
}

/// A running test server; stops when dropped.
#[derive(Debug)]
pub struct DnsServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<SeenQuery>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl DnsServer {
    /// Starts on `127.0.0.1` (or `::1` when `ipv6`), one port for UDP and TCP.
    pub async fn start(ipv6: bool, behaviour: Behaviour) -> std::io::Result<DnsServer> {
        let ip = if ipv6 {
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        };
        // The UDP port picked by the kernel may be taken for TCP: try a few.
        let mut last_err = None;
        for _ in 0..20 {
            let udp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
            let addr = udp.local_addr()?;
            match TcpListener::bind(addr).await {
                Ok(tcp) => return Ok(Self::spawn(addr, udp, tcp, behaviour)),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("no free port")))
    }

    /// Starts on exactly `addr` (UDP and TCP). Only for a namespace the test owns, where a fixed
    /// port such as 53 cannot collide with anything: the system resolver has no port setting.
    pub async fn start_at(addr: SocketAddr, behaviour: Behaviour) -> std::io::Result<DnsServer> {
        let udp = UdpSocket::bind(addr).await?;
        let tcp = TcpListener::bind(addr).await?;
        Ok(Self::spawn(addr, udp, tcp, behaviour))
    }

    fn spawn(addr: SocketAddr, udp: UdpSocket, tcp: TcpListener, b: Behaviour) -> DnsServer {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let zone = Arc::new(zone());
        let udp_task = {
            let (seen, zone) = (seen.clone(), zone.clone());
            tokio::spawn(async move {
                let udp = Arc::new(udp);
                let mut buf = vec![0u8; 65535];
                while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
                    let query = buf[..n].to_vec();
                    let (udp, seen, zone) = (udp.clone(), seen.clone(), zone.clone());
                    tokio::spawn(async move {
                        if let Some(reply) = respond(&query, "udp", b, &zone, &seen).await {
                            let _ = udp.send_to(&reply, peer).await;
                        }
                    });
                }
            })
        };
        let tcp_task = {
            let (seen, zone) = (seen.clone(), zone.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = tcp.accept().await {
                    let (seen, zone) = (seen.clone(), zone.clone());
                    tokio::spawn(serve_tcp(stream, b, zone, seen));
                }
            })
        };
        DnsServer {
            addr,
            seen,
            tasks: vec![udp_task, tcp_task],
        }
    }

    /// The address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The queries received so far.
    pub fn seen(&self) -> Vec<SeenQuery> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

async fn serve_tcp(
    mut stream: TcpStream,
    b: Behaviour,
    zone: Arc<Vec<Record>>,
    seen: Arc<Mutex<Vec<SeenQuery>>>,
) {
    let _ = stream.set_nodelay(true);
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        let Some(reply) = respond(&query, "tcp", b, &zone, &seen).await else {
            return;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = n.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("test zone names are valid")
}

fn rec(owner: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(name(owner), ttl, data)
}

fn soa() -> Record {
    rec(
        ZONE,
        3600,
        RData::SOA(SOA::new(
            name("ns1.vantage.test."),
            name("hostmaster.vantage.test."),
            2026112101,
            3600,
            600,
            86400,
            300,
        )),
    )
}

/// The records of the zone.
pub fn zone() -> Vec<Record> {
    let mut z = vec![
        soa(),
        rec(ZONE, 3600, RData::NS(NS(name("ns1.vantage.test.")))),
        rec(
            "ns1.vantage.test.",
            3600,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 53))),
        ),
        rec(
            "www.vantage.test.",
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 10))),
        ),
        rec(
            "www.vantage.test.",
            300,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 11))),
        ),
        rec(
            "www.vantage.test.",
            300,
            RData::AAAA(AAAA("2001:db8::10".parse().expect("literal"))),
        ),
        rec(
            "alias.vantage.test.",
            600,
            RData::CNAME(CNAME(name("www.vantage.test."))),
        ),
        rec(
            "vantage.test.",
            3600,
            RData::MX(MX::new(10, name("mx1.vantage.test."))),
        ),
        rec(
            "vantage.test.",
            3600,
            RData::MX(MX::new(20, name("mx2.vantage.test."))),
        ),
        rec(
            "txt.vantage.test.",
            120,
            RData::TXT(TXT::new(vec![
                "v=spf1 -all".into(),
                "with \"quotes\" and spaces".into(),
            ])),
        ),
        rec(
            "generic.vantage.test.",
            60,
            RData::Unknown {
                code: RecordType::Unknown(65534),
                rdata: NULL::with(vec![0xde, 0xad, 0xbe, 0xef]),
            },
        ),
    ];
    for i in 0..BIG_COUNT {
        z.push(rec(
            "big.vantage.test.",
            60,
            RData::A(A(Ipv4Addr::new(198, 51, 100, i + 1))),
        ));
    }
    z
}

/// The answer to one query in wire format; `None` to stay silent.
async fn respond(
    query: &[u8],
    transport: &'static str,
    b: Behaviour,
    zone: &[Record],
    seen: &Mutex<Vec<SeenQuery>>,
) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let question = q.queries.first()?.clone();
    if let Ok(mut s) = seen.lock() {
        s.push(SeenQuery {
            transport,
            name: question.name().to_ascii(),
            qtype: u16::from(question.query_type()),
            recursion_desired: q.metadata.recursion_desired,
            edns_size: q.edns.as_ref().map(|e| e.max_payload()),
            dnssec_ok: q.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        });
    }
    if let Behaviour::Delay(d) = b {
        tokio::time::sleep(d).await;
    }
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.add_query(question.clone());
    if let Some(e) = &q.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.set_dnssec_ok(e.flags().dnssec_ok);
        m.set_edns(edns);
    }
    let qname = question.name().clone();
    let qtype = question.query_type();
    let zone_name = name(ZONE);
    if b == Behaviour::RefuseAll || !zone_name.zone_of(&qname) {
        m.metadata.response_code = ResponseCode::Refused;
    } else if qname == name("servfail.vantage.test.") {
        m.metadata.response_code = ResponseCode::ServFail;
    } else {
        m.metadata.authoritative = true;
        let mut target = qname.clone();
        // Chase CNAMEs inside the zone (bounded).
        for _ in 0..8 {
            let at_name: Vec<&Record> = zone.iter().filter(|r| r.name == target).collect();
            let cname = at_name
                .iter()
                .find(|r| r.record_type() == RecordType::CNAME && qtype != RecordType::CNAME);
            if let Some(c) = cname {
                m.add_answer((*c).clone());
                if let RData::CNAME(CNAME(next)) = &c.data {
                    target = next.clone();
                    continue;
                }
            }
            let matching: Vec<Record> = at_name
                .iter()
                .filter(|r| r.record_type() == qtype)
                .map(|r| (*r).clone())
                .collect();
            if at_name.is_empty() {
                if m.answers.is_empty() {
                    m.metadata.response_code = ResponseCode::NXDomain;
                }
                m.add_authority(soa());
            } else if matching.is_empty() {
                // NODATA: the name exists, the type does not.
                m.add_authority(soa());
            } else {
                m.add_answers(matching);
            }
            break;
        }
    }
    let full = m.to_vec().ok()?;
    let limit = q
        .edns
        .as_ref()
        .map_or(512, |e| usize::from(e.max_payload()));
    let truncate = transport == "udp" && (full.len() > limit || b == Behaviour::TruncateUdp);
    if truncate {
        return m.truncate().to_vec().ok();
    }
    Some(full)
}
