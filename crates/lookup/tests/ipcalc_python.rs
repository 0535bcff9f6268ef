//! The IP calculator checked against an independent implementation: Python's `ipaddress`
//! module, run on the same inputs in the same test (`ipcalc_reference.py`). Covers every prefix
//! length of both families with pseudo-random addresses (host bits set), the /31, /32, /127 and
//! /128 edge cases, splits, summaries and the registry classes Python also knows.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use vantage_lookup::ipcalc;
use vantage_lookup::special::{AddressClass, classify};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn v4(&mut self) -> Ipv4Addr {
        Ipv4Addr::from(self.next() as u32)
    }
    fn v6(&mut self) -> Ipv6Addr {
        Ipv6Addr::from((u128::from(self.next()) << 64) | u128::from(self.next()))
    }
}

fn python(req: &Value) -> Option<Value> {
    let py = vantage_testnet::need_binary("ipcalc_matches_python_ipaddress", "python3")?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ipcalc_reference.py");
    let mut child = Command::new(py)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "reference script failed");
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// The inputs of one run: prefixes to describe, splits, groups to summarise, addresses.
struct Cases {
    calc: Vec<String>,
    split: Vec<(String, u8)>,
    summarize: Vec<Vec<String>>,
    classify: Vec<String>,
}

fn cases() -> Cases {
    let mut r = Rng(0x5eed_1234_abcd_0042);
    let mut calc = vec![
        "192.0.2.0/31".to_string(),
        "192.0.2.1/31".into(),
        "192.0.2.7/32".into(),
        "0.0.0.0/0".into(),
        "255.255.255.255/32".into(),
        "2001:db8::/127".into(),
        "2001:db8::1/127".into(),
        "2001:db8::5/128".into(),
        "::/0".into(),
        "::/128".into(),
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128".into(),
        "10.1.2.3/255.255.240.0".into(),
    ];
    for len in 0..=32 {
        for _ in 0..4 {
            calc.push(format!("{}/{len}", r.v4()));
        }
    }
    for len in 0..=128 {
        for _ in 0..2 {
            calc.push(format!("{}/{len}", r.v6()));
        }
    }
    let mut split = Vec::new();
    for _ in 0..20 {
        let len = 16 + (r.next() % 15) as u8;
        let extra = 1 + (r.next() % 6) as u8;
        split.push((format!("{}/{len}", r.v4()), (len + extra).min(32)));
        let len6 = 32 + (r.next() % 90) as u8;
        split.push((format!("{}/{len6}", r.v6()), (len6 + extra).min(128)));
    }
    split.push(("192.0.2.0/31".into(), 32));
    split.push(("2001:db8::/127".into(), 128));
    let mut summarize = Vec::new();
    for _ in 0..30 {
        // Prefixes drawn inside one /20 (and one IPv6 /116) so that they touch and merge.
        let base4 = u32::from(r.v4()) & 0xffff_f000;
        let base6 = u128::from(r.v6()) & !0xfff;
        let mut group = Vec::new();
        for _ in 0..(2 + r.next() % 30) {
            let len = 22 + (r.next() % 11) as u8;
            let a = Ipv4Addr::from(base4 | (r.next() as u32 & 0xfff));
            group.push(format!("{a}/{len}"));
            let len6 = 118 + (r.next() % 11) as u8;
            let b = Ipv6Addr::from(base6 | (u128::from(r.next()) & 0xfff));
            group.push(format!("{b}/{len6}"));
        }
        summarize.push(group);
    }
    let mut classify_inputs: Vec<String> = [
        "127.0.0.1",
        "127.255.255.254",
        "169.254.0.1",
        "169.254.255.255",
        "224.0.0.1",
        "239.255.255.255",
        "0.0.0.0",
        "::",
        "::1",
        "fe80::1",
        "febf:ffff::1",
        "ff02::1",
        "ff0e::1",
        "::ffff:192.0.2.1",
        "::ffff:8.8.8.8",
        "2002:c000:0204::1",
        "2002:0808:0808::",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "2001:0:0102:0304:0:ffff:fefd:fcfb",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for _ in 0..200 {
        classify_inputs.push(r.v4().to_string());
        classify_inputs.push(r.v6().to_string());
    }
    for _ in 0..50 {
        // Random addresses inside the prefixes that embed IPv4 addresses.
        let low = u128::from(r.next());
        classify_inputs
            .push(Ipv6Addr::from(0xffff_0000_0000u128 | (low & 0xffff_ffff)).to_string());
        classify_inputs.push(Ipv6Addr::from((0x2002u128 << 112) | ((low << 40) >> 16)).to_string());
        classify_inputs.push(
            Ipv6Addr::from(
                (0x2001_0000u128 << 96) | (low << 32 >> 32) | (u128::from(r.next()) << 64 >> 32),
            )
            .to_string(),
        );
    }
    Cases {
        calc,
        split,
        summarize,
        classify: classify_inputs,
    }
}

fn nets(v: &Value) -> Vec<ipnet::IpNet> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn ipcalc_matches_python_ipaddress() {
    let Cases {
        calc,
        split,
        summarize,
        classify: classify_inputs,
    } = cases();
    let req =
        json!({"calc": calc, "split": split, "summarize": summarize, "classify": classify_inputs});
    let Some(reference) = python(&req) else {
        return;
    };
    let len = |k: &str| reference[k].as_array().map_or(0, Vec::len);
    assert_eq!(len("calc"), calc.len());
    assert_eq!(len("split"), split.len());
    assert_eq!(len("summarize"), summarize.len());
    assert_eq!(len("classify"), classify_inputs.len());
    assert!(calc.len() > 400 && classify_inputs.len() > 500);

    let mut checked = 0;
    for (input, want) in calc.iter().zip(reference["calc"].as_array().unwrap()) {
        let c = ipcalc::calc(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        let s = |k: &str| want[k].as_str().unwrap().to_string();
        // Compare addresses as values: Rust and Python spell some IPv6 forms differently
        // (::ffff:255.255.255.255 vs ::ffff:ffff:ffff).
        let a = |k: &str| s(k).parse::<IpAddr>().unwrap();
        assert_eq!(c.address, a("address"), "{input}");
        assert_eq!(
            c.network,
            s("network").parse::<ipnet::IpNet>().unwrap(),
            "{input}"
        );
        assert_eq!(c.netmask, a("netmask"), "{input}");
        assert_eq!(c.wildcard, a("hostmask"), "{input}");
        assert_eq!(c.first_address, a("first_address"), "{input}");
        assert_eq!(c.last_address, a("last_address"), "{input}");
        assert_eq!(c.addresses, s("num_addresses"), "{input}");
        assert_eq!(c.first_usable, a("first_usable"), "{input}");
        assert_eq!(c.last_usable, a("last_usable"), "{input}");
        assert_eq!(c.usable, s("usable"), "{input}");
        // RFC 3021: /31 and /32 have no broadcast address; Python reports the last address.
        if c.version == 4 && c.prefix_len < 31 {
            assert_eq!(IpAddr::V4(c.broadcast.unwrap()), a("broadcast"), "{input}");
        } else {
            assert_eq!(c.broadcast, None, "{input}");
        }
        checked += 1;
    }
    assert_eq!(checked, calc.len());

    for ((input, len), want) in split.iter().zip(reference["split"].as_array().unwrap()) {
        let got = ipcalc::split(input, *len, 1 << 20).unwrap().subnets;
        let want = nets(want);
        assert_eq!(got, want, "split {input} into /{len}");
    }

    for (group, want) in summarize
        .iter()
        .zip(reference["summarize"].as_array().unwrap())
    {
        let got = ipcalc::summarize(group).unwrap().prefixes;
        let want = nets(want);
        assert_eq!(got, want, "summarize {group:?}");
    }

    for want in reference["classify"].as_array().unwrap() {
        let text = want["address"].as_str().unwrap();
        let addr: IpAddr = text.parse().unwrap();
        let c = classify(addr);
        let flag = |k: &str| want[k].as_bool().unwrap();
        assert_eq!(
            c.class == AddressClass::Loopback,
            flag("is_loopback"),
            "{text}: loopback"
        );
        assert_eq!(
            c.class == AddressClass::Multicast,
            flag("is_multicast"),
            "{text}: multicast"
        );
        assert_eq!(
            c.class == AddressClass::LinkLocal,
            flag("is_link_local"),
            "{text}: link-local"
        );
        assert_eq!(
            c.class == AddressClass::Unspecified,
            flag("is_unspecified"),
            "{text}: unspecified"
        );
        // Ordinary global unicast space is global for Python too.
        if c.class == AddressClass::Global {
            assert!(flag("is_global"), "{text}: global for us, not for Python");
        }
        if let Some(v4) = want["ipv4_mapped"].as_str() {
            assert_eq!(c.class, AddressClass::Ipv4Mapped, "{text}");
            assert_eq!(
                c.embedded_ipv4.unwrap(),
                v4.parse::<Ipv4Addr>().unwrap(),
                "{text}"
            );
        }
        if let Some(v4) = want["sixtofour"].as_str() {
            assert_eq!(c.class, AddressClass::SixToFour, "{text}");
            assert_eq!(
                c.embedded_ipv4.unwrap(),
                v4.parse::<Ipv4Addr>().unwrap(),
                "{text}"
            );
        }
        if let Some(t) = want["teredo"].as_array() {
            assert_eq!(c.class, AddressClass::Teredo, "{text}");
            let ours = c.teredo.unwrap();
            assert_eq!(ours.server.to_string(), t[0].as_str().unwrap(), "{text}");
            assert_eq!(ours.client.to_string(), t[1].as_str().unwrap(), "{text}");
        }
    }
}
