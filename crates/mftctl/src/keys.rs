//! The user's X25519 key pair: the secret half lives only on this machine, in
//! `~/.config/mftplus/keys/x25519.key` (next to the config file; 0600, directory 0700); the
//! public half is registered with the server so others can encrypt files to it.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use mftplus_crypto::stream::{X25519PublicKey, X25519SecretKey};
use serde_json::json;

use crate::cli::KeysCommand;
use crate::config_file;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{details, emit, emit_json, note};

pub const KEY_FILE: &str = "keys/x25519.key";

pub async fn run(ctx: &mut Context, command: &KeysCommand) -> Result<u8, CliError> {
    match command {
        KeysCommand::Init => init(ctx).await,
        KeysCommand::Show => show(ctx),
    }
}

/// `keys/x25519.key` in the directory of the config file.
pub fn key_path(ctx: &Context) -> PathBuf {
    let dir = match ctx.config_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    dir.join(KEY_FILE)
}

/// The stored secret key, `None` when there is none yet.
pub fn load(path: &Path) -> Result<Option<X25519SecretKey>, CliError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::io(format!("cannot read {}", path.display()), e)),
    };
    if config_file::readable_by_others(path) {
        note(&format!(
            "warning: {} is readable by other users; run chmod 600 on it",
            path.display()
        ));
    }
    X25519SecretKey::from_encoded(text.trim())
        .map(Some)
        .map_err(|e| CliError::new("key", format!("{} is not a valid key: {e}", path.display())))
}

/// Loads the key pair, creating it first when missing. The bool says whether it was created.
pub fn load_or_create(path: &Path) -> Result<(X25519SecretKey, bool), CliError> {
    if let Some(key) = load(path)? {
        return Ok((key, false));
    }
    let key = X25519SecretKey::generate()
        .map_err(|e| CliError::new("key", format!("cannot generate a key pair: {e}")))?;
    let encoded = key.to_encoded();
    config_file::write_private(path, format!("{}\n", encoded.as_str()).as_bytes())?;
    Ok((key, true))
}

/// Makes sure a key pair exists and the server has its public half.
pub async fn ensure_registered(ctx: &mut Context) -> Result<(X25519PublicKey, bool), CliError> {
    let path = key_path(ctx);
    let (secret, created) = load_or_create(&path)?;
    let public = secret.public_key();
    let encoded = public.to_encoded();
    let encoded = &encoded;
    ctx.call(|c| async move { c.put_my_key(encoded).await })
        .await?;
    Ok((public, created))
}

/// For `login`: failure to register does not undo a successful login, it only warns.
pub async fn register_after_login(ctx: &mut Context) {
    match ensure_registered(ctx).await {
        Ok((public, created)) => {
            if created {
                note(&format!(
                    "created your encryption key pair in {} (fingerprint {})",
                    key_path(ctx).display(),
                    public.fingerprint_hex()
                ));
            }
        }
        Err(e) => note(&format!(
            "warning: cannot set up your encryption key ({e}); run `mftctl keys init`"
        )),
    }
}

async fn init(ctx: &mut Context) -> Result<u8, CliError> {
    let (public, created) = ensure_registered(ctx).await?;
    let path = key_path(ctx);
    if ctx.json() {
        emit_json(&json!({
            "public_key": public.to_encoded(),
            "fingerprint": public.fingerprint_hex(),
            "path": path,
            "created": created,
            "registered": true,
        }))?;
    } else {
        let what = if created {
            "created"
        } else {
            "already present"
        };
        emit(&format!(
            "key pair {what} in {}; public key registered (fingerprint {})",
            path.display(),
            public.fingerprint_hex()
        ))?;
    }
    Ok(0)
}

fn show(ctx: &Context) -> Result<u8, CliError> {
    let path = key_path(ctx);
    let secret = load(&path)?.ok_or_else(|| {
        CliError::new(
            "no_key",
            format!(
                "no key pair in {}; run `mftctl keys init` (or `mftctl login`)",
                path.display()
            ),
        )
    })?;
    let public = secret.public_key();
    if ctx.json() {
        emit_json(&json!({
            "public_key": public.to_encoded(),
            "fingerprint": public.fingerprint_hex(),
            "path": path,
        }))?;
    } else {
        emit(&details(&[
            ("public key", public.to_encoded()),
            ("fingerprint", public.fingerprint_hex()),
            ("file", path.display().to_string()),
        ]))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mftplus").join(KEY_FILE);
        let (first, created) = load_or_create(&path).unwrap();
        assert!(created);
        let (again, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first.public_key(), again.public_key());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x25519.key");
        fs::write(&path, "nope").unwrap();
        assert_eq!(load(&path).err().unwrap().code, "key");
    }
}
