//! Setting a box's backups up once (`mftplus agent backup init`): the repository key, the
//! repository, and the escrow of the key wrapped with the customer's recovery code. The key
//! is written before the repository is made, so a crash in between leaves a key the next run
//! reuses, never a repository nobody can open. The escrow is kept in `agent.db` until the
//! cloud has it; the running agent uploads one still owed (`upload_owed_escrow`).

use super::{key_file, namespace, restic_for, BackupConfig};
use crate::config::AgentConfig;
use crate::error::AgentError;
use crate::state::StateDb;
use crate::state_backup::RepositoryRecord;
use base64::Engine;
use mftplus_base::{Clock, Secret};
use mftplus_client::{AgentClient, ClientError};
use mftplus_crypto::escrow::{self, EscrowBinding};
use mftplus_types::fleet::EscrowUpload;
use rand::RngCore;

/// What `init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initialised {
    pub repository: String,
    pub fingerprint: String,
    /// `true` when the repository was made now, `false` when this box's key opened one that
    /// was there already (a second run after a crash).
    pub created: bool,
    /// `Err` with the reason when the cloud could not take the escrow now (the agent retries).
    pub escrowed: Result<(), String>,
}

fn backup_section(config: &AgentConfig) -> Result<&BackupConfig, AgentError> {
    config.backup.as_ref().ok_or_else(|| {
        AgentError::coded(
            "backup_not_configured",
            "the agent config has no `backup:` section (backup.repository)",
        )
    })
}

/// A fresh recovery code for a customer who has none: 120 random bits in six groups of five
/// base32 letters, easy to write down and read back.
pub fn generate_recovery_code() -> Secret {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 30];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let letters: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b & 31)] as char)
        .collect();
    let groups: Vec<String> = letters
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect();
    Secret::new(groups.join("-"))
}

/// Makes the key and the repository (or opens the one this box's key already opens), wraps
/// the key with `recovery_code`, and escrows it.
pub async fn init(
    config: &AgentConfig,
    client: &AgentClient,
    recovery_code: &Secret,
    clock: &dyn Clock,
) -> Result<Initialised, AgentError> {
    let backup = backup_section(config)?;
    let (db, _) = StateDb::open(&config.state_dir)?;
    let identity = db.identity()?.ok_or_else(|| AgentError::NotEnrolled {
        state_dir: config.state_dir.display().to_string(),
    })?;
    if let Some(existing) = db.backup_repository()? {
        return Err(AgentError::coded(
            "backup_already_initialised",
            format!(
                "backups are set up already (repository {}, id {})",
                existing.location, existing.fingerprint
            ),
        ));
    }
    if recovery_code.expose().trim().chars().count() < escrow::MIN_RECOVERY_CODE_CHARS {
        return Err(AgentError::coded(
            "recovery_code_weak",
            format!(
                "the recovery code must be at least {} characters",
                escrow::MIN_RECOVERY_CODE_CHARS
            ),
        ));
    }
    let key = ensure_key(config)?;
    let restic = restic_for(config, backup);
    let (fingerprint, created) = match restic.fingerprint().await {
        Ok(id) => (id, false),
        Err(super::restic::ResticError::NoRepository(_)) => {
            restic
                .init()
                .await
                .map_err(|e| AgentError::coded(e.code(), e.to_string()))?;
            let id = restic
                .fingerprint()
                .await
                .map_err(|e| AgentError::coded(e.code(), e.to_string()))?;
            (id, true)
        }
        Err(e) => return Err(AgentError::coded(e.code(), e.to_string())),
    };
    let binding = EscrowBinding {
        host_id: &identity.host_id,
        repository_fingerprint: &fingerprint,
    };
    let wrapped = escrow::wrap(key.expose().as_bytes(), recovery_code.expose(), binding)
        .map_err(|e| AgentError::coded(e.code(), e.to_string()))?;
    db.set_backup_repository(&RepositoryRecord {
        location: backup.repository.clone(),
        fingerprint: fingerprint.clone(),
        namespace: namespace(&identity.host_id),
        wrapped_key: wrapped,
        initialised_at_ms: clock.now_ms(),
        escrowed_at_ms: None,
    })?;
    let escrowed = upload_owed_escrow(&db, client, &identity.host_id, clock)
        .await
        .map(drop)
        .map_err(|e| format!("{e} [{}]", e.code()));
    Ok(Initialised {
        repository: backup.repository.clone(),
        fingerprint,
        created,
        escrowed,
    })
}

/// The repository key: the one on disk, else a new one (32 random bytes, base64).
fn ensure_key(config: &AgentConfig) -> Result<Secret, AgentError> {
    let path = key_file(config);
    if path.exists() {
        return mftplus_base::read_private_to_string(&path)
            .map(|text| Secret::new(text.trim().to_string()))
            .map_err(|e| AgentError::coded(e.code(), e.to_string()));
    }
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let key = base64::engine::general_purpose::STANDARD.encode(raw);
    write_key(config, &key)?;
    Ok(Secret::new(key))
}

/// Writes the repository key, 0600 in a 0700 folder.
pub(crate) fn write_key(config: &AgentConfig, key: &str) -> Result<(), AgentError> {
    let path = key_file(config);
    let dir = path.parent().expect("key file has a folder");
    mftplus_base::ensure_private_dir(dir)
        .map_err(|e| AgentError::coded(e.code(), e.to_string()))?;
    mftplus_base::write_private(&path, key.as_bytes())
        .map_err(|e| AgentError::coded(e.code(), e.to_string()))
}

/// Uploads the escrow when the cloud does not have it yet; `Ok(true)` when it did now.
pub async fn upload_owed_escrow(
    db: &StateDb,
    client: &AgentClient,
    host_id: &str,
    clock: &dyn Clock,
) -> Result<bool, ClientError> {
    let Ok(Some(record)) = db.backup_repository() else {
        return Ok(false);
    };
    if record.escrowed_at_ms.is_some() {
        return Ok(false);
    }
    client
        .escrow(
            host_id,
            &EscrowUpload {
                backup_namespace: record.namespace,
                repository_fingerprint: record.fingerprint,
                wrapped_key: record.wrapped_key,
            },
        )
        .await?;
    if let Err(err) = db.mark_escrowed(clock.now_ms()) {
        tracing::warn!("the cloud took the escrow but agent.db could not record it: {err}");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_long_and_differ() {
        let a = generate_recovery_code();
        let b = generate_recovery_code();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 35);
        assert_eq!(a.expose().split('-').count(), 6);
        assert!(a
            .expose()
            .chars()
            .all(|c| c == '-' || c.is_ascii_alphanumeric()));
    }
}
