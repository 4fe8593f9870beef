//! The box's drives as storage targets, identified by filesystem UUID: the block-device
//! filesystems mounted anywhere, and those attached but mounted nowhere (issue 18's storage
//! handshake: the customer plugs a drive in, the agent reports it, the operator gives it a
//! policy, the agent mounts it; `crate::storage`).
//!
//! Why the UUID: device names (`/dev/sdb`) change with cabling and boot order, and a mount
//! point is only where something is mounted today; the operator's storage policies and backup
//! history must follow the drive, and its filesystem UUID survives both.
//!
//! Where it comes from: for a mounted filesystem udev's `/dev/disk/by-uuid` links when the box
//! has udev; otherwise (a container, a minimal VM like this project's CI) the UUID is read from
//! the filesystem's own superblock, for ext2/3/4 and XFS. An unmounted device counts only by
//! its superblock (ext2/3/4 and XFS, the filesystems the agent can mount for a policy): udev
//! also names swap areas and encrypted containers by UUID, which are no drives to mount. A
//! filesystem whose UUID cannot be found this way is left out (logged at debug) rather than
//! reported under an id that would not be durable.

use super::block::{block_devices, devname_from_uevent, SYS_CLASS_BLOCK};
use super::system::disk_usage;
use mftplus_types::fleet::StorageTarget;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A filesystem with more than this in use counts as data-bearing. An empty ext4 uses only a
/// few blocks for its root directory and `lost+found`, so a new drive reads as empty, while
/// almost any real data crosses the line. The rule errs towards "data-bearing" (XFS's metadata
/// reservations alone can cross it), because calling a drive with data "empty" is the
/// dangerous mistake and calling an empty drive "data-bearing" is merely cautious.
pub const DATA_BEARING_MIN_USED_BYTES: u64 = 1 << 20;

/// How far into a device the superblocks the driver understands reach.
const SUPERBLOCK_PROBE_BYTES: u64 = 4096;
const EXT_SUPERBLOCK: usize = 1024;
const EXT_MAGIC_OFFSET: usize = 0x38;
const EXT_MAGIC: [u8; 2] = [0x53, 0xEF];
const EXT_UUID_OFFSET: usize = 0x68;
const XFS_MAGIC: &[u8; 4] = b"XFSB";
const XFS_UUID_OFFSET: usize = 32;

/// One line of `/proc/self/mountinfo`, the fields this module needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// `major:minor` of the device.
    pub device: String,
    /// The directory of the filesystem that is mounted here (`/` unless a bind mount).
    pub root: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
}

/// What the agent read in a filesystem's superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// ext2, ext3 or ext4 (one superblock format; the kernel's ext4 driver mounts all three).
    Ext,
    Xfs,
}

impl FsKind {
    /// The type `mount(2)` is given.
    pub fn mount_type(self) -> &'static str {
        match self {
            FsKind::Ext => "ext4",
            FsKind::Xfs => "xfs",
        }
    }

    fn from_mount_type(fs_type: &str) -> Option<FsKind> {
        match fs_type {
            "ext2" | "ext3" | "ext4" => Some(FsKind::Ext),
            "xfs" => Some(FsKind::Xfs),
            _ => None,
        }
    }
}

/// One drive of this box: a filesystem with a durable id, mounted or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drive {
    pub durable_id: String,
    /// The device node it is on (`/dev/sdb1`).
    pub device: PathBuf,
    /// `major:minor` of the device.
    pub dev: String,
    pub fs: Option<FsKind>,
    /// Where it is mounted, the one that names it best first; empty when it is not mounted.
    pub mount_points: Vec<PathBuf>,
    /// The device's size, for a drive that is not mounted (a mounted one reports its
    /// filesystem's).
    pub size_bytes: Option<u64>,
}

impl Drive {
    pub fn is_mounted(&self) -> bool {
        !self.mount_points.is_empty()
    }
}

/// The storage targets of this box: every [`drives`] entry.
pub fn storage_targets() -> Vec<StorageTarget> {
    drives().iter().map(target_of).collect()
}

/// The drives of this box: the block-device filesystems mounted anywhere
/// (`/proc/self/mountinfo`), then those of `/sys/class/block` not mounted anywhere whose
/// superblock carries a UUID this agent reads. One entry per UUID; a mounted filesystem wins
/// over an unmounted device with the same UUID (a clone of it). Empty when
/// `/proc/self/mountinfo` cannot be read: without it "unmounted" cannot be told.
pub fn drives() -> Vec<Drive> {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        tracing::debug!("cannot read /proc/self/mountinfo; no storage targets");
        return Vec::new();
    };
    let entries = parse_mountinfo(&mountinfo);
    let mut drives = mounted_drives(&entries);
    let mounted: HashSet<&str> = entries.iter().map(|e| e.device.as_str()).collect();
    let mut seen: HashSet<String> = drives.iter().map(|d| d.durable_id.clone()).collect();
    for device in block_devices(Path::new(SYS_CLASS_BLOCK)) {
        if mounted.contains(device.dev.as_str()) {
            continue;
        }
        let Ok(Some((uuid, fs))) = read_fs_identity(&device.node) else {
            continue;
        };
        if seen.insert(uuid.clone()) {
            drives.push(Drive {
                durable_id: uuid,
                device: device.node,
                dev: device.dev,
                fs: Some(fs),
                mount_points: Vec::new(),
                size_bytes: Some(device.size_bytes),
            });
        }
    }
    drives
}

/// The mounted block-device filesystems, one per UUID (bind mounts of the same one share it).
fn mounted_drives(entries: &[MountEntry]) -> Vec<Drive> {
    let links = uuid_links(Path::new("/dev/disk/by-uuid"));
    let mut uuid_of_device: HashMap<String, Option<String>> = HashMap::new();
    let mut by_uuid: BTreeMap<String, Vec<&MountEntry>> = BTreeMap::new();
    for entry in entries {
        if !entry.source.starts_with("/dev/") {
            continue;
        }
        let uuid = uuid_of_device
            .entry(entry.device.clone())
            .or_insert_with(|| discover_uuid(entry, &links))
            .clone();
        if let Some(uuid) = uuid {
            by_uuid.entry(uuid).or_default().push(entry);
        }
    }
    by_uuid
        .into_iter()
        .map(|(uuid, mut mounts)| {
            mounts.sort_by_key(|e| preference(e));
            let best = mounts[0];
            Drive {
                durable_id: uuid,
                device: device_path(best),
                dev: best.device.clone(),
                fs: FsKind::from_mount_type(&best.fs_type),
                mount_points: mounts.iter().map(|e| e.mount_point.clone()).collect(),
                size_bytes: None,
            }
        })
        .collect()
}

/// The whole filesystem mounted (`root` = `/`) names a target better than a bind mount of a
/// directory inside it, and a shorter mount point better than a longer one.
fn preference(e: &MountEntry) -> (bool, usize) {
    (e.root != "/", e.mount_point.as_os_str().len())
}

#[cfg(test)]
fn preferred(candidate: &MountEntry, current: &MountEntry) -> bool {
    preference(candidate) < preference(current)
}

/// The report's view of a drive. A drive that is not mounted is attached but not reachable,
/// labelled with its device, and counted as data-bearing: what it holds cannot be seen without
/// mounting it, and calling a drive with data "empty" is the dangerous mistake.
pub fn target_of(drive: &Drive) -> StorageTarget {
    match drive.mount_points.first() {
        Some(mount_point) => target(drive.durable_id.clone(), mount_point),
        None => StorageTarget {
            durable_id: drive.durable_id.clone(),
            label: Some(drive.device.display().to_string()),
            attached: true,
            reachable: false,
            data_bearing: true,
            size_bytes: drive.size_bytes,
            used_bytes: None,
            last_backup: None,
            last_restore_test: None,
        },
    }
}

fn target(durable_id: String, mount_point: &Path) -> StorageTarget {
    let usage = disk_usage(mount_point);
    StorageTarget {
        durable_id,
        label: Some(mount_point.display().to_string()),
        attached: true,
        reachable: usage.is_some(),
        data_bearing: usage.is_some_and(|(used, _)| used > DATA_BEARING_MIN_USED_BYTES),
        size_bytes: usage.map(|(_, total)| total),
        used_bytes: usage.map(|(used, _)| used),
        last_backup: None,
        last_restore_test: None,
    }
}

fn discover_uuid(entry: &MountEntry, links: &HashMap<PathBuf, String>) -> Option<String> {
    let device = device_path(entry);
    let canonical = std::fs::canonicalize(&device).unwrap_or_else(|_| device.clone());
    if let Some(uuid) = links.get(&canonical) {
        return Some(uuid.clone());
    }
    match read_fs_uuid(&device) {
        Ok(Some(uuid)) => Some(uuid),
        Ok(None) => {
            tracing::debug!(device = %device.display(), fs = %entry.fs_type,
                "no filesystem UUID this agent can read; not reported as a storage target");
            None
        }
        Err(e) => {
            tracing::debug!(device = %device.display(), error = %e,
                "cannot read the superblock; not reported as a storage target");
            None
        }
    }
}

/// The device node of a mount. The source as mounted may not exist in this mount namespace
/// (`/dev/root`, or a container's private `/dev`); the kernel's own name from sysfs does.
fn device_path(entry: &MountEntry) -> PathBuf {
    let source = PathBuf::from(&entry.source);
    if source.exists() {
        return source;
    }
    std::fs::read_to_string(format!("/sys/dev/block/{}/uevent", entry.device))
        .ok()
        .and_then(|uevent| devname_from_uevent(&uevent))
        .map(|name| Path::new("/dev").join(name))
        .unwrap_or(source)
}

/// udev's `/dev/disk/by-uuid` as a map from the device each link resolves to, to the UUID.
/// An absent directory (no udev) is an empty map.
pub fn uuid_links(dir: &Path) -> HashMap<PathBuf, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let uuid = e.file_name().to_str()?.to_ascii_lowercase();
            let device = std::fs::canonicalize(e.path()).ok()?;
            Some((device, uuid))
        })
        .collect()
}

/// The UUID of the ext2/3/4 or XFS filesystem on `path` (a device or an image file), in the
/// canonical lowercase 8-4-4-4-12 form. `Ok(None)` for any other content, or an all-zero UUID.
pub fn read_fs_uuid(path: &Path) -> std::io::Result<Option<String>> {
    Ok(read_fs_identity(path)?.map(|(uuid, _)| uuid))
}

/// [`read_fs_uuid`] with the kind of filesystem whose superblock it is.
pub fn read_fs_identity(path: &Path) -> std::io::Result<Option<(String, FsKind)>> {
    let mut head = Vec::with_capacity(SUPERBLOCK_PROBE_BYTES as usize);
    std::fs::File::open(path)?
        .take(SUPERBLOCK_PROBE_BYTES)
        .read_to_end(&mut head)?;
    Ok(identity_from_superblock(&head))
}

/// The pure half of [`read_fs_uuid`]: the UUID from the first bytes of a filesystem.
pub fn uuid_from_superblock(head: &[u8]) -> Option<String> {
    identity_from_superblock(head).map(|(uuid, _)| uuid)
}

fn identity_from_superblock(head: &[u8]) -> Option<(String, FsKind)> {
    let at = |offset: usize, len: usize| head.get(offset..offset + len);
    let (raw, kind) = if at(0, 4) == Some(XFS_MAGIC.as_slice()) {
        (at(XFS_UUID_OFFSET, 16)?, FsKind::Xfs)
    } else if at(EXT_SUPERBLOCK + EXT_MAGIC_OFFSET, 2) == Some(EXT_MAGIC.as_slice()) {
        (at(EXT_SUPERBLOCK + EXT_UUID_OFFSET, 16)?, FsKind::Ext)
    } else {
        return None;
    };
    if raw.iter().all(|b| *b == 0) {
        return None;
    }
    let hex = hex::encode(raw);
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    Some((uuid, kind))
}

/// Parses `/proc/self/mountinfo` (proc(5)): `id parent major:minor root mount-point options
/// [optional fields…] - fstype source super-options`. Malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    let separator = fields.iter().position(|f| *f == "-")?;
    if separator < 6 {
        return None;
    }
    let fs_type = fields.get(separator + 1)?;
    let source = fields.get(separator + 2)?;
    Some(MountEntry {
        device: fields[2].to_string(),
        root: unescape(fields[3]),
        mount_point: PathBuf::from(unescape(fields[4])),
        fs_type: unescape(fs_type),
        source: unescape(source),
    })
}

/// The kernel writes space, tab, newline and backslash in paths as `\ooo` octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| {
            bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334792k,mode=755
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
45 27 254:0 /var/lib/docker /var/lib/docker rw,relatime shared:1 master:2 - ext4 /dev/vda rw
46 27 8:17 / /mnt/backup\\040drive rw,noatime shared:7 - xfs /dev/sdb1 rw,attr2
garbage line
47 27 8:18 / /x rw -
";

    #[test]
    fn mountinfo_lines() {
        let entries = parse_mountinfo(MOUNTINFO);
        assert_eq!(entries.len(), 5);
        assert_eq!(
            entries[2],
            MountEntry {
                device: "254:0".into(),
                root: "/".into(),
                mount_point: "/".into(),
                fs_type: "ext4".into(),
                source: "/dev/vda".into(),
            }
        );
        assert_eq!(entries[3].root, "/var/lib/docker");
        assert_eq!(entries[3].source, "/dev/vda");
        assert_eq!(entries[4].mount_point, PathBuf::from("/mnt/backup drive"));
        assert_eq!(entries[4].fs_type, "xfs");
        assert_eq!(entries[4].device, "8:17");
        assert_eq!(entries[0].source, "proc");
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(r"/a\040b\011c\134d\012"), "/a b\tc\\d\n");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"\99x\4"), r"\99x\4");
    }

    #[test]
    fn bind_mounts_lose_to_the_whole_filesystem() {
        let entries = parse_mountinfo(MOUNTINFO);
        let (root, bind) = (&entries[2], &entries[3]);
        assert!(preferred(root, bind));
        assert!(!preferred(bind, root));
    }

    #[test]
    fn superblocks() {
        let mut ext = vec![0u8; 2048];
        ext[1024 + 0x38..1024 + 0x3a].copy_from_slice(&[0x53, 0xEF]);
        let uuid: Vec<u8> = (0x10..0x20).collect();
        ext[1024 + 0x68..1024 + 0x78].copy_from_slice(&uuid);
        assert_eq!(
            uuid_from_superblock(&ext).as_deref(),
            Some("10111213-1415-1617-1819-1a1b1c1d1e1f")
        );
        let mut xfs = vec![0u8; 512];
        xfs[..4].copy_from_slice(b"XFSB");
        xfs[32..48].copy_from_slice(&[0xAB; 16]);
        assert_eq!(
            uuid_from_superblock(&xfs).as_deref(),
            Some("abababab-abab-abab-abab-abababababab")
        );
        let zero_uuid = {
            let mut z = ext.clone();
            z[1024 + 0x68..1024 + 0x78].fill(0);
            z
        };
        assert_eq!(uuid_from_superblock(&zero_uuid), None);
        assert_eq!(uuid_from_superblock(&ext[..1100]), None);
        assert_eq!(uuid_from_superblock(&[0u8; 4096]), None);
        assert_eq!(uuid_from_superblock(&[]), None);
    }

    #[test]
    fn by_uuid_links() {
        let dir = tempfile::tempdir().unwrap();
        let device = dir.path().join("sdz1");
        std::fs::write(&device, b"").unwrap();
        let links = dir.path().join("by-uuid");
        std::fs::create_dir(&links).unwrap();
        let uuid = "0A1B2C3D-0000-4000-8000-000000000001";
        std::os::unix::fs::symlink("../sdz1", links.join(uuid)).unwrap();
        std::os::unix::fs::symlink("../gone", links.join("dangling")).unwrap();
        let map = uuid_links(&links);
        assert_eq!(map.len(), 1);
        assert_eq!(
            map.get(&std::fs::canonicalize(&device).unwrap())
                .map(String::as_str),
            Some(uuid.to_ascii_lowercase().as_str())
        );
        assert!(uuid_links(&dir.path().join("absent")).is_empty());
    }

    #[test]
    fn target_fields() {
        let t = target("u-1".into(), Path::new("/"));
        assert!(t.attached && t.reachable);
        assert_eq!(t.label.as_deref(), Some("/"));
        assert!(t.size_bytes.unwrap() >= t.used_bytes.unwrap());
        let gone = target("u-2".into(), Path::new("/no/such/mount"));
        assert!(gone.attached && !gone.reachable && !gone.data_bearing);
        assert_eq!((gone.size_bytes, gone.used_bytes), (None, None));
    }

    #[test]
    fn an_unmounted_drive_is_attached_unreachable_and_counted_as_data_bearing() {
        let drive = Drive {
            durable_id: "u-3".into(),
            device: "/dev/sdz1".into(),
            dev: "8:1".into(),
            fs: Some(FsKind::Ext),
            mount_points: Vec::new(),
            size_bytes: Some(1 << 30),
        };
        let t = target_of(&drive);
        assert!(t.attached && !t.reachable && t.data_bearing);
        assert_eq!(t.label.as_deref(), Some("/dev/sdz1"));
        assert_eq!((t.size_bytes, t.used_bytes), (Some(1 << 30), None));
        let mounted = Drive {
            mount_points: vec!["/".into(), "/var/lib/docker".into()],
            ..drive
        };
        let t = target_of(&mounted);
        assert!(t.reachable);
        assert_eq!(t.label.as_deref(), Some("/"));
    }

    #[test]
    fn superblock_kinds() {
        let mut ext = vec![0u8; 2048];
        ext[1024 + 0x38..1024 + 0x3a].copy_from_slice(&[0x53, 0xEF]);
        ext[1024 + 0x68..1024 + 0x78].fill(7);
        assert_eq!(identity_from_superblock(&ext).unwrap().1, FsKind::Ext);
        let mut xfs = vec![0u8; 512];
        xfs[..4].copy_from_slice(b"XFSB");
        xfs[32..48].fill(9);
        assert_eq!(identity_from_superblock(&xfs).unwrap().1, FsKind::Xfs);
        assert_eq!(FsKind::from_mount_type("ext3"), Some(FsKind::Ext));
        assert_eq!(FsKind::from_mount_type("vfat"), None);
        assert_eq!(FsKind::Xfs.mount_type(), "xfs");
    }
}
