//! Upgrades from earlier releases (`docs/upgrading.md`): every `testdata/upgrade/<release>/`
//! holds an `agent.db` that release's agent wrote through `StateDb` (identity, cached desired
//! state, two verified ops with their burnt nonces, a journal with a step a crash left begun,
//! the box certificate). Today's agent must bring a copy forward to its schema, read all of
//! it back, keep refusing the old nonces, and go on working on the file; an `agent.db` from a
//! newer agent must be refused untouched.
//!
//! `make_fixture` (ignored) is the writer `scripts/make-upgrade-fixtures.sh` runs at a release.

use mftplus_agent::certificate::StoredCertificate;
use mftplus_agent::state::{Identity, OpState, StateDb, StateError, DB_FILE, SCHEMA_VERSION};
use mftplus_base::Secret;
use mftplus_pki::ca::{new_key_and_csr, Authority};
use mftplus_pki::identity::read_certificate_pem;
use mftplus_signing::{NonceStore, NonceStoreError};
use mftplus_types::certificates::BoxIdentity;
use mftplus_types::fleet::DesiredState;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where `make_fixture` writes; a temporary directory when unset.
const OUT_ENV: &str = "MFTPLUS_UPGRADE_FIXTURE_DIR";
/// 2026-01-01T00:00:00Z (ms), the fixture's clock; nonces and certificates count seconds.
const AT: i64 = 1_767_225_600_000;
const AT_S: i64 = AT / 1_000;
const HOST: &str = "hst-fx-1";
const GUEST: &str = "gst-fx-1";
const OP_DONE: &str = "op-fx-done";
const OP_WAITING: &str = "op-fx-waiting";

/// `(release, directory)` of every release fixture, oldest name first.
fn releases() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/upgrade");
    let entries = std::fs::read_dir(&root)
        .unwrap_or_else(|err| panic!("{}: {err}", root.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir());
    let mut releases: Vec<(String, PathBuf)> = entries
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                path,
            )
        })
        .collect();
    releases.sort();
    assert!(
        !releases.is_empty(),
        "no release fixtures under {}: run scripts/make-upgrade-fixtures.sh",
        root.display()
    );
    releases
}

/// The `user_version` `manifest.json` gives the release's `agent.db`.
fn manifest_version(release: &str, dir: &Path) -> u64 {
    let path = dir.join("manifest.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let manifest: Value = serde_json::from_str(&text).expect("manifest.json");
    assert_eq!(manifest["release"], release, "{}", path.display());
    manifest["files"][DB_FILE]["user_version"]
        .as_u64()
        .unwrap_or_else(|| panic!("{} gives no user_version for {DB_FILE}", path.display()))
}

/// A private state directory holding a copy of the release's file, owner-only as the agent
/// requires (a checkout leaves it 0644).
fn copy_of(dir: &Path) -> tempfile::TempDir {
    let state = tempfile::tempdir().unwrap();
    let private = std::fs::Permissions::from_mode(0o700);
    std::fs::set_permissions(state.path(), private).unwrap();
    let path = state.path().join(DB_FILE);
    std::fs::copy(dir.join(DB_FILE), &path)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.join(DB_FILE).display()));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    state
}

fn raw_user_version(state: &Path) -> u32 {
    rusqlite::Connection::open(state.join(DB_FILE))
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

fn identity() -> Identity {
    Identity {
        host_id: HOST.into(),
        customer_id: "cus-fx-acme".into(),
        host_key: Secret::new("mfth_fixture_host_key"),
        operator_keys: "operator@fixture.example ssh-ed25519 \
                        AAAAC3NzaC1lZDI1NTE5AAAAIFixtureFixtureFixtureFixtureFixtureFixture1"
            .into(),
        server_url: "https://hub.acme.fixture.example:3002".into(),
        enrolled_at_ms: AT,
    }
}

fn desired(generation: u64) -> DesiredState {
    serde_json::from_value(json!({
        "guests": {GUEST: {
            "spec": {"kind": "container", "cpu_cores": 2, "memory_mb": 2048, "disk_gb": 40,
                     "image": "mftplus/files:0.1.0"},
            "run_state": if generation > 1 { "running" } else { "stopped" },
        }},
        "storage": {"disk-1": {"role": "bulk", "class": "slow", "backup": "daily"}},
        "versions": {"controller": "0.1.0"},
    }))
    .expect("a desired state")
}

fn blob(op_id: &str) -> String {
    json!({"op_id": op_id, "type": "guest.restart", "host_id": HOST, "guest_id": GUEST}).to_string()
}

/// Reads back everything the fixture holds; `db` was just opened on it.
fn check_rows(release: &str, db: &StateDb) {
    assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION, "{release}");
    assert_eq!(
        db.identity().unwrap(),
        Some(identity()),
        "{release}: identity"
    );
    assert_eq!(db.desired().unwrap(), (2, desired(2)), "{release}: desired");
    assert_eq!(db.applied_generation().unwrap(), 2);
    let done = db.op(OP_DONE).unwrap().expect("the executed op");
    assert_eq!((done.state, done.blob), (OpState::Acked, blob(OP_DONE)));
    assert_eq!(done.result, Some(json!({"ok": true})));
    let waiting: Vec<String> = db
        .ops_in(&[OpState::Authorized])
        .unwrap()
        .into_iter()
        .map(|op| op.op_id)
        .collect();
    assert_eq!(waiting, [OP_WAITING], "{release}: the op still to run");
    let journal: Vec<(String, String, Option<String>)> = db
        .journal(10)
        .unwrap()
        .into_iter()
        .map(|entry| (entry.action, entry.state, entry.op_id))
        .collect();
    assert_eq!(
        journal,
        [
            (
                "start".to_string(),
                "interrupted".to_string(),
                Some(OP_DONE.to_string())
            ),
            ("create".to_string(), "done".to_string(), None),
        ],
        "{release}: the journal, the crashed step marked"
    );
    let cert = db.certificate().unwrap().expect("the box certificate");
    let facts = read_certificate_pem(&cert.chain_pem).expect("a readable certificate");
    assert_eq!(facts.serial, cert.serial, "{release}: the certificate");
    assert_eq!(facts.identity, Some(BoxIdentity::host(HOST)));
    assert!(cert.key_pem.expose().contains("PRIVATE KEY"));
    assert_eq!(
        (cert.stored_at, cert.renew_before, cert.watch_interval),
        (AT_S, Some(10 * 86_400), Some(300))
    );
}

/// Today's agent keeps working on the upgraded file: old nonces stay burnt, new ops are
/// authorized, the journal and the desired-state cache move on.
fn keep_working(release: &str, db: &StateDb) {
    for nonce in ["nonce-op-fx-done", "nonce-op-fx-waiting"] {
        let mut store = db.authorizing("op-fx-replay", "{}", AT + 50_000);
        assert!(store.is_seen(nonce).unwrap(), "{release}: {nonce} is burnt");
        assert!(
            matches!(
                store.record(nonce, AT_S + 86_400, AT_S),
                Err(NonceStoreError::AlreadySeen)
            ),
            "{release}: {nonce} cannot authorize another op"
        );
    }
    assert!(db.op("op-fx-replay").unwrap().is_none());
    db.authorizing("op-fx-new", &blob("op-fx-new"), AT + 50_000)
        .record("nonce-op-fx-new", AT_S + 86_400, AT_S)
        .expect("a new op is authorized");
    let step = db
        .journal_begin(3, GUEST, "stop", Some("op-fx-new"), AT + 50_100)
        .unwrap();
    db.journal_finish(step, true, None, AT + 50_200).unwrap();
    db.store_desired(3, &desired(3), AT + 50_300).unwrap();
    assert_eq!(db.op(OP_DONE).unwrap().unwrap().state, OpState::Settled);
    db.set_applied_generation(3).unwrap();
    assert_eq!(db.applied_generation().unwrap(), 3);
}

#[test]
fn every_release_fixture_upgrades_and_the_agent_works_on_it() {
    for (release, dir) in releases() {
        eprintln!("upgrading the agent.db of {release}");
        let state = copy_of(&dir);
        assert_eq!(
            u64::from(raw_user_version(state.path())),
            manifest_version(&release, &dir),
            "{release}: the file is what its manifest says"
        );
        let (db, interrupted) = StateDb::open(state.path()).expect("open the fixture");
        assert_eq!(interrupted, 1, "{release}: the step a crash left begun");
        check_rows(&release, &db);
        keep_working(&release, &db);
        drop(db);
        assert_eq!(raw_user_version(state.path()), SCHEMA_VERSION);
    }
}

#[test]
fn an_agent_db_from_a_newer_agent_is_refused() {
    let (release, dir) = releases().pop().unwrap();
    let state = copy_of(&dir);
    drop(StateDb::open_to_read(state.path()).unwrap());
    let newer = SCHEMA_VERSION + 1;
    let conn = rusqlite::Connection::open(state.path().join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", newer).unwrap();
    drop(conn);
    let before = std::fs::read(state.path().join(DB_FILE)).unwrap();

    for outcome in [
        StateDb::open(state.path()).map(drop),
        StateDb::open_to_read(state.path()).map(drop),
    ] {
        match outcome {
            Err(err @ StateError::TooNew { found, known, .. }) => {
                assert_eq!((found, known), (newer, SCHEMA_VERSION));
                assert_eq!(err.code(), "state_too_new");
                assert!(err.to_string().contains("upgrade the agent"), "{err}");
            }
            other => panic!("{release}+1: a newer agent.db must be refused, got {other:?}"),
        }
    }
    assert_eq!(raw_user_version(state.path()), newer);
    assert_eq!(
        std::fs::read(state.path().join(DB_FILE)).unwrap(),
        before,
        "the file is untouched"
    );
}

/// The box certificate, issued by a real CA from a real key and CSR.
fn certificate() -> StoredCertificate {
    let ca = tempfile::tempdir().unwrap();
    let authority = Authority::open_or_create(&ca.path().join("ca"), "Fixture CA", AT_S).unwrap();
    let (key_pem, csr_pem) = new_key_and_csr(HOST).unwrap();
    let validity = Duration::from_secs(90 * 86_400);
    let issued = authority
        .issue(&csr_pem, &BoxIdentity::host(HOST), validity, AT_S)
        .unwrap();
    StoredCertificate {
        chain_pem: issued.chain_pem,
        key_pem: Secret::new(key_pem),
        ca_pem: authority.roots_pem().to_string(),
        serial: issued.serial,
        not_before: issued.not_before,
        not_after: issued.not_after,
        stored_at: AT_S,
        renew_before: Some(10 * 86_400),
        watch_interval: Some(300),
    }
}

/// What an agent of this release leaves after enrolling, two fetches, two verified ops (one
/// executed and acknowledged), and a crash in the middle of a guest step.
fn write_fixture(db: &StateDb) {
    db.set_identity(&identity(), Some((1, &desired(1))))
        .unwrap();
    db.store_certificate(&certificate()).unwrap();
    db.store_desired(2, &desired(2), AT + 1_000).unwrap();
    db.set_applied_generation(2).unwrap();
    for (op, at) in [(OP_DONE, AT + 2_000), (OP_WAITING, AT + 2_001)] {
        db.authorizing(op, &blob(op), at)
            .record(&format!("nonce-{op}"), AT_S + 365 * 86_400, AT_S)
            .unwrap();
    }
    let result = json!({"ok": true});
    let (from, to) = ([OpState::Authorized], OpState::Executed);
    assert!(db
        .set_op_state(OP_DONE, &from, to, Some(&result), AT + 2_100)
        .unwrap());
    let (from, to) = ([OpState::Executed], OpState::Acked);
    assert!(db
        .set_op_state(OP_DONE, &from, to, None, AT + 2_200)
        .unwrap());
    let step = db
        .journal_begin(2, GUEST, "create", None, AT + 3_000)
        .unwrap();
    db.journal_finish(step, true, Some("created"), AT + 3_050)
        .unwrap();
    db.journal_begin(2, GUEST, "start", Some(OP_DONE), AT + 3_100)
        .unwrap();
}

/// Writes `agent.db` and its manifest entry into `$MFTPLUS_UPGRADE_FIXTURE_DIR` (run by
/// `scripts/make-upgrade-fixtures.sh`), or into a temporary directory as a self-test.
#[test]
#[ignore = "writes a release fixture; run by scripts/make-upgrade-fixtures.sh"]
fn make_fixture() {
    let scratch = tempfile::tempdir().unwrap();
    let out = std::env::var_os(OUT_ENV).map_or(scratch.path().to_path_buf(), PathBuf::from);
    let state = scratch.path().join("state");
    let (db, _) = StateDb::open(&state).unwrap();
    write_fixture(&db);
    let user_version = db.schema_version().unwrap();
    drop(db);

    // One compact file without its WAL: what a backup of a stopped agent looks like.
    let target = out.join(DB_FILE);
    let _ = std::fs::remove_file(&target);
    let conn = rusqlite::Connection::open(state.join(DB_FILE)).unwrap();
    conn.execute("VACUUM INTO ?1", [target.to_str().expect("a UTF-8 path")])
        .expect("VACUUM INTO");
    drop(conn);
    let entry = json!({
        "schema": "PRAGMA user_version",
        "user_version": user_version,
        "writer": "crates/mftplus-agent/tests/upgrade.rs make_fixture",
    });
    let manifest = out.join(format!("{DB_FILE}.manifest.json"));
    std::fs::write(&manifest, format!("{entry:#}\n")).unwrap();

    let copy = copy_of(&out);
    assert_eq!(
        raw_user_version(copy.path()),
        user_version,
        "VACUUM INTO kept it"
    );
    let (db, interrupted) = StateDb::open(copy.path()).unwrap();
    assert_eq!(interrupted, 1);
    check_rows("this release", &db);
}
