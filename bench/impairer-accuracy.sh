#!/usr/bin/env bash
# Accuracy and throughput of the test bed's userspace link impairer, measured with iputils ping
# (there is no netem on these kernels to compare with; ping across a plain veth is the baseline).
# Needs root. Usage: bench/impairer-accuracy.sh [PINGS_PER_ROW]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p vantage-testnet --example impairer_accuracy
exec "${CARGO_TARGET_DIR:-target}/release/examples/impairer_accuracy" "$@"
