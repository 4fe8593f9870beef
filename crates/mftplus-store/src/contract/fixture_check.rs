//! [`super::fixture::check`]: the fixture's rows, read back through the [`Store`] trait. Each
//! assertion names the row, so a failure after an upgrade says what the migration lost.

use super::audit::verify;
use super::fixture::*;
use crate::{
    transfer_status, CertSubjectKind, ChunkRow, EventFilter, HubRegistration, OpFilter, Store,
    TransferFilter, TransferParty, TransferRow,
};

pub(super) async fn check_all(store: &dyn Store) {
    check_users(store).await;
    check_api_keys(store).await;
    check_tokens(store).await;
    check_audit(store).await;
    check_transfers(store).await;
    check_sites(store).await;
    check_customers(store).await;
    check_hosts_and_guests(store).await;
    check_reports(store).await;
    check_ops_and_events(store).await;
    check_fleet_jobs(store).await;
    check_hubs(store).await;
    check_certificates(store).await;
}

async fn check_users(store: &dyn Store) {
    let emails: Vec<String> = store
        .list_users()
        .await
        .expect("list_users")
        .into_iter()
        .map(|user| user.email)
        .collect();
    assert_eq!(
        emails,
        [ADMIN_EMAIL, "backup-robot@fixture.example", OPERATOR_EMAIL],
        "the fixture's users, by email (the deleted one gone)"
    );
    let admin = store.get_user(ADMIN).await.unwrap().expect("fixture admin");
    assert_eq!(
        (
            admin.email.as_str(),
            admin.role.as_str(),
            admin.user_type.as_str()
        ),
        (ADMIN_EMAIL, "admin", "user")
    );
    assert_eq!(admin.password_hash.as_deref(), Some(PASSWORD_HASH));
    assert_eq!(
        (
            admin.created_at_ms,
            admin.updated_at_ms,
            admin.last_login_at_ms
        ),
        (AT, AT, Some(AT + 100))
    );
    let operator = store
        .get_user_by_email(&OPERATOR_EMAIL.to_uppercase())
        .await
        .unwrap()
        .expect("fixture operator, by email in any case");
    assert_eq!(operator.id, OPERATOR);
    assert_eq!(
        (operator.name.as_str(), operator.role.as_str()),
        ("Olga Operátor", "operator"),
        "the operator's update"
    );
    assert_eq!(
        (operator.created_at_ms, operator.updated_at_ms),
        (AT + 1, AT + 200)
    );
    let service = store
        .get_user(SERVICE)
        .await
        .unwrap()
        .expect("service user");
    assert_eq!(
        (service.user_type.as_str(), service.password_hash),
        ("service", None)
    );
    assert_eq!(
        store.get_user(GONE).await.unwrap(),
        None,
        "the deleted user"
    );
    let key = store
        .get_user_key(ADMIN)
        .await
        .unwrap()
        .expect("admin's public key");
    assert_eq!(key.public_key, "mftx25519_fixture_admin_second");
    assert_eq!(
        (key.created_at_ms, key.updated_at_ms),
        (AT + 50, AT + 60),
        "a replaced key keeps its first creation time"
    );
    assert!(store.get_user_key(OPERATOR).await.unwrap().is_some());
}

async fn check_api_keys(store: &dyn Store) {
    let admin = store
        .get_api_key_by_hash(&key_hash(KEY_ADMIN))
        .await
        .unwrap()
        .expect("the admin's key, by hash");
    assert_eq!(
        (
            admin.id.as_str(),
            admin.owner_id.as_str(),
            admin.role.as_str()
        ),
        (KEY_ADMIN, ADMIN, "admin")
    );
    assert_eq!(admin.prefix, "mftpk_admin");
    assert_eq!(
        (
            admin.expires_at_ms,
            admin.last_used_at_ms,
            admin.revoked_at_ms
        ),
        (None, Some(AT + 20_000), None)
    );
    let revoked_at = |id: &'static str| async move {
        store
            .get_api_key(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("API key {id}"))
            .revoked_at_ms
    };
    assert_eq!(revoked_at(KEY_OLD).await, Some(AT + 30_000), "rotated out");
    assert_eq!(revoked_at(KEY_NEW).await, None, "rotated in");
    assert_eq!(
        revoked_at(KEY_GONE).await,
        Some(AT + 40_000),
        "revoked with its owner"
    );
    let operator: Vec<(String, Option<String>, Option<i64>)> = store
        .list_api_keys(Some(OPERATOR))
        .await
        .unwrap()
        .into_iter()
        .map(|key| (key.id, key.replaces, key.expires_at_ms))
        .collect();
    assert_eq!(
        operator,
        [
            (
                KEY_NEW.to_string(),
                Some(KEY_OLD.to_string()),
                Some(AT + 30_000 + 90 * DAY)
            ),
            (KEY_OLD.to_string(), None, Some(AT + 11 + 90 * DAY)),
        ],
        "the operator's keys, newest first, the new one naming the old"
    );
}

async fn check_tokens(store: &dyn Store) {
    let get = |jti: &'static str| async move {
        store
            .get_token(jti)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("token {jti}"))
    };
    let access = get(JTI_ACCESS).await;
    assert_eq!(
        access,
        token(JTI_ACCESS, ADMIN, "access", "login", AT + 100)
    );
    assert_eq!(get(JTI_REFRESH).await.used_at_ms, Some(AT + 1_000));
    assert_eq!(get(JTI_SESSION).await.used_at_ms, Some(AT + 1_500));
    assert_eq!(get(JTI_REVOKED).await.revoked_at_ms, Some(AT + 2_000));
    assert_eq!(get(JTI_GONE).await.revoked_at_ms, Some(AT + 40_000));
    let mut active: Vec<String> = store
        .list_active_tokens(Some(ADMIN), AT + 2_000)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.jti)
        .collect();
    active.sort();
    assert_eq!(
        active,
        [JTI_ACCESS, JTI_REFRESH, JTI_REFRESHED, JTI_SESSION],
        "the admin's active tokens"
    );
    assert!(
        !store
            .mark_refresh_used(JTI_REFRESH, AT + 3_000)
            .await
            .unwrap(),
        "a refresh token used before the upgrade is still used (a replay is caught)"
    );
}

async fn check_audit(store: &dyn Store) {
    let rows = store.list_audit(0, 100).await.expect("list_audit");
    let expected = audit_entries();
    assert_eq!(rows.len(), expected.len(), "the fixture's audit entries");
    for (index, (row, input)) in rows.iter().zip(&expected).enumerate() {
        assert_eq!(row.seq, index as i64 + 1);
        assert_eq!(
            (row.ts_ms, &row.event, &row.actor, &row.target),
            (input.ts_ms, &input.event, &input.actor, &input.target),
            "audit entry {}",
            row.seq
        );
        assert_eq!(
            (&row.outcome, &row.client_ip, &row.details),
            (&input.outcome, &input.client_ip, &input.details),
            "audit entry {}",
            row.seq
        );
        assert_eq!(
            row.hash,
            input.chain_hash(row.seq, &row.prev_hash),
            "audit entry {} hashes as it did",
            row.seq
        );
    }
    verify(&rows);
}

async fn transfer(store: &dyn Store, id: &str) -> TransferRow {
    store
        .get_transfer(id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("transfer {id}"))
}

async fn check_transfers(store: &dyn Store) {
    let complete = transfer(store, T_COMPLETE).await;
    let chunks = complete_chunks();
    assert_eq!(complete.status, transfer_status::COMPLETE);
    assert_eq!(
        complete.sender_kind, "user",
        "a transfer from before hosts could send is a user's"
    );
    assert_eq!(
        (complete.header.as_slice(), complete.chunk_size),
        (HEADER, CHUNK_SIZE)
    );
    assert_eq!(complete.manifest.as_deref(), Some(MANIFEST));
    assert_eq!(complete.chunk_count, Some(chunks.len() as i64));
    assert_eq!(
        complete.ciphertext_bytes,
        chunks.iter().map(|chunk| chunk.size).sum::<i64>()
    );
    assert_eq!(
        (
            complete.created_at_ms,
            complete.completed_at_ms,
            complete.expires_at_ms
        ),
        (AT + 3_000, Some(AT + 4_000), AT + 3_000 + 30 * DAY)
    );
    let recipients: Vec<(&str, &str, &str, Option<i64>)> = complete
        .recipients
        .iter()
        .map(|r| {
            (
                r.kind.as_str(),
                r.id.as_str(),
                r.display.as_str(),
                r.downloaded_at_ms,
            )
        })
        .collect();
    assert_eq!(
        recipients,
        [
            ("agent", AGENT, "agent agt-fx-1", None),
            ("user", OPERATOR, "user usr-fx-operator", Some(AT + 5_000)),
        ]
    );
    let stored = store.list_chunks(T_COMPLETE).await.unwrap();
    let expected: Vec<ChunkRow> = chunks.iter().map(ChunkRow::from).collect();
    assert_eq!(stored, expected, "the complete transfer's chunks");
    assert_eq!(
        store.get_chunk(T_COMPLETE, 2).await.unwrap().as_ref(),
        expected.last()
    );

    let uploading = transfer(store, T_UPLOADING).await;
    assert_eq!(uploading.status, transfer_status::UPLOADING);
    assert_eq!(store.list_chunks(T_UPLOADING).await.unwrap().len(), 1);
    let cancelled = transfer(store, T_CANCELLED).await;
    assert_eq!(
        (cancelled.status.as_str(), cancelled.cancelled_at_ms),
        (transfer_status::CANCELLED, Some(AT + 6_000))
    );
    let listed: Vec<String> = store
        .list_transfers(&TransferFilter {
            visible_to: Some(TransferParty::User(ADMIN.into())),
            pending_for: None,
            limit: 10,
            ..TransferFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .collect();
    assert_eq!(
        listed,
        [T_SITE, T_CANCELLED, T_UPLOADING, T_COMPLETE],
        "the admin's transfers, newest first"
    );
}

async fn check_sites(store: &dyn Store) {
    assert_eq!(transfer(store, T_SITE).await.site.as_deref(), Some(HUB));
    let live = store
        .live_site_transfers(HUB, &[T_SITE.into(), T_COMPLETE.into()], AT + 20_000)
        .await
        .unwrap();
    assert_eq!(live, [T_SITE], "the hub's live site transfer");
    let mut sites: Vec<(String, Option<String>, i64)> = store
        .user_sites(&[ADMIN.into(), OPERATOR.into()])
        .await
        .unwrap()
        .into_iter()
        .map(|site| (site.user_id, site.hub_id, site.seen_at_ms))
        .collect();
    sites.sort();
    assert_eq!(
        sites,
        [
            (ADMIN.to_string(), Some(HUB.to_string()), AT + 17_000),
            (OPERATOR.to_string(), None, AT + 17_100),
        ]
    );
}

async fn check_customers(store: &dyn Store) {
    let ids: Vec<String> = store
        .list_customers()
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .collect();
    assert_eq!(ids, [ACME, BLOCKED]);
    let acme = store.get_customer(ACME).await.unwrap().expect("customer");
    assert_eq!(
        (
            acme.name.as_str(),
            acme.locale.as_str(),
            acme.status.as_str()
        ),
        ("Acme Kft.", "hu", "active")
    );
    assert_eq!(acme.config_json, r#"{"backup":{"retention_days":30}}"#);
    let blocked = store
        .get_customer(BLOCKED)
        .await
        .unwrap()
        .expect("customer");
    assert_eq!(
        (
            blocked.status.as_str(),
            blocked.domain,
            blocked.updated_at_ms
        ),
        ("blocked", None, AT + 7_100)
    );
}

async fn check_hosts_and_guests(store: &dyn Store) {
    let host = store
        .get_host_by_key_hash(&mftplus_crypto::sha256_hex(b"mfth_fixture_host_key"))
        .await
        .unwrap()
        .expect("the fixture host, by key hash");
    assert_eq!((host.id.as_str(), host.customer_id.as_str()), (HOST, ACME));
    assert_eq!(
        (host.desired_generation, host.desired_json.as_str()),
        (2, desired(2).as_str()),
        "intent: the executed op published generation 2"
    );
    assert_eq!(host.desired_updated_at_ms, AT + 9_300);
    assert_eq!(host.recovery_mode_until_ms, Some(AT + 3_600_000));
    let report = host_report();
    assert_eq!(
        (host.applied_generation, host.last_report_at_ms),
        (2, Some(AT + 10_000)),
        "reality from the report"
    );
    assert_eq!(host.last_backups_json, report.last_backups_json);
    assert_eq!(host.pending_signature_json, report.pending_signature_json);
    assert_eq!(host.controller_version.as_deref(), Some("0.1.0"));
    assert_eq!(
        (
            host.backup_namespace.as_deref(),
            host.repository_fingerprint.as_deref(),
            host.escrow.as_deref(),
            host.escrow_at_ms
        ),
        (
            Some("ns-fx-acme"),
            Some("fp-fx-repository"),
            Some("wrapped-fx-key"),
            Some(AT + 11_000)
        ),
        "the DR record"
    );
    assert_eq!(
        (host.liveness.as_str(), host.backup_missed_json.as_str()),
        ("ok", r#"["disk-1"]"#)
    );
    let guest = store
        .get_guest_by_key_hash(&mftplus_crypto::sha256_hex(b"mftg_fixture_guest_key"))
        .await
        .unwrap()
        .expect("the fixture guest, by key hash");
    assert_eq!((guest.id.as_str(), guest.host_id.as_str()), (GUEST, HOST));
    assert_eq!(guest.desired_spec_json, Some(guest_spec().to_string()));
    assert_eq!(
        (
            guest.status.as_str(),
            guest.last_seen_at_ms,
            guest.last_report_at_ms
        ),
        ("running", Some(AT + 10_000), Some(AT + 10_100))
    );
}

async fn check_reports(store: &dyn Store) {
    let hosts = store.list_host_reports(HOST, 10).await.unwrap();
    assert_eq!(hosts.len(), 1, "the fixture's host report");
    let report = host_report();
    assert_eq!(
        (
            hosts[0].received_at_ms,
            hosts[0].cpu_percent,
            &hosts[0].report_json
        ),
        (
            report.received_at_ms,
            report.cpu_percent,
            &report.report_json
        )
    );
    let guests = store.list_guest_reports(GUEST, 10).await.unwrap();
    assert_eq!(guests.len(), 1, "the fixture's guest report");
    assert_eq!(guests[0].cpu_percent, Some(3.25));

    // The idempotency keys survived: replaying the same reports stores nothing new.
    let acks = store.ingest_host_reports(&[report]).await.unwrap();
    let ack = acks[0].as_ref().expect("a replayed report is acknowledged");
    assert_eq!((ack.desired_generation, ack.blocked), (2, false));
    store.ingest_guest_reports(&[guest_report()]).await.unwrap()[0]
        .as_ref()
        .expect("a replayed guest report is acknowledged");
    assert_eq!(store.list_host_reports(HOST, 10).await.unwrap().len(), 1);
    assert_eq!(store.list_guest_reports(GUEST, 10).await.unwrap().len(), 1);
}

async fn check_ops_and_events(store: &dyn Store) {
    let done = store.get_op(OP_DONE).await.unwrap().expect("executed op");
    assert_eq!(done.status, "executed");
    assert!(done.signature.is_some(), "the op keeps its signature");
    assert_eq!(
        (done.signed_at_ms, done.delivered_at_ms, done.finished_at_ms),
        (Some(AT + 9_100), Some(AT + 9_200), Some(AT + 9_300))
    );
    assert_eq!(
        done.result_json.as_deref(),
        Some(r#"{"ok":true,"took_ms":1234}"#)
    );
    assert_eq!(done.nonce, "nonce-op-fx-done");
    let pending = store.get_op(OP_PENDING).await.unwrap().expect("pending op");
    assert_eq!(pending.status, "pending_signature");
    let mut ids: Vec<String> = store
        .list_ops(&OpFilter {
            host_id: Some(HOST.into()),
            limit: 10,
            ..OpFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|op| op.id)
        .collect();
    ids.sort();
    assert_eq!(ids, [OP_DONE, OP_PENDING]);

    let events = store
        .list_events(&EventFilter {
            host_id: Some(HOST.into()),
            limit: 100,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|event| event.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "host_enrolled",
            "backup_missed",
            "op_executed",
            "op_delivered",
            "op_signed",
            "desired_published"
        ],
        "the host's timeline, newest first"
    );
    let executed = events.iter().find(|event| event.kind == "op_executed");
    assert_eq!(executed.and_then(|e| e.op_id.as_deref()), Some(OP_DONE));
}

async fn check_fleet_jobs(store: &dyn Store) {
    let facts = store.list_backup_facts().await.unwrap();
    let ours = facts.iter().find(|fact| fact.host_id == HOST);
    assert_eq!(
        ours.map(|fact| fact.backup_missed_json.as_str()),
        Some(r#"["disk-1"]"#),
        "the host's backup facts"
    );
    assert!(
        !store
            .try_acquire_lease(LEASE, "another-cloud", AT + 12_001, 60_000)
            .await
            .unwrap(),
        "the lease is still held"
    );
    assert!(
        !store
            .claim_notification(NOTIFY_KEY, Some(ACME), AT + 12_002, 3_600_000, false)
            .await
            .unwrap(),
        "the notification is still in its cooldown"
    );
    let logged = store.list_notifications(10).await.unwrap();
    assert_eq!(logged.len(), 1, "the fixture's notification log");
    assert_eq!(
        (
            logged[0].at_ms,
            logged[0].status.as_str(),
            logged[0].customer_id.as_deref()
        ),
        (AT + 12_001, "sent", Some(ACME))
    );
}

async fn check_hubs(store: &dyn Store) {
    let keys: Vec<(String, Option<i64>)> = store
        .list_deploy_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|key| (key.id, key.revoked_at_ms))
        .collect();
    assert_eq!(
        keys,
        [
            (DEPLOY_KEY_OLD.to_string(), Some(AT + 13_500)),
            (DEPLOY_KEY.to_string(), None)
        ],
        "deploy keys, newest first"
    );
    let expected = deploy_key(DEPLOY_KEY, "acme site", AT + 13_000);
    let key = store
        .get_deploy_key_by_hash(&expected.key_hash)
        .await
        .unwrap()
        .expect("deploy key by hash");
    assert_eq!(
        (key.id, key.label, key.prefix, key.created_by),
        (
            expected.id,
            expected.label,
            expected.prefix,
            expected.created_by
        )
    );
    let hub = store.get_hub(HUB).await.unwrap().expect("fixture hub");
    assert_eq!(
        (
            hub.deploy_key_id.as_str(),
            hub.hostname.as_str(),
            hub.license_mode.as_str()
        ),
        (DEPLOY_KEY, HUB_HOSTNAME, "enterprise")
    );
    assert_eq!(
        (
            hub.registered_at_ms,
            hub.last_validated_at_ms,
            hub.last_seen_at_ms
        ),
        (AT + 14_000, Some(AT + 15_000), AT + 16_000)
    );
    assert_eq!(
        (hub.healthy, hub.issues_json.as_str()),
        (false, r#"["cloud_slow"]"#)
    );
    let again = HubRegistration {
        new_id: "hub-fx-other".into(),
        deploy_key_id: DEPLOY_KEY.into(),
        hostname: HUB_HOSTNAME.into(),
        hub_version: "0.1.1".into(),
        platform: "linux-x86_64".into(),
        license_mode: "enterprise".into(),
        at_ms: AT + 18_000,
    };
    let registered = store.register_hub(&again).await.unwrap();
    assert_eq!(
        (registered.id.as_str(), registered.registered_at_ms),
        (HUB, AT + 14_000),
        "the hub registering again after the upgrade keeps its identity"
    );
}

async fn check_certificates(store: &dyn Store) {
    let host = store
        .get_certificate(CERT_HOST)
        .await
        .unwrap()
        .expect("host certificate");
    assert_eq!(host, certificate(CERT_HOST, CertSubjectKind::Host, HOST));
    let hub = store
        .get_certificate(CERT_HUB)
        .await
        .unwrap()
        .expect("hub certificate");
    assert_eq!(
        (
            hub.subject_kind,
            hub.subject_id.as_str(),
            hub.issued_by.as_str()
        ),
        (CertSubjectKind::Hub, HUB, ADMIN_EMAIL)
    );
    let of_host = store
        .list_certificates(Some((CertSubjectKind::Host, HOST)))
        .await
        .unwrap();
    let serials: Vec<&str> = of_host.iter().map(|row| row.serial.as_str()).collect();
    assert_eq!(serials, [CERT_HOST, CERT_OLD], "newest issue first");
    let crl = store.revoked_certificates(AT_S + 200).await.unwrap();
    assert_eq!(crl.len(), 1, "the fixture's CRL");
    assert_eq!(
        (
            crl[0].serial.as_str(),
            crl[0].revoked_at,
            crl[0].revoked_reason.as_deref()
        ),
        (CERT_OLD, Some(AT_S + 100), Some("superseded"))
    );
}
