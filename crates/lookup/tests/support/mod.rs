//! Fake servers on loopback for the lookup tests: WHOIS over TCP, HTTP (RDAP and downloads) and
//! DNS over UDP (PTR answers). Each binds 127.0.0.1:0, serves from a spawned task until the test's
//! runtime ends, and records what it was asked, so tests can assert the traffic as well as the
//! answers. Shared with the CLI tests of the `vantage` crate (included there by path).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// What a fake WHOIS server does with a query line.
pub enum WhoisReply {
    /// Answer this text and close.
    Text(String),
    /// Answer these bytes and close.
    Bytes(Vec<u8>),
    /// Read the query and never answer (the client must time out).
    Silent,
}

/// A fake WHOIS server.
pub struct FakeWhois {
    pub addr: SocketAddr,
    pub queries: Arc<Mutex<Vec<String>>>,
}

impl FakeWhois {
    pub async fn start(reply: impl Fn(&str) -> WhoisReply + Send + Sync + 'static) -> FakeWhois {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let q = queries.clone();
        let reply = Arc::new(reply);
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let q = q.clone();
                let reply = reply.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut byte = [0u8; 1];
                    while !buf.ends_with(b"\r\n") && buf.len() < 4096 {
                        match s.read(&mut byte).await {
                            Ok(1) => buf.push(byte[0]),
                            _ => return,
                        }
                    }
                    let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                    q.lock().unwrap().push(line.clone());
                    match reply(&line) {
                        WhoisReply::Text(t) => {
                            let _ = s.write_all(t.as_bytes()).await;
                        }
                        WhoisReply::Bytes(b) => {
                            let _ = s.write_all(&b).await;
                        }
                        WhoisReply::Silent => {
                            // Keep the connection open until the client gives up.
                            let _ = s.read(&mut byte).await;
                            return;
                        }
                    }
                    let _ = s.shutdown().await;
                });
            }
        });
        FakeWhois { addr, queries }
    }

    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

/// An HTTP answer of the fake server.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering (a slow server).
    pub delay: Duration,
}

impl Reply {
    pub fn json(body: &str) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/rdap+json".into())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    pub fn bytes(body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/octet-stream".into())],
            body,
            delay: Duration::ZERO,
        }
    }

    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    pub fn redirect(to: &str) -> Reply {
        Reply {
            status: 301,
            headers: vec![("Location".into(), to.into())],
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// A fake HTTP/1.1 server (one request per connection).
pub struct FakeHttp {
    pub addr: SocketAddr,
    pub hits: Arc<Mutex<Vec<String>>>,
}

impl FakeHttp {
    pub async fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let h = hits.clone();
        let handler = Arc::new(handler);
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let _ = s.set_nodelay(true);
                let h = h.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    h.lock().unwrap().push(path.clone());
                    let r = handler(&path);
                    if !r.delay.is_zero() {
                        tokio::time::sleep(r.delay).await;
                    }
                    let mut out = format!(
                        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                        r.status,
                        r.body.len()
                    );
                    for (k, v) in &r.headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    let _ = s.write_all(out.as_bytes()).await;
                    let _ = s.write_all(&r.body).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        FakeHttp { addr, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

/// A fake DNS server answering PTR queries over UDP.
pub struct FakeDns {
    pub addr: SocketAddr,
    pub queries: Arc<AtomicUsize>,
}

impl FakeDns {
    /// `names`: address → PTR names; addresses in `silent` get no answer at all; every other
    /// address is NXDOMAIN with an SOA whose minimum is `negative_ttl`.
    pub async fn start(
        names: HashMap<IpAddr, Vec<String>>,
        silent: Vec<IpAddr>,
        ttl: u32,
        negative_ttl: u32,
    ) -> FakeDns {
        use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
        use hickory_resolver::proto::rr::rdata::{PTR, SOA};
        use hickory_resolver::proto::rr::{Name, RData, Record};

        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let q = queries.clone();
        let by_name: HashMap<Name, Vec<String>> = names
            .into_iter()
            .map(|(ip, n)| (Name::from(ip), n))
            .collect();
        let silent: Vec<Name> = silent.into_iter().map(Name::from).collect();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            loop {
                let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(msg) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                q.fetch_add(1, Ordering::SeqCst);
                let Some(query) = msg.queries.first().cloned() else {
                    continue;
                };
                let qname = query.name.clone();
                if silent.contains(&qname) {
                    continue;
                }
                let mut resp = Message::response(msg.metadata.id, msg.metadata.op_code);
                resp.metadata.message_type = MessageType::Response;
                resp.metadata.authoritative = true;
                resp.metadata.recursion_desired = msg.metadata.recursion_desired;
                resp.metadata.recursion_available = true;
                resp.add_query(query);
                match by_name.iter().find(|(k, _)| **k == qname) {
                    Some((_, ptrs)) => {
                        for p in ptrs {
                            let target = Name::from_ascii(format!("{p}.")).unwrap();
                            resp.add_answer(Record::from_rdata(
                                qname.clone(),
                                ttl,
                                RData::PTR(PTR(target)),
                            ));
                        }
                    }
                    None => {
                        resp.metadata.response_code = ResponseCode::NXDomain;
                        let zone = Name::from_ascii("in-addr.arpa.").unwrap();
                        let soa = SOA::new(
                            Name::from_ascii("ns.test.").unwrap(),
                            Name::from_ascii("hostmaster.test.").unwrap(),
                            1,
                            3600,
                            600,
                            86400,
                            negative_ttl,
                        );
                        resp.add_authority(Record::from_rdata(zone, negative_ttl, RData::SOA(soa)));
                    }
                }
                if let Ok(bytes) = resp.to_vec() {
                    let _ = sock.send_to(&bytes, peer).await;
                }
            }
        });
        FakeDns { addr, queries }
    }

    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}
