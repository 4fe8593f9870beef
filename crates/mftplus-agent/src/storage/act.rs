//! Carrying out one storage step on the real machine: `mount(2)` and `umount(2)` directly
//! (the errno says "busy" or "not permitted" exactly, where the `mount` program's exit code
//! would have to be parsed from its words), `wipefs` and `mkfs.ext4` as programs.
//!
//! Every step looks at the machine again first (the plan may be a pass old), and every step is
//! idempotent: mounting a drive mounted already, or unmounting one that is not, succeeds.

use super::{drive_mount_point, StorageError};
use crate::probe::storage::{drives, parse_mountinfo, read_fs_identity, Drive, FsKind};
use crate::state::StateDb;
use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The options of a drive the agent mounts: a customer's drive holds data, not device nodes,
/// set-uid programs or anything the box should run.
pub const MOUNT_FLAGS: MountFlags = MountFlags::NODEV
    .union(MountFlags::NOSUID)
    .union(MountFlags::NOEXEC);

/// The drive with this durable id as the machine shows it now.
fn find(durable_id: &str) -> Option<Drive> {
    drives().into_iter().find(|d| d.durable_id == durable_id)
}

/// What is mounted at `path` now (`major:minor` of each, bottom first).
fn mounted_at(path: &Path) -> Vec<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse_mountinfo(&mountinfo)
        .into_iter()
        .filter(|e| e.mount_point == path)
        .map(|e| e.device)
        .collect()
}

fn point(root: &Path, durable_id: &str) -> Result<PathBuf, StorageError> {
    drive_mount_point(root, durable_id).ok_or_else(|| {
        StorageError::new(
            "storage_bad_id",
            format!("{durable_id:?} is not a filesystem UUID; the agent mounts only drives it found by UUID"),
        )
    })
}

/// Mounts the drive at `<root>/<durable_id>` (0700) unless it is mounted somewhere already.
pub async fn mount(root: &Path, durable_id: &str) -> Result<String, StorageError> {
    let target = point(root, durable_id)?;
    let drive = find(durable_id).ok_or_else(|| not_attached(durable_id))?;
    if let Some(at) = drive.mount_points.first() {
        return Ok(format!("mounted already at {}", at.display()));
    }
    if !mounted_at(&target).is_empty() {
        return Err(StorageError::new(
            "storage_mount_point_taken",
            format!("something else is mounted at {}", target.display()),
        ));
    }
    let fs = same_filesystem(&drive)?;
    mftplus_base::ensure_private_dir(root)
        .map_err(|e| StorageError::new(e.code(), e.to_string()))?;
    match std::fs::DirBuilder::new().mode(0o700).create(&target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && target.is_dir() => {}
        Err(e) => {
            return Err(StorageError::new(
                "storage_io",
                format!("{}: {e}", target.display()),
            ))
        }
    }
    may_mount()?;
    let device = drive.device.clone();
    let at = target.clone();
    let mounted = tokio::task::spawn_blocking(move || {
        rustix::mount::mount(&device, &at, fs.mount_type(), MOUNT_FLAGS, None)
    })
    .await
    .map_err(|e| StorageError::new("storage_mount_failed", e.to_string()))?;
    mounted.map_err(|errno| syscall_error("mount", errno, &drive.device, &target))?;
    Ok(format!(
        "mounted {} ({}) at {}",
        drive.device.display(),
        fs.mount_type(),
        target.display()
    ))
}

/// Unmounts the drive from `<root>/<durable_id>`; mounts elsewhere are left alone.
pub async fn detach(root: &Path, durable_id: &str) -> Result<String, StorageError> {
    let target = point(root, durable_id)?;
    let here = mounted_at(&target);
    if here.is_empty() {
        let _ = std::fs::remove_dir(&target);
        return Ok("not mounted".into());
    }
    // Only the drive itself, never something mounted over it by someone else.
    let drive = find(durable_id);
    if drive.as_ref().map(|d| &d.dev) != here.last() {
        return Err(StorageError::new(
            "storage_mount_point_taken",
            format!(
                "what is mounted at {} now is not drive {durable_id}",
                target.display()
            ),
        ));
    }
    unmount(&target, durable_id).await?;
    let _ = std::fs::remove_dir(&target);
    Ok(format!("unmounted from {}", target.display()))
}

async fn unmount(target: &Path, durable_id: &str) -> Result<(), StorageError> {
    may_mount()?;
    let at = target.to_path_buf();
    tokio::task::spawn_blocking(move || rustix::mount::unmount(&at, UnmountFlags::empty()))
        .await
        .map_err(|e| StorageError::new("storage_unmount_failed", e.to_string()))?
        .map_err(|errno| syscall_error("unmount", errno, Path::new(durable_id), target))
}

/// `CAP_SYS_ADMIN`, the capability `mount(2)` and `umount(2)` need.
const CAP_SYS_ADMIN: u32 = 21;

/// Refuses before the system call when the agent lacks `CAP_SYS_ADMIN`: the shipped unit
/// withholds it and also filters the `@mount` calls, and a filtered call kills the process
/// (SIGSYS) instead of failing.
fn may_mount() -> Result<(), StorageError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if has_capability(&status, CAP_SYS_ADMIN) {
        return Ok(());
    }
    Err(StorageError::new(
        "storage_not_permitted",
        "the agent lacks CAP_SYS_ADMIN, which mounting needs (docs/agent.md, Storage)",
    ))
}

/// Whether `CapEff:` of a `/proc/PID/status` text has capability `bit`.
fn has_capability(status: &str, bit: u32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << bit) != 0)
}

/// The drive's device still carries the filesystem it was found by (not replugged with
/// another drive in between).
fn same_filesystem(drive: &Drive) -> Result<FsKind, StorageError> {
    match read_fs_identity(&drive.device) {
        Ok(Some((uuid, fs))) if uuid == drive.durable_id => Ok(fs),
        _ => Err(StorageError::new(
            "storage_changed",
            format!(
                "{} no longer carries filesystem {}",
                drive.device.display(),
                drive.durable_id
            ),
        )),
    }
}

fn not_attached(durable_id: &str) -> StorageError {
    StorageError::new(
        "storage_not_attached",
        format!("drive {durable_id} is not attached to this box"),
    )
}

fn syscall_error(call: &str, errno: Errno, what: &Path, target: &Path) -> StorageError {
    let (code, hint) = match errno {
        Errno::BUSY => (
            "storage_busy",
            "a process still uses it (a backup running, an open file, a shell in it)",
        ),
        Errno::PERM | Errno::ACCESS => (
            "storage_not_permitted",
            "the agent needs CAP_SYS_ADMIN and the @mount system calls (docs/agent.md, Storage)",
        ),
        _ if call == "mount" => ("storage_mount_failed", "the kernel refused the filesystem"),
        _ => ("storage_unmount_failed", "the kernel refused"),
    };
    StorageError::new(
        code,
        format!(
            "{call} {} at {}: {errno}; {hint}",
            what.display(),
            target.display()
        ),
    )
}

/// Erases the drive and makes a new ext4 with the same UUID, so its policy and backup history
/// stay with it. Unmounts it first when the agent mounted it; a drive the customer mounted
/// elsewhere is refused. The device is noted in the journal entry `seq` before anything is
/// erased, so a wipe a crash cut short is finished on the same device.
pub async fn wipe(
    db: &StateDb,
    seq: i64,
    root: &Path,
    durable_id: &str,
) -> Result<String, StorageError> {
    let target = point(root, durable_id)?;
    let Some(drive) = find(durable_id) else {
        return super::recover::finish_interrupted_wipe(db, seq, durable_id).await;
    };
    if drive.mount_points.iter().any(|m| m != &target) {
        return Err(StorageError::new(
            "storage_mounted_elsewhere",
            format!(
                "drive {durable_id} is mounted at {}, which the agent did not mount; \
                 unmount it there first",
                drive.mount_points[0].display()
            ),
        ));
    }
    same_filesystem(&drive)?;
    if drive.is_mounted() {
        unmount(&target, durable_id).await?;
    }
    let size = super::recover::device_size(&drive.device);
    let note = super::recover::device_note(&drive.device, size);
    db.journal_note(seq, &note)
        .map_err(|e| StorageError::new(e.code(), e.to_string()))?;
    run("wipefs", &["-a".as_ref(), drive.device.as_os_str()]).await?;
    make_ext4(&drive.device, durable_id).await?;
    Ok(format!(
        "wiped {}: a new ext4 with the same UUID",
        drive.device.display()
    ))
}

/// `mkfs.ext4` with the drive's UUID, checked by reading it back.
pub(super) async fn make_ext4(device: &Path, durable_id: &str) -> Result<(), StorageError> {
    run(
        "mkfs.ext4",
        &[
            "-F".as_ref(),
            "-q".as_ref(),
            "-U".as_ref(),
            durable_id.as_ref(),
            device.as_os_str(),
        ],
    )
    .await?;
    match read_fs_identity(device) {
        Ok(Some((uuid, FsKind::Ext))) if uuid == durable_id => Ok(()),
        other => Err(StorageError::new(
            "storage_wipe_failed",
            format!("mkfs.ext4 ran but {} reads as {other:?}", device.display()),
        )),
    }
}

/// Runs a tool to completion; a failure carries its last words.
pub(super) async fn run(tool: &str, args: &[&std::ffi::OsStr]) -> Result<String, StorageError> {
    let out = tokio::process::Command::new(tool)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| StorageError::new("storage_wipe_failed", format!("{tool}: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.trim().lines().last().unwrap_or_default().to_string();
    Err(StorageError::new(
        "storage_wipe_failed",
        format!("{tool} failed ({}): {last}", out.status),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_capabilities() {
        let status = "Name:\tmftplus-agent\nCapInh:\t0000000000000000\nCapEff:\t0000000000200000\n";
        assert!(has_capability(status, CAP_SYS_ADMIN));
        assert!(!has_capability(status, 0));
        assert!(!has_capability(
            "CapEff:\t0000000000000000\n",
            CAP_SYS_ADMIN
        ));
        assert!(!has_capability("", CAP_SYS_ADMIN));
    }
}
