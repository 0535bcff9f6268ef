//! `vantage rdap`: the summary of the registry's RDAP object, or its raw JSON.
//! Exit 1 when the registry has no object or a server failed.

use std::time::Duration;

use vantage_lookup::rdap::RdapAnswer;

use super::lookups::{fail, json_line, open, print_block};
use crate::cli::RdapArgs;
use crate::output::{EXIT_OK, usage_error};

pub async fn run(a: RdapArgs) -> u8 {
    inner(a).await.unwrap_or_else(|code| code)
}

async fn inner(a: RdapArgs) -> Result<u8, u8> {
    if !(a.timeout > 0.0 && a.timeout <= 300.0) {
        return Err(usage_error("--timeout must be between 0 and 300 seconds"));
    }
    let mut lookup = open(&a.data.data_dir)?;
    lookup.set_rdap_timeout(Duration::from_secs_f64(a.timeout));
    let ans = lookup
        .rdap(&a.query, a.server.as_deref())
        .await
        .map_err(|e| fail(&e))?;
    if a.json {
        json_line(&ans)?;
    } else if a.raw {
        match serde_json::to_string_pretty(&ans.raw) {
            Ok(s) => println!("{s}"),
            Err(e) => return Err(usage_error(format!("cannot print the answer: {e}"))),
        }
    } else {
        print_answer(&ans);
    }
    Ok(EXIT_OK)
}

fn print_answer(ans: &RdapAnswer) {
    let s = &ans.summary;
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let range = match (&s.start_address, &s.end_address) {
        (Some(a), Some(b)) => format!("{a} - {b}"),
        _ => String::new(),
    };
    let autnums = match (s.start_autnum, s.end_autnum) {
        (Some(a), Some(b)) if a != b => format!("AS{a} - AS{b}"),
        (Some(a), _) => format!("AS{a}"),
        _ => String::new(),
    };
    print_block(&[
        ("Query", ans.query.text.clone()),
        ("URL", ans.url.clone()),
        ("Object", o(&s.object_class)),
        ("Handle", o(&s.handle)),
        ("Name", o(&s.name)),
        ("Range", range),
        ("CIDR", s.cidr.join(" ")),
        ("AS numbers", autnums),
        ("Type", o(&s.net_type)),
        ("Country", o(&s.country)),
        ("Registrar", o(&s.registrar)),
        ("Registrant", o(&s.registrant)),
        ("Registered", o(&s.registered)),
        ("Last changed", o(&s.last_changed)),
        ("Expires", o(&s.expires)),
        ("Name servers", s.name_servers.join(" ")),
        ("Status", s.status.join(", ")),
        ("Abuse", o(&s.abuse_email)),
        ("WHOIS server", o(&s.port43)),
    ]);
}
