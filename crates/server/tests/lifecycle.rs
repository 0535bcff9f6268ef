//! End to end on loopback: a real server, real enrolled agents running the real agent code and
//! the real measurement engine (DNS queries to a test DNS server whose answers and delays are
//! known), checked against what the server stored and what the DNS server saw.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Mode, Proxy, TestAgent, TestServer, wait_for};
use uuid::Uuid;
use vantage_server::StreamEvent;
use vantage_testnet::dns_server::{Behaviour, DnsServer};

fn dns(server: &DnsServer, agents: &str, timeout: f64) -> Value {
    json!({
        "type": "dns",
        "name": "www.vantage.test",
        "servers": [server.addr().to_string()],
        "allow_private": true,
        "timeout": timeout,
        "retries": 0,
        "agents": agents,
    })
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

fn entry<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["agent"]["name"] == name)
        .unwrap_or_else(|| panic!("no entry for {name} in {view}"))
}

async fn metric(t: &TestServer, name: &str) -> f64 {
    let (_, text) = t.req(reqwest::Method::GET, "/metrics", None, None).await;
    let text = text.as_str().unwrap().to_string();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn selected_agents_and_only_they_measure_and_their_results_are_stored() {
    let t = TestServer::start(false).await;
    let dns_server = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let dirs = [
        t.enroll("fra-1", "DE", "Frankfurt", &[("env", "prod")])
            .await,
        t.enroll("ber-1", "DE", "Berlin", &[("env", "lab")]).await,
        t.enroll("par-1", "FR", "Paris", &[("env", "prod")]).await,
    ];
    let agents: Vec<TestAgent> = dirs.iter().map(|d| TestAgent::spawn(d, None)).collect();
    t.wait_online(3).await;

    let created = t.measure(dns(&dns_server, "country:DE", 3.0)).await;
    assert_eq!(
        names(&created["agents"]),
        BTreeSet::from(["fra-1".to_string(), "ber-1".to_string()])
    );
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();

    // The live stream: the measurement, one result per selected agent, the end.
    let events = t.stream(id).await;
    assert!(
        matches!(events.first(), Some(StreamEvent::Measurement(_))),
        "{events:?}"
    );
    let streamed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Result(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(streamed.len(), 2, "{events:?}");
    assert!(
        matches!(events.last(), Some(StreamEvent::End(c)) if c.done == 2),
        "{events:?}"
    );

    // What the DNS server saw: exactly one query from each selected agent.
    let seen = dns_server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|q| q.name == "www.vantage.test."));

    // What is stored is what the agents measured and streamed.
    let view = t.view(&id.to_string()).await;
    assert_eq!(view["status"], "finished");
    assert_eq!(view["counts"]["done"], 2);
    for name in ["fra-1", "ber-1"] {
        let e = entry(&view, name);
        assert_eq!(e["status"], "done");
        let r = &e["result"];
        assert_eq!(r["outcome"], "ok", "{r}");
        assert_eq!(r["measurement_id"], id.to_string());
        let agent_id = agents
            .iter()
            .find(|a| a.dir.ends_with(format!("agent-{name}")))
            .unwrap()
            .id;
        assert_eq!(r["agent"], agent_id.to_string());
        let answers: BTreeSet<&str> = r["detail"]["servers"][0]["answers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["data"].as_str())
            .collect();
        assert_eq!(answers, BTreeSet::from(["192.0.2.10", "192.0.2.11"]));
        let s = streamed.iter().find(|s| s.agent.name == name).unwrap();
        assert_eq!(
            serde_json::to_value(s.result.as_ref().unwrap()).unwrap(),
            *r
        );
    }
    assert!(
        view["results"].as_array().unwrap().len() == 2,
        "par-1 was not selected"
    );
    let counts = t.s().store().row_counts().await.unwrap();
    assert_eq!(counts["results"], 2);

    // Other selectors: a label, a limit, and the agents of the earlier measurement.
    let c = t.measure(dns(&dns_server, "env:prod", 3.0)).await;
    assert_eq!(
        names(&c["agents"]),
        BTreeSet::from(["fra-1".into(), "par-1".into()])
    );
    let c = t.measure(dns(&dns_server, "country:DE@1", 3.0)).await;
    assert_eq!(c["agents"].as_array().unwrap().len(), 1);
    let c = t.measure(dns(&dns_server, &format!("msm:{id}"), 3.0)).await;
    assert_eq!(
        names(&c["agents"]),
        BTreeSet::from(["fra-1".into(), "ber-1".into()])
    );
    let c = t
        .measure(dns(&dns_server, "country:NL, name:par-1", 3.0))
        .await;
    assert_eq!(names(&c["agents"]), BTreeSet::from(["par-1".into()]));
    assert_eq!(c["unmatched"], json!(["country:NL"]));
    t.wait_finished(c["id"].as_str().unwrap(), 15.0).await;

    // Filters and cursor pagination over the five measurements.
    let (_, page) = t.get("/api/v1/measurements?limit=2").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, page2) = t
        .get(&format!("/api/v1/measurements?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 2);
    let (_, page3) = t
        .get(&format!(
            "/api/v1/measurements?limit=2&cursor={}",
            page2["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page3["items"].as_array().unwrap().len(), 1);
    assert!(page3.get("next_cursor").is_none());
    let (_, first) = t
        .get(&format!(
            "/api/v1/measurements?type=dns&status=finished&agent={}",
            agents[2].id
        ))
        .await;
    assert!(
        first["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["type"] == "dns")
    );
    assert!(
        first["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == c["id"])
    );
    let (_, none) = t.get("/api/v1/measurements?type=ping").await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_fresh_install_answers_through_its_built_in_agent() {
    let t = TestServer::start(true).await;
    t.wait_online(1).await;
    let (_, agents) = t.get("/api/v1/agents").await;
    let a = &agents["items"][0];
    assert_eq!(a["builtin"], true);
    assert_eq!(a["status"], "online");
    assert!(
        a["version"].is_string() && a["capabilities"]["kinds"].is_array(),
        "{a}"
    );
    let dns_server = DnsServer::start(false, Behaviour::Answer).await.unwrap();
    let c = t.measure(dns(&dns_server, "all", 3.0)).await;
    let v = t.wait_finished(c["id"].as_str().unwrap(), 15.0).await;
    assert_eq!(v["results"][0]["status"], "done");
    assert_eq!(v["results"][0]["result"]["outcome"], "ok");
    // The built-in agent cannot be revoked by accident.
    let (s, e) = t
        .req(
            reqwest::Method::DELETE,
            &format!("/api/v1/agents/{}", a["id"].as_str().unwrap()),
            Some(support::ADMIN),
            None,
        )
        .await;
    assert_eq!(s, 409, "{e}");
}

#[tokio::test]
async fn a_foreign_certificate_a_revoked_agent_and_a_reused_token_are_refused() {
    let t = TestServer::start(false).await;

    // A token enrols one agent only.
    let token = t.client.create_enrollment_token(None).await.unwrap();
    let opts = |dir: &str| vantage_agent::EnrollOptions {
        server: token.agent_url.clone(),
        token: token.token.clone(),
        data_dir: t.dir.path().join(dir),
        name: Some(dir.into()),
        labels: Default::default(),
        country: None,
        city: None,
        region: None,
        asn: None,
    };
    vantage_agent::enroll(&opts("first")).await.unwrap();
    let e = vantage_agent::enroll(&opts("second")).await.unwrap_err();
    assert!(e.to_string().contains("already used"), "{e}");
    assert!(!vantage_agent::Identity::exists(
        &t.dir.path().join("second")
    ));

    // An agent of another server (another CA) is refused in the TLS handshake, even when it
    // trusts this server's CA.
    let other = TestServer::start(false).await;
    let foreign = other.enroll("foreign", "DE", "Berlin", &[]).await;
    let before = metric(
        &t,
        "vantage_agent_link_errors_total{reason=\"tls_handshake\"}",
    )
    .await;
    let err = foreign_handshake(&t, &foreign).await;
    assert!(err.contains("alert"), "{err}");
    wait_for("the refused handshake to be counted", 5.0, || async {
        (metric(
            &t,
            "vantage_agent_link_errors_total{reason=\"tls_handshake\"}",
        )
        .await
            > before)
            .then_some(())
    })
    .await;
    // The real agent code refuses to talk to a server whose CA it does not hold (its refusal
    // shows as one more failed handshake on this server).
    let before = metric(
        &t,
        "vantage_agent_link_errors_total{reason=\"tls_handshake\"}",
    )
    .await;
    let mut misdirected = TestAgent::spawn(&foreign, Some(t.agent_url()));
    wait_for("the misdirected agent's handshake to fail", 5.0, || async {
        (metric(
            &t,
            "vantage_agent_link_errors_total{reason=\"tls_handshake\"}",
        )
        .await
            > before)
            .then_some(())
    })
    .await;
    assert_eq!(t.online().await, 0);
    misdirected.kill();

    // A revoked agent loses its session now and is refused from then on.
    let dir = t.enroll("lab-1", "DE", "Berlin", &[]).await;
    let mut agent = TestAgent::spawn(&dir, None);
    t.wait_online(1).await;
    let (s, v) = t
        .req(
            reqwest::Method::DELETE,
            &format!("/api/v1/agents/{}", agent.id),
            Some(support::ADMIN),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "revoked");
    let ended = tokio::time::timeout(Duration::from_secs(10), agent.handle.take().unwrap())
        .await
        .expect("a revoked agent stops retrying")
        .unwrap();
    assert!(
        matches!(ended, Err(vantage_agent::Error::Revoked)),
        "{ended:?}"
    );
    assert_eq!(t.online().await, 0);
    let (s, v) = t
        .post(
            "/api/v1/measurements",
            &json!({"type":"dns","name":"x.test","agents":format!("id:{}", agent.id)}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "no_agents");
}

/// Opens TLS to `t`'s agent port trusting `t`'s CA but presenting the certificate of an agent
/// enrolled elsewhere; returns the error the handshake ends with.
async fn foreign_handshake(t: &TestServer, agent_dir: &std::path::Path) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca = CertificateDer::from_pem_file(t.cfg.data_dir.join("pki/ca.crt")).unwrap();
    let cert = CertificateDer::from_pem_file(agent_dir.join("agent.crt")).unwrap();
    let key = PrivateKeyDer::from_pem_file(agent_dir.join("agent.key")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(vec![cert], key)
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(t.cfg.agent_listen)
        .await
        .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = match tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(name, tcp)
        .await
    {
        Ok(s) => s,
        Err(e) => return e.to_string(),
    };
    // TLS 1.3: the server's verdict on our certificate arrives after our side finished.
    let _ = tls
        .write_all(b"GET /agent/v1/link HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 512];
    match tls.read(&mut buf).await {
        Ok(n) => format!(
            "unexpectedly read {n} bytes: {}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn an_agent_killed_during_a_measurement_is_agent_lost_by_the_deadline() {
    let t = TestServer::start(false).await;
    // The server answers after 3 s; the agents give up after 1.5 s: a measurement in progress
    // for 1.5 s.
    let dns_server = DnsServer::start(false, Behaviour::Delay(Duration::from_secs(3)))
        .await
        .unwrap();
    let a = t.enroll("doomed", "DE", "Berlin", &[]).await;
    let b = t.enroll("steady", "DE", "Munich", &[]).await;
    let mut doomed = TestAgent::spawn(&a, None);
    let _steady = TestAgent::spawn(&b, None);
    t.wait_online(2).await;
    let c = t.measure(dns(&dns_server, "all", 1.5)).await;
    let id = c["id"].as_str().unwrap().to_string();
    // Kill it once it has the job (the DNS server has its query).
    wait_for("both queries to arrive", 5.0, || async {
        (dns_server.seen().len() == 2).then_some(())
    })
    .await;
    doomed.kill();
    let deadline: chrono::DateTime<chrono::Utc> = c["deadline"].as_str().unwrap().parse().unwrap();
    let v = t.wait_finished(&id, 20.0).await;
    let finished: chrono::DateTime<chrono::Utc> =
        v["finished_at"].as_str().unwrap().parse().unwrap();
    assert!(
        finished <= deadline + chrono::Duration::seconds(1),
        "finished at {finished}, deadline {deadline}"
    );
    let lost = entry(&v, "doomed");
    assert_eq!(lost["status"], "agent_lost", "{lost}");
    assert!(
        lost["reason"]
            .as_str()
            .unwrap()
            .contains("doomed disconnected at"),
        "{lost}"
    );
    assert_eq!(lost["result"]["outcome"], "agent_lost");
    let ok = entry(&v, "steady");
    assert_eq!(ok["status"], "done");
    assert_eq!(ok["result"]["outcome"], "timeout", "{ok}");
    assert_eq!(v["counts"]["agent_lost"], 1);
}

#[tokio::test]
async fn results_held_through_a_link_cut_arrive_exactly_once() {
    let t = TestServer::start(false).await;
    let proxy = Proxy::start(t.cfg.agent_listen).await;
    // Answers after 1 s: the agent measures while its link is down.
    let dns_server = DnsServer::start(false, Behaviour::Delay(Duration::from_secs(1)))
        .await
        .unwrap();
    let dir = t.enroll("behind-proxy", "DE", "Berlin", &[]).await;
    let agent = TestAgent::spawn(&dir, Some(proxy.url()));
    t.wait_online(1).await;

    // 1. The link goes down during the measurement; the result waits in the outbox.
    let c = t.measure(dns(&dns_server, "all", 3.0)).await;
    let id = c["id"].as_str().unwrap().to_string();
    wait_for("the query to arrive", 5.0, || async {
        (dns_server.seen().len() == 1).then_some(())
    })
    .await;
    proxy.set(Mode::Cut);
    wait_for("the result in the outbox", 10.0, || async {
        (agent.outbox_files() == 1).then_some(())
    })
    .await;
    assert_eq!(t.view(&id).await["results"][0]["status"], "running");
    proxy.set(Mode::Open);
    let v = t.wait_finished(&id, 15.0).await;
    assert_eq!(v["results"][0]["status"], "done");
    assert_eq!(v["results"][0]["result"]["outcome"], "ok");
    assert!(!v["results"][0]["late"].as_bool().unwrap_or(false));
    wait_for("the outbox to empty", 5.0, || async {
        (agent.outbox_files() == 0).then_some(())
    })
    .await;
    assert_eq!(
        t.s()
            .store()
            .result_count(id.parse().unwrap())
            .await
            .unwrap(),
        1
    );

    // 2. The result arrives but its acknowledgement is lost: the agent sends it again after
    // reconnecting, and the server stores it once.
    t.wait_online(1).await;
    let stored_before = metric(&t, "vantage_results_stored_total").await;
    let c = t.measure(dns(&dns_server, "all", 3.0)).await;
    let id2 = c["id"].as_str().unwrap().to_string();
    wait_for("the query to arrive", 10.0, || async {
        (dns_server.seen().len() == 2).then_some(())
    })
    .await;
    // The agent is measuring (1 s): from now on nothing reaches it from the server.
    proxy.set(Mode::MuteDown);
    let v = t.wait_finished(&id2, 15.0).await;
    assert_eq!(v["results"][0]["status"], "done");
    assert_eq!(
        agent.outbox_files(),
        1,
        "the acknowledgement must not have arrived"
    );
    proxy.set(Mode::Open);
    proxy.reset();
    wait_for("the re-sent result to be acknowledged", 15.0, || async {
        (agent.outbox_files() == 0).then_some(())
    })
    .await;
    assert_eq!(
        t.s()
            .store()
            .result_count(id2.parse().unwrap())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        metric(&t, "vantage_results_stored_total").await,
        stored_before + 1.0
    );
}

#[tokio::test]
async fn a_server_restart_during_a_measurement_loses_nothing() {
    let mut t = TestServer::start(false).await;
    let dns_server = DnsServer::start(false, Behaviour::Delay(Duration::from_millis(1500)))
        .await
        .unwrap();
    let dirs = [
        t.enroll("a", "DE", "Berlin", &[]).await,
        t.enroll("b", "FR", "Paris", &[]).await,
    ];
    let _agents: Vec<TestAgent> = dirs.iter().map(|d| TestAgent::spawn(d, None)).collect();
    t.wait_online(2).await;
    let c = t.measure(dns(&dns_server, "all", 4.0)).await;
    let id = c["id"].as_str().unwrap().to_string();
    wait_for("both queries to arrive", 5.0, || async {
        (dns_server.seen().len() == 2).then_some(())
    })
    .await;
    t.restart().await;
    assert_eq!(t.s().resumed, 1, "the unfinished measurement is resumed");
    let v = t.wait_finished(&id, 20.0).await;
    for e in v["results"].as_array().unwrap() {
        assert_eq!(e["status"], "done", "{e}");
        assert_eq!(e["result"]["outcome"], "ok", "{e}");
    }
    assert_eq!(
        t.s()
            .store()
            .result_count(id.parse().unwrap())
            .await
            .unwrap(),
        2
    );
    // Each agent measured once: nothing was re-run because of the restart.
    assert_eq!(dns_server.seen().len(), 2);
}
