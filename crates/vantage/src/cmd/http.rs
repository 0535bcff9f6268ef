//! `vantage http`: curl-like flags mapped onto an `HttpSpec`; the report shows the status line and
//! headers, a phase table like `curl -w`, the redirect hops, and the TLS session with its
//! certificate chain.
//!
//! Exit codes follow the other probes: 0 the server answered (1xx–3xx), 1 it did not or answered
//! 4xx/5xx, 2 bad input, an unknown host, or a destination the policy refuses.

use std::collections::BTreeMap;

use vantage_proto::{
    Detail, HttpDetail, HttpMethod, HttpPhases, HttpSpec, MeasurementResult, MeasurementSpec,
};

use super::{print_errors, run_single};
use crate::cli::HttpArgs;
use crate::output::{self, ms};

pub async fn run(a: HttpArgs) -> u8 {
    let spec = match build_spec(&a) {
        Ok(s) => s,
        Err(e) => return output::usage_error(e),
    };
    run_single(
        MeasurementSpec::Http(spec),
        a.json,
        &a.remote,
        print_human,
        output::exit_code,
    )
    .await
}

fn build_spec(a: &HttpArgs) -> Result<HttpSpec, String> {
    let mut spec = HttpSpec::new(a.url.clone());
    spec.method = match (a.head, a.method.to_ascii_uppercase().as_str()) {
        (true, "GET" | "HEAD") | (false, "HEAD") => HttpMethod::Head,
        (false, "GET") => HttpMethod::Get,
        (_, other) => {
            return Err(format!(
                "invalid -X/--request: '{other}' is not supported; use GET or HEAD"
            ));
        }
    };
    spec.connect_to = a.connect_to.clone();
    spec.headers = parse_headers(&a.headers)?;
    spec.http2 = a.http2;
    spec.follow_redirects = a.follow;
    spec.max_redirects = a.max_redirects;
    spec.body = a.body;
    spec.body_limit = a.max_body;
    spec.insecure = a.insecure;
    spec.allow_private = a.allow_private;
    spec.timeout = a.timeout;
    spec.family = a.family.family();
    if let Some(path) = &a.cacert {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --cacert {}: {e}", path.display()))?;
        spec.ca_cert = Some(pem);
    }
    Ok(spec)
}

/// `Name: value` pairs; a later header of the same name replaces an earlier one.
fn parse_headers(raw: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for h in raw {
        let Some((name, value)) = h.split_once(':') else {
            return Err(format!(
                "invalid -H/--header: '{h}' has no colon; write it as 'Name: value'"
            ));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!(
                "invalid -H/--header: '{h}' has no name before the colon"
            ));
        }
        out.insert(name.to_string(), value.trim().to_string());
    }
    Ok(out)
}

fn opt_ms(v: Option<f64>) -> String {
    v.map(ms).unwrap_or_else(|| "-".into())
}

fn phase_row(p: &HttpPhases) -> Vec<String> {
    vec![
        opt_ms(p.dns_ms),
        opt_ms(p.connect_ms),
        opt_ms(p.tls_ms),
        opt_ms(p.ttfb_ms),
        opt_ms(p.download_ms),
        ms(p.total_ms),
    ]
}

fn print_human(r: &MeasurementResult) {
    let Some(Detail::Http(d)) = &r.detail else {
        print_errors(std::slice::from_ref(r));
        return;
    };
    if !d.redirects.is_empty() {
        println!("Redirects followed:");
        let mut t = output::table(
            &[
                "STATUS", "URL", "LOCATION", "DNS", "CONNECT", "TLS", "TTFB", "TOTAL ms",
            ],
            3,
        );
        for h in &d.redirects {
            let p = phase_row(&h.phases);
            t.add_row(vec![
                h.status.to_string(),
                h.url.clone(),
                h.location.clone().unwrap_or_default(),
                p[0].clone(),
                p[1].clone(),
                p[2].clone(),
                p[3].clone(),
                p[5].clone(),
            ]);
        }
        output::print_table(&t);
        println!();
    }
    print_response(d);
    let mut t = output::table(
        &["DNS", "CONNECT", "TLS", "TTFB", "DOWNLOAD", "TOTAL ms"],
        0,
    );
    t.add_row(phase_row(&d.phases));
    output::print_table(&t);
    if d.body_bytes > 0 || d.phases.download_ms.is_some() {
        let rate = d
            .throughput_bps
            .map(|b| format!(", {:.1} MB/s", b / 1e6))
            .unwrap_or_default();
        let cut = if d.body_truncated {
            " (stopped at the --max-body limit)"
        } else {
            ""
        };
        println!("body: {} bytes{rate}{cut}", d.body_bytes);
    }
    if let Some(tls) = &d.tls {
        println!();
        let verdict = match (&tls.verify_error, tls.verified) {
            (_, true) => "certificate verified".to_string(),
            (Some(e), false) => format!("certificate NOT verified: {e}"),
            (None, false) => "certificate NOT verified".to_string(),
        };
        let alpn = tls
            .alpn
            .as_deref()
            .map(|a| format!(", ALPN {a}"))
            .unwrap_or_default();
        println!("TLS: {} {}{alpn}; {verdict}", tls.version, tls.cipher);
        for (i, c) in tls.chain.iter().enumerate() {
            println!("  {i} subject {}", c.subject);
            println!("    issuer  {}", c.issuer);
            if !c.sans.is_empty() {
                println!("    names   {}", c.sans.join(", "));
            }
            println!(
                "    valid   {} to {} ({} days left), serial {}",
                c.not_before, c.not_after, c.days_left, c.serial
            );
        }
    }
    for n in &r.quality.notes {
        println!("note: {n}");
    }
    if !r.outcome.is_ok() {
        print_errors(std::slice::from_ref(r));
    }
}

fn print_response(d: &HttpDetail) {
    let remote = d
        .remote
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    println!("{}{remote}", d.url);
    if let (Some(status), Some(version)) = (d.status, &d.http_version) {
        println!("{version} {status}");
        for (k, v) in &d.headers {
            println!("{k}: {v}");
        }
        println!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_split_at_the_first_colon() {
        let h = parse_headers(&["X-A: 1".into(), "X-B:two: parts".into()]).unwrap();
        assert_eq!(h["X-A"], "1");
        assert_eq!(h["X-B"], "two: parts");
        assert!(parse_headers(&["no colon".into()]).is_err());
        assert!(parse_headers(&[": value".into()]).is_err());
    }
}
