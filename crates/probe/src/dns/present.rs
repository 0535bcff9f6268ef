//! Turning a DNS message into the result's records and into dig-style text.
//!
//! Record data uses hickory's presentation format, except where dig differs in a way users
//! notice: TXT strings are quoted and escaped, and types hickory does not know are written in the
//! RFC 3597 generic form (`\# LENGTH HEX`), which dig and zone files accept.

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, Metadata};
use hickory_proto::rr::{RData, Record};
use hickory_proto::serialize::binary::BinEncodable;
use vantage_proto::{DnsRecord, DnsTransport, rr_type_name};

/// The mnemonic of a response code (RFC 6895 registry).
pub(super) fn rcode_name(code: u16) -> String {
    let name = match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        11 => "DSOTYPENI",
        16 => "BADVERS",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        other => return format!("RCODE{other}"),
    };
    name.to_string()
}

/// The header flags that are set, in dig's order.
pub(super) fn flags(m: &Metadata) -> Vec<String> {
    let all = [
        (
            "qr",
            m.message_type == hickory_proto::op::MessageType::Response,
        ),
        ("aa", m.authoritative),
        ("tc", m.truncation),
        ("rd", m.recursion_desired),
        ("ra", m.recursion_available),
        ("ad", m.authentic_data),
        ("cd", m.checking_disabled),
    ];
    all.iter()
        .filter(|(_, set)| *set)
        .map(|(f, _)| f.to_string())
        .collect()
}

/// One record as the result carries it.
pub(super) fn record(r: &Record) -> DnsRecord {
    DnsRecord {
        name: r.name.to_ascii(),
        ttl: r.ttl,
        class: r.dns_class.to_string(),
        rtype: rr_type_name(u16::from(r.record_type())),
        data: rdata_text(&r.data),
    }
}

/// Record data in presentation format.
fn rdata_text(data: &RData) -> String {
    match data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| quoted(s))
            .collect::<Vec<_>>()
            .join(" "),
        RData::NULL(null) => generic(&null.anything),
        RData::Unknown { rdata, .. } => generic(&rdata.anything),
        other => {
            let mut s = String::new();
            // Some types (OPT) have no presentation format: fall back to the generic form.
            if write!(s, "{other}").is_err() {
                return generic(&other.to_bytes().unwrap_or_default());
            }
            s
        }
    }
}

/// RFC 3597 generic record data.
fn generic(bytes: &[u8]) -> String {
    let mut s = format!("\\# {}", bytes.len());
    if !bytes.is_empty() {
        s.push(' ');
        for b in bytes {
            let _ = write!(s, "{b:02X}");
        }
    }
    s
}

/// A character-string quoted as in zone files: `"`, `\` escaped, non-printables as `\DDD`.
fn quoted(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(char::from(b));
            }
            0x20..=0x7e => s.push(char::from(b)),
            _ => {
                let _ = write!(s, "\\{b:03}");
            }
        }
    }
    s.push('"');
    s
}

/// What the dig-style text says about how the answer was obtained.
pub(super) struct Footer<'a> {
    pub server: SocketAddr,
    pub given: &'a str,
    pub transport: DnsTransport,
    pub tcp_retry: bool,
    pub rtt: Duration,
    pub size: usize,
}

/// The answer rendered like `dig`'s default output (without its banner lines).
pub(super) fn dig_text(m: &Message, footer: &Footer<'_>) -> String {
    let md = &m.metadata;
    let mut t = String::new();
    if footer.tcp_retry {
        let _ = writeln!(t, ";; Truncated, retrying in TCP mode.");
    }
    let opcode = format!("{:?}", md.op_code).to_uppercase();
    let _ = writeln!(
        t,
        ";; ->>HEADER<<- opcode: {opcode}, status: {}, id: {}",
        rcode_name(u16::from(md.response_code)),
        md.id
    );
    let additional = m.additionals.len() + usize::from(m.edns.is_some());
    let _ = writeln!(
        t,
        ";; flags: {}; QUERY: {}, ANSWER: {}, AUTHORITY: {}, ADDITIONAL: {}",
        flags(md).join(" "),
        m.queries.len(),
        m.answers.len(),
        m.authorities.len(),
        additional
    );
    if md.recursion_desired && !md.recursion_available {
        let _ = writeln!(t, ";; WARNING: recursion requested but not available");
    }
    if let Some(edns) = &m.edns {
        let _ = writeln!(t, "\n;; OPT PSEUDOSECTION:");
        let flags = if edns.flags().dnssec_ok { " do" } else { "" };
        let _ = writeln!(
            t,
            "; EDNS: version: {}, flags:{flags}; udp: {}",
            edns.version(),
            edns.max_payload()
        );
    }
    if !m.queries.is_empty() {
        let _ = writeln!(t, "\n;; QUESTION SECTION:");
        for q in &m.queries {
            let _ = writeln!(
                t,
                ";{}\t\t{}\t{}",
                q.name().to_ascii(),
                q.query_class(),
                rr_type_name(u16::from(q.query_type()))
            );
        }
    }
    for (title, records) in [
        ("ANSWER", &m.answers),
        ("AUTHORITY", &m.authorities),
        ("ADDITIONAL", &m.additionals),
    ] {
        if records.is_empty() {
            continue;
        }
        let _ = writeln!(t, "\n;; {title} SECTION:");
        for r in records.iter().map(record) {
            let _ = writeln!(
                t,
                "{}\t{}\t{}\t{}\t{}",
                r.name, r.ttl, r.class, r.rtype, r.data
            );
        }
    }
    let proto = match footer.transport {
        DnsTransport::Udp => "UDP",
        DnsTransport::Tcp => "TCP",
    };
    let _ = writeln!(
        t,
        "\n;; Query time: {:.3} msec",
        footer.rtt.as_secs_f64() * 1000.0
    );
    let _ = writeln!(
        t,
        ";; SERVER: {}#{}({}) ({proto})",
        footer.server.ip(),
        footer.server.port(),
        footer.given
    );
    let _ = write!(t, ";; MSG SIZE  rcvd: {}", footer.size);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{NULL, TXT};
    use hickory_proto::rr::{Name, RecordType};

    #[test]
    fn txt_strings_are_quoted_and_escaped_like_dig() {
        let txt = TXT::from_bytes(vec![b"v=spf1 -all", b"say \"hi\"\\", b"\x01\xff"]);
        assert_eq!(
            rdata_text(&RData::TXT(txt)),
            r#""v=spf1 -all" "say \"hi\"\\" "\001\255""#
        );
    }

    #[test]
    fn unknown_types_use_the_rfc_3597_generic_form() {
        let data = RData::Unknown {
            code: RecordType::Unknown(65534),
            rdata: NULL::with(vec![0xde, 0xad, 0x01]),
        };
        assert_eq!(rdata_text(&data), "\\# 3 DEAD01");
        let name = Name::from_ascii("x.example.").unwrap();
        let r = record(&Record::from_rdata(name, 60, data));
        assert_eq!(r.rtype, "TYPE65534");
        assert_eq!(r.name, "x.example.");
    }

    #[test]
    fn response_codes_have_their_mnemonics() {
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(5), "REFUSED");
        assert_eq!(rcode_name(4000), "RCODE4000");
    }
}
