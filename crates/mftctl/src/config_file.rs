//! The client's own file, `~/.config/mftplus/config.yaml`: which server, and the credentials
//! `mftctl login` stored. It holds secrets, so it is only ever written private (0600, directory
//! 0700) and atomically, so a crash mid-write never leaves half a token behind.
//!
//! The seed's `certificates:` block (`mftctl certificates …`) lives in the same file and is
//! parsed strictly: an unknown key, a wrong type or a malformed duration fails the load with
//! the key named, instead of being ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use mftplus_base::PrivateFileError;

use serde::{Deserialize, Serialize};

use crate::error::CliError;

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// Server URL used when neither --server nor MFTPLUS_SERVER is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Who `mftctl login` signed in as; the default email for the next login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Stored by `mftctl login --api-key`; preferred over the tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// PEM CA bundle trusted for the server's TLS certificate besides the public roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// `certificates:`: where `mftctl certificates` asks for box certificates and how long
    /// they live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<CertificatesConfig>,
    /// Anything else in the file, carried through untouched when the file is rewritten.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("ClientConfig")
            .field("server", &self.server)
            .field("email", &self.email)
            .field("access_token", &secret(&self.access_token))
            .field("refresh_token", &secret(&self.refresh_token))
            .field("api_key", &secret(&self.api_key))
            .field("ca_file", &self.ca_file)
            .field("certificates", &self.certificates)
            .field("other_keys", &self.other.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The seed's `certificates:` block. Every key is optional; durations are `<n><unit>` as
/// everywhere (`720h`, `30d`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificatesConfig {
    /// The cloud whose built-in CA issues and renews [default: the server URL].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_url: Option<String>,
    /// Accepted for the seed's file and checked; mftctl itself has no background loop: run
    /// `mftctl certificates renew` from a timer every `watch_interval` (it does nothing until
    /// the certificate is due). Boxes renew by themselves (`mftplus agent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_renew: Option<bool>,
    /// `renew` renews this long before expiry [default: a third of the certificate's lifetime,
    /// which is the cloud's 8h for its default 24h certificate].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_before: Option<String>,
    /// Lifetime asked for by `issue` and `renew` [default: the cloud's `certificates.validity`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<String>,
    /// How often a timer should run `renew`; checked, not used by mftctl itself (see
    /// `auto_renew`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_interval: Option<String>,
}

impl CertificatesConfig {
    /// Refuses malformed durations and URLs, naming the key.
    fn check(&self) -> Result<(), String> {
        for (key, value) in [
            ("renew_before", &self.renew_before),
            ("validity", &self.validity),
            ("watch_interval", &self.watch_interval),
        ] {
            if let Some(text) = value {
                mftplus_types::duration::parse_duration_secs(text)
                    .map_err(|e| format!("certificates.{key}: {e}"))?;
            }
        }
        if let Some(url) = &self.ca_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!(
                    "certificates.ca_url: {url:?} is not an http:// or https:// URL"
                ));
            }
        }
        Ok(())
    }

    /// `renew_before` in seconds, when set (checked at load).
    pub fn renew_before_secs(&self) -> Option<u64> {
        self.renew_before
            .as_deref()
            .and_then(|text| mftplus_types::duration::parse_duration_secs(text).ok())
    }
}

impl ClientConfig {
    pub fn has_secrets(&self) -> bool {
        self.access_token.is_some() || self.refresh_token.is_some() || self.api_key.is_some()
    }

    pub fn forget_credentials(&mut self) {
        self.access_token = None;
        self.refresh_token = None;
        self.api_key = None;
    }
}

/// `$HOME/.config/mftplus/config.yaml`.
pub fn default_path(home: Option<&std::ffi::OsStr>) -> Result<PathBuf, CliError> {
    match home.filter(|h| !h.is_empty()) {
        Some(home) => Ok(Path::new(home).join(".config/mftplus/config.yaml")),
        None => Err(CliError::new(
            "config",
            "HOME is not set; pass --config PATH",
        )),
    }
}

/// Reads the file; a missing file is an empty config (first run).
pub fn load(path: &Path) -> Result<ClientConfig, CliError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ClientConfig::default()),
        Err(e) => return Err(CliError::io(format!("cannot read {}", path.display()), e)),
    };
    if text.trim().is_empty() {
        return Ok(ClientConfig::default());
    }
    let config: ClientConfig = serde_yaml::from_str(&text)
        .map_err(|e| CliError::new("config", format!("cannot parse {}: {e}", path.display())))?;
    if let Some(certificates) = &config.certificates {
        certificates
            .check()
            .map_err(|e| CliError::new("config", format!("{}: {e}", path.display())))?;
    }
    if config.has_secrets() && readable_by_others(path) {
        crate::output::note(&format!(
            "warning: {} holds credentials and is readable by other users; run chmod 600 on it",
            path.display()
        ));
    }
    Ok(config)
}

/// Whether group or others can access `path`. The files mftctl writes itself (this config, the
/// transfer key) are read with a warning when loosened, not refused; this is that test.
pub fn readable_by_others(path: &Path) -> bool {
    matches!(
        mftplus_base::check_private(path),
        Err(PrivateFileError::Insecure { .. })
    )
}

pub fn save(path: &Path, config: &ClientConfig) -> Result<(), CliError> {
    let text = serde_yaml::to_string(config)
        .map_err(|e| CliError::new("config", format!("cannot encode config: {e}")))?;
    write_private(path, text.as_bytes())
}

/// Writes `bytes` to `path` readable only by the owner, atomically
/// ([`mftplus_base::write_private`]); a missing directory is created 0700. An existing directory
/// is used as it is: an export may go anywhere the user points it.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.exists() {
        mftplus_base::ensure_private_dir(dir)
            .map_err(|e| CliError::io(format!("cannot create {}", dir.display()), e.into()))?;
    }
    if path.file_name().is_none() {
        return Err(CliError::usage(format!(
            "{} is not a file path",
            path.display()
        )));
    }
    mftplus_base::write_private(path, bytes)
        .map_err(|e| CliError::io(format!("cannot write {}", path.display()), e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> ClientConfig {
        ClientConfig {
            server: Some("https://mft.example.com".into()),
            email: Some("admin@example.com".into()),
            access_token: Some("eyJ.access".into()),
            refresh_token: Some("eyJ.refresh".into()),
            api_key: None,
            ca_file: None,
            certificates: None,
            other: BTreeMap::new(),
        }
    }

    #[test]
    fn round_trip_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/mftplus/config.yaml");
        save(&path, &sample()).unwrap();
        assert_eq!(load(&path).unwrap(), sample());

        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);

        // Rewriting a file that someone loosened makes it private again.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        save(&path, &ClientConfig::default()).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load(&path).unwrap(), ClientConfig::default());

        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn missing_or_empty_file_is_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        assert_eq!(load(&path).unwrap(), ClientConfig::default());
        fs::write(&path, "\n").unwrap();
        assert_eq!(load(&path).unwrap(), ClientConfig::default());
    }

    #[test]
    fn keeps_sections_it_does_not_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        fs::write(
            &path,
            "certificates:\n  ca_url: https://ca.example.com:9000\n  auto_renew: true\nserver: http://h:1\n",
        )
        .unwrap();
        let mut config = load(&path).unwrap();
        assert_eq!(config.server.as_deref(), Some("http://h:1"));
        config.api_key = Some("mftpk_x".into());
        save(&path, &config).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("ca_url: https://ca.example.com:9000"),
            "{text}"
        );
        assert!(text.contains("api_key: mftpk_x"), "{text}");
    }

    #[test]
    fn certificates_block_is_parsed_strictly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        // The seed's block, verbatim.
        fs::write(
            &path,
            "certificates:\n  ca_url: https://ca.example.com:9000\n  auto_renew: true\n  renew_before: 720h # Renew 30 days before expiry\n  validity: 8760h # 1 year validity\n  watch_interval: 24h # Check every 24 hours\n",
        )
        .unwrap();
        let config = load(&path).unwrap();
        let certificates = config.certificates.clone().unwrap();
        assert_eq!(
            certificates.ca_url.as_deref(),
            Some("https://ca.example.com:9000")
        );
        assert_eq!(certificates.auto_renew, Some(true));
        assert_eq!(certificates.renew_before_secs(), Some(720 * 3600));
        assert_eq!(certificates.validity.as_deref(), Some("8760h"));
        // Rewriting the file keeps the block.
        save(&path, &config).unwrap();
        assert_eq!(load(&path).unwrap(), config);

        for (text, key) in [
            ("certificates:\n  renew_befor: 8h\n", "renew_befor"),
            ("certificates:\n  validity: 24\n", "validity"),
            ("certificates:\n  watch_interval: soon\n", "watch_interval"),
            ("certificates:\n  auto_renew: maybe\n", "auto_renew"),
            ("certificates:\n  ca_url: ca.example.com\n", "ca_url"),
        ] {
            fs::write(&path, text).unwrap();
            let err = load(&path).unwrap_err();
            assert_eq!(err.code, "config", "{text}");
            assert!(err.message.contains(key), "{text}: {}", err.message);
        }
    }

    #[test]
    fn bad_yaml_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        fs::write(&path, "server: [unclosed\n").unwrap();
        let err = load(&path).unwrap_err();
        assert_eq!(err.code, "config");
        assert!(err.message.contains("config.yaml"), "{}", err.message);
    }

    #[test]
    fn debug_hides_secrets() {
        let shown = format!("{:?}", sample());
        assert!(!shown.contains("eyJ"), "{shown}");
    }

    #[test]
    fn default_path_uses_home() {
        assert_eq!(
            default_path(Some(std::ffi::OsStr::new("/home/u"))).unwrap(),
            PathBuf::from("/home/u/.config/mftplus/config.yaml")
        );
        assert_eq!(default_path(None).unwrap_err().code, "config");
    }
}
