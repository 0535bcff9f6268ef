//! Reaching the server's agent port: parsing its URL and opening TCP + TLS 1.3.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::Error;

/// The agent port's default port number.
pub const DEFAULT_PORT: u16 = 7781;
/// How long TCP connect and the TLS handshake may take together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server's agent port is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl ServerUrl {
    /// Parses `https://host[:port]` (or `host[:port]`); IPv6 literals in brackets.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::Config(format!(
                "'{s}' is not a server URL ({why}); write it as https://HOST:PORT, for example https://vantage.example.net:{DEFAULT_PORT}"
            ))
        };
        let rest = match s.trim().split_once("://") {
            Some(("https", r)) => r,
            Some((scheme, _)) => {
                return Err(bad(&format!(
                    "the scheme is '{scheme}', but agents always use https"
                )));
            }
            None => s.trim(),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err(bad("a path is not expected"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("an unclosed '['"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("the port is not a number"))?,
                None if after.is_empty() => DEFAULT_PORT,
                None => return Err(bad("unexpected text after ']'")),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (
                    h.to_string(),
                    p.parse().map_err(|_| bad("the port is not a number"))?,
                ),
                Some(_) => return Err(bad("IPv6 addresses must be in brackets")),
                None => (rest.to_string(), DEFAULT_PORT),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        if port == 0 {
            return Err(bad("port 0 is not a port one can connect to"));
        }
        Ok(ServerUrl { host, port })
    }

    /// `host:port` as used in URLs (IPv6 bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Opens TCP (with `TCP_NODELAY`) and TLS to the server.
    pub async fn connect(
        &self,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<TlsStream<TcpStream>, Error> {
        let name = ServerName::try_from(self.host.clone())
            .map_err(|_| Error::Config(format!("'{}' is not a valid host name", self.host)))?;
        let fut = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| {
                    Error::Connect(format!("cannot connect to {}: {e}", self.authority()))
                })?;
            let _ = tcp.set_nodelay(true);
            TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|e| Error::Connect(format!("TLS with {} failed: {e}", self.authority())))
        };
        tokio::time::timeout(CONNECT_TIMEOUT, fut)
            .await
            .map_err(|_| {
                Error::Connect(format!(
                    "connecting to {} timed out after {} s",
                    self.authority(),
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "https://{}", self.authority())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults_and_ipv6() {
        let u = ServerUrl::parse("https://vantage.example.net:9000").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("vantage.example.net", 9000));
        let u = ServerUrl::parse("vantage.example.net").unwrap();
        assert_eq!(u.port, DEFAULT_PORT);
        let u = ServerUrl::parse("https://[2001:db8::1]:7781/").unwrap();
        assert_eq!(u.host, "2001:db8::1");
        assert_eq!(u.to_string(), "https://[2001:db8::1]:7781");
        for bad in [
            "http://x:1",
            "https://2001:db8::1",
            "https://x:port",
            "https://x:1/path",
            "https://:1",
            "https://x:0",
        ] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
