//! Disaster recovery on a replacement box: after `mftplus agent enroll --restore HOST_ID` took
//! over the lost host's identity and stored the escrow the cloud handed back, the customer's
//! recovery code unwraps the repository key here (it never travels), the repository is checked
//! to be the one escrowed, and each guest of the desired state gets its data back from its
//! latest snapshot — before the agent creates the guest, so it starts on its own data.

use super::setup::write_key;
use super::{guest_data_dir, guest_tag, guests_dir_of, restic_for};
use crate::config::AgentConfig;
use crate::error::AgentError;
use crate::state::StateDb;
use mftplus_base::Secret;
use mftplus_crypto::escrow::{self, EscrowBinding};
use std::path::Path;

/// What became of one guest's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestRestore {
    pub guest_id: String,
    /// The snapshot restored from, or why not.
    pub outcome: Result<String, String>,
}

/// Unwraps the key with `recovery_code` and restores every guest's data.
pub async fn recover(
    config: &AgentConfig,
    recovery_code: &Secret,
) -> Result<Vec<GuestRestore>, AgentError> {
    let backup = config.backup.as_ref().ok_or_else(|| {
        AgentError::coded(
            "backup_not_configured",
            "the agent config has no `backup:` section: set backup.repository to the lost box's repository",
        )
    })?;
    let (db, _) = StateDb::open(&config.state_dir)?;
    let identity = db.identity()?.ok_or_else(|| AgentError::NotEnrolled {
        state_dir: config.state_dir.display().to_string(),
    })?;
    let record = db.backup_repository()?.ok_or_else(|| {
        AgentError::coded(
            "escrow_missing",
            "the cloud holds no escrowed backup key for this host (backups were never set up, \
             or this box was not enrolled with --restore)",
        )
    })?;
    let binding = EscrowBinding {
        host_id: &identity.host_id,
        repository_fingerprint: &record.fingerprint,
    };
    let key = escrow::unwrap(&record.wrapped_key, recovery_code.expose(), binding)
        .map_err(|e| AgentError::coded(e.code(), e.to_string()))?;
    let key = String::from_utf8(key.to_vec())
        .map_err(|_| AgentError::coded("escrow_malformed", "the escrowed key is not text"))?;
    write_key(config, &key)?;
    let restic = restic_for(config, backup);
    let found = restic
        .fingerprint()
        .await
        .map_err(|e| AgentError::coded(e.code(), e.to_string()))?;
    if found != record.fingerprint {
        return Err(AgentError::coded(
            "backup_repository_changed",
            format!(
                "the repository at {} (id {found}) is not the escrowed one (id {})",
                backup.repository, record.fingerprint
            ),
        ));
    }
    let (_, desired) = db.desired()?;
    let guests_dir = config.guests_dir();
    mftplus_base::ensure_private_dir(&guests_dir)
        .map_err(|e| AgentError::coded(e.code(), e.to_string()))?;
    let mut restored = Vec::new();
    for guest_id in desired.guests.keys() {
        let outcome = restore_guest(&restic, &record.namespace, &guests_dir, guest_id).await;
        restored.push(GuestRestore {
            guest_id: guest_id.clone(),
            outcome,
        });
    }
    Ok(restored)
}

async fn restore_guest(
    restic: &super::restic::Restic,
    namespace: &str,
    guests_dir: &Path,
    guest_id: &str,
) -> Result<String, String> {
    let dest = guest_data_dir(guests_dir, guest_id)
        .ok_or_else(|| format!("`{guest_id}` is not a guest id a folder can be named after"))?;
    let snapshots = restic
        .snapshots(namespace, &[&guest_tag(guest_id)])
        .await
        .map_err(|e| format!("{e} [{}]", e.code()))?;
    let latest = snapshots
        .last()
        .ok_or_else(|| "no snapshot holds this guest's data [guest_backup_missing]".to_string())?;
    if std::fs::read_dir(&dest).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(format!(
            "{} holds data already; restoring over it is destructive (signed op) [guest_data_exists]",
            dest.display()
        ));
    }
    let old_dir = guests_dir_of(&latest.tags).unwrap_or_else(|| guests_dir.to_path_buf());
    let include = old_dir.join(guest_id);
    // Staged beside the destination, so the final step is one rename on one filesystem and a
    // crash never leaves a half-restored folder under the guest's name.
    let staging = guests_dir.join(format!(".restore-{guest_id}"));
    let _ = std::fs::remove_dir_all(&staging);
    restic
        .restore(&latest.id, &staging, &[include.display().to_string()])
        .await
        .map_err(|e| format!("{e} [{}]", e.code()))?;
    let restored = staging.join(include.strip_prefix("/").unwrap_or(&include));
    let moved = (|| {
        if !restored.exists() {
            std::fs::create_dir_all(&restored)?;
        }
        if dest.exists() {
            std::fs::remove_dir(&dest)?;
        }
        std::fs::rename(&restored, &dest)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    moved.map_err(|e| format!("{}: {e} [guest_restore_failed]", dest.display()))?;
    Ok(latest.id.clone())
}
