#!/usr/bin/env bash
# IP → ASN lookups per second and resident memory with a full real table (ip-location-db:
# ~412k IPv4 and ~103k IPv6 ranges, fetched by bench/lookup-asn-setup.sh), against peers doing
# the same work on the same addresses in the same run:
#   python-bisect  Python's bisect over the same table (the usual scripted approach)
#   maxminddb      the maxminddb crate on ip-location-db's country MMDB (a compiled lookup
#                  format, same addresses; it answers a country, not an AS)
# Each driver runs RUNS times under /usr/bin/time -v; the table shows medians: lookups/s (best
# of 3 rounds inside a run), table load time, wall and CPU seconds of the whole run, peak RSS
# and the RSS the table adds over the addresses alone, with ratios to Vantage. It also times
# the install (`vantage data update asn`) and a one-shot `vantage asn IP` (cold start), and
# checks that Vantage and the bisect peer agree on the hits.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
N4=${N4:-1000000}
N6=${N6:-200000}
out=bench/out/lookup
res=$out/results
bench/lookup-asn-setup.sh >/dev/null

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
echo "==> cargo build --release (vantage, asn_bench)" >&2
cargo build --release --locked -q -p vantage --bin vantage
cargo build --release --locked -q -p vantage-lookup --example asn_bench
bin=$CARGO_TARGET_DIR/release
rm -rf "$res" "$out/data"
mkdir -p "$res"

timed() { # name run -- command...: stdout to $res/name.run.json, time -v to $res/name.run.time
    local name=$1 run=$2
    shift 3
    /usr/bin/time -v -o "$res/$name.$run.time" "$@" >"$res/$name.$run.json"
}

echo "==> install: vantage data update asn (x$RUNS)" >&2
for i in $(seq "$RUNS"); do
    rm -rf "$out/data"
    timed install "$i" -- "$bin/vantage" data update asn --json --data-dir "$out/data" \
        --from "$out/asn/asn-ipv4.csv" --from "$out/asn/asn-ipv6.csv"
done

echo "==> addresses: $N4 IPv4 + $N6 IPv6" >&2
python3 bench/lookup_asn_addrs.py "$out/asn/asn-ipv6-num.csv" "$N4" "$N6" >"$out/addrs.txt"

echo "==> lookups ($RUNS runs of each driver, interleaved)" >&2
for i in $(seq "$RUNS"); do
    timed vantage "$i" -- "$bin/examples/asn_bench" vantage "$out/data" "$out/addrs.txt"
    timed vantage-baseline "$i" -- "$bin/examples/asn_bench" none - "$out/addrs.txt"
    timed python-bisect "$i" -- python3 bench/lookup_asn_bisect.py \
        "$out/asn/asn-ipv4-num.csv" "$out/asn/asn-ipv6-num.csv" "$out/addrs.txt"
    timed python-baseline "$i" -- python3 bench/lookup_asn_bisect.py --baseline "$out/addrs.txt"
    timed maxminddb "$i" -- "$bin/examples/asn_bench" mmdb \
        "$out/country/geo-whois-asn-country.mmdb" "$out/addrs.txt"
    timed cli "$i" -- "$bin/vantage" asn --json --data-dir "$out/data" 193.0.6.139
done

python3 bench/lookup_asn_report.py "$res" "$RUNS"
