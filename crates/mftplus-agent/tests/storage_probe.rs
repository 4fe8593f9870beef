//! The superblock UUID reader against filesystems made by the real tools, cross-checked with
//! `blkid`, and the storage probe against this machine's root filesystem where it can be read.

use mftplus_agent::probe::storage::{parse_mountinfo, read_fs_uuid, storage_targets};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn skip(why: &str) {
    // Not `eprintln!`, which the harness captures for passing tests.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// A sparse image file of `mib` MiB in a fresh temp dir.
fn image(mib: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fs.img");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    (dir, path)
}

/// Runs a tool; `None` when it is not installed.
fn run(tool: &str, args: &[&str]) -> Option<std::process::Output> {
    match Command::new(tool).args(args).output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{tool}: {e}"),
    }
}

fn blkid_uuid(path: &Path) -> Option<String> {
    let out = run("blkid", &["-s", "UUID", "-o", "value", path.to_str()?])?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn reads_the_uuid_mkfs_ext4_wrote() {
    let uuid = "3f1c2b7a-9d4e-4c11-8a5b-0123456789ab";
    let (_dir, img) = image(16);
    let Some(out) = run(
        "mkfs.ext4",
        &["-F", "-q", "-U", uuid, img.to_str().unwrap()],
    ) else {
        return skip("mkfs.ext4 is not installed");
    };
    assert!(out.status.success(), "mkfs.ext4: {out:?}");
    assert_eq!(read_fs_uuid(&img).unwrap().as_deref(), Some(uuid));
    match blkid_uuid(&img) {
        Some(seen) => assert_eq!(seen, uuid),
        None => skip("blkid is not installed or did not answer"),
    }
}

#[test]
fn reads_the_uuid_mkfs_xfs_wrote() {
    let uuid = "c0ffee00-1234-4abc-9def-00000000beef";
    // Recent xfsprogs refuse filesystems under 300 MiB; the file stays sparse.
    let (_dir, img) = image(320);
    let uuid_opt = format!("uuid={uuid}");
    let args = ["-q", "-f", "-m", &uuid_opt, img.to_str().unwrap()];
    let Some(out) = run("mkfs.xfs", &args) else {
        return skip("mkfs.xfs is not installed");
    };
    assert!(out.status.success(), "mkfs.xfs: {out:?}");
    assert_eq!(read_fs_uuid(&img).unwrap().as_deref(), Some(uuid));
    if let Some(seen) = blkid_uuid(&img) {
        assert_eq!(seen, uuid);
    }
}

#[test]
fn no_filesystem_means_no_uuid() {
    let (dir, img) = image(1);
    assert_eq!(read_fs_uuid(&img).unwrap(), None);
    let short = dir.path().join("short");
    std::fs::write(&short, b"XFS").unwrap();
    assert_eq!(read_fs_uuid(&short).unwrap(), None);
    assert!(read_fs_uuid(&dir.path().join("absent")).is_err());
}

#[test]
fn finds_the_root_filesystem_when_its_device_is_readable() {
    // Runs everywhere: an unreadable device or odd mount table must never panic.
    let targets = storage_targets();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let root = parse_mountinfo(&mountinfo)
        .into_iter()
        .find(|m| m.mount_point == Path::new("/") && m.source.starts_with("/dev/"));
    let Some(root) = root else {
        return skip("/ is not mounted from a block device here");
    };
    let Ok(Some(uuid)) = read_fs_uuid(Path::new(&root.source)) else {
        return skip("the root device is not readable here (not root, or not ext/XFS)");
    };
    let target = targets
        .iter()
        .find(|t| t.durable_id == uuid)
        .unwrap_or_else(|| panic!("root filesystem {uuid} missing from {targets:?}"));
    assert_eq!(
        target.label.as_deref(),
        Some("/"),
        "bind mounts must not win"
    );
    assert!(target.attached && target.reachable);
    assert!(target.size_bytes.unwrap() > 0);
    assert_eq!(
        targets.iter().filter(|t| t.durable_id == uuid).count(),
        1,
        "deduplicated by UUID"
    );
}
