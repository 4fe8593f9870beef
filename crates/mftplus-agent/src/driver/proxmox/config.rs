//! The `proxmox:` section of the agent's config (`driver: proxmox`).
//!
//! ```yaml
//! driver: proxmox
//! proxmox:
//!   url: https://pve1.example.com:8006        # `/api2/json` is added when missing
//!   node: pve1                                 # the node whose guests this agent runs
//!   token_id: mftplus@pve!agent                # USER@REALM!TOKENID
//!   token_secret_file: /etc/mftplus/pve-token  # 0600, the token's secret (a UUID)
//!   ca_file: /etc/mftplus/pve-root-ca.pem      # optional: PVE's self-signed cluster CA
//!   storage: local-lvm                         # optional: clones' disks, containers' rootfs
//!   task_timeout: 10m                          # optional: how long a PVE task may run
//!   shutdown_timeout: 60s                      # optional: ACPI shutdown before a hard stop
//! ```
//!
//! Parsing is pure (the secret file is read when the driver is built), so the config tests run
//! without files. Plain `http://` is refused except to a loopback address: the token would
//! cross the network in clear.

use mftplus_types::duration::parse_duration_secs;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The path every PVE API call hangs off.
pub const API_PATH: &str = "/api2/json";
const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// The section as written in the YAML; unknown keys are refused with their name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxmoxSection {
    url: Option<String>,
    node: Option<String>,
    token_id: Option<String>,
    token_secret_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    storage: Option<String>,
    task_timeout: Option<String>,
    shutdown_timeout: Option<String>,
}

/// The validated section.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxmoxConfig {
    /// `scheme://authority/api2/json`, no trailing slash.
    pub api_url: String,
    pub node: String,
    /// `USER@REALM!TOKENID`; never the secret.
    pub token_id: String,
    pub token_secret_file: PathBuf,
    /// PEM CA certificates trusted on top of the public roots (PVE's `pve-root-ca.pem`).
    pub ca_file: Option<PathBuf>,
    /// Target storage of full clones and of containers' root filesystems; `None` keeps a
    /// clone's disks where the template's are.
    pub storage: Option<String>,
    /// Deadline for one PVE task (clone, start, delete, …).
    pub task_timeout: Duration,
    /// How long `stop` waits for an ACPI shutdown before it stops the guest hard.
    pub shutdown_timeout: Duration,
}

impl ProxmoxConfig {
    /// A config with the defaults, for code that builds one directly (tests, tools).
    pub fn new(
        url: &str,
        node: &str,
        token_id: &str,
        token_secret_file: PathBuf,
    ) -> Result<Self, String> {
        Ok(ProxmoxConfig {
            api_url: api_url(url)?,
            node: check_node(node)?,
            token_id: check_token_id(token_id)?,
            token_secret_file,
            ca_file: None,
            storage: None,
            task_timeout: DEFAULT_TASK_TIMEOUT,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        })
    }
}

/// The hook `config.rs` calls: `None` without a section; a section that is there must be
/// whole, and `driver: proxmox` needs one.
pub fn from_section(
    section: Option<ProxmoxSection>,
    driver_is_proxmox: bool,
) -> Result<Option<ProxmoxConfig>, String> {
    let Some(section) = section else {
        if driver_is_proxmox {
            return Err(
                "`driver: proxmox` needs a `proxmox:` section (url, node, token_id, \
                        token_secret_file)"
                    .into(),
            );
        }
        return Ok(None);
    };
    let required = |value: Option<String>, key: &str| {
        value
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| format!("`proxmox.{key}` is required"))
    };
    let url = required(section.url, "url")?;
    let node = required(section.node, "node")?;
    let token_id = required(section.token_id, "token_id")?;
    let token_secret_file = section
        .token_secret_file
        .ok_or("`proxmox.token_secret_file` is required")?;
    let mut config = ProxmoxConfig::new(&url, &node, &token_id, token_secret_file)?;
    config.ca_file = section.ca_file;
    config.storage = section.storage.map(|s| check_storage(&s)).transpose()?;
    let duration = |key: &str, value: Option<String>, default: Duration| match value {
        None => Ok(default),
        Some(text) => parse_duration_secs(&text)
            .map(Duration::from_secs)
            .map_err(|e| format!("`proxmox.{key}`: {e}")),
    };
    config.task_timeout = duration("task_timeout", section.task_timeout, DEFAULT_TASK_TIMEOUT)?;
    config.shutdown_timeout = duration(
        "shutdown_timeout",
        section.shutdown_timeout,
        DEFAULT_SHUTDOWN_TIMEOUT,
    )?;
    Ok(Some(config))
}

/// `https://host[:port][/api2/json]` → `https://host[:port]/api2/json`. `http://` only to a
/// loopback host.
pub fn api_url(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| format!("`proxmox.url` {url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(format!(
            "`proxmox.url` {url:?}: scheme {} is not http(s)",
            parsed.scheme()
        ));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("`proxmox.url` {url:?} has no host"))?;
    if parsed.scheme() == "http" && !is_loopback(host) {
        return Err(format!(
            "`proxmox.url` {url:?}: plain http would send the API token in clear; use \
             https (with `ca_file` for PVE's own CA)"
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("`proxmox.url` must not carry credentials; use `token_id`".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "`proxmox.url` {url:?} must not have a query or fragment"
        ));
    }
    let path = parsed.path().trim_end_matches('/');
    if !(path.is_empty() || path == API_PATH) {
        return Err(format!(
            "`proxmox.url` {url:?}: give the server (https://host:8006), not a path"
        ));
    }
    let authority = match parsed.port() {
        Some(port) => format!("{}:{port}", bracketed(host)),
        None => bracketed(host),
    };
    Ok(format!("{}://{authority}{API_PATH}", parsed.scheme()))
}

fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Node names are host names: they go into every request path.
fn check_node(node: &str) -> Result<String, String> {
    let node = node.trim();
    let ok = !node.is_empty()
        && node.len() <= 63
        && node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
    if ok {
        Ok(node.to_string())
    } else {
        Err(format!("`proxmox.node` {node:?} is not a node name"))
    }
}

/// `USER@REALM!TOKENID`, as PVE shows it when the token is created.
fn check_token_id(token_id: &str) -> Result<String, String> {
    let token_id = token_id.trim();
    let well_formed = token_id.split_once('!').is_some_and(|(user, token)| {
        user.split_once('@')
            .is_some_and(|(name, realm)| !name.is_empty() && !realm.is_empty())
            && !token.is_empty()
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    if well_formed && !token_id.contains(['=', ' ', '\t', '\n']) {
        Ok(token_id.to_string())
    } else {
        Err(format!(
            "`proxmox.token_id` {token_id:?} must look like USER@REALM!TOKENID (e.g. \
             mftplus@pve!agent); the secret goes into `token_secret_file`"
        ))
    }
}

fn check_storage(storage: &str) -> Result<String, String> {
    let storage = storage.trim();
    let ok = !storage.is_empty()
        && storage
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(storage.to_string())
    } else {
        Err(format!("`proxmox.storage` {storage:?} is not a storage id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str, proxmox: bool) -> Result<Option<ProxmoxConfig>, String> {
        let section: Option<ProxmoxSection> =
            serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        from_section(section, proxmox)
    }

    const WHOLE: &str = "url: https://pve1.example.com:8006\nnode: pve1\n\
                         token_id: mftplus@pve!agent\ntoken_secret_file: /etc/mftplus/pve-token\n";

    #[test]
    fn a_whole_section_with_defaults() {
        let config = parse(WHOLE, true).unwrap().unwrap();
        assert_eq!(config.api_url, "https://pve1.example.com:8006/api2/json");
        assert_eq!(config.node, "pve1");
        assert_eq!(config.token_id, "mftplus@pve!agent");
        assert_eq!(config.storage, None);
        assert_eq!(config.task_timeout, DEFAULT_TASK_TIMEOUT);
        assert_eq!(config.shutdown_timeout, DEFAULT_SHUTDOWN_TIMEOUT);
        let more = format!(
            "{WHOLE}ca_file: /etc/mftplus/pve-root-ca.pem\nstorage: local-lvm\n\
             task_timeout: 30m\nshutdown_timeout: 2m\n"
        );
        let config = parse(&more, false).unwrap().unwrap();
        assert_eq!(config.storage.as_deref(), Some("local-lvm"));
        assert_eq!(config.task_timeout, Duration::from_secs(1800));
        assert_eq!(config.shutdown_timeout, Duration::from_secs(120));
        assert!(config.ca_file.is_some());
    }

    #[test]
    fn urls() {
        for (url, want) in [
            ("https://pve:8006", "https://pve:8006/api2/json"),
            ("https://pve:8006/", "https://pve:8006/api2/json"),
            ("https://pve:8006/api2/json/", "https://pve:8006/api2/json"),
            ("http://127.0.0.1:18006", "http://127.0.0.1:18006/api2/json"),
            ("http://localhost:1", "http://localhost:1/api2/json"),
            ("http://[::1]:8006", "http://[::1]:8006/api2/json"),
            ("https://[fd00::1]:8006", "https://[fd00::1]:8006/api2/json"),
        ] {
            assert_eq!(api_url(url).unwrap(), want, "{url}");
        }
        for (url, why) in [
            ("http://pve:8006", "in clear"),
            ("http://10.0.0.5:8006", "in clear"),
            ("pve:8006", "scheme"),
            ("ftp://pve", "scheme"),
            ("https://root:pw@pve:8006", "credentials"),
            ("https://pve:8006/other", "not a path"),
            ("https://pve:8006/?x=1", "query"),
        ] {
            let err = api_url(url).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(parse("", false).unwrap(), None);
        for (yaml, proxmox, expect) in [
            ("", true, "needs a `proxmox:` section"),
            ("url: https://pve:8006\n", false, "proxmox.node"),
            (&WHOLE.replace("node: pve1\n", ""), false, "proxmox.node"),
            (
                &WHOLE.replace("node: pve1", "node: pve/1"),
                false,
                "node name",
            ),
            (
                &WHOLE.replace("mftplus@pve!agent", "mftplus@pve"),
                false,
                "USER@REALM!TOKENID",
            ),
            (
                &WHOLE.replace("mftplus@pve!agent", "mftplus@pve!agent=secret"),
                false,
                "USER@REALM!TOKENID",
            ),
            (
                &WHOLE.replace("token_secret_file: /etc/mftplus/pve-token\n", ""),
                false,
                "token_secret_file",
            ),
            (
                &format!("{WHOLE}token_secret: abc\n"),
                false,
                "token_secret",
            ),
            (&format!("{WHOLE}storage: a b\n"), false, "storage id"),
            (&format!("{WHOLE}task_timeout: 10\n"), false, "task_timeout"),
        ] {
            let err = parse(yaml, proxmox).unwrap_err();
            assert!(err.contains(expect), "{yaml:?}: {err}");
        }
    }
}
