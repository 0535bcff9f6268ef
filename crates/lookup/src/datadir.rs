//! The data directory: where `vantage data update` writes the offline data sets and where every
//! lookup reads them (`--data-dir`, `VANTAGE_DATA_DIR`, default `./vantage-data`, shared with the
//! server). Lookup files live in its `lookup/` subdirectory.
//!
//! Decision: every file is written to a temporary name in the same directory and renamed into
//! place, so a failed or interrupted update never leaves a half-written data set behind, and a
//! running server that re-reads the directory sees either the old file or the new one.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "vantage-data";

/// Where a data set came from and what its licence asks for, reported with every answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// "oui", "asn", "country" or "rdap".
    pub dataset: String,
    /// The input format ("ip-location-db CSV", "iptoasn TSV", "MMDB", "IEEE CSV" …).
    pub format: String,
    /// The files or URLs it was built from.
    pub sources: Vec<String>,
    /// When `vantage data update` installed it.
    pub updated_at: DateTime<Utc>,
    /// How old the data themselves are, when known (HTTP Last-Modified, file time, MMDB build).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_date: Option<DateTime<Utc>>,
    /// The licence, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    /// The attribution the licence requires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
    /// Sizes ("ipv4_ranges", "entries" …).
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
}

/// The data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// A data directory at `root` (it need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `lookup/` inside it.
    pub fn lookup_dir(&self) -> PathBuf {
        self.root.join("lookup")
    }

    /// The merged IEEE CSV written by `data update oui`.
    pub fn oui_csv(&self) -> PathBuf {
        self.lookup_dir().join("oui.csv")
    }

    /// The compact IP → ASN table written by `data update asn`.
    pub fn asn_table(&self) -> PathBuf {
        self.lookup_dir().join("asn.bin")
    }

    /// The country MMDB written by `data update country`.
    pub fn country_mmdb(&self) -> PathBuf {
        self.lookup_dir().join("country.mmdb")
    }

    /// The RDAP bootstrap files written by `data update rdap`.
    pub fn rdap_dir(&self) -> PathBuf {
        self.lookup_dir().join("rdap")
    }

    /// The local ASN name overrides.
    pub fn asn_overrides(&self) -> PathBuf {
        self.lookup_dir().join("asn-overrides.json")
    }

    /// The description of a data set file (`FILE.info.json` beside it).
    pub fn info_path(data_file: &Path) -> PathBuf {
        let mut name = data_file.file_name().unwrap_or_default().to_os_string();
        name.push(".info.json");
        data_file.with_file_name(name)
    }

    /// Reads the description beside a data file, if there is one.
    pub fn read_info(data_file: &Path) -> Result<Option<DatasetInfo>> {
        let path = Self::info_path(data_file);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Data(format!("{} is damaged: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("cannot read", &path, e)),
        }
    }
}

/// Writes `path` atomically: `fill` writes into a temporary file in the same directory, which
/// is synced and renamed over `path` only if `fill` succeeds.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    let tmp = temp_name(path);
    let result = (|| {
        let f = std::fs::File::create(&tmp).map_err(|e| Error::io("cannot create", &tmp, e))?;
        let mut w = std::io::BufWriter::new(f);
        fill(&mut w)?;
        let f = w
            .into_inner()
            .map_err(|e| Error::io("cannot write", &tmp, e.into_error()))?;
        f.sync_all()
            .map_err(|e| Error::io("cannot write", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("cannot replace", path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes a data set's description beside it.
pub fn write_info(data_file: &Path, info: &DatasetInfo) -> Result<()> {
    let path = DataDir::info_path(data_file);
    write_atomic(&path, |w| {
        serde_json::to_writer_pretty(&mut *w, info)
            .map_err(|e| Error::Data(format!("cannot encode {}: {e}", path.display())))?;
        w.write_all(b"\n")
            .map_err(|e| Error::io("cannot write", &path, e))
    })
}

fn temp_name(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Opens a local file for reading, decompressing it when it is gzip (by its magic bytes).
pub fn open_maybe_gz(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let head = r
        .fill_buf()
        .map_err(|e| Error::io("cannot read", path, e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(r),
        )))
    } else {
        Ok(Box::new(r))
    }
}

/// Reads a whole local file, decompressing gzip.
pub fn read_maybe_gz(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    open_maybe_gz(path)?
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::io("cannot read", path, e))?;
    if out.len() as u64 > limit {
        return Err(Error::Data(format!(
            "{} is larger than {} MiB once decompressed; refusing to load it",
            path.display(),
            limit >> 20
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_the_old_file_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/file.txt");
        write_atomic(&path, |w| {
            w.write_all(b"one").map_err(|e| Error::io("w", &path, e))
        })
        .unwrap();
        let e = write_atomic(&path, |w| {
            w.write_all(b"half").unwrap();
            Err(Error::Data("broken input".into()))
        });
        assert!(e.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "temporary file left behind: {names:?}");
    }

    #[test]
    fn gzip_is_detected_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.txt");
        std::fs::write(&plain, b"hello\n").unwrap();
        let gz = dir.path().join("a.txt.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello\n").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_maybe_gz(&plain, 100).unwrap(), b"hello\n");
        assert_eq!(read_maybe_gz(&gz, 100).unwrap(), b"hello\n");
        assert!(read_maybe_gz(&gz, 3).is_err());
    }
}
