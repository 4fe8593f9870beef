use super::*;
use std::os::unix::fs::PermissionsExt;

fn identity() -> Identity {
    Identity {
        host_id: "hst_1".into(),
        customer_id: "kovacs".into(),
        host_key: mftplus_base::Secret::new("mfth_secret"),
        operator_keys: "op@example.com ssh-ed25519 AAAA".into(),
        server_url: "http://127.0.0.1:3002".into(),
        enrolled_at_ms: 1,
    }
}

#[test]
fn a_new_state_is_private_versioned_and_keeps_its_identity() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let (db, interrupted) = StateDb::open(&state_dir).unwrap();
    assert_eq!(interrupted, 0);
    assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len() as u32);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state_dir), 0o700);
    assert_eq!(mode(&state_dir.join(DB_FILE)), 0o600);
    assert!(db.identity().unwrap().is_none());
    db.set_identity(&identity(), None).unwrap();
    drop(db);
    let (db, _) = StateDb::open(&state_dir).unwrap();
    let back = db.identity().unwrap().unwrap();
    assert_eq!(back, identity());
    assert!(
        !format!("{back:?}").contains("mfth_secret"),
        "the key never prints"
    );
}

#[test]
fn an_open_directory_or_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = StateDb::open(dir.path()).err().unwrap();
    assert_eq!(err.code(), "insecure_permissions");

    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    drop(StateDb::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let err = StateDb::open(dir.path()).err().unwrap();
    assert_eq!(err.code(), "state_too_new", "{err}");
}

#[test]
fn a_nonce_is_burnt_only_together_with_its_authorization() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = StateDb::open(&dir.path().join("s")).unwrap();
    let mut store = db.authorizing("op_1", "{blob}", 10);
    assert!(!store.is_seen("n1").unwrap());
    store.record("n1", 100, 5).unwrap();
    assert!(store.is_seen("n1").unwrap());
    let op = db.op("op_1").unwrap().unwrap();
    assert_eq!(op.state, OpState::Authorized);
    assert_eq!(op.blob, "{blob}");
    // The same nonce for another op: refused, and that op is not authorized.
    let mut other = db.authorizing("op_2", "{other}", 11);
    assert!(matches!(
        other.record("n1", 100, 6),
        Err(NonceStoreError::AlreadySeen)
    ));
    assert!(db.op("op_2").unwrap().is_none());
}

#[test]
fn ops_move_only_from_the_states_given() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = StateDb::open(&dir.path().join("s")).unwrap();
    db.authorizing("op_1", "{}", 1).record("n", 100, 1).unwrap();
    assert!(!db
        .set_op_state("op_1", &[OpState::Executed], OpState::Acked, None, 2)
        .unwrap());
    let result = serde_json::json!({"removed": "web"});
    assert!(db
        .set_op_state(
            "op_1",
            &[OpState::Authorized],
            OpState::Executed,
            Some(&result),
            2
        )
        .unwrap());
    assert!(db
        .set_op_state("op_1", &[OpState::Executed], OpState::Acked, None, 3)
        .unwrap());
    assert_eq!(
        db.ops_in(&[OpState::Acked]).unwrap()[0].result,
        Some(result)
    );
    // A desired state fetched after the ack settles it.
    db.store_desired(4, &DesiredState::default(), 4).unwrap();
    assert_eq!(db.op("op_1").unwrap().unwrap().state, OpState::Settled);
    assert_eq!(db.desired().unwrap().0, 4);
}

#[test]
fn steps_left_begun_by_a_crash_are_marked_interrupted_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = StateDb::open(&dir.path().join("s")).unwrap();
    let done = db.journal_begin(1, "web", "create", None, 1).unwrap();
    db.journal_finish(done, true, None, 2).unwrap();
    db.journal_begin(1, "web", "start", None, 3).unwrap();
    drop(db);
    let (db, interrupted) = StateDb::open(&dir.path().join("s")).unwrap();
    assert_eq!(interrupted, 1);
    let states: Vec<String> = db
        .journal(10)
        .unwrap()
        .into_iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(states, ["interrupted", "done"]);
}
