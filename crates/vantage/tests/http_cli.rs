//! `vantage http` end to end: the binary against HTTP servers the test starts on loopback.
//! Exit codes (0 answered, 1 error status or failure, 2 bad input or policy), the report and JSON.

mod common;

use common::vantage;
use vantage_testnet::http_server::{HttpServer, TestCa, Validity, curl_phases};
use vantage_testnet::stats::quantile;

#[tokio::test]
async fn a_tls_request_prints_status_phases_and_the_chain() {
    let ca = TestCa::new();
    let cert = ca.leaf(&["localhost", "127.0.0.1"], Validity::Current);
    let srv = HttpServer::tls(false, &cert).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cafile = dir.path().join("ca.pem");
    std::fs::write(&cafile, ca.pem()).unwrap();
    let url = format!("https://{}/", srv.addr());
    let r = vantage(&[
        "http",
        "--allow-private",
        "--http2",
        "--cacert",
        cafile.to_str().unwrap(),
        &url,
    ])
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = &r.stdout;
    assert!(out.contains(&format!("{url} ({})", srv.addr())), "{out}");
    assert!(out.contains("HTTP/2 200"), "{out}");
    assert!(out.contains("content-type: text/plain"), "{out}");
    let header: Vec<&str> = out
        .lines()
        .find(|l| l.contains("CONNECT"))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["DNS", "CONNECT", "TLS", "TTFB", "DOWNLOAD", "TOTAL", "ms"],
        "{out}"
    );
    assert!(out.contains("TLS: TLSv1.3 TLS13_"), "{out}");
    assert!(out.contains("ALPN h2; certificate verified"), "{out}");
    assert!(out.contains("  0 subject CN=localhost"), "{out}");
    assert!(out.contains("    names   localhost, 127.0.0.1"), "{out}");
    assert!(out.contains("  1 subject CN=Vantage Test CA"), "{out}");
}

#[tokio::test]
async fn an_error_status_exits_1_with_the_sentence() {
    let srv = HttpServer::plain(false).await.unwrap();
    let url = format!("http://{}/status/503", srv.addr());
    let r = vantage(&["http", "--allow-private", &url]).await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("HTTP/1.1 503"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains(&format!("{url} answered 503 Service Unavailable")),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn followed_redirects_are_listed_and_json_carries_them() {
    let srv = HttpServer::plain(false).await.unwrap();
    let url = format!("http://{}/redirect/1", srv.addr());
    let r = vantage(&["http", "--allow-private", "-L", &url]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("Redirects followed:"), "{}", r.stdout);
    assert!(r.stdout.contains("/redirect/0"), "{}", r.stdout);
    let r = vantage(&["http", "--allow-private", "--follow", "--json", &url]).await;
    assert_eq!(r.code, 0);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["type"], "http");
    assert_eq!(v["outcome"], "ok");
    assert_eq!(v["detail"]["status"], 200);
    assert_eq!(v["detail"]["redirects"].as_array().unwrap().len(), 2);
    assert!(v["detail"]["phases"]["ttfb_ms"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn loopback_is_refused_without_allow_private() {
    let srv = HttpServer::plain(false).await.unwrap();
    for url in [
        format!("http://{}/", srv.addr()),
        format!("http://localhost:{}/", srv.addr().port()),
    ] {
        let r = vantage(&["http", &url]).await;
        assert_eq!(r.code, 2, "{url}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("is a loopback address"), "{}", r.stderr);
        assert!(r.stderr.contains("--allow-private"), "{}", r.stderr);
    }
    assert!(srv.seen().is_empty());
}

#[tokio::test]
async fn insecure_reports_the_failed_verification() {
    let ca = TestCa::new();
    let cert = ca.leaf(&["127.0.0.1"], Validity::Expired);
    let srv = HttpServer::tls(false, &cert).await.unwrap();
    let url = format!("https://{}/", srv.addr());
    let r = vantage(&["http", "--allow-private", &url]).await;
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("TLS certificate verification failed"),
        "{}",
        r.stderr
    );
    let r = vantage(&["http", "--allow-private", "-k", &url]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("certificate NOT verified: "),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn bad_input_exits_2_with_a_sentence() {
    let cases: [(&[&str], &str); 8] = [
        (&["http", "http://exa mple.com/"], "invalid URL:"),
        (
            &["http", "ftp://example.com/"],
            "is not an http:// or https:// URL",
        ),
        (&["http", "http://[::1/"], "is not a valid URL"),
        (
            &["http", "-H", "NoColon", "https://example.com/"],
            "invalid -H/--header: 'NoColon' has no colon",
        ),
        (
            &["http", "-H", "Bad Name: x", "https://example.com/"],
            "invalid -H/--header: 'Bad Name' is not a valid header name",
        ),
        (
            &["http", "-X", "POST", "https://example.com/"],
            "invalid -X/--request: 'POST' is not supported",
        ),
        (
            &[
                "http",
                "--connect-to",
                "192.0.2.1:0",
                "https://example.com/",
            ],
            "invalid --connect-to:",
        ),
        (
            &[
                "http",
                "--cacert",
                "/nonexistent/ca.pem",
                "https://example.com/",
            ],
            "cannot read --cacert /nonexistent/ca.pem",
        ),
    ];
    for (args, want) in cases {
        let r = vantage(args).await;
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_a_fresh_process_is_not_charged_for_crypto_start_up() {
    // The first TLS handshake of a process used to include the crypto library's one-time set-up
    // (about 30 ms in a debug build). The CLI is one process per measurement, so its TLS phase
    // must stay close to curl's on the same server: medians of three runs, within 10 ms.
    let Some(_) = vantage_testnet::need_binary(
        "exclusive_a_fresh_process_is_not_charged_for_crypto_start_up",
        "curl",
    ) else {
        return;
    };
    let ca = TestCa::new();
    let cert = ca.leaf(&["127.0.0.1"], Validity::Current);
    let srv = HttpServer::tls(false, &cert).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cafile = dir.path().join("ca.pem");
    std::fs::write(&cafile, ca.pem()).unwrap();
    let url = format!("https://{}/", srv.addr());
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let r = vantage(&[
            "http",
            "--json",
            "--allow-private",
            "--cacert",
            cafile.to_str().unwrap(),
            &url,
        ])
        .await;
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
        ours.push(v["detail"]["phases"]["tls_ms"].as_f64().unwrap());
        theirs.push(curl_phases(&url, Some(&cafile)).await.tls_ms);
    }
    let (ours, theirs) = (quantile(&ours, 0.5), quantile(&theirs, 0.5));
    println!(
        "TLS handshake, median of 3 fresh processes: vantage {ours:.2} ms, curl {theirs:.2} ms"
    );
    assert!(
        ours < theirs + 10.0,
        "vantage {ours:.2} ms, curl {theirs:.2} ms"
    );
}
