#!/usr/bin/env bash
# vantage dns vs dig and vantage http vs curl on the same local servers, same run: wall time, CPU
# time and peak RSS per invocation (medians over rounds, ratios to the peer), and the timings each
# tool reports for servers with a known delay. Traffic stays on loopback.
# Needs dig (dnsutils), curl and GNU time. Usage: bench/dns-http.sh [ROUNDS] [CALLS]  (default 5 20)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p vantage --bin vantage
cargo build --release -q -p vantage-testnet --example dns_http_bench
target="${CARGO_TARGET_DIR:-target}/release"
exec "$target/examples/dns_http_bench" "$(realpath "$target/vantage")" "$@"
