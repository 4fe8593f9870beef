//! Fleet contract: customers, hosts, guests, recovery and the DR record. The helpers here are
//! shared with the other `fleet_*` sections.

use super::{assert_conflict, assert_not_found, uid};
use crate::{
    CustomerUpdate, DesiredEdit, EventFilter, GuestReality, LivenessRule, NewCustomer, NewEvent,
    NewGuest, NewHost, NewHostReport, NewSignedOp, OpTransition, Store,
};

/// A fleet section's clock: far from the other sections' and from the prune section's small
/// timestamps.
pub(super) const T0: i64 = 1_700_000_000_000;

pub(super) fn new_customer(created_at_ms: i64) -> NewCustomer {
    let id = uid("cus");
    NewCustomer {
        name: format!("Customer {id}"),
        email: format!("{}@example.com", id.to_lowercase()),
        id,
        domain: Some("example.com".into()),
        locale: "de".into(),
        retrieval_password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        config_json: r#"{"backup":{"retention_days":14}}"#.into(),
        created_at_ms,
    }
}

pub(super) fn new_host(customer_id: &str, enrolled_at_ms: i64) -> NewHost {
    let id = uid("hst");
    NewHost {
        key_hash: mftplus_crypto::sha256_hex(id.as_bytes()),
        hostname: format!("{id}.example.com"),
        id,
        customer_id: customer_id.to_string(),
        platform: Some("proxmox".into()),
        agent_version: "1.0.0".into(),
        desired_json: r#"{"guests":{}}"#.into(),
        enrolled_at_ms,
    }
}

pub(super) fn new_guest(customer_id: &str, host_id: &str, created_at_ms: i64) -> NewGuest {
    let id = uid("gst");
    NewGuest {
        key_hash: mftplus_crypto::sha256_hex(id.as_bytes()),
        display_name: format!("guest {id}"),
        id,
        customer_id: customer_id.to_string(),
        host_id: host_id.to_string(),
        created_at_ms,
    }
}

pub(super) fn host_report(customer_id: &str, host_id: &str, at_ms: i64) -> NewHostReport {
    NewHostReport {
        host_id: host_id.to_string(),
        customer_id: customer_id.to_string(),
        received_at_ms: at_ms,
        agent_version: "1.2.3".into(),
        controller_version: Some("2.0.0".into()),
        applied_generation: 7,
        cpu_percent: 12.5,
        memory_used_bytes: 1 << 30,
        memory_total_bytes: 8 << 30,
        disk_used_bytes: 100 << 30,
        disk_total_bytes: 500 << 30,
        guests_total: 0,
        guests_running: 0,
        last_backups_json: format!(r#"[{{"durable_id":"d1","at_ms":{at_ms}}}]"#),
        pending_signature_json: r#"[{"change":"guest.remove"}]"#.into(),
        report_json: format!(r#"{{"host":"{host_id}","at":{at_ms}}}"#),
        poll_interval_seconds: POLL_SECONDS,
        guests: Vec::new(),
        idempotency_key: None,
    }
}

/// The poll interval [`host_report`]s were told, and the one [`rule`]s are written for.
pub(super) const POLL_SECONDS: i64 = 300;

/// A liveness rule at `now` for hosts told [`POLL_SECONDS`] (thresholds unscaled).
pub(super) fn rule(
    now_ms: i64,
    stale_after_ms: i64,
    down_after_ms: i64,
    grace: i64,
) -> LivenessRule {
    LivenessRule {
        now_ms,
        stale_after_ms,
        down_after_ms,
        grace_since_ms: grace,
        poll_interval_seconds: POLL_SECONDS,
    }
}

pub(super) fn guest_reality(guest_id: &str, status: &str) -> GuestReality {
    GuestReality {
        guest_id: guest_id.to_string(),
        status: status.to_string(),
        controller_version: Some("2.0.1".into()),
    }
}

pub(super) fn event(at_ms: i64, kind: &str, customer_id: &str, host_id: &str) -> NewEvent {
    NewEvent {
        at_ms,
        kind: kind.to_string(),
        severity: "info".into(),
        customer_id: Some(customer_id.to_string()),
        host_id: Some(host_id.to_string()),
        guest_id: None,
        op_id: None,
        details_json: r#"{"why":"test"}"#.into(),
    }
}

pub(super) fn new_op(customer_id: &str, host_id: &str, issued_at_ms: i64) -> NewSignedOp {
    let id = uid("op");
    NewSignedOp {
        op_blob: format!(r#"{{"op_id":"{id}","type":"guest.remove"}}"#),
        nonce: uid("nonce"),
        id,
        customer_id: customer_id.to_string(),
        host_id: host_id.to_string(),
        guest_id: None,
        op_type: "guest.remove".into(),
        issued_at_ms,
        expires_at_ms: issued_at_ms + 3_600_000,
        created_by: "admin@example.com".into(),
    }
}

/// An edit that only queues ops (no desired-state change).
pub(super) fn ops_edit(host_id: &str, ops: Vec<NewSignedOp>, at_ms: i64) -> DesiredEdit {
    DesiredEdit {
        host_id: host_id.to_string(),
        expected_generation: None,
        desired_json: None,
        ops,
        events: Vec::new(),
        guest_specs: Vec::new(),
        at_ms,
    }
}

pub(super) fn transition(op_id: &str, from: &[&str], to: &str, at_ms: i64) -> OpTransition {
    OpTransition {
        op_id: op_id.to_string(),
        from: from.iter().map(|status| status.to_string()).collect(),
        to: to.to_string(),
        signature: None,
        result_json: None,
        desired_after: None,
        guest_specs: Vec::new(),
        at_ms,
        event: NewEvent {
            at_ms,
            kind: format!("op_{to}"),
            severity: "info".into(),
            customer_id: None,
            host_id: None,
            guest_id: None,
            op_id: None,
            details_json: "{}".into(),
        },
    }
}

pub(super) async fn host_events(store: &dyn Store, host_id: &str) -> Vec<crate::EventRow> {
    store
        .list_events(&EventFilter {
            host_id: Some(host_id.to_string()),
            limit: 1_000,
            ..EventFilter::default()
        })
        .await
        .expect("list_events by host")
}

/// A customer with one host, created with a generous host limit.
pub(super) async fn customer_with_host(
    store: &dyn Store,
    at_ms: i64,
) -> (crate::CustomerRow, crate::HostRow) {
    let customer = store
        .create_customer(&new_customer(at_ms))
        .await
        .expect("create customer");
    let host = store
        .create_host(&new_host(&customer.id, at_ms), 100)
        .await
        .expect("create host");
    (customer, host)
}

/// Customer CRUD, ordering, partial updates and the delete that takes everything but events.
pub async fn fleet_customers(store: &dyn Store) {
    let input = new_customer(T0);
    let created = store.create_customer(&input).await.expect("create");
    assert_eq!(created.id, input.id);
    assert_eq!(created.name, input.name);
    assert_eq!(created.email, input.email);
    assert_eq!(created.domain, input.domain);
    assert_eq!(created.locale, input.locale);
    assert_eq!(created.status, "active", "a new customer is active");
    assert_eq!(
        created.retrieval_password_hash,
        input.retrieval_password_hash
    );
    assert_eq!(created.config_json, input.config_json);
    assert_eq!(created.created_at_ms, T0);
    assert_eq!(created.updated_at_ms, T0);
    assert_eq!(
        store.get_customer(&created.id).await.unwrap().as_ref(),
        Some(&created)
    );
    assert_eq!(store.get_customer(&uid("cus")).await.unwrap(), None);
    assert_conflict(store.create_customer(&input).await, "id");

    let second = store.create_customer(&new_customer(T0 + 1)).await.unwrap();
    let listed: Vec<String> = store
        .list_customers()
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .filter(|id| *id == created.id || *id == second.id)
        .collect();
    let mut expected = vec![created.id.clone(), second.id.clone()];
    expected.sort();
    assert_eq!(listed, expected, "list_customers is ordered by id");

    // Partial update: only the `Some` fields change; `domain: Some(None)` clears.
    let updated = store
        .update_customer(
            &created.id,
            &CustomerUpdate {
                name: Some("Renamed".into()),
                domain: Some(None),
                status: Some("blocked".into()),
                updated_at_ms: T0 + 5,
                ..CustomerUpdate::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(updated.name, "Renamed");
    assert_eq!(updated.domain, None);
    assert_eq!(updated.status, "blocked");
    assert_eq!(updated.email, created.email, "an unset field is kept");
    assert_eq!(updated.config_json, created.config_json);
    assert_eq!(updated.updated_at_ms, T0 + 5);
    assert_eq!(updated.created_at_ms, T0);
    let updated = store
        .update_customer(
            &created.id,
            &CustomerUpdate {
                domain: Some(Some("new.example".into())),
                config_json: Some("{}".into()),
                email: Some("x@new.example".into()),
                locale: Some("en".into()),
                retrieval_password_hash: Some("other".into()),
                updated_at_ms: T0 + 6,
                ..CustomerUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.domain.as_deref(), Some("new.example"));
    assert_eq!(updated.name, "Renamed", "an unset field is kept");
    assert_eq!(
        (
            updated.config_json.as_str(),
            updated.email.as_str(),
            updated.locale.as_str(),
            updated.retrieval_password_hash.as_str()
        ),
        ("{}", "x@new.example", "en", "other")
    );
    assert_not_found(
        store
            .update_customer(&uid("cus"), &CustomerUpdate::default())
            .await,
        "update of an unknown customer",
    );

    delete_customer_cascades(store).await;
}

/// Deleting a customer removes its hosts, guests, reports, ops and cooldown state; its events
/// stay, and other customers are untouched.
async fn delete_customer_cascades(store: &dyn Store) {
    let (customer, host) = customer_with_host(store, T0).await;
    let (other, other_host) = customer_with_host(store, T0).await;
    let guest = store
        .create_guest(&new_guest(&customer.id, &host.id, T0))
        .await
        .unwrap();
    for (customer_id, host_id) in [(&customer.id, &host.id), (&other.id, &other_host.id)] {
        let acks = store
            .ingest_host_reports(&[host_report(customer_id, host_id, T0 + 10)])
            .await
            .unwrap();
        assert!(acks[0].is_ok());
    }
    let guest_report = crate::NewGuestReport {
        guest_id: guest.id.clone(),
        host_id: host.id.clone(),
        customer_id: customer.id.clone(),
        received_at_ms: T0 + 11,
        controller_version: None,
        cpu_percent: None,
        memory_used_bytes: None,
        memory_total_bytes: None,
        report_json: "{}".into(),
        idempotency_key: None,
    };
    store.ingest_guest_reports(&[guest_report]).await.unwrap()[0]
        .as_ref()
        .expect("guest report");
    let op = new_op(&customer.id, &host.id, T0);
    let mut edit = ops_edit(&host.id, vec![op.clone()], T0 + 12);
    edit.events = vec![event(T0 + 12, "desired_changed", &customer.id, &host.id)];
    store.apply_desired_edit(&edit).await.unwrap();
    let key = uid("notify");
    assert!(store
        .claim_notification(&key, Some(&customer.id), T0, 3_600_000, false)
        .await
        .unwrap());

    store.delete_customer(&customer.id).await.expect("delete");
    assert_eq!(store.get_customer(&customer.id).await.unwrap(), None);
    assert_eq!(store.get_host(&host.id).await.unwrap(), None);
    assert_eq!(
        store.get_host_by_key_hash(&host.key_hash).await.unwrap(),
        None
    );
    assert_eq!(store.get_guest(&guest.id).await.unwrap(), None);
    assert!(store
        .list_hosts(Some(&customer.id))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_host_reports(&host.id, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_guest_reports(&guest.id, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.get_op(&op.id).await.unwrap(), None);
    assert!(
        store
            .claim_notification(&key, Some(&customer.id), T0 + 1, 3_600_000, false)
            .await
            .unwrap(),
        "the cooldown state went with the customer"
    );
    assert!(
        !host_events(store, &host.id).await.is_empty(),
        "events stay when their customer is deleted"
    );
    assert!(store.get_host(&other_host.id).await.unwrap().is_some());
    assert_eq!(
        store
            .list_host_reports(&other_host.id, 10)
            .await
            .unwrap()
            .len(),
        1,
        "another customer's reports are untouched"
    );
    assert_not_found(
        store.delete_customer(&customer.id).await,
        "second delete of a customer",
    );
}

/// Enrolment (limit, unknown customer, duplicate id), lookups, listing and guests.
pub async fn fleet_hosts(store: &dyn Store) {
    let customer = store.create_customer(&new_customer(T0)).await.unwrap();
    let input = new_host(&customer.id, T0 + 1);
    let host = store.create_host(&input, 2).await.expect("create host");
    assert_eq!(host.id, input.id);
    assert_eq!(host.customer_id, customer.id);
    assert_eq!(host.key_hash, input.key_hash);
    assert_eq!(host.hostname, input.hostname);
    assert_eq!(host.platform, input.platform);
    assert_eq!(host.agent_version, input.agent_version);
    assert_eq!(host.controller_version, None);
    assert_eq!(host.applied_generation, 0);
    assert_eq!(host.last_report_at_ms, None);
    assert_eq!(host.last_backups_json, "[]");
    assert_eq!(host.pending_signature_json, "[]");
    assert_eq!(host.desired_json, input.desired_json);
    assert_eq!(
        host.desired_generation, 0,
        "a new host starts at generation 0"
    );
    assert_eq!(host.desired_updated_at_ms, T0 + 1);
    assert_eq!(host.recovery_mode_until_ms, None);
    assert_eq!(host.escrow, None);
    assert_eq!(host.liveness, "ok");
    assert_eq!(host.backup_missed_json, "[]");
    assert_eq!(host.enrolled_at_ms, T0 + 1);

    let same_id = NewHost {
        key_hash: mftplus_crypto::sha256_hex(uid("other").as_bytes()),
        ..input.clone()
    };
    assert_conflict(store.create_host(&same_id, 10).await, "id");
    let second = store
        .create_host(&new_host(&customer.id, T0 + 2), 2)
        .await
        .unwrap();
    assert_conflict(
        store.create_host(&new_host(&customer.id, T0 + 3), 2).await,
        "host_limit",
    );
    assert_not_found(
        store.create_host(&new_host(&uid("cus"), T0), 10).await,
        "a host of an unknown customer",
    );

    assert_eq!(
        store.get_host(&host.id).await.unwrap().as_ref(),
        Some(&host)
    );
    assert_eq!(store.get_host(&uid("hst")).await.unwrap(), None);
    assert_eq!(
        store
            .get_host_by_key_hash(&host.key_hash)
            .await
            .unwrap()
            .map(|row| row.id),
        Some(host.id.clone())
    );
    let mut expected = vec![host.id.clone(), second.id.clone()];
    expected.sort();
    let listed: Vec<String> = store
        .list_hosts(Some(&customer.id))
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .collect();
    assert_eq!(listed, expected, "one customer's hosts, by id");
    let all: Vec<String> = store
        .list_hosts(None)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .collect();
    assert!(
        all.windows(2).all(|pair| pair[0] < pair[1]),
        "all hosts, by id"
    );
    assert!(expected.iter().all(|id| all.contains(id)));

    // Republishing bumps every host of the customer, and only those.
    let (_, outsider) = customer_with_host(store, T0).await;
    assert_eq!(
        store
            .bump_customer_generations(&customer.id, T0 + 50)
            .await
            .unwrap(),
        2
    );
    let bumped = store.get_host(&host.id).await.unwrap().unwrap();
    assert_eq!(bumped.desired_generation, 1);
    assert_eq!(bumped.desired_json, host.desired_json, "same desired state");
    assert_eq!(bumped.desired_updated_at_ms, T0 + 50);
    assert_eq!(
        store
            .get_host(&outsider.id)
            .await
            .unwrap()
            .unwrap()
            .desired_generation,
        0
    );

    // DR record, stored verbatim.
    store
        .put_escrow(&host.id, "ns-1", "fp-1", "wrapped==", T0 + 60)
        .await
        .expect("put_escrow");
    let escrowed = store.get_host(&host.id).await.unwrap().unwrap();
    assert_eq!(escrowed.backup_namespace.as_deref(), Some("ns-1"));
    assert_eq!(escrowed.repository_fingerprint.as_deref(), Some("fp-1"));
    assert_eq!(escrowed.escrow.as_deref(), Some("wrapped=="));
    assert_eq!(escrowed.escrow_at_ms, Some(T0 + 60));
    assert_not_found(
        store.put_escrow(&uid("hst"), "n", "f", "w", T0).await,
        "escrow of an unknown host",
    );

    fleet_guests(store, &customer.id, &host.id, &second.id).await;
}

async fn fleet_guests(store: &dyn Store, customer_id: &str, host_id: &str, second_id: &str) {
    let input = new_guest(customer_id, host_id, T0 + 5);
    let guest = store.create_guest(&input).await.expect("create guest");
    assert_eq!(guest.id, input.id);
    assert_eq!(guest.customer_id, customer_id);
    assert_eq!(guest.host_id, host_id);
    assert_eq!(guest.key_hash, input.key_hash);
    assert_eq!(guest.display_name, input.display_name);
    assert_eq!(guest.desired_spec_json, None);
    assert_eq!(guest.controller_version, None);
    assert_eq!(guest.status, "unknown");
    assert_eq!(guest.last_seen_at_ms, None);
    assert_eq!(guest.last_report_at_ms, None);
    assert_eq!(guest.created_at_ms, T0 + 5);
    let same_id = NewGuest {
        key_hash: mftplus_crypto::sha256_hex(uid("other").as_bytes()),
        ..input.clone()
    };
    assert_conflict(store.create_guest(&same_id).await, "id");
    let other = store
        .create_guest(&new_guest(customer_id, second_id, T0 + 6))
        .await
        .unwrap();
    assert_eq!(
        store.get_guest(&guest.id).await.unwrap().as_ref(),
        Some(&guest)
    );
    assert_eq!(store.get_guest(&uid("gst")).await.unwrap(), None);
    assert_eq!(
        store
            .get_guest_by_key_hash(&guest.key_hash)
            .await
            .unwrap()
            .as_ref(),
        Some(&guest)
    );
    let ids = |rows: Vec<crate::GuestRow>| rows.into_iter().map(|row| row.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_guests(Some(host_id), None).await.unwrap()),
        vec![guest.id.clone()]
    );
    let mut both = vec![guest.id.clone(), other.id.clone()];
    both.sort();
    assert_eq!(
        ids(store.list_guests(None, Some(customer_id)).await.unwrap()),
        both
    );
    assert_eq!(
        ids(store
            .list_guests(Some(second_id), Some(customer_id))
            .await
            .unwrap()),
        vec![other.id.clone()]
    );
    assert!(store
        .list_guests(Some(host_id), Some(&uid("cus")))
        .await
        .unwrap()
        .is_empty());
    let all = ids(store.list_guests(None, None).await.unwrap());
    assert!(all.windows(2).all(|pair| pair[0] < pair[1]), "guests by id");
    assert!(both.iter().all(|id| all.contains(id)));
}

/// Key rotation needs recovery mode armed at `now`, disarms it, and retires the old key.
pub async fn fleet_recovery(store: &dyn Store) {
    let (_, host) = customer_with_host(store, T0).await;
    let now = T0 + 1_000;
    assert_conflict(
        store
            .rotate_host_key(&host.id, "new-hash", "h", "1.1.0", now)
            .await,
        "recovery_not_armed",
    );
    let armed = store
        .set_recovery_mode(&host.id, Some(now))
        .await
        .expect("arm");
    assert_eq!(armed.recovery_mode_until_ms, Some(now));
    assert_conflict(
        store
            .rotate_host_key(&host.id, "new-hash", "h", "1.1.0", now)
            .await,
        "recovery_not_armed",
    );
    store
        .set_recovery_mode(&host.id, Some(now + 60_000))
        .await
        .unwrap();
    let new_hash = mftplus_crypto::sha256_hex(uid("newkey").as_bytes());
    let rotated = store
        .rotate_host_key(&host.id, &new_hash, "restored.example.com", "1.1.0", now)
        .await
        .expect("rotate while armed");
    assert_eq!(rotated.key_hash, new_hash);
    assert_eq!(rotated.hostname, "restored.example.com");
    assert_eq!(rotated.agent_version, "1.1.0");
    assert_eq!(rotated.recovery_mode_until_ms, None, "rotation disarms");
    assert_eq!(rotated.desired_json, host.desired_json);
    assert_eq!(
        store.get_host_by_key_hash(&host.key_hash).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .get_host_by_key_hash(&new_hash)
            .await
            .unwrap()
            .map(|row| row.id),
        Some(host.id.clone())
    );
    assert_conflict(
        store
            .rotate_host_key(&host.id, "third", "h", "1.1.0", now)
            .await,
        "recovery_not_armed",
    );
    let cleared = store.set_recovery_mode(&host.id, None).await.unwrap();
    assert_eq!(cleared.recovery_mode_until_ms, None);
    assert_not_found(
        store.set_recovery_mode(&uid("hst"), Some(now)).await,
        "recovery mode of an unknown host",
    );
    assert_not_found(
        store.rotate_host_key(&uid("hst"), "x", "h", "1", now).await,
        "rotation of an unknown host",
    );
}

/// The hosts listing's keyset cursor: pages in bytewise id order (upper case before lower
/// case, whatever the database's collation), no host twice or skipped, narrowed by customer.
pub async fn fleet_host_pages(store: &dyn Store) {
    let customer = store
        .create_customer(&new_customer(T0))
        .await
        .expect("create customer");
    let stem = uid("hst");
    let mut ours = Vec::new();
    for suffix in ["b", "B", "a", "A", "_"] {
        let mut host = new_host(&customer.id, T0);
        host.id = format!("{stem}{suffix}");
        host.key_hash = mftplus_crypto::sha256_hex(host.id.as_bytes());
        ours.push(store.create_host(&host, 100).await.expect("host").id);
    }
    ours.sort();
    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_hosts_page(&by_id(Some(&customer.id), after.as_deref(), 2))
            .await
            .expect("a page");
        assert!(page.len() <= 2, "a page is bounded by its limit");
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        walked.extend(page.into_iter().map(|row| row.id));
    }
    assert_eq!(walked, ours, "every host once, bytewise by id");

    let (_, outsider) = customer_with_host(store, T0).await;
    let mut everyone = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_hosts_page(&by_id(None, after.as_deref(), 3))
            .await
            .expect("a page of all hosts");
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        everyone.extend(page.into_iter().map(|row| row.id));
    }
    assert!(everyone.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(ours.iter().all(|id| everyone.contains(id)));
    assert!(everyone.contains(&outsider.id));
    let from_middle = store
        .list_hosts_page(&by_id(Some(&customer.id), Some(&ours[2]), 10))
        .await
        .unwrap();
    assert_eq!(
        from_middle
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ours[3..].iter().map(String::as_str).collect::<Vec<_>>()
    );
}

/// The hosts listing by id, as it was before filters: a customer's or every host.
fn by_id(customer_id: Option<&str>, after_id: Option<&str>, limit: u32) -> crate::HostListing {
    crate::HostListing {
        customer_id: customer_id.map(str::to_string),
        after: after_id.map(|id| crate::HostCursor {
            id: id.to_string(),
            last_report_at_ms: None,
        }),
        limit,
        ..crate::HostListing::default()
    }
}
