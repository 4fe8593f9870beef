//! The agent's configuration: `~/.config/mft-agent/config.yaml` for a person's agent, a
//! system-wide file (`/etc/mftplus/agent.yaml`) for the service, chosen by `--config` or
//! `MFT_AGENT_CONFIG`. Seed 000's two keys, `server.url` and `server.timeout`, are all an agent
//! needs to move from the cloud to an edge hub; everything else has a default.
//!
//! Unknown keys are refused with their path, so a typo never silently falls back to a default.

use mftplus_types::duration::parse_duration_secs;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// Where the service's config lives when no path is given and no per-user file exists.
pub const SYSTEM_CONFIG: &str = "/etc/mftplus/agent.yaml";
/// The service's state directory.
pub const SYSTEM_STATE_DIR: &str = "/var/lib/mftplus-agent";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read agent config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("agent config {path}: {why}")]
    Invalid { path: PathBuf, why: String },
    #[error("no agent config found (looked at {looked}); create one with `server.url`, or pass --config")]
    Missing { looked: String },
}

/// Which guest driver runs guests on this box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DriverChoice {
    /// Docker when its socket answers, else none (and the agent says so).
    #[default]
    Auto,
    Docker,
    None,
    /// Proxmox VE through its API (the `proxmox:` section): VMs and LXC containers.
    Proxmox,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// The cloud or an edge hub: `http(s)://host:port`.
    pub server_url: String,
    /// Whole-request timeout for every call to the server.
    pub server_timeout: Duration,
    /// PEM CA bundle that signed the server's certificate, when it is not a public CA (the
    /// cloud's own CA, an operator's).
    pub server_ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) presented for mutual TLS.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub driver: DriverChoice,
    /// Docker Engine socket; `None` = `DOCKER_HOST` or `/var/run/docker.sock`.
    pub docker_socket: Option<PathBuf>,
    /// The Proxmox VE API (`proxmox:`); required by `driver: proxmox`.
    pub proxmox: Option<crate::driver::proxmox::ProxmoxConfig>,
    /// The envelope's `poll_interval_seconds` is clamped into `[min, max]`. The floor is 60 s;
    /// lower it only for tests and demos (`mftplus dev` does).
    pub poll_min: Duration,
    pub poll_max: Duration,
    /// After an error the next try waits `initial`, doubling up to `max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// How long the server may keep refusing this host's key (401) before the agent stops
    /// and asks for re-enrollment. One 401 is never enough: a restarting cloud or a hub whose
    /// auth cache is cold may refuse briefly.
    pub auth_grace: Duration,
    /// The filesystem whose usage the report carries as the host's disk.
    pub disk_path: PathBuf,
    /// `guests_dir`, when set: see [`AgentConfig::guests_dir`].
    pub guests_dir_setting: Option<PathBuf>,
    /// Backups with restic (`backup:`); `None` when the box makes none.
    pub backup: Option<crate::backup::BackupConfig>,
    /// The file inbox and outbox (`files:`); `None` when the box moves no files.
    pub files: Option<crate::files::FilesConfig>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: FileServer,
    state_dir: Option<PathBuf>,
    driver: Option<DriverChoice>,
    #[serde(default)]
    docker: FileDocker,
    proxmox: Option<crate::driver::proxmox::ProxmoxSection>,
    #[serde(default)]
    poll: FilePoll,
    #[serde(default)]
    backoff: FileBackoff,
    auth_grace: Option<String>,
    disk_path: Option<PathBuf>,
    guests_dir: Option<PathBuf>,
    backup: Option<crate::backup::FileBackup>,
    files: Option<crate::files::FileFiles>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileServer {
    url: Option<String>,
    timeout: Option<String>,
    ca_file: Option<PathBuf>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileDocker {
    socket: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FilePoll {
    min_interval: Option<String>,
    max_interval: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileBackoff {
    initial: Option<String>,
    max: Option<String>,
}

/// The per-user config path: `$XDG_CONFIG_HOME/mft-agent/config.yaml`, else
/// `~/.config/mft-agent/config.yaml`.
pub fn user_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(xdg) = env("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join("mft-agent/config.yaml"));
    }
    env("HOME")
        .filter(|v| !v.is_empty())
        .map(|home| PathBuf::from(home).join(".config/mft-agent/config.yaml"))
}

/// The default state directory: the system one for root, else
/// `$XDG_STATE_HOME/mft-agent` or `~/.local/state/mft-agent`.
pub fn default_state_dir(env: &dyn Fn(&str) -> Option<String>, is_root: bool) -> PathBuf {
    if is_root {
        return PathBuf::from(SYSTEM_STATE_DIR);
    }
    if let Some(xdg) = env("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("mft-agent");
    }
    match env("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/state/mft-agent"),
        None => PathBuf::from(SYSTEM_STATE_DIR),
    }
}

/// Which file to read: `explicit`, else `MFT_AGENT_CONFIG`, else the per-user file when it
/// exists, else the system file when it exists.
pub fn locate(
    explicit: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = env("MFT_AGENT_CONFIG").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let candidates: Vec<PathBuf> = user_config_path(env)
        .into_iter()
        .chain([PathBuf::from(SYSTEM_CONFIG)])
        .collect();
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or_else(|| ConfigError::Missing {
            looked: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl AgentConfig {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let env = |name: &str| std::env::var(name).ok();
        Self::parse(&text, &env, rustix::process::geteuid().is_root()).map_err(|why| {
            ConfigError::Invalid {
                path: path.to_path_buf(),
                why,
            }
        })
    }

    /// Parses config text; `env` supplies `HOME`/`XDG_STATE_HOME` for the default state dir.
    pub fn parse(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        is_root: bool,
    ) -> Result<AgentConfig, String> {
        let file: FileConfig = if text.trim().is_empty() {
            FileConfig::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| e.to_string())?
        };
        let server_url = file
            .server
            .url
            .ok_or("`server.url` is required (the cloud or an edge hub)")?;
        let server_url = validate_url(&server_url)?;
        let duration =
            |key: &str, value: Option<String>, default: u64| -> Result<Duration, String> {
                match value {
                    None => Ok(Duration::from_secs(default)),
                    Some(text) => parse_duration_secs(&text)
                        .map(Duration::from_secs)
                        .map_err(|e| format!("`{key}`: {e}")),
                }
            };
        let state_dir = file
            .state_dir
            .unwrap_or_else(|| default_state_dir(env, is_root));
        let config = AgentConfig {
            server_url,
            server_timeout: duration("server.timeout", file.server.timeout, 30)?,
            server_ca_file: file.server.ca_file,
            client_cert: file.server.client_cert,
            client_key: file.server.client_key,
            guests_dir_setting: file.guests_dir,
            backup: file
                .backup
                .map(|section| section.validate(&duration))
                .transpose()?,
            files: file
                .files
                .map(|section| section.validate(&duration))
                .transpose()?,
            state_dir,
            driver: file.driver.unwrap_or_default(),
            docker_socket: file.docker.socket,
            proxmox: crate::driver::proxmox::config::from_section(
                file.proxmox,
                file.driver == Some(DriverChoice::Proxmox),
            )?,
            poll_min: duration("poll.min_interval", file.poll.min_interval, 60)?,
            poll_max: duration("poll.max_interval", file.poll.max_interval, 3600)?,
            backoff_initial: duration("backoff.initial", file.backoff.initial, 2)?,
            backoff_max: duration("backoff.max", file.backoff.max, 300)?,
            auth_grace: duration("auth_grace", file.auth_grace, 15 * 60)?,
            disk_path: file.disk_path.unwrap_or_else(|| PathBuf::from("/")),
        };
        if config.client_cert.is_some() != config.client_key.is_some() {
            return Err("`server.client_cert` and `server.client_key` go together".into());
        }
        if config.poll_min > config.poll_max {
            return Err("`poll.min_interval` is above `poll.max_interval`".into());
        }
        if config.backoff_initial > config.backoff_max {
            return Err("`backoff.initial` is above `backoff.max`".into());
        }
        Ok(config)
    }

    /// Each guest's data folder is `<guests_dir>/<guest_id>` (a container sees it at `/data`),
    /// what backups of guests cover: `guests_dir`, else `<state_dir>/guests`.
    pub fn guests_dir(&self) -> PathBuf {
        self.guests_dir_setting
            .clone()
            .unwrap_or_else(|| self.state_dir.join("guests"))
    }

    /// A config for `server_url` with every default, e.g. the one `enroll` writes.
    pub fn for_server(server_url: &str, state_dir: PathBuf) -> Result<AgentConfig, String> {
        let mut config = Self::parse(
            &format!(
                "server:\n  url: {}\n",
                serde_json::to_string(server_url).unwrap_or_default()
            ),
            &|_| None,
            false,
        )?;
        config.state_dir = state_dir;
        Ok(config)
    }
}

/// `http(s)://authority[/prefix]`, without a trailing slash.
pub fn validate_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| format!("`server.url` {url:?} must start with http:// or https://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("`server.url` {url:?} has no host"));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_seed_block_is_a_whole_config() {
        let text = "server:\n  url: http://hub.yourcompany.com:3002\n  timeout: 30s\n";
        let home = |name: &str| (name == "HOME").then(|| "/home/op".to_string());
        let config = AgentConfig::parse(text, &home, false).unwrap();
        assert_eq!(config.server_url, "http://hub.yourcompany.com:3002");
        assert_eq!(config.server_timeout, Duration::from_secs(30));
        assert_eq!(
            config.state_dir,
            PathBuf::from("/home/op/.local/state/mft-agent")
        );
        assert_eq!(config.poll_min, Duration::from_secs(60));
        assert_eq!(config.poll_max, Duration::from_secs(3600));
        assert_eq!(config.driver, DriverChoice::Auto);
        let root = AgentConfig::parse(text, &home, true).unwrap();
        assert_eq!(root.state_dir, PathBuf::from(SYSTEM_STATE_DIR));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, expect) in [
            ("server:\n  timeout: 30s\n", "server.url"),
            ("server:\n  url: hub:3002\n", "http://"),
            (
                "server:\n  url: http://h\n  timeout: 30\n",
                "server.timeout",
            ),
            ("server:\n  url: http://h\n  tiemout: 30s\n", "tiemout"),
            ("server:\n  url: http://h\ndriver: podman\n", "podman"),
            (
                "server:\n  url: http://h\npoll:\n  min_interval: 2h\n  max_interval: 1h\n",
                "poll.min_interval",
            ),
        ] {
            let err = AgentConfig::parse(text, &no_env, false).unwrap_err();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
    }

    #[test]
    fn locate_prefers_explicit_then_env_then_existing_files() {
        let explicit = Path::new("/tmp/x.yaml");
        assert_eq!(locate(Some(explicit), &no_env).unwrap(), explicit);
        let env = |name: &str| (name == "MFT_AGENT_CONFIG").then(|| "/etc/a.yaml".to_string());
        assert_eq!(locate(None, &env).unwrap(), PathBuf::from("/etc/a.yaml"));
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().display().to_string();
        let env = move |name: &str| (name == "HOME").then(|| home.clone());
        let file = dir.path().join(".config/mft-agent/config.yaml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "server:\n  url: http://h\n").unwrap();
        assert_eq!(locate(None, &env).unwrap(), file);
    }

    #[test]
    fn the_proxmox_section() {
        let section = "proxmox:\n  url: https://pve1:8006\n  node: pve1\n  \
                       token_id: mftplus@pve!agent\n  token_secret_file: /etc/mftplus/pve-token\n";
        let text = format!("server:\n  url: http://h\ndriver: proxmox\n{section}");
        let config = AgentConfig::parse(&text, &no_env, false).unwrap();
        assert_eq!(config.driver, DriverChoice::Proxmox);
        let proxmox = config.proxmox.unwrap();
        assert_eq!(proxmox.api_url, "https://pve1:8006/api2/json");
        assert_eq!(proxmox.node, "pve1");
        // Without `driver: proxmox` the section is parsed (and checked) but not required.
        let plain = AgentConfig::parse("server:\n  url: http://h\n", &no_env, false).unwrap();
        assert_eq!(plain.proxmox, None);
        for (text, expect) in [
            (
                "server:\n  url: http://h\ndriver: proxmox\n".to_string(),
                "`proxmox:` section",
            ),
            (
                format!("server:\n  url: http://h\n{section}  nodes: x\n"),
                "nodes",
            ),
            (
                format!(
                    "server:\n  url: http://h\n{}",
                    section.replace("https", "http")
                ),
                "in clear",
            ),
        ] {
            let err = AgentConfig::parse(&text, &no_env, false).unwrap_err();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
    }
}
