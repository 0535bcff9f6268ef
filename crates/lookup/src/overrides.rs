//! Local AS name overrides (Pulse's "ASN DB"): a table ASN → name that replaces the data set's
//! name in every answer that carries an AS name, so an operator can call AS64500 "Our transit
//! (Frankfurt)" everywhere.
//!
//! Decisions: [`AsnOverrides`] is an in-memory map behind a read-write lock, cheap enough to
//! consult on every lookup (trace hops, flow enrichment). Persistence is separate: the table
//! lives in one JSON file in the data directory ([`OverrideFile`]), which the CLI and the server
//! share (the server's data directory is the one lookups read), so a name set through
//! `vantage asn --set-name` or through `PUT /api/v1/asn-overrides/{asn}` shows in both. The server
//! re-reads the file when it changes on disk ([`AsnOverrides::replace_all`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::datadir::write_atomic;
use crate::error::{Error, Result};

/// Longest name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// One override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsnOverride {
    /// The AS number.
    pub asn: u32,
    /// The name to show.
    pub name: String,
    /// When it was last set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// Where an AS name in an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameSource {
    /// The local override table.
    Override,
    /// The IP → ASN data set.
    Dataset,
}

/// An AS name as shown, with its origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsName {
    /// The name to show, if any.
    pub name: Option<String>,
    /// Where it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<NameSource>,
    /// The data set's own name, when an override replaced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
}

/// Checks and normalises an override name: trimmed, not empty, no control characters, at most
/// [`MAX_NAME_CHARS`] characters.
pub fn validate_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() {
        return Err(Error::Invalid("the AS name must not be empty".into()));
    }
    if n.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "the AS name must not contain control characters (newlines, tabs …)".into(),
        ));
    }
    if n.chars().count() > MAX_NAME_CHARS {
        return Err(Error::Invalid(format!(
            "the AS name is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(n.to_string())
}

/// The override table in memory.
#[derive(Debug, Default)]
pub struct AsnOverrides {
    map: RwLock<BTreeMap<u32, AsnOverride>>,
}

impl AsnOverrides {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// A table holding `list` (validated).
    pub fn from_list(list: Vec<AsnOverride>) -> Result<Self> {
        let t = Self::new();
        t.replace_all(list)?;
        Ok(t)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u32, AsnOverride>> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u32, AsnOverride>> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the whole table (validating every name; nothing changes on error).
    pub fn replace_all(&self, list: Vec<AsnOverride>) -> Result<()> {
        let mut m = BTreeMap::new();
        for mut o in list {
            o.name = validate_name(&o.name)
                .map_err(|e| Error::Invalid(format!("override for AS{}: {e}", o.asn)))?;
            m.insert(o.asn, o);
        }
        *self.write() = m;
        Ok(())
    }

    /// The override for `asn`.
    pub fn get(&self, asn: u32) -> Option<AsnOverride> {
        self.read().get(&asn).cloned()
    }

    /// Every override, by AS number.
    pub fn list(&self) -> Vec<AsnOverride> {
        self.read().values().cloned().collect()
    }

    /// Sets (or replaces) the override for `asn`.
    pub fn set(&self, asn: u32, name: &str) -> Result<AsnOverride> {
        let o = AsnOverride {
            asn,
            name: validate_name(name)?,
            updated_at: Some(Utc::now()),
        };
        self.write().insert(asn, o.clone());
        Ok(o)
    }

    /// Removes the override for `asn`; false when there was none.
    pub fn remove(&self, asn: u32) -> bool {
        self.write().remove(&asn).is_some()
    }

    /// The name to show for `asn`, given the data set's name.
    pub fn apply(&self, asn: u32, dataset_name: Option<&str>) -> AsName {
        let dataset_name = dataset_name.filter(|n| !n.is_empty());
        match self.read().get(&asn) {
            Some(o) => AsName {
                name: Some(o.name.clone()),
                source: Some(NameSource::Override),
                dataset_name: dataset_name.map(String::from),
            },
            None => AsName {
                name: dataset_name.map(String::from),
                source: dataset_name.map(|_| NameSource::Dataset),
                dataset_name: None,
            },
        }
    }
}

/// The override table's file in the data directory (a JSON array of [`AsnOverride`]).
#[derive(Debug, Clone)]
pub struct OverrideFile {
    path: PathBuf,
}

impl OverrideFile {
    /// The file at `path` (it need not exist).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        OverrideFile { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the table; a missing file is an empty table.
    pub fn load(&self) -> Result<AsnOverrides> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AsnOverrides::new()),
            Err(e) => return Err(Error::io("cannot read", &self.path, e)),
        };
        let list: Vec<AsnOverride> = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Data(format!(
                "{} is not a valid override list: {e}",
                self.path.display()
            ))
        })?;
        AsnOverrides::from_list(list)
            .map_err(|e| Error::Data(format!("{}: {e}", self.path.display())))
    }

    /// Changes the table on disk as one step among processes: under an exclusive lock on a
    /// file beside it, reads the table as it is now (the CLI may have changed it beside a
    /// running server, or the server beside the CLI), applies `change`, and writes it back.
    /// Returns what `change` returned and the table as it now is, for the caller's copy.
    pub fn update<R>(
        &self,
        change: impl FnOnce(&AsnOverrides) -> Result<R>,
    ) -> Result<(R, Vec<AsnOverride>)> {
        let lock_path = self.path.with_extension("json.lock");
        if let Some(dir) = lock_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io("cannot open", &lock_path, e))?;
        lock.lock()
            .map_err(|e| Error::io("cannot lock", &lock_path, e))?;
        let table = self.load()?;
        let before = table.list();
        let out = change(&table)?;
        let after = table.list();
        // A change that changed nothing (removing an absent entry) leaves the file alone.
        if after != before {
            self.save(&table)?;
        }
        // The lock is released when `lock` is closed, after the new table is in place.
        Ok((out, after))
    }

    /// Writes the table atomically.
    pub fn save(&self, table: &AsnOverrides) -> Result<()> {
        let list = table.list();
        write_atomic(&self.path, |w| {
            serde_json::to_writer_pretty(&mut *w, &list)
                .map_err(|e| Error::Data(format!("cannot encode the overrides: {e}")))?;
            w.write_all(b"\n")
                .map_err(|e| Error::io("cannot write", &self.path, e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_replaces_the_dataset_name_and_keeps_it_visible() {
        let t = AsnOverrides::new();
        t.set(64500, "  Our transit (FRA)  ").unwrap();
        let n = t.apply(64500, Some("EXAMPLE-NET"));
        assert_eq!(n.name.as_deref(), Some("Our transit (FRA)"));
        assert_eq!(n.source, Some(NameSource::Override));
        assert_eq!(n.dataset_name.as_deref(), Some("EXAMPLE-NET"));
        let n = t.apply(64501, Some("OTHER"));
        assert_eq!(n.name.as_deref(), Some("OTHER"));
        assert_eq!(n.source, Some(NameSource::Dataset));
        let n = t.apply(64502, None);
        assert_eq!(n.name, None);
        assert_eq!(n.source, None);
        // An override also names an AS the data set has no name for.
        t.set(64502, "Lab").unwrap();
        assert_eq!(t.apply(64502, None).name.as_deref(), Some("Lab"));
        assert!(t.remove(64500));
        assert!(!t.remove(64500));
    }

    #[test]
    fn bad_names_are_refused() {
        let t = AsnOverrides::new();
        assert!(t.set(1, "   ").is_err());
        assert!(t.set(1, "a\nb").is_err());
        assert!(t.set(1, &"x".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(t.list().is_empty());
    }

    #[test]
    fn file_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let f = OverrideFile::new(dir.path().join("lookup/asn-overrides.json"));
        assert!(f.load().unwrap().list().is_empty());
        let t = AsnOverrides::new();
        t.set(64500, "A").unwrap();
        t.set(13335, "B").unwrap();
        f.save(&t).unwrap();
        let back = f.load().unwrap();
        assert_eq!(back.list(), t.list());
        assert_eq!(back.list()[0].asn, 13335, "sorted by AS number");
        std::fs::write(f.path(), "[{\"asn\": 1, \"name\": \"x\", \"colour\": 3}]").unwrap();
        let e = f.load().unwrap_err();
        assert!(e.to_string().contains("not a valid override list"), "{e}");
        let e = f.update(|t| t.set(2, "y")).unwrap_err();
        assert!(
            e.to_string().contains("not a valid override list"),
            "a damaged file is not overwritten: {e}"
        );
    }

    /// Two holders of the same file (a server and the CLI beside it) each change it through
    /// `update`: neither change is lost, whatever each had in memory.
    #[test]
    fn updates_from_two_holders_keep_both_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lookup/asn-overrides.json");
        let (server, cli) = (OverrideFile::new(&path), OverrideFile::new(&path));
        let (_, after_server) = server.update(|t| t.set(64500, "Server-set")).unwrap();
        assert_eq!(after_server.len(), 1);
        let (_, after_cli) = cli.update(|t| t.set(64501, "Cli-set")).unwrap();
        let asns: Vec<u32> = after_cli.iter().map(|o| o.asn).collect();
        assert_eq!(
            asns,
            [64500, 64501],
            "the CLI's write kept the server's entry"
        );
        let (removed, after) = server.update(|t| Ok(t.remove(64500))).unwrap();
        assert!(removed);
        let asns: Vec<u32> = after.iter().map(|o| o.asn).collect();
        assert_eq!(asns, [64501], "the server's write kept the CLI's entry");
        assert_eq!(server.load().unwrap().list(), after);
    }
}
