//! `vantage asn`: addresses → AS, AS name, prefix, country (one table row each); AS numbers →
//! name, prefixes and address counts; and the local AS name overrides.
//! Exit 1 when some query found nothing.

use std::net::IpAddr;

use vantage_lookup::asn::parse_asn;
use vantage_lookup::overrides::NameSource;
use vantage_lookup::{AsnInfo, IpInfo, Lookup, SourceRef};

use super::lookups::{fail, json_line, open, print_block, print_sources};
use crate::cli::AsnArgs;
use crate::output::{EXIT_OK, EXIT_SOME_FAILED, print_table, table, usage_error};

/// Prefixes shown per AS unless --all-prefixes.
const SHOWN_PREFIXES: usize = 20;

enum Query {
    Ip(IpAddr),
    Asn(u32),
}

fn parse(q: &str) -> Result<Query, u8> {
    if let Ok(ip) = q.trim().parse::<IpAddr>() {
        return Ok(Query::Ip(ip));
    }
    parse_asn(q).map(Query::Asn).map_err(|_| {
        usage_error(format!(
            "'{}' is neither an IP address nor an AS number (e.g. 192.0.2.1, 2001:db8::1, AS64500)",
            q.trim()
        ))
    })
}

pub async fn run(a: AsnArgs) -> u8 {
    inner(a).await.unwrap_or_else(|code| code)
}

async fn inner(a: AsnArgs) -> Result<u8, u8> {
    let lookup = open(&a.data.data_dir)?;
    if a.list_overrides {
        return list_overrides(&lookup, a.json);
    }
    let queries: Vec<Query> = a
        .queries
        .iter()
        .map(|q| parse(q))
        .collect::<Result<_, _>>()?;
    if a.set_name.is_some() || a.unset_name {
        return edit_overrides(&lookup, &a, &queries);
    }
    let mut ips = Vec::new();
    let mut asns = Vec::new();
    for q in &queries {
        match q {
            Query::Ip(ip) => ips.push(lookup.ip(*ip, a.rdns).await.map_err(|e| fail(&e))?),
            Query::Asn(n) => asns.push(lookup.asn(*n).map_err(|e| fail(&e))?),
        }
    }
    if a.json {
        for i in &ips {
            json_line(i)?;
        }
        for n in &asns {
            json_line(n)?;
        }
    } else {
        if !ips.is_empty() {
            print_ips(&ips, a.rdns);
        }
        for (i, n) in asns.iter().enumerate() {
            if i > 0 || !ips.is_empty() {
                println!();
            }
            print_asn(n, a.all_prefixes);
        }
        let mut sources: Vec<SourceRef> = ips.iter().flat_map(|i| i.sources.clone()).collect();
        sources.extend(asns.iter().flat_map(|n| n.sources.clone()));
        if !sources.is_empty() {
            println!();
            print_sources(&sources);
        }
    }
    let all_found =
        ips.iter().all(IpInfo::found) && asns.iter().all(|n| n.in_dataset || n.as_name.is_some());
    Ok(if all_found { EXIT_OK } else { EXIT_SOME_FAILED })
}

fn name_with_source(name: &Option<String>, source: Option<NameSource>) -> String {
    match (name, source) {
        (Some(n), Some(NameSource::Override)) => format!("{n} (local name)"),
        (Some(n), _) => n.clone(),
        (None, _) => String::new(),
    }
}

fn print_ips(ips: &[IpInfo], rdns: bool) {
    let mut header = vec!["ADDRESS", "ASN", "AS NAME", "PREFIX", "CC"];
    if rdns {
        header.push("RDNS");
    }
    header.push("NOTE");
    let mut t = table(&header, header.len());
    for i in ips {
        let mut row = vec![
            i.ip.to_string(),
            i.asn
                .map(|a| format!("AS{a}"))
                .unwrap_or_else(|| "-".into()),
            name_with_source(&i.as_name, i.as_name_source),
            i.prefix.map(|p| p.to_string()).unwrap_or_default(),
            i.country.clone().unwrap_or_default(),
        ];
        if rdns {
            row.push(
                i.rdns
                    .as_ref()
                    .map(|r| {
                        if r.names.is_empty() {
                            format!(
                                "({})",
                                serde_json::to_value(r.status)
                                    .ok()
                                    .and_then(|v| v.as_str().map(String::from))
                                    .unwrap_or_default()
                            )
                        } else {
                            r.names.join(" ")
                        }
                    })
                    .unwrap_or_default(),
            );
        }
        let note = match (&i.note, i.classification.is_special()) {
            (Some(n), _) => n.clone(),
            (None, true) => i.classification.label.clone(),
            (None, false) => String::new(),
        };
        row.push(note);
        t.add_row(row);
    }
    print_table(&t);
}

fn print_asn(n: &AsnInfo, all: bool) {
    let prefixes: Vec<String> = n.prefixes.iter().map(|p| p.to_string()).collect();
    let shown = if all || prefixes.len() <= SHOWN_PREFIXES {
        prefixes.join(" ")
    } else {
        format!(
            "{} … and {} more (--all-prefixes)",
            prefixes[..SHOWN_PREFIXES].join(" "),
            prefixes.len() - SHOWN_PREFIXES
        )
    };
    let ranges = if n.in_dataset {
        format!(
            "{} IPv4 ranges ({} addresses), {} IPv6 ranges",
            n.ipv4_ranges, n.ipv4_addresses, n.ipv6_ranges
        )
    } else {
        String::new()
    };
    print_block(&[
        ("AS", format!("AS{}", n.asn)),
        ("Name", name_with_source(&n.as_name, n.as_name_source)),
        (
            "Data set name",
            n.dataset_as_name.clone().unwrap_or_default(),
        ),
        (
            "Class",
            n.classification
                .as_ref()
                .map(|c| c.label.clone())
                .unwrap_or_default(),
        ),
        ("Ranges", ranges),
        ("Prefixes", shown),
        ("Note", n.note.clone().unwrap_or_default()),
    ]);
}

fn list_overrides(lookup: &Lookup, json: bool) -> Result<u8, u8> {
    let list = lookup.overrides().list();
    if json {
        for o in &list {
            json_line(o)?;
        }
    } else if list.is_empty() {
        eprintln!("vantage: no local AS names are set");
    } else {
        let mut t = table(&["ASN", "NAME", "SET"], 3);
        for o in &list {
            t.add_row(vec![
                format!("AS{}", o.asn),
                o.name.clone(),
                o.updated_at
                    .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default(),
            ]);
        }
        print_table(&t);
    }
    Ok(EXIT_OK)
}

fn edit_overrides(lookup: &Lookup, a: &AsnArgs, queries: &[Query]) -> Result<u8, u8> {
    let asns: Vec<u32> = queries
        .iter()
        .map(|q| match q {
            Query::Asn(n) => Ok(*n),
            Query::Ip(ip) => Err(usage_error(format!(
                "{ip} is an address; local names are set on AS numbers"
            ))),
        })
        .collect::<Result<_, _>>()?;
    if let Some(name) = &a.set_name {
        let [asn] = asns.as_slice() else {
            return Err(usage_error("--set-name names one AS number at a time"));
        };
        let o = lookup.set_override(*asn, name).map_err(|e| fail(&e))?;
        if a.json {
            json_line(&o)?;
        } else {
            println!("AS{} is now shown as '{}'", o.asn, o.name);
        }
        return Ok(EXIT_OK);
    }
    let mut code = EXIT_OK;
    for asn in asns {
        if lookup.remove_override(asn).map_err(|e| fail(&e))? {
            println!("AS{asn}: local name removed");
        } else {
            eprintln!("vantage: AS{asn} has no local name");
            code = EXIT_SOME_FAILED;
        }
    }
    Ok(code)
}
