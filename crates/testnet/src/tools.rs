//! Parsers for the output of the classic tools that tests run across a topology as ground
//! truth, so every test reads them the same way.

use crate::error::{Error, Result};

/// What one run of iputils `ping` reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PingOutput {
    /// Per reply, in the order printed: `(icmp_seq, ttl or hop limit, rtt in ms)`.
    pub replies: Vec<(u32, u8, f64)>,
    /// "N packets transmitted".
    pub transmitted: u64,
    /// "M received".
    pub received: u64,
    /// The `mdev` of the summary line, in ms, when printed.
    pub mdev_ms: Option<f64>,
}

impl PingOutput {
    /// The round-trip times in ms, in reply order.
    pub fn rtts(&self) -> Vec<f64> {
        self.replies.iter().map(|r| r.2).collect()
    }

    /// Packets transmitted but not answered.
    pub fn lost(&self) -> u64 {
        self.transmitted.saturating_sub(self.received)
    }
}

/// Parses the standard output of iputils `ping` (with or without `-q`).
pub fn parse_ping(stdout: &str) -> Result<PingOutput> {
    let mut out = PingOutput::default();
    let mut summary = false;
    for line in stdout.lines() {
        if line.contains("bytes from") && line.contains("time=") {
            let field = |key: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .map(str::to_string)
            };
            let seq = field("icmp_seq=").and_then(|v| v.parse().ok());
            let ttl = field("ttl=")
                .or_else(|| field("hlim="))
                .and_then(|v| v.parse().ok());
            let time = field("time=").and_then(|v| v.parse().ok());
            if let (Some(seq), Some(ttl), Some(time)) = (seq, ttl, time) {
                out.replies.push((seq, ttl, time));
            }
        } else if line.contains("packets transmitted") {
            summary = true;
            let nums: Vec<u64> = line
                .split([',', ' '])
                .filter_map(|w| w.parse().ok())
                .collect();
            if nums.len() >= 2 {
                out.transmitted = nums[0];
                out.received = nums[1];
            }
        } else if let Some(stats) = line.strip_prefix("rtt min/avg/max/mdev = ") {
            out.mdev_ms = stats
                .split_whitespace()
                .next()
                .and_then(|v| v.split('/').nth(3))
                .and_then(|v| v.parse().ok());
        }
    }
    if !summary {
        return Err(Error::Invalid(format!(
            "ping printed no summary line; its output was:\n{stdout}"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iputils_output() {
        let text = "PING 10.1.2.2 (10.1.2.2) 56(84) bytes of data.\n\
64 bytes from 10.1.2.2: icmp_seq=1 ttl=61 time=40.2 ms\n\
64 bytes from 10.1.2.2: icmp_seq=3 ttl=61 time=40.1 ms\n\
\n\
--- 10.1.2.2 ping statistics ---\n\
3 packets transmitted, 2 received, 33.3333% packet loss, time 2003ms\n\
rtt min/avg/max/mdev = 40.100/40.150/40.200/0.050 ms\n";
        let p = parse_ping(text).unwrap();
        assert_eq!(p.replies, vec![(1, 61, 40.2), (3, 61, 40.1)]);
        assert_eq!((p.transmitted, p.received, p.lost()), (3, 2, 1));
        assert_eq!(p.mdev_ms, Some(0.05));
    }

    #[test]
    fn parses_ipv6_hop_limit_and_errors() {
        let text = "64 bytes from fd00::2: icmp_seq=1 hlim=62 time=0.061 ms\n\
1 packets transmitted, 1 received, 0% packet loss, time 0ms\n";
        let p = parse_ping(text).unwrap();
        assert_eq!(p.replies, vec![(1, 62, 0.061)]);
        assert!(parse_ping("ping: connect: Network is unreachable\n").is_err());
    }
}
