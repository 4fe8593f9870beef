//! `mftplus cloud rotate-jwt`: a new HS256 signing secret without logging anyone out. The
//! current secret moves to the previous-secret file (it keeps verifying the tokens it signed),
//! a new one takes its place, and every cloud reading these files picks both up within
//! `auth::keyring::RELOAD_INTERVAL`. Audited as `jwt_key_rotated`.
//!
//! The previous key must outlive every token it signed: refresh tokens live
//! `auth.jwt.refresh_expiration`. A rotation sooner than that after the last one would drop a
//! key that live tokens still need, so it is refused unless forced (whose effect is that those
//! sessions sign in again).

use crate::audit::AuditEvent;
use crate::config::{JwtAlgorithm, LoadedConfig};
use crate::server::Cloud;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, thiserror::Error)]
pub enum RotateJwtError {
    #[error("auth.jwt.algorithm is RS256: rotate by putting a new key pair in place and listing the old public key under auth.jwt.previous_public_keys (docs/key-rotation.md); the cloud reloads them without a restart")]
    NotHs256,
    #[error("{key} does not come from a file ({var}): this command rewrites the secret files, so set {var} (mode 0600, owned by the service user); with secrets in plain variables, rotate by hand as docs/key-rotation.md says")]
    NotFromFile {
        key: &'static str,
        var: &'static str,
    },
    #[error("the previous secret still verifies tokens signed before the last rotation until {until} (auth.jwt.refresh_expiration after it); rotate after that, or with --force to end those sessions")]
    TooSoon { until: String },
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },
}

/// What a rotation did, for the operator. Key ids only: never a secret.
#[derive(Debug)]
pub struct JwtRotation {
    pub old_kid: String,
    pub new_kid: String,
    /// Until when the old key must keep verifying (its last tokens' expiry), Unix seconds.
    pub old_key_needed_until: i64,
}

impl Cloud {
    /// Rotates the HS256 signing secret in the files the configuration names.
    pub async fn rotate_jwt(&self, force: bool) -> Result<JwtRotation, RotateJwtError> {
        let state = self.state();
        let loaded: &LoadedConfig = &state.config;
        let jwt = &loaded.config.auth.jwt;
        if jwt.algorithm != JwtAlgorithm::HS256 {
            return Err(RotateJwtError::NotHs256);
        }
        let current_file = secret_file(loaded, "auth.jwt.secret", "JWT_SECRET_FILE")?;
        let previous_file = secret_file(
            loaded,
            "auth.jwt.previous_secret",
            "JWT_PREVIOUS_SECRET_FILE",
        )?;
        let now = state.clock.now_secs();
        let grace = (jwt.refresh_expiration.max(jwt.expiration) + jwt.leeway) as i64;
        if let Some(last_rotation) = modified_secs(&previous_file)? {
            if !force && now < last_rotation + grace {
                return Err(RotateJwtError::TooSoon {
                    until: crate::clock::rfc3339(((last_rotation + grace) * 1000).max(0)),
                });
            }
        }
        let current = read_secret(&current_file)?;
        let next = mftplus_crypto::secrets::random_base62(48);
        // The previous file first: between the two writes a reload sees the old secret twice,
        // never a set without it.
        write_secret_like(&previous_file, &current, &current_file)?;
        write_secret_like(&current_file, &next, &current_file)?;
        let rotation = JwtRotation {
            old_kid: crate::auth::jwt::hs256_kid(current.as_bytes()),
            new_kid: crate::auth::jwt::hs256_kid(next.as_bytes()),
            old_key_needed_until: now + grace,
        };
        state
            .audit(
                AuditEvent::new("jwt_key_rotated")
                    .actor("local operator (mftplus cloud rotate-jwt)")
                    .target("auth.jwt")
                    .details(serde_json::json!({
                        "old_kid": rotation.old_kid,
                        "new_kid": rotation.new_kid,
                        "forced": force,
                    })),
            )
            .await;
        Ok(rotation)
    }
}

fn secret_file(
    loaded: &LoadedConfig,
    key: &'static str,
    var: &'static str,
) -> Result<PathBuf, RotateJwtError> {
    loaded
        .secret_file(key)
        .ok_or(RotateJwtError::NotFromFile { key, var })
}

fn file_error(path: &Path, why: impl ToString) -> RotateJwtError {
    RotateJwtError::File {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

fn read_secret(path: &Path) -> Result<String, RotateJwtError> {
    let text = mftplus_base::read_private_to_string(path).map_err(|e| file_error(path, e))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// When the file was last written, `None` when it is empty (no rotation happened yet).
fn modified_secs(path: &Path) -> Result<Option<i64>, RotateJwtError> {
    let meta = std::fs::metadata(path).map_err(|e| file_error(path, e))?;
    if meta.len() == 0 {
        return Ok(None);
    }
    let modified = meta.modified().map_err(|e| file_error(path, e))?;
    let secs = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Ok(Some(secs))
}

/// Writes a secret file 0600, atomically, owned like `model` (the command runs as root while
/// the service reads the files as its own user).
fn write_secret_like(path: &Path, secret: &str, model: &Path) -> Result<(), RotateJwtError> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(model).map_err(|e| file_error(model, e))?;
    mftplus_base::write_private(path, format!("{secret}\n").as_bytes())
        .map_err(|e| file_error(path, e))?;
    let mine = std::fs::metadata(path).map_err(|e| file_error(path, e))?;
    if (mine.uid(), mine.gid()) != (owner.uid(), owner.gid()) {
        std::os::unix::fs::chown(path, Some(owner.uid()), Some(owner.gid()))
            .map_err(|e| file_error(path, e))?;
    }
    Ok(())
}
