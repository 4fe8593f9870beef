//! The JWT keys in force, replaced while the server runs: when the files they come from change
//! (`mftplus cloud rotate-jwt` rewrote the secret files, or an operator put a new RS256 key in
//! place and listed the old one under `previous_public_keys`), every replica reading those files
//! loads the new set within [`RELOAD_INTERVAL`]. A set that fails to load is logged and the old
//! one stays: a half-finished edit never logs anyone out.

use super::jwt::JwtKeys;
use crate::config::{self, LoadedConfig};
use mftplus_base::sync;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// How often the key files are looked at.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

pub struct JwtKeyring {
    keys: RwLock<Arc<JwtKeys>>,
    watch: Option<Watch>,
}

/// The files the keys come from, and what they looked like at the last load.
struct Watch {
    config_file: Option<PathBuf>,
    files: Vec<PathBuf>,
    stamp: Mutex<Vec<Stamp>>,
}

type Stamp = Option<(SystemTime, u64)>;

fn stamp(files: &[PathBuf]) -> Vec<Stamp> {
    files
        .iter()
        .map(|file| {
            let meta = std::fs::metadata(file).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

impl JwtKeyring {
    /// Keys that never change (tests, configurations without key files).
    pub fn fixed(keys: JwtKeys) -> JwtKeyring {
        JwtKeyring {
            keys: RwLock::new(Arc::new(keys)),
            watch: None,
        }
    }

    /// Keys loaded from `loaded`, watched when any of them comes from a file.
    pub fn watching(keys: JwtKeys, loaded: &LoadedConfig) -> JwtKeyring {
        let files = key_files(loaded);
        if files.is_empty() {
            return JwtKeyring::fixed(keys);
        }
        let stamp = Mutex::new(stamp(&files));
        JwtKeyring {
            keys: RwLock::new(Arc::new(keys)),
            watch: Some(Watch {
                config_file: loaded.file.clone(),
                files,
                stamp,
            }),
        }
    }

    /// The keys as of now.
    pub fn current(&self) -> Arc<JwtKeys> {
        sync::read(&self.keys).clone()
    }

    /// Loads the keys again when their files changed. `Ok(true)` when a new set is in place;
    /// an error leaves the old set (and is tried again at the next look, the stamp unchanged).
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let Some(watch) = &self.watch else {
            return Ok(false);
        };
        let now = stamp(&watch.files);
        let mut last = sync::lock(&watch.stamp);
        if *last == now {
            return Ok(false);
        }
        let loaded = config::load(watch.config_file.as_deref()).map_err(|e| e.to_string())?;
        let keys = JwtKeys::from_config(&loaded.config.auth.jwt)?;
        *last = now;
        *sync::write(&self.keys) = Arc::new(keys);
        Ok(true)
    }
}

/// Every file a key is read from: the config file itself (RS256 key paths and the list of
/// previous keys live there), secrets given as `*_FILE`, and the RS256 key files.
fn key_files(loaded: &LoadedConfig) -> Vec<PathBuf> {
    let jwt = &loaded.config.auth.jwt;
    let mut files: Vec<PathBuf> = ["auth.jwt.secret", "auth.jwt.previous_secret"]
        .iter()
        .filter_map(|key| loaded.secret_file(key))
        .collect();
    files.extend(jwt.private_key.iter().cloned());
    files.extend(jwt.public_key.iter().cloned());
    files.extend(jwt.previous_public_keys.iter().cloned());
    if !files.is_empty() {
        files.extend(loaded.file.iter().cloned());
    }
    files
}

/// Looks at the key files every [`RELOAD_INTERVAL`] until stopped.
pub async fn watch(state: crate::state::AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(RELOAD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match state.jwt.reload_if_changed() {
            Ok(true) => tracing::info!(
                signing_kid = %state.jwt.current().signing_kid(),
                "JWT keys reloaded from their files"
            ),
            Ok(false) => {}
            Err(err) => tracing::error!(
                "JWT key files changed but do not load; the previous keys stay in force: {err}"
            ),
        }
    }
}
