//! Finishing a wipe that a crash cut short.
//!
//! Between `wipefs -a` and the end of `mkfs.ext4` the drive carries no filesystem, so it can no
//! longer be found by its UUID. The wipe step therefore notes the device and its size in its
//! journal entry before it erases anything. When the agent starts again that entry is
//! `interrupted` and the op is still authorized, so the next wipe step for the drive runs,
//! finds no drive, and finishes the wipe on the noted device — but only when that device still
//! exists with the same size and carries no signature at all (`wipefs` lists nothing): a
//! different drive that took the device's name after a reboot always carries one, and is never
//! formatted. Otherwise the op fails with `storage_not_attached`.

use super::act::{make_ext4, run};
use super::StorageError;
use crate::state::StateDb;
use std::path::{Path, PathBuf};

/// How many journal entries back an interrupted wipe is looked for.
const LOOKBACK: u32 = 1000;

/// The journal note of a wipe in flight.
pub fn device_note(device: &Path, size: Option<u64>) -> String {
    format!("device={} size={}", device.display(), size.unwrap_or(0))
}

fn parse_note(detail: &str) -> Option<(PathBuf, u64)> {
    let rest = detail.strip_prefix("device=")?;
    let (device, size) = rest.rsplit_once(" size=")?;
    let size = size.parse::<u64>().ok().filter(|s| *s > 0)?;
    Some((PathBuf::from(device), size))
}

/// The size of a block device in bytes, from sysfs.
pub fn device_size(device: &Path) -> Option<u64> {
    let canonical = std::fs::canonicalize(device).ok()?;
    let name = canonical.file_name()?.to_str()?.to_string();
    let sectors = std::fs::read_to_string(format!("/sys/class/block/{name}/size")).ok()?;
    sectors.trim().parse::<u64>().ok().map(|s| s * 512)
}

/// The wipe of `durable_id` whose drive cannot be found (see the module docs); `seq` is the
/// journal entry of the step running now.
pub async fn finish_interrupted_wipe(
    db: &StateDb,
    seq: i64,
    durable_id: &str,
) -> Result<String, StorageError> {
    let not_attached = |why: &str| {
        StorageError::new(
            "storage_not_attached",
            format!("drive {durable_id} is not attached to this box{why}"),
        )
    };
    let subject = super::subject(durable_id);
    let state = |e: crate::state::StateError| StorageError::new(e.code(), e.to_string());
    let previous = db
        .journal(LOOKBACK)
        .map_err(state)?
        .into_iter()
        .find(|e| e.seq < seq && e.guest_id == subject && e.action == "wipe");
    let Some((device, size)) = previous
        .filter(|e| e.state == "interrupted")
        .and_then(|e| parse_note(e.detail.as_deref()?))
    else {
        return Err(not_attached(""));
    };
    if device_size(&device) != Some(size) {
        return Err(not_attached(&format!(
            " (an interrupted wipe was on {}, which is gone or another size now)",
            device.display()
        )));
    }
    let signatures = run("wipefs", &["--noheadings".as_ref(), device.as_os_str()]).await?;
    if !signatures.trim().is_empty() {
        return Err(not_attached(&format!(
            " ({} carries a filesystem signature again: not the drive an interrupted wipe left blank)",
            device.display()
        )));
    }
    // Noted again, so a second crash is recovered the same way.
    db.journal_note(seq, &device_note(&device, Some(size)))
        .map_err(state)?;
    make_ext4(&device, durable_id).await?;
    Ok(format!(
        "finished an interrupted wipe of {}: a new ext4 with the same UUID",
        device.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_round_trip() {
        let note = device_note(Path::new("/dev/sd b1"), Some(4096));
        assert_eq!(parse_note(&note), Some((PathBuf::from("/dev/sd b1"), 4096)));
        assert_eq!(parse_note(&device_note(Path::new("/dev/x"), None)), None);
        assert_eq!(parse_note("device busy"), None);
    }
}
