//! The REST API's edges: bad input on every endpoint gets a clear 4xx and changes nothing, roles
//! are enforced, and the OpenAPI document is valid and matches the routes served.

mod support;

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, TestAgent, TestServer};
use vantage_server::model::Role;

struct Case {
    method: Method,
    path: String,
    token: Option<String>,
    body: Option<String>,
    status: u16,
    needle: &'static str,
}

fn case(
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
    status: u16,
    needle: &'static str,
) -> Case {
    Case {
        method,
        path: path.into(),
        token: token.map(str::to_string),
        body: body.map(str::to_string),
        status,
        needle,
    }
}

#[tokio::test]
async fn bad_input_on_every_endpoint_gets_a_clear_4xx_and_stores_nothing() {
    let t = TestServer::start(false).await;
    let dir = t.enroll("lab-1", "DE", "Berlin", &[]).await;
    let agent = TestAgent::spawn(&dir, None);
    t.wait_online(1).await;
    let viewer = t
        .s()
        .create_api_token("viewer", Role::Viewer)
        .await
        .unwrap();
    let operator = t
        .s()
        .create_api_token("operator", Role::Operator)
        .await
        .unwrap();
    let a = agent.id.to_string();
    let admin = Some(ADMIN);
    let m = "/api/v1/measurements";
    let agent_path = format!("/api/v1/agents/{a}");
    let unknown = "/api/v1/agents/0190a5e0-0000-7000-8000-000000000000";
    let ping =
        |extra: &str| format!(r#"{{"type":"ping","target":"192.0.2.1"{extra},"agents":"all"}}"#);
    let cases = vec![
        // Authentication and roles.
        case(Method::GET, m, None, None, 401, "needs an API token"),
        case(Method::GET, m, Some("vt_wrong"), None, 401, "not valid"),
        case(
            Method::POST,
            m,
            Some(&viewer),
            Some(&ping("")),
            403,
            "role viewer",
        ),
        case(
            Method::DELETE,
            &agent_path,
            Some(&operator),
            None,
            403,
            "needs admin",
        ),
        case(
            Method::POST,
            "/api/v1/enrollment-tokens",
            Some(&viewer),
            None,
            403,
            "needs admin",
        ),
        case(
            Method::GET,
            "/api/v1/agents",
            None,
            None,
            401,
            "needs an API token",
        ),
        // POST /measurements.
        case(
            Method::POST,
            m,
            admin,
            Some(r#"{"type":"ping","#),
            400,
            "not valid JSON",
        ),
        case(Method::POST, m, admin, Some("[1,2]"), 400, "JSON object"),
        case(
            Method::POST,
            m,
            admin,
            Some(&ping(r#","cuont":3"#)),
            400,
            "unknown field `cuont`",
        ),
        case(
            Method::POST,
            m,
            admin,
            Some(&ping(r#","count":"3""#)),
            400,
            "invalid type",
        ),
        case(
            Method::POST,
            m,
            admin,
            Some(&ping(r#","count":-1"#)),
            400,
            "invalid value",
        ),
        case(
            Method::POST,
            m,
            admin,
            Some(&ping(r#","count":0"#)),
            422,
            "invalid count",
        ),
        case(
            Method::POST,
            m,
            admin,
            Some(&ping(r#","interval":100000"#)),
            422,
            "invalid interval",
        ),
        case(
            Method::POST,
            m,
            admin,
            Some(r#"{"type":"ping","target":"-c 5","agents":"all"}"#),
            422,
            "invalid target",
        ),
        case(
            Method::POST,
            m,
            admin,
            Some(r#"{"type":"ping","agents":"all"}"#),
            400,
            "missing field `target`",
        ),
        case(
            Method::POST,
            m,
            admin,
            Some(r#"{"type":"ping","target":"192.0.2.1"}"#),
            400,
            "'agents' is missing",
        ),
        case(
            Method::POST,
            m,
            admin,
            Some(r#"{"type":"ping","target":"192.0.2.1","agents":["all"]}"#),
            400,
            "selector string",
        ),
        case(
            Method::POST,
            m,
            admin,
            Some(r#"{"type":"ping","target":"192.0.2.1","agents":"country:Germany"}"#),
            422,
            "two-letter",
        ),
        case(
            Method::POST,
            m,
            admin,
            Some(r#"{"type":"ping","target":"192.0.2.1","agents":"name:x@0"}"#),
            422,
            "out of range",
        ),
        case(
            Method::POST,
            m,
            admin,
            Some(
                r#"{"type":"ping","target":"192.0.2.1","agents":"msm:0190a5e0-0000-7000-8000-000000000000"}"#,
            ),
            422,
            "does not exist",
        ),
        case(
            Method::POST,
            m,
            admin,
            Some(r#"{"type":"ping","target":"192.0.2.1","agents":"country:US"}"#),
            422,
            "matches none",
        ),
        case(
            Method::POST,
            m,
            admin,
            Some(r#"{"type":"warp","target":"192.0.2.1","agents":"all"}"#),
            400,
            "unknown variant",
        ),
        // GET /measurements and /measurements/{id}.
        case(
            Method::GET,
            &format!("{m}?limit=0"),
            admin,
            None,
            400,
            "'limit'",
        ),
        case(
            Method::GET,
            &format!("{m}?limit=ten"),
            admin,
            None,
            400,
            "'limit'",
        ),
        case(
            Method::GET,
            &format!("{m}?type=icmp"),
            admin,
            None,
            400,
            "icmp",
        ),
        case(
            Method::GET,
            &format!("{m}?status=lost"),
            admin,
            None,
            400,
            "status",
        ),
        case(
            Method::GET,
            &format!("{m}?since=yesterday"),
            admin,
            None,
            400,
            "RFC 3339",
        ),
        case(
            Method::GET,
            &format!("{m}?agent=lab-1"),
            admin,
            None,
            400,
            "agent id",
        ),
        case(
            Method::GET,
            &format!("{m}?cursor=zzz"),
            admin,
            None,
            400,
            "cursor",
        ),
        case(
            Method::GET,
            &format!("{m}?colour=red"),
            admin,
            None,
            400,
            "colour",
        ),
        case(
            Method::GET,
            &format!("{m}/not-an-id"),
            admin,
            None,
            400,
            "not a measurement id",
        ),
        case(
            Method::GET,
            &format!("{m}/0190a5e0-0000-7000-8000-000000000000"),
            admin,
            None,
            404,
            "no measurement",
        ),
        case(
            Method::GET,
            &format!("{m}/0190a5e0-0000-7000-8000-000000000000/stream"),
            admin,
            None,
            404,
            "no measurement",
        ),
        case(
            Method::GET,
            &format!("{m}/bad/stream"),
            admin,
            None,
            400,
            "not a measurement id",
        ),
        // Agents.
        case(
            Method::GET,
            "/api/v1/agents/nope",
            admin,
            None,
            400,
            "not an agent id",
        ),
        case(Method::GET, unknown, admin, None, 404, "no agent"),
        case(
            Method::PATCH,
            &agent_path,
            admin,
            Some(r#"{"name":"#),
            400,
            "not valid JSON",
        ),
        case(
            Method::PATCH,
            &agent_path,
            admin,
            Some(r#"{"colour":"red"}"#),
            400,
            "unknown field",
        ),
        case(
            Method::PATCH,
            &agent_path,
            admin,
            Some(r#"{"asn":"AS3320"}"#),
            400,
            "invalid type",
        ),
        case(
            Method::PATCH,
            &agent_path,
            admin,
            Some(r#"{"country":"Germany"}"#),
            422,
            "two-letter",
        ),
        case(
            Method::PATCH,
            &agent_path,
            admin,
            Some(r#"{"name":"a,b"}"#),
            422,
            "reserved",
        ),
        case(
            Method::PATCH,
            &agent_path,
            admin,
            Some(r#"{"labels":{"country":"x"}}"#),
            422,
            "reserved",
        ),
        case(
            Method::PATCH,
            unknown,
            admin,
            Some(r#"{"name":"x"}"#),
            404,
            "no agent",
        ),
        case(Method::DELETE, unknown, admin, None, 404, "no agent"),
        case(
            Method::DELETE,
            "/api/v1/agents/7",
            admin,
            None,
            400,
            "not an agent id",
        ),
        // Enrolment tokens.
        case(
            Method::POST,
            "/api/v1/enrollment-tokens",
            admin,
            Some(r#"{"ttl_seconds":1}"#),
            422,
            "ttl_seconds",
        ),
        case(
            Method::POST,
            "/api/v1/enrollment-tokens",
            admin,
            Some(r#"{"ttl":60}"#),
            400,
            "unknown field",
        ),
        case(
            Method::POST,
            "/api/v1/enrollment-tokens",
            admin,
            Some(r#"{"ttl_seconds":"soon"}"#),
            400,
            "invalid type",
        ),
        // Unknown routes and methods.
        case(
            Method::GET,
            "/api/v1/nothing",
            admin,
            None,
            404,
            "no such endpoint",
        ),
        case(Method::PUT, m, admin, None, 405, "does not accept"),
    ];
    let before = t.s().store().row_counts().await.unwrap();
    for c in &cases {
        let (status, body) = t
            .req(
                c.method.clone(),
                &c.path,
                c.token.as_deref(),
                c.body.as_deref(),
            )
            .await;
        let what = format!("{} {} {:?}", c.method, c.path, c.body);
        assert_eq!(status, c.status, "{what}: {body}");
        let msg = body["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no error envelope: {body}"));
        assert!(body["error"]["code"].is_string(), "{what}: {body}");
        assert!(
            msg.contains(c.needle),
            "{what}: '{msg}' lacks '{}'",
            c.needle
        );
    }
    // A body sent without the JSON content type.
    let resp = t
        .http
        .post(format!("{}{m}", t.base))
        .bearer_auth(ADMIN)
        .body(ping(""))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    assert_eq!(
        t.s().store().row_counts().await.unwrap(),
        before,
        "refused requests stored nothing"
    );
    let (_, a) = t.get(&agent_path).await;
    assert_eq!(a["name"], "lab-1");
    assert_eq!(a["country"], "DE");

    // The same agent is changed by a valid patch, and null clears a field.
    let (s, a) = t
        .req(
            Method::PATCH,
            &agent_path,
            admin,
            Some(r#"{"name":"lab-2","country":"fr","city":null,"labels":{"env":"prod"}}"#),
        )
        .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(
        (a["name"].as_str(), a["country"].as_str()),
        (Some("lab-2"), Some("FR"))
    );
    assert!(a.get("city").is_none(), "{a}");
    // Selection follows the change at once.
    let (s, v) = t
        .post(
            m,
            &json!({"type":"dns","name":"x.test","agents":"env:prod+country:FR"}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
}

/// Replaces `{id}` in a documented path with a syntactically valid id, and the lookup
/// parameters with values answered without any network traffic (invalid queries are refused
/// before a WHOIS, RDAP or DNS server is asked).
fn concrete(path: &str) -> String {
    path.replace("{id}", "0190a5e0-0000-7000-8000-000000000000")
        .replace("{mac}", "00:00:0c:12:34:56")
        .replace("{ip}", "not-an-address")
        .replace("{asn}", "AS64500")
        .replace("{query}", "-invalid")
}

#[tokio::test]
async fn the_openapi_document_is_valid_and_covers_every_route() {
    let t = TestServer::start(false).await;
    let (status, doc) = t.req(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let text = doc.to_string();
    let spec = oas3::from_json(&text).unwrap_or_else(|e| panic!("invalid OpenAPI document: {e}"));
    assert!(spec.openapi.starts_with("3."), "{}", spec.openapi);

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((path.clone(), method.to_uppercase()));
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
            // Every path parameter is declared.
            for name in ["id", "mac", "ip", "asn", "query"] {
                if path.contains(&format!("{{{name}}}")) {
                    let params = op["parameters"].as_array().unwrap();
                    assert!(
                        params
                            .iter()
                            .any(|p| p["name"] == name && p["in"] == "path"),
                        "{method} {path}"
                    );
                }
            }
            // Authenticated routes say so.
            if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
                assert!(op["security"].is_array(), "{method} {path} lacks security");
            }
        }
    }
    let expected: BTreeSet<(String, String)> = [
        ("/api/v1/measurements", "POST"),
        ("/api/v1/measurements", "GET"),
        ("/api/v1/measurements/{id}", "GET"),
        ("/api/v1/measurements/{id}/stream", "GET"),
        ("/api/v1/agents", "GET"),
        ("/api/v1/agents/{id}", "GET"),
        ("/api/v1/agents/{id}", "PATCH"),
        ("/api/v1/agents/{id}", "DELETE"),
        ("/api/v1/enrollment-tokens", "POST"),
        ("/api/v1/lookup/ipcalc", "GET"),
        ("/api/v1/lookup/oui", "GET"),
        ("/api/v1/lookup/oui/{mac}", "GET"),
        ("/api/v1/lookup/ip/{ip}", "GET"),
        ("/api/v1/lookup/asn/{asn}", "GET"),
        ("/api/v1/lookup/whois/{query}", "GET"),
        ("/api/v1/lookup/rdap/{query}", "GET"),
        ("/api/v1/asn-overrides", "GET"),
        ("/api/v1/asn-overrides", "POST"),
        ("/api/v1/asn-overrides/{asn}", "GET"),
        ("/api/v1/asn-overrides/{asn}", "PUT"),
        ("/api/v1/asn-overrides/{asn}", "DELETE"),
        ("/api/v1/openapi.json", "GET"),
        ("/healthz", "GET"),
        ("/readyz", "GET"),
        ("/metrics", "GET"),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_string(), m.to_string()))
    .collect();
    assert_eq!(documented, expected);

    // Every documented route is served (never 404 for an unknown route or 405), and every
    // other method on those paths is refused with 405.
    for (path, method) in &documented {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = t.req(m, &concrete(path), Some(ADMIN), Some("{}")).await;
        let no_route = status == 405
            || (status == 404
                && body["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("no such endpoint"));
        assert!(
            !no_route,
            "{method} {path} is documented but not served: {status} {body}"
        );
    }
    for path in documented.iter().map(|(p, _)| p).collect::<BTreeSet<_>>() {
        for m in ["GET", "POST", "PATCH", "DELETE", "PUT"] {
            if !documented.contains(&(path.clone(), m.to_string())) {
                let (status, _) = t
                    .req(
                        Method::from_bytes(m.as_bytes()).unwrap(),
                        &concrete(path),
                        Some(ADMIN),
                        None,
                    )
                    .await;
                assert_eq!(status, 405, "{m} {path} is served but not documented");
            }
        }
    }

    // Every schema reference resolves.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(schemas.contains_key(name), "dangling $ref {r}");
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push(x.as_str().unwrap().to_string());
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn health_readiness_and_metrics_answer_without_a_token() {
    let t = TestServer::start(false).await;
    let (s, h) = t.req(Method::GET, "/healthz", None, None).await;
    assert_eq!((s, h["status"].as_str()), (200, Some("ok")));
    let (s, r) = t.req(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (s, r["status"].as_str(), r["agents_connected"].as_u64()),
        (200, Some("ok"), Some(0))
    );
    let (s, m) = t.req(Method::GET, "/metrics", None, None).await;
    assert_eq!(s, 200);
    let m = m.as_str().unwrap();
    for line in [
        "vantage_agents_connected 0",
        "vantage_measurements{status=\"running\"} 0",
        "vantage_measurements{status=\"finished\"} 0",
        "vantage_results_stored_total 0",
    ] {
        assert!(m.contains(line), "{line} missing:\n{m}");
    }
    // Garbage on the agent port is a failed handshake, counted by reason.
    {
        use tokio::io::AsyncWriteExt;
        let mut c = tokio::net::TcpStream::connect(t.cfg.agent_listen)
            .await
            .unwrap();
        c.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    }
    support::wait_for("the failed handshake to be counted", 5.0, || async {
        let (_, m) = t.req(Method::GET, "/metrics", None, None).await;
        m.as_str()
            .unwrap()
            .contains("vantage_agent_link_errors_total{reason=\"tls_handshake\"} 1")
            .then_some(())
    })
    .await;
}
