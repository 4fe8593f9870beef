//! Helpers for tests that run guests on the real Docker Engine of the machine (feature
//! `testing`).
//!
//! No registry is reachable from CI or from a developer's sandbox, so the guest image is built
//! here from nothing: a static C program that only waits for a signal, in a `FROM scratch`
//! image. It has to handle SIGTERM itself, because PID 1 in a container ignores signals that
//! have no handler, and `docker stop` would otherwise wait out its whole grace period.
//!
//! Tests skip (loudly) when Docker is missing, unless `MFTPLUS_TEST_REQUIRE_DOCKER=1` says that
//! a missing Docker is itself the failure, as in CI.

use rand::Rng;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The tag of the test guest image; the same content gives the same tag on every run, so
/// repeated runs reuse it instead of piling up images.
pub const GUEST_IMAGE: &str = "mftplus-test-guest:1";
/// Set on the test image so it can be found and removed: `docker images -f label=…`.
pub const TEST_LABEL: &str = "io.mftplus.test=1";
const REQUIRE_ENV: &str = "MFTPLUS_TEST_REQUIRE_DOCKER";

const SLEEPER_C: &str = r#"#include <signal.h>
#include <unistd.h>

/* PID 1 ignores signals without a handler: exit at once on SIGTERM/SIGINT. */
static void quit(int sig) { (void)sig; _exit(0); }

int main(void) {
    signal(SIGTERM, quit);
    signal(SIGINT, quit);
    for (;;) pause();
}
"#;

const DOCKERFILE: &str = "FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT [\"/sleeper\"]\n";

/// Whether the Docker Engine answers (`docker info`). Prints a skip banner when it does not;
/// panics instead when `MFTPLUS_TEST_REQUIRE_DOCKER=1`.
pub fn docker_available() -> bool {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    let probe = AVAILABLE.get_or_init(|| match docker(&["info"]) {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        Err(e) => Err(e),
    });
    match probe {
        Ok(()) => true,
        Err(why) if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") => {
            panic!("{REQUIRE_ENV}=1 but Docker is not usable: {why}")
        }
        Err(why) => {
            // Written to the stderr handle, not with `eprintln!`, which the test harness
            // captures: a skip must be seen even when the test "passes".
            let _ = writeln!(
                std::io::stderr(),
                "\n==================== SKIPPED: Docker is not usable ====================\n\
                 {why}\nset {REQUIRE_ENV}=1 to make this a failure\n\
                 ======================================================================\n"
            );
            false
        }
    }
}

/// Builds the test guest image once per process and returns its tag. Panics with the
/// compiler's or Docker's output when that fails: every caller needs the image.
pub fn guest_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            build_guest_image().unwrap_or_else(|e| panic!("building {GUEST_IMAGE}: {e}"))
        })
        .clone()
}

fn build_guest_image() -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!(
        "mftplus-test-guest-{}-{}",
        std::process::id(),
        unique_suffix()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = build_in(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|()| GUEST_IMAGE.to_string())
}

fn build_in(dir: &Path) -> Result<(), String> {
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))
    };
    write("sleeper.c", SLEEPER_C)?;
    write("Dockerfile", DOCKERFILE)?;
    let gcc = Command::new("gcc")
        .args(["-static", "-Os", "-o", "sleeper", "sleeper.c"])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("running gcc (a C compiler with static libc is needed): {e}"))?;
    check("gcc -static", &gcc)?;
    let dir_arg = dir.to_str().ok_or("temp dir is not UTF-8")?;
    let build = docker(&[
        "build",
        "-q",
        "--label",
        TEST_LABEL,
        "-t",
        GUEST_IMAGE,
        dir_arg,
    ])?;
    check("docker build", &build)
}

fn check(what: &str, out: &Output) -> Result<(), String> {
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Runs the `docker` CLI with `args`, capturing its output.
pub fn docker(args: &[&str]) -> Result<Output, String> {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running docker {}: {e}", args.join(" ")))
}

/// Eight random lowercase hex digits, for names that must not collide between test runs.
pub fn unique_suffix() -> String {
    format!("{:08x}", rand::thread_rng().gen::<u32>())
}

/// Removes the named containers when dropped, so a failing test leaves nothing behind.
#[derive(Debug, Default)]
pub struct ContainerCleanup {
    names: Vec<String>,
}

impl ContainerCleanup {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: impl Into<String>) {
        self.names.push(name.into());
    }
}

impl Drop for ContainerCleanup {
    fn drop(&mut self) {
        if self.names.is_empty() {
            return;
        }
        let mut args = vec!["rm", "-f"];
        args.extend(self.names.iter().map(String::as_str));
        // "No such container" for the ones the test removed itself is expected.
        let _ = docker(&args);
    }
}

const REQUIRE_BACKUP_ENV: &str = "MFTPLUS_TEST_REQUIRE_BACKUP";

/// Whether the backup tests can run here: `restic` installed, and root to mount the loop-device
/// filesystems they back up. Prints a skip banner when not; panics instead when
/// `MFTPLUS_TEST_REQUIRE_BACKUP=1` (CI).
pub fn backup_tools_available() -> bool {
    let restic = Command::new("restic")
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("restic: {e}"))
        .and_then(|out| check("restic version", &out));
    let root = if rustix::process::geteuid().is_root() {
        Ok(())
    } else {
        Err("not root: loop-device filesystems cannot be mounted".to_string())
    };
    match restic.and(root) {
        Ok(()) => true,
        Err(why) if std::env::var(REQUIRE_BACKUP_ENV).as_deref() == Ok("1") => {
            panic!("{REQUIRE_BACKUP_ENV}=1 but the backup tests cannot run: {why}")
        }
        Err(why) => {
            let _ = writeln!(
                std::io::stderr(),
                "\n==================== SKIPPED: backup tests ====================\n\
                 {why}\nset {REQUIRE_BACKUP_ENV}=1 to make this a failure\n"
            );
            false
        }
    }
}

/// An ext4 filesystem with a chosen UUID in an image file, mounted through a loop device: a
/// "drive" the agent's storage probe finds, without touching the machine's disks. Unmounted
/// (lazily, in case something still has it open) when dropped.
#[derive(Debug)]
pub struct LoopFs {
    pub mount_point: std::path::PathBuf,
    pub uuid: String,
}

impl LoopFs {
    /// Makes a `mib` MiB filesystem under `dir` and mounts it at `dir/mnt`.
    pub fn mount(dir: &Path, uuid: &str, mib: u64) -> Result<LoopFs, String> {
        let image = dir.join("drive.img");
        let mount_point = dir.join("mnt");
        std::fs::create_dir_all(&mount_point).map_err(|e| e.to_string())?;
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(mib << 20))
            .map_err(|e| format!("{}: {e}", image.display()))?;
        let image_arg = image.to_str().ok_or("image path is not UTF-8")?;
        let mount_arg = mount_point.to_str().ok_or("mount path is not UTF-8")?;
        let run = |tool: &str, args: &[&str]| {
            Command::new(tool)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("{tool}: {e}"))
                .and_then(|out| check(tool, &out))
        };
        run("mkfs.ext4", &["-F", "-q", "-U", uuid, image_arg])?;
        run("mount", &["-o", "loop", image_arg, mount_arg])?;
        Ok(LoopFs {
            mount_point,
            uuid: uuid.to_string(),
        })
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .stdin(Stdio::null())
            .output();
    }
}

/// Whether the storage-handshake tests can run here: root (to attach loop devices and mount
/// them) and the tools `losetup`, `truncate`, `mkfs.ext4` and `wipefs`. Prints a skip banner
/// when not; panics instead when `MFTPLUS_TEST_REQUIRE_BACKUP=1` (CI, which has root).
pub fn loop_devices_available() -> bool {
    let root = if rustix::process::geteuid().is_root() {
        Ok(())
    } else {
        Err("not root: loop devices cannot be attached or mounted".to_string())
    };
    let tools = [
        ("losetup", "--version"),
        ("truncate", "--version"),
        ("mkfs.ext4", "-V"),
        ("wipefs", "--version"),
    ];
    let found = tools.iter().try_for_each(|(tool, arg)| {
        Command::new(tool)
            .arg(arg)
            .stdin(Stdio::null())
            .output()
            .map(|_| ())
            .map_err(|e| format!("{tool}: {e}"))
    });
    match root.and(found) {
        Ok(()) => true,
        Err(why) if std::env::var(REQUIRE_BACKUP_ENV).as_deref() == Ok("1") => {
            panic!("{REQUIRE_BACKUP_ENV}=1 but the loop-device tests cannot run: {why}")
        }
        Err(why) => {
            let _ = writeln!(
                std::io::stderr(),
                "\n==================== SKIPPED: loop-device tests ====================\n\
                 {why}\nset {REQUIRE_BACKUP_ENV}=1 to make this a failure\n"
            );
            false
        }
    }
}

/// A drive plugged in and not mounted: an ext4 filesystem with a chosen UUID in an image file
/// (`truncate` + `mkfs.ext4 -U`), attached to a free loop device (`losetup --find --show`).
/// When dropped, whatever still mounts the device is unmounted (lazily) and the loop device
/// detached, so a failing test leaves nothing attached.
#[derive(Debug)]
pub struct LoopDrive {
    pub device: std::path::PathBuf,
    pub image: std::path::PathBuf,
    pub uuid: String,
}

impl LoopDrive {
    /// Makes a `mib` MiB drive in `dir/<uuid>.img`.
    pub fn attach(dir: &Path, uuid: &str, mib: u64) -> Result<LoopDrive, String> {
        let image = dir.join(format!("{uuid}.img"));
        let image_arg = image.to_str().ok_or("image path is not UTF-8")?.to_string();
        tool("truncate", &["-s", &format!("{mib}M"), &image_arg])?;
        tool("mkfs.ext4", &["-F", "-q", "-U", uuid, &image_arg])?;
        let out = tool("losetup", &["--find", "--show", &image_arg])?;
        let device = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !device.starts_with("/dev/") {
            return Err(format!("losetup printed {device:?}"));
        }
        Ok(LoopDrive {
            device: device.into(),
            image,
            uuid: uuid.to_string(),
        })
    }

    /// Where the device is mounted now, from `/proc/self/mountinfo`.
    pub fn mount_points(&self) -> Vec<std::path::PathBuf> {
        let Ok(dev) = std::fs::metadata(&self.device).map(|m| {
            use std::os::unix::fs::MetadataExt;
            let rdev = m.rdev();
            format!("{}:{}", rustix::fs::major(rdev), rustix::fs::minor(rdev))
        }) else {
            return Vec::new();
        };
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        crate::probe::storage::parse_mountinfo(&mountinfo)
            .into_iter()
            .filter(|e| e.device == dev)
            .map(|e| e.mount_point)
            .collect()
    }
}

impl Drop for LoopDrive {
    fn drop(&mut self) {
        for point in self.mount_points().iter().rev() {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(point)
                .stdin(Stdio::null())
                .output();
        }
        let _ = Command::new("losetup")
            .arg("-d")
            .arg(&self.device)
            .stdin(Stdio::null())
            .output();
    }
}

/// A fresh random UUID in the canonical lowercase form (version 4 bits set).
pub fn random_uuid() -> String {
    let mut bytes: [u8; 16] = rand::thread_rng().gen();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn tool(name: &str, args: &[&str]) -> Result<Output, String> {
    let out = Command::new(name)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{name}: {e}"))?;
    check(name, &out)?;
    Ok(out)
}
