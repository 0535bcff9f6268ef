//! The lookup API in process: a real server over a temporary data directory with fixture
//! tables installed by the real `data update` path, fake WHOIS, RDAP (HTTP) and DNS servers on
//! loopback (the lookup crate's own test servers), and checks of what each fake server was
//! asked. Covers every route, bad input (4xx, nothing stored), the override table shared with
//! the CLI's view of the same data directory, and the rule that WHOIS referrals and RDAP
//! requests never reach non-public addresses unless the configuration allows them.

#[path = "../../lookup/tests/support/mod.rs"]
mod fakes;
mod support;

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use fakes::{FakeDns, FakeHttp, FakeWhois, Reply, WhoisReply};
use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, TestServer};
use vantage_lookup::update::{Dataset, UpdateOptions, update};
use vantage_lookup::{DataDir, Lookup};
use vantage_server::ServerConfig;
use vantage_server::model::Role;

const ASN_V4: &str = "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"
193.0.0.0,193.0.7.255,3333,Reseaux IP Europeens Network Coordination Centre (RIPE NCC)
";
const ASN_V6: &str =
    "2001:67c:2e8::,2001:67c:2e8:ffff:ffff:ffff:ffff:ffff,3333,Reseaux IP Europeens Network Coordination Centre (RIPE NCC)
";

/// Installs the fixture IP → ASN table into `data` through `vantage data update`'s code.
async fn install_asn(data: &Path) {
    let files = tempfile::tempdir().unwrap();
    let v4 = files.path().join("asn-ipv4.csv");
    let v6 = files.path().join("asn-ipv6.csv");
    std::fs::write(&v4, ASN_V4).unwrap();
    std::fs::write(&v6, ASN_V6).unwrap();
    update(
        &DataDir::new(data),
        Dataset::Asn,
        UpdateOptions {
            sources: vec![v4.display().to_string(), v6.display().to_string()],
            ..UpdateOptions::default()
        },
    )
    .await
    .unwrap();
}

/// A fake resolver that knows the PTR of 193.0.6.139 (and NXDOMAIN for everything else).
async fn fake_dns() -> FakeDns {
    let names = HashMap::from([(
        "193.0.6.139".parse::<IpAddr>().unwrap(),
        vec!["www.ripe.net".to_string()],
    )]);
    FakeDns::start(names, Vec::new(), 300, 60).await
}

/// A server whose reverse lookups go to `dns` (never to the system resolver).
async fn server(dns: &FakeDns, f: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let addr = dns.addr;
    TestServer::start_with(move |c| {
        c.lookup.rdns_servers = vec![addr];
        f(c)
    })
    .await
}

fn data_dir(t: &TestServer) -> &Path {
    &t.cfg.data_dir
}

/// Every field of `answer` is documented in the schema `name` of the OpenAPI document, and every
/// field the schema calls required is there.
fn matches_schema(doc: &Value, schema: &Value, answer: &Value, what: &str) {
    let schema = deref(doc, schema);
    let props = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{what}: schema without properties: {schema}"));
    for k in answer.as_object().unwrap().keys() {
        assert!(props.contains_key(k), "{what}: field {k} is not documented");
    }
    for r in schema["required"].as_array().into_iter().flatten() {
        let r = r.as_str().unwrap();
        assert!(
            answer.get(r).is_some(),
            "{what}: required field {r} missing"
        );
    }
}

/// A schema, following a `$ref` into the components.
fn deref<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

/// The 200 schema of `GET path` in the document.
fn ok_schema<'a>(doc: &'a Value, path: &str) -> &'a Value {
    &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
}

#[tokio::test]
async fn lookups_answer_from_the_servers_data_directory() {
    let dns = fake_dns().await;
    let t = server(&dns, |_| {}).await;
    let (_, doc) = t.get("/api/v1/openapi.json").await;

    // No table yet: the answer says so instead of failing.
    let (s, v) = t.get("/api/v1/lookup/ip/193.0.6.139").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["asn"], Value::Null);
    assert!(
        v["note"].as_str().unwrap().contains("data update asn"),
        "{v}"
    );
    // `vantage data update asn` into the server's data directory while it runs: the next
    // lookup reads the new table, no restart.
    install_asn(data_dir(&t)).await;
    let (s, v) = t.get("/api/v1/lookup/ip/193.0.6.139").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["asn"], 3333);
    assert_eq!(
        v["as_name"],
        "Reseaux IP Europeens Network Coordination Centre (RIPE NCC)"
    );
    assert_eq!(v["as_name_source"], "dataset");
    assert_eq!(v["prefix"], "193.0.0.0/21");
    assert_eq!(v["range"], json!(["193.0.0.0", "193.0.7.255"]));
    assert_eq!(v["country"], "NL", "country from the built-in RIR data");
    assert_eq!(v["classification"]["class"], "global");
    assert_eq!(v["rdns"]["names"], json!(["www.ripe.net"]));
    assert_eq!(v["rdns"]["status"], "ok");
    assert!(dns.queries() >= 1);
    assert!(
        v["sources"][0]["source"]
            .as_str()
            .unwrap()
            .contains("asn-ipv4.csv"),
        "{v}"
    );
    matches_schema(
        &doc,
        ok_schema(&doc, "/api/v1/lookup/ip/{ip}"),
        &v,
        "IpInfo",
    );

    // IPv6, the last address of a range, and rDNS switched off.
    let before = dns.queries();
    let (s, v) = t
        .get("/api/v1/lookup/ip/2001:67c:2e8:ffff:ffff:ffff:ffff:ffff?rdns=false")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["asn"], 3333);
    assert!(v.get("rdns").is_none());
    assert_eq!(dns.queries(), before, "rdns=false asks no DNS server");
    // One past the end of a range is not covered.
    let (_, v) = t.get("/api/v1/lookup/ip/1.0.1.0?rdns=false").await;
    assert_eq!(v["asn"], Value::Null);
    // A private address is answered as such.
    let (s, v) = t.get("/api/v1/lookup/ip/10.1.2.3?rdns=false").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["classification"]["class"], "private");
    assert_eq!(v["asn"], Value::Null);
    assert!(v["note"].as_str().unwrap().contains("RFC 1918"), "{v}");

    // AS numbers.
    let (s, v) = t.get("/api/v1/lookup/asn/AS3333").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["in_dataset"], true);
    assert_eq!(v["prefixes"], json!(["193.0.0.0/21", "2001:67c:2e8::/48"]));
    assert_eq!(v["ipv4_addresses"], 2048);
    matches_schema(
        &doc,
        ok_schema(&doc, "/api/v1/lookup/asn/{asn}"),
        &v,
        "AsnInfo",
    );
    let (_, v) = t.get("/api/v1/lookup/asn/64512").await;
    assert_eq!(v["in_dataset"], false);
    assert!(v["classification"].is_object(), "private-use AS: {v}");

    // The calculator.
    let (s, v) = t.get("/api/v1/lookup/ipcalc?cidr=192.0.2.77/26").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["network"], "192.0.2.64/26");
    assert_eq!(v["broadcast"], "192.0.2.127");
    assert_eq!(v["usable"], "62");
    assert_eq!(v["host_bits_set"], true);
    let (_, v) = t.get("/api/v1/lookup/ipcalc?cidr=2001:db8::1/127").await;
    assert_eq!(
        (v["addresses"].as_str(), v["usable"].as_str()),
        (Some("2"), Some("2"))
    );
    let (_, v) = t
        .get("/api/v1/lookup/ipcalc?cidr=10.0.0.0/22&split=24")
        .await;
    assert_eq!(
        v["subnets"],
        json!(["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"])
    );
    let (_, v) = t
        .get("/api/v1/lookup/ipcalc?summarize=10.0.0.0/24,10.0.1.0/24,192.0.2.1")
        .await;
    assert_eq!(v["prefixes"], json!(["10.0.0.0/23", "192.0.2.1/32"]));
    let (_, v) = t
        .get("/api/v1/lookup/ipcalc?cidr=10.1.0.0/16&compare=10.0.0.0/8")
        .await;
    assert_eq!(
        (v["b_contains_a"].as_bool(), v["overlap"].as_bool()),
        (Some(true), Some(true))
    );

    // MAC vendors, built in.
    let (s, v) = t.get("/api/v1/lookup/oui/00-00-0C-12-34-56").await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v["entry"]["organization"]
            .as_str()
            .unwrap()
            .contains("Cisco"),
        "{v}"
    );
    assert_eq!(v["mac"], "00:00:0C:12:34:56");
    matches_schema(
        &doc,
        ok_schema(&doc, "/api/v1/lookup/oui/{mac}"),
        &v,
        "OuiMatch",
    );
    let (_, v) = t.get("/api/v1/lookup/oui/02:42:ac:11:00:02").await;
    assert_eq!(v["entry"], Value::Null);
    assert_eq!(v["locally_administered"], true);
    let (s, v) = t.get("/api/v1/lookup/oui?search=xerox&limit=2").await;
    assert_eq!(s, 200, "{v}");
    assert!(v["total"].as_u64().unwrap() >= 1);
    assert!(v["entries"].as_array().unwrap().len() <= 2);
    matches_schema(&doc, ok_schema(&doc, "/api/v1/lookup/oui"), &v, "OuiSearch");

    // Every calculator answer fits one of the documented shapes.
    let shapes = deref(&doc, ok_schema(&doc, "/api/v1/lookup/ipcalc"));
    let shapes = shapes["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("no oneOf in {shapes}"))
        .clone();
    for q in [
        "cidr=192.0.2.0/24",
        "cidr=192.0.2.0/24&split=26",
        "cidr=192.0.2.0/24&compare=192.0.2.0/25",
        "summarize=192.0.2.0/25,192.0.2.128/25",
    ] {
        let (_, v) = t.get(&format!("/api/v1/lookup/ipcalc?{q}")).await;
        let keys: BTreeSet<&String> = v.as_object().unwrap().keys().collect();
        let fits = shapes.iter().any(|s| {
            let props: BTreeSet<&String> = s["properties"].as_object().unwrap().keys().collect();
            keys == props
        });
        assert!(fits, "{q}: {v} fits no documented shape");
    }
}

/// Method, path, token, body, expected status and error code.
type WriteCase<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    u16,
    &'a str,
);

#[tokio::test]
async fn bad_input_gets_a_4xx_and_stores_nothing() {
    let dns = fake_dns().await;
    let t = server(&dns, |_| {}).await;
    let viewer = t
        .s()
        .create_api_token("viewer", Role::Viewer)
        .await
        .unwrap();
    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "GET",
            "/api/v1/lookup/ipcalc?cidr=10.0.0.300/8",
            400,
            "invalid_cidr",
        ),
        (
            "GET",
            "/api/v1/lookup/ipcalc?cidr=10.0.0.0/33",
            400,
            "invalid_cidr",
        ),
        (
            "GET",
            "/api/v1/lookup/ipcalc?cidr=10.0.0.0/8&split=7",
            400,
            "invalid_cidr",
        ),
        (
            "GET",
            "/api/v1/lookup/ipcalc?cidr=10.0.0.0/8&split=32",
            400,
            "invalid_cidr",
        ),
        (
            "GET",
            "/api/v1/lookup/ipcalc?cidr=10.0.0.0/8&split=abc",
            400,
            "invalid_query",
        ),
        (
            "GET",
            "/api/v1/lookup/ipcalc?cidr=10.0.0.0/8&colour=red",
            400,
            "invalid_query",
        ),
        ("GET", "/api/v1/lookup/ipcalc", 400, "invalid_query"),
        (
            "GET",
            "/api/v1/lookup/ipcalc?summarize=10.0.0.9-10.0.0.1",
            400,
            "invalid_cidr",
        ),
        ("GET", "/api/v1/lookup/oui/zz:zz", 400, "invalid_mac"),
        (
            "GET",
            "/api/v1/lookup/oui/00:11:22:33:44:55:66:77:88:99",
            400,
            "invalid_mac",
        ),
        (
            "GET",
            "/api/v1/lookup/oui?search=%20%20",
            400,
            "invalid_query",
        ),
        (
            "GET",
            "/api/v1/lookup/oui?search=x&limit=0",
            400,
            "invalid_query",
        ),
        ("GET", "/api/v1/lookup/oui", 400, "invalid_query"),
        ("GET", "/api/v1/lookup/ip/192.0.2.256", 400, "invalid_ip"),
        ("GET", "/api/v1/lookup/ip/example.com", 400, "invalid_ip"),
        (
            "GET",
            "/api/v1/lookup/ip/192.0.2.1?rdns=maybe",
            400,
            "invalid_query",
        ),
        ("GET", "/api/v1/lookup/asn/ASX", 400, "invalid_asn"),
        ("GET", "/api/v1/lookup/asn/4294967296", 400, "invalid_asn"),
        ("GET", "/api/v1/lookup/asn/-1", 400, "invalid_asn"),
        (
            "GET",
            "/api/v1/lookup/whois/-i%20origin",
            400,
            "invalid_query",
        ),
        (
            "GET",
            "/api/v1/lookup/whois/bad_label-.com",
            400,
            "invalid_query",
        ),
        ("GET", "/api/v1/lookup/rdap/a%20b", 400, "invalid_query"),
        ("GET", "/api/v1/asn-overrides/ASX", 400, "invalid_asn"),
        ("DELETE", "/api/v1/asn-overrides/ASX", 400, "invalid_asn"),
        ("GET", "/api/v1/asn-overrides/64500", 404, "not_found"),
        ("DELETE", "/api/v1/asn-overrides/64500", 404, "not_found"),
    ];
    for (method, path, status, code) in cases {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (s, v) = t.req(m, path, Some(ADMIN), None).await;
        assert_eq!(s, *status, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], *code, "{method} {path}: {v}");
        assert!(
            !v["error"]["message"].as_str().unwrap().is_empty(),
            "{method} {path}"
        );
    }
    // Writes with bad bodies, bad numbers, bad names, no token or a read-only token.
    let writes: &[WriteCase] = &[
        (
            "PUT",
            "/api/v1/asn-overrides/64500",
            Some(ADMIN),
            Some("{"),
            400,
            "invalid_json",
        ),
        (
            "PUT",
            "/api/v1/asn-overrides/64500",
            Some(ADMIN),
            Some(r#"{"name":"x","colour":1}"#),
            400,
            "invalid_body",
        ),
        (
            "PUT",
            "/api/v1/asn-overrides/64500",
            Some(ADMIN),
            Some(r#"{"name":5}"#),
            400,
            "invalid_body",
        ),
        (
            "PUT",
            "/api/v1/asn-overrides/64500",
            Some(ADMIN),
            Some(r#"{}"#),
            400,
            "invalid_body",
        ),
        (
            "PUT",
            "/api/v1/asn-overrides/64500",
            Some(ADMIN),
            Some(r#"{"name":"   "}"#),
            422,
            "invalid_field",
        ),
        (
            "PUT",
            "/api/v1/asn-overrides/64500",
            Some(ADMIN),
            Some("{\"name\":\"a\\nb\"}"),
            422,
            "invalid_field",
        ),
        (
            "PUT",
            "/api/v1/asn-overrides/AS1.99999",
            Some(ADMIN),
            Some(r#"{"name":"x"}"#),
            400,
            "invalid_asn",
        ),
        (
            "POST",
            "/api/v1/asn-overrides",
            Some(ADMIN),
            Some(r#"{"asn":4294967296,"name":"x"}"#),
            422,
            "invalid_field",
        ),
        (
            "POST",
            "/api/v1/asn-overrides",
            Some(ADMIN),
            Some(r#"{"asn":"ASX","name":"x"}"#),
            422,
            "invalid_field",
        ),
        (
            "POST",
            "/api/v1/asn-overrides",
            Some(ADMIN),
            Some(r#"{"asn":true,"name":"x"}"#),
            400,
            "invalid_body",
        ),
        (
            "POST",
            "/api/v1/asn-overrides",
            Some(ADMIN),
            Some(r#"{"name":"x"}"#),
            400,
            "invalid_body",
        ),
        (
            "POST",
            "/api/v1/asn-overrides",
            None,
            Some(r#"{"asn":64500,"name":"x"}"#),
            401,
            "unauthorized",
        ),
        (
            "POST",
            "/api/v1/asn-overrides",
            Some("vt_wrong"),
            Some(r#"{"asn":64500,"name":"x"}"#),
            401,
            "unauthorized",
        ),
        (
            "POST",
            "/api/v1/asn-overrides",
            Some(viewer.as_str()),
            Some(r#"{"asn":64500,"name":"x"}"#),
            403,
            "forbidden",
        ),
        (
            "PUT",
            "/api/v1/asn-overrides/64500",
            Some(viewer.as_str()),
            Some(r#"{"name":"x"}"#),
            403,
            "forbidden",
        ),
        (
            "GET",
            "/api/v1/lookup/ip/192.0.2.1",
            None,
            None,
            401,
            "unauthorized",
        ),
        (
            "GET",
            "/api/v1/asn-overrides",
            Some("vt_wrong"),
            None,
            401,
            "unauthorized",
        ),
    ];
    for (method, path, token, body, status, code) in writes {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (s, v) = t.req(m, path, *token, *body).await;
        assert_eq!(s, *status, "{method} {path} {body:?}: {v}");
        assert_eq!(v["error"]["code"], *code, "{method} {path} {body:?}: {v}");
    }
    // Nothing was stored: no override, no override file, and a viewer can still read.
    let (s, v) = t
        .req(Method::GET, "/api/v1/asn-overrides", Some(&viewer), None)
        .await;
    assert_eq!((s, v), (200, json!({"items": []})));
    assert!(!DataDir::new(data_dir(&t)).asn_overrides().exists());
    assert_eq!(dns.queries(), 0, "no bad request reached the resolver");
}

#[tokio::test]
async fn overrides_crud_apply_to_lookups_through_the_api_and_the_cli_alike() {
    let dns = fake_dns().await;
    let t = server(&dns, |_| {}).await;
    install_asn(data_dir(&t)).await;
    let ripe = "Reseaux IP Europeens Network Coordination Centre (RIPE NCC)";

    let (s, v) = t
        .req(
            Method::PUT,
            "/api/v1/asn-overrides/AS3333",
            Some(ADMIN),
            Some(r#"{"name":"  RIPE NCC (our peer)  "}"#),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["asn"].as_u64(), v["name"].as_str()),
        (Some(3333), Some("RIPE NCC (our peer)"))
    );
    let (s, v) = t
        .req(
            Method::PUT,
            "/api/v1/asn-overrides/3333",
            Some(ADMIN),
            Some(r#"{"name":"RIPE NCC"}"#),
        )
        .await;
    assert_eq!(s, 200, "a replacement: {v}");
    let (s, v) = t
        .post(
            "/api/v1/asn-overrides",
            &json!({"asn": "AS64500", "name": "Lab"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = t
        .post(
            "/api/v1/asn-overrides",
            &json!({"asn": 13335, "name": "CF"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    let (_, v) = t.get("/api/v1/asn-overrides").await;
    let listed: Vec<(u64, &str)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["asn"].as_u64().unwrap(), o["name"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [(3333, "RIPE NCC"), (13335, "CF"), (64500, "Lab")]);
    let (s, v) = t.get("/api/v1/asn-overrides/AS64500").await;
    assert_eq!((s, v["name"].as_str()), (200, Some("Lab")));

    // Lookups carry the local name, and still show the data set's.
    let (_, v) = t.get("/api/v1/lookup/ip/193.0.6.139?rdns=false").await;
    assert_eq!(v["as_name"], "RIPE NCC");
    assert_eq!(v["as_name_source"], "override");
    assert_eq!(v["dataset_as_name"], ripe);
    let (_, v) = t.get("/api/v1/lookup/asn/3333").await;
    assert_eq!(
        (v["as_name"].as_str(), v["as_name_source"].as_str()),
        (Some("RIPE NCC"), Some("override"))
    );
    let (_, v) = t.get("/api/v1/lookup/asn/64500").await;
    assert_eq!(v["as_name"], "Lab", "an AS the data set does not name");

    // The CLI opens the same data directory and sees the same names…
    let cli = Lookup::open(DataDir::new(data_dir(&t))).unwrap();
    let ip: IpAddr = "1.0.0.1".parse().unwrap();
    assert_eq!(
        cli.ip(ip, false).await.unwrap().as_name.as_deref(),
        Some("CF")
    );
    // …and a name it sets (`vantage asn 13335 --set-name …`) shows in the API at once.
    cli.set_override(13335, "Cloudflare (CDN)").unwrap();
    let (_, v) = t.get("/api/v1/lookup/ip/1.0.0.1?rdns=false").await;
    assert_eq!(v["as_name"], "Cloudflare (CDN)");
    // An API write starts from what the CLI wrote: it is not lost.
    let (s, _) = t
        .post(
            "/api/v1/asn-overrides",
            &json!({"asn": 64501, "name": "Lab 2"}),
        )
        .await;
    assert_eq!(s, 201);
    let reread = Lookup::open(DataDir::new(data_dir(&t))).unwrap();
    let names: Vec<String> = reread
        .overrides()
        .list()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["RIPE NCC", "Cloudflare (CDN)", "Lab", "Lab 2"]);

    // Delete: the data set's name is back; a second delete is a 404.
    let (s, _) = t
        .req(
            Method::DELETE,
            "/api/v1/asn-overrides/AS3333",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, v) = t
        .req(
            Method::DELETE,
            "/api/v1/asn-overrides/AS3333",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(s, 404, "{v}");
    let (_, v) = t.get("/api/v1/lookup/ip/193.0.6.139?rdns=false").await;
    assert_eq!(v["as_name"], ripe);
    assert_eq!(v["as_name_source"], "dataset");
    assert!(v.get("dataset_as_name").is_none());
    let (s, _) = t.get("/api/v1/asn-overrides/3333").await;
    assert_eq!(s, 404);

    // The table survives a restart (it is the data directory's file).
    let mut t = t;
    t.restart().await;
    let (_, v) = t.get("/api/v1/asn-overrides").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 3);
}

const IANA_COM: &str = "refer:        whois.registry.test

domain:       COM
organisation: VeriSign Global Registry Services
whois:        whois.registry.test
";

const REGISTRY_EXAMPLE: &str = "   Domain Name: EXAMPLE.COM
   Registry Domain ID: 2336799_DOMAIN_COM-VRSN
   Registrar: Example Registrar, Inc.
   Creation Date: 1995-08-14T04:00:00Z
   Name Server: A.IANA-SERVERS.NET
";

const RIPE_193: &str = "inetnum:        193.0.0.0 - 193.0.7.255
netname:        RIPE-NCC
country:        NL
org-name:       Reseaux IP Europeens Network Coordination Centre (RIPE NCC)
source:         RIPE
";

#[tokio::test]
async fn whois_starts_at_the_configured_server_and_follows_referrals() {
    let dns = fake_dns().await;
    let iana = FakeWhois::start(|_| WhoisReply::Text(IANA_COM.into())).await;
    let registry = FakeWhois::start(|_| WhoisReply::Text(REGISTRY_EXAMPLE.into())).await;
    let (ia, ra) = (iana.addr, registry.addr);
    // The relays stand for the public servers; nothing leaves loopback.
    let t = server(&dns, move |c| {
        c.lookup.whois_relays.insert("whois.iana.org".into(), ia);
        c.lookup
            .whois_relays
            .insert("whois.registry.test".into(), ra);
    })
    .await;
    let (s, v) = t.get("/api/v1/lookup/whois/Example.COM").await;
    assert_eq!(s, 200, "{v}");
    let servers: Vec<&str> = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["server"].as_str().unwrap())
        .collect();
    assert_eq!(servers, ["whois.iana.org", "whois.registry.test"]);
    assert_eq!(v["found"], true);
    assert_eq!(v["summary"]["registrar"], "Example Registrar, Inc.");
    assert_eq!(v["summary"]["name_servers"], json!(["a.iana-servers.net"]));
    assert_eq!(iana.queries(), ["example.com"]);
    assert_eq!(registry.queries(), ["example.com"]);
    let (_, doc) = t.get("/api/v1/openapi.json").await;
    matches_schema(
        &doc,
        ok_schema(&doc, "/api/v1/lookup/whois/{query}"),
        &v,
        "WhoisAnswer",
    );

    // A prefix travels in the path with its '/' written %2F, as the document says.
    let (s, v) = t.get("/api/v1/lookup/whois/193.0.0.0%2F21").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["query"]["kind"], "network");
    assert_eq!(iana.queries(), ["example.com", "193.0.0.0/21"]);

    // A request cannot pick the server: there is no such parameter.
    let (s, v) = t
        .get("/api/v1/lookup/whois/example.com?server=10.0.0.1")
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_query")),
        "{v}"
    );
    let (s, _) = t
        .get("/api/v1/lookup/rdap/example.com?server=10.0.0.1")
        .await;
    assert_eq!(s, 400);
    assert_eq!(iana.queries().len(), 2);
}

#[tokio::test]
async fn whois_referrals_into_non_public_addresses_are_refused_unless_allowed() {
    let dns = fake_dns().await;
    let inside = FakeWhois::start(|_| WhoisReply::Text(RIPE_193.into())).await;
    let refer = format!(
        "refer: {}\n\ninetnum: 193.0.0.0 - 193.255.255.255\n",
        inside.addr
    );
    let iana = FakeWhois::start(move |_| WhoisReply::Text(refer.clone())).await;
    let ia = iana.addr;
    let t = server(&dns, move |c| {
        c.lookup.whois_relays.insert("whois.iana.org".into(), ia);
    })
    .await;
    let (s, v) = t.get("/api/v1/lookup/whois/193.0.6.139").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["hops"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["found"], false);
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("only contact public addresses"), "{e}");
    assert!(
        inside.queries().is_empty(),
        "the loopback server was contacted"
    );

    // The same referral is followed where the configuration allows the network.
    let ia = iana.addr;
    let t2 = server(&dns, move |c| {
        c.lookup.whois_relays.insert("whois.iana.org".into(), ia);
        c.lookup.allowed_networks = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let (s, v) = t2.get("/api/v1/lookup/whois/193.0.6.139").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["found"], true, "{v}");
    assert_eq!(v["summary"]["netname"], "RIPE-NCC");
    assert_eq!(inside.queries(), ["193.0.6.139"]);
}

const NETWORK: &str = r#"{
  "objectClassName": "ip network", "handle": "193.0.0.0 - 193.0.7.255",
  "startAddress": "193.0.0.0", "endAddress": "193.0.7.255", "ipVersion": "v4",
  "name": "RIPE-NCC", "type": "ASSIGNED PA", "country": "NL",
  "cidr0_cidrs": [{"v4prefix": "193.0.0.0", "length": 21}],
  "port43": "whois.ripe.net"
}"#;

/// Bootstrap files in the server's data directory that send every query to `base`.
fn write_bootstrap(data: &Path, base: &str) {
    let dir = DataDir::new(data).rdap_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let file = |entries: &str| {
        format!(
            r#"{{"version": "1.0", "publication": "2026-01-01T00:00:00Z", "services": [[[{entries}], ["{base}"]]]}}"#
        )
    };
    for (name, entries) in [
        ("dns.json", r#""com""#),
        ("ipv4.json", r#""193.0.0.0/8""#),
        ("ipv6.json", r#""2001:600::/23""#),
        ("asn.json", r#""3333""#),
    ] {
        std::fs::write(dir.join(name), file(entries)).unwrap();
    }
}

/// A listener on another loopback address that only counts connections.
async fn counting_listener(ip: &str) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = l.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    (addr, n)
}

#[tokio::test]
async fn rdap_follows_the_bootstrap_files_and_never_reaches_private_addresses() {
    let dns = fake_dns().await;
    let (other, other_hits) = counting_listener("127.0.0.2").await;
    let redirect = format!("http://{other}/ip/193.0.6.139");
    let http = FakeHttp::start(move |path| match path {
        "/rdap/ip/193.0.6.139" => Reply::json(NETWORK),
        "/rdap/ip/193.0.6.1" => Reply::redirect(&redirect),
        _ => Reply::status(404, r#"{"errorCode": 404, "title": "Not Found"}"#),
    })
    .await;

    // Default configuration: the registry the bootstrap names is on loopback, so it is refused
    // before any connection, whether named by address or by a name resolving there.
    let t = server(&dns, |_| {}).await;
    write_bootstrap(data_dir(&t), &http.url("/rdap/"));
    let (s, v) = t.get("/api/v1/lookup/rdap/193.0.6.139").await;
    assert_eq!(s, 502, "{v}");
    assert_eq!(v["error"]["code"], "upstream_failed");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("only contact public addresses"), "{m}");
    write_bootstrap(
        data_dir(&t),
        // (another length than the first file, so the change shows even within one clock tick)
        &format!("http://localhost:{}/rdap", http.addr.port()),
    );
    let (s, v) = t.get("/api/v1/lookup/rdap/193.0.6.139").await;
    assert_eq!(s, 502, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only contact public addresses"),
        "{v}"
    );
    assert!(
        http.hits().is_empty(),
        "the loopback registry was contacted"
    );
    // Private addresses are answered without asking anyone.
    let (s, v) = t.get("/api/v1/lookup/rdap/10.1.2.3").await;
    assert_eq!(s, 404, "{v}");

    // Allowing 127.0.0.1 only: the registry answers, but its redirect to 127.0.0.2 is refused.
    let t = server(&dns, |c| {
        c.lookup.allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    write_bootstrap(data_dir(&t), &http.url("/rdap/"));
    let (s, v) = t.get("/api/v1/lookup/rdap/193.0.6.139").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["summary"]["name"], "RIPE-NCC");
    assert_eq!(v["summary"]["cidr"], json!(["193.0.0.0/21"]));
    assert!(v["url"].as_str().unwrap().ends_with("/rdap/ip/193.0.6.139"));
    let (_, doc) = t.get("/api/v1/openapi.json").await;
    matches_schema(
        &doc,
        ok_schema(&doc, "/api/v1/lookup/rdap/{query}"),
        &v,
        "RdapAnswer",
    );
    let (s, v) = t.get("/api/v1/lookup/rdap/193.0.6.1").await;
    assert_eq!(s, 502, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only contact public addresses"),
        "{v}"
    );
    assert_eq!(
        other_hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    // A registry without the record: 404.
    let (s, v) = t.get("/api/v1/lookup/rdap/193.0.0.7").await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(
        http.hits(),
        [
            "/rdap/ip/193.0.6.139",
            "/rdap/ip/193.0.6.1",
            "/rdap/ip/193.0.0.7"
        ]
    );
}
