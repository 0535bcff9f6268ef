//! `data update` and the lookups that read what it installs: small fixture tables (written here,
//! in both public formats, plain and gzip, from files and from a loopback HTTP server) with
//! range boundaries checked address by address; country from MMDB fixtures built with
//! mmdb-writer; OUI and RDAP refreshes; overrides; and updates that fail leaving the installed
//! data untouched.

mod support;

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use serde::Serialize;
use support::{FakeHttp, Reply};
use vantage_lookup::overrides::NameSource;
use vantage_lookup::update::{Dataset, UpdateOptions, update};
use vantage_lookup::{DataDir, Error, Lookup};

const ASN_V4: &str = "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"
8.8.4.0,8.8.4.255,15169,Google LLC
8.8.8.0,8.8.8.255,15169,Google LLC
10.0.0.0,10.255.255.255,64512,Should never be reported
193.0.0.0,193.0.7.255,3333,Reseaux IP Europeens Network Coordination Centre (RIPE NCC)
";

const ASN_V6: &str = "2001:67c:2e8::,2001:67c:2e8:ffff:ffff:ffff:ffff:ffff,3333,Reseaux IP Europeens Network Coordination Centre (RIPE NCC)
2001:4860::,2001:4860:ffff:ffff:ffff:ffff:ffff:ffff,15169,Google LLC
";

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.display().to_string()
}

fn opts(sources: Vec<String>) -> UpdateOptions {
    UpdateOptions {
        sources,
        ..UpdateOptions::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn install_fixture_asn(data: &Path, files: &Path) {
    let v4 = write(files, "asn-ipv4.csv", ASN_V4.as_bytes());
    let v6 = write(files, "asn-ipv6.csv.gz", &gzip(ASN_V6.as_bytes()));
    update(&DataDir::new(data), Dataset::Asn, opts(vec![v4, v6]))
        .await
        .unwrap();
}

#[tokio::test]
async fn asn_table_from_ip_location_db_files_with_boundaries() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    install_fixture_asn(data.path(), files.path()).await;
    let lookup = Lookup::open(DataDir::new(data.path())).unwrap();
    let asn = |s: &str| {
        let lookup = &lookup;
        let s = s.to_string();
        async move { lookup.ip(ip(&s), false).await.unwrap().asn }
    };
    assert_eq!(asn("1.0.0.0").await, Some(13335));
    assert_eq!(asn("1.0.0.255").await, Some(13335));
    assert_eq!(asn("1.0.1.0").await, None);
    assert_eq!(asn("0.255.255.255").await, None);
    assert_eq!(asn("8.8.4.255").await, Some(15169));
    assert_eq!(asn("8.8.5.0").await, None);
    assert_eq!(asn("8.8.7.255").await, None);
    assert_eq!(asn("8.8.8.0").await, Some(15169));
    assert_eq!(asn("2001:4860::8888").await, Some(15169));
    assert_eq!(asn("2001:4861::").await, None);
    assert_eq!(
        asn("::ffff:8.8.8.8").await,
        Some(15169),
        "IPv4-mapped is looked up as IPv4"
    );

    let i = lookup.ip(ip("193.0.6.139"), false).await.unwrap();
    assert_eq!(
        i.as_name.as_deref(),
        Some("Reseaux IP Europeens Network Coordination Centre (RIPE NCC)")
    );
    assert_eq!(i.as_name_source, Some(NameSource::Dataset));
    assert_eq!(i.prefix.unwrap().to_string(), "193.0.0.0/21");
    assert_eq!(i.range, Some([ip("193.0.0.0"), ip("193.0.7.255")]));
    let src = i.sources.iter().find(|s| s.dataset == "asn").unwrap();
    assert_eq!(src.licence.as_deref(), Some("CC BY 4.0"));
    assert!(src.attribution.as_deref().unwrap().contains("db-ip.com"));
    assert!(src.source.contains("asn-ipv4.csv"));

    let a = lookup.asn(15169).unwrap();
    assert!(a.in_dataset);
    assert_eq!(a.as_name.as_deref(), Some("Google LLC"));
    let p: Vec<String> = a.prefixes.iter().map(|p| p.to_string()).collect();
    assert_eq!(p, ["8.8.4.0/24", "8.8.8.0/24", "2001:4860::/32"]);
    assert_eq!(
        (a.ipv4_ranges, a.ipv6_ranges, a.ipv4_addresses),
        (2, 1, 512)
    );
}

#[tokio::test]
async fn special_addresses_are_answered_as_such() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    install_fixture_asn(data.path(), files.path()).await;
    let lookup = Lookup::open(DataDir::new(data.path())).unwrap();
    // The fixture even has a range for 10/8: a private address must still not get an AS.
    let i = lookup.ip(ip("10.1.2.3"), false).await.unwrap();
    assert_eq!(i.asn, None);
    assert_eq!(i.country, None);
    assert_eq!(
        i.note.as_deref(),
        Some(
            "RFC 1918 / private network: not routed on the public Internet, so no AS or country holds it"
        )
    );
    let i = lookup.ip(ip("100.64.1.1"), false).await.unwrap();
    assert!(
        i.note
            .unwrap()
            .starts_with("RFC 6598 / shared address space")
    );
    let i = lookup.ip(ip("fe80::1"), false).await.unwrap();
    assert!(i.note.unwrap().starts_with("RFC 4291 / link-local"));
    let i = lookup.ip(ip("::ffff:192.168.1.1"), false).await.unwrap();
    assert!(i.note.unwrap().starts_with("RFC 1918"));
    let a = lookup.asn(64512).unwrap();
    assert_eq!(a.classification.unwrap().class, "private_use");
}

#[tokio::test]
async fn overrides_replace_names_everywhere_and_persist() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    install_fixture_asn(data.path(), files.path()).await;
    let lookup = Lookup::open(DataDir::new(data.path())).unwrap();
    lookup
        .set_override(15169, "Search giant (peering)")
        .unwrap();
    lookup.set_override(64500, "Lab AS").unwrap();
    let reopened = Lookup::open(DataDir::new(data.path())).unwrap();
    let i = reopened.ip(ip("8.8.8.8"), false).await.unwrap();
    assert_eq!(i.as_name.as_deref(), Some("Search giant (peering)"));
    assert_eq!(i.as_name_source, Some(NameSource::Override));
    assert_eq!(i.dataset_as_name.as_deref(), Some("Google LLC"));
    let a = reopened.asn(15169).unwrap();
    assert_eq!(a.as_name.as_deref(), Some("Search giant (peering)"));
    let a = reopened.asn(64500).unwrap();
    assert_eq!(a.as_name.as_deref(), Some("Lab AS"));
    assert!(!a.in_dataset);
    assert!(reopened.remove_override(15169).unwrap());
    let again = Lookup::open(DataDir::new(data.path())).unwrap();
    let i = again.ip(ip("8.8.8.8"), false).await.unwrap();
    assert_eq!(i.as_name.as_deref(), Some("Google LLC"));
    assert_eq!(again.overrides().list().len(), 1);
}

#[tokio::test]
async fn iptoasn_over_http_records_the_source_date_and_licence() {
    let tsv = "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET - Cloudflare, Inc.\n1.0.1.0\t1.0.3.255\t0\tNone\tNot routed\n2001:200::\t2001:200:ffff:ffff:ffff:ffff:ffff:ffff\t2500\tJP\tWIDE-BB WIDE Project\n";
    let body = gzip(tsv.as_bytes());
    let http = FakeHttp::start(move |path| match path {
        "/data/ip2asn-combined.tsv.gz" => {
            Reply::bytes(body.clone()).header("Last-Modified", "Tue, 03 Nov 2026 10:00:00 GMT")
        }
        _ => Reply::status(404, "{}"),
    })
    .await;
    let data = tempfile::tempdir().unwrap();
    let r = update(
        &DataDir::new(data.path()),
        Dataset::Asn,
        opts(vec![http.url("/data/ip2asn-combined.tsv.gz")]),
    )
    .await
    .unwrap();
    assert_eq!(r.info.format, "iptoasn TSV");
    assert_eq!(r.info.licence.as_deref(), Some("PDDL 1.0"));
    assert_eq!(
        r.info.data_date.unwrap().to_rfc3339(),
        "2026-11-03T10:00:00+00:00"
    );
    assert_eq!(
        r.info.counts["ipv4_ranges"], 1,
        "AS0 'Not routed' rows are dropped"
    );
    let lookup = Lookup::open(DataDir::new(data.path())).unwrap();
    let i = lookup.ip(ip("2001:200::1"), false).await.unwrap();
    assert_eq!(i.asn, Some(2500));
    assert_eq!(i.as_name.as_deref(), Some("WIDE-BB WIDE Project"));
    assert_eq!(lookup.ip(ip("1.0.2.0"), false).await.unwrap().asn, None);
    let leftovers: Vec<_> = std::fs::read_dir(data.path().join("lookup"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[tokio::test]
async fn failed_updates_leave_the_installed_data_alone() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    install_fixture_asn(data.path(), files.path()).await;
    let table = data.path().join("lookup/asn.bin");
    let before = std::fs::read(&table).unwrap();
    let dir = DataDir::new(data.path());

    let http = FakeHttp::start(|path| match path {
        "/big.csv" => Reply::bytes(vec![b'#'; 4096]),
        _ => Reply::status(404, "{}"),
    })
    .await;
    let e = update(&dir, Dataset::Asn, opts(vec![http.url("/gone.csv")]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 404"), "{e}");

    let mut small = opts(vec![http.url("/big.csv")]);
    small.max_bytes = 1024;
    let e = update(&dir, Dataset::Asn, small).await.unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");

    let bad = write(
        files.path(),
        "bad.csv",
        b"1.0.0.0,1.0.0.255,13335,A\n1.0.1.0,1.0.1.300,7,B\n",
    );
    let e = update(&dir, Dataset::Asn, opts(vec![bad]))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("bad.csv, line 2: '1.0.1.300' is not an address"),
        "{e}"
    );

    let e = update(
        &dir,
        Dataset::Asn,
        opts(vec!["/nonexistent/asn.csv".into()]),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/asn.csv"), "{e}");

    assert_eq!(std::fs::read(&table).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(data.path().join("lookup"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[tokio::test]
async fn a_damaged_table_is_reported_not_misread() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    install_fixture_asn(data.path(), files.path()).await;
    let table = data.path().join("lookup/asn.bin");
    let bytes = std::fs::read(&table).unwrap();
    std::fs::write(&table, &bytes[..bytes.len() / 2]).unwrap();
    let lookup = Lookup::open(DataDir::new(data.path())).unwrap();
    let e = lookup.ip(ip("8.8.8.8"), false).await.unwrap_err();
    assert!(matches!(e, Error::Data(_)));
    assert!(e.to_string().contains("damaged"), "{e}");
    assert!(e.to_string().contains("vantage data update asn"), "{e}");
}

#[derive(Serialize)]
struct Flat {
    country_code: &'static str,
}

fn country_mmdb() -> Vec<u8> {
    let mut w = mmdb_writer::Writer::new("test-geo-whois-asn-country");
    for (net, cc) in [
        ("8.8.8.0/24", "US"),
        ("193.0.0.0/21", "NL"),
        ("193.0.8.0/21", "SE"),
        ("2001:67c:2e8::/48", "NL"),
    ] {
        w.insert(
            net.parse::<ipnet::IpNet>().unwrap(),
            &Flat { country_code: cc },
        )
        .unwrap();
    }
    w.to_bytes().unwrap()
}

#[tokio::test]
async fn country_from_an_installed_mmdb_and_the_builtin_fallback() {
    let data = tempfile::tempdir().unwrap();
    let lookup = Lookup::open(DataDir::new(data.path())).unwrap();
    // Nothing installed: the built-in RIR data answer (RIPE NCC's own block is registered in NL).
    let i = lookup.ip(ip("193.0.6.139"), false).await.unwrap();
    assert_eq!(i.country.as_deref(), Some("NL"));
    assert!(i.sources.iter().any(|s| s.source.contains("built-in RIR")));

    let body = gzip(&country_mmdb());
    let http = FakeHttp::start(move |_| Reply::bytes(body.clone())).await;
    let r = update(
        &DataDir::new(data.path()),
        Dataset::Country,
        opts(vec![http.url("/geo-whois-asn-country.mmdb.gz")]),
    )
    .await
    .unwrap();
    assert!(r.info.licence.unwrap().starts_with("CC0 1.0"));
    lookup.reload();
    let cc = |s: &str| {
        let lookup = &lookup;
        let s = s.to_string();
        async move { lookup.ip(ip(&s), false).await.unwrap().country }
    };
    assert_eq!(cc("193.0.7.255").await.as_deref(), Some("NL"));
    assert_eq!(cc("193.0.8.0").await.as_deref(), Some("SE"));
    assert_eq!(cc("193.0.15.255").await.as_deref(), Some("SE"));
    assert_eq!(cc("193.0.16.0").await, None);
    assert_eq!(cc("2001:67c:2e8::1").await.as_deref(), Some("NL"));
    let i = lookup.ip(ip("8.8.8.8"), false).await.unwrap();
    assert!(
        i.sources
            .iter()
            .any(|s| s.dataset == "country" && s.source.contains("geo-whois-asn-country"))
    );

    // A file that is not an MMDB is refused and the installed one stays.
    let files = tempfile::tempdir().unwrap();
    let junk = write(files.path(), "junk.mmdb", b"this is not a database");
    let e = update(
        &DataDir::new(data.path()),
        Dataset::Country,
        opts(vec![junk]),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("not a usable MMDB file"), "{e}");
    lookup.reload();
    assert_eq!(cc("193.0.8.1").await.as_deref(), Some("SE"));
}

#[tokio::test]
async fn oui_update_replaces_only_the_registries_it_brings() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let csv = "Registry,Assignment,Organization Name,Organization Address\nMA-L,001A2B,Renamed Vendor AG,Somewhere 1 Zurich CH 8000\nMA-L,FCFCFC,Brand New Vendor,Nowhere\n";
    let f = write(files.path(), "oui.csv", csv.as_bytes());
    let r = update(&DataDir::new(data.path()), Dataset::Oui, opts(vec![f]))
        .await
        .unwrap();
    assert_eq!(r.info.counts["MA-L"], 2);
    let lookup = Lookup::open(DataDir::new(data.path())).unwrap();
    let m = lookup.oui("fc:fc:fc:00:00:01").unwrap();
    assert_eq!(m.entry.as_ref().unwrap().organization, "Brand New Vendor");
    assert_eq!(m.entry.unwrap().address.as_deref(), Some("Nowhere"));
    assert!(m.source.unwrap().contains("oui.csv"));
    // MA-L came from the file, so the built-in MA-L entries are gone …
    assert!(lookup.oui("00:00:00:00:00:01").unwrap().entry.is_none());
    // … while MA-S still answers from the built-in table.
    let m = lookup.oui("8c:1f:64:af:a0:01").unwrap();
    assert_eq!(m.entry.unwrap().registry.name(), "MA-S");

    let bad = write(files.path(), "notoui.csv", b"hello,world\n1,2\n");
    let e = update(&DataDir::new(data.path()), Dataset::Oui, opts(vec![bad]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not an IEEE CSV file"), "{e}");
}

#[tokio::test]
async fn rdap_bootstrap_update_from_a_base_url() {
    let good = r#"{"version": "1.0", "publication": "2026-11-01T00:00:00Z", "services": [[["com"], ["https://rdap.example.test/"]]]}"#;
    let good_v4 =
        r#"{"version": "1.0", "services": [[["192.0.2.0/24"], ["https://rdap.example.test/"]]]}"#;
    let good_v6 =
        r#"{"version": "1.0", "services": [[["2001:db8::/32"], ["https://rdap.example.test/"]]]}"#;
    let good_asn =
        r#"{"version": "1.0", "services": [[["64496-64511"], ["https://rdap.example.test/"]]]}"#;
    let http = FakeHttp::start(move |path| match path {
        "/rdap/dns.json" => Reply::json(good),
        "/rdap/ipv4.json" => Reply::json(good_v4),
        "/rdap/ipv6.json" => Reply::json(good_v6),
        "/rdap/asn.json" => Reply::json(good_asn),
        "/broken/asn.json" => {
            Reply::json(r#"{"version": "1.0", "services": [[["banana"], ["https://x/"]]]}"#)
        }
        _ => Reply::status(404, "{}"),
    })
    .await;
    let data = tempfile::tempdir().unwrap();
    let dir = DataDir::new(data.path());
    let r = update(&dir, Dataset::Rdap, opts(vec![http.url("/rdap/")]))
        .await
        .unwrap();
    assert_eq!(r.files.len(), 4);
    let lookup = Lookup::open(dir.clone()).unwrap();
    let b = lookup.bootstrap().unwrap();
    assert!(b.sources().iter().all(|s| s.origin.contains("lookup/rdap")));
    let dns = b
        .sources()
        .iter()
        .find(|s| s.kind == vantage_lookup::rdap::BootstrapKind::Dns)
        .unwrap();
    assert_eq!(dns.publication.as_deref(), Some("2026-11-01T00:00:00Z"));

    let e = update(
        &dir,
        Dataset::Rdap,
        opts(vec![http.url("/broken/asn.json")]),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("'banana' is not an AS range"), "{e}");
    let kept = std::fs::read_to_string(data.path().join("lookup/rdap/asn.json")).unwrap();
    assert_eq!(kept, good_asn);
}
