//! What `send` leaves behind so `send --resume` can continue an interrupted upload:
//! `<state dir>/uploads/<transfer id>.json` (0600, directory 0700), removed once the transfer
//! is complete.
//!
//! No secrets: the file key is not here. The stream header is (it is public: the server holds
//! it, and its stanzas are sealed to the recipients), and the sender's own X25519 key, always
//! one of those recipients, unwraps the file key again on resume. What else is here only
//! serves to find the right upload and to refuse a file that changed since.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config_file;
use crate::error::CliError;

pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    pub version: u32,
    pub transfer_id: String,
    /// The server URL as the client normalised it.
    pub server: String,
    /// Absolute, canonical path of the file being sent.
    pub path: PathBuf,
    pub size: u64,
    pub mtime_secs: i64,
    pub mtime_nanos: i64,
    pub chunk_size: u32,
    /// `aes-256-gcm` or `chacha20-poly1305`.
    pub cipher: String,
    /// `none` or `zstd`.
    pub compression: String,
    /// Not recorded in the stream header, and chunks only come out identical with the same one.
    pub zstd_level: Option<i32>,
    pub recipients: Vec<String>,
    /// The name and mode recipients see, as sealed in the manifest.
    pub name: String,
    pub mode: Option<u32>,
    /// The stream header, base64 (standard alphabet), exactly as uploaded.
    pub header: String,
}

/// Size and modification time, the cheap test that the file is the one that was being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    pub size: u64,
    pub mtime_secs: i64,
    pub mtime_nanos: i64,
}

impl FileStamp {
    pub fn of(meta: &fs::Metadata) -> FileStamp {
        FileStamp {
            size: meta.len(),
            mtime_secs: meta.mtime(),
            mtime_nanos: meta.mtime_nsec(),
        }
    }
}

impl UploadState {
    pub fn stamp(&self) -> FileStamp {
        FileStamp {
            size: self.size,
            mtime_secs: self.mtime_secs,
            mtime_nanos: self.mtime_nanos,
        }
    }

    /// The recipients as a set: order and case do not make it another send.
    pub fn same_recipients(&self, others: &[String]) -> bool {
        let norm = |v: &[String]| {
            let mut v: Vec<String> = v.iter().map(|r| r.to_ascii_lowercase()).collect();
            v.sort();
            v.dedup();
            v
        };
        norm(&self.recipients) == norm(others)
    }
}

fn uploads_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("uploads")
}

/// Transfer ids are alphanumeric; anything else must never become part of a path.
fn file_for(state_dir: &Path, id: &str) -> Result<PathBuf, CliError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(CliError::new(
            "internal",
            format!("unexpected transfer id {id:?} from the server"),
        ));
    }
    Ok(uploads_dir(state_dir).join(format!("{id}.json")))
}

pub fn save(state_dir: &Path, state: &UploadState) -> Result<PathBuf, CliError> {
    let path = file_for(state_dir, &state.transfer_id)?;
    let text = serde_json::to_vec_pretty(state)
        .map_err(|e| CliError::new("internal", format!("cannot encode upload state: {e}")))?;
    // Creates the directory 0700 and the file 0600 via temp + rename.
    config_file::write_private(&path, &text)?;
    Ok(path)
}

pub fn remove(state_dir: &Path, id: &str) {
    if let Ok(path) = file_for(state_dir, id) {
        let _ = fs::remove_file(path);
    }
}

/// The newest saved upload of `path` to `server`, if any. Unreadable or foreign files in the
/// directory are skipped, not fatal: they cannot be the upload being asked for.
pub fn find(state_dir: &Path, server: &str, path: &Path) -> Result<Option<UploadState>, CliError> {
    let dir = uploads_dir(state_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::io(format!("cannot read {}", dir.display()), e)),
    };
    let mut best: Option<(std::time::SystemTime, UploadState)> = None;
    for entry in entries.flatten() {
        let file = entry.path();
        if file.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Ok(bytes) = fs::read(&file) else { continue };
        let Ok(state) = serde_json::from_slice::<UploadState>(&bytes) else {
            continue;
        };
        if state.version != STATE_VERSION || state.server != server || state.path != path {
            continue;
        }
        let written = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        if best.as_ref().is_none_or(|(t, _)| written > *t) {
            best = Some((written, state));
        }
    }
    Ok(best.map(|(_, s)| s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample(id: &str, path: &str) -> UploadState {
        UploadState {
            version: STATE_VERSION,
            transfer_id: id.into(),
            server: "http://127.0.0.1:1".into(),
            path: PathBuf::from(path),
            size: 10,
            mtime_secs: 1,
            mtime_nanos: 2,
            chunk_size: 65536,
            cipher: "aes-256-gcm".into(),
            compression: "none".into(),
            zstd_level: None,
            recipients: vec!["B@x.io".into(), "a@x.io".into()],
            name: "f".into(),
            mode: Some(0o644),
            header: "TUZUUA==".into(),
        }
    }

    #[test]
    fn saved_private_found_by_server_and_path_then_removed() {
        let dir = tempfile::tempdir().unwrap();
        let written = save(dir.path(), &sample("abc123", "/data/f")).unwrap();
        save(dir.path(), &sample("def456", "/data/g")).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&written), 0o600);
        assert_eq!(mode(written.parent().unwrap()), 0o700);
        fs::write(dir.path().join("uploads/junk.json"), b"{").unwrap();

        let found = find(dir.path(), "http://127.0.0.1:1", Path::new("/data/f"))
            .unwrap()
            .unwrap();
        assert_eq!(found, sample("abc123", "/data/f"));
        assert!(found.same_recipients(&["a@x.io".into(), "b@x.io".into()]));
        assert!(!found.same_recipients(&["a@x.io".into()]));
        assert!(find(dir.path(), "http://other:1", Path::new("/data/f"))
            .unwrap()
            .is_none());

        remove(dir.path(), "abc123");
        assert!(find(dir.path(), "http://127.0.0.1:1", Path::new("/data/f"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn ids_never_escape_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(save(dir.path(), &sample("../x", "/f")).is_err());
        assert!(find(Path::new("/nonexistent/dir"), "s", Path::new("/f"))
            .unwrap()
            .is_none());
    }
}
