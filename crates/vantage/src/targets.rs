//! Target lists for multi-target commands: names and addresses as given, CIDR ranges expanded to
//! their usable host addresses (network and broadcast addresses excluded for IPv4 prefixes shorter
//! than /31, like `fping -g`), and files with one target per line.

use std::io::Read;
use std::path::Path;

use ipnet::IpNet;

/// Default cap on the number of targets after expansion (a /16 is 65 534).
pub const DEFAULT_MAX_TARGETS: usize = 1 << 20;

/// A target list that cannot be used, with a sentence for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

/// Expands `items` (and the lines of `file`, if given) into individual targets, in order,
/// refusing to produce more than `max`.
pub fn expand(
    items: &[String],
    file: Option<&Path>,
    max: usize,
) -> Result<Vec<String>, TargetError> {
    let mut out = Vec::new();
    for item in items {
        push_item(&mut out, item, max)?;
    }
    if let Some(path) = file {
        let text = read_text(path)?;
        for (n, line) in text.lines().enumerate() {
            let t = line.split('#').next().unwrap_or("").trim();
            if t.is_empty() {
                continue;
            }
            push_item(&mut out, t, max)
                .map_err(|e| TargetError(format!("{}, line {}: {}", path.display(), n + 1, e.0)))?;
        }
    }
    if out.is_empty() {
        return Err(TargetError("no targets given".into()));
    }
    Ok(out)
}

/// The whole file (or standard input for `-`) in one buffer: lines are borrowed from it, so a
/// 60 000-line file costs one allocation here rather than one per line.
fn read_text(path: &Path) -> Result<String, TargetError> {
    let err = |e: std::io::Error| TargetError(format!("cannot read {}: {e}", path.display()));
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .read_to_string(&mut text)
            .map_err(err)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path).map_err(err)
    }
}

fn push_item(out: &mut Vec<String>, item: &str, max: usize) -> Result<(), TargetError> {
    if !item.contains('/') {
        if out.len() >= max {
            return Err(too_many(max));
        }
        out.push(item.to_string());
        return Ok(());
    }
    let net: IpNet = item.parse().map_err(|_| {
        TargetError(format!(
            "'{item}' is not a valid CIDR range; write ADDRESS/PREFIX, for example 192.0.2.0/24"
        ))
    })?;
    if net.trunc() != net {
        return Err(TargetError(format!(
            "'{item}' has host bits set; did you mean {}?",
            net.trunc()
        )));
    }
    let size = host_count(&net);
    if size > (max - out.len()) as u128 {
        return Err(TargetError(format!(
            "{item} expands to {size} addresses, more than the limit of {max}; raise it with --max-targets"
        )));
    }
    out.extend(net.hosts().map(|ip| ip.to_string()));
    Ok(())
}

fn host_count(net: &IpNet) -> u128 {
    let bits = u32::from(net.max_prefix_len() - net.prefix_len());
    let all = if bits >= 128 {
        u128::MAX
    } else {
        1u128 << bits
    };
    match net {
        IpNet::V4(_) if bits >= 2 => all - 2,
        _ => all,
    }
}

fn too_many(max: usize) -> TargetError {
    TargetError(format!(
        "more than {max} targets; raise the limit with --max-targets"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn names_pass_through_and_cidrs_expand_without_network_and_broadcast() {
        let t = expand(&s(&["example.com", "192.0.2.0/30"]), None, 100).unwrap();
        assert_eq!(t, s(&["example.com", "192.0.2.1", "192.0.2.2"]));
    }

    #[test]
    fn slash_31_and_32_keep_every_address() {
        assert_eq!(expand(&s(&["192.0.2.0/31"]), None, 10).unwrap().len(), 2);
        assert_eq!(
            expand(&s(&["192.0.2.7/32"]), None, 10).unwrap(),
            s(&["192.0.2.7"])
        );
    }

    #[test]
    fn ipv6_ranges_expand() {
        let t = expand(&s(&["2001:db8::/126"]), None, 10).unwrap();
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn a_slash_16_gives_65534_targets() {
        assert_eq!(
            expand(&s(&["10.200.0.0/16"]), None, 1 << 20).unwrap().len(),
            65534
        );
    }

    #[test]
    fn invalid_and_oversized_ranges_are_clear_errors() {
        let e = expand(&s(&["10.0.0.0/33"]), None, 10).unwrap_err();
        assert!(e.0.contains("not a valid CIDR"), "{e}");
        let e = expand(&s(&["10.0.0.1/24"]), None, 1000).unwrap_err();
        assert!(e.0.contains("did you mean 10.0.0.0/24"), "{e}");
        let e = expand(&s(&["10.0.0.0/8"]), None, 1000).unwrap_err();
        assert!(e.0.contains("--max-targets"), "{e}");
        let e = expand(&s(&["2001:db8::/32"]), None, 1000).unwrap_err();
        assert!(e.0.contains("--max-targets"), "{e}");
    }

    #[test]
    fn files_skip_comments_and_blank_lines_and_name_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        std::fs::write(&p, "# lab\n192.0.2.1\n\n  192.0.2.2  # edge\n").unwrap();
        assert_eq!(
            expand(&[], Some(&p), 10).unwrap(),
            s(&["192.0.2.1", "192.0.2.2"])
        );
        std::fs::write(&p, "192.0.2.1\n192.0.2.0/99\n").unwrap();
        let e = expand(&[], Some(&p), 10).unwrap_err();
        assert!(e.0.contains("line 2"), "{e}");
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let e = expand(&[], Some(Path::new("/nonexistent/targets")), 10).unwrap_err();
        assert!(e.0.contains("cannot read /nonexistent/targets"), "{e}");
    }
}
