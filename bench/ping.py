#!/usr/bin/env python3
"""Benchmarks `vantage ping` against fping (sweep) and iputils ping (single-target accuracy).

Builds the release binary, brings up a test bed (a namespace whose loopback answers
10.200.0.0/16, and a link the userspace impairer delays by --delay-ms each way), then in the
same run, interleaved so both tools see the same machine:

* sweep: 60 000 AnyIP targets, one echo request each, `vantage ping -c 1 -f FILE` against
  `fping -i 0 -c 1 -f FILE`, and `--json` against `fping -q`: wall time (a monotonic clock
  around the whole command), CPU seconds (user + system, from the kernel's child accounting
  in microseconds), peak RSS from /usr/bin/time -v, targets answered; medians of --runs. Both
  times include the `ip netns exec` and /usr/bin/time wrappers (about 2 ms, the same for every
  tool), which /usr/bin/time's own 10 ms figures would round away;
* accuracy: vantage and iputils ping through the delayed link in alternating rounds; median
  RTT of each, their difference in microseconds, and each median's distance from the round
  trip the impairer adds. The default delay keeps the round trip under 1 ms, where iputils
  prints microseconds (from 1 ms it prints 10 µs steps, from 10 ms 100 µs steps).

Prints a table of medians and ratios (vantage / peer). Needs root (namespaces, raw sockets),
fping, iputils-ping and /usr/bin/time (Debian: apt-get install fping iputils-ping time).

    sudo bench/ping.py [--runs 5] [--targets 60000] [--accuracy-rounds 6] [--delay-ms 0.4]
"""

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def die(msg):
    print(f"bench/ping.py: {msg}", file=sys.stderr)
    sys.exit(2)


def build():
    print("==> cargo build --release (vantage, examples/testbed)", file=sys.stderr)
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "-p", "vantage", "--bin", "vantage",
         "--example", "testbed"],
        cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return (os.path.join(target, "release", "vantage"),
            os.path.join(target, "release", "examples", "testbed"))


# Two beds, one after the other: the sweep's has nothing but the AnyIP namespace, so no
# impairer thread shares the machine's cores with the sweeps (vantage's sweep uses every core;
# fping uses one and would not notice).
SWEEP_SCENARIO = """
[[node]]
name = "sweep"
anyip = ["10.200.0.0/16"]
"""

ACCURACY_SCENARIO = """
[[node]]
name = "a"

[[node]]
name = "b"

[[link]]
a = "a"
b = "b"
v4 = "10.202.0.0/24"
impair = {{ delay_ms = {delay} }}
"""


class Bed:
    """A bench topology (a scenario above), held up by the testbed example until closed."""

    def __init__(self, testbed, scenario, tmp):
        path = os.path.join(tmp, "bed.toml")
        with open(path, "w") as f:
            f.write(scenario)
        self.proc = subprocess.Popen([testbed, path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ns = {}
        for line in self.proc.stdout:
            line = line.strip()
            if line == "ready":
                return
            node, name = line.split()
            self.ns[node] = name
        die("the test bed did not come up")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def timed(ns, argv, stdout_path, stderr_path):
    """Runs argv in namespace ns under /usr/bin/time -v; returns (wall s, cpu s, rss KiB)."""
    tfile = tempfile.NamedTemporaryFile(prefix="vbench-time-", delete=False)
    tfile.close()
    with open(stdout_path, "w") as out, open(stderr_path, "w") as err:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/time", "-v", "-o", tfile.name]
                       + argv, stdout=out, stderr=err, check=False)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = open(tfile.name).read()
    os.unlink(tfile.name)

    def field(name):
        m = re.search(rf"{re.escape(name)}: (.+)", text)
        if not m:
            die(f"no '{name}' in /usr/bin/time output:\n{text}")
        return m.group(1).strip()

    rss = int(field("Maximum resident set size (kbytes)"))
    return wall, cpu, rss


def answered_vantage_text(out, err):
    m = re.search(r"^(\d+) of (\d+) targets answered", open(out).read(), re.M)
    return int(m.group(1)) if m else 0


def answered_vantage_json(out, err):
    return sum(1 for line in open(out) if json.loads(line)["outcome"] == "ok")


def answered_fping(out, err):
    # Per-target summaries on stderr: "10.200.0.1 : xmt/rcv/%loss = 1/1/0%, min/avg/max = …"
    return sum(1 for line in open(err) if re.search(r"xmt/rcv/%loss = \d+/[1-9]\d*/", line))


def sweep(bed, vantage, fping, targets, runs, tmp):
    path = os.path.join(tmp, "targets.txt")
    with open(path, "w") as f:
        for i in range(targets):
            f.write(f"10.200.{i // 250}.{i % 250 + 1}\n")
    variants = {
        "vantage ping -c 1 -f": ([vantage, "ping", "-c", "1", "-f", path], answered_vantage_text),
        "fping -i 0 -c 1 -f": ([fping, "-i", "0", "-c", "1", "-f", path], answered_fping),
        "vantage ping -c 1 --json -f": ([vantage, "ping", "-c", "1", "--json", "-f", path],
                                        answered_vantage_json),
        "fping -i 0 -c 1 -q -f": ([fping, "-i", "0", "-c", "1", "-q", "-f", path],
                                  answered_fping),
    }
    samples = {k: [] for k in variants}
    names = list(variants)
    for r in range(runs):
        # Alternate the order so neither tool always runs on a warmer or colder machine.
        for name in (names if r % 2 == 0 else list(reversed(names))):
            argv, count = variants[name]
            out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
            wall, cpu, rss = timed(bed.ns["sweep"], argv, out, err)
            samples[name].append((wall, cpu, rss, count(out, err)))
            print(f"  run {r + 1} {name}: {wall:.3f} s wall, {cpu:.3f} s CPU, "
                  f"{rss / 1024:.1f} MiB, {samples[name][-1][3]} answered", file=sys.stderr)
    return samples


def accuracy(bed, vantage, iputils, rounds, count):
    b = "10.202.0.2"
    ours, theirs = [], []
    for _ in range(rounds):
        out = subprocess.run(["ip", "netns", "exec", bed.ns["a"], vantage, "ping", "-c",
                              str(count), "-i", "0.01", "--json", b],
                             capture_output=True, text=True, check=True).stdout
        ours += [p["rtt_ms"] for p in json.loads(out)["detail"]["replies"]]
        out = subprocess.run(["ip", "netns", "exec", bed.ns["a"], iputils, "-n", "-c",
                              str(count), "-i", "0.01", b],
                             capture_output=True, text=True, check=False).stdout
        theirs += [float(m) for m in re.findall(r"time=([\d.]+) ms", out)]
    return ours, theirs


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="sweep runs per tool (median)")
    ap.add_argument("--targets", type=int, default=60000, help="sweep size (≤ 65 000)")
    ap.add_argument("--accuracy-rounds", type=int, default=6,
                    help="alternating rounds of 50 pings per tool on the delayed link")
    ap.add_argument("--delay-ms", type=float, default=0.4,
                    help="one-way delay of the accuracy link, in ms")
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("needs root: it creates network namespaces and uses raw sockets")
    for tool in ("fping", "ping", "ip"):
        if not shutil.which(tool):
            die(f"needs {tool} (apt-get install fping iputils-ping iproute2)")
    if not os.access("/usr/bin/time", os.X_OK):
        die("needs /usr/bin/time (apt-get install time)")
    vantage, testbed = build()
    with tempfile.TemporaryDirectory(prefix="vbench-") as tmp:
        bed = Bed(testbed, SWEEP_SCENARIO, tmp)
        try:
            print(f"==> sweep of {args.targets} AnyIP targets, {args.runs} runs each",
                  file=sys.stderr)
            s = sweep(bed, vantage, shutil.which("fping"), args.targets, args.runs, tmp)
        finally:
            bed.close()
        bed = Bed(testbed, ACCURACY_SCENARIO.format(delay=args.delay_ms), tmp)
        try:
            print(f"==> single-target accuracy through a link delayed {args.delay_ms} ms "
                  "each way", file=sys.stderr)
            ours, theirs = accuracy(bed, vantage, shutil.which("ping"), args.accuracy_rounds, 50)
        finally:
            bed.close()

    print()
    print(f"Sweep: {args.targets} targets, one echo request each, median of {args.runs} runs")
    print(f"{'command':<30} {'wall s':>8} {'CPU s':>8} {'RSS MiB':>8} {'answered':>9}")
    summary = {}
    for name, xs in s.items():
        wall, cpu, rss = med([x[0] for x in xs]), med([x[1] for x in xs]), med([x[2] for x in xs])
        answered = min(x[3] for x in xs)
        summary[name] = (wall, cpu, rss)
        print(f"{name:<30} {wall:>8.3f} {cpu:>8.3f} {rss / 1024:>8.1f} {answered:>9}")
    print()
    print(f"{'ratio (vantage / fping)':<30} {'wall':>8} {'CPU':>8} {'RSS':>8}")
    for v, f in (("vantage ping -c 1 -f", "fping -i 0 -c 1 -f"),
                 ("vantage ping -c 1 --json -f", "fping -i 0 -c 1 -q -f")):
        r = [summary[v][i] / summary[f][i] for i in range(3)]
        print(f"{v + ' / ' + f.split(' -f')[0].replace('fping -i 0 -c 1', 'fping'):<30} "
              f"{r[0]:>8.2f} {r[1]:>8.2f} {r[2]:>8.2f}")
    print()
    mo, mt = med(ours), med(theirs)
    rtt = 2 * args.delay_ms
    print(f"Accuracy: {rtt:g} ms impaired round trip, {len(ours)} vantage and {len(theirs)} "
          f"iputils samples in {args.accuracy_rounds} alternating rounds")
    print(f"{'tool':<30} {'median ms':>10} {'above ' + format(rtt, 'g') + ' ms':>12}")
    print(f"{'vantage ping':<30} {mo:>10.4f} {(mo - rtt) * 1000:>10.1f}µs")
    print(f"{'iputils ping':<30} {mt:>10.4f} {(mt - rtt) * 1000:>10.1f}µs")
    print(f"median difference vantage − iputils: {(mo - mt) * 1000:.1f} µs")


if __name__ == "__main__":
    main()
