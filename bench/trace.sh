#!/usr/bin/env bash
# vantage trace / vantage mtr against traceroute and mtr on an 8-hop chain of router namespaces
# (vantage-testnet), same run, medians of several runs, wall and CPU time, peak RSS, ratios.
# Needs root and the mtr-tiny and traceroute packages.
# Usage: bench/trace.sh [--runs N] [--repeated N]      (defaults: 7 runs, 4 back-to-back runs)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p vantage --bin vantage --example bench_trace
target="${CARGO_TARGET_DIR:-target}/release"
exec "$target/examples/bench_trace" --vantage "$target/vantage" "$@"
