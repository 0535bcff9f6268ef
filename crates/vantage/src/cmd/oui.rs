//! `vantage oui`: the vendor of MAC addresses and prefixes, or a vendor-name search.
//! Exit 1 when an address has no registered vendor or a search finds nothing.

use vantage_lookup::oui::OuiMatch;

use super::lookups::{fail, json_line, open};
use crate::cli::OuiArgs;
use crate::output::{EXIT_OK, EXIT_SOME_FAILED, print_table, table};

pub fn run(a: OuiArgs) -> u8 {
    inner(a).unwrap_or_else(|code| code)
}

fn inner(a: OuiArgs) -> Result<u8, u8> {
    let lookup = open(&a.data.data_dir)?;
    if let Some(q) = &a.search {
        let s = lookup.oui_search(q, a.limit).map_err(|e| fail(&e))?;
        if a.json {
            json_line(&s)?;
        } else {
            let mut t = table(&["PREFIX", "REGISTRY", "VENDOR"], 3);
            for e in &s.entries {
                t.add_row(vec![
                    e.prefix.clone(),
                    e.registry.name().to_string(),
                    e.organization.clone(),
                ]);
            }
            if !s.entries.is_empty() {
                print_table(&t);
            }
            if s.total > s.entries.len() {
                eprintln!(
                    "vantage: {} of {} matches shown; narrow the search or raise --limit",
                    s.entries.len(),
                    s.total
                );
            }
        }
        return Ok(if s.total == 0 {
            if !a.json {
                eprintln!("vantage: no vendor name contains '{}'", s.query);
            }
            EXIT_SOME_FAILED
        } else {
            EXIT_OK
        });
    }
    let mut matches: Vec<OuiMatch> = Vec::new();
    for mac in &a.macs {
        matches.push(lookup.oui(mac).map_err(|e| fail(&e))?);
    }
    if a.json {
        for m in &matches {
            json_line(m)?;
        }
    } else {
        let mut t = table(&["MAC", "PREFIX", "REGISTRY", "VENDOR"], 4);
        for m in &matches {
            let (prefix, reg, vendor) = match &m.entry {
                Some(e) => (
                    e.prefix.clone(),
                    e.registry.name().to_string(),
                    e.organization.clone(),
                ),
                None => ("-".into(), "-".into(), "(no registered vendor)".into()),
            };
            t.add_row(vec![m.mac.clone(), prefix, reg, vendor]);
        }
        print_table(&t);
        for m in &matches {
            if let Some(n) = &m.note {
                println!("{}: {n}", m.mac);
            }
        }
    }
    Ok(if matches.iter().all(|m| m.entry.is_some()) {
        EXIT_OK
    } else {
        EXIT_SOME_FAILED
    })
}
