//! Replay protection: the set of op nonces already accepted.
//!
//! [`FileNonceStore`] is the durable one the agent uses. Its file is an append-only log, one
//! record per line, each written and `fdatasync`ed before [`NonceStore::record`] returns, so an
//! op is never executed unless its nonce is on disk. A crash mid-append leaves at most a torn
//! last line, which [`FileNonceStore::open`] drops (that op was never reported as accepted, so
//! forgetting it is safe). Any other damage is refused, not repaired.
//!
//! Growth is bounded: a nonce is kept only while its op could still be accepted, i.e. until
//! its `expires_at` plus a retention margin (default one day, to ride out the clock being
//! stepped backwards); expired records are dropped by rewriting the file to a temporary file
//! and renaming it over the old one.
//!
//! One process owns a store file at a time; two stores over the same file would each miss the
//! other's records.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Where verified nonces are remembered.
pub trait NonceStore {
    /// Whether `nonce` was recorded (and not yet pruned).
    fn is_seen(&self, nonce: &str) -> Result<bool, NonceStoreError>;

    /// Records `nonce` for an op that expires at `expires_at`. Must be durable when it returns
    /// `Ok`, and must fail with [`NonceStoreError::AlreadySeen`] rather than record twice.
    fn record(&mut self, nonce: &str, expires_at: i64, now: i64) -> Result<(), NonceStoreError>;
}

#[derive(Debug, Error)]
pub enum NonceStoreError {
    #[error("nonce already recorded")]
    AlreadySeen,
    #[error("nonce is not printable ASCII without spaces")]
    InvalidNonce,
    #[error("nonce store I/O: {0}")]
    Io(#[from] io::Error),
    #[error("nonce store {path} is corrupt at line {line}")]
    Corrupt { path: PathBuf, line: usize },
    #[error("nonce store failed a write and must be reopened")]
    Poisoned,
}

/// In-memory store, for tests and for callers that do not need restarts.
#[derive(Debug, Default)]
pub struct MemoryNonceStore {
    seen: HashMap<String, i64>,
}

impl NonceStore for MemoryNonceStore {
    fn is_seen(&self, nonce: &str) -> Result<bool, NonceStoreError> {
        Ok(self.seen.contains_key(nonce))
    }

    fn record(&mut self, nonce: &str, expires_at: i64, _now: i64) -> Result<(), NonceStoreError> {
        if self.seen.contains_key(nonce) {
            return Err(NonceStoreError::AlreadySeen);
        }
        self.seen.insert(nonce.to_owned(), expires_at);
        Ok(())
    }
}

/// Records are kept this long past their op's expiry unless told otherwise.
pub const DEFAULT_RETENTION_SECS: i64 = 24 * 3600;
/// Expired records are looked for after this many appends, so the log holds at most this many
/// records beyond the live set (plus those within the retention margin).
const PRUNE_EVERY: usize = 1024;
const RECORD_VERSION: &str = "v1";

/// The durable, crash-safe nonce store (file mode 0600).
#[derive(Debug)]
pub struct FileNonceStore {
    path: PathBuf,
    file: File,
    /// Bytes of the log we know to be whole records; a failed append is cut back to this.
    file_len: u64,
    lines_in_file: usize,
    appends_since_prune: usize,
    live: HashMap<String, i64>,
    retention: i64,
    poisoned: bool,
}

impl FileNonceStore {
    /// Opens (or creates) the store at `path`, dropping a torn final record and records
    /// expired at `now`.
    pub fn open(path: impl AsRef<Path>, now: i64) -> Result<Self, NonceStoreError> {
        Self::open_with_retention(path, now, DEFAULT_RETENTION_SECS)
    }

    /// Like [`FileNonceStore::open`], keeping records `retention_secs` past their expiry.
    pub fn open_with_retention(
        path: impl AsRef<Path>,
        now: i64,
        retention_secs: i64,
    ) -> Result<Self, NonceStoreError> {
        let path = path.as_ref().to_path_buf();
        let existed = path.exists();
        let mut file = open_private(
            &path,
            OpenOptions::new().read(true).append(true).create(true),
        )?;
        if !existed {
            // Make the new directory entry itself durable, not just the file's contents.
            sync_parent(&path)?;
        }
        restrict_mode(&file)?;

        let mut content = Vec::new();
        file.read_to_end(&mut content)?;
        let (live, lines, good_len) = load(&path, &content)?;
        if good_len < content.len() {
            // A torn final record from a crash: cut it off so the next append starts clean.
            file.set_len(good_len as u64)?;
            file.sync_all()?;
        }
        let mut store = Self {
            path,
            file,
            file_len: good_len as u64,
            lines_in_file: lines,
            appends_since_prune: 0,
            live,
            retention: retention_secs.max(0),
            poisoned: false,
        };
        store.prune(now)?;
        Ok(store)
    }

    /// Number of nonces currently remembered.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Forgets nonces whose op expired more than the retention margin before `now`, and
    /// rewrites the file if it holds anything not live. Returns how many were forgotten.
    pub fn prune(&mut self, now: i64) -> Result<usize, NonceStoreError> {
        self.check_poisoned()?;
        self.appends_since_prune = 0;
        let before = self.live.len();
        let retention = self.retention;
        self.live
            .retain(|_, expires_at| expires_at.saturating_add(retention) >= now);
        let pruned = before - self.live.len();
        if self.lines_in_file != self.live.len() {
            self.compact()?;
        }
        Ok(pruned)
    }

    /// Writes the live set to a temporary file, syncs it and renames it over the log, so a
    /// crash leaves either the old log or the new one, never a mix.
    fn compact(&mut self) -> Result<(), NonceStoreError> {
        let tmp = self.path.with_extension("compact.tmp");
        let result = (|| -> io::Result<File> {
            let mut out = open_private(
                &tmp,
                OpenOptions::new().write(true).create(true).truncate(true),
            )?;
            restrict_mode(&out)?;
            let mut entries: Vec<(&String, &i64)> = self.live.iter().collect();
            entries.sort();
            let mut buf = Vec::new();
            for (nonce, expires_at) in entries {
                buf.extend_from_slice(encode_record(nonce, *expires_at).as_bytes());
            }
            out.write_all(&buf)?;
            out.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            sync_parent(&self.path)?;
            open_private(&self.path, OpenOptions::new().read(true).append(true))
        })();
        match result {
            Ok(file) => {
                self.file_len = file.metadata()?.len();
                self.file = file;
                self.lines_in_file = self.live.len();
                Ok(())
            }
            Err(e) => {
                // The old log is intact unless the rename happened; either way our handle may
                // no longer be the file at `path`, so insist on a reopen.
                let _ = fs::remove_file(&tmp);
                self.poisoned = true;
                Err(e.into())
            }
        }
    }

    fn check_poisoned(&self) -> Result<(), NonceStoreError> {
        if self.poisoned {
            Err(NonceStoreError::Poisoned)
        } else {
            Ok(())
        }
    }
}

impl NonceStore for FileNonceStore {
    fn is_seen(&self, nonce: &str) -> Result<bool, NonceStoreError> {
        self.check_poisoned()?;
        Ok(self.live.contains_key(nonce))
    }

    fn record(&mut self, nonce: &str, expires_at: i64, now: i64) -> Result<(), NonceStoreError> {
        self.check_poisoned()?;
        if nonce.is_empty() || !nonce.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(NonceStoreError::InvalidNonce);
        }
        if self.live.contains_key(nonce) {
            return Err(NonceStoreError::AlreadySeen);
        }
        let line = encode_record(nonce, expires_at);
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            // Cut a partial record back off so later appends do not land after garbage; if
            // even that fails, stop trusting this handle until a reopen re-reads the disk.
            let restored = self
                .file
                .set_len(self.file_len)
                .and_then(|()| self.file.sync_all());
            if restored.is_err() {
                self.poisoned = true;
            }
            return Err(e.into());
        }
        if let Err(e) = self.file.sync_data() {
            // After a failed fsync the kernel may have dropped the dirty pages and marked them
            // clean: neither "recorded" nor "not recorded" is known. Refuse this op and make
            // the caller reopen, which reads what actually reached the disk.
            self.poisoned = true;
            return Err(e.into());
        }
        self.file_len += line.len() as u64;
        self.lines_in_file += 1;
        self.appends_since_prune += 1;
        self.live.insert(nonce.to_owned(), expires_at);
        if self.appends_since_prune >= PRUNE_EVERY {
            // The record above is already durable; a failed compaction only poisons the
            // handle for later calls, it does not un-accept this op.
            let _ = self.prune(now);
        }
        Ok(())
    }
}

/// `v1 <expires_at> <nonce> <check>\n`, where `<check>` is the first 8 bytes of SHA-256 over
/// the rest of the line, hex: it tells a complete record from one torn or zero-filled by a
/// crash.
fn encode_record(nonce: &str, expires_at: i64) -> String {
    let body = format!("{RECORD_VERSION} {expires_at} {nonce}");
    format!("{body} {}\n", checksum(&body))
}

fn checksum(body: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_record(line: &[u8]) -> Option<(String, i64)> {
    let line = std::str::from_utf8(line).ok()?;
    let (body, check) = line.rsplit_once(' ')?;
    if checksum(body) != check {
        return None;
    }
    let mut parts = body.split(' ');
    let (version, expires_at, nonce) = (parts.next()?, parts.next()?, parts.next()?);
    if version != RECORD_VERSION || parts.next().is_some() || nonce.is_empty() {
        return None;
    }
    Some((nonce.to_owned(), expires_at.parse().ok()?))
}

type Loaded = (HashMap<String, i64>, usize, usize);

/// Reads the log: returns the live map, the number of whole records and the byte length of
/// the intact prefix. Only the final record may be damaged.
fn load(path: &Path, content: &[u8]) -> Result<Loaded, NonceStoreError> {
    let mut live = HashMap::new();
    let mut lines = 0;
    let mut good_len = 0;
    let mut rest = content;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let (line, next, complete) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..], true),
            None => (rest, &rest[rest.len()..], false),
        };
        let record = if complete { decode_record(line) } else { None };
        match record {
            Some((nonce, expires_at)) => {
                let slot = live.entry(nonce).or_insert(expires_at);
                *slot = (*slot).max(expires_at);
                lines += 1;
                good_len += line.len() + 1;
            }
            // The tail of the file is where a crash can tear a record: tolerate it there only.
            None if next.is_empty() => break,
            None => {
                return Err(NonceStoreError::Corrupt {
                    path: path.to_path_buf(),
                    line: number,
                })
            }
        }
        rest = next;
    }
    Ok((live, lines, good_len))
}

fn open_private(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// `mode(0o600)` only applies on creation; also tighten a file that already existed.
fn restrict_mode(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if file.metadata()?.permissions().mode() & 0o777 != 0o600 {
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

fn sync_parent(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const N1: &str = "nonce-0000000000000001";
    const N2: &str = "nonce-0000000000000002";

    #[test]
    fn survives_reopen_and_refuses_double_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nonces");
        let mut store = FileNonceStore::open(&path, 100).unwrap();
        store.record(N1, 1_000, 100).unwrap();
        assert!(matches!(
            store.record(N1, 1_000, 100),
            Err(NonceStoreError::AlreadySeen)
        ));
        drop(store);
        let store = FileNonceStore::open(&path, 200).unwrap();
        assert!(store.is_seen(N1).unwrap());
        assert!(!store.is_seen(N2).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn torn_final_record_is_dropped_and_log_stays_appendable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nonces");
        FileNonceStore::open(&path, 0)
            .unwrap()
            .record(N1, 1_000, 0)
            .unwrap();
        let whole = fs::read(&path).unwrap();
        let torn = encode_record(N2, 1_000);
        let mut damaged = whole.clone();
        damaged.extend_from_slice(&torn.as_bytes()[..torn.len() / 2]);
        fs::write(&path, &damaged).unwrap();

        let mut store = FileNonceStore::open(&path, 0).unwrap();
        assert!(store.is_seen(N1).unwrap());
        assert!(!store.is_seen(N2).unwrap());
        assert_eq!(fs::read(&path).unwrap(), whole);
        store.record(N2, 1_000, 0).unwrap();
        drop(store);
        let store = FileNonceStore::open(&path, 0).unwrap();
        assert!(store.is_seen(N1).unwrap() && store.is_seen(N2).unwrap());
    }

    #[test]
    fn damage_before_the_last_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nonces");
        let mut text = encode_record(N1, 5);
        text = text.replace(N1, "nonce-XXXXXXXXXXXXXXXX");
        text.push_str(&encode_record(N2, 5));
        fs::write(&path, text).unwrap();
        assert!(matches!(
            FileNonceStore::open(&path, 0),
            Err(NonceStoreError::Corrupt { line: 1, .. })
        ));
    }

    #[test]
    fn expired_records_are_pruned_with_margin_and_file_shrinks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nonces");
        let mut store = FileNonceStore::open_with_retention(&path, 0, 10).unwrap();
        store.record(N1, 100, 0).unwrap();
        store.record(N2, 1_000, 0).unwrap();
        // Expired, but within the retention margin: still remembered.
        assert_eq!(store.prune(105).unwrap(), 0);
        assert_eq!(store.prune(111).unwrap(), 1);
        assert!(!store.is_seen(N1).unwrap());
        assert!(store.is_seen(N2).unwrap());
        let content = fs::read_to_string(&path).unwrap();
        assert_eq!(content, encode_record(N2, 1_000));
        // Reopening later prunes on its own.
        let store = FileNonceStore::open_with_retention(&path, 2_000, 10).unwrap();
        assert!(store.is_empty());
        assert_eq!(fs::read(&path).unwrap().len(), 0);
    }

    #[test]
    fn log_growth_is_bounded_by_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nonces");
        let mut store = FileNonceStore::open_with_retention(&path, 0, 0).unwrap();
        // Every op expires one second after it is recorded; time advances by two.
        for i in 0..3_000i64 {
            let now = 2 * i;
            store
                .record(&format!("nonce-{i:016}"), now + 1, now)
                .unwrap();
        }
        let lines = fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines, store.lines_in_file);
        assert!(
            lines <= PRUNE_EVERY + 1,
            "log was not compacted: {lines} lines"
        );
        assert!(store.len() <= PRUNE_EVERY + 1);
    }
}
