//! WHOIS against fake servers on loopback that behave like the real ones: IANA referring to a
//! registry, the registry referring to a registrar, ARIN referring to RIPE, plus loops, hop
//! limits, silence, garbage and refusals. Every answer is checked field by field, and every
//! server is checked to have been asked exactly what the protocol says.

mod support;

use std::time::{Duration, Instant};

use support::{FakeWhois, WhoisReply};
use vantage_lookup::Error;
use vantage_lookup::whois::{QueryKind, Server, WhoisClient};

const IANA_COM: &str = "% IANA WHOIS server
% for more information on IANA, visit http://www.iana.org
% This query returned 1 object

refer:        whois.registry.test

domain:       COM

organisation: VeriSign Global Registry Services
address:      12061 Bluemont Way
address:      Reston VA 20190
address:      United States of America (the)

whois:        whois.registry.test

status:       ACTIVE
remarks:      Registration information: http://www.verisigninc.com

created:      1985-01-01
changed:      2023-12-07
source:       IANA
";

const REGISTRY_EXAMPLE: &str = "   Domain Name: EXAMPLE.COM
   Registry Domain ID: 2336799_DOMAIN_COM-VRSN
   Registrar WHOIS Server: whois.registrar.test
   Registrar URL: http://www.registrar.test
   Updated Date: 2024-08-14T07:01:34Z
   Creation Date: 1995-08-14T04:00:00Z
   Registry Expiry Date: 2025-08-13T04:00:00Z
   Registrar: Example Registrar, Inc.
   Registrar IANA ID: 376
   Domain Status: clientDeleteProhibited https://icann.org/epp#clientDeleteProhibited
   Domain Status: clientTransferProhibited https://icann.org/epp#clientTransferProhibited
   Name Server: A.IANA-SERVERS.NET
   Name Server: B.IANA-SERVERS.NET
   DNSSEC: signedDelegation
>>> Last update of whois database: 2024-09-01T10:00:00Z <<<
";

const REGISTRAR_EXAMPLE: &str = "Domain Name: example.com
Registry Domain ID: 2336799_DOMAIN_COM-VRSN
Registrar WHOIS Server: whois.registrar.test
Updated Date: 2024-08-14T07:01:34Z
Creation Date: 1995-08-14T04:00:00Z
Registrar Registration Expiration Date: 2025-08-13T04:00:00Z
Registrar: Example Registrar, Inc.
Registrant Organization: Internet Assigned Numbers Authority
Registrant Country: US
Name Server: a.iana-servers.net
Name Server: b.iana-servers.net
";

const IANA_RIPE: &str = "% IANA WHOIS server

refer:        whois.ripe.test

inetnum:      193.0.0.0 - 193.255.255.255
organisation: RIPE NCC
status:       ALLOCATED

whois:        whois.ripe.test

changed:      1993-05
source:       IANA
";

const RIPE_193: &str = "% This is the RIPE Database query service.
% Information related to '193.0.0.0 - 193.0.7.255'

inetnum:        193.0.0.0 - 193.0.7.255
netname:        RIPE-NCC
descr:          RIPE Network Coordination Centre
org:            ORG-RIEN1-RIPE
country:        NL
status:         ASSIGNED PA
created:        2003-03-17T12:15:57Z
last-modified:  2017-12-04T14:42:31Z
source:         RIPE

organisation:   ORG-RIEN1-RIPE
org-name:       Reseaux IP Europeens Network Coordination Centre (RIPE NCC)
abuse-mailbox:  abuse@ripe.net
source:         RIPE

% Information related to '193.0.0.0/21AS3333'

route:          193.0.0.0/21
origin:         AS3333
source:         RIPE
";

const ARIN_RIPE_BLOCK: &str = "#
# ARIN WHOIS data and services are subject to the Terms of Use
#

NetRange:       193.0.0.0 - 193.255.255.255
CIDR:           193.0.0.0/8
NetName:        RIPE-CBLK2
NetType:        Allocated to RIPE NCC
OrgName:        RIPE Network Coordination Centre
Country:        NL
ReferralServer:  whois://whois.ripe.test
";

const ARIN_AS15169: &str = "ASNumber:       15169
ASName:         GOOGLE
ASHandle:       AS15169
RegDate:        2000-03-30
Updated:        2012-02-24
OrgName:        Google LLC
OrgId:          GOGL
Country:        US
OrgAbuseEmail:  network-abuse@google.com
";

fn client(servers: &[(&str, &FakeWhois)]) -> WhoisClient {
    let mut c = WhoisClient::new().timeout(Duration::from_secs(5));
    for (name, s) in servers {
        c = c.resolve(name, s.addr);
    }
    c
}

#[tokio::test]
async fn domain_follows_iana_registry_and_registrar() {
    let iana = FakeWhois::start(|_| WhoisReply::Text(IANA_COM.into())).await;
    let registry = FakeWhois::start(|_| WhoisReply::Text(REGISTRY_EXAMPLE.into())).await;
    let registrar = FakeWhois::start(|_| WhoisReply::Text(REGISTRAR_EXAMPLE.into())).await;
    let c = client(&[
        ("whois.iana.org", &iana),
        ("whois.registry.test", &registry),
        ("whois.registrar.test", &registrar),
    ]);
    let a = c.query("Example.COM", None).await.unwrap();
    let servers: Vec<&str> = a.hops.iter().map(|h| h.server.as_str()).collect();
    assert_eq!(
        servers,
        [
            "whois.iana.org",
            "whois.registry.test",
            "whois.registrar.test"
        ]
    );
    assert_eq!(a.query.kind, QueryKind::Domain);
    assert!(a.found);
    assert_eq!(a.note, None);
    assert_eq!(a.error, None);
    for s in [&iana, &registry, &registrar] {
        assert_eq!(s.queries(), ["example.com"]);
    }
    let s = &a.summary;
    assert_eq!(s.domain.as_deref(), Some("example.com"));
    assert_eq!(s.registrar.as_deref(), Some("Example Registrar, Inc."));
    assert_eq!(s.created.as_deref(), Some("1995-08-14T04:00:00Z"));
    assert_eq!(s.updated.as_deref(), Some("2024-08-14T07:01:34Z"));
    assert_eq!(s.expires.as_deref(), Some("2025-08-13T04:00:00Z"));
    assert_eq!(
        s.organisation.as_deref(),
        Some("Internet Assigned Numbers Authority")
    );
    assert_eq!(s.name_servers, ["a.iana-servers.net", "b.iana-servers.net"]);
    // The registrar's answer has no status lines: they come from the registry's answer.
    assert_eq!(
        s.status,
        ["clientDeleteProhibited", "clientTransferProhibited"]
    );
    assert_eq!(s.style.as_deref(), Some("domain"));
}

#[tokio::test]
async fn address_at_a_rir_in_rpsl_style() {
    let iana = FakeWhois::start(|_| WhoisReply::Text(IANA_RIPE.into())).await;
    let ripe = FakeWhois::start(|_| WhoisReply::Text(RIPE_193.into())).await;
    let c = client(&[("whois.iana.org", &iana), ("whois.ripe.test", &ripe)]);
    let a = c.query("193.0.6.139", None).await.unwrap();
    assert_eq!(a.hops.len(), 2);
    assert_eq!(ripe.queries(), ["193.0.6.139"]);
    let s = &a.summary;
    assert_eq!(s.style.as_deref(), Some("rpsl"));
    assert_eq!(s.range.as_deref(), Some("193.0.0.0 - 193.0.7.255"));
    assert_eq!(s.netname.as_deref(), Some("RIPE-NCC"));
    // The holder's name, not IANA's "RIPE NCC" nor the first descr line.
    assert_eq!(
        s.organisation.as_deref(),
        Some("Reseaux IP Europeens Network Coordination Centre (RIPE NCC)")
    );
    assert_eq!(s.country.as_deref(), Some("NL"));
    assert_eq!(s.cidr, ["193.0.0.0/21"]);
    assert_eq!(s.asn.as_deref(), Some("AS3333"));
    assert_eq!(s.abuse_email.as_deref(), Some("abuse@ripe.net"));
}

#[tokio::test]
async fn arin_referral_server_leads_to_ripe_and_arin_gets_its_flags() {
    let arin = FakeWhois::start(|_| WhoisReply::Text(ARIN_RIPE_BLOCK.into())).await;
    let ripe = FakeWhois::start(|_| WhoisReply::Text(RIPE_193.into())).await;
    let c = client(&[("whois.arin.net", &arin), ("whois.ripe.test", &ripe)]);
    let first = Server::parse("whois.arin.net").unwrap();
    let a = c.query("193.0.6.139", Some(&first)).await.unwrap();
    assert_eq!(arin.queries(), ["n + 193.0.6.139"]);
    assert_eq!(ripe.queries(), ["193.0.6.139"]);
    assert_eq!(
        a.hops[0].referral.as_deref(),
        Some("whois://whois.ripe.test")
    );
    // Only the last answer describes the holder; ARIN's block belongs to the RIR.
    assert_eq!(a.summary.netname.as_deref(), Some("RIPE-NCC"));
    assert_eq!(a.summary.country.as_deref(), Some("NL"));
}

/// ARIN's answer for an address in a reassigned block: the parent network first, then the
/// customer's, each followed by its organisation.
const ARIN_8888: &str = "NetRange:       8.0.0.0 - 8.127.255.255
CIDR:           8.0.0.0/9
NetName:        LVLT-ORG-8-8
Organization:   Level 3 Parent, LLC (LPL-141)

OrgName:        Level 3 Parent, LLC
Country:        US

NetRange:       8.8.8.0 - 8.8.8.255
CIDR:           8.8.8.0/24
NetName:        GOGL
Organization:   Google LLC (GOGL)

OrgName:        Google LLC
Country:        US
OrgAbuseEmail:  network-abuse@google.com
";

#[tokio::test]
async fn arin_answers_describe_the_most_specific_network() {
    let arin = FakeWhois::start(|_| WhoisReply::Text(ARIN_8888.into())).await;
    let c = client(&[("whois.arin.net", &arin)]);
    let first = Server::parse("whois.arin.net").unwrap();
    let a = c.query("8.8.8.8", Some(&first)).await.unwrap();
    let s = &a.summary;
    assert_eq!(s.range.as_deref(), Some("8.8.8.0 - 8.8.8.255"));
    assert_eq!(s.cidr, ["8.8.8.0/24"]);
    assert_eq!(s.netname.as_deref(), Some("GOGL"));
    assert_eq!(s.organisation.as_deref(), Some("Google LLC"));
}

#[tokio::test]
async fn asn_in_arin_style() {
    let iana = FakeWhois::start(|_| {
        WhoisReply::Text("refer:        whois.arin.net\n\nas-block:     15000-15359\n".into())
    })
    .await;
    let arin = FakeWhois::start(|_| WhoisReply::Text(ARIN_AS15169.into())).await;
    let c = client(&[("whois.iana.org", &iana), ("whois.arin.net", &arin)]);
    let a = c.query("as15169", None).await.unwrap();
    assert_eq!(iana.queries(), ["AS15169"]);
    assert_eq!(arin.queries(), ["a + 15169"]);
    let s = &a.summary;
    assert_eq!(s.style.as_deref(), Some("arin"));
    assert_eq!(s.asn.as_deref(), Some("15169"));
    assert_eq!(s.as_name.as_deref(), Some("GOOGLE"));
    assert_eq!(s.organisation.as_deref(), Some("Google LLC"));
    assert_eq!(s.abuse_email.as_deref(), Some("network-abuse@google.com"));
}

#[tokio::test]
async fn referral_loops_and_hop_limits_stop_with_a_note() {
    let a =
        FakeWhois::start(|_| WhoisReply::Text("refer: whois.b.test\nnetname: A\n".into())).await;
    let b =
        FakeWhois::start(|_| WhoisReply::Text("refer: whois.a.test\nnetname: B\n".into())).await;
    let c = client(&[("whois.a.test", &a), ("whois.b.test", &b)]);
    let first = Server::parse("whois.a.test").unwrap();
    let ans = c.query("192.0.2.1", Some(&first)).await.unwrap();
    assert_eq!(ans.hops.len(), 2);
    assert!(
        ans.note.as_deref().unwrap().contains("loop"),
        "{:?}",
        ans.note
    );
    assert_eq!(a.queries().len(), 1, "the loop must not ask A twice");

    // A → C → D → E → …: with three hops allowed, E is never asked.
    let e = FakeWhois::start(|_| WhoisReply::Text("netname: E\n".into())).await;
    let d =
        FakeWhois::start(|_| WhoisReply::Text("refer: whois.e.test\nnetname: D\n".into())).await;
    let cc =
        FakeWhois::start(|_| WhoisReply::Text("refer: whois.d.test\nnetname: C\n".into())).await;
    let start =
        FakeWhois::start(|_| WhoisReply::Text("refer: whois.c.test\nnetname: S\n".into())).await;
    let c = client(&[
        ("whois.s.test", &start),
        ("whois.c.test", &cc),
        ("whois.d.test", &d),
        ("whois.e.test", &e),
    ])
    .max_hops(3);
    let first = Server::parse("whois.s.test").unwrap();
    let ans = c.query("192.0.2.1", Some(&first)).await.unwrap();
    assert_eq!(ans.hops.len(), 3);
    assert!(
        ans.note
            .as_deref()
            .unwrap()
            .contains("stopped after 3 servers"),
        "{:?}",
        ans.note
    );
    assert!(e.queries().is_empty());
    assert_eq!(ans.summary.netname.as_deref(), Some("D"));

    // --no-follow asks one server only.
    let c = client(&[("whois.s.test", &start), ("whois.c.test", &cc)]).follow(false);
    let ans = c.query("192.0.2.1", Some(&first)).await.unwrap();
    assert_eq!(ans.hops.len(), 1);
    assert_eq!(ans.hops[0].referral.as_deref(), Some("whois.c.test"));
}

#[tokio::test]
async fn a_silent_server_times_out_with_a_clear_error() {
    let silent = FakeWhois::start(|_| WhoisReply::Silent).await;
    let c = client(&[("whois.iana.org", &silent)]).timeout(Duration::from_millis(300));
    let started = Instant::now();
    let e = c.query("example.com", None).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    assert_eq!(e.to_string(), "whois.iana.org did not answer within 0.3 s");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test]
async fn garbage_and_empty_answers_are_errors() {
    let garbage = FakeWhois::start(|_| {
        WhoisReply::Bytes(vec![0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1])
    })
    .await;
    let c = client(&[("whois.iana.org", &garbage)]);
    let e = c.query("example.com", None).await.unwrap_err();
    assert!(matches!(e, Error::Upstream(_)));
    assert!(e.to_string().contains("not WHOIS text"), "{e}");

    let empty = FakeWhois::start(|_| WhoisReply::Text(String::new())).await;
    let c = client(&[("whois.iana.org", &empty)]);
    let e = c.query("example.com", None).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("closed the connection without answering"),
        "{e}"
    );
}

#[tokio::test]
async fn a_failing_second_server_keeps_the_first_answer() {
    // A port nothing listens on: bind, note it, close.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let iana = FakeWhois::start(|_| WhoisReply::Text(IANA_RIPE.into())).await;
    let c = client(&[("whois.iana.org", &iana)]).resolve("whois.ripe.test", closed);
    let a = c.query("193.0.6.139", None).await.unwrap();
    assert_eq!(a.hops.len(), 1);
    assert!(!a.found);
    let err = a.error.unwrap();
    assert!(
        err.contains("whois.iana.org referred to whois.ripe.test"),
        "{err}"
    );
    assert!(err.contains("refused"), "{err}");
}

#[tokio::test]
async fn no_match_answers_are_not_found_and_rwhois_is_not_followed() {
    let registry = FakeWhois::start(|_| {
        WhoisReply::Text(
            "No match for \"NOPE-NOPE.COM\".\n>>> Last update of whois database: 2024-09-01 <<<\n"
                .into(),
        )
    })
    .await;
    let c = client(&[("whois.registry.test", &registry)]);
    let first = Server::parse("whois.registry.test").unwrap();
    let a = c.query("nope-nope.com", Some(&first)).await.unwrap();
    assert!(!a.found);

    let arin = FakeWhois::start(|_| {
        WhoisReply::Text(
            "NetRange: 192.0.2.0 - 192.0.2.255\nReferralServer: rwhois://rwhois.example.net:4321\n"
                .into(),
        )
    })
    .await;
    let c = client(&[("whois.x.test", &arin)]);
    let first = Server::parse("whois.x.test").unwrap();
    let a = c.query("192.0.2.1", Some(&first)).await.unwrap();
    assert_eq!(a.hops.len(), 1);
    assert!(a.note.unwrap().contains("RWhois"));
    assert_eq!(a.summary.range.as_deref(), Some("192.0.2.0 - 192.0.2.255"));
}

#[tokio::test]
async fn latin1_answers_are_decoded() {
    let lacnic = FakeWhois::start(|_| {
        let mut b = b"aut-num:     AS28000\nowner:       Asociaci".to_vec();
        b.push(0xf3); // ó in Latin-1
        b.extend_from_slice(b"n Civil\ncountry:     UY\n");
        WhoisReply::Bytes(b)
    })
    .await;
    let c = client(&[("whois.lacnic.test", &lacnic)]);
    let first = Server::parse("whois.lacnic.test").unwrap();
    let a = c.query("AS28000", Some(&first)).await.unwrap();
    assert_eq!(a.summary.organisation.as_deref(), Some("Asociación Civil"));
    assert_eq!(a.summary.asn.as_deref(), Some("AS28000"));
}
