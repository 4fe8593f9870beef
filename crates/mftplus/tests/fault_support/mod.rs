//! The fault-injection suite's machinery (`tests/fault_injection.rs`, docs/fault-injection.md):
//! - `net`: two network namespaces (cloud, hub) and three veth links built for the run, with
//!   partitions by iptables or link state;
//! - `nfqueue`: delay and loss on the hub's uplink, done in user space on an NFQUEUE (the kernel
//!   of the machines this runs on is built without `sch_netem`: no `tc … netem`);
//! - `procs`: the `mftplus cloud` and `mftplus hub` binaries as real processes inside the
//!   namespaces (SIGSTOP, SIGKILL, restart, a skewed clock through libfaketime), and the hub's
//!   data folder on a small tmpfs that can be filled;
//! - `reporters`: many agents' host reports with a per-reporter sequence number, every answer
//!   written down;
//! - `faults`: the seeded schedule and the injection of each fault;
//! - `lab`: the whole set-up and its teardown (also on panic);
//! - `check`: what the cloud stored, read from its database, against what was acknowledged.

pub mod check;
pub mod faults;
pub mod lab;
pub mod net;
pub mod nfqueue;
pub mod procs;
pub mod reporters;

use std::path::PathBuf;
use std::process::Command;

/// xorshift64*: small, seeded, and the same on every machine, so a failing run replays.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// An independent generator for another part of the run.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next())
    }
}

/// What the environment asks for. `MFTPLUS_FAULT_SEED` replays a run; the long run
/// (scripts/fault-injection.sh) raises the others.
#[derive(Debug, Clone)]
pub struct Settings {
    pub seed: u64,
    /// `MFTPLUS_FAULT_RUNS` (default 1): runs, each on a fresh lab with its own seed.
    pub runs: u32,
    /// `MFTPLUS_FAULT_EPISODES` (default 0): random episodes per run besides one of each kind.
    pub extra_episodes: u32,
    /// `MFTPLUS_FAULT_REPORTERS` (default 12).
    pub reporters: usize,
    /// `MFTPLUS_TEST_REQUIRE_NETNS=1`: a missing prerequisite fails instead of skipping.
    pub required: bool,
}

impl Settings {
    pub fn from_env() -> Settings {
        let number = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse().ok());
        let seed = number("MFTPLUS_FAULT_SEED").unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            (nanos ^ u64::from(std::process::id()) << 32) % 1_000_000_000_000
        });
        Settings {
            seed,
            runs: number("MFTPLUS_FAULT_RUNS").map_or(1, |n: u64| n.max(1) as u32),
            extra_episodes: number("MFTPLUS_FAULT_EPISODES").map_or(0, |n: u64| n as u32),
            reporters: number("MFTPLUS_FAULT_REPORTERS")
                .map_or(12, |n: u64| n.clamp(2, 64) as usize),
            required: std::env::var("MFTPLUS_TEST_REQUIRE_NETNS").is_ok_and(|v| v == "1"),
        }
    }

    /// The seed of run `run`: the given seed for the first, derived ones after it. Each is
    /// printed, and `MFTPLUS_FAULT_SEED=<it>` (same `MFTPLUS_FAULT_EPISODES`) replays that run.
    pub fn run_seed(&self, run: u32) -> u64 {
        if run == 0 {
            return self.seed;
        }
        Rng::new(self.seed ^ u64::from(run).rotate_left(32)).next() % 1_000_000_000_000
    }
}

/// What the machine offers beyond the must-haves.
#[derive(Debug, Clone)]
pub struct Tools {
    /// libfaketime, for the clock-skew fault (Debian package `faketime`).
    pub faketime: Option<PathBuf>,
}

/// Root, `ip`, `iptables` and network namespaces; libfaketime when present. `Err` says what is
/// missing.
pub fn prerequisites() -> Result<Tools, String> {
    if !rustix::process::geteuid().is_root() {
        return Err("not running as root (network namespaces, iptables, mount)".into());
    }
    for tool in ["ip", "iptables", "mount", "umount"] {
        if let Err(err) = Command::new(tool).arg("-V").output() {
            return Err(format!(
                "`{tool}` cannot be run ({err}); not installed or not on PATH"
            ));
        }
    }
    net::probe()?;
    Ok(Tools {
        faketime: faketime_library(),
    })
}

fn faketime_library() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Runs a command to completion; its stdout, or what went wrong with its stderr.
pub fn run(args: &[&str]) -> Result<String, String> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("`{}`: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
