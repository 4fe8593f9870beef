//! The storage handshake on real block devices: drives are ext4 image files on loop devices
//! (never the machine's disks). A drive plugged in and not mounted is reported attached and
//! unreachable; a policy for it mounts it under the agent's state folder (journaled, idempotent)
//! and the report says reachable; removing the policy leaves it mounted and lists
//! `storage.detach` under `pending_signature` until an op signed with `ssh-keygen` is verified
//! by the agent's own pipeline (`ops::intake`); a busy drive fails the op with
//! `storage_busy`; a signed wipe makes a new ext4 with the same UUID, also after a crash cut it
//! short. No cloud: the desired state is stored the way the report loop stores what it fetched.

use mftplus_agent::ops::{self, FOLDED};
use mftplus_agent::probe::storage::{parse_mountinfo, storage_targets};
use mftplus_agent::state::StateDb;
use mftplus_agent::storage::{mount_root, reconcile_storage, StorageOutcome};
use mftplus_agent::testing::{loop_devices_available, random_uuid, LoopDrive};
use mftplus_base::{Clock as _, SystemClock};
use mftplus_signing::{AllowedSigners, Op, Target};
use mftplus_types::fleet::{op_status, DesiredState, OpInfo, StorageTarget};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use tokio::sync::watch;

const HOST: &str = "hst_storage_test";

struct Bench {
    dir: tempfile::TempDir,
    db: StateDb,
    key: PathBuf,
    pinned: AllowedSigners,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = StateDb::open(&dir.path().join("state")).unwrap();
        // The operator's key, made by ssh-keygen as on a workstation.
        let key = dir.path().join("operator");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "operator@test", "-f"])
            .arg(&key)
            .output()
            .expect("ssh-keygen");
        assert!(out.status.success(), "{out:?}");
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let pinned = AllowedSigners::parse(&format!(
            "operator@test namespaces=\"mftplus-op-v1\" {}",
            public.trim()
        ))
        .unwrap();
        Bench {
            dir,
            db,
            key,
            pinned,
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn mount_point(&self, uuid: &str) -> PathBuf {
        std::fs::canonicalize(self.state_dir())
            .unwrap()
            .join("storage")
            .join(uuid)
    }

    fn desire(&self, generation: u64, yaml: &str) {
        let state: DesiredState =
            serde_json::from_value(serde_yaml::from_str::<Value>(yaml).unwrap()).unwrap();
        self.db
            .store_desired(generation, &state, SystemClock.now_ms())
            .unwrap();
    }

    /// One storage reconcile, as the report loop runs it: the cached desired state with the
    /// verified ops folded in, and the ops still to carry out.
    async fn reconcile(&self) -> StorageOutcome {
        reconcile_with(&self.db, &self.state_dir()).await
    }

    /// An op signed by the operator with `ssh-keygen -Y sign`, delivered and taken in by the
    /// agent's own pipeline; returns its id.
    fn sign_and_deliver(&self, op: &str, uuid: &str, nonce: &str) -> String {
        let now = SystemClock.now_secs();
        let op = Op {
            op: op.into(),
            target: Target {
                host_id: HOST.into(),
                guest_id: None,
            },
            params: json!({"durable_id": uuid}),
            nonce: nonce.repeat(64 / nonce.len()),
            issued_at: now,
            expires_at: now + 3600,
            key_id: "operator@test".into(),
        };
        let blob = String::from_utf8(op.to_canonical_bytes()).unwrap();
        let file = self.dir.path().join(format!("op-{nonce}.json"));
        std::fs::write(&file, &blob).unwrap();
        let out = Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", "mftplus-op-v1", "-f"])
            .arg(&self.key)
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let signature = std::fs::read_to_string(file.with_extension("json.sig")).unwrap();
        let op_id = format!("op_{nonce}");
        let info = OpInfo {
            op_id: op_id.clone(),
            customer_id: "kovacs".into(),
            host_id: HOST.into(),
            guest_id: None,
            op_type: op.op.clone(),
            blob,
            signature: Some(signature),
            status: op_status::DELIVERED.into(),
            nonce: op.nonce.clone(),
            issued_at: String::new(),
            expires_at: String::new(),
            signed_at: None,
            delivered_at: None,
            finished_at: None,
            result: None,
        };
        let rejected =
            ops::intake(&self.db, &[info], &self.pinned, HOST, SystemClock.now_ms()).unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        op_id
    }
}

async fn reconcile_with(db: &StateDb, state_dir: &Path) -> StorageOutcome {
    let (generation, cloud) = db.desired().unwrap();
    let records = db.ops_in(&FOLDED).unwrap();
    let effective = ops::effective(&cloud, &records);
    let (_stop, stopping) = watch::channel(false);
    reconcile_storage(
        db,
        &SystemClock,
        generation,
        &effective,
        ops::authorizations(&records),
        &mount_root(state_dir),
        &stopping,
    )
    .await
    .unwrap()
}

fn target(uuid: &str) -> Option<StorageTarget> {
    let mut found: Vec<StorageTarget> = storage_targets()
        .into_iter()
        .filter(|t| t.durable_id == uuid)
        .collect();
    assert!(found.len() <= 1, "reported twice: {found:?}");
    found.pop()
}

/// The mount options of what is mounted at `point`.
fn mount_options(point: &Path) -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo.lines().find_map(|line| {
        let entry = parse_mountinfo(line).pop()?;
        (entry.mount_point == point).then(|| line.split(' ').nth(5).unwrap_or("").to_string())
    })
}

fn policy_yaml(uuid: &str, extra: &str) -> String {
    format!("storage:\n  {uuid}: {{role: bulk, class: slow, backup: daily{extra}}}\n")
}

#[tokio::test]
async fn a_plugged_in_drive_is_mounted_by_policy_and_detached_only_when_signed() {
    if !loop_devices_available() {
        return;
    }
    let bench = Bench::new();
    let uuid = random_uuid();
    let drive = LoopDrive::attach(bench.dir.path(), &uuid, 32).unwrap();

    // Plugged in: attached, not reachable, counted as data-bearing, named by its device.
    let seen = target(&uuid).expect("the unmounted drive is reported");
    assert!(
        seen.attached && !seen.reachable && seen.data_bearing,
        "{seen:?}"
    );
    assert_eq!(seen.label.as_deref(), drive.device.to_str());
    assert_eq!(seen.size_bytes, Some(32 << 20));

    // The operator gives it a policy: mounted under the state folder, nodev/nosuid/noexec.
    bench.desire(1, &policy_yaml(&uuid, ""));
    let outcome = bench.reconcile().await;
    assert_eq!(
        (outcome.steps_done, outcome.steps_failed),
        (1, 0),
        "{outcome:?}"
    );
    assert!(outcome.waiting.is_empty() && outcome.remaining.is_empty());
    let point = bench.mount_point(&uuid);
    assert_eq!(drive.mount_points(), vec![point.clone()]);
    let options = mount_options(&point).unwrap();
    for option in ["nodev", "nosuid", "noexec"] {
        assert!(options.split(',').any(|o| o == option), "{options}");
    }
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&bench.state_dir().join("storage")), 0o700);
    let seen = target(&uuid).unwrap();
    assert!(seen.reachable, "{seen:?}");
    assert_eq!(seen.label.as_deref(), point.to_str());
    assert!(!seen.data_bearing, "a fresh filesystem is empty: {seen:?}");
    let journal = bench.db.journal(1).unwrap();
    assert_eq!(journal[0].guest_id, format!("storage:{uuid}"));
    assert_eq!(
        (journal[0].action.as_str(), journal[0].state.as_str()),
        ("mount", "done")
    );
    assert!(
        journal[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("role=bulk class=slow backup=daily"),
        "{journal:?}"
    );

    // Idempotent: nothing more to do.
    let again = bench.reconcile().await;
    assert_eq!(
        (again.steps_done, again.remaining.len()),
        (0, 0),
        "{again:?}"
    );

    // The policy is gone from the desired state: still mounted, the detach waits.
    bench.desire(2, "storage: {}\n");
    let waiting = bench.reconcile().await;
    assert_eq!(waiting.steps_done, 0);
    assert_eq!(waiting.waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting.waiting[0].op, "storage.detach");
    assert_eq!(waiting.waiting[0].params, json!({"durable_id": uuid}));
    assert_eq!(drive.mount_points(), vec![point.clone()]);

    // Signed, but something holds a file open on it: the op fails with `storage_busy`.
    let busy_file = std::fs::File::create(point.join("open.txt")).unwrap();
    let busy_op = bench.sign_and_deliver("storage.detach", &uuid, "a1");
    let busy = bench.reconcile().await;
    assert_eq!(busy.steps_failed, 1);
    let (op_id, result) = &busy.op_results[0];
    assert_eq!(op_id, &busy_op);
    assert_eq!(
        result.as_ref().unwrap_err()["code"],
        "storage_busy",
        "{result:?}"
    );
    assert_eq!(drive.mount_points(), vec![point.clone()], "still mounted");
    // The agent records the failure (as the report loop's settle would) and the detach waits
    // for a new signature again.
    bench
        .db
        .set_op_state(
            &busy_op,
            &[mftplus_agent::state::OpState::Authorized],
            mftplus_agent::state::OpState::Failed,
            None,
            SystemClock.now_ms(),
        )
        .unwrap();
    drop(busy_file);
    assert_eq!(bench.reconcile().await.waiting.len(), 1);

    // Signed again, nothing holds it: unmounted, reported unreachable, the folder gone.
    let op = bench.sign_and_deliver("storage.detach", &uuid, "b2");
    let done = bench.reconcile().await;
    assert_eq!(done.op_results.len(), 1, "{done:?}");
    assert_eq!(done.op_results[0].0, op);
    assert_eq!(done.op_results[0].1.as_ref().unwrap()["action"], "detach");
    assert!(
        done.waiting.is_empty() && done.remaining.is_empty(),
        "{done:?}"
    );
    assert!(drive.mount_points().is_empty());
    assert!(!point.exists());
    let seen = target(&uuid).unwrap();
    assert!(seen.attached && !seen.reachable, "{seen:?}");
}

#[tokio::test]
async fn a_drive_the_customer_mounted_stays_where_it_is_and_is_never_wiped_there() {
    if !loop_devices_available() {
        return;
    }
    let bench = Bench::new();
    let uuid = random_uuid();
    let drive = LoopDrive::attach(bench.dir.path(), &uuid, 32).unwrap();
    let theirs = bench.dir.path().join("customer-mount");
    std::fs::create_dir(&theirs).unwrap();
    let out = Command::new("mount")
        .arg(&drive.device)
        .arg(&theirs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let theirs = std::fs::canonicalize(&theirs).unwrap();

    bench.desire(1, &policy_yaml(&uuid, ""));
    let outcome = bench.reconcile().await;
    assert_eq!(outcome.steps_done, 0, "{outcome:?}");
    assert_eq!(drive.mount_points(), vec![theirs.clone()]);
    assert_eq!(target(&uuid).unwrap().label.as_deref(), theirs.to_str());

    // A signed wipe of it is refused: the agent does not unmount what it did not mount.
    let op = bench.sign_and_deliver("storage.wipe", &uuid, "c3");
    let refused = bench.reconcile().await;
    assert_eq!(refused.op_results[0].0, op);
    assert_eq!(
        refused.op_results[0].1.as_ref().unwrap_err()["code"],
        "storage_mounted_elsewhere"
    );
    assert_eq!(drive.mount_points(), vec![theirs.clone()]);

    // Removing its policy changes nothing on the box: the agent did not mount it.
    bench.desire(2, "storage: {}\n");
    let outcome = bench.reconcile().await;
    assert!(
        outcome.waiting.is_empty() && outcome.remaining.is_empty(),
        "{outcome:?}"
    );
    assert_eq!(drive.mount_points(), [theirs]);
}

#[tokio::test]
async fn a_signed_wipe_keeps_the_uuid_and_is_finished_after_a_crash() {
    if !loop_devices_available() {
        return;
    }
    let bench = Bench::new();
    let uuid = random_uuid();
    let drive = LoopDrive::attach(bench.dir.path(), &uuid, 32).unwrap();
    bench.desire(1, &policy_yaml(&uuid, ""));
    bench.reconcile().await;
    let point = bench.mount_point(&uuid);
    std::fs::write(point.join("old-data.txt"), b"from before the wipe").unwrap();

    // Asked for but not signed: waits, and the data stays.
    bench.desire(2, &policy_yaml(&uuid, ", wipe: true"));
    let waiting = bench.reconcile().await;
    assert_eq!(waiting.waiting.len(), 1);
    assert_eq!(waiting.waiting[0].op, "storage.wipe");
    assert!(point.join("old-data.txt").exists());

    // Signed: unmounted, wiped, a new ext4 with the same UUID, mounted again.
    let op = bench.sign_and_deliver("storage.wipe", &uuid, "d4");
    let wiped = bench.reconcile().await;
    assert_eq!(wiped.op_results.len(), 1, "{wiped:?}");
    assert_eq!(wiped.op_results[0].0, op);
    assert_eq!(wiped.op_results[0].1.as_ref().unwrap()["action"], "wipe");
    assert_eq!(drive.mount_points(), vec![point.clone()]);
    assert!(!point.join("old-data.txt").exists(), "erased");
    assert!(target(&uuid).unwrap().reachable);
    // As the cloud folds an executed wipe: the flag is cleared.
    bench
        .db
        .set_op_state(
            &op,
            &[mftplus_agent::state::OpState::Authorized],
            mftplus_agent::state::OpState::Executed,
            None,
            SystemClock.now_ms(),
        )
        .unwrap();
    bench.desire(3, &policy_yaml(&uuid, ""));
    let settled = bench.reconcile().await;
    assert!(
        settled.waiting.is_empty() && settled.remaining.is_empty(),
        "{settled:?}"
    );

    // A crash between `wipefs -a` and the end of `mkfs.ext4`: the drive has no filesystem, so
    // it cannot be found by its UUID. The journal noted the device; after the restart the
    // still-authorized op finishes the wipe on it.
    let out = Command::new("umount").arg(&point).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let op = bench.sign_and_deliver("storage.wipe", &uuid, "e5");
    let size = std::fs::metadata(&drive.image).unwrap().len();
    let seq = bench
        .db
        .journal_begin(
            3,
            &format!("storage:{uuid}"),
            "wipe",
            Some(&op),
            SystemClock.now_ms(),
        )
        .unwrap();
    bench
        .db
        .journal_note(
            seq,
            &format!("device={} size={size}", drive.device.display()),
        )
        .unwrap();
    let out = Command::new("wipefs")
        .arg("-a")
        .arg(&drive.device)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(target(&uuid).is_none(), "no filesystem, no drive");
    let (db, interrupted) = StateDb::open(&bench.state_dir()).unwrap();
    assert_eq!(interrupted, 1);
    drop(db);
    let recovered = bench.reconcile().await;
    assert_eq!(recovered.op_results.len(), 1, "{recovered:?}");
    assert!(recovered.op_results[0].1.is_ok(), "{recovered:?}");
    assert_eq!(
        drive.mount_points(),
        vec![point.clone()],
        "wiped and mounted again"
    );
    assert!(target(&uuid).unwrap().reachable);
}

#[tokio::test]
async fn an_interrupted_wipe_never_formats_a_device_that_carries_a_filesystem_again() {
    if !loop_devices_available() {
        return;
    }
    let bench = Bench::new();
    let uuid = random_uuid();
    let drive = LoopDrive::attach(bench.dir.path(), &uuid, 32).unwrap();
    bench.desire(1, &policy_yaml(&uuid, ""));
    let op = bench.sign_and_deliver("storage.wipe", &uuid, "f6");
    let size = std::fs::metadata(&drive.image).unwrap().len();
    let seq = bench
        .db
        .journal_begin(
            1,
            &format!("storage:{uuid}"),
            "wipe",
            Some(&op),
            SystemClock.now_ms(),
        )
        .unwrap();
    bench
        .db
        .journal_note(
            seq,
            &format!("device={} size={size}", drive.device.display()),
        )
        .unwrap();
    // Meanwhile another filesystem took the device (a different drive after a reboot).
    let other = random_uuid();
    let out = Command::new("mkfs.ext4")
        .args(["-F", "-q", "-U", &other])
        .arg(&drive.device)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    drop(StateDb::open(&bench.state_dir()).unwrap());
    let outcome = bench.reconcile().await;
    assert_eq!(
        outcome.op_results[0].1.as_ref().unwrap_err()["code"],
        "storage_not_attached",
        "{outcome:?}"
    );
    let untouched = mftplus_agent::probe::storage::read_fs_uuid(&drive.device).unwrap();
    assert_eq!(untouched.as_deref(), Some(other.as_str()));
}

#[tokio::test]
async fn one_entry_per_uuid_and_a_mounted_filesystem_wins() {
    if !loop_devices_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let uuid = random_uuid();
    let first = LoopDrive::attach(dir.path(), &uuid, 16).unwrap();
    let clone_dir = dir.path().join("clone");
    std::fs::create_dir(&clone_dir).unwrap();
    let clone = LoopDrive::attach(&clone_dir, &uuid, 16).unwrap();
    let seen = target(&uuid).unwrap();
    assert!(!seen.reachable);
    let point = dir.path().join("mnt");
    std::fs::create_dir(&point).unwrap();
    let out = Command::new("mount")
        .args(["-o", "ro"])
        .arg(&clone.device)
        .arg(&point)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let seen = target(&uuid).unwrap();
    assert!(seen.reachable, "the mounted one wins: {seen:?}");
    assert_eq!(
        seen.label.as_deref(),
        std::fs::canonicalize(&point).unwrap().to_str()
    );
    drop(first);
}

const CHILD_STATE_ENV: &str = "MFTPLUS_TEST_STORAGE_STATE";

/// One storage reconcile of the state folder the parent names; run in a child process by
/// [`without_cap_sys_admin_a_policy_is_refused_before_any_system_call`].
#[tokio::test]
#[ignore = "a child of another test"]
async fn child_reconciles_once() {
    let Ok(state_dir) = std::env::var(CHILD_STATE_ENV) else {
        return;
    };
    let (db, _) = StateDb::open(Path::new(&state_dir)).unwrap();
    reconcile_with(&db, Path::new(&state_dir)).await;
}

#[tokio::test]
async fn without_cap_sys_admin_a_policy_is_refused_before_any_system_call() {
    if !loop_devices_available() {
        return;
    }
    let bench = Bench::new();
    let uuid = random_uuid();
    let drive = LoopDrive::attach(bench.dir.path(), &uuid, 16).unwrap();
    bench.desire(1, &policy_yaml(&uuid, ""));
    // The agent as the shipped unit runs it: root without CAP_SYS_ADMIN.
    let child = Command::new("setpriv")
        .arg("--bounding-set=-sys_admin")
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_reconciles_once",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_STATE_ENV, bench.state_dir())
        .output();
    let out = match child {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"SKIPPED: setpriv (util-linux) is not installed\n",
            );
            return;
        }
        Err(e) => panic!("setpriv: {e}"),
    };
    assert!(out.status.success(), "{out:?}");
    let journal = bench.db.journal(1).unwrap();
    assert_eq!(
        (journal[0].action.as_str(), journal[0].state.as_str()),
        ("mount", "failed"),
        "{journal:?}"
    );
    let detail = journal[0].detail.as_deref().unwrap_or_default();
    assert!(detail.starts_with("storage_not_permitted:"), "{detail}");
    // Said by the agent's own check, not by the kernel: under the unit's system-call filter the
    // call itself would kill the agent.
    assert!(detail.contains("lacks CAP_SYS_ADMIN"), "{detail}");
    assert!(drive.mount_points().is_empty());
}
