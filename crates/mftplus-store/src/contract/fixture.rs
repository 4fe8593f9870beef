//! The database an upgrade test starts from (`docs/upgrading.md`). [`write`] fills a store
//! through the [`Store`] trait with rows of every kind the schema holds (users, keys, tokens,
//! the audit chain, transfers with chunks, the fleet, hubs, certificates), at fixed ids and
//! times; [`check`] reads them back and panics naming any row a later release lost or misreads.
//!
//! `scripts/make-upgrade-fixtures.sh <version>` runs `write` with a release's code and keeps the
//! database under `testdata/upgrade/<version>/`; every later release opens those files with its
//! own migrations, runs `check`, then [`run_all`](super::run_all) on them. `check` must keep
//! passing on the fixtures of every earlier release: when `write` grows, give `check` the
//! fixture's release (from its `manifest.json`) and check the new rows only from that release
//! on. Times are in 2026 (sections of the contract write far earlier or far later), so the
//! contract's global sweeps leave these rows alone or only add to them.

use mftplus_crypto::sha256_hex;
use serde_json::json;

use super::fixture_check::check_all;
use crate::{
    CertSubjectKind, CertificateRow, ChunkBatch, CustomerUpdate, DesiredEdit, GuestReality,
    HubHeartbeat, HubRegistration, HubValidation, NewApiKey, NewAuditEntry, NewChunk, NewCustomer,
    NewDeployKey, NewEvent, NewGuest, NewGuestReport, NewHost, NewHostReport, NewNotificationLog,
    NewRecipient, NewSignedOp, NewTransfer, NewUser, OpTransition, Store, TokenRow, UserKeyRow,
    UserUpdate,
};

/// 2026-01-01T00:00:00Z, the fixture's clock (ms); certificates count in seconds from
/// [`AT_S`].
pub const AT: i64 = 1_767_225_600_000;
pub const AT_S: i64 = AT / 1_000;
pub(super) const DAY: i64 = 86_400_000;

pub(super) const ADMIN: &str = "usr-fx-admin";
pub(super) const ADMIN_EMAIL: &str = "admin@fixture.example";
pub(super) const OPERATOR: &str = "usr-fx-operator";
pub(super) const OPERATOR_EMAIL: &str = "operator@fixture.example";
pub(super) const SERVICE: &str = "usr-fx-service";
pub(super) const GONE: &str = "usr-fx-gone";
pub(super) const PASSWORD_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$Zml4dHVyZS1zYWx0$0Uy0r5FhXCTf1mc3kvRk7cZQeJt1Q6kVtm2tq5zZ0nA";

pub(super) const KEY_ADMIN: &str = "key-fx-admin";
pub(super) const KEY_OLD: &str = "key-fx-old";
pub(super) const KEY_NEW: &str = "key-fx-new";
pub(super) const KEY_GONE: &str = "key-fx-gone";

pub(super) const JTI_ACCESS: &str = "jti-fx-access";
pub(super) const JTI_REFRESH: &str = "jti-fx-refresh";
pub(super) const JTI_REFRESHED: &str = "jti-fx-refreshed";
pub(super) const JTI_SESSION: &str = "jti-fx-session";
pub(super) const JTI_REVOKED: &str = "jti-fx-revoked";
pub(super) const JTI_GONE: &str = "jti-fx-gone";

pub(super) const T_COMPLETE: &str = "trf-fx-complete";
pub(super) const T_UPLOADING: &str = "trf-fx-uploading";
pub(super) const T_CANCELLED: &str = "trf-fx-cancelled";
pub(super) const T_SITE: &str = "trf-fx-site";
pub(super) const AGENT: &str = "agt-fx-1";
/// Stream header bytes, not UTF-8 on purpose: a BLOB must come back byte for byte.
pub(super) const HEADER: &[u8] = b"MFTS\x00\x01\xfe\xff fixture stream header";
pub(super) const MANIFEST: &[u8] = b"\x00sealed manifest\xff";
pub(super) const CHUNK_SIZE: i64 = 65_536;

pub(super) const ACME: &str = "cus-fx-acme";
pub(super) const BLOCKED: &str = "cus-fx-blocked";
pub(super) const HOST: &str = "hst-fx-1";
pub(super) const GUEST: &str = "gst-fx-1";
pub(super) const OP_DONE: &str = "op-fx-done";
pub(super) const OP_PENDING: &str = "op-fx-pending";
pub(super) const HOST_REPORT_KEY: &str = "idem-fx-host-1";
pub(super) const GUEST_REPORT_KEY: &str = "idem-fx-guest-1";
pub(super) const LEASE: &str = "fleet-checker";
pub(super) const LEASE_HOLDER: &str = "cloud-fx-1";
pub(super) const NOTIFY_KEY: &str = "fx:host_down:hst-fx-1";

pub(super) const DEPLOY_KEY: &str = "dep-fx-1";
pub(super) const DEPLOY_KEY_OLD: &str = "dep-fx-old";
pub(super) const HUB: &str = "hub-fx-1";
pub(super) const HUB_HOSTNAME: &str = "hub.acme.fixture.example";

pub(super) const CERT_HOST: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
pub(super) const CERT_HUB: &str = "1f2e3d4c5b6a79889796a5b4c3d2e1f0";
pub(super) const CERT_OLD: &str = "2f3e4d5c6b7a89989796a5b4c3d2e1f0";

/// Writes the fixture into an empty, migrated store. Panics on any refusal: the fixture is
/// made once per release, by hand, and must be whole.
pub async fn write(store: &dyn Store) {
    store
        .migrate()
        .await
        .expect("migrate before writing the fixture");
    write_identity(store).await;
    write_tokens(store).await;
    write_audit(store).await;
    write_hubs(store).await;
    write_transfers(store).await;
    write_fleet(store).await;
    write_fleet_jobs(store).await;
    write_certificates(store).await;
}

/// Reads the fixture back: every row [`write`] made, as it made it. Assumes only the
/// fixture's rows were written so far (run it before the contract).
pub async fn check(store: &dyn Store) {
    check_all(store).await;
}

pub(super) fn new_user(id: &str, email: &str, role: &str, at_ms: i64) -> NewUser {
    NewUser {
        id: id.into(),
        email: email.into(),
        name: format!("Fixture {id}"),
        role: role.into(),
        user_type: "user".into(),
        password_hash: Some(PASSWORD_HASH.into()),
        created_at_ms: at_ms,
    }
}

pub(super) fn key_hash(id: &str) -> String {
    sha256_hex(format!("mftpk_secret_of_{id}").as_bytes())
}

fn api_key(id: &str, owner: &str, role: &str, at_ms: i64) -> NewApiKey {
    NewApiKey {
        id: id.into(),
        name: format!("fixture key {id}"),
        key_hash: key_hash(id),
        prefix: format!("mftpk_{}", &id[7..]),
        role: role.into(),
        owner_id: owner.into(),
        created_at_ms: at_ms,
        expires_at_ms: Some(at_ms + 90 * DAY),
        replaces: None,
    }
}

async fn write_identity(store: &dyn Store) {
    for user in [
        new_user(ADMIN, ADMIN_EMAIL, "admin", AT),
        new_user(OPERATOR, OPERATOR_EMAIL, "viewer", AT + 1),
        NewUser {
            user_type: "service".into(),
            password_hash: None,
            ..new_user(SERVICE, "backup-robot@fixture.example", "operator", AT + 2)
        },
        new_user(GONE, "former@fixture.example", "viewer", AT + 3),
    ] {
        store.create_user(&user).await.expect("fixture user");
    }
    store.record_login(ADMIN, AT + 100).await.unwrap();
    let promotion = UserUpdate {
        name: Some("Olga Operátor".into()),
        role: Some("operator".into()),
        password_hash: None,
        updated_at_ms: AT + 200,
    };
    store.update_user(OPERATOR, &promotion).await.unwrap();

    let admin_key = NewApiKey {
        expires_at_ms: None,
        ..api_key(KEY_ADMIN, ADMIN, "admin", AT + 10)
    };
    store.create_api_key(&admin_key).await.unwrap();
    store
        .touch_api_keys(&[(KEY_ADMIN.into(), AT + 20_000)])
        .await
        .unwrap();
    let old = api_key(KEY_OLD, OPERATOR, "operator", AT + 11);
    store.create_api_key(&old).await.unwrap();
    let new = NewApiKey {
        replaces: Some(KEY_OLD.into()),
        ..api_key(KEY_NEW, OPERATOR, "operator", AT + 30_000)
    };
    store
        .rotate_api_key(KEY_OLD, &new, AT + 30_000)
        .await
        .unwrap();
    let gone = api_key(KEY_GONE, GONE, "viewer", AT + 12);
    store.create_api_key(&gone).await.unwrap();

    for (user, key, at) in [
        (ADMIN, "mftx25519_fixture_admin_first", AT + 50),
        (ADMIN, "mftx25519_fixture_admin_second", AT + 60),
        (OPERATOR, "mftx25519_fixture_operator", AT + 70),
    ] {
        let row = UserKeyRow {
            user_id: user.into(),
            public_key: key.into(),
            fingerprint: sha256_hex(key.as_bytes())[..16].to_string(),
            created_at_ms: at,
            updated_at_ms: at,
        };
        store.put_user_key(&row).await.unwrap();
    }
}

pub(super) fn token(jti: &str, user: &str, kind: &str, via: &str, issued: i64) -> TokenRow {
    TokenRow {
        jti: jti.into(),
        user_id: user.into(),
        kind: kind.into(),
        role: if user == ADMIN { "admin" } else { "operator" }.into(),
        family_id: format!("fam-{user}"),
        created_via: via.into(),
        issued_at_ms: issued,
        expires_at_ms: issued + 30 * DAY,
        revoked_at_ms: None,
        used_at_ms: None,
    }
}

/// After the users: deleting `GONE` revokes its key and token.
async fn write_tokens(store: &dyn Store) {
    for row in [
        token(JTI_ACCESS, ADMIN, "access", "login", AT + 100),
        token(JTI_REFRESH, ADMIN, "refresh", "login", AT + 100),
        token(JTI_REFRESHED, ADMIN, "refresh", "refresh", AT + 1_000),
        token(JTI_SESSION, ADMIN, "session", "login", AT + 1_100),
        token(JTI_REVOKED, OPERATOR, "access", "admin", AT + 1_200),
        token(JTI_GONE, GONE, "access", "login", AT + 1_300),
    ] {
        store.insert_token(&row).await.expect("fixture token");
    }
    assert!(store
        .mark_refresh_used(JTI_REFRESH, AT + 1_000)
        .await
        .unwrap());
    assert!(store.touch_token(JTI_SESSION, AT + 1_500).await.unwrap());
    assert!(store.revoke_token(JTI_REVOKED, AT + 2_000).await.unwrap());
    store.delete_user(GONE, AT + 40_000).await.unwrap();
}

/// The audit entries, in append order. Details exercise what canonical JSON must keep exact.
pub(super) fn audit_entries() -> Vec<NewAuditEntry> {
    let entry = |offset: i64, event: &str, target: &str, details| NewAuditEntry {
        ts_ms: AT + offset,
        event: event.into(),
        actor: ADMIN_EMAIL.into(),
        target: target.into(),
        outcome: "success".into(),
        client_ip: "192.0.2.10".into(),
        details,
    };
    vec![
        entry(
            0,
            "user.create",
            "user:usr-fx-admin",
            json!({"role": "admin"}),
        ),
        entry(100, "user.login", "user:usr-fx-admin", json!({})),
        entry(
            200,
            "user.update",
            "user:usr-fx-operator",
            json!({"name": "Olga Operátor ✓", "role": {"from": "viewer", "to": "operator"}}),
        ),
        entry(
            30_000,
            "apikey.rotate",
            "apikey:key-fx-old",
            json!({"ratio": 0.1, "tiny": 1e-7, "big": 12_345_678_901_234_567_u64, "neg": -3}),
        ),
        NewAuditEntry {
            outcome: "denied".into(),
            client_ip: "2001:db8::7".into(),
            ..entry(
                31_000,
                "user.delete",
                "user:usr-fx-gone",
                json!({"reason": "line\nbreak \"quoted\" \\ back", "list": [1, null, true]}),
            )
        },
    ]
}

async fn write_audit(store: &dyn Store) {
    for entry in audit_entries() {
        store
            .append_audit(&entry)
            .await
            .expect("fixture audit entry");
    }
}

pub(super) fn recipient(kind: &str, id: &str) -> NewRecipient {
    NewRecipient {
        kind: kind.into(),
        id: id.into(),
        display: format!("{kind} {id}"),
        awaiting_grant: false,
    }
}

pub(super) fn chunk(idx: i64, size: i64, last: bool, at_ms: i64) -> NewChunk {
    NewChunk {
        idx,
        size,
        sha256: sha256_hex(format!("fixture chunk {idx} of {size}").as_bytes()),
        last,
        stored_at_ms: at_ms,
        data: None,
    }
}

pub(super) fn transfer(
    id: &str,
    sender: &str,
    at_ms: i64,
    recipients: Vec<NewRecipient>,
) -> NewTransfer {
    NewTransfer {
        id: id.into(),
        sender_kind: "user".into(),
        sender_id: sender.into(),
        header: HEADER.to_vec(),
        chunk_size: CHUNK_SIZE,
        created_at_ms: at_ms,
        expires_at_ms: at_ms + 30 * DAY,
        site: None,
        recipients,
    }
}

/// The complete transfer's chunks: two full ones and a short last one.
pub(super) fn complete_chunks() -> Vec<NewChunk> {
    vec![
        chunk(0, CHUNK_SIZE + 16, false, AT + 3_100),
        chunk(1, CHUNK_SIZE + 16, false, AT + 3_100),
        chunk(2, 1_016, true, AT + 3_200),
    ]
}

/// After the hubs: the site transfer names one.
async fn write_transfers(store: &dyn Store) {
    let complete = transfer(
        T_COMPLETE,
        ADMIN,
        AT + 3_000,
        vec![recipient("user", OPERATOR), recipient("agent", AGENT)],
    );
    store
        .create_transfer(&complete)
        .await
        .expect("fixture transfer");
    let chunks = complete_chunks();
    store.record_chunks(T_COMPLETE, &chunks[..2]).await.unwrap();
    let batch = ChunkBatch {
        transfer_id: T_COMPLETE.into(),
        chunks: chunks[2..].to_vec(),
    };
    for outcome in store.record_chunk_batches(&[batch]).await.unwrap() {
        outcome.expect("fixture chunk batch");
    }
    store
        .complete_transfer(T_COMPLETE, MANIFEST, AT + 4_000)
        .await
        .unwrap();
    store
        .mark_downloaded(T_COMPLETE, "user", OPERATOR, AT + 5_000)
        .await
        .unwrap();

    let uploading = transfer(
        T_UPLOADING,
        OPERATOR,
        AT + 3_300,
        vec![recipient("user", ADMIN)],
    );
    store.create_transfer(&uploading).await.unwrap();
    store
        .record_chunks(T_UPLOADING, &[chunk(0, CHUNK_SIZE + 16, false, AT + 3_400)])
        .await
        .unwrap();
    let cancelled = transfer(
        T_CANCELLED,
        OPERATOR,
        AT + 3_500,
        vec![recipient("user", ADMIN)],
    );
    store.create_transfer(&cancelled).await.unwrap();
    assert!(store
        .cancel_transfer(T_CANCELLED, AT + 6_000)
        .await
        .unwrap());
    let site = NewTransfer {
        site: Some(HUB.into()),
        ..transfer(T_SITE, ADMIN, AT + 3_600, vec![recipient("agent", AGENT)])
    };
    store.create_transfer(&site).await.unwrap();
}

pub(super) fn desired(generation: u32) -> String {
    let guests = if generation == 0 {
        json!({})
    } else {
        json!({GUEST: {"spec": guest_spec(), "run_state": "running"}})
    };
    json!({
        "guests": guests,
        "storage": {"disk-1": {"role": "bulk", "class": "slow", "backup": "daily"}},
        "versions": {"controller": "0.1.0"},
    })
    .to_string()
}

pub(super) fn guest_spec() -> serde_json::Value {
    json!({"kind": "container", "cpu_cores": 2, "memory_mb": 2048, "disk_gb": 40, "image": "mftplus/files:0.1.0"})
}

pub(super) fn fleet_event(at_ms: i64, kind: &str) -> NewEvent {
    NewEvent {
        at_ms,
        kind: kind.into(),
        severity: "info".into(),
        customer_id: Some(ACME.into()),
        host_id: Some(HOST.into()),
        guest_id: None,
        op_id: None,
        details_json: json!({"fixture": kind}).to_string(),
    }
}

fn op(id: &str, at_ms: i64) -> NewSignedOp {
    NewSignedOp {
        id: id.into(),
        customer_id: ACME.into(),
        host_id: HOST.into(),
        guest_id: Some(GUEST.into()),
        op_type: "guest.restart".into(),
        op_blob: json!({"op_id": id, "type": "guest.restart", "host_id": HOST, "guest_id": GUEST})
            .to_string(),
        nonce: format!("nonce-{id}"),
        issued_at_ms: at_ms,
        expires_at_ms: at_ms + 365 * DAY,
        created_by: ADMIN_EMAIL.into(),
    }
}

pub(super) fn step(op_id: &str, from: &str, to: &str, at_ms: i64) -> OpTransition {
    OpTransition {
        op_id: op_id.into(),
        from: vec![from.into()],
        to: to.into(),
        signature: None,
        result_json: None,
        desired_after: None,
        guest_specs: Vec::new(),
        at_ms,
        event: fleet_event(at_ms, &format!("op_{to}")),
    }
}

async fn write_fleet(store: &dyn Store) {
    let customer = |id: &str, name: &str, at_ms| NewCustomer {
        id: id.into(),
        name: name.into(),
        email: format!("it@{id}.fixture.example"),
        domain: Some(format!("{id}.fixture.example")),
        locale: "hu".into(),
        retrieval_password_hash: PASSWORD_HASH.into(),
        config_json: json!({"backup": {"retention_days": 30}}).to_string(),
        created_at_ms: at_ms,
    };
    store
        .create_customer(&customer(ACME, "Acme Kft.", AT + 7_000))
        .await
        .unwrap();
    store
        .create_customer(&customer(BLOCKED, "Late Payer Bt.", AT + 7_001))
        .await
        .unwrap();
    let block = CustomerUpdate {
        status: Some("blocked".into()),
        domain: Some(None),
        updated_at_ms: AT + 7_100,
        ..CustomerUpdate::default()
    };
    store.update_customer(BLOCKED, &block).await.unwrap();

    let host = NewHost {
        id: HOST.into(),
        customer_id: ACME.into(),
        key_hash: sha256_hex(b"mfth_fixture_host_key"),
        hostname: "pve1.acme.fixture.example".into(),
        platform: Some("proxmox".into()),
        agent_version: "0.1.0".into(),
        desired_json: desired(0),
        enrolled_at_ms: AT + 8_000,
    };
    store.create_host(&host, 10).await.expect("fixture host");
    let guest = NewGuest {
        id: GUEST.into(),
        customer_id: ACME.into(),
        host_id: HOST.into(),
        key_hash: sha256_hex(b"mftg_fixture_guest_key"),
        display_name: "files.acme".into(),
        created_at_ms: AT + 8_100,
    };
    store.create_guest(&guest).await.unwrap();

    let edit = DesiredEdit {
        host_id: HOST.into(),
        expected_generation: Some(0),
        desired_json: Some(desired(1)),
        ops: vec![op(OP_DONE, AT + 9_000), op(OP_PENDING, AT + 9_001)],
        events: vec![fleet_event(AT + 9_000, "desired_published")],
        guest_specs: vec![(GUEST.into(), Some(guest_spec().to_string()))],
        at_ms: AT + 9_000,
    };
    store.apply_desired_edit(&edit).await.expect("fixture edit");
    let signed = OpTransition {
        signature: Some(
            "-----BEGIN SSH SIGNATURE-----\nfixture\n-----END SSH SIGNATURE-----".into(),
        ),
        ..step(OP_DONE, "pending_signature", "signed", AT + 9_100)
    };
    store.transition_op(&signed).await.unwrap();
    let delivered = store.deliver_ops(HOST, AT + 9_200).await.unwrap();
    assert_eq!(delivered.len(), 1, "the signed op is delivered");
    let executed = OpTransition {
        result_json: Some(json!({"ok": true, "took_ms": 1234}).to_string()),
        desired_after: Some(desired(2)),
        guest_specs: vec![(GUEST.into(), Some(guest_spec().to_string()))],
        ..step(OP_DONE, "delivered", "executed", AT + 9_300)
    };
    store.transition_op(&executed).await.unwrap();
    write_reports(store).await;
}

pub(super) fn host_report() -> NewHostReport {
    NewHostReport {
        host_id: HOST.into(),
        customer_id: ACME.into(),
        received_at_ms: AT + 10_000,
        agent_version: "0.1.0".into(),
        controller_version: Some("0.1.0".into()),
        applied_generation: 2,
        cpu_percent: 12.5,
        memory_used_bytes: 3 << 30,
        memory_total_bytes: 16 << 30,
        disk_used_bytes: 200 << 30,
        disk_total_bytes: 1 << 40,
        guests_total: 1,
        guests_running: 1,
        last_backups_json: json!([{"durable_id": "disk-1", "at_ms": AT + 9_500}]).to_string(),
        pending_signature_json: json!([{"change": "guest.remove", "guest_id": "gst-old"}])
            .to_string(),
        report_json: json!({"host_id": HOST, "agent_version": "0.1.0", "applied_generation": 2})
            .to_string(),
        poll_interval_seconds: 300,
        guests: vec![GuestReality {
            guest_id: GUEST.into(),
            status: "running".into(),
            controller_version: Some("0.1.0".into()),
        }],
        idempotency_key: Some(HOST_REPORT_KEY.into()),
    }
}

pub(super) fn guest_report() -> NewGuestReport {
    NewGuestReport {
        guest_id: GUEST.into(),
        host_id: HOST.into(),
        customer_id: ACME.into(),
        received_at_ms: AT + 10_100,
        controller_version: Some("0.1.0".into()),
        cpu_percent: Some(3.25),
        memory_used_bytes: Some(512 << 20),
        memory_total_bytes: Some(2 << 30),
        report_json: json!({"guest_id": GUEST, "services": ["sftp"]}).to_string(),
        idempotency_key: Some(GUEST_REPORT_KEY.into()),
    }
}

async fn write_reports(store: &dyn Store) {
    for ack in store.ingest_host_reports(&[host_report()]).await.unwrap() {
        ack.expect("fixture host report");
    }
    for ack in store.ingest_guest_reports(&[guest_report()]).await.unwrap() {
        ack.expect("fixture guest report");
    }
}

async fn write_fleet_jobs(store: &dyn Store) {
    store
        .set_recovery_mode(HOST, Some(AT + 3_600_000))
        .await
        .unwrap();
    store
        .put_escrow(
            HOST,
            "ns-fx-acme",
            "fp-fx-repository",
            "wrapped-fx-key",
            AT + 11_000,
        )
        .await
        .unwrap();
    let missed = [fleet_event(AT + 11_500, "backup_missed")];
    store
        .set_backup_missed(HOST, r#"["disk-1"]"#, &missed)
        .await
        .unwrap();
    store
        .append_events(&[fleet_event(AT + 11_600, "host_enrolled")])
        .await
        .unwrap();
    assert!(store
        .try_acquire_lease(LEASE, LEASE_HOLDER, AT + 12_000, 60_000)
        .await
        .unwrap());
    assert!(store
        .claim_notification(NOTIFY_KEY, Some(ACME), AT + 12_000, 3_600_000, false)
        .await
        .unwrap());
    let entry = NewNotificationLog {
        at_ms: AT + 12_001,
        event_id: None,
        customer_id: Some(ACME.into()),
        tier: "customer".into(),
        channel: "email".into(),
        recipient: "it@cus-fx-acme.fixture.example".into(),
        status: "sent".into(),
        error: None,
    };
    store.log_notification(&entry).await.unwrap();
}

pub(super) fn deploy_key(id: &str, label: &str, at_ms: i64) -> NewDeployKey {
    NewDeployKey {
        id: id.into(),
        label: label.into(),
        key_hash: sha256_hex(format!("mft_dep_secret_of_{id}").as_bytes()),
        prefix: format!("mft_dep_{}", &id[7..]),
        created_by: ADMIN_EMAIL.into(),
        created_at_ms: at_ms,
    }
}

async fn write_hubs(store: &dyn Store) {
    store
        .create_deploy_key(&deploy_key(DEPLOY_KEY, "acme site", AT + 13_000))
        .await
        .unwrap();
    store
        .create_deploy_key(&deploy_key(DEPLOY_KEY_OLD, "lost laptop", AT + 13_001))
        .await
        .unwrap();
    assert!(store
        .revoke_deploy_key(DEPLOY_KEY_OLD, AT + 13_500)
        .await
        .unwrap());
    let registration = HubRegistration {
        new_id: HUB.into(),
        deploy_key_id: DEPLOY_KEY.into(),
        hostname: HUB_HOSTNAME.into(),
        hub_version: "0.1.0".into(),
        platform: "linux-x86_64".into(),
        license_mode: "evaluation".into(),
        at_ms: AT + 14_000,
    };
    store
        .register_hub(&registration)
        .await
        .expect("fixture hub");
    let validation = HubValidation {
        hub_version: "0.1.0".into(),
        platform: "linux-x86_64".into(),
        license_mode: "enterprise".into(),
        at_ms: AT + 15_000,
    };
    store.validate_hub(HUB, &validation).await.unwrap();
    let heartbeat = HubHeartbeat {
        hub_version: "0.1.0".into(),
        healthy: false,
        issues_json: r#"["cloud_slow"]"#.into(),
        at_ms: AT + 16_000,
    };
    store.record_hub_heartbeat(HUB, &heartbeat).await.unwrap();
    store
        .note_user_site(ADMIN, Some(HUB), AT + 17_000)
        .await
        .unwrap();
    store
        .note_user_site(OPERATOR, None, AT + 17_100)
        .await
        .unwrap();
}

pub(super) fn certificate(serial: &str, kind: CertSubjectKind, subject: &str) -> CertificateRow {
    CertificateRow {
        serial: serial.into(),
        subject_kind: kind,
        subject_id: subject.into(),
        fingerprint: sha256_hex(serial.as_bytes()),
        not_before: AT_S - 60,
        not_after: AT_S + 90 * 86_400,
        issued_at: AT_S,
        issued_by: format!("{}:{subject}", kind.as_str()),
        revoked_at: None,
        revoked_reason: None,
    }
}

async fn write_certificates(store: &dyn Store) {
    let old = CertificateRow {
        issued_at: AT_S - 10,
        ..certificate(CERT_OLD, CertSubjectKind::Host, HOST)
    };
    for row in [
        old,
        certificate(CERT_HOST, CertSubjectKind::Host, HOST),
        CertificateRow {
            issued_at: AT_S + 10,
            issued_by: ADMIN_EMAIL.into(),
            ..certificate(CERT_HUB, CertSubjectKind::Hub, HUB)
        },
    ] {
        store
            .insert_certificate(&row)
            .await
            .expect("fixture certificate");
    }
    assert!(store
        .revoke_certificate(CERT_OLD, AT_S + 100, "superseded")
        .await
        .unwrap());
}
