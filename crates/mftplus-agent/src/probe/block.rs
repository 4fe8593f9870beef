//! The block devices of this box that could carry a drive's filesystem, from
//! `/sys/class/block`: partitions and whole disks, loop devices when a file backs them.
//!
//! Left out, because reading them is useless or harmful: a device something else holds (a RAID
//! member, an LVM physical volume, the disk under a dm-crypt mapping: its `holders` are not
//! empty), a whole disk that has partitions (its filesystems are on the partitions), an empty
//! device (size 0: a card reader without a card, an unbacked loop device), and the kinds that
//! never hold a drive's filesystem or must not be spun up every report (`fd*` floppies, `sr*`
//! optical drives, `ram*`/`zram*` memory disks).

use std::path::{Path, PathBuf};

/// Where the kernel lists block devices.
pub const SYS_CLASS_BLOCK: &str = "/sys/class/block";

/// Name prefixes that are never probed (see the module docs).
const NEVER_PROBED: [&str; 4] = ["fd", "sr", "ram", "zram"];

/// A block device that may carry a drive's filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// The kernel's name (`sdb1`, `loop3`).
    pub name: String,
    /// `major:minor`, as `/proc/self/mountinfo` writes it.
    pub dev: String,
    /// The device node (`/dev/sdb1`).
    pub node: PathBuf,
    pub size_bytes: u64,
}

/// The candidates under `sys` (normally [`SYS_CLASS_BLOCK`]), sorted by name. An unreadable
/// directory is an empty list.
pub fn block_devices(sys: &Path) -> Vec<BlockDevice> {
    let Ok(entries) = std::fs::read_dir(sys) else {
        return Vec::new();
    };
    let mut out: Vec<BlockDevice> = entries
        .flatten()
        .filter_map(|e| candidate(&e.path(), e.file_name().to_str()?))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn candidate(dir: &Path, name: &str) -> Option<BlockDevice> {
    if NEVER_PROBED.iter().any(|p| name.starts_with(p)) {
        return None;
    }
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
    let dev = read("dev")?.trim().to_string();
    // 512-byte sectors, whatever the device's own block size.
    let size_bytes = read("size")?.trim().parse::<u64>().ok()? * 512;
    if size_bytes == 0 || held(dir) || has_partitions(dir, name) {
        return None;
    }
    if name.starts_with("loop") && !dir.join("loop").join("backing_file").exists() {
        return None;
    }
    let devname = read("uevent")
        .and_then(|uevent| devname_from_uevent(&uevent))
        .unwrap_or_else(|| name.to_string());
    Some(BlockDevice {
        name: name.to_string(),
        dev,
        node: Path::new("/dev").join(devname),
        size_bytes,
    })
}

/// Something (md, dm, bcache) is built on top of this device.
fn held(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("holders")).is_ok_and(|mut holders| holders.next().is_some())
}

/// A whole disk lists its partitions as subdirectories named after it that have a
/// `partition` file.
fn has_partitions(dir: &Path, name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name().to_str().is_some_and(|n| n.starts_with(name))
            && e.path().join("partition").exists()
    })
}

/// `DEVNAME=` of a sysfs `uevent` file; refuses a name that could leave `/dev`.
pub fn devname_from_uevent(uevent: &str) -> Option<String> {
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .filter(|name| !name.is_empty() && !name.contains(".."))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake `/sys/class/block` entry.
    fn device(sys: &Path, name: &str, dev: &str, sectors: u64) -> PathBuf {
        let dir = sys.join(name);
        std::fs::create_dir_all(dir.join("holders")).unwrap();
        std::fs::write(dir.join("dev"), format!("{dev}\n")).unwrap();
        std::fs::write(dir.join("size"), format!("{sectors}\n")).unwrap();
        std::fs::write(dir.join("uevent"), format!("MAJOR=8\nDEVNAME={name}\n")).unwrap();
        dir
    }

    #[test]
    fn candidates_follow_the_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let sys = tmp.path();
        // A disk with a partition: only the partition.
        let sda = device(sys, "sda", "8:0", 1000);
        let sda1 = device(&sda, "sda1", "8:1", 900);
        std::fs::write(sda1.join("partition"), "1\n").unwrap();
        std::os::unix::fs::symlink(&sda1, sys.join("sda1")).unwrap();
        // A whole disk without partitions counts.
        device(sys, "sdb", "8:16", 2000);
        // Held by an md array: no.
        let sdc = device(sys, "sdc", "8:32", 2000);
        std::fs::write(sdc.join("holders").join("md0"), "").unwrap();
        // Loop devices: only with a backing file.
        device(sys, "loop0", "7:0", 100);
        let loop1 = device(sys, "loop1", "7:1", 100);
        std::fs::create_dir(loop1.join("loop")).unwrap();
        std::fs::write(loop1.join("loop").join("backing_file"), "/x.img\n").unwrap();
        // Empty, or of a kind never probed.
        device(sys, "sdd", "8:48", 0);
        device(sys, "sr0", "11:0", 4000);
        device(sys, "zram0", "252:0", 4000);

        let found = block_devices(sys);
        let names: Vec<&str> = found.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["loop1", "sda1", "sdb"]);
        assert_eq!(found[1].dev, "8:1");
        assert_eq!(found[1].node, PathBuf::from("/dev/sda1"));
        assert_eq!(found[1].size_bytes, 900 * 512);
        assert!(block_devices(&sys.join("absent")).is_empty());
    }

    #[test]
    fn uevent_devname() {
        let uevent = "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n";
        assert_eq!(devname_from_uevent(uevent).as_deref(), Some("vda"));
        assert_eq!(devname_from_uevent("DEVNAME=../etc\n"), None);
        assert_eq!(devname_from_uevent("MAJOR=1\n"), None);
    }
}
