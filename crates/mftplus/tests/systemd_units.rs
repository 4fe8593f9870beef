//! The shipped systemd units (the cloud, the edge hub, the agent) are valid and hardened:
//! `systemd-analyze verify` accepts them, they carry the directives SPEC §6 names, and
//! `systemd-analyze security` rates each one's exposure low. Skipped loudly where
//! systemd-analyze is missing. That they really start, as packaged, is `deb_package.rs`.

use std::path::PathBuf;
use std::process::Command;

fn unit(name: &str) -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging/systemd")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

/// A copy whose binary exists here, since verify checks `ExecStart`.
fn runnable_copy(dir: &std::path::Path, name: &str) -> PathBuf {
    let (_, text) = unit(name);
    let copy = dir.join(name);
    let text = text
        .replace("/usr/bin/mftplus-agent", "/bin/true")
        .replace("/usr/bin/mftplus", "/bin/true");
    std::fs::write(&copy, text).unwrap();
    copy
}

fn analyze(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("systemd-analyze").args(args).output() {
        Ok(out) => Some(out),
        Err(_) => {
            eprintln!("\n!!!!! SKIPPED: no systemd-analyze, the units are NOT verified !!!!!\n");
            None
        }
    }
}

#[test]
fn the_agent_unit_is_notify_with_a_watchdog_and_only_its_state_writable() {
    let (_, text) = unit("mftplus-agent.service");
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/mftplus-agent",
        "KillSignal=SIGTERM",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "missing {line}");
    }
    let (_, cloud) = unit("mftplus-cloud.service");
    for line in [
        "User=mftplus",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(
            cloud.lines().any(|l| l.starts_with(line)),
            "cloud unit: missing {line}"
        );
    }
}

const UNITS: [&str; 3] = [
    "mftplus-agent.service",
    "mftplus-cloud.service",
    "mftplus-hub.service",
];

#[test]
fn the_hub_unit_runs_as_mftplus_from_its_env_file_with_only_its_data_writable() {
    let (_, hub) = unit("mftplus-hub.service");
    for line in [
        "User=mftplus",
        "Group=mftplus",
        "ExecStart=/usr/bin/mftplus hub",
        // Secrets as files (HUB_REGISTRATION_KEY_FILE), named in the root-only env file.
        "EnvironmentFile=/etc/mftplus/hub.env",
        "Environment=HUB_DATA_DIR=/var/lib/mftplus/hub",
        "StateDirectory=mftplus/hub",
        "ReadWritePaths=/var/lib/mftplus/hub",
        "KillSignal=SIGTERM",
    ] {
        assert!(hub.lines().any(|l| l == line), "hub unit: missing {line}");
    }
    let (_, cloud) = unit("mftplus-cloud.service");
    // The same hardening, line for line, as the cloud's.
    let hardening = |text: &str| -> Vec<String> {
        let start = text.find("NoNewPrivileges=").unwrap();
        let end = text.find("ReadWritePaths=").unwrap();
        text[start..end].lines().map(str::to_string).collect()
    };
    assert_eq!(hardening(&hub), hardening(&cloud));
}

#[test]
fn systemd_accepts_the_units_and_rates_them_hardened() {
    let dir = tempfile::tempdir().unwrap();
    for name in UNITS {
        let copy = runnable_copy(dir.path(), name);
        let Some(out) = analyze(&["verify", copy.to_str().unwrap()]) else {
            return;
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{name}: {stderr}"
        );
        let Some(out) = analyze(&["security", "--offline=true", copy.to_str().unwrap()]) else {
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let score: f64 = text
            .lines()
            .find_map(|l| l.split(&format!("exposure level for {name}: ")).nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no exposure level in {text}"));
        assert!(score <= 3.0, "{name}: exposure {score} (OK is below 3.0)");
    }
}
