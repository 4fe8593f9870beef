//! Backups of this box with restic (decision 0026): on each storage target's policy schedule
//! the agent backs up the target (its guests' data, or the whole filesystem when it is not the
//! system's), records the snapshot, and now and then restores a sample and compares it with the
//! original. The host report carries the last backup and restore test per target, which the
//! cloud's backup-deadline check reads.
//!
//! The repository key never leaves the box in clear: `mftplus agent backup init` makes it,
//! wraps it with the customer's recovery code and escrows the wrapped key with the cloud, which
//! cannot open it; `mftplus agent enroll --restore` on a replacement box unwraps it with the
//! same code and restores the guests' data (`recover.rs`).

mod config;
pub mod recover;
pub mod restic;
mod restore_test;
pub mod schedule;
pub mod setup;
mod worker;

pub(crate) use config::DurationKey;
pub use config::{BackupConfig, FileBackup};
pub use worker::{annotate_report, Backups, RunSummary};

use crate::config::AgentConfig;
use restic::Restic;
use std::path::PathBuf;

/// Where the repository key lives: a 0600 file in the agent's 0700 state folder, passed to
/// restic by path so it never appears in a process's arguments or environment.
pub fn key_file(config: &AgentConfig) -> PathBuf {
    config.state_dir.join("backup").join("repository.key")
}

/// The restic of `config` against its repository with this box's key.
pub fn restic_for(config: &AgentConfig, backup: &BackupConfig) -> Restic {
    Restic {
        binary: backup.restic.clone(),
        repository: backup.repository.clone(),
        password_file: key_file(config),
        cache_dir: config.state_dir.join("backup").join("cache"),
        timeout: backup.timeout,
    }
}

/// The restic host name (the escrow's `backup_namespace`) of a host's snapshots.
pub fn namespace(host_id: &str) -> String {
    format!("mftplus-{host_id}")
}

/// The tag naming the storage target a snapshot belongs to.
pub fn target_tag(durable_id: &str) -> String {
    format!("target:{durable_id}")
}

/// The tag naming a guest whose data a snapshot holds.
pub fn guest_tag(guest_id: &str) -> String {
    format!("guest:{guest_id}")
}

/// The tag recording the guests' folder at backup time, so a restore on a box with another
/// `guests_dir` knows where the data sat in the snapshot (base64url: tags cannot hold commas).
pub fn guests_dir_tag(dir: &std::path::Path) -> String {
    use base64::Engine;
    format!(
        "guests-dir:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(dir.as_os_str().as_encoded_bytes())
    )
}

/// The guests' folder a snapshot's tags record.
pub fn guests_dir_of(tags: &[String]) -> Option<PathBuf> {
    use base64::Engine;
    let encoded = tags.iter().find_map(|t| t.strip_prefix("guests-dir:"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok().map(PathBuf::from)
}

/// A guest's data folder under `guests_dir`, refusing an id that could name another place.
pub fn guest_data_dir(guests_dir: &std::path::Path, guest_id: &str) -> Option<PathBuf> {
    let safe = !guest_id.is_empty()
        && guest_id.len() <= 128
        && guest_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !guest_id.starts_with('.');
    safe.then(|| guests_dir.join(guest_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn tags_round_trip_and_ids_stay_inside() {
        let dir = Path::new("/var/lib/mftplus-agent/guests, odd");
        let tag = guests_dir_tag(dir);
        assert!(!tag.contains(','));
        assert_eq!(guests_dir_of(&["x".into(), tag]).as_deref(), Some(dir));
        assert_eq!(guests_dir_of(&["guests-dir:!!".into()]), None);
        let root = Path::new("/g");
        assert_eq!(
            guest_data_dir(root, "web-1"),
            Some(PathBuf::from("/g/web-1"))
        );
        for bad in ["", "..", ".hidden", "a/b", "a b", &"x".repeat(129)] {
            assert_eq!(guest_data_dir(root, bad), None, "{bad}");
        }
    }
}
