//! Holds a test-bed topology up for benchmark scripts in `bench/`: builds it from a TOML scenario
//! (see `vantage_testnet`), prints one `NODE NAMESPACE` line per node and then `ready`, keeps
//! it until its standard input closes, and tears it down (namespaces, links, impairers).
//!
//! ```sh
//! cargo run --release -p vantage --example testbed -- scenario.toml
//! ```

use std::io::{Read, Write};

use anyhow::Context;
use vantage_testnet::Topology;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: testbed SCENARIO.toml")?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let net = Topology::from_toml(&text).with_context(|| format!("cannot build {path}"))?;
    let mut out = std::io::stdout().lock();
    for node in net.nodes() {
        writeln!(out, "{node} {}", net.ns(node).name())?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    // Until the script closes our stdin (or dies).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(net);
    Ok(())
}
