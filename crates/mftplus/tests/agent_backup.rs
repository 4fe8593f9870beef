//! The agent's backups against real parts: restic from Debian, an ext4 "drive" on a loop
//! device, the real cloud; the binaries for enrollment, `backup init` and the restore; Docker
//! for the disaster-recovery drill's guests.
//!
//! The deadline test runs the agent's report cycle and backup worker in this process, on the
//! cloud's own test clock, so 27 hours pass in a moment for both sides alike.

mod agent_support;

use agent_support::*;
use mftplus_agent::backup::Backups;
use mftplus_agent::driver::NullDriver;
use mftplus_agent::state_backup::RunKind;
use mftplus_agent::testing::{backup_tools_available, LoopFs};
use mftplus_agent::{Agent, AgentConfig};
use mftplus_cloud::clock::SharedClock;
use mftplus_cloud::fleet::checker;
use mftplus_types::fleet::{
    BackupSchedule, DesiredState, GuestDesired, PutDesiredState, StoragePolicy,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use tokio::sync::watch;

pub const RECOVERY_CODE: &str = "szilva-korte-alma-barack-meggy";

/// A fresh filesystem UUID for each test run (the probe reports every mounted one).
fn fresh_uuid() -> String {
    let hex = mftplus_agent::testing::unique_suffix();
    format!("{hex}-0000-4000-8000-{}", &format!("{hex}{hex}")[..12])
}

/// An agent config with backups to `repo` and guests' data under `guests`.
fn write_config(dir: &Path, server: &str, driver: &str, repo: &Path, guests: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  url: {server}\n  timeout: 10s\nstate_dir: {}\ndriver: {driver}\n\
             poll:\n  min_interval: 1s\nbackoff:\n  initial: 1s\n  max: 2s\nauth_grace: 5s\n\
             guests_dir: {}\nbackup:\n  repository: {}\n  check_interval: 1s\n  retry_after: 5s\n",
            dir.join("state").display(),
            guests.display(),
            repo.display()
        ),
    )
    .unwrap();
    config
}

fn private_file(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// `mftplus agent ARGS --config CONFIG`; the output, panicking with it on failure when `ok`.
fn agent_cli(config: &Path, args: &[&str], ok: bool) -> std::process::Output {
    let out = Command::new(BIN)
        .arg("agent")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    if ok {
        assert!(
            out.status.success(),
            "mftplus agent {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn enroll(config: &Path, dir: &Path, extra: &[&str]) -> std::process::Output {
    let password = private_file(&dir.join("password"), PASSWORD);
    let mut args = vec![
        "enroll",
        "--customer",
        "kovacs",
        "--password-file",
        &password,
    ];
    args.extend_from_slice(extra);
    agent_cli(config, &args, false)
}

fn desired(uuid: &str, schedule: BackupSchedule, guests: &[(&str, &str)]) -> PutDesiredState {
    let mut state = DesiredState::default();
    state.storage.insert(
        uuid.to_string(),
        StoragePolicy {
            role: "bulk".into(),
            class: "slow".into(),
            backup: schedule,
            wipe: false,
            extra: Default::default(),
        },
    );
    for (id, image) in guests {
        let spec = serde_json::json!({"kind": "container", "image": image, "cpu_cores": 1, "memory_mb": 64, "disk_gb": 1});
        state.guests.insert(
            id.to_string(),
            GuestDesired {
                spec: serde_json::from_value(spec).unwrap(),
                run_state: Default::default(),
                extra: Default::default(),
            },
        );
    }
    PutDesiredState {
        desired_state: state,
        expected_generation: None,
    }
}

async fn missed_events(cloud: &mftplus_cloud::testing::TestCloud, host_id: &str) -> Vec<String> {
    let events = operator(cloud)
        .list_events(&mftplus_client::EventQuery {
            host: Some(host_id.into()),
            kind: Some("expected_backup_missed".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    events
        .into_iter()
        .filter(|e| e.kind == "expected_backup_missed")
        .map(|e| e.details["target"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The drive `uuid` in the latest report of `host_id`.
async fn reported_target(
    cloud: &mftplus_cloud::testing::TestCloud,
    host_id: &str,
    uuid: &str,
) -> serde_json::Value {
    let report = operator(cloud)
        .host_reports(host_id, Some(1))
        .await
        .unwrap()
        .remove(0)
        .report;
    report["storage_targets"]
        .as_array()
        .and_then(|targets| targets.iter().find(|t| t["durable_id"] == uuid))
        .cloned()
        .unwrap_or_else(|| panic!("the drive is reported: {report}"))
}

async fn overdue_now(cloud: &mftplus_cloud::testing::TestCloud, host_id: &str) -> String {
    cloud
        .state
        .store
        .list_backup_facts()
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.host_id == host_id)
        .map(|f| f.backup_missed_json)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_daily_backup_is_raised_by_the_cloud_and_cleared_by_the_next_backup() {
    if !backup_tools_available() {
        return;
    }
    let cloud = fast_cloud().await;
    customer(&cloud, "kovacs").await;
    let dir = tempfile::tempdir().unwrap();
    let drive = LoopFs::mount(dir.path(), &fresh_uuid(), 64).unwrap();
    let guests = drive.mount_point.join("guests");
    let repo = dir.path().join("repo");
    let config_path = write_config(&dir.path().join("box"), &cloud.url, "none", &repo, &guests);
    let host_id = enrolled_host_id(&enroll(&config_path, dir.path(), &[]));
    let code = private_file(&dir.path().join("code"), RECOVERY_CODE);
    let init = agent_cli(
        &config_path,
        &["backup", "init", "--recovery-code-file", &code],
        true,
    );
    let init_out = String::from_utf8_lossy(&init.stdout);
    assert!(init_out.contains("Escrow:     stored"), "{init_out}");
    assert!(
        !init_out.contains(RECOVERY_CODE),
        "a given code is never echoed"
    );
    let escrow = operator(&cloud).get_host(&host_id).await.unwrap();
    assert!(escrow.escrow_at.is_some(), "the cloud holds the escrow");

    // The guest's data sits on the drive; the policy backs the drive up daily.
    std::fs::create_dir_all(guests.join("web")).unwrap();
    std::fs::write(guests.join("web/orders.csv"), b"1,alma\n2,korte\n").unwrap();
    operator(&cloud)
        .put_desired_state(
            &host_id,
            &desired(&drive.uuid, BackupSchedule::Daily, &[("web", "app:1")]),
        )
        .await
        .unwrap();

    let config = AgentConfig::load(&config_path).unwrap();
    let clock: SharedClock = cloud.clock.clone();
    let mut agent = Agent::open(config.clone(), Arc::new(NullDriver), clock.clone()).unwrap();
    let backups = Backups::open(&config, clock.clone()).unwrap().unwrap();
    let (_stop, stopping) = watch::channel(false);
    let grace = cloud.state.clock.now_ms();

    agent.cycle(&stopping).await.unwrap();
    let runs = backups.run_due().await;
    assert_eq!(
        runs.len(),
        2,
        "a backup, then its first restore test: {runs:?}"
    );
    assert_eq!(runs[0].kind, RunKind::Backup);
    assert!(runs[0].outcome.is_ok(), "{runs:?}");
    assert_eq!(runs[1].kind, RunKind::RestoreTest);
    let tested = runs[1].outcome.clone().unwrap().unwrap_or_default();
    assert!(tested.contains("1 identical"), "{tested}");
    assert!(backups.run_due().await.is_empty(), "nothing more is due");
    agent.cycle(&stopping).await.unwrap();
    let report = &operator(&cloud)
        .host_reports(&host_id, Some(1))
        .await
        .unwrap()[0]
        .report;
    let target = reported_target(&cloud, &host_id, &drive.uuid).await;
    assert_eq!(target["last_backup"]["status"], "ok", "{target}");
    assert_eq!(target["last_restore_test"]["status"], "ok", "{target}");
    assert_eq!(report["backup_snapshots"][0]["target"], drive.uuid.as_str());
    checker::pass(&cloud.state, grace).await;
    assert!(missed_events(&cloud, &host_id).await.is_empty());

    // 27 hours on, with no backup run meanwhile: the cloud raises the miss, once.
    cloud.clock.advance_secs(27 * 3600);
    agent.cycle(&stopping).await.unwrap();
    checker::pass(&cloud.state, grace).await;
    checker::pass(&cloud.state, grace).await;
    assert_eq!(
        missed_events(&cloud, &host_id).await,
        vec![drive.uuid.clone()]
    );
    assert!(overdue_now(&cloud, &host_id).await.contains(&drive.uuid));

    // The worker finds the backup due; the next report clears the miss.
    let runs = backups.run_due().await;
    assert!(
        runs.iter()
            .any(|r| r.kind == RunKind::Backup && r.outcome.is_ok()),
        "{runs:?}"
    );
    agent.cycle(&stopping).await.unwrap();
    checker::pass(&cloud.state, grace).await;
    assert!(!overdue_now(&cloud, &host_id).await.contains(&drive.uuid));
    assert_eq!(
        missed_events(&cloud, &host_id).await.len(),
        1,
        "no new miss"
    );

    // The snapshots are real: restic lists two for this host, tagged with the drive.
    let key = config.state_dir.join("backup/repository.key");
    let listed = Command::new("restic")
        .args([
            "snapshots",
            "--json",
            "--tag",
            &format!("target:{}", drive.uuid),
        ])
        .env("RESTIC_REPOSITORY", &repo)
        .env("RESTIC_PASSWORD_FILE", &key)
        .output()
        .unwrap();
    let snapshots: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        snapshots.len(),
        2,
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert_eq!(snapshots[0]["hostname"], format!("mftplus-{host_id}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_repository_is_reported_with_its_code_and_retried() {
    if !backup_tools_available() {
        return;
    }
    let cloud = fast_cloud().await;
    customer(&cloud, "kovacs").await;
    let dir = tempfile::tempdir().unwrap();
    let drive = LoopFs::mount(dir.path(), &fresh_uuid(), 64).unwrap();
    let repo = dir.path().join("repo");
    let config_path = write_config(
        &dir.path().join("box"),
        &cloud.url,
        "none",
        &repo,
        &drive.mount_point.join("guests"),
    );
    let host_id = enrolled_host_id(&enroll(&config_path, dir.path(), &[]));
    // Before `backup init`, a due backup fails with what to do.
    operator(&cloud)
        .put_desired_state(&host_id, &desired(&drive.uuid, BackupSchedule::Hourly, &[]))
        .await
        .unwrap();
    let config = AgentConfig::load(&config_path).unwrap();
    let clock: SharedClock = cloud.clock.clone();
    let mut agent = Agent::open(config.clone(), Arc::new(NullDriver), clock.clone()).unwrap();
    let backups = Backups::open(&config, clock.clone()).unwrap().unwrap();
    let (_stop, stopping) = watch::channel(false);
    agent.cycle(&stopping).await.unwrap();
    let runs = backups.run_due().await;
    let why = runs[0].outcome.clone().unwrap_err();
    assert!(why.contains("[backup_not_initialised]"), "{why}");
    // A failure waits `retry_after` (5 s) before the next attempt.
    assert!(backups.run_due().await.is_empty());

    let code = private_file(&dir.path().join("code"), RECOVERY_CODE);
    agent_cli(
        &config_path,
        &["backup", "init", "--recovery-code-file", &code],
        true,
    );
    // A drive whose whole filesystem is backed up: this one, with a file at its root.
    std::fs::write(drive.mount_point.join("ledger.txt"), b"bulk data").unwrap();
    // Moved away, the repository is missing: the run says so with restic's reason.
    let moved = dir.path().join("repo-away");
    std::fs::rename(&repo, &moved).unwrap();
    cloud.clock.advance_secs(10);
    let why = backups.run_due().await[0].outcome.clone().unwrap_err();
    assert!(why.contains("[backup_repository_missing]"), "{why}");
    agent.cycle(&stopping).await.unwrap();
    let target = reported_target(&cloud, &host_id, &drive.uuid).await;
    assert_eq!(target["last_backup"]["status"], "failed");
    assert!(target["last_backup"]["detail"]
        .as_str()
        .unwrap()
        .contains("backup_repository_missing"));

    // Back in place, the retry succeeds; `backup status` tells the story.
    std::fs::rename(&moved, &repo).unwrap();
    cloud.clock.advance_secs(10);
    let runs = backups.run_due().await;
    assert!(runs[0].outcome.is_ok(), "{runs:?}");
    let status = agent_cli(&config_path, &["backup", "status"], true);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("with the cloud since"), "{status}");
    assert!(status.contains(" ok "), "{status}");
    assert!(status.contains("backup_repository_missing"), "{status}");
    // The key never shows: not in status, not in the cloud's escrow record.
    let key = std::fs::read_to_string(config.state_dir.join("backup/repository.key")).unwrap();
    assert!(!status.contains(key.trim()));
    let host = operator(&cloud).get_host(&host_id).await.unwrap();
    assert!(!serde_json::to_string(&host).unwrap().contains(key.trim()));
}

/// Every file under `root` with its SHA-256, by relative path.
fn tree_digest(root: &Path) -> std::collections::BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(
                    rel,
                    format!("{:x}", Sha256::digest(std::fs::read(&path).unwrap())),
                );
            }
        }
    }
    out
}

fn bind_sources(container: &str) -> String {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{json .HostConfig.Binds}}", container])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The DR drill: a box backs its guest up; the box is lost (agent killed, state and containers
/// and the guest's data gone); a new box takes over with `enroll --restore` while the operator
/// has armed recovery, unwraps the escrowed key with the customer's recovery code, restores
/// the guest's data byte for byte, runs the guest on it; the old host key is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_box_comes_back_on_a_new_one_with_its_guest_data() {
    if !backup_tools_available() || !mftplus_agent::testing::docker_available() {
        return;
    }
    let image = mftplus_agent::testing::guest_image();
    let guest = format!("ledger-{}", mftplus_agent::testing::unique_suffix());
    let _cleanup = ContainerGuard(vec![guest.clone()]);
    let cloud = fast_cloud().await;
    customer(&cloud, "kovacs").await;
    let operator = operator(&cloud);
    let dir = tempfile::tempdir().unwrap();
    let drive = LoopFs::mount(dir.path(), &fresh_uuid(), 64).unwrap();
    let repo = dir.path().join("repo");

    // The old box: its guest's data on the drive, backed up hourly.
    let old_guests = drive.mount_point.join("guests");
    let old = write_config(
        &dir.path().join("old"),
        &cloud.url,
        "docker",
        &repo,
        &old_guests,
    );
    let host_id = enrolled_host_id(&enroll(&old, &dir.path().join("old"), &[]));
    let code = private_file(&dir.path().join("code"), RECOVERY_CODE);
    agent_cli(
        &old,
        &["backup", "init", "--recovery-code-file", &code],
        true,
    );
    let data = old_guests.join(&guest);
    std::fs::create_dir_all(data.join("db/wal")).unwrap();
    std::fs::write(data.join("db/main.db"), vec![7u8; 3 << 20]).unwrap();
    std::fs::write(data.join("db/wal/0001"), b"BEGIN;COMMIT;").unwrap();
    std::fs::write(data.join("empty"), b"").unwrap();
    let original = tree_digest(&data);
    operator
        .put_desired_state(
            &host_id,
            &desired(&drive.uuid, BackupSchedule::Hourly, &[(&guest, &image)]),
        )
        .await
        .unwrap();
    let old_dir = dir.path().join("old");
    let old_box = Box {
        dir: old_dir.clone(),
        config: old.clone(),
    };
    let mut agent = old_box.start();
    eventually(
        std::time::Duration::from_secs(60),
        "a backup in the report and the guest running",
        &[&agent],
        || async {
            let reports = operator.host_reports(&host_id, Some(1)).await.ok()?;
            let report = &reports.first()?.report;
            let backed_up = report["storage_targets"].as_array()?.iter().any(|t| {
                t["durable_id"] == drive.uuid.as_str() && t["last_backup"]["status"] == "ok"
            });
            let running = containers_of(&guest).iter().any(|(_, s)| s == "running");
            (backed_up && running).then_some(())
        },
    )
    .await;
    assert!(bind_sources(&format!("mftplus-{guest}")).contains(&data.display().to_string()));
    let old_key = old_box.state().identity().unwrap().unwrap().host_key;

    // The box is lost: agent, containers, state and the drive's data.
    agent.kill_9();
    let _ = Command::new("docker")
        .args(["rm", "-f", &format!("mftplus-{guest}")])
        .output();
    std::fs::remove_dir_all(old_dir.join("state")).unwrap();
    std::fs::remove_dir_all(&old_guests).unwrap();

    // A new box, its guests elsewhere; the operator arms recovery.
    operator.arm_recovery(&host_id, 600).await.unwrap();
    let new_dir = dir.path().join("new");
    let new_guests = new_dir.join("guests");
    let new = write_config(&new_dir, &cloud.url, "docker", &repo, &new_guests);
    let restored = enroll(&new, &new_dir, &["--restore", &host_id]);
    let said = String::from_utf8_lossy(&restored.stdout);
    assert!(
        restored.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(said.contains("backup recover"), "{said}");
    let wrong = private_file(&new_dir.join("wrong"), "alma-alma-alma-alma-alma");
    let refused = agent_cli(
        &new,
        &["backup", "recover", "--recovery-code-file", &wrong],
        false,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("recovery_code_wrong"));
    assert!(
        !new_guests.join(&guest).exists(),
        "nothing restored with a wrong code"
    );
    let recovered = agent_cli(
        &new,
        &["backup", "recover", "--recovery-code-file", &code],
        true,
    );
    let said = String::from_utf8_lossy(&recovered.stdout);
    assert!(
        said.contains(&format!("guest {guest}  restored from snapshot")),
        "{said}"
    );
    assert_eq!(
        tree_digest(&new_guests.join(&guest)),
        original,
        "byte for byte"
    );

    // The new box runs the guest on the restored data; the old key is refused.
    let new_box = Box {
        dir: new_dir.clone(),
        config: new.clone(),
    };
    let agent = new_box.start();
    eventually(
        std::time::Duration::from_secs(60),
        "the guest running again",
        &[&agent],
        || async {
            containers_of(&guest)
                .iter()
                .any(|(_, s)| s == "running")
                .then_some(())
        },
    )
    .await;
    assert!(bind_sources(&format!("mftplus-{guest}"))
        .contains(&new_guests.join(&guest).display().to_string()));
    let stale = mftplus_client::AgentClient::with_options(
        &cloud.url,
        Some(old_key.expose()),
        Default::default(),
    )
    .unwrap();
    let err = stale.desired_state(&host_id).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
}
