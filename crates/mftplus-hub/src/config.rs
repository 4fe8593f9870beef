//! The hub's configuration: exactly the seed's environment variables (plus `HUB_DATA_DIR` and
//! `HUB_LISTEN_ADDR`), read once at start-up.
//!
//! Missing required values are not an error here: the hub still starts so that `/health` and
//! `/hub/diagnose` can tell the operator what is missing. Malformed values (a port that is not a
//! number, a URL that is not http or https, a world-readable key file) are errors, because
//! guessing would hide a typo.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mftplus_base::{PrivateFileError, Secret};

pub const DEFAULT_PORT: u16 = 3002;
pub const DEFAULT_VERSION: &str = "0.1.0";
pub const DEFAULT_NODE_ENV: &str = "development";
pub const DEFAULT_PHONE_HOME_INTERVAL_HOURS: u32 = 24;
pub const DEFAULT_DISK_PATH: &str = "/";
pub const DEFAULT_DATA_DIR: &str = "/app/data";
pub const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0";
pub const DEFAULT_QUEUE_ANSWER_BUDGET_SECONDS: u64 = 5;

/// `NODE_ENV`: kept for compatibility with the seed's deployments; only `production` changes
/// behaviour (proxy error messages stop carrying upstream details).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Production,
    Development,
}

/// The cloud's base URL split into what the proxy and phone-home need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudUrl {
    /// As configured, without a trailing slash, e.g. `https://api.mftplus.co.za/api`.
    pub base: String,
    /// `scheme://host:port` of `base`: where every proxied request goes, path unchanged.
    pub origin: String,
    /// The host name (or IP literal) that `/hub/diagnose` resolves.
    pub host: String,
}

impl CloudUrl {
    pub fn parse(raw: &str) -> Result<CloudUrl, ConfigError> {
        let bad = |why: &str| ConfigError::Invalid {
            var: "CLOUD_API_URL",
            message: format!("{raw:?} {why}"),
        };
        let base = raw.trim().trim_end_matches('/').to_string();
        let uri: http::Uri = base.parse().map_err(|_| bad("is not a URL"))?;
        let scheme = match uri.scheme_str() {
            Some("http") => "http",
            Some("https") => "https",
            _ => return Err(bad("must start with http:// or https://")),
        };
        let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("must not carry credentials"));
        }
        if uri.query().is_some() {
            return Err(bad("must not have a query string"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let origin = if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()) {
            format!("{scheme}://[{host}]:{port}")
        } else {
            format!("{scheme}://{host}:{port}")
        };
        Ok(CloudUrl { base, origin, host })
    }

    /// `${CLOUD_API_URL}/v1/...`, the phone-home and health routes.
    pub fn api(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }
}

/// Everything the hub reads from its environment.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// `CLOUD_API_URL` (required for the hub to do anything useful).
    pub cloud_api_url: Option<CloudUrl>,
    /// `HUB_REGISTRATION_KEY` or `HUB_REGISTRATION_KEY_FILE`: the deploy key (`mft_dep_…`).
    pub registration_key: Option<Secret>,
    /// `HUB_PREVIOUS_REGISTRATION_KEY` or `…_FILE`: after a deploy-key rotation, the old key,
    /// so `hub.db` is re-sealed under the new one at start (`docs/key-rotation.md`). Used for
    /// nothing else; drop it once the old key's grace is over.
    pub previous_registration_key: Option<Secret>,
    /// `HUB_PORT`, default 3002.
    pub port: u16,
    /// `HUB_VERSION`, default 0.1.0: what the hub reports to the cloud and on `/health`.
    pub hub_version: String,
    /// `HUB_LICENSE_KEY`: an enterprise licence, sent at registration.
    pub license_key: Option<Secret>,
    /// `NODE_ENV` as given (default `development`), echoed by `/hub/diagnose`.
    pub node_env: String,
    /// `PHONE_HOME_INTERVAL_HOURS`, default 24: hours between re-validations.
    pub phone_home_interval_hours: u32,
    /// `DIAGNOSE_DISK_PATH`, default `/`.
    pub diagnose_disk_path: PathBuf,
    /// `HUB_DATA_DIR`, default `/app/data`: holds `hub.db`, the auth cache and offline queue.
    pub data_dir: PathBuf,
    /// `HUB_AUTH_CACHE_TTL_HOURS`, default 24: how long a credential the cloud accepted keeps
    /// authenticating while the cloud is unreachable.
    pub auth_cache_ttl_hours: u32,
    /// `HUB_QUEUE_MAX`, default 100000: offline queue rows before writes get `hub_queue_full`.
    pub queue_max: u64,
    /// `HUB_QUEUE_ANSWER_BUDGET_SECONDS`, default 5: how long a queueable write waits for the
    /// cloud's answer before the hub queues it and answers itself, as for an unreachable cloud.
    pub queue_answer_budget_seconds: u64,
    /// `HUB_LISTEN_ADDR`, default `0.0.0.0`.
    pub listen_addr: String,
    /// The listener's limits: `HUB_HEADER_READ_SECONDS` (30), `HUB_BODY_IDLE_SECONDS` (60),
    /// `HUB_MAX_CONNECTIONS` (20000), `HUB_MAX_CONNECTIONS_PER_ADDRESS` (1024).
    pub listener_limits: mftplus_pki::serve::Limits,
    /// `HUB_SITE_LOCAL`, default `true`: keep the ciphertext of transfers whose sender and
    /// recipients are all behind this hub in `HUB_DATA_DIR/site` (decision 0012).
    pub site_local: bool,
    /// `HUB_TLS_CERT` + `HUB_TLS_KEY` (PEM): serve TLS 1.3 to agents; with
    /// `HUB_TLS_CLIENT_AUTH` (`noClientCert`, `verifyClientCertIfGiven`,
    /// `requireAndVerifyClientCert`) and `HUB_TLS_CLIENT_CA` (PEM files, `:`-separated).
    pub tls: Option<mftplus_pki::TlsSettings>,
    /// `CLOUD_CA_FILE`: a PEM CA bundle trusted for the cloud's certificate besides the
    /// public roots.
    pub cloud_ca_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {message}")]
    Invalid { var: &'static str, message: String },
    #[error("{var}: cannot read {path}: {source}")]
    Read {
        var: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl HubConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<HubConfig, ConfigError> {
        HubConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads through `lookup` (tests pass a map). Empty values count as unset, as in a compose
    /// file where `FOO: ""` usually means "not given".
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<HubConfig, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let cloud_api_url = get("CLOUD_API_URL")
            .map(|raw| CloudUrl::parse(&raw))
            .transpose()?;
        let registration_key = secret(
            "HUB_REGISTRATION_KEY",
            "HUB_REGISTRATION_KEY_FILE",
            get("HUB_REGISTRATION_KEY"),
            get("HUB_REGISTRATION_KEY_FILE"),
        )?;
        let previous_registration_key = secret(
            "HUB_PREVIOUS_REGISTRATION_KEY",
            "HUB_PREVIOUS_REGISTRATION_KEY_FILE",
            get("HUB_PREVIOUS_REGISTRATION_KEY"),
            get("HUB_PREVIOUS_REGISTRATION_KEY_FILE"),
        )?;
        let license_key = secret(
            "HUB_LICENSE_KEY",
            "HUB_LICENSE_KEY_FILE",
            get("HUB_LICENSE_KEY"),
            get("HUB_LICENSE_KEY_FILE"),
        )?;
        let port = number("HUB_PORT", get("HUB_PORT"), DEFAULT_PORT)?;
        let phone_home_interval_hours = number(
            "PHONE_HOME_INTERVAL_HOURS",
            get("PHONE_HOME_INTERVAL_HOURS"),
            DEFAULT_PHONE_HOME_INTERVAL_HOURS,
        )?;
        if phone_home_interval_hours == 0 {
            return Err(ConfigError::Invalid {
                var: "PHONE_HOME_INTERVAL_HOURS",
                message: "must be at least 1".into(),
            });
        }
        let auth_cache_ttl_hours = number(
            "HUB_AUTH_CACHE_TTL_HOURS",
            get("HUB_AUTH_CACHE_TTL_HOURS"),
            24_u32,
        )?;
        let queue_max = number("HUB_QUEUE_MAX", get("HUB_QUEUE_MAX"), 100_000_u64)?;
        let queue_answer_budget_seconds = positive(
            "HUB_QUEUE_ANSWER_BUDGET_SECONDS",
            get("HUB_QUEUE_ANSWER_BUDGET_SECONDS"),
            DEFAULT_QUEUE_ANSWER_BUDGET_SECONDS,
        )?;
        let site_local = match get("HUB_SITE_LOCAL").as_deref().map(str::trim) {
            None | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "HUB_SITE_LOCAL",
                    message: format!("must be true or false, not {other:?}"),
                })
            }
        };
        let tls = tls_settings(&get)?;
        let listener_limits = listener_limits(&get)?;
        Ok(HubConfig {
            listener_limits,
            tls,
            cloud_ca_file: get("CLOUD_CA_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            site_local,
            auth_cache_ttl_hours,
            queue_max,
            queue_answer_budget_seconds,
            cloud_api_url,
            registration_key,
            previous_registration_key,
            port,
            hub_version: get("HUB_VERSION").unwrap_or_else(|| DEFAULT_VERSION.into()),
            license_key,
            node_env: get("NODE_ENV").unwrap_or_else(|| DEFAULT_NODE_ENV.into()),
            phone_home_interval_hours,
            diagnose_disk_path: get("DIAGNOSE_DISK_PATH")
                .unwrap_or_else(|| DEFAULT_DISK_PATH.into())
                .into(),
            data_dir: get("HUB_DATA_DIR")
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into())
                .into(),
            listen_addr: get("HUB_LISTEN_ADDR").unwrap_or_else(|| DEFAULT_LISTEN_ADDR.into()),
        })
    }

    pub fn mode(&self) -> Mode {
        if self.node_env == "production" {
            Mode::Production
        } else {
            Mode::Development
        }
    }

    pub fn phone_home_interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.phone_home_interval_hours) * 3600)
    }

    /// `HUB_LISTEN_ADDR:HUB_PORT`, with IPv6 literals bracketed.
    pub fn listen_address(&self) -> String {
        if self.listen_addr.contains(':') && !self.listen_addr.starts_with('[') {
            format!("[{}]:{}", self.listen_addr, self.port)
        } else {
            format!("{}:{}", self.listen_addr, self.port)
        }
    }

    /// What stops the hub from registering, in the seed's issue wording.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.cloud_api_url.is_none() {
            missing.push(crate::diagnose::ISSUE_NO_CLOUD_URL);
        }
        if self.registration_key.is_none() {
            missing.push(crate::diagnose::ISSUE_NO_REGISTRATION_KEY);
        }
        missing
    }
}

/// The listener's TLS from `HUB_TLS_*`: both files or neither.
fn tls_settings(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<mftplus_pki::TlsSettings>, ConfigError> {
    let cert = get("HUB_TLS_CERT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let key = get("HUB_TLS_KEY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if cert.is_none() && key.is_none() {
        return Ok(None);
    }
    let client_cas: Vec<PathBuf> = get("HUB_TLS_CLIENT_CA")
        .unwrap_or_default()
        .split(':')
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    let mode = get("HUB_TLS_CLIENT_AUTH").unwrap_or_default();
    let none: Vec<String> = Vec::new();
    mftplus_pki::TlsSettings::from_keys(&mftplus_pki::TlsKeys {
        min_version: "TLSv1.3",
        max_version: "TLSv1.3",
        cert: cert.as_deref(),
        key: key.as_deref(),
        client_auth_mode: &mode,
        client_ca_files: &client_cas,
        crl_files: &[],
        cipher_suites: &none,
        curve_preferences: &none,
    })
    .map(Some)
    .map_err(|err| ConfigError::Invalid {
        var: "HUB_TLS_*",
        message: err
            .to_string()
            .replace("tls.certificate.cert", "HUB_TLS_CERT")
            .replace("tls.certificate.key", "HUB_TLS_KEY")
            .replace("tls.client_auth.mode", "HUB_TLS_CLIENT_AUTH")
            .replace("tls.client_auth.ca_files", "HUB_TLS_CLIENT_CA"),
    })
}

fn number<T: std::str::FromStr>(
    var: &'static str,
    raw: Option<String>,
    default: T,
) -> Result<T, ConfigError> {
    match raw {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| ConfigError::Invalid {
            var,
            message: format!("{raw:?} is not a valid number"),
        }),
    }
}

/// A whole number of at least 1 (seconds, for a timeout that must not be zero).
/// What one agent's connections and request heads may hold on the hub's listener (issue 13).
fn listener_limits(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<mftplus_pki::serve::Limits, ConfigError> {
    let defaults = mftplus_pki::serve::Limits::default();
    let seconds = |var: &'static str, default: std::time::Duration| {
        positive(var, get(var), default.as_secs()).map(std::time::Duration::from_secs)
    };
    let count = |var: &'static str, default: usize| match get(var) {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(0) | Err(_) => Err(ConfigError::Invalid {
                var,
                message: format!("{raw:?} is not a positive whole number of connections"),
            }),
            Ok(value) => Ok(value),
        },
    };
    let limits = mftplus_pki::serve::Limits {
        header_read: seconds("HUB_HEADER_READ_SECONDS", defaults.header_read)?,
        body_idle: seconds("HUB_BODY_IDLE_SECONDS", defaults.body_idle)?,
        max_connections: count("HUB_MAX_CONNECTIONS", defaults.max_connections)?,
        max_connections_per_address: count(
            "HUB_MAX_CONNECTIONS_PER_ADDRESS",
            defaults.max_connections_per_address,
        )?,
        ..defaults
    };
    if limits.max_connections_per_address > limits.max_connections {
        return Err(ConfigError::Invalid {
            var: "HUB_MAX_CONNECTIONS_PER_ADDRESS",
            message: "must not exceed HUB_MAX_CONNECTIONS".into(),
        });
    }
    Ok(limits)
}

fn positive(var: &'static str, raw: Option<String>, default: u64) -> Result<u64, ConfigError> {
    let invalid = |raw: &str| ConfigError::Invalid {
        var,
        message: format!("{raw:?} is not a positive whole number of seconds"),
    };
    match raw {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(0) | Err(_) => Err(invalid(&raw)),
            Ok(value) => Ok(value),
        },
    }
}

fn secret(
    var: &'static str,
    file_var: &'static str,
    direct: Option<String>,
    file: Option<String>,
) -> Result<Option<Secret>, ConfigError> {
    match (direct, file) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            var,
            message: format!("set either {var} or {file_var}, not both"),
        }),
        (Some(value), None) => Ok(Some(Secret::new(value.trim()))),
        (None, Some(path)) => read_secret_file(file_var, Path::new(&path)).map(Some),
        (None, None) => Ok(None),
    }
}

/// A key file others can read is refused: it means the key has probably leaked already, and
/// silently accepting it would teach operators that 0644 is fine.
fn read_secret_file(var: &'static str, path: &Path) -> Result<Secret, ConfigError> {
    let text = mftplus_base::read_private_to_string(path).map_err(|err| match err {
        PrivateFileError::Insecure { mode, .. } => ConfigError::Invalid {
            var,
            message: format!(
                "{} has mode {mode:o}; it must not be readable by group or others (chmod 600)",
                path.display()
            ),
        },
        PrivateFileError::Io { path, source } => ConfigError::Read { var, path, source },
    })?;
    let value = text.trim();
    if value.is_empty() {
        return Err(ConfigError::Invalid {
            var,
            message: format!("{} is empty", path.display()),
        });
    }
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<HubConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_seed() {
        let c = config(&[]).unwrap();
        assert_eq!(c.port, 3002);
        assert_eq!(c.hub_version, "0.1.0");
        assert_eq!(c.node_env, "development");
        assert_eq!(c.mode(), Mode::Development);
        assert_eq!(c.phone_home_interval_hours, 24);
        assert_eq!(c.diagnose_disk_path, PathBuf::from("/"));
        assert_eq!(c.data_dir, PathBuf::from("/app/data"));
        assert_eq!(c.listen_address(), "0.0.0.0:3002");
        assert!(c.cloud_api_url.is_none() && c.registration_key.is_none());
        assert_eq!(
            c.missing(),
            vec![
                "Cloud API URL is not configured",
                "Registration key is not configured"
            ]
        );
    }

    #[test]
    fn cloud_url_keeps_the_base_and_derives_the_origin() {
        let u = CloudUrl::parse("https://api.mftplus.co.za/api/").unwrap();
        assert_eq!(u.base, "https://api.mftplus.co.za/api");
        assert_eq!(u.origin, "https://api.mftplus.co.za:443");
        assert_eq!(u.host, "api.mftplus.co.za");
        assert_eq!(
            u.api("/v1/hubs/register"),
            "https://api.mftplus.co.za/api/v1/hubs/register"
        );
        let v6 = CloudUrl::parse("http://[::1]:8080/api").unwrap();
        assert_eq!(v6.origin, "http://[::1]:8080");
        assert_eq!(v6.host, "::1");
        assert!(CloudUrl::parse("ftp://x/api").is_err());
        assert!(CloudUrl::parse("http://user:pw@x/api").is_err());
    }

    #[test]
    fn production_mode_and_bad_numbers() {
        let c = config(&[("NODE_ENV", "production"), ("HUB_PORT", "4000")]).unwrap();
        assert_eq!(c.mode(), Mode::Production);
        assert_eq!(c.port, 4000);
        assert!(config(&[("HUB_PORT", "http")]).is_err());
        assert!(config(&[("PHONE_HOME_INTERVAL_HOURS", "0")]).is_err());
    }

    #[test]
    fn the_queue_answer_budget_is_a_positive_number_of_seconds() {
        assert_eq!(config(&[]).unwrap().queue_answer_budget_seconds, 5);
        let limits = config(&[
            ("HUB_HEADER_READ_SECONDS", "7"),
            ("HUB_MAX_CONNECTIONS_PER_ADDRESS", "64"),
        ])
        .unwrap()
        .listener_limits;
        assert_eq!(limits.header_read, std::time::Duration::from_secs(7));
        assert_eq!(limits.max_connections_per_address, 64);
        for (var, bad) in [
            ("HUB_MAX_CONNECTIONS", "0"),
            ("HUB_MAX_CONNECTIONS_PER_ADDRESS", "many"),
            ("HUB_BODY_IDLE_SECONDS", "-1"),
        ] {
            let err = config(&[(var, bad)]).unwrap_err().to_string();
            assert!(err.contains(var), "{err}");
        }
        let err = config(&[
            ("HUB_MAX_CONNECTIONS", "10"),
            ("HUB_MAX_CONNECTIONS_PER_ADDRESS", "11"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("HUB_MAX_CONNECTIONS_PER_ADDRESS"), "{err}");
        let c = config(&[("HUB_QUEUE_ANSWER_BUDGET_SECONDS", "2")]).unwrap();
        assert_eq!(c.queue_answer_budget_seconds, 2);
        for bad in ["0", "-1", "1.5", "soon"] {
            let err = config(&[("HUB_QUEUE_ANSWER_BUDGET_SECONDS", bad)]).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with("HUB_QUEUE_ANSWER_BUDGET_SECONDS: ") && text.contains("positive"),
                "{bad}: {text}"
            );
        }
    }

    #[test]
    fn secrets_are_redacted_and_files_must_be_private() {
        let c = config(&[("HUB_REGISTRATION_KEY", "mft_dep_abc")]).unwrap();
        let key = c.registration_key.clone().unwrap();
        assert_eq!(key.expose(), "mft_dep_abc");
        assert!(!format!("{c:?}").contains("mft_dep_abc"));

        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "mft_dep_fromfile\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = path.to_str().unwrap();
        let err = config(&[("HUB_REGISTRATION_KEY_FILE", file)]).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = config(&[("HUB_REGISTRATION_KEY_FILE", file)]).unwrap();
        assert_eq!(c.registration_key.unwrap().expose(), "mft_dep_fromfile");
        assert!(config(&[
            ("HUB_REGISTRATION_KEY_FILE", file),
            ("HUB_REGISTRATION_KEY", "x")
        ])
        .is_err());
    }
}
