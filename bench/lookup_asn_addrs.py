#!/usr/bin/env python3
"""Writes the addresses bench/lookup-asn.sh looks up, one per line, reproducibly (seeded):
N4 IPv4 addresses drawn uniformly from the whole space (about 77 % fall in a table range), and
N6 IPv6 addresses, half inside ranges of the table (asn-ipv6-num.csv), half uniform in 2000::/4.

usage: lookup_asn_addrs.py ASN_IPV6_NUM_CSV N4 N6 > addrs.txt
"""
import ipaddress
import random
import sys

path, n4, n6 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(20261121)
ranges = []
with open(path) as f:
    for line in f:
        s, e, _ = line.split(",", 2)
        ranges.append((int(s), int(e)))
out = sys.stdout
for _ in range(n4):
    out.write(str(ipaddress.IPv4Address(rng.getrandbits(32))) + "\n")
for i in range(n6):
    if i % 2 == 0:
        s, e = ranges[rng.randrange(len(ranges))]
        v = s + rng.randrange(e - s + 1)
    else:
        v = (0x2 << 124) | rng.getrandbits(124)
    out.write(str(ipaddress.IPv6Address(v)) + "\n")
