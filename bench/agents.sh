#!/usr/bin/env bash
# The agents benchmark (issue 4): N real agents (the real agent code, real TLS 1.3 with client
# certificates from the real enrolment API, several agents per process) connected over loopback
# to a real server in its own process; one ping measurement (127.0.0.1, count 1) to all of them;
# the time from the API call to the last result stored (the stream's end event, which the server
# sends only after the commit holding the last result), p50 / p99 / max over repeated runs, and
# the server's RSS (idle with N agents, after the runs, peak) and CPU from /proc.
#
# Goal: p99 <= 1 s at 1000 agents. There is no classic peer for this work, so the table gives
# absolute figures on this machine; the breakdown columns (created, first result, commits, CPU)
# say where the time goes.
#
# Usage: bench/agents.sh [agents_bench bench options]   (defaults: --agents 100,1000 --runs 20)
#   e.g. bench/agents.sh --agents 1000 --runs 20 --procs 4
#        bench/agents.sh --no-agent-fsync        # agents do not fsync their outbox
# Run as root for raw ICMP sockets (the agents then use raw sockets, as a privileged agent
# does); as another user the agents fall back to unprivileged ICMP sockets, which need
# net.ipv4.ping_group_range to include the user's group.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
echo "==> building the harness (release)" >&2
cargo build --release --locked -q -p vantage-server --example agents_bench
bin="$CARGO_TARGET_DIR/release/examples/agents_bench"

# A thousand agents and their links need a few thousand descriptors (the harness also raises its
# soft limit to the hard one).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "==> command: CARGO_TARGET_DIR=$CARGO_TARGET_DIR bench/agents.sh $*"
echo "==> machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg), kernel $(uname -r), user $(id -un)"
exec "$bin" bench "$@"
