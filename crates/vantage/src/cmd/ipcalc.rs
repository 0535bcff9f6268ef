//! `vantage ipcalc`: one prefix described, split into subnets, a list summarised, or
//! containment / overlap tested (exit 1 when the answer is no, for scripts).

use vantage_lookup::ipcalc::{self, IpCalc};

use super::lookups::{fail, json_line, print_block};
use crate::cli::IpcalcArgs;
use crate::output::{EXIT_OK, EXIT_SOME_FAILED, usage_error};

pub fn run(a: IpcalcArgs) -> u8 {
    let result = if a.summarize {
        summarize(&a)
    } else if let Some(len) = a.split {
        split(&a, len)
    } else if a.contains.is_some() || a.overlaps.is_some() {
        compare(&a)
    } else {
        describe(&a)
    };
    result.unwrap_or_else(|code| code)
}

fn one_input(a: &IpcalcArgs, what: &str) -> Result<String, u8> {
    match a.inputs.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(usage_error(format!(
            "{what} works on one prefix; give exactly one CIDR"
        ))),
    }
}

fn describe(a: &IpcalcArgs) -> Result<u8, u8> {
    let mut calcs = Vec::new();
    for input in &a.inputs {
        calcs.push(ipcalc::calc(input).map_err(|e| fail(&e))?);
    }
    for (i, c) in calcs.iter().enumerate() {
        if a.json {
            json_line(c)?;
        } else {
            if i > 0 {
                println!();
            }
            print_calc(c);
        }
    }
    Ok(EXIT_OK)
}

fn print_calc(c: &IpCalc) {
    let usable = if c.usable == c.addresses {
        c.addresses.clone()
    } else {
        format!("{} ({} usable)", c.addresses, c.usable)
    };
    let host_note = if c.host_bits_set {
        format!(
            "{} has host bits set; its network is {}",
            c.address, c.network
        )
    } else {
        String::new()
    };
    let embedded = c
        .classification
        .embedded_ipv4
        .map(|v4| v4.to_string())
        .or_else(|| {
            c.classification
                .teredo
                .map(|t| format!("server {}, client {} port {}", t.server, t.client, t.port))
        })
        .unwrap_or_default();
    let class = match (&c.classification.block, &c.classification.rfc) {
        (Some(b), _) => format!("{} ({b})", c.classification.label),
        _ => c.classification.label.clone(),
    };
    print_block(&[
        ("Address", c.address.to_string()),
        ("Network", c.network.to_string()),
        ("Netmask", format!("{} = /{}", c.netmask, c.prefix_len)),
        ("Wildcard", c.wildcard.to_string()),
        (
            "Broadcast",
            c.broadcast.map(|b| b.to_string()).unwrap_or_default(),
        ),
        ("First address", c.first_address.to_string()),
        ("Last address", c.last_address.to_string()),
        ("First usable", c.first_usable.to_string()),
        ("Last usable", c.last_usable.to_string()),
        ("Addresses", usable),
        ("Class", class),
        ("Embedded IPv4", embedded),
        ("Note", host_note),
    ]);
}

fn split(a: &IpcalcArgs, len: u8) -> Result<u8, u8> {
    let input = one_input(a, "--split")?;
    let s = ipcalc::split(&input, len, a.max).map_err(|e| fail(&e))?;
    if a.json {
        json_line(&s)?;
    } else {
        for n in &s.subnets {
            println!("{n}");
        }
    }
    Ok(EXIT_OK)
}

fn summarize(a: &IpcalcArgs) -> Result<u8, u8> {
    let s = ipcalc::summarize(&a.inputs).map_err(|e| fail(&e))?;
    if a.json {
        json_line(&s)?;
    } else {
        for n in &s.notes {
            eprintln!("vantage: note: {n}");
        }
        for p in &s.prefixes {
            println!("{p}");
        }
    }
    Ok(EXIT_OK)
}

fn compare(a: &IpcalcArgs) -> Result<u8, u8> {
    let input = one_input(a, "--contains/--overlaps")?;
    let (other, contains) = match (&a.contains, &a.overlaps) {
        (Some(o), _) => (o.clone(), true),
        (None, Some(o)) => (o.clone(), false),
        (None, None) => return Err(usage_error("give --contains or --overlaps")),
    };
    let c = ipcalc::compare(&input, &other).map_err(|e| fail(&e))?;
    let yes = if contains { c.a_contains_b } else { c.overlap };
    if a.json {
        json_line(&c)?;
    } else if contains {
        let verb = if yes { "contains" } else { "does not contain" };
        println!("{} {verb} {}", c.a, c.b);
    } else {
        let verb = if yes { "overlaps" } else { "does not overlap" };
        println!("{} {verb} {}", c.a, c.b);
    }
    Ok(if yes { EXIT_OK } else { EXIT_SOME_FAILED })
}
