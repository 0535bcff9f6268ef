//! RDAP against a fake registry server on loopback, reached through bootstrap files in a data
//! directory that point at it — the same path a real query takes (bootstrap → base URL →
//! redirect → JSON), with 404s, errors, garbage and slowness checked too.

mod support;

use std::time::{Duration, Instant};

use support::{FakeHttp, Reply};
use vantage_lookup::{DataDir, Error, Lookup};

const DOMAIN: &str = r#"{
  "objectClassName": "domain", "handle": "2336799_DOMAIN_COM-VRSN", "ldhName": "EXAMPLE.COM",
  "rdapConformance": ["rdap_level_0"],
  "status": ["client delete prohibited", "client transfer prohibited"],
  "events": [{"eventAction": "registration", "eventDate": "1995-08-14T04:00:00Z"},
             {"eventAction": "expiration", "eventDate": "2025-08-13T04:00:00Z"},
             {"eventAction": "last changed", "eventDate": "2024-08-14T07:01:34Z"}],
  "entities": [{"objectClassName": "entity", "handle": "376", "roles": ["registrar"],
      "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "Example Registrar, Inc."]]],
      "entities": [{"objectClassName": "entity", "roles": ["abuse"],
          "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["email", {}, "text", "abuse@registrar.test"]]]}]}],
  "nameservers": [{"objectClassName": "nameserver", "ldhName": "A.IANA-SERVERS.NET"},
                  {"objectClassName": "nameserver", "ldhName": "B.IANA-SERVERS.NET"}]
}"#;

const NETWORK: &str = r#"{
  "objectClassName": "ip network", "handle": "193.0.0.0 - 193.0.7.255",
  "startAddress": "193.0.0.0", "endAddress": "193.0.7.255", "ipVersion": "v4",
  "name": "RIPE-NCC", "type": "ASSIGNED PA", "country": "NL",
  "cidr0_cidrs": [{"v4prefix": "193.0.0.0", "length": 21}],
  "entities": [{"roles": ["registrant"], "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
      ["fn", {}, "text", "Reseaux IP Europeens Network Coordination Centre (RIPE NCC)"], ["kind", {}, "text", "org"]]]}],
  "port43": "whois.ripe.net"
}"#;

const AUTNUM: &str = r#"{
  "objectClassName": "autnum", "handle": "AS3333", "startAutnum": 3333, "endAutnum": 3333,
  "name": "RIPE-NCC-AS", "status": ["active"]
}"#;

fn bootstrap(base: &str) -> [(&'static str, String); 4] {
    let file = |entries: &str| {
        format!(
            r#"{{"version": "1.0", "publication": "2026-01-01T00:00:00Z", "services": [[[{entries}], ["{base}"]]]}}"#
        )
    };
    [
        ("dns.json", file(r#""com""#)),
        ("ipv4.json", file(r#""193.0.0.0/8""#)),
        ("ipv6.json", file(r#""2001:600::/23""#)),
        ("asn.json", file(r#""3333", "64496-64511""#)),
    ]
}

async fn setup() -> (FakeHttp, tempfile::TempDir, Lookup) {
    let http = FakeHttp::start(|path| match path {
        "/rdap/domain/example.com" => Reply::json(DOMAIN),
        // Registries redirect queries for space another registry holds (RFC 7480 §5.2).
        "/rdap/ip/193.0.6.139" => Reply::redirect("/ripe/ip/193.0.6.139"),
        "/ripe/ip/193.0.6.139" => Reply::json(NETWORK),
        "/rdap/autnum/3333" => Reply::json(AUTNUM),
        "/rdap/domain/garbage.com" => Reply::status(200, "<html><body>Welcome</body></html>"),
        "/rdap/domain/broken.com" => Reply::status(
            500,
            r#"{"errorCode": 500, "title": "Internal Server Error", "description": ["database offline"]}"#,
        ),
        "/rdap/domain/slow.com" => Reply {
            delay: Duration::from_secs(3),
            ..Reply::json(DOMAIN)
        },
        _ => Reply::status(404, r#"{"errorCode": 404, "title": "Not Found"}"#),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let rdap = dir.path().join("lookup/rdap");
    std::fs::create_dir_all(&rdap).unwrap();
    for (name, text) in bootstrap(&http.url("/rdap/")) {
        std::fs::write(rdap.join(name), text).unwrap();
    }
    let mut lookup = Lookup::open(DataDir::new(dir.path())).unwrap();
    lookup.set_rdap_timeout(Duration::from_millis(700));
    (http, dir, lookup)
}

#[tokio::test]
async fn domain_through_the_bootstrap_file() {
    let (http, _dir, lookup) = setup().await;
    let a = lookup.rdap("EXAMPLE.com", None).await.unwrap();
    assert_eq!(http.hits(), ["/rdap/domain/example.com"]);
    assert_eq!(a.url, http.url("/rdap/domain/example.com"));
    let s = &a.summary;
    assert_eq!(s.object_class.as_deref(), Some("domain"));
    assert_eq!(s.name.as_deref(), Some("example.com"));
    assert_eq!(s.registrar.as_deref(), Some("Example Registrar, Inc."));
    assert_eq!(s.abuse_email.as_deref(), Some("abuse@registrar.test"));
    assert_eq!(s.registered.as_deref(), Some("1995-08-14T04:00:00Z"));
    assert_eq!(s.expires.as_deref(), Some("2025-08-13T04:00:00Z"));
    assert_eq!(s.last_changed.as_deref(), Some("2024-08-14T07:01:34Z"));
    assert_eq!(s.name_servers, ["a.iana-servers.net", "b.iana-servers.net"]);
    assert_eq!(
        s.status,
        ["client delete prohibited", "client transfer prohibited"]
    );
    assert_eq!(
        a.raw["handle"], "2336799_DOMAIN_COM-VRSN",
        "the raw JSON is kept whole"
    );
}

#[tokio::test]
async fn address_follows_the_registry_redirect() {
    let (http, _dir, lookup) = setup().await;
    let a = lookup.rdap("193.0.6.139", None).await.unwrap();
    assert_eq!(
        http.hits(),
        ["/rdap/ip/193.0.6.139", "/ripe/ip/193.0.6.139"]
    );
    assert_eq!(a.url, http.url("/ripe/ip/193.0.6.139"));
    let s = &a.summary;
    assert_eq!(s.start_address.as_deref(), Some("193.0.0.0"));
    assert_eq!(s.end_address.as_deref(), Some("193.0.7.255"));
    assert_eq!(s.cidr, ["193.0.0.0/21"]);
    assert_eq!(s.name.as_deref(), Some("RIPE-NCC"));
    assert_eq!(s.country.as_deref(), Some("NL"));
    assert_eq!(
        s.registrant.as_deref(),
        Some("Reseaux IP Europeens Network Coordination Centre (RIPE NCC)")
    );
    assert_eq!(s.port43.as_deref(), Some("whois.ripe.net"));
}

#[tokio::test]
async fn autnum_and_asn_ranges() {
    let (http, _dir, lookup) = setup().await;
    let a = lookup.rdap("AS3333", None).await.unwrap();
    assert_eq!(a.summary.start_autnum, Some(3333));
    assert_eq!(a.summary.name.as_deref(), Some("RIPE-NCC-AS"));
    // 64500 is inside the bootstrap range 64496-64511: the same server is asked.
    let e = lookup.rdap("AS64500", None).await.unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    assert_eq!(http.hits().last().unwrap(), "/rdap/autnum/64500");
}

#[tokio::test]
async fn failures_are_sentences() {
    let (_http, _dir, lookup) = setup().await;
    let e = lookup.rdap("nope.com", None).await.unwrap_err();
    assert!(matches!(e, Error::NotFound(_)));
    assert!(e.to_string().contains("HTTP 404"), "{e}");

    let e = lookup.rdap("garbage.com", None).await.unwrap_err();
    assert!(matches!(e, Error::Upstream(_)));
    assert!(
        e.to_string().contains("did not answer with RDAP JSON"),
        "{e}"
    );

    let e = lookup.rdap("broken.com", None).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("HTTP 500 (Internal Server Error: database offline)"),
        "{e}"
    );

    let started = Instant::now();
    let e = lookup.rdap("slow.com", None).await.unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    assert!(e.to_string().contains("did not answer within 0.7 s"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // No bootstrap entry, and private space: answered without any request.
    let e = lookup.rdap("example.org", None).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("no RDAP service is known for example.org"),
        "{e}"
    );
    let e = lookup.rdap("10.0.0.1", None).await.unwrap_err();
    assert!(e.to_string().contains("RFC 1918"), "{e}");
    let e = lookup.rdap("not a query", None).await.unwrap_err();
    assert!(matches!(e, Error::Invalid(_)));
}

#[tokio::test]
async fn an_explicit_server_skips_the_bootstrap() {
    let (http, _dir, lookup) = setup().await;
    let a = lookup
        .rdap("example.com", Some(&http.url("/rdap")))
        .await
        .unwrap();
    assert_eq!(a.summary.handle.as_deref(), Some("2336799_DOMAIN_COM-VRSN"));
    let e = lookup
        .rdap("example.com", Some("ftp://x"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Invalid(_)));
}
