#!/usr/bin/env python3
"""Independent reference for the IP calculator tests: Python's standard `ipaddress` module.

Reads one JSON object from stdin: {"calc": [CIDR...], "split": [[CIDR, LEN]...],
"summarize": [[CIDR...]...], "classify": [ADDRESS...]} and writes the same keys with Python's
answers. Only Python's own semantics are used; the one place where enumerating is too slow
(usable counts and last hosts of prefixes with more than 2**16 addresses) uses Python's indexing
(net[-2] for IPv4, net[-1] for IPv6), which is what its hosts() would end with.
"""
import ipaddress
import json
import sys

req = json.load(sys.stdin)
out = {"calc": [], "split": [], "summarize": [], "classify": []}

for text in req["calc"]:
    iface = ipaddress.ip_interface(text)
    net = iface.network
    hosts = iter(net.hosts())
    first = next(hosts, None)
    if net.num_addresses <= 2**16:
        every = list(net.hosts())
        last = every[-1]
        usable = len(every)
    else:
        last = net[-2] if net.version == 4 else net[-1]
        usable = net.num_addresses - (2 if net.version == 4 else 1)
    out["calc"].append({
        "input": text,
        "address": str(iface.ip),
        "network": str(net),
        "netmask": str(net.netmask),
        "hostmask": str(net.hostmask),
        "broadcast": str(net.broadcast_address),
        "first_address": str(net.network_address),
        "last_address": str(net.broadcast_address),
        "num_addresses": str(net.num_addresses),
        "first_usable": str(first),
        "last_usable": str(last),
        "usable": str(usable),
    })

for text, new in req["split"]:
    net = ipaddress.ip_network(text, strict=False)
    out["split"].append([str(n) for n in net.subnets(new_prefix=new)])

for group in req["summarize"]:
    nets = [ipaddress.ip_network(t, strict=False) for t in group]
    v4 = [n for n in nets if n.version == 4]
    v6 = [n for n in nets if n.version == 6]
    out["summarize"].append([str(n) for n in ipaddress.collapse_addresses(v4)] +
                            [str(n) for n in ipaddress.collapse_addresses(v6)])

for text in req["classify"]:
    a = ipaddress.ip_address(text)
    r = {
        "address": text,
        "is_global": a.is_global,
        "is_private": a.is_private,
        "is_loopback": a.is_loopback,
        "is_link_local": a.is_link_local,
        "is_multicast": a.is_multicast,
        "is_unspecified": a.is_unspecified,
        "ipv4_mapped": None,
        "sixtofour": None,
        "teredo": None,
    }
    if a.version == 6:
        r["ipv4_mapped"] = str(a.ipv4_mapped) if a.ipv4_mapped else None
        r["sixtofour"] = str(a.sixtofour) if a.sixtofour else None
        r["teredo"] = [str(x) for x in a.teredo] if a.teredo else None
    out["classify"].append(r)

json.dump(out, sys.stdout)
