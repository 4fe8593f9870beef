//! The secrets a deployment needs besides its data, which a data backup never holds: the JWT
//! signing secret or keys, the built-in CA's keys, the TLS key, the payload store's and the
//! integrations' credentials. `mftplus admin backup` always lists them (where each one lives,
//! never a value); with `--secrets-out DIR` it also copies the ones kept in files into a
//! bundle of its own (0700 folder, 0600 files), which must not be inside the data backup.
//! Values held in the environment or in the config file are listed and never written anywhere:
//! they belong to the secret manager that set them.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::BackupError;
use crate::config::{LoadedConfig, ServerConfig};

/// Secret values of the configuration (`config::load`'s `SECRET_PATHS`, repeated here because
/// that list is private to the config module; the test below checks each is one).
const VALUE_SECRETS: &[&str] = &[
    "auth.jwt.secret",
    "auth.jwt.previous_secret",
    "encryption.key",
    "database.url",
    "transfers.s3.secret_access_key",
    "notifications.smtp.password",
    "edge_firewall.cloudflare.api_token",
];

/// One secret the operator must keep apart from the data backup.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SecretItem {
    /// The configuration key.
    pub key: String,
    /// What it is for.
    pub what: String,
    /// `file`, `directory` or `value` (from the environment or the config file).
    pub kind: &'static str,
    /// The path, or for a value where it was set (`set (from env JWT_SECRET)`): never the value.
    pub location: String,
    /// Inside the bundle, when copied there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundled_as: Option<String>,
}

/// Every secret the configuration uses, without a value.
pub fn inventory(loaded: &LoadedConfig) -> Vec<SecretItem> {
    let mut items = value_secrets(loaded);
    items.extend(file_secrets(&loaded.config));
    items
}

/// The secret values that are set, each with where it was set.
fn value_secrets(loaded: &LoadedConfig) -> Vec<SecretItem> {
    VALUE_SECRETS
        .iter()
        .filter_map(|key| {
            let (_, _, display, _) = loaded.lookup(key)?;
            (display != "not set").then(|| SecretItem {
                key: (*key).to_string(),
                what: value_purpose(key).to_string(),
                kind: "value",
                location: display,
                bundled_as: None,
            })
        })
        .collect()
}

/// The files (and the CA folder) the configuration names that hold secrets or keys.
fn file_secrets(config: &ServerConfig) -> Vec<SecretItem> {
    let jwt = &config.auth.jwt;
    let mut files: Vec<(String, &str, PathBuf)> = Vec::new();
    let mut add = |key: String, what: &'static str, path: Option<&PathBuf>| {
        if let Some(path) = path {
            files.push((key, what, path.clone()));
        }
    };
    add(
        "auth.jwt.private_key".into(),
        "RS256 token signing key",
        jwt.private_key.as_ref(),
    );
    add(
        "auth.jwt.public_key".into(),
        "RS256 token verification key",
        jwt.public_key.as_ref(),
    );
    for (n, path) in jwt.previous_public_keys.iter().enumerate() {
        add(
            format!("auth.jwt.previous_public_keys[{n}]"),
            "rotated-out token key",
            Some(path),
        );
    }
    let tls = &config.tls.certificate;
    add(
        "tls.certificate.key".into(),
        "TLS private key of the API listener",
        tls.key.as_ref(),
    );
    add(
        "tls.certificate.cert".into(),
        "TLS certificate chain of the API listener",
        tls.cert.as_ref(),
    );
    for (n, hook) in config.notifications.webhooks.iter().enumerate() {
        let key = format!("notifications.webhooks[{n}].secret_file");
        add(key, "webhook signing key", hook.secret_file.as_ref());
    }
    let operators = config.fleet.operator_keys_file.as_ref();
    add(
        "fleet.operator_keys_file".into(),
        "operators' signing public keys (not secret, but not in the data backup)",
        operators,
    );
    let mut items: Vec<SecretItem> = files
        .into_iter()
        .map(|(key, what, path)| SecretItem {
            key,
            what: what.to_string(),
            kind: "file",
            location: path.display().to_string(),
            bundled_as: None,
        })
        .collect();
    let authority = &config.certificates.authority;
    if authority.enabled {
        items.push(SecretItem {
            key: "certificates.authority.dir".into(),
            what: "built-in CA: root and intermediate keys; without them every issued certificate stops verifying".into(),
            kind: "directory",
            location: authority.dir.display().to_string(),
            bundled_as: None,
        });
    }
    items
}

fn value_purpose(key: &str) -> &'static str {
    match key {
        "auth.jwt.secret" => "HS256 token signing secret",
        "auth.jwt.previous_secret" => "rotated-out HS256 secret",
        "encryption.key" => "server-side encryption key",
        "database.url" => "database address and password (the restored deployment has its own)",
        "transfers.s3.secret_access_key" => "S3 credentials of the payload store",
        "notifications.smtp.password" => "SMTP password",
        _ => "edge firewall API token",
    }
}

/// Copies the secrets kept in files into the new folder `dir` (0700; files 0600) and writes
/// `secrets.json` there, the list with where each came from. Refuses a folder inside `data`
/// (the data backup) or one that exists and is not empty. Returns the list as bundled.
pub fn write_bundle(
    items: &[SecretItem],
    dir: &Path,
    data: &Path,
) -> Result<Vec<SecretItem>, BackupError> {
    let inside = |a: &Path, b: &Path| {
        let a = a.canonicalize().unwrap_or_else(|_| a.to_path_buf());
        let b = b.canonicalize().unwrap_or_else(|_| b.to_path_buf());
        a.starts_with(b)
    };
    if inside(dir, data) || inside(data, dir) {
        return Err(BackupError::Config(
            "--secrets-out must be a folder apart from the data backup (--out), so the two can be stored apart"
                .into(),
        ));
    }
    super::create_new_dir(dir, "--secrets-out")?;
    let mut bundled = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let mut item = item.clone();
        let source = PathBuf::from(&item.location);
        let name = format!(
            "{n:02}-{}",
            source
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or("secret")
        );
        match item.kind {
            "file" => copy_file(&source, &dir.join(&name))?,
            "directory" => copy_dir(&source, &dir.join(&name))?,
            _ => {
                bundled.push(item);
                continue;
            }
        }
        item.bundled_as = Some(name);
        bundled.push(item);
    }
    let index = serde_json::to_vec_pretty(&serde_json::json!({
        "note": "Secrets of an MFTPlus deployment, kept apart from its data backup. Files were copied; values (kind \"value\") were not: keep them in the secret manager that sets them.",
        "secrets": bundled,
    }))
    .map_err(|err| BackupError::Invalid(err.to_string()))?;
    write_private(&dir.join("secrets.json"), &index)?;
    Ok(bundled)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .map_err(|err| BackupError::io(format!("cannot write {}", path.display()), err))
}

fn copy_file(from: &Path, to: &Path) -> Result<(), BackupError> {
    let bytes = std::fs::read(from).map_err(|err| {
        BackupError::io(
            format!("cannot read the secret file {}", from.display()),
            err,
        )
    })?;
    write_private(to, &bytes)
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), BackupError> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(to)
        .map_err(|err| BackupError::io(format!("cannot create {}", to.display()), err))?;
    let entries = std::fs::read_dir(from)
        .map_err(|err| BackupError::io(format!("cannot read {}", from.display()), err))?;
    for entry in entries {
        let entry =
            entry.map_err(|err| BackupError::io(format!("cannot read {}", from.display()), err))?;
        let kind = entry
            .file_type()
            .map_err(|err| BackupError::io(format!("cannot read {}", from.display()), err))?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            copy_file(&entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn every_listed_value_is_a_secret_of_the_config() {
        let env = BTreeMap::from([
            (
                "JWT_SECRET".to_string(),
                "a-secret-that-is-long-enough-0123456789".to_string(),
            ),
            ("DATABASE_URL".to_string(), "sqlite:///tmp/x.db".to_string()),
        ]);
        let loaded = crate::config::load_from(None, &env).unwrap();
        for key in VALUE_SECRETS {
            let (value, secret, _, _) = loaded.lookup(key).unwrap();
            assert!(
                secret && value.is_none(),
                "{key} is not a secret of the config"
            );
        }
        let items = inventory(&loaded);
        let listed: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
        assert!(listed.contains(&"auth.jwt.secret"), "{listed:?}");
        let text = serde_json::to_string(&items).unwrap();
        assert!(!text.contains("a-secret-that-is-long-enough"), "{text}");
        assert!(text.contains("set (from env JWT_SECRET)"), "{text}");
    }
}
