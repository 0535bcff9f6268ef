//! Agent selectors: which agents run a measurement.
//!
//! Grammar (DESIGN §4), whitespace around the operators is ignored:
//!
//! ```text
//! selector    = alternative *( "," alternative )        ; OR
//! alternative = atom *( "+" atom ) [ "@" N ]            ; AND, then at most N agents
//! atom        = "all" | "msm:" ID | KEY ":" VALUE
//! KEY         = id | name | country | city | region | asn | any label key
//! VALUE       = text without , + @ (may contain * wildcards)
//! ```
//!
//! Example: `country:DE+asn:3320@2, name:lab-1`.
//!
//! The main decisions: parsing and matching are pure so that the server, the CLI and tests share
//! one meaning; `@N` picks round-robin across locations (country, region, city) so a limit spreads
//! over places instead of taking the first N agents of one city; and every alternative picks on
//! its own, the selection being the union (an agent chosen twice counts once). The caller decides
//! which agents are candidates (the server passes the connected ones, shuffled, so repeated
//! measurements spread load) and resolves `msm:` references, because both need storage.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Longest selector accepted, in bytes.
pub const MAX_SELECTOR_LEN: usize = 2048;
/// Largest `@N` limit.
pub const MAX_LIMIT: u32 = 100_000;
/// Most alternatives in one selector.
pub const MAX_ALTERNATIVES: usize = 64;
/// Most atoms in one alternative.
pub const MAX_ATOMS: usize = 16;

/// A parsed, validated selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The alternatives, any of which may select an agent.
    pub alternatives: Vec<Alternative>,
}

/// Atoms that must all hold, and an optional limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    /// Conditions joined by `+`.
    pub atoms: Vec<Atom>,
    /// `@N`: take at most this many of the matching agents, spread over locations.
    pub limit: Option<u32>,
}

/// One condition on an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Atom {
    /// Every candidate agent.
    All,
    /// The agents of an earlier measurement.
    Measurement(Uuid),
    /// A field or label compared with a pattern (`*` matches any run of characters).
    Field {
        /// What is compared.
        key: Key,
        /// The pattern as written (case-insensitive).
        pattern: String,
    },
}

/// What a `key:value` atom compares.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// The agent's id (a UUID, or a prefix with `*`).
    Id,
    /// The agent's name.
    Name,
    /// ISO 3166 two-letter country code.
    Country,
    /// City name.
    City,
    /// Region (state, province, cloud region …).
    Region,
    /// Autonomous system number (`3320` or `AS3320`).
    Asn,
    /// Any other key is a label set on the agent.
    Label(String),
}

impl Key {
    fn parse(s: &str) -> Key {
        match s {
            "id" => Key::Id,
            "name" => Key::Name,
            "country" => Key::Country,
            "city" => Key::City,
            "region" => Key::Region,
            "asn" => Key::Asn,
            other => Key::Label(other.to_string()),
        }
    }

    /// The key as written in a selector.
    pub fn as_str(&self) -> &str {
        match self {
            Key::Id => "id",
            Key::Name => "name",
            Key::Country => "country",
            Key::City => "city",
            Key::Region => "region",
            Key::Asn => "asn",
            Key::Label(l) => l,
        }
    }
}

/// What a selector is matched against: the facts the server keeps about one agent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AgentFacts {
    /// The agent's id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// ISO 3166 two-letter country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Autonomous system number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// Free-form labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl AgentFacts {
    /// The location an `@N` limit spreads over: country first, then region and city.
    fn location(&self) -> (Option<String>, Option<String>, Option<String>) {
        let low = |s: &Option<String>| s.as_ref().map(|v| v.to_lowercase());
        (low(&self.country), low(&self.region), low(&self.city))
    }
}

/// A selector that could not be parsed, with the offending part and what would be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("invalid agent selector '{selector}': {message}")]
pub struct SelectorError {
    /// The whole selector as given.
    pub selector: String,
    /// What is wrong, for a person.
    pub message: String,
}

/// The agents a selector chose, and the alternatives that chose none (worth a warning).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    /// Chosen agents, in selection order, without duplicates.
    pub agents: Vec<Uuid>,
    /// Alternatives (as written) that matched no candidate.
    pub unmatched: Vec<String>,
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |message: String| SelectorError {
            selector: s.to_string(),
            message,
        };
        if s.len() > MAX_SELECTOR_LEN {
            return Err(err(format!(
                "it is {} bytes long; at most {MAX_SELECTOR_LEN} are accepted",
                s.len()
            )));
        }
        if s.trim().is_empty() {
            return Err(err(
                "it is empty; use 'all', or terms such as 'country:DE', 'name:lab-*' or 'asn:3320@2'"
                    .into(),
            ));
        }
        let parts: Vec<&str> = s.split(',').collect();
        if parts.len() > MAX_ALTERNATIVES {
            return Err(err(format!(
                "it has {} alternatives; at most {MAX_ALTERNATIVES} are accepted",
                parts.len()
            )));
        }
        let mut alternatives = Vec::with_capacity(parts.len());
        for part in parts {
            alternatives.push(parse_alternative(part.trim()).map_err(err)?);
        }
        Ok(Selector { alternatives })
    }
}

fn parse_alternative(text: &str) -> Result<Alternative, String> {
    if text.is_empty() {
        return Err("an alternative between commas is empty".into());
    }
    let (body, limit) = match text.rsplit_once('@') {
        Some((body, n)) => {
            let n = n.trim();
            let limit: u32 = n.parse().map_err(|_| {
                format!(
                    "'@{n}' is not a limit; write @N with N a whole number from 1 to {MAX_LIMIT}"
                )
            })?;
            if limit == 0 || limit > MAX_LIMIT {
                return Err(format!(
                    "'@{n}' is out of range; the limit must be from 1 to {MAX_LIMIT}"
                ));
            }
            (body.trim(), Some(limit))
        }
        None => (text, None),
    };
    if body.contains('@') {
        return Err(format!(
            "'{text}' has more than one '@'; a limit comes once, at the end of an alternative"
        ));
    }
    if body.is_empty() {
        return Err(format!(
            "'{text}' has a limit but no condition before the '@'"
        ));
    }
    let words: Vec<&str> = body.split('+').map(str::trim).collect();
    if words.len() > MAX_ATOMS {
        return Err(format!(
            "'{text}' joins {} conditions; at most {MAX_ATOMS} are accepted",
            words.len()
        ));
    }
    let mut atoms = Vec::with_capacity(words.len());
    for w in words {
        atoms.push(parse_atom(w)?);
    }
    if atoms.len() > 1 && atoms.contains(&Atom::All) {
        return Err(format!(
            "'{body}' combines 'all' with other conditions; 'all' already selects every agent, so use the other conditions alone"
        ));
    }
    let mut seen = BTreeSet::new();
    for a in &atoms {
        if let Atom::Field { key, .. } = a
            && matches!(
                key,
                Key::Id | Key::Name | Key::Country | Key::City | Key::Region | Key::Asn
            )
            && !seen.insert(key.clone())
        {
            return Err(format!(
                "'{body}' requires '{}' twice with '+'; an agent has one {0}, so use ',' to accept either",
                key.as_str()
            ));
        }
    }
    Ok(Alternative { atoms, limit })
}

fn parse_atom(w: &str) -> Result<Atom, String> {
    if w.is_empty() {
        return Err("a '+' has nothing on one side".into());
    }
    if w.eq_ignore_ascii_case("all") {
        return Ok(Atom::All);
    }
    let Some((key, value)) = w.split_once(':') else {
        return Err(format!(
            "'{w}' is not a condition; write 'all', 'msm:<id>' or KEY:VALUE such as 'country:DE', 'city:Berlin', 'name:lab-*', 'asn:3320' or a label like 'env:prod'"
        ));
    };
    let key = key.trim().to_ascii_lowercase();
    let value = value.trim();
    if key.is_empty() {
        return Err(format!("'{w}' has no key before the ':'"));
    }
    if value.is_empty() {
        return Err(format!(
            "'{w}' has no value after the ':'; use '*' to accept any value"
        ));
    }
    if key == "msm" {
        let id = value.parse::<Uuid>().map_err(|_| {
            format!(
                "'{value}' is not a measurement id; 'msm:' takes the id of an earlier measurement"
            )
        })?;
        return Ok(Atom::Measurement(id));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
        || key.len() > 63
    {
        return Err(format!(
            "'{key}' is not a valid key; keys are id, name, country, city, region, asn or a label key of letters, digits and _ - . /"
        ));
    }
    if value.chars().any(|c| c.is_control() || c == ':') {
        return Err(format!(
            "the value '{value}' contains a ':' or a control character"
        ));
    }
    let key = Key::parse(&key);
    match key {
        Key::Country => {
            let plain = value.chars().filter(|c| *c != '*').count();
            if !value.contains('*')
                && (plain != 2 || !value.chars().all(|c| c.is_ascii_alphabetic()))
            {
                return Err(format!(
                    "'{value}' is not a country; use a two-letter ISO 3166 code such as DE or US"
                ));
            }
        }
        Key::Asn => {
            let digits = value
                .strip_prefix("AS")
                .or_else(|| value.strip_prefix("as"))
                .unwrap_or(value);
            if !digits.chars().all(|c| c.is_ascii_digit() || c == '*')
                || (!digits.contains('*') && digits.parse::<u32>().is_err())
            {
                return Err(format!(
                    "'{value}' is not an AS number; write it as 3320 or AS3320"
                ));
            }
        }
        _ => {}
    }
    let pattern = match key {
        Key::Asn => value
            .strip_prefix("AS")
            .or_else(|| value.strip_prefix("as"))
            .unwrap_or(value)
            .to_string(),
        _ => value.to_string(),
    };
    Ok(Atom::Field { key, pattern })
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::All => f.write_str("all"),
            Atom::Measurement(id) => write!(f, "msm:{id}"),
            Atom::Field { key, pattern } => write!(f, "{}:{pattern}", key.as_str()),
        }
    }
}

impl fmt::Display for Alternative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.atoms.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            write!(f, "{a}")?;
        }
        if let Some(n) = self.limit {
            write!(f, "@{n}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl Serialize for Selector {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Case-insensitive glob match where `*` matches any run of characters (also none).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    // Classic greedy matcher with backtracking to the last star: linear in practice.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

impl Atom {
    fn matches(&self, a: &AgentFacts, measurements: &HashMap<Uuid, BTreeSet<Uuid>>) -> bool {
        match self {
            Atom::All => true,
            Atom::Measurement(m) => measurements.get(m).is_some_and(|set| set.contains(&a.id)),
            Atom::Field { key, pattern } => {
                let opt = |v: &Option<String>| v.as_deref().is_some_and(|v| glob_match(pattern, v));
                match key {
                    Key::Id => glob_match(pattern, &a.id.to_string()),
                    Key::Name => glob_match(pattern, &a.name),
                    Key::Country => opt(&a.country),
                    Key::City => opt(&a.city),
                    Key::Region => opt(&a.region),
                    Key::Asn => a.asn.is_some_and(|n| glob_match(pattern, &n.to_string())),
                    Key::Label(l) => a.labels.get(l).is_some_and(|v| glob_match(pattern, v)),
                }
            }
        }
    }
}

impl Alternative {
    /// Whether an agent satisfies every atom.
    pub fn matches(&self, a: &AgentFacts, measurements: &HashMap<Uuid, BTreeSet<Uuid>>) -> bool {
        self.atoms.iter().all(|atom| atom.matches(a, measurements))
    }

    /// The matching candidates, limited and spread over locations: round-robin over countries
    /// (in order of first appearance), and inside a country round-robin over its cities, each
    /// place in candidate order.
    fn pick<'a>(
        &self,
        candidates: &'a [AgentFacts],
        measurements: &HashMap<Uuid, BTreeSet<Uuid>>,
    ) -> Vec<&'a AgentFacts> {
        let matching: Vec<&AgentFacts> = candidates
            .iter()
            .filter(|a| self.matches(a, measurements))
            .collect();
        let Some(limit) = self.limit.map(|n| n as usize) else {
            return matching;
        };
        if matching.len() <= limit {
            return matching;
        }
        // Countries in order of first appearance; inside each, its (region, city) groups.
        let mut countries: Vec<(Option<String>, CountryQueue<'a>)> = Vec::new();
        for a in matching {
            let (country, region, city) = a.location();
            let idx = match countries.iter().position(|(c, _)| *c == country) {
                Some(i) => i,
                None => {
                    countries.push((country, CountryQueue::default()));
                    countries.len() - 1
                }
            };
            countries[idx].1.push((region, city), a);
        }
        let mut picked = Vec::with_capacity(limit);
        while picked.len() < limit {
            for (_, q) in countries.iter_mut() {
                if picked.len() == limit {
                    break;
                }
                if let Some(a) = q.take() {
                    picked.push(a);
                }
            }
        }
        picked
    }
}

/// A place inside a country: (region, city), lower case.
type Place = (Option<String>, Option<String>);

/// The agents of one country, grouped by (region, city), taken round-robin over the groups.
#[derive(Default)]
struct CountryQueue<'a> {
    groups: Vec<(Place, std::collections::VecDeque<&'a AgentFacts>)>,
    next: usize,
}

impl<'a> CountryQueue<'a> {
    fn push(&mut self, place: Place, a: &'a AgentFacts) {
        match self.groups.iter_mut().find(|(p, _)| *p == place) {
            Some((_, q)) => q.push_back(a),
            None => self.groups.push((place, [a].into_iter().collect())),
        }
    }

    fn take(&mut self) -> Option<&'a AgentFacts> {
        for _ in 0..self.groups.len() {
            let i = self.next % self.groups.len();
            self.next += 1;
            if let Some(a) = self.groups[i].1.pop_front() {
                return Some(a);
            }
        }
        None
    }
}

impl Selector {
    /// The measurement ids referenced by `msm:` atoms, for the caller to resolve.
    pub fn measurement_refs(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .alternatives
            .iter()
            .flat_map(|a| a.atoms.iter())
            .filter_map(|a| match a {
                Atom::Measurement(id) => Some(*id),
                _ => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Chooses agents among `candidates`. `measurements` maps each referenced measurement id to
    /// its agents (ids missing from the map select nothing).
    pub fn select(
        &self,
        candidates: &[AgentFacts],
        measurements: &HashMap<Uuid, BTreeSet<Uuid>>,
    ) -> Selection {
        let mut chosen = Vec::new();
        let mut seen = BTreeSet::new();
        let mut unmatched = Vec::new();
        for alt in &self.alternatives {
            let picked = alt.pick(candidates, measurements);
            if picked.is_empty() {
                unmatched.push(alt.to_string());
            }
            for a in picked {
                if seen.insert(a.id) {
                    chosen.push(a.id);
                }
            }
        }
        Selection {
            agents: chosen,
            unmatched,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    fn agent(
        n: u8,
        name: &str,
        country: &str,
        city: &str,
        asn: u32,
        labels: &[(&str, &str)],
    ) -> AgentFacts {
        AgentFacts {
            id: Uuid::from_u128(u128::from(n)),
            name: name.into(),
            country: Some(country.into()),
            city: Some(city.into()),
            region: None,
            asn: Some(asn),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn fleet() -> Vec<AgentFacts> {
        vec![
            agent(1, "fra-1", "DE", "Frankfurt", 3320, &[("env", "prod")]),
            agent(2, "fra-2", "DE", "Frankfurt", 3320, &[("env", "lab")]),
            agent(3, "ber-1", "DE", "Berlin", 3320, &[("env", "prod")]),
            agent(4, "muc-1", "DE", "Munich", 8881, &[]),
            agent(5, "par-1", "FR", "Paris", 3215, &[("env", "prod")]),
            agent(6, "lab-1", "NL", "Amsterdam", 1136, &[("rack", "a/1")]),
        ]
    }

    fn pick(sel: &str) -> Vec<u128> {
        let s: Selector = sel.parse().unwrap_or_else(|e| panic!("{e}"));
        s.select(&fleet(), &HashMap::new())
            .agents
            .into_iter()
            .map(|u| u.as_u128())
            .collect()
    }

    #[test_case("all", &[1, 2, 3, 4, 5, 6] ; "all selects every candidate")]
    #[test_case("country:DE", &[1, 2, 3, 4] ; "a country selects its agents")]
    #[test_case("country:de", &[1, 2, 3, 4] ; "countries are case insensitive")]
    #[test_case("name:lab-1", &[6] ; "a name selects one agent")]
    #[test_case("name:fra-*", &[1, 2] ; "a wildcard matches a name prefix")]
    #[test_case("name:*-1", &[1, 3, 4, 5, 6] ; "a wildcard matches a name suffix")]
    #[test_case("country:DE+asn:3320", &[1, 2, 3] ; "plus joins conditions with AND")]
    #[test_case("asn:AS3320", &[1, 2, 3] ; "an AS prefix is accepted")]
    #[test_case("country:FR, name:lab-1", &[5, 6] ; "comma joins alternatives with OR")]
    #[test_case("env:prod", &[1, 3, 5] ; "any other key is a label")]
    #[test_case("env:prod+country:DE", &[1, 3] ; "labels combine with location")]
    #[test_case("rack:a/1", &[6] ; "label values may hold slashes")]
    #[test_case("city:frank*", &[1, 2] ; "cities match with wildcards")]
    #[test_case("country:DE@3", &[1, 3, 4] ; "a limit spreads over cities before repeating one")]
    #[test_case("country:DE@5", &[1, 2, 3, 4] ; "a limit above the matches takes them all")]
    #[test_case("all@2", &[1, 5] ; "all with a limit spreads over countries")]
    #[test_case("all@4", &[1, 5, 6, 3] ; "a limit spreads over countries then cities")]
    #[test_case("country:DE@1, country:DE@1", &[1] ; "an agent chosen twice counts once")]
    #[test_case("country:US", &[] ; "no match selects nothing")]
    #[test_case("id:00000000-0000-0000-0000-000000000004", &[4] ; "an id selects that agent")]
    #[test_case("id:00000000-0000-0000-0000-00000000000*", &[1, 2, 3, 4, 5, 6] ; "an id prefix with a wildcard")]
    #[test_case(" country : FR , name:lab-1 @ 1 ", &[5, 6] ; "spaces around operators are ignored")]
    fn selects(sel: &str, want: &[u128]) {
        assert_eq!(pick(sel), want, "{sel}");
    }

    #[test_case("", "empty" ; "an empty selector is rejected")]
    #[test_case("   ", "empty" ; "a blank selector is rejected")]
    #[test_case("country:DE,", "empty" ; "a trailing comma is rejected")]
    #[test_case("country:DE++asn:1", "nothing on one side" ; "a doubled plus is rejected")]
    #[test_case("germany", "not a condition" ; "a bare word is rejected")]
    #[test_case("country:", "no value" ; "a missing value is rejected")]
    #[test_case(":DE", "no key" ; "a missing key is rejected")]
    #[test_case("country:Germany", "two-letter" ; "a long country is rejected")]
    #[test_case("asn:cogent", "AS number" ; "a word as ASN is rejected")]
    #[test_case("asn:99999999999", "AS number" ; "an ASN above 32 bits is rejected")]
    #[test_case("country:DE@0", "out of range" ; "a zero limit is rejected")]
    #[test_case("country:DE@x", "not a limit" ; "a word as limit is rejected")]
    #[test_case("country:DE@1@2", "more than one" ; "two limits are rejected")]
    #[test_case("@3", "no condition" ; "a limit alone is rejected")]
    #[test_case("msm:42", "measurement id" ; "a bad measurement id is rejected")]
    #[test_case("all+country:DE", "combines 'all'" ; "all with conditions is rejected")]
    #[test_case("country:DE+country:FR", "twice" ; "the same field twice with plus is rejected")]
    #[test_case("we ird:x", "not a valid key" ; "a key with a space is rejected")]
    fn rejects(sel: &str, needle: &str) {
        let e = sel.parse::<Selector>().unwrap_err();
        assert!(e.to_string().contains(needle), "{sel}: {e}");
        assert!(e.to_string().contains(&format!("'{sel}'")), "{e}");
    }

    #[test]
    fn overlong_selectors_are_rejected() {
        let long = "name:x,".repeat(400);
        assert!(long.parse::<Selector>().is_err());
    }

    #[test]
    fn measurement_references_resolve_through_the_caller() {
        let m = Uuid::from_u128(99);
        let s: Selector = format!("msm:{m}+country:DE").parse().unwrap();
        assert_eq!(s.measurement_refs(), vec![m]);
        let mut refs = HashMap::new();
        refs.insert(
            m,
            [Uuid::from_u128(2), Uuid::from_u128(5)]
                .into_iter()
                .collect(),
        );
        let sel = s.select(&fleet(), &refs);
        assert_eq!(sel.agents, vec![Uuid::from_u128(2)]);
        // An unknown measurement selects nothing, and the alternative is reported.
        let sel = s.select(&fleet(), &HashMap::new());
        assert!(sel.agents.is_empty());
        assert_eq!(sel.unmatched, vec![format!("msm:{m}+country:DE")]);
    }

    #[test]
    fn unmatched_alternatives_are_reported() {
        let s: Selector = "country:DE@1,country:US".parse().unwrap();
        let sel = s.select(&fleet(), &HashMap::new());
        assert_eq!(sel.agents.len(), 1);
        assert_eq!(sel.unmatched, vec!["country:US".to_string()]);
    }

    #[test]
    fn selectors_round_trip_through_text_and_json() {
        for text in [
            "country:DE+asn:3320@2,name:lab-1",
            "all",
            "env:prod+city:*furt@10",
        ] {
            let s: Selector = text.parse().unwrap();
            assert_eq!(s.to_string(), text);
            let json = serde_json::to_string(&s).unwrap();
            let back: Selector = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s);
        }
        assert!(serde_json::from_str::<Selector>("\"country:\"").is_err());
    }

    #[test_case("a*c", "abc", true ; "star in the middle")]
    #[test_case("a*c", "ac", true ; "star matches nothing")]
    #[test_case("a*c", "abd", false ; "wrong suffix")]
    #[test_case("*", "", true ; "star matches the empty string")]
    #[test_case("a**b*", "axxbyy", true ; "several stars")]
    #[test_case("ABC", "abc", true ; "case is ignored")]
    #[test_case("abc", "abcd", false ; "no implicit suffix")]
    fn globs(p: &str, t: &str, want: bool) {
        assert_eq!(glob_match(p, t), want);
    }
}
