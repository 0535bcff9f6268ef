//! Topologies: nodes (namespaces), links (veth pairs, optionally through an impairer), AnyIP
//! ranges and routes, built from a [`TopologyBuilder`] and torn down when the [`Topology`]
//! drops.
//!
//! Decisions:
//! - Addressing is by link: the first node of `link(a, b, …)` gets host 1 of each prefix, the
//!   second host 2, so `10.1.1.0/24` gives `a = 10.1.1.1`, `b = 10.1.1.2`. Interfaces are named
//!   `eth0`, `eth1` … in the order a node's links were declared; veths are created directly
//!   inside their namespaces, so names never collide between parallel tests.
//! - Routes are computed: every node gets a route to every prefix of the topology (link
//!   prefixes and AnyIP ranges) along the shortest path, crossing only routers, as a routing
//!   protocol would converge to. A host with a single link also gets a default route through it.
//!   Explicit [`TopologyBuilder::route`]s are applied last and replace computed ones.
//! - IPv6 duplicate address detection is disabled before any interface exists (otherwise new
//!   addresses stay "tentative" and silently drop traffic for about two seconds).
//! - Everything the build creates is recorded in the `Topology` before the next step, so a
//!   failure half-way, a panic in the test, or a normal end all clean up through `Drop`.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::cmd;
use crate::error::{Error, Result};
use crate::impair::{Direction, Impairer, Impairment, LinkStats};
use crate::ns::{self, Ns};

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// An end host: no forwarding.
    Host,
    /// A router: IPv4 and IPv6 forwarding on.
    Router,
}

/// A link between two nodes: its IPv4 and/or IPv6 prefix, MTU and impairment per direction.
///
/// ```
/// use vantage_testnet::{Impairment, Link};
/// let plain = Link::v4("10.1.1.0/24").v6("fd00:1:1::/64");
/// let wan = Link::v4("10.1.2.0/24").impair(Impairment::delay_ms(20.0));
/// let asym = Link::v6_only("fd00:2::/64").impair_ab(Impairment::none().loss(0.1));
/// # let _ = (plain, wan, asym);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link {
    pub(crate) v4: Option<String>,
    pub(crate) v6: Option<String>,
    pub(crate) ab: Option<Impairment>,
    pub(crate) ba: Option<Impairment>,
    pub(crate) mtu: Option<u32>,
}

impl Link {
    /// A link with an IPv4 prefix (add IPv6 with [`v6`](Self::v6)).
    pub fn v4(prefix: &str) -> Self {
        Link {
            v4: Some(prefix.to_string()),
            ..Self::default()
        }
    }

    /// A link with only an IPv6 prefix.
    pub fn v6_only(prefix: &str) -> Self {
        Link {
            v6: Some(prefix.to_string()),
            ..Self::default()
        }
    }

    /// Adds (or replaces) the IPv6 prefix.
    pub fn v6(mut self, prefix: &str) -> Self {
        self.v6 = Some(prefix.to_string());
        self
    }

    /// Impairs both directions the same way (e.g. 20 ms each way = 40 ms round trip).
    pub fn impair(mut self, imp: Impairment) -> Self {
        self.ab = Some(imp);
        self.ba = Some(imp);
        self
    }

    /// Impairs the direction from the link's first node to its second.
    pub fn impair_ab(mut self, imp: Impairment) -> Self {
        self.ab = Some(imp);
        self.ba.get_or_insert(Impairment::none());
        self
    }

    /// Impairs the direction from the link's second node to its first.
    pub fn impair_ba(mut self, imp: Impairment) -> Self {
        self.ba = Some(imp);
        self.ab.get_or_insert(Impairment::none());
        self
    }

    /// Sets the MTU of both ends (default 1500).
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    fn impaired(&self) -> bool {
        self.ab.is_some() || self.ba.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
struct NodeSpec {
    name: String,
    kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
struct LinkSpec {
    a: String,
    b: String,
    link: Link,
}

/// Describes a topology; [`build`](Self::build) creates it. Start with [`Topology::builder`]
/// or [`TopologyBuilder::from_toml`].
#[derive(Debug, Clone, PartialEq)]
pub struct TopologyBuilder {
    nodes: Vec<NodeSpec>,
    links: Vec<LinkSpec>,
    anyip: Vec<(String, String)>,
    routes: Vec<(String, String, String)>,
    sysctls: Vec<(String, String, String)>,
    default_routes: bool,
}

impl Default for TopologyBuilder {
    fn default() -> Self {
        TopologyBuilder {
            nodes: Vec::new(),
            links: Vec::new(),
            anyip: Vec::new(),
            routes: Vec::new(),
            sysctls: Vec::new(),
            default_routes: true,
        }
    }
}

impl TopologyBuilder {
    /// Reads a TOML scenario (format in the `scenario` module docs and
    /// `crates/testnet/scenarios/`); nothing is created until [`build`](Self::build).
    /// Unknown keys are rejected with their line and column.
    pub fn from_toml(text: &str) -> Result<Self> {
        crate::scenario::parse(text)
    }

    /// Adds an end host (a namespace without forwarding).
    pub fn host(mut self, name: &str) -> Self {
        self.nodes.push(NodeSpec {
            name: name.to_string(),
            kind: NodeKind::Host,
        });
        self
    }

    /// Adds a router (a namespace with IPv4 and IPv6 forwarding).
    pub fn router(mut self, name: &str) -> Self {
        self.nodes.push(NodeSpec {
            name: name.to_string(),
            kind: NodeKind::Router,
        });
        self
    }

    /// Adds a node of the given kind.
    pub fn node(self, name: &str, kind: NodeKind) -> Self {
        match kind {
            NodeKind::Host => self.host(name),
            NodeKind::Router => self.router(name),
        }
    }

    /// Joins `a` and `b` with a veth pair (through an impairer when the link has one).
    pub fn link(mut self, a: &str, b: &str, link: Link) -> Self {
        self.links.push(LinkSpec {
            a: a.to_string(),
            b: b.to_string(),
            link,
        });
        self
    }

    /// Makes `node` answer every address of `prefix` (IPv4 or IPv6) on its loopback:
    /// `ip route add local PREFIX dev lo`. Other nodes get routes to it.
    pub fn anyip(mut self, node: &str, prefix: &str) -> Self {
        self.anyip.push((node.to_string(), prefix.to_string()));
        self
    }

    /// Adds a static route on `node` to `prefix` via the address `via`, replacing a computed
    /// route to the same prefix.
    pub fn route(mut self, node: &str, prefix: &str, via: &str) -> Self {
        self.routes
            .push((node.to_string(), prefix.to_string(), via.to_string()));
        self
    }

    /// Sets a sysctl in `node`'s namespace before its interfaces are created, e.g.
    /// `("net.ipv4.ping_group_range", "0 2147483647")`.
    pub fn sysctl(mut self, node: &str, key: &str, value: &str) -> Self {
        self.sysctls
            .push((node.to_string(), key.to_string(), value.to_string()));
        self
    }

    /// Lets every user of `node` open unprivileged ICMP sockets (`ping_group_range 0 2147483647`).
    pub fn allow_unprivileged_ping(self, node: &str) -> Self {
        self.sysctl(node, "net.ipv4.ping_group_range", "0 2147483647")
    }

    /// Do not give single-link hosts a default route (only routes to known prefixes).
    pub fn no_default_routes(mut self) -> Self {
        self.default_routes = false;
        self
    }

    /// Creates the namespaces, links, addresses, AnyIP ranges, routes and impairers.
    pub fn build(self) -> Result<Topology> {
        let plan = Plan::new(&self)?;
        ns::cleanup_stale();
        let seq = TOPOLOGY_SEQ.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("{}{}-{}-", ns::PREFIX, std::process::id(), seq);
        let mut net = Topology {
            nodes: Vec::new(),
            links: Vec::new(),
            wires: Vec::new(),
        };
        net.create(&self, &plan, &prefix)?;
        Ok(net)
    }
}

static TOPOLOGY_SEQ: AtomicU32 = AtomicU32::new(0);

/// The checked, addressed form of a builder.
#[derive(Debug)]
struct Plan {
    index: HashMap<String, usize>,
    links: Vec<PlannedLink>,
    anyip: Vec<(usize, IpNet)>,
}

#[derive(Debug)]
struct PlannedLink {
    a: usize,
    b: usize,
    v4: Option<(Ipv4Net, Ipv4Addr, Ipv4Addr)>,
    v6: Option<(Ipv6Net, Ipv6Addr, Ipv6Addr)>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Plan {
    fn new(b: &TopologyBuilder) -> Result<Self> {
        let mut index = HashMap::new();
        for (i, n) in b.nodes.iter().enumerate() {
            if !valid_name(&n.name) {
                return Err(Error::Invalid(format!(
                    "node name '{}' must be 1–32 letters, digits, '-' or '_'",
                    n.name
                )));
            }
            if index.insert(n.name.clone(), i).is_some() {
                return Err(Error::Invalid(format!(
                    "node '{}' is declared twice",
                    n.name
                )));
            }
        }
        let node = |name: &str| {
            index
                .get(name)
                .copied()
                .ok_or_else(|| Error::Invalid(format!("unknown node '{name}'")))
        };
        let mut links = Vec::new();
        for l in &b.links {
            let (a, bb) = (node(&l.a)?, node(&l.b)?);
            if a == bb {
                return Err(Error::Invalid(format!("link from '{}' to itself", l.a)));
            }
            if l.link.v4.is_none() && l.link.v6.is_none() {
                return Err(Error::Invalid(format!(
                    "link {}–{} has neither an IPv4 nor an IPv6 prefix",
                    l.a, l.b
                )));
            }
            let v4 = match &l.link.v4 {
                None => None,
                Some(p) => {
                    let net: Ipv4Net = p.parse().map_err(|_| {
                        Error::Invalid(format!("'{p}' is not an IPv4 prefix like 10.1.1.0/24"))
                    })?;
                    if net.prefix_len() > 30 {
                        return Err(Error::Invalid(format!(
                            "link prefix {p} is too small: use /30 or larger"
                        )));
                    }
                    let base = u32::from(net.network());
                    Some((
                        net.trunc(),
                        Ipv4Addr::from(base + 1),
                        Ipv4Addr::from(base + 2),
                    ))
                }
            };
            let v6 = match &l.link.v6 {
                None => None,
                Some(p) => {
                    let net: Ipv6Net = p.parse().map_err(|_| {
                        Error::Invalid(format!("'{p}' is not an IPv6 prefix like fd00:1::/64"))
                    })?;
                    if net.prefix_len() > 126 {
                        return Err(Error::Invalid(format!(
                            "link prefix {p} is too small: use /126 or larger"
                        )));
                    }
                    let base = u128::from(net.network());
                    Some((
                        net.trunc(),
                        Ipv6Addr::from(base + 1),
                        Ipv6Addr::from(base + 2),
                    ))
                }
            };
            if let Some(imp) = l.link.ab {
                imp.validate()?;
            }
            if let Some(imp) = l.link.ba {
                imp.validate()?;
            }
            if let Some(mtu) = l.link.mtu
                && !(1280..=65_535).contains(&mtu)
            {
                return Err(Error::Invalid(format!(
                    "MTU {mtu} of link {}–{} is outside 1280–65535",
                    l.a, l.b
                )));
            }
            links.push(PlannedLink { a, b: bb, v4, v6 });
        }
        let mut anyip = Vec::new();
        for (n, p) in &b.anyip {
            let net: IpNet = p.parse().map_err(|_| {
                Error::Invalid(format!("AnyIP range '{p}' of '{n}' is not a prefix"))
            })?;
            anyip.push((node(n)?, net.trunc()));
        }
        for (n, p, via) in &b.routes {
            node(n)?;
            let net: IpNet = p.parse().map_err(|_| {
                Error::Invalid(format!("route prefix '{p}' of '{n}' is not a prefix"))
            })?;
            let via: IpAddr = via.parse().map_err(|_| {
                Error::Invalid(format!("route gateway '{via}' of '{n}' is not an address"))
            })?;
            if net.addr().is_ipv4() != via.is_ipv4() {
                return Err(Error::Invalid(format!(
                    "route {p} via {via} on '{n}' mixes IPv4 and IPv6"
                )));
            }
        }
        for (n, key, _) in &b.sysctls {
            node(n)?;
            if !key.starts_with("net.") {
                return Err(Error::Invalid(format!(
                    "sysctl '{key}' of '{n}' is not a network (per-namespace) sysctl"
                )));
            }
        }
        Ok(Plan {
            index,
            links,
            anyip,
        })
    }
}

/// One node as built.
#[derive(Debug)]
struct Node {
    name: String,
    kind: NodeKind,
    ns: Ns,
    addrs: Vec<IpAddr>,
}

/// One link as built.
#[derive(Debug)]
struct BuiltLink {
    a: usize,
    b: usize,
    if_a: String,
    if_b: String,
    v4: Option<(Ipv4Net, Ipv4Addr, Ipv4Addr)>,
    v6: Option<(Ipv6Net, Ipv6Addr, Ipv6Addr)>,
    impairer: Option<Impairer>,
    wire: Option<Ns>,
}

/// A running topology. Accessors take node names and panic with a clear message on a name
/// that is not in the topology (a bug in the test). Dropping it stops the impairers, kills the
/// processes still running inside its namespaces and deletes the namespaces (with their veths).
#[derive(Debug)]
pub struct Topology {
    nodes: Vec<Node>,
    links: Vec<BuiltLink>,
    wires: Vec<Ns>,
}

/// Sysctls every node gets before its first interface.
const BASE_SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv6.conf.all.accept_dad", "0"),
    ("net.ipv6.conf.default.accept_dad", "0"),
    ("net.ipv6.conf.all.dad_transmits", "0"),
    ("net.ipv6.conf.default.dad_transmits", "0"),
    ("net.ipv6.conf.all.accept_ra", "0"),
    ("net.ipv6.conf.default.accept_ra", "0"),
];

impl Topology {
    /// Starts describing a topology.
    pub fn builder() -> TopologyBuilder {
        TopologyBuilder::default()
    }

    /// Builds the topology a TOML scenario describes (see [`TopologyBuilder::from_toml`]).
    pub fn from_toml(text: &str) -> Result<Topology> {
        TopologyBuilder::from_toml(text)?.build()
    }

    fn create(&mut self, b: &TopologyBuilder, plan: &Plan, prefix: &str) -> Result<()> {
        // 1. Namespaces, all in one `ip -batch`.
        let mut batch = String::new();
        let node_ns: Vec<String> = b
            .nodes
            .iter()
            .map(|n| format!("{prefix}n-{}", n.name))
            .collect();
        let wire_ns: Vec<Option<String>> = b
            .links
            .iter()
            .enumerate()
            .map(|(i, l)| l.link.impaired().then(|| format!("{prefix}w-{i}")))
            .collect();
        for name in node_ns.iter().chain(wire_ns.iter().flatten()) {
            let _ = writeln!(batch, "netns add {name}");
        }
        let created = ip_batch(None, &batch);
        // Record every namespace that exists now, even if the batch failed half-way.
        for (spec, name) in b.nodes.iter().zip(&node_ns) {
            if std::path::Path::new("/run/netns").join(name).exists() {
                self.nodes.push(Node {
                    name: spec.name.clone(),
                    kind: spec.kind,
                    ns: Ns::new(name.clone()),
                    addrs: Vec::new(),
                });
            }
        }
        for name in wire_ns.iter().flatten() {
            if std::path::Path::new("/run/netns").join(name).exists() {
                self.wires.push(Ns::new(name.clone()));
            }
        }
        created?;

        // 2. Sysctls, before any interface exists.
        for (i, node) in self.nodes.iter().enumerate() {
            let mut set: Vec<(&str, &str)> = BASE_SYSCTLS.to_vec();
            if node.kind == NodeKind::Router {
                set.extend([
                    ("net.ipv4.ip_forward", "1"),
                    ("net.ipv6.conf.all.forwarding", "1"),
                    ("net.ipv6.conf.default.forwarding", "1"),
                ]);
            }
            for (n, k, v) in &b.sysctls {
                if plan.index[n] == i && !names_interface(k) {
                    set.push((k, v));
                }
            }
            for (k, v) in set {
                node.ns.set_sysctl(k, v)?;
            }
        }
        for wire in &self.wires {
            // The wire is a cable, not a host: it must not send anything of its own.
            wire.set_sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
            wire.set_sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
        }

        // 3. veth pairs, created directly inside their namespaces.
        let mut next_if = vec![0usize; self.nodes.len()];
        let mut veths = String::new();
        let mut offload = Vec::new();
        for (i, p) in plan.links.iter().enumerate() {
            let if_a = format!("eth{}", next_if[p.a]);
            next_if[p.a] += 1;
            let if_b = format!("eth{}", next_if[p.b]);
            next_if[p.b] += 1;
            let (na, nb) = (&node_ns[p.a], &node_ns[p.b]);
            match &wire_ns[i] {
                None => {
                    let _ = writeln!(
                        veths,
                        "link add name {if_a} netns {na} type veth peer name {if_b} netns {nb}"
                    );
                }
                Some(w) => {
                    let _ = writeln!(
                        veths,
                        "link add name {if_a} netns {na} type veth peer name wa netns {w}"
                    );
                    let _ = writeln!(
                        veths,
                        "link add name {if_b} netns {nb} type veth peer name wb netns {w}"
                    );
                    offload.extend([
                        (na.clone(), if_a.clone()),
                        (nb.clone(), if_b.clone()),
                        (w.clone(), "wa".to_string()),
                        (w.clone(), "wb".to_string()),
                    ]);
                }
            }
            self.links.push(BuiltLink {
                a: p.a,
                b: p.b,
                if_a,
                if_b,
                v4: p.v4,
                v6: p.v6,
                impairer: None,
                wire: wire_ns[i].as_ref().map(|w| Ns::new(w.clone())),
            });
        }
        if !veths.is_empty() {
            ip_batch(None, &veths)?;
        }
        for (ns, dev) in &offload {
            cmd::run(
                "ip",
                &[
                    "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso",
                    "off", "gro", "off",
                ],
            )?;
        }

        // 4. Addresses, MTU, links up, AnyIP ranges.
        let mut per_ns: Vec<String> = vec![String::from("link set lo up\n"); self.nodes.len()];
        for (l, spec) in self.links.iter().zip(&b.links) {
            for (node, dev, v4, v6) in [
                (
                    l.a,
                    &l.if_a,
                    l.v4.map(|x| (x.0, x.1)),
                    l.v6.map(|x| (x.0, x.1)),
                ),
                (
                    l.b,
                    &l.if_b,
                    l.v4.map(|x| (x.0, x.2)),
                    l.v6.map(|x| (x.0, x.2)),
                ),
            ] {
                let s = &mut per_ns[node];
                if let Some((net, addr)) = v4 {
                    let _ = writeln!(s, "addr add {addr}/{} dev {dev}", net.prefix_len());
                    self.nodes[node].addrs.push(IpAddr::V4(addr));
                }
                if let Some((net, addr)) = v6 {
                    let _ = writeln!(s, "addr add {addr}/{} dev {dev} nodad", net.prefix_len());
                    self.nodes[node].addrs.push(IpAddr::V6(addr));
                }
                if let Some(mtu) = spec.link.mtu {
                    let _ = writeln!(s, "link set {dev} mtu {mtu}");
                }
                let _ = writeln!(s, "link set {dev} up");
            }
        }
        for (node, net) in &plan.anyip {
            let _ = writeln!(per_ns[*node], "route add local {net} dev lo");
        }
        for (i, text) in per_ns.iter().enumerate() {
            ip_batch(Some(&self.nodes[i].ns), text)?;
        }
        for (l, spec) in self.links.iter().zip(&b.links) {
            if let Some(w) = &l.wire {
                let mut text = String::from("link set lo up\n");
                for dev in ["wa", "wb"] {
                    if let Some(mtu) = spec.link.mtu {
                        let _ = writeln!(text, "link set {dev} mtu {mtu}");
                    }
                    let _ = writeln!(text, "link set {dev} up");
                }
                ip_batch(Some(w), &text)?;
            }
        }

        // Sysctls of one interface (net.ipv6.conf.eth0.…) can only be set now.
        for (n, k, v) in &b.sysctls {
            if names_interface(k) {
                self.nodes[plan.index[n]].ns.set_sysctl(k, v)?;
            }
        }

        // 5. Impairers (before routes, so nothing is sent across an unforwarded wire).
        for (l, spec) in self.links.iter_mut().zip(&b.links) {
            if let Some(w) = &l.wire {
                l.impairer = Some(Impairer::start(
                    w,
                    spec.link.ab.unwrap_or_default(),
                    spec.link.ba.unwrap_or_default(),
                )?);
            }
        }

        // 6. Routes: computed, then default routes, then explicit ones.
        let mut routes: Vec<String> = vec![String::new(); self.nodes.len()];
        let mut prefixes: Vec<(IpNet, Vec<usize>)> = Vec::new();
        for l in &self.links {
            if let Some((net, ..)) = l.v4 {
                prefixes.push((IpNet::V4(net), vec![l.a, l.b]));
            }
            if let Some((net, ..)) = l.v6 {
                prefixes.push((IpNet::V6(net), vec![l.a, l.b]));
            }
        }
        for (node, net) in &plan.anyip {
            prefixes.push((*net, vec![*node]));
        }
        for (from, node_routes) in routes.iter_mut().enumerate() {
            for (net, owners) in &prefixes {
                if owners.contains(&from) {
                    continue;
                }
                if let Some(via) = self.next_hop(from, owners, net.addr().is_ipv4()) {
                    let _ = writeln!(node_routes, "route replace {net} via {via}");
                }
            }
            let links: Vec<&BuiltLink> = self
                .links
                .iter()
                .filter(|l| l.a == from || l.b == from)
                .collect();
            if b.default_routes && self.nodes[from].kind == NodeKind::Host && links.len() == 1 {
                let l = links[0];
                let peer_v4 = if l.a == from {
                    l.v4.map(|x| x.2)
                } else {
                    l.v4.map(|x| x.1)
                };
                let peer_v6 = if l.a == from {
                    l.v6.map(|x| x.2)
                } else {
                    l.v6.map(|x| x.1)
                };
                if let Some(gw) = peer_v4 {
                    let _ = writeln!(node_routes, "route replace 0.0.0.0/0 via {gw}");
                }
                if let Some(gw) = peer_v6 {
                    let _ = writeln!(node_routes, "route replace ::/0 via {gw}");
                }
            }
        }
        for (n, p, via) in &b.routes {
            let _ = writeln!(routes[plan.index[n]], "route replace {p} via {via}");
        }
        for (i, text) in routes.iter().enumerate() {
            if !text.is_empty() {
                ip_batch(Some(&self.nodes[i].ns), text)?;
            }
        }

        // 7. Wait until every interface is operationally up. The kernel reports carrier
        // changes through "linkwatch", which batches them up to a second later; until then
        // IPv6 treats the link as not ready and silently drops neighbour discovery.
        let all: Vec<&Ns> = self
            .nodes
            .iter()
            .map(|n| &n.ns)
            .chain(&self.wires)
            .collect();
        wait_until_up(&all)
    }

    /// The neighbour address on the first link of a shortest path from `from` to any of
    /// `owners`, through routers only, in the given family.
    fn next_hop(&self, from: usize, owners: &[usize], v4: bool) -> Option<IpAddr> {
        // Breadth-first search remembering, for every reached node, the first hop taken.
        let mut first: Vec<Option<IpAddr>> = vec![None; self.nodes.len()];
        let mut seen = vec![false; self.nodes.len()];
        seen[from] = true;
        let mut queue = VecDeque::from([from]);
        while let Some(n) = queue.pop_front() {
            if n != from && owners.contains(&n) {
                return first[n];
            }
            if n != from && self.nodes[n].kind != NodeKind::Router {
                continue;
            }
            for l in &self.links {
                let (peer, peer_addr) = if l.a == n {
                    (l.b, family_addr(l, false, v4))
                } else if l.b == n {
                    (l.a, family_addr(l, true, v4))
                } else {
                    continue;
                };
                let Some(peer_addr) = peer_addr else { continue };
                if seen[peer] {
                    continue;
                }
                seen[peer] = true;
                first[peer] = if n == from { Some(peer_addr) } else { first[n] };
                queue.push_back(peer);
            }
        }
        None
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("topology has no node named '{name}'"))
    }

    fn node_index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("topology has no node named '{name}'"))
    }

    /// The first link declared between `a` and `b` (in either order), and whether `a` is its
    /// first node.
    fn link_between(&self, a: &str, b: &str) -> (&BuiltLink, bool) {
        let (ia, ib) = (self.node_index(a), self.node_index(b));
        self.links
            .iter()
            .find_map(|l| {
                if (l.a, l.b) == (ia, ib) {
                    Some((l, true))
                } else if (l.a, l.b) == (ib, ia) {
                    Some((l, false))
                } else {
                    None
                }
            })
            .unwrap_or_else(|| panic!("topology has no link between '{a}' and '{b}'"))
    }

    /// The namespace of a node.
    pub fn ns(&self, node: &str) -> &Ns {
        &self.node(node).ns
    }

    /// The names of the nodes, in declaration order.
    pub fn nodes(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    /// Every address of a node on its links, in link order (IPv4 before IPv6 on each link).
    /// AnyIP ranges are not listed.
    pub fn addrs(&self, node: &str) -> &[IpAddr] {
        &self.node(node).addrs
    }

    /// The `i`-th address of a node (see [`addrs`](Self::addrs)).
    pub fn addr(&self, node: &str, i: usize) -> IpAddr {
        let addrs = self.addrs(node);
        *addrs
            .get(i)
            .unwrap_or_else(|| panic!("node '{node}' has only {} addresses", addrs.len()))
    }

    /// The first IPv4 address of a node.
    pub fn v4(&self, node: &str) -> Ipv4Addr {
        self.addrs(node)
            .iter()
            .find_map(|a| match a {
                IpAddr::V4(v) => Some(*v),
                IpAddr::V6(_) => None,
            })
            .unwrap_or_else(|| panic!("node '{node}' has no IPv4 address"))
    }

    /// The first IPv6 address of a node.
    pub fn v6(&self, node: &str) -> Ipv6Addr {
        self.addrs(node)
            .iter()
            .find_map(|a| match a {
                IpAddr::V6(v) => Some(*v),
                IpAddr::V4(_) => None,
            })
            .unwrap_or_else(|| panic!("node '{node}' has no IPv6 address"))
    }

    /// The IPv4 address of `node` on its link with `peer`.
    pub fn link_v4(&self, node: &str, peer: &str) -> Ipv4Addr {
        let (l, first) = self.link_between(node, peer);
        let (_, a, b) =
            l.v4.unwrap_or_else(|| panic!("link {node}–{peer} has no IPv4 prefix"));
        if first { a } else { b }
    }

    /// The IPv6 address of `node` on its link with `peer`.
    pub fn link_v6(&self, node: &str, peer: &str) -> Ipv6Addr {
        let (l, first) = self.link_between(node, peer);
        let (_, a, b) =
            l.v6.unwrap_or_else(|| panic!("link {node}–{peer} has no IPv6 prefix"));
        if first { a } else { b }
    }

    /// The interface name of `node` on its link with `peer` (`eth0`, `eth1` …).
    pub fn iface(&self, node: &str, peer: &str) -> &str {
        let (l, first) = self.link_between(node, peer);
        if first { &l.if_a } else { &l.if_b }
    }

    fn impairer(&self, a: &str, b: &str) -> (&Impairer, bool) {
        let (l, first) = self.link_between(a, b);
        let imp = l.impairer.as_ref().unwrap_or_else(|| {
            panic!(
                "link {a}–{b} has no impairer: declare it with .impair(…) (Impairment::none() \
                 to impair it only later)"
            )
        });
        (imp, first)
    }

    /// Changes the impairment of the traffic going from `from` to `to` on their (impaired)
    /// link, while it runs. Frames already queued keep their due time.
    pub fn set_impairment(&self, from: &str, to: &str, imp: Impairment) -> Result<()> {
        let (i, first) = self.impairer(from, to);
        i.set(
            if first {
                Direction::AtoB
            } else {
                Direction::BtoA
            },
            imp,
        )
    }

    /// The impairment currently applied from `from` to `to`.
    pub fn impairment(&self, from: &str, to: &str) -> Impairment {
        let (i, first) = self.impairer(from, to);
        i.params(if first {
            Direction::AtoB
        } else {
            Direction::BtoA
        })
    }

    /// Counters and timing error of the impairer of the link between `a` and `b`; `a_to_b`
    /// is the direction from the first argument to the second.
    pub fn impairer_stats(&self, a: &str, b: &str) -> LinkStats {
        let (i, first) = self.impairer(a, b);
        let s = i.stats();
        if first {
            s
        } else {
            LinkStats {
                a_to_b: s.b_to_a,
                b_to_a: s.a_to_b,
            }
        }
    }

    /// The namespace in the middle of an impaired link (for inspection only).
    pub fn wire(&self, a: &str, b: &str) -> Option<&Ns> {
        self.link_between(a, b).0.wire.as_ref()
    }
}

/// Whether a sysctl key is about one interface (`net.ipv4.conf.eth0.rp_filter`), which exists
/// only once the interfaces do.
fn names_interface(key: &str) -> bool {
    let parts: Vec<&str> = key.split('.').collect();
    parts.len() >= 5
        && (parts[2] == "conf" || parts[2] == "neigh")
        && !matches!(parts[3], "all" | "default")
}

fn family_addr(l: &BuiltLink, want_a: bool, v4: bool) -> Option<IpAddr> {
    if v4 {
        l.v4.map(|(_, a, b)| IpAddr::V4(if want_a { a } else { b }))
    } else {
        l.v6.map(|(_, a, b)| IpAddr::V6(if want_a { a } else { b }))
    }
}

/// How long interfaces may take to come up before the build fails.
const UP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Polls `ip -o link` in every namespace until all interfaces but `lo` are `state UP`.
fn wait_until_up(all: &[&Ns]) -> Result<()> {
    let deadline = std::time::Instant::now() + UP_TIMEOUT;
    for ns in all {
        loop {
            let links = ns.ip(&["-o", "link", "show"])?;
            let down: Vec<&str> = links
                .lines()
                .filter(|l| !l.contains(" lo:") && !l.contains("state UP"))
                .collect();
            if down.is_empty() {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::Invalid(format!(
                    "interfaces of {} did not come up within {:?}: {}",
                    ns.name(),
                    UP_TIMEOUT,
                    down.join("; ")
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    Ok(())
}

/// Runs `ip [-n NS] -batch -` with `text` on stdin.
fn ip_batch(ns: Option<&Ns>, text: &str) -> Result<()> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut c = Command::new("ip");
    if let Some(ns) = ns {
        c.args(["-n", ns.name()]);
    }
    c.args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|source| Error::Spawn {
        program: "ip".to_string(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| Error::io("cannot feed commands to `ip -batch`", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io("`ip -batch` did not finish", e))?;
    if out.status.success() {
        return Ok(());
    }
    let ns = ns.map(|n| format!("-n {} ", n.name())).unwrap_or_default();
    Err(Error::Command {
        command: format!("ip {ns}-batch - <<EOF\n{text}EOF"),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

impl Drop for Topology {
    fn drop(&mut self) {
        for l in &mut self.links {
            if let Some(mut i) = l.impairer.take() {
                i.stop();
            }
        }
        let all: Vec<&Ns> = self
            .nodes
            .iter()
            .map(|n| &n.ns)
            .chain(&self.wires)
            .collect();
        for ns in &all {
            ns.kill_processes();
        }
        let mut batch = String::new();
        for ns in &all {
            let _ = writeln!(batch, "netns del {}", ns.name());
        }
        if !batch.is_empty() && ip_batch_force(&batch).is_err() {
            for ns in all {
                ns::destroy(ns);
            }
        }
    }
}

/// `ip -force -batch -`: goes on after a failed line (a namespace already gone).
fn ip_batch_force(text: &str) -> Result<()> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("ip")
        .args(["-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| Error::Spawn {
            program: "ip".to_string(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(text.as_bytes());
    }
    let status = child
        .wait()
        .map_err(|e| Error::io("`ip -batch` did not finish", e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Invalid(
            "some namespaces could not be deleted".into(),
        ))
    }
}
