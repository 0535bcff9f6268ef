#!/usr/bin/env python3
"""The peer of bench/lookup-asn.sh: IP → ASN with Python's bisect over the same table
(ip-location-db's numeric CSVs), the way a script would do it. Prints one JSON line like the
Rust driver (load time, best of ROUNDS rounds, lookups per second, hits, checksum).

usage: lookup_asn_bisect.py ASN_IPV4_NUM_CSV ASN_IPV6_NUM_CSV ADDRS [ROUNDS]
       lookup_asn_bisect.py --baseline ADDRS      (the addresses alone: the memory baseline)
"""
import bisect
import ipaddress
import json
import sys
import time


def load(path):
    starts, ends, asns = [], [], []
    with open(path) as f:
        for line in f:
            s, e, a, _ = line.split(",", 3)
            starts.append(int(s))
            ends.append(int(e))
            asns.append(int(a))
    return starts, ends, asns


def addresses(path):
    out = []
    with open(path) as f:
        for line in f:
            a = ipaddress.ip_address(line.strip())
            out.append((a.version == 6, int(a)))
    return out


if sys.argv[1] == "--baseline":
    addrs = addresses(sys.argv[2])
    print(json.dumps({"mode": "python-baseline", "addresses": len(addrs)}))
    sys.exit(0)

v4_path, v6_path, addr_path = sys.argv[1:4]
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
addrs = addresses(addr_path)
t0 = time.perf_counter()
t4 = load(v4_path)
t6 = load(v6_path)
load_ms = (time.perf_counter() - t0) * 1e3
best = float("inf")
hits = checksum = 0
for _ in range(rounds):
    hits = checksum = 0
    t = time.perf_counter()
    br = bisect.bisect_right
    for is6, x in addrs:
        starts, ends, asns = t6 if is6 else t4
        i = br(starts, x) - 1
        if i >= 0 and x <= ends[i]:
            hits += 1
            checksum += asns[i]
    best = min(best, time.perf_counter() - t)
print(json.dumps({
    "mode": "python-bisect",
    "addresses": len(addrs),
    "load_ms": round(load_ms, 1),
    "best_round_s": round(best, 4),
    "lookups_per_s": round(len(addrs) / best),
    "hits": hits,
    "checksum": checksum,
}))
