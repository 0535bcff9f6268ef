//! Validation of what describes an agent (name, labels, location), shared by enrolment and
//! `PATCH /agents/{id}`. Values must stay selectable: the selector grammar reserves `,` `+` `@`
//! and `:`, so a label value holding one could never be matched.

use std::collections::BTreeMap;

/// Keys a label may not use: they are selector keys already.
const RESERVED: &[&str] = &[
    "id", "name", "country", "city", "region", "asn", "msm", "all",
];

fn plain(what: &str, v: &str, max: usize) -> Result<(), String> {
    if v.trim().is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if v.trim() != v {
        return Err(format!("{what} '{v}' has leading or trailing spaces"));
    }
    if v.chars().count() > max {
        return Err(format!("{what} '{v}' is longer than {max} characters"));
    }
    if let Some(c) = v
        .chars()
        .find(|c| c.is_control() || matches!(c, ',' | '+' | '@' | ':' | '*'))
    {
        return Err(format!(
            "{what} '{v}' contains '{}'; the characters , + @ : * are reserved by agent selectors",
            c.escape_default()
        ));
    }
    Ok(())
}

/// Checks an agent name.
pub fn name(v: &str) -> Result<(), String> {
    plain("the agent name", v, 64)
}

/// Checks labels: keys like selector label keys, not reserved; plain values.
pub fn labels(l: &BTreeMap<String, String>) -> Result<(), String> {
    if l.len() > 32 {
        return Err(format!("{} labels given; at most 32 are allowed", l.len()));
    }
    for (k, v) in l {
        if k.is_empty()
            || k.len() > 63
            || !k.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'_' | b'-' | b'.' | b'/')
            })
        {
            return Err(format!(
                "label key '{k}' is invalid; use 1 to 63 lowercase letters, digits and _ - . /"
            ));
        }
        if RESERVED.contains(&k.as_str()) {
            return Err(format!(
                "label key '{k}' is reserved (it is a selector key); pick another name"
            ));
        }
        plain(&format!("the value of label '{k}'"), v, 128)?;
    }
    Ok(())
}

/// Normalises and checks a country code (upper case, two letters).
pub fn country(v: &str) -> Result<String, String> {
    let up = v.trim().to_ascii_uppercase();
    if up.len() != 2 || !up.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "country '{v}' is not a two-letter ISO 3166 code such as DE or US"
        ));
    }
    Ok(up)
}

/// Checks a city or region.
pub fn place(what: &str, v: &str) -> Result<(), String> {
    plain(what, v, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_characters_and_keys_are_refused() {
        assert!(name("lab-1").is_ok());
        assert!(name("lab,1").is_err());
        assert!(name(" lab").is_err());
        assert!(name("").is_err());
        let mut l = BTreeMap::new();
        l.insert("env".to_string(), "prod".to_string());
        assert!(labels(&l).is_ok());
        l.insert("country".to_string(), "x".to_string());
        assert!(labels(&l).unwrap_err().contains("reserved"));
        let mut l = BTreeMap::new();
        l.insert("Env".to_string(), "x".to_string());
        assert!(labels(&l).is_err());
        assert_eq!(country("de").unwrap(), "DE");
        assert!(country("DEU").is_err());
        assert!(place("city", "New York").is_ok());
    }
}
