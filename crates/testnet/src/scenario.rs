//! TOML scenarios: the same topology concepts as the builder, written as data, so a topology
//! can live in a file next to the test or benchmark that uses it.
//!
//! ```toml
//! default_routes = true            # optional; single-link hosts get a default route
//!
//! [[node]]
//! name = "client"                  # kind = "host" (default) or "router"
//! sysctls = { "net.ipv4.ping_group_range" = "0 2147483647" }
//!
//! [[node]]
//! name = "r1"
//! kind = "router"
//!
//! [[node]]
//! name = "server"
//! anyip = ["10.200.0.0/16", "fd00:200::/64"]
//!
//! [[link]]
//! a = "client"
//! b = "r1"
//! v4 = "10.1.1.0/24"
//! v6 = "fd00:1:1::/64"
//!
//! [[link]]
//! a = "r1"
//! b = "server"
//! v4 = "10.1.2.0/24"
//! mtu = 1500
//! impair = { delay_ms = 20.0, jitter_ms = 1.0, loss = 0.01 }   # both directions
//! # impair_ab = { … } / impair_ba = { … } for one direction (override `impair`)
//!
//! [[route]]
//! node = "client"
//! prefix = "192.0.2.0/24"
//! via = "10.1.1.2"
//! ```
//!
//! Decision: every table rejects unknown keys, and errors carry the line and column from the
//! TOML parser, so a typo (`dealy_ms`) is an error that points at itself rather than a link
//! silently built without its delay.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::impair::Impairment;
use crate::topology::{Link, NodeKind, TopologyBuilder};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    #[serde(default = "yes")]
    default_routes: bool,
    #[serde(default)]
    node: Vec<NodeEntry>,
    #[serde(default)]
    link: Vec<LinkEntry>,
    #[serde(default)]
    route: Vec<RouteEntry>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeEntry {
    name: String,
    #[serde(default)]
    kind: Kind,
    #[serde(default)]
    anyip: Vec<String>,
    #[serde(default)]
    sysctls: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    #[default]
    Host,
    Router,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkEntry {
    a: String,
    b: String,
    v4: Option<String>,
    v6: Option<String>,
    mtu: Option<u32>,
    impair: Option<ImpairEntry>,
    impair_ab: Option<ImpairEntry>,
    impair_ba: Option<ImpairEntry>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImpairEntry {
    #[serde(default)]
    delay_ms: f64,
    #[serde(default)]
    jitter_ms: f64,
    #[serde(default)]
    loss: f64,
    #[serde(default)]
    reorder: bool,
    seed: Option<u64>,
}

impl ImpairEntry {
    fn to_impairment(self) -> Result<Impairment> {
        for (name, v) in [("delay_ms", self.delay_ms), ("jitter_ms", self.jitter_ms)] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Scenario(format!(
                    "{name} must be a non-negative number of milliseconds, not {v}"
                )));
            }
        }
        let mut imp = Impairment::delay_ms(self.delay_ms)
            .jitter_ms(self.jitter_ms)
            .loss(self.loss);
        imp.reorder = self.reorder;
        imp.seed = self.seed;
        imp.validate()?;
        Ok(imp)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteEntry {
    node: String,
    prefix: String,
    via: String,
}

/// Reads a TOML scenario into a builder (nothing is created yet).
pub(crate) fn parse(text: &str) -> Result<TopologyBuilder> {
    let s: Scenario = toml::from_str(text).map_err(|e| Error::Scenario(e.to_string()))?;
    let mut b = TopologyBuilder::default();
    for n in &s.node {
        let kind = match n.kind {
            Kind::Host => NodeKind::Host,
            Kind::Router => NodeKind::Router,
        };
        b = b.node(&n.name, kind);
    }
    for n in &s.node {
        for p in &n.anyip {
            b = b.anyip(&n.name, p);
        }
        for (k, v) in &n.sysctls {
            b = b.sysctl(&n.name, k, v);
        }
    }
    for l in &s.link {
        let mut link = match (&l.v4, &l.v6) {
            (Some(v4), Some(v6)) => Link::v4(v4).v6(v6),
            (Some(v4), None) => Link::v4(v4),
            (None, Some(v6)) => Link::v6_only(v6),
            (None, None) => {
                return Err(Error::Scenario(format!(
                    "link {}–{} needs a v4 or a v6 prefix",
                    l.a, l.b
                )));
            }
        };
        if let Some(mtu) = l.mtu {
            link = link.mtu(mtu);
        }
        if let Some(i) = l.impair {
            link = link.impair(i.to_impairment()?);
        }
        if let Some(i) = l.impair_ab {
            link = link.impair_ab(i.to_impairment()?);
        }
        if let Some(i) = l.impair_ba {
            link = link.impair_ba(i.to_impairment()?);
        }
        b = b.link(&l.a, &l.b, link);
    }
    for r in &s.route {
        b = b.route(&r.node, &r.prefix, &r.via);
    }
    if !s.default_routes {
        b = b.no_default_routes();
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Topology;

    const CHAIN: &str = include_str!("../scenarios/chain.toml");

    fn chain_in_code() -> TopologyBuilder {
        Topology::builder()
            .host("client")
            .router("r1")
            .router("r2")
            .host("server")
            .allow_unprivileged_ping("client")
            .anyip("server", "10.200.0.0/16")
            .anyip("server", "fd00:200::/64")
            .link("client", "r1", Link::v4("10.1.1.0/24").v6("fd00:1:1::/64"))
            .link("r1", "r2", Link::v4("10.1.2.0/24").v6("fd00:1:2::/64"))
            .link(
                "r2",
                "server",
                Link::v4("10.1.3.0/24")
                    .v6("fd00:1:3::/64")
                    .impair(Impairment::delay_ms(5.0).jitter_ms(0.5))
                    .impair_ba(Impairment::delay_ms(5.0).jitter_ms(0.5).loss(0.01)),
            )
            .route("client", "192.0.2.0/24", "10.1.1.2")
    }

    #[test]
    fn the_example_scenario_reads_as_the_same_builder_as_code() {
        assert_eq!(parse(CHAIN).unwrap(), chain_in_code());
    }

    #[test]
    fn an_unknown_key_anywhere_is_rejected_with_its_position() {
        // Inject an unknown key into every table of the example, one at a time.
        let tables: Vec<usize> = CHAIN
            .lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with("[[") || l.contains("impair"))
            .map(|(i, _)| i)
            .collect();
        assert!(tables.len() >= 6);
        for i in tables {
            let mut lines: Vec<String> = CHAIN.lines().map(str::to_string).collect();
            if lines[i].contains("= {") {
                lines[i] = lines[i].replacen("= {", "= { dealy_ms = 1.0,", 1);
            } else {
                lines.insert(i + 1, "colour = \"blue\"".to_string());
            }
            let err = parse(&lines.join("\n"))
                .expect_err("unknown key accepted")
                .to_string();
            assert!(err.contains("unknown field"), "line {i}: {err}");
            assert!(err.contains("line"), "no position in: {err}");
        }
        let err = parse(&format!("colour = 1\n{CHAIN}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn bad_values_are_explained() {
        let cases = [
            (
                "[[node]]\nname = \"a\"\nkind = \"switch\"\n",
                "unknown variant",
            ),
            (
                "[[node]]\nname=\"a\"\n[[node]]\nname=\"b\"\n[[link]]\na=\"a\"\nb=\"b\"\n",
                "needs a v4 or a v6 prefix",
            ),
            (
                "[[node]]\nname=\"a\"\n[[node]]\nname=\"b\"\n[[link]]\na=\"a\"\nb=\"b\"\nv4=\"10.0.0.0/24\"\nimpair={delay_ms=-1.0}\n",
                "non-negative",
            ),
            (
                "[[node]]\nname=\"a\"\n[[node]]\nname=\"b\"\n[[link]]\na=\"a\"\nb=\"b\"\nv4=\"10.0.0.0/24\"\nimpair={loss=1.5}\n",
                "probability",
            ),
            ("[[node]]\nname = 5\n", "invalid type"),
        ];
        for (text, expected) in cases {
            let err = parse(text).expect_err(expected).to_string();
            assert!(err.contains(expected), "'{err}' does not say '{expected}'");
        }
    }
}
