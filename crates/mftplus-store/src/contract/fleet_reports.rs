//! Fleet contract: report ingest, and the rule that reports and operators each write only their
//! own columns of a host.

use super::fleet::{
    customer_with_host, guest_reality, host_report, new_guest, new_op, ops_edit, transition, T0,
};
use super::{assert_not_found, uid};
use crate::{CustomerUpdate, DesiredEdit, HostRow, NewGuestReport, ReportAck, Store, StoreError};

/// A batch across hosts: each report updates its own host and guests, a gone host is
/// `NotFound` without failing the others, and the acks carry what the envelope needs.
pub async fn fleet_report_ingest(store: &dyn Store) {
    let (customer, first) = customer_with_host(store, T0).await;
    let second = store
        .create_host(&super::fleet::new_host(&customer.id, T0), 100)
        .await
        .unwrap();
    let mine = store
        .create_guest(&new_guest(&customer.id, &first.id, T0))
        .await
        .unwrap();
    let theirs = store
        .create_guest(&new_guest(&customer.id, &second.id, T0))
        .await
        .unwrap();

    let mut report = host_report(&customer.id, &first.id, T0 + 100);
    report.guests_total = 2;
    report.guests_running = 1;
    // The first host also names the second host's guest: that row must not move.
    report.guests = vec![
        guest_reality(&mine.id, "running"),
        guest_reality(&theirs.id, "stopped"),
    ];
    let gone = host_report(&customer.id, &uid("hst"), T0 + 100);
    let mut other = host_report(&customer.id, &second.id, T0 + 101);
    other.agent_version = "9.9.9".into();
    let acks = store
        .ingest_host_reports(&[report.clone(), gone, other])
        .await
        .expect("ingest batch");
    assert_eq!(acks.len(), 3, "one answer per report");
    let expected = ReportAck {
        desired_generation: 0,
        blocked: false,
        has_signed_ops: false,
        rotate_key: false,
    };
    assert_eq!(acks[0].as_ref().ok(), Some(&expected));
    assert!(
        matches!(acks[1], Err(StoreError::NotFound)),
        "a gone host is NotFound: {:?}",
        acks[1]
    );
    assert_eq!(
        acks[2].as_ref().ok(),
        Some(&expected),
        "later reports still land"
    );

    let host = store.get_host(&first.id).await.unwrap().unwrap();
    assert_eq!(host.agent_version, report.agent_version);
    assert_eq!(host.controller_version, report.controller_version);
    assert_eq!(host.applied_generation, report.applied_generation);
    assert_eq!(host.last_report_at_ms, Some(T0 + 100));
    assert_eq!(host.last_backups_json, report.last_backups_json);
    assert_eq!(host.pending_signature_json, report.pending_signature_json);
    assert_eq!(
        store
            .get_host(&second.id)
            .await
            .unwrap()
            .unwrap()
            .agent_version,
        "9.9.9"
    );

    let guest = store.get_guest(&mine.id).await.unwrap().unwrap();
    assert_eq!(guest.status, "running");
    assert_eq!(guest.last_seen_at_ms, Some(T0 + 100));
    assert_eq!(guest.controller_version.as_deref(), Some("2.0.1"));
    assert_eq!(
        store.get_guest(&theirs.id).await.unwrap().as_ref(),
        Some(&theirs),
        "a report never touches a guest of another host"
    );

    let rows = store.list_host_reports(&first.id, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.host_id.as_str(), row.customer_id.as_str()),
        (first.id.as_str(), customer.id.as_str())
    );
    assert_eq!(row.received_at_ms, T0 + 100);
    assert_eq!(row.applied_generation, 7);
    assert_eq!(row.cpu_percent, 12.5);
    assert_eq!(
        (
            row.memory_used_bytes,
            row.memory_total_bytes,
            row.disk_used_bytes,
            row.disk_total_bytes
        ),
        (1 << 30, 8 << 30, 100 << 30, 500 << 30)
    );
    assert_eq!((row.guests_total, row.guests_running), (2, 1));
    assert_eq!(row.report_json, report.report_json, "stored verbatim");

    // Newest first, limited.
    for at in [T0 + 300, T0 + 200] {
        store
            .ingest_host_reports(&[host_report(&customer.id, &first.id, at)])
            .await
            .unwrap();
    }
    let times: Vec<i64> = store
        .list_host_reports(&first.id, 2)
        .await
        .unwrap()
        .iter()
        .map(|row| row.received_at_ms)
        .collect();
    assert_eq!(times, vec![T0 + 300, T0 + 200]);
    assert!(store.ingest_host_reports(&[]).await.unwrap().is_empty());

    ack_reflects_ops_and_blocking(store, &customer.id, &first.id).await;
    guest_reports(store, &customer.id, &first.id, &mine.id).await;
}

async fn ack_reflects_ops_and_blocking(store: &dyn Store, customer_id: &str, host_id: &str) {
    let ingest = |at: i64| async move {
        store
            .ingest_host_reports(&[host_report(customer_id, host_id, at)])
            .await
            .unwrap()
            .remove(0)
            .expect("ack")
    };
    // A pending op does not count; a signed or delivered one does.
    let op = new_op(customer_id, host_id, T0);
    let mut edit = ops_edit(host_id, vec![op.clone()], T0 + 400);
    edit.desired_json = Some(r#"{"guests":{"x":{}}}"#.into());
    store.apply_desired_edit(&edit).await.unwrap();
    let ack = ingest(T0 + 401).await;
    assert_eq!(ack.desired_generation, 1, "the ack carries the generation");
    assert!(
        !ack.has_signed_ops,
        "pending_signature is not waiting for the host"
    );
    store
        .transition_op(&transition(
            &op.id,
            &["pending_signature"],
            "signed",
            T0 + 402,
        ))
        .await
        .unwrap();
    assert!(ingest(T0 + 403).await.has_signed_ops);
    store.deliver_ops(host_id, T0 + 404).await.unwrap();
    assert!(
        ingest(T0 + 405).await.has_signed_ops,
        "delivered still waits"
    );

    let block = |status: &str| CustomerUpdate {
        status: Some(status.to_string()),
        updated_at_ms: T0 + 406,
        ..CustomerUpdate::default()
    };
    store
        .update_customer(customer_id, &block("blocked"))
        .await
        .unwrap();
    let ack = ingest(T0 + 407).await;
    assert!(ack.blocked, "a blocked customer's host is told so");
    assert!(!ack.has_signed_ops, "and is offered no ops");
    assert_eq!(
        store
            .get_host(host_id)
            .await
            .unwrap()
            .unwrap()
            .last_report_at_ms,
        Some(T0 + 407),
        "a blocked host's report is still recorded"
    );
    store
        .update_customer(customer_id, &block("active"))
        .await
        .unwrap();
    let ack = ingest(T0 + 408).await;
    assert!(!ack.blocked && ack.has_signed_ops);
    store
        .transition_op(&transition(&op.id, &["delivered"], "executed", T0 + 409))
        .await
        .unwrap();
    assert!(
        !ingest(T0 + 410).await.has_signed_ops,
        "finished ops do not wait"
    );
}

async fn guest_reports(store: &dyn Store, customer_id: &str, host_id: &str, guest_id: &str) {
    let report = |guest_id: &str, at: i64| NewGuestReport {
        guest_id: guest_id.to_string(),
        host_id: host_id.to_string(),
        customer_id: customer_id.to_string(),
        received_at_ms: at,
        controller_version: Some("3.0.0".into()),
        cpu_percent: Some(1.5),
        memory_used_bytes: Some(10),
        memory_total_bytes: Some(20),
        report_json: format!(r#"{{"at":{at}}}"#),
        idempotency_key: None,
    };
    let results = store
        .ingest_guest_reports(&[
            report(guest_id, T0 + 500),
            report(&uid("gst"), T0 + 500),
            report(guest_id, T0 + 600),
        ])
        .await
        .unwrap();
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(matches!(results[1], Err(StoreError::NotFound)));
    let guest = store.get_guest(guest_id).await.unwrap().unwrap();
    assert_eq!(guest.last_report_at_ms, Some(T0 + 600));
    assert_eq!(guest.controller_version.as_deref(), Some("3.0.0"));
    let rows = store.list_guest_reports(guest_id, 10).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].received_at_ms, T0 + 600, "newest first");
    assert_eq!(rows[0].report_json, r#"{"at":1700000000600}"#);
    assert_eq!(
        (
            rows[0].cpu_percent,
            rows[0].memory_used_bytes,
            rows[0].memory_total_bytes
        ),
        (Some(1.5), Some(10), Some(20))
    );
    assert_eq!(
        (rows[0].host_id.as_str(), rows[0].customer_id.as_str()),
        (host_id, customer_id)
    );
    assert_eq!(
        store.list_guest_reports(guest_id, 1).await.unwrap().len(),
        1
    );
}

type Intent = (String, i64, i64, Option<i64>);
type Reality = (String, Option<String>, i64, Option<i64>, String, String);

fn intent(host: &HostRow) -> Intent {
    (
        host.desired_json.clone(),
        host.desired_generation,
        host.desired_updated_at_ms,
        host.recovery_mode_until_ms,
    )
}

fn reality(host: &HostRow) -> Reality {
    (
        host.agent_version.clone(),
        host.controller_version.clone(),
        host.applied_generation,
        host.last_report_at_ms,
        host.last_backups_json.clone(),
        host.pending_signature_json.clone(),
    )
}

/// Seed 002 §1: a report never writes an intent column, an operator edit never writes a
/// reality column.
pub async fn fleet_intent_and_reality_are_separate(store: &dyn Store) {
    let (customer, host) = customer_with_host(store, T0).await;
    let edit = DesiredEdit {
        host_id: host.id.clone(),
        expected_generation: Some(0),
        desired_json: Some(r#"{"guests":{"a":{"cpu_cores":2}}}"#.into()),
        ops: Vec::new(),
        events: Vec::new(),
        guest_specs: Vec::new(),
        at_ms: T0 + 10,
    };
    store.apply_desired_edit(&edit).await.unwrap();
    store
        .set_recovery_mode(&host.id, Some(T0 + 999_999))
        .await
        .unwrap();
    let before = store.get_host(&host.id).await.unwrap().unwrap();

    // A report that claims everything it could: other generation, other versions, much later.
    let mut report = host_report(&customer.id, &host.id, T0 + 50_000);
    report.applied_generation = 42;
    report.report_json = r#"{"desired_generation":99,"desired":{"guests":{}}}"#.into();
    store.ingest_host_reports(&[report.clone()]).await.unwrap()[0]
        .as_ref()
        .expect("ack");
    let after_report = store.get_host(&host.id).await.unwrap().unwrap();
    assert_eq!(
        intent(&after_report),
        intent(&before),
        "a report changed an intent column"
    );
    assert_ne!(
        reality(&after_report),
        reality(&before),
        "the report landed"
    );
    assert_eq!(after_report.applied_generation, 42);

    // Every operator action that touches a host, then the reality columns must be as reported.
    let reported = reality(&after_report);
    let edit = DesiredEdit {
        expected_generation: Some(1),
        desired_json: Some(r#"{"guests":{}}"#.into()),
        ops: vec![new_op(&customer.id, &host.id, T0 + 60_000)],
        at_ms: T0 + 60_000,
        ..edit
    };
    store.apply_desired_edit(&edit).await.unwrap();
    store
        .apply_desired_edit(&ops_edit(&host.id, Vec::new(), T0 + 60_001))
        .await
        .unwrap();
    store
        .bump_customer_generations(&customer.id, T0 + 60_002)
        .await
        .unwrap();
    store.set_recovery_mode(&host.id, None).await.unwrap();
    let after_edits = store.get_host(&host.id).await.unwrap().unwrap();
    assert_eq!(
        reality(&after_edits),
        reported,
        "an operator edit changed a reality column"
    );
    assert_eq!(after_edits.desired_generation, 3, "the edits landed");
    assert_eq!(after_edits.desired_updated_at_ms, T0 + 60_002);
    assert_eq!(after_edits.recovery_mode_until_ms, None);
    assert_not_found(
        store
            .apply_desired_edit(&ops_edit(&uid("hst"), Vec::new(), T0))
            .await,
        "an edit of an unknown host",
    );
}
