#!/usr/bin/env python3
"""Prints the table of bench/lookup-asn.sh from its result files (medians over the runs)."""
import json
import re
import statistics
import sys

res, runs = sys.argv[1], int(sys.argv[2])


def time_v(path):
    text = open(path).read()

    def num(label):
        m = re.search(re.escape(label) + r": (.+)", text)
        return m.group(1).strip() if m else "0"

    wall = num("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    parts = [float(p) for p in wall.split(":")]
    secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    cpu = float(num("User time (seconds)")) + float(num("System time (seconds)"))
    return {"wall_s": secs, "cpu_s": cpu, "rss_mb": int(num("Maximum resident set size (kbytes)")) / 1024}


def collect(name):
    rows = []
    for i in range(1, runs + 1):
        row = time_v(f"{res}/{name}.{i}.time")
        lines = open(f"{res}/{name}.{i}.json").read().strip().splitlines()
        if lines:
            try:
                row.update(json.loads(lines[-1]))
            except json.JSONDecodeError:
                pass
        rows.append(row)
    return rows


def med(rows, key):
    vals = [r[key] for r in rows if key in r]
    return statistics.median(vals) if vals else float("nan")


drivers = {n: collect(n) for n in
           ["vantage", "vantage-baseline", "python-bisect", "python-baseline", "maxminddb", "install", "cli"]}
v = drivers["vantage"]
base_rust = med(drivers["vantage-baseline"], "rss_mb")
base_py = med(drivers["python-baseline"], "rss_mb")
print()
print(f"IP -> ASN lookups, {v[0].get('addresses')} addresses, median of {runs} runs")
print()
hdr = f"{'driver':<15}{'lookups/s':>13}{'ratio':>8}{'load ms':>10}{'wall s':>9}{'cpu s':>8}{'RSS MB':>9}{'table MB':>10}"
print(hdr)
print("-" * len(hdr))
vl = med(v, "lookups_per_s")
for name, base in [("vantage", base_rust), ("python-bisect", base_py), ("maxminddb", base_rust)]:
    rows = drivers[name]
    lps = med(rows, "lookups_per_s")
    print(f"{name:<15}{lps:>13,.0f}{vl / lps:>7.1f}x{med(rows, 'load_ms'):>10.1f}{med(rows, 'wall_s'):>9.2f}"
          f"{med(rows, 'cpu_s'):>8.2f}{med(rows, 'rss_mb'):>9.1f}{med(rows, 'rss_mb') - base:>10.1f}")
print()
print("ratio = Vantage lookups/s divided by the driver's; table MB = peak RSS minus the same")
print("process holding only the addresses (Rust baseline %.1f MB, Python baseline %.1f MB)." % (base_rust, base_py))
print()
ins = drivers["install"]
cli = drivers["cli"]
print(f"install  vantage data update asn (CSV -> asn.bin): wall {med(ins, 'wall_s'):.2f} s, "
      f"cpu {med(ins, 'cpu_s'):.2f} s, peak RSS {med(ins, 'rss_mb'):.1f} MB")
print(f"one-shot vantage asn 193.0.6.139 (cold start, load + lookup + print): wall {med(cli, 'wall_s'):.3f} s, "
      f"peak RSS {med(cli, 'rss_mb'):.1f} MB")
p = drivers["python-bisect"]
same_hits = all(a.get("hits") == b.get("hits") for a, b in zip(v, p))
same_sum = all(a.get("checksum") == b.get("checksum") for a, b in zip(v, p))
print(f"agreement with python-bisect: hits {v[0].get('hits')} vs {p[0].get('hits')} "
      f"({'same' if same_hits else 'DIFFERENT'}), AS checksum {'same' if same_sum else 'DIFFERENT'}")
