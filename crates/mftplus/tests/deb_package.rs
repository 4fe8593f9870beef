//! The Debian packages (docs/packages.md, decision 0020). `packaging/build-deb.sh` builds
//! `mftplus`, `mftctl` and `mftplus-agent` once from the binaries cargo built for this run, then:
//!
//! - `the_packages_hold_what_they_promise` reads them back with `dpkg-deb`: fields, files and
//!   modes, conffiles, maintainer scripts that create the user and enable nothing, completions,
//!   man pages;
//! - `installed_in_a_booted_debian_the_services_start` runs `packaging/test-deb.sh`: a minimal
//!   Debian of this host's release made here with debootstrap (cached in
//!   `target/debootstrap-cache/`), booted with systemd as PID 1 in Docker without network,
//!   where the packages are installed and the cloud, the hub and the agent started through
//!   their units, then upgraded, removed and purged (`packaging/test-deb-inside.sh`).
//!
//! `mftctl` and `mftplus-agent` are other packages' binaries: they are taken from the target
//! directory of this test's `mftplus`, where `cargo test --workspace` builds them (alone:
//! `cargo build -p mftctl -p mftplus-agent` first). Missing tools (dpkg-deb; root, debootstrap
//! and a Docker Engine for the second test) skip loudly, unless
//! `MFTPLUS_TEST_REQUIRE_PACKAGES=1`, which turns the skip into a failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const REQUIRE: &str = "MFTPLUS_TEST_REQUIRE_PACKAGES";
/// The first run downloads a minimal Debian (about a minute here); later runs take ~30 s.
const INSTALL_TEST_LIMIT: Duration = Duration::from_secs(600);

fn skip(why: &str) {
    assert!(
        std::env::var(REQUIRE).as_deref() != Ok("1"),
        "{REQUIRE}=1 but {why}"
    );
    eprintln!("\n!!!!! SKIPPED: {why}; the packages are NOT tested !!!!!\n");
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `target/debug` (or the profile's directory) holding this run's binaries.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_mftplus"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

struct Debs {
    dir: PathBuf,
}

impl Debs {
    fn path(&self, package: &str) -> PathBuf {
        let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
        let arch = run(Command::new("dpkg").arg("--print-architecture"));
        self.dir
            .join(format!("{package}_{version}_{}.deb", arch.trim()))
    }

    fn field(&self, package: &str, field: &str) -> String {
        let deb = self.path(package);
        run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(field))
            .trim()
            .to_string()
    }

    fn control_file(&self, package: &str, name: &str) -> String {
        run(Command::new("dpkg-deb")
            .arg("-I")
            .arg(self.path(package))
            .arg(name))
    }

    /// `path -> "mode owner/group"` of every entry, as `dpkg-deb -c` lists them.
    fn contents(&self, package: &str) -> Vec<(String, String)> {
        run(Command::new("dpkg-deb").arg("-c").arg(self.path(package)))
            .lines()
            .map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                let path = cols[5].trim_start_matches('.').to_string();
                (path, format!("{} {}", cols[0], cols[1]))
            })
            .collect()
    }
}

/// Builds the packages once per test run; `None` (the reason printed) when this machine cannot.
fn debs() -> Option<&'static Debs> {
    static DEBS: OnceLock<Result<Debs, String>> = OnceLock::new();
    match DEBS.get_or_init(build) {
        Ok(debs) => Some(debs),
        Err(why) => {
            skip(why);
            None
        }
    }
}

fn build() -> Result<Debs, String> {
    for tool in ["dpkg-deb", "dpkg", "strip"] {
        if !have(tool) {
            return Err(format!("no {tool}"));
        }
    }
    let bins = bin_dir();
    for bin in ["mftctl", "mftplus-agent"] {
        if !bins.join(bin).is_file() {
            return Err(format!(
                "no {} (cargo build -p {bin}, or cargo test --workspace)",
                bins.join(bin).display()
            ));
        }
    }
    let dir = bins.parent().unwrap().join("deb-test/debs");
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    run(Command::new(repo().join("packaging/build-deb.sh"))
        .arg("--bin-dir")
        .arg(&bins)
        .arg("--out")
        .arg(&dir)
        .args(["--compress", "gzip"]));
    eprintln!("packages built in {:.0?}", started.elapsed());
    Ok(Debs { dir })
}

fn entry<'a>(contents: &'a [(String, String)], path: &str) -> &'a str {
    contents
        .iter()
        .find(|(p, _)| p == path)
        .map(|(_, meta)| meta.as_str())
        .unwrap_or_else(|| panic!("{path} is not in the package"))
}

#[test]
fn the_packages_hold_what_they_promise() {
    let Some(debs) = debs() else { return };
    let arch = run(Command::new("dpkg").arg("--print-architecture"));
    for package in ["mftplus", "mftctl", "mftplus-agent"] {
        assert_eq!(debs.field(package, "Architecture"), arch.trim());
        let depends = debs.field(package, "Depends");
        assert!(depends.contains("libc6 (>= "), "{package}: {depends}");
    }
    assert!(debs.field("mftplus", "Depends").contains("adduser"));

    let server = debs.contents("mftplus");
    assert_eq!(entry(&server, "/usr/bin/mftplus"), "-rwxr-xr-x root/root");
    for unit in ["mftplus-cloud", "mftplus-hub"] {
        let path = format!("/usr/lib/systemd/system/{unit}.service");
        assert_eq!(entry(&server, &path), "-rw-r--r-- root/root");
    }
    assert_eq!(
        entry(&server, "/etc/mftplus/cloud.env"),
        "-rw------- root/root"
    );
    assert_eq!(
        entry(&server, "/etc/mftplus/hub.env"),
        "-rw------- root/root"
    );
    entry(&server, "/etc/mftplus/server.yaml");
    entry(&server, "/var/lib/mftplus/");
    entry(&server, "/usr/share/man/man1/mftplus.1.gz");
    assert!(
        !server.iter().any(|(p, _)| p.starts_with("/etc/systemd")),
        "the package enables a unit"
    );
    let conffiles = debs.control_file("mftplus", "conffiles");
    for file in ["server.yaml", "cloud.env", "hub.env"] {
        assert!(conffiles.contains(&format!("/etc/mftplus/{file}\n")));
    }
    let postinst = debs.control_file("mftplus", "postinst");
    assert!(postinst.contains("adduser --quiet --system"));
    assert!(postinst.contains("--shell /usr/sbin/nologin"));
    let scripts = postinst + &debs.control_file("mftplus", "postrm");
    for never in ["systemctl enable", "systemctl start", "deluser", "rm -r"] {
        assert!(!scripts.contains(never), "a maintainer script runs {never}");
    }

    let cli = debs.contents("mftctl");
    for path in [
        "/usr/bin/mftctl",
        "/usr/share/bash-completion/completions/mftctl",
        "/usr/share/zsh/vendor-completions/_mftctl",
        "/usr/share/fish/vendor_completions.d/mftctl.fish",
        "/usr/share/man/man1/mftctl.1.gz",
        "/usr/share/man/man1/mftctl-send.1.gz",
    ] {
        entry(&cli, path);
    }
    let pages = cli.iter().filter(|(p, _)| p.ends_with(".1.gz")).count();
    assert!(pages > 50, "only {pages} man pages");

    let agent = debs.contents("mftplus-agent");
    entry(&agent, "/usr/bin/mftplus-agent");
    entry(&agent, "/usr/lib/systemd/system/mftplus-agent.service");
}

/// Why the install test cannot run here, if it cannot.
fn install_test_missing() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not root (debootstrap and the container need it)".into());
    }
    if !have("debootstrap") {
        return Some("no debootstrap (apt-get install debootstrap)".into());
    }
    let docker = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !docker.is_ok_and(|s| s.success()) {
        return Some("`docker info` fails: no Docker Engine".into());
    }
    None
}

#[test]
fn installed_in_a_booted_debian_the_services_start() {
    if let Some(why) = install_test_missing() {
        return skip(&why);
    }
    let Some(debs) = debs() else { return };
    let started = Instant::now();
    let (status, output) = run_bounded(
        Command::new(repo().join("packaging/test-deb.sh"))
            .arg("--debs")
            .arg(&debs.dir),
        INSTALL_TEST_LIMIT,
    );
    eprintln!("install test took {:.0?}", started.elapsed());
    assert!(status, "packaging/test-deb.sh failed (its output is above)");
    for check in [
        "PASS: dpkg -i installs the packages",
        "PASS: /var/lib/mftplus",
        "PASS: mftplus-cloud is not enabled",
        "PASS: man mftctl",
        "PASS: systemctl start mftplus-cloud: /api/v1/health answers 200",
        "PASS: the hub registered with the cloud through its key file",
        "PASS: the agent's host reports to the cloud",
        "PASS: dpkg -r keeps /var/lib/mftplus",
        "PASS: dpkg -P removes the configuration and keeps the data",
        "deb-test: all ",
    ] {
        assert!(output.contains(check), "no `{check}` in the output");
    }
}

/// Runs the script in its own process group, echoing its output, and stops the whole group
/// (the script's trap then removes its container) when it outlives `limit`.
fn run_bounded(command: &mut Command, limit: Duration) -> (bool, String) {
    use std::os::unix::process::CommandExt;
    let mut child = command
        .process_group(0)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("{line}");
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.success();
        }
        if Instant::now() > deadline {
            let group = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::TERM);
            let _ = child.wait();
            panic!("packaging/test-deb.sh took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    (status, reader.join().unwrap())
}
