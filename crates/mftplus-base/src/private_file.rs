//! Files only their owner may read: secrets, private keys, local state.
//!
//! Reading refuses a file that group or others can access (the operator fixes the mode; we
//! never chmod someone's key behind their back). Writing goes through a 0600 temporary file in
//! the same directory, synced and renamed, so a reader sees the old or the new content, never a
//! mix, and the content is never briefly readable by others.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PrivateFileError {
    #[error(
        "{path} is accessible by group or others (mode {mode:o}); run `chmod {want:o} {path}`"
    )]
    Insecure { path: PathBuf, mode: u32, want: u32 },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl PrivateFileError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            PrivateFileError::Insecure { .. } => "insecure_permissions",
            PrivateFileError::Io { .. } => "io",
        }
    }
}

/// For callers whose own error type carries an `io::Error` and names the path itself: an I/O
/// failure keeps its kind, an insecure file becomes `PermissionDenied` with the fix in the text.
impl From<PrivateFileError> for io::Error {
    fn from(err: PrivateFileError) -> io::Error {
        match err {
            PrivateFileError::Io { source, .. } => source,
            insecure => io::Error::new(io::ErrorKind::PermissionDenied, insecure.to_string()),
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PrivateFileError + '_ {
    move |source| PrivateFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Refuses `path` (file or directory) when group or others have any permission on it.
pub fn check_private(path: &Path) -> Result<(), PrivateFileError> {
    let meta = fs::metadata(path).map_err(io_error(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PrivateFileError::Insecure {
            path: path.to_path_buf(),
            mode,
            want: if meta.is_dir() { 0o700 } else { 0o600 },
        });
    }
    Ok(())
}

/// The file's text after [`check_private`].
pub fn read_private_to_string(path: &Path) -> Result<String, PrivateFileError> {
    check_private(path)?;
    fs::read_to_string(path).map_err(io_error(path))
}

/// Creates `dir` (and its parents) 0700 when missing, then refuses it when group or others
/// can access it.
pub fn ensure_private_dir(dir: &Path) -> Result<(), PrivateFileError> {
    if !dir.exists() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(dir))?;
    }
    check_private(dir)
}

/// Replaces `path` with `bytes`, mode 0600, atomically and durably (file and directory synced).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PrivateFileError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| PrivateFileError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".tmp.{}", std::process::id()));
    let temp = dir.join(temp_name);
    // A leftover from a crashed run with the same pid would make create_new fail.
    let _ = fs::remove_file(&temp);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        fs::File::open(&dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written.map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_are_private_and_readable_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        ensure_private_dir(&state).unwrap();
        assert_eq!(
            fs::metadata(&state).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let file = state.join("key");
        write_private(&file, b"secret").unwrap();
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_private_to_string(&file).unwrap(), "secret");
        write_private(&file, b"rotated").unwrap();
        assert_eq!(read_private_to_string(&file).unwrap(), "rotated");
        assert_eq!(
            fs::read_dir(&state).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn group_or_other_access_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        fs::write(&file, "x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_private_to_string(&file).unwrap_err();
        assert_eq!(err.code(), "insecure_permissions");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        let open_dir = dir.path().join("open");
        fs::create_dir(&open_dir).unwrap();
        fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_private_dir(&open_dir).unwrap_err();
        assert!(err.to_string().contains("chmod 700"), "{err}");
    }

    #[test]
    fn converts_to_io_error_keeping_the_kind() {
        let dir = tempfile::tempdir().unwrap();
        let missing = read_private_to_string(&dir.path().join("missing")).unwrap_err();
        assert_eq!(io::Error::from(missing).kind(), io::ErrorKind::NotFound);
        let file = dir.path().join("key");
        fs::write(&file, "x").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o604)).unwrap();
        let insecure = io::Error::from(check_private(&file).unwrap_err());
        assert_eq!(insecure.kind(), io::ErrorKind::PermissionDenied);
        assert!(insecure.to_string().contains("chmod 600"), "{insecure}");
    }
}
