//! `manifest.json`: what a backup holds, which release wrote it, and the SHA-256 of its files.
//! Written last, to a temporary name that is synced and renamed, so a directory without it is a
//! backup that did not finish.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BackupError;

pub const MANIFEST_FILE: &str = "manifest.json";
/// What `format` says, so a stray JSON file is not taken for a manifest.
pub const FORMAT: &str = "mftplus-backup";
/// The layout this release writes and reads. A higher one was written by a newer release.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// The release that wrote the backup (`mftplus --version`).
    pub product_version: String,
    pub created_at: String,
    pub created_at_ms: i64,
    /// How long the backup took, from start to the manifest.
    pub duration_ms: u64,
    pub database: DatabasePart,
    pub payloads: PayloadPart,
    /// Always false: secrets are never in the data backup (see `secrets_note`).
    pub secrets_included: bool,
    pub secrets_note: String,
    /// Every file of the backup but this one and the payload copies, which `payloads.jsonl`
    /// (listed here) covers line by line.
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatabasePart {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The copy: `database.sqlite3` (a SQLite file) or `database.pgdump` (pg_dump's custom
    /// format).
    pub file: String,
    /// Applied migrations at the snapshot, in name order; the last one is the schema version.
    pub migrations: Vec<String>,
    pub schema_version: String,
    /// Rows per table at the snapshot.
    pub row_counts: BTreeMap<String, u64>,
    /// The audit chain's head at the snapshot.
    pub audit_head: Option<AuditHead>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PayloadMode {
    /// The objects are copied under `blobs/` (filesystem payload store).
    Copied,
    /// Only keys and hashes are recorded (S3): the bucket keeps the objects and needs its own
    /// versioning or replication.
    Referenced,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PayloadPart {
    /// `fs` or `s3`: the payload store that was backed up.
    pub backend: String,
    pub mode: PayloadMode,
    /// One JSON line per chunk row of the snapshot (`payloads.rs`).
    pub file: String,
    pub chunks: u64,
    /// Chunks whose bytes are in the backup (or, referenced, present in the bucket).
    pub present: u64,
    pub bytes: u64,
    /// Chunks of transfers kept on a hub (decision 0012): not in the cloud's store.
    pub site_local: u64,
    /// Chunks whose transfer expired and whose payload was swept after the snapshot.
    pub expired_after_snapshot: u64,
    /// Chunks missing from the payload store or not matching their row: damage in the source.
    pub damaged: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Size and SHA-256 (hex) of a file, read in 1 MiB pieces. Blocking.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1024 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// [`hash_file`] on a blocking thread, as a manifest entry named `name` inside `dir`.
pub async fn file_entry(dir: &Path, name: &str) -> Result<FileEntry, BackupError> {
    let path = dir.join(name);
    let shown = path.display().to_string();
    let (size, sha256) = tokio::task::spawn_blocking(move || hash_file(&path))
        .await
        .map_err(|err| BackupError::io(format!("hashing {shown}"), std::io::Error::other(err)))?
        .map_err(|err| BackupError::io(format!("cannot read {shown}"), err))?;
    Ok(FileEntry {
        path: name.to_string(),
        size,
        sha256,
    })
}

impl Manifest {
    /// Writes `manifest.json` into `dir` atomically: a synced temporary file renamed into
    /// place, then the directory synced.
    pub fn write(&self, dir: &Path) -> Result<(), BackupError> {
        let text = serde_json::to_vec_pretty(self)
            .map_err(|err| BackupError::Invalid(format!("cannot encode the manifest: {err}")))?;
        let temp = dir.join(format!(".{MANIFEST_FILE}.tmp"));
        let target = dir.join(MANIFEST_FILE);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut file| {
                file.write_all(&text)?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&temp, &target))
            .and_then(|()| std::fs::File::open(dir)?.sync_all());
        written.map_err(|err| BackupError::io(format!("cannot write {}", target.display()), err))
    }

    /// Reads `manifest.json` from `dir`. A directory without one is an unfinished backup.
    pub fn read(dir: &Path) -> Result<Manifest, BackupError> {
        let path = dir.join(MANIFEST_FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(BackupError::Incomplete(format!(
                    "{} has no {MANIFEST_FILE}: the backup did not finish (or this is not a backup)",
                    dir.display()
                )))
            }
            Err(err) => return Err(BackupError::io(format!("cannot read {}", path.display()), err)),
        };
        let value: serde_json::Value = serde_json::from_slice(&text).map_err(|err| {
            BackupError::Invalid(format!("{} is not valid JSON: {err}", path.display()))
        })?;
        if value["format"] != FORMAT {
            return Err(BackupError::Invalid(format!(
                "{} is not an MFTPlus backup manifest",
                path.display()
            )));
        }
        // The version first: a newer layout may not parse as this one.
        let version = value["format_version"].as_u64().unwrap_or(0);
        if version > u64::from(FORMAT_VERSION) {
            return Err(BackupError::Newer(format!(
                "the backup's format version {version} is newer than this release's ({FORMAT_VERSION})"
            )));
        }
        serde_json::from_value(value).map_err(|err| {
            BackupError::Invalid(format!("{} does not parse: {err}", path.display()))
        })
    }

    /// Refuses a backup written by a newer release (`product_version`) or of a newer schema
    /// (a migration `known` does not list).
    pub fn check_not_newer(
        &self,
        product_version: &str,
        known: &[&str],
    ) -> Result<(), BackupError> {
        let theirs = parse_version(&self.product_version).ok_or_else(|| {
            BackupError::Invalid(format!(
                "the manifest's product_version {:?} is not a version",
                self.product_version
            ))
        })?;
        let ours = parse_version(product_version).unwrap_or((0, 0, 0));
        if theirs > ours {
            return Err(BackupError::Newer(format!(
                "the backup was written by release {}, newer than this one ({product_version}); restore it with that release or a later one",
                self.product_version
            )));
        }
        let unknown: Vec<&str> = self
            .database
            .migrations
            .iter()
            .map(String::as_str)
            .filter(|name| !known.contains(name))
            .collect();
        if !unknown.is_empty() {
            return Err(BackupError::Newer(format!(
                "the backup's schema is newer than this release: it records migrations this release does not have ({})",
                unknown.join(", ")
            )));
        }
        Ok(())
    }
}

/// `major.minor.patch`, ignoring a pre-release or build suffix.
fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let core = text.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|part| part.parse::<u64>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(parse_version("0.10.2"), Some((0, 10, 2)));
        assert_eq!(parse_version("1.2.3-rc.1"), Some((1, 2, 3)));
        assert!(parse_version("0.10.2").unwrap() > parse_version("0.9.30").unwrap());
        assert_eq!(parse_version("1.2"), None);
        assert_eq!(parse_version("1.2.3.4"), None);
        assert_eq!(parse_version("x.y.z"), None);
    }
}
