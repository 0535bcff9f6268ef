//! The lookup subcommands as a user runs them: the real `vantage` binary against fake WHOIS,
//! RDAP/HTTP and DNS servers on loopback and a temporary data directory. Checks what scripts
//! rely on — exit codes (0 found, 1 nothing found or a server failed, 2 bad input), JSON on
//! stdout, sentences on stderr — and that every command's help has examples.

#[path = "../../lookup/tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::{FakeDns, FakeHttp, FakeWhois, Reply, WhoisReply};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

async fn vantage(data: &Path, args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_vantage"))
        .args(args)
        .env("VANTAGE_DATA_DIR", data)
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("vantage finished within 60 s")
        .expect("vantage runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ipcalc_exit_codes_and_json() {
    let d = tempfile::tempdir().unwrap();
    let r = vantage(d.path(), &["ipcalc", "192.0.2.130/25"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("Network:        192.0.2.128/25"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("128 (126 usable)"));
    let r = vantage(
        d.path(),
        &["ipcalc", "--json", "2001:db8::/127", "192.0.2.0/31"],
    )
    .await;
    let j = r.json();
    assert_eq!(j.len(), 2);
    assert_eq!(j[0]["usable"], "2");
    assert_eq!(j[1]["first_usable"], "192.0.2.0");
    let r = vantage(d.path(), &["ipcalc", "10.0.0.0/33"]).await;
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.trim(),
        "vantage: '10.0.0.0/33': prefix length /33 is too long for IPv4 (at most /32)"
    );
    let r = vantage(d.path(), &["ipcalc", "10.0.0.0/8", "--split", "32"]).await;
    assert_eq!(r.code, 2);
    assert!(r.stdout.is_empty());
    let r = vantage(
        d.path(),
        &["ipcalc", "10.0.0.0/8", "--contains", "10.9.0.0/16"],
    )
    .await;
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "10.0.0.0/8 contains 10.9.0.0/16")
    );
    let r = vantage(
        d.path(),
        &["ipcalc", "10.0.0.0/8", "--overlaps", "11.0.0.0/8"],
    )
    .await;
    assert_eq!(r.code, 1);
    let r = vantage(
        d.path(),
        &["ipcalc", "--summarize", "192.0.2.0/25", "192.0.2.128/25"],
    )
    .await;
    assert_eq!((r.code, r.stdout.trim()), (0, "192.0.2.0/24"));
}

#[tokio::test(flavor = "multi_thread")]
async fn oui_exit_codes() {
    let d = tempfile::tempdir().unwrap();
    let r = vantage(d.path(), &["oui", "00-00-0c-12-34-56"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Cisco"), "{}", r.stdout);
    let r = vantage(d.path(), &["oui", "--json", "02:42:ac:11:00:02"]).await;
    assert_eq!(r.code, 1, "a locally administered address has no vendor");
    assert_eq!(r.json()[0]["locally_administered"], true);
    let r = vantage(d.path(), &["oui", "zz:zz"]).await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not a MAC address"), "{}", r.stderr);
    let r = vantage(d.path(), &["oui", "--search", "no vendor is called this"]).await;
    assert_eq!(r.code, 1);
    let r = vantage(d.path(), &["oui", "--search", "  "]).await;
    assert_eq!(r.code, 2);
    let r = vantage(d.path(), &["oui", "--search", "XEROX", "--json"]).await;
    assert_eq!(r.code, 0);
    assert!(r.json()[0]["total"].as_u64().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn data_update_then_asn_lookups_and_overrides() {
    let d = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let csv = files.path().join("asn-ipv4.csv");
    std::fs::write(
        &csv,
        "8.8.8.0,8.8.8.255,15169,Google LLC\n193.0.0.0,193.0.7.255,3333,RIPE NCC\n",
    )
    .unwrap();
    let data = d.path().to_str().unwrap();
    let r = vantage(
        d.path(),
        &[
            "data",
            "update",
            "asn",
            "--from",
            csv.to_str().unwrap(),
            "--data-dir",
            data,
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Installed asn"), "{}", r.stdout);

    let r = vantage(d.path(), &["asn", "--json", "8.8.8.8", "AS3333"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j[0]["asn"], 15169);
    assert_eq!(j[0]["prefix"], "8.8.8.0/24");
    assert_eq!(j[1]["prefixes"][0], "193.0.0.0/21");

    let r = vantage(d.path(), &["asn", "10.0.0.1"]).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("RFC 1918 / private network"),
        "{}",
        r.stdout
    );
    let r = vantage(d.path(), &["asn", "banana"]).await;
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("neither an IP address nor an AS number"));

    let r = vantage(d.path(), &["asn", "AS15169", "--set-name", "Our peer"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = vantage(d.path(), &["asn", "--json", "8.8.8.8"]).await;
    let j = r.json();
    assert_eq!(j[0]["as_name"], "Our peer");
    assert_eq!(j[0]["as_name_source"], "override");
    assert_eq!(j[0]["dataset_as_name"], "Google LLC");
    let r = vantage(d.path(), &["asn", "--list-overrides"]).await;
    assert!(r.stdout.contains("AS15169") && r.stdout.contains("Our peer"));
    let r = vantage(d.path(), &["asn", "AS15169", "--set-name", "bad\u{7}name"]).await;
    assert_eq!(r.code, 2);
    let r = vantage(d.path(), &["asn", "AS15169", "--unset-name"]).await;
    assert_eq!(r.code, 0);
    let r = vantage(d.path(), &["asn", "AS15169", "--unset-name"]).await;
    assert_eq!(r.code, 1, "nothing left to remove");

    let r = vantage(d.path(), &["data", "status", "--json"]).await;
    let j = r.json();
    let asn = j.iter().find(|s| s["dataset"] == "asn").unwrap();
    assert_eq!(asn["installed"], true);
    assert_eq!(asn["info"]["counts"]["ipv4_ranges"], 2);

    let r = vantage(
        d.path(),
        &["data", "update", "asn", "--from", "/nonexistent/file.csv"],
    )
    .await;
    assert_eq!(r.code, 2);
    let r = vantage(d.path(), &["data", "update", "geo"]).await;
    assert_eq!(r.code, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn whois_against_a_loopback_server() {
    let d = tempfile::tempdir().unwrap();
    let server = FakeWhois::start(|q| {
        if q == "nothing.test" {
            WhoisReply::Text("% No entries found for the selected source(s).\n".into())
        } else {
            WhoisReply::Text(
                "inetnum: 192.0.2.0 - 192.0.2.255\nnetname: TEST-NET-1\ncountry: ZZ\n".into(),
            )
        }
    })
    .await;
    let silent = FakeWhois::start(|_| WhoisReply::Silent).await;
    let srv = server.addr.to_string();
    let r = vantage(d.path(), &["whois", "--server", &srv, "192.0.2.1"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Net name:"), "{}", r.stdout);
    assert!(r.stdout.contains("TEST-NET-1"));
    assert!(
        r.stdout.contains(&format!("--- {srv} ---")),
        "raw answer follows: {}",
        r.stdout
    );
    let r = vantage(
        d.path(),
        &["whois", "--server", &srv, "--json", "192.0.2.1"],
    )
    .await;
    assert_eq!(r.json()[0]["summary"]["netname"], "TEST-NET-1");
    let r = vantage(d.path(), &["whois", "--server", &srv, "nothing.test"]).await;
    assert_eq!(r.code, 1);
    let r = vantage(d.path(), &["whois", "--server", &srv, "-B"]).await;
    assert_eq!(r.code, 2);
    let r = vantage(
        d.path(),
        &[
            "whois",
            "--server",
            &silent.addr.to_string(),
            "--timeout",
            "0.3",
            "example.com",
        ],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("did not answer within 0.3 s"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rdap_through_a_bootstrap_file_in_the_data_dir() {
    let d = tempfile::tempdir().unwrap();
    let http = FakeHttp::start(|path| match path {
        "/rdap/autnum/64500" => Reply::json(r#"{"objectClassName": "autnum", "handle": "AS64500", "startAutnum": 64500, "endAutnum": 64500, "name": "DOC-AS"}"#),
        _ => Reply::status(404, r#"{"errorCode": 404}"#),
    })
    .await;
    let rdap = d.path().join("lookup/rdap");
    std::fs::create_dir_all(&rdap).unwrap();
    std::fs::write(
        rdap.join("asn.json"),
        format!(
            r#"{{"version": "1.0", "services": [[["64496-64511"], ["{}"]]]}}"#,
            http.url("/rdap/")
        ),
    )
    .unwrap();
    let r = vantage(d.path(), &["rdap", "AS64500"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("DOC-AS"), "{}", r.stdout);
    let r = vantage(d.path(), &["rdap", "--raw", "AS64500"]).await;
    let raw: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(raw["handle"], "AS64500");
    let r = vantage(d.path(), &["rdap", "AS64501"]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("HTTP 404"), "{}", r.stderr);
    let r = vantage(d.path(), &["rdap", "192.168.1.1"]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("RFC 1918"));
    let r = vantage(d.path(), &["rdap", "not/valid"]).await;
    assert_eq!(r.code, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn rdns_against_a_loopback_dns_server() {
    let d = tempfile::tempdir().unwrap();
    let names = HashMap::from([
        (
            "192.0.2.1".parse::<IpAddr>().unwrap(),
            vec!["one.example.test".to_string()],
        ),
        (
            "192.0.2.2".parse::<IpAddr>().unwrap(),
            vec!["two.example.test".to_string()],
        ),
    ]);
    let dns = FakeDns::start(names, vec![], 60, 60).await;
    let srv = dns.addr.to_string();
    let r = vantage(
        d.path(),
        &["rdns", "--server", &srv, "192.0.2.1", "192.0.2.2"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("one.example.test") && r.stdout.contains("two.example.test"));
    let r = vantage(
        d.path(),
        &["rdns", "--server", &srv, "--json", "192.0.2.0/30"],
    )
    .await;
    assert_eq!(r.code, 1, "two of the four addresses have no name");
    let j = r.json();
    assert_eq!(j.len(), 4);
    assert_eq!(j[1]["names"][0], "one.example.test");
    assert_eq!(j[0]["status"], "no_name");
    let r = vantage(d.path(), &["rdns", "--server", &srv, "example.com"]).await;
    assert_eq!(r.code, 2);
    let r = vantage(d.path(), &["rdns", "--server", &srv, "10.0.0.0/8"]).await;
    assert_eq!(r.code, 2, "refuses to expand 16 million addresses");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_lookup_command_has_help_with_examples() {
    let d = tempfile::tempdir().unwrap();
    for cmd in [
        vec!["ipcalc", "--help"],
        vec!["oui", "--help"],
        vec!["asn", "--help"],
        vec!["whois", "--help"],
        vec!["rdap", "--help"],
        vec!["rdns", "--help"],
        vec!["data", "update", "--help"],
    ] {
        let r = vantage(d.path(), &cmd).await;
        assert_eq!(r.code, 0, "{cmd:?}");
        assert!(
            r.stdout.contains("Examples:"),
            "{cmd:?} help lacks examples"
        );
        assert!(r.stdout.contains("--json"), "{cmd:?} has no --json");
    }
}

/// `vantage … | head`: the command ends when its reader does, killed by SIGPIPE like other
/// command-line tools, without a panic or an error on stderr.
#[test]
fn output_into_a_closed_pipe_ends_the_command_quietly() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};

    // 65,536 lines: far more than a pipe holds, so the writer meets the closed end.
    let mut child = Command::new(env!("CARGO_BIN_EXE_vantage"))
        .args(["ipcalc", "10.0.0.0/8", "--split", "24"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vantage runs");
    let mut first = [0u8; 16];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("some output");
    // The read end is closed here, as `head` does after its lines.
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = child.wait().expect("exit status");
    assert_eq!(
        status.signal(),
        Some(nix::sys::signal::Signal::SIGPIPE as i32),
        "status {status:?}, stderr {stderr}"
    );
    assert!(stderr.is_empty(), "nothing on stderr, got {stderr}");
}
