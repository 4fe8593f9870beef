//! Fleet contract: operator edits of the desired state and the signed-op lifecycle.

use super::fleet::{
    customer_with_host, event, host_events, new_guest, new_host, new_op, ops_edit, transition, T0,
};
use super::{assert_any_conflict, assert_conflict, assert_not_found, uid};
use crate::{CustomerUpdate, DesiredEdit, EventFilter, OpFilter, Store};

/// Generation moves only with a new desired state, the expected generation guards it, and ops,
/// events and guest specs land with it or not at all.
pub async fn fleet_desired_edit(store: &dyn Store) {
    let (customer, host) = customer_with_host(store, T0).await;
    let other_host = store
        .create_host(&new_host(&customer.id, T0), 100)
        .await
        .unwrap();
    let guest = store
        .create_guest(&new_guest(&customer.id, &host.id, T0))
        .await
        .unwrap();
    let foreign = store
        .create_guest(&new_guest(&customer.id, &other_host.id, T0))
        .await
        .unwrap();

    let spec = r#"{"cpu_cores":2,"memory_mb":2048}"#;
    let edit = DesiredEdit {
        host_id: host.id.clone(),
        expected_generation: Some(0),
        desired_json: Some(r#"{"guests":{"g":{"cpu_cores":2}}}"#.into()),
        ops: Vec::new(),
        events: vec![event(T0 + 10, "desired_changed", &customer.id, &host.id)],
        guest_specs: vec![
            (guest.id.clone(), Some(spec.into())),
            (foreign.id.clone(), Some("{}".into())),
            (uid("gst"), Some("{}".into())),
        ],
        at_ms: T0 + 10,
    };
    let edited = store.apply_desired_edit(&edit).await.expect("benign edit");
    assert_eq!(edited.desired_generation, 1);
    assert_eq!(edited.desired_json, edit.desired_json.clone().unwrap());
    assert_eq!(edited.desired_updated_at_ms, T0 + 10);
    assert_eq!(
        store
            .get_guest(&guest.id)
            .await
            .unwrap()
            .unwrap()
            .desired_spec_json
            .as_deref(),
        Some(spec),
        "the guest row mirrors its spec"
    );
    assert_eq!(
        store
            .get_guest(&foreign.id)
            .await
            .unwrap()
            .unwrap()
            .desired_spec_json,
        None,
        "another host's guest is not this edit's"
    );
    let events = host_events(store, &host.id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "desired_changed");
    assert_eq!(events[0].details_json, r#"{"why":"test"}"#);

    // A stale expected generation changes nothing.
    let op = new_op(&customer.id, &host.id, T0 + 20);
    let stale = DesiredEdit {
        expected_generation: Some(0),
        ops: vec![op.clone()],
        guest_specs: vec![(guest.id.clone(), None)],
        at_ms: T0 + 20,
        ..edit.clone()
    };
    assert_conflict(store.apply_desired_edit(&stale).await, "generation");
    assert_eq!(store.get_op(&op.id).await.unwrap(), None);
    assert_eq!(host_events(store, &host.id).await.len(), 1);
    assert!(store
        .get_guest(&guest.id)
        .await
        .unwrap()
        .unwrap()
        .desired_spec_json
        .is_some());

    // Destructive only: ops queued, desired state and generation untouched, spec cleared.
    let destructive = DesiredEdit {
        expected_generation: Some(1),
        desired_json: None,
        ops: vec![op.clone()],
        events: vec![event(T0 + 30, "op_created", &customer.id, &host.id)],
        guest_specs: vec![(guest.id.clone(), None)],
        at_ms: T0 + 30,
        ..edit.clone()
    };
    let after = store.apply_desired_edit(&destructive).await.unwrap();
    assert_eq!(
        after.desired_generation, 1,
        "no new desired state, no new generation"
    );
    assert_eq!(after.desired_json, edited.desired_json);
    assert_eq!(after.desired_updated_at_ms, T0 + 10);
    assert_eq!(
        store
            .get_guest(&guest.id)
            .await
            .unwrap()
            .unwrap()
            .desired_spec_json,
        None
    );
    let stored = store.get_op(&op.id).await.unwrap().expect("op inserted");
    assert_eq!(stored.status, "pending_signature");
    assert_eq!(stored.created_at_ms, T0 + 30);
    assert_eq!(
        (
            stored.signature.clone(),
            stored.signed_at_ms,
            stored.delivered_at_ms,
            stored.finished_at_ms
        ),
        (None, None, None, None)
    );
    assert_eq!(stored.op_blob, op.op_blob, "stored byte for byte");
    assert_eq!(
        (
            stored.nonce.as_str(),
            stored.op_type.as_str(),
            stored.created_by.as_str()
        ),
        (
            op.nonce.as_str(),
            op.op_type.as_str(),
            op.created_by.as_str()
        )
    );
    assert_eq!(
        (stored.issued_at_ms, stored.expires_at_ms),
        (op.issued_at_ms, op.expires_at_ms)
    );
    assert_eq!(host_events(store, &host.id).await.len(), 2);

    // A reused nonce fails the whole edit: no new generation, no event, no other op.
    let mut reused = new_op(&customer.id, &host.id, T0 + 40);
    reused.nonce = op.nonce.clone();
    let fresh = new_op(&customer.id, &host.id, T0 + 40);
    let clash = DesiredEdit {
        expected_generation: None,
        desired_json: Some("{}".into()),
        ops: vec![fresh.clone(), reused],
        events: vec![event(T0 + 40, "desired_changed", &customer.id, &host.id)],
        guest_specs: Vec::new(),
        at_ms: T0 + 40,
        ..edit
    };
    assert_any_conflict(store.apply_desired_edit(&clash).await, "a reused nonce");
    let unchanged = store.get_host(&host.id).await.unwrap().unwrap();
    assert_eq!(
        unchanged.desired_generation, 1,
        "the failed edit left no trace"
    );
    assert_eq!(store.get_op(&fresh.id).await.unwrap(), None);
    assert_eq!(host_events(store, &host.id).await.len(), 2);
}

/// pending → signed → delivered → executed, each step with its event; illegal steps refused.
pub async fn fleet_op_lifecycle(store: &dyn Store) {
    let (customer, host) = customer_with_host(store, T0).await;
    let guest = store
        .create_guest(&new_guest(&customer.id, &host.id, T0))
        .await
        .unwrap();
    let op = new_op(&customer.id, &host.id, T0);
    store
        .apply_desired_edit(&ops_edit(&host.id, vec![op.clone()], T0 + 1))
        .await
        .unwrap();

    let mut sign = transition(&op.id, &["pending_signature"], "signed", T0 + 10);
    sign.signature = Some("-----BEGIN SSH SIGNATURE-----".into());
    sign.event.host_id = Some(host.id.clone());
    let signed = store.transition_op(&sign).await.expect("sign");
    assert_eq!(signed.status, "signed");
    assert_eq!(signed.signature, sign.signature);
    assert_eq!(signed.signed_at_ms, Some(T0 + 10));
    let events = host_events(store, &host.id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "op_signed");
    assert_eq!(
        events[0].op_id.as_deref(),
        Some(op.id.as_str()),
        "the store sets op_id"
    );

    assert_conflict(store.transition_op(&sign).await, "op_status");
    assert_not_found(
        store
            .transition_op(&transition(&uid("op"), &["signed"], "rejected", T0))
            .await,
        "transition of an unknown op",
    );
    assert_eq!(
        host_events(store, &host.id).await.len(),
        1,
        "a refused step records nothing"
    );

    let delivered = store.deliver_ops(&host.id, T0 + 20).await.expect("deliver");
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].status, "delivered");
    assert_eq!(delivered[0].delivered_at_ms, Some(T0 + 20));
    let kinds: Vec<String> = host_events(store, &host.id)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec!["op_delivered".to_string(), "op_signed".to_string()]
    );
    let again = store.deliver_ops(&host.id, T0 + 21).await.unwrap();
    assert_eq!(
        again, delivered,
        "a delivered op is served again until it finishes"
    );
    assert_eq!(
        host_events(store, &host.id).await.len(),
        2,
        "without a second event"
    );

    // The executed op takes the guest out of the desired state.
    let mut done = transition(&op.id, &["delivered"], "executed", T0 + 30);
    done.result_json = Some(r#"{"ok":true}"#.into());
    done.desired_after = Some(r#"{"guests":{}}"#.into());
    done.guest_specs = vec![(guest.id.clone(), None)];
    done.event.host_id = Some(host.id.clone());
    let finished = store.transition_op(&done).await.expect("executed");
    assert_eq!(finished.status, "executed");
    assert_eq!(finished.finished_at_ms, Some(T0 + 30));
    assert_eq!(finished.result_json.as_deref(), Some(r#"{"ok":true}"#));
    assert_eq!(finished.signature, sign.signature, "the signature is kept");
    let host_after = store.get_host(&host.id).await.unwrap().unwrap();
    assert_eq!(host_after.desired_generation, 1);
    assert_eq!(host_after.desired_json, r#"{"guests":{}}"#);
    assert_eq!(host_after.desired_updated_at_ms, T0 + 30);
    assert!(store
        .deliver_ops(&host.id, T0 + 31)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.get_op(&op.id).await.unwrap().as_ref(),
        Some(&finished)
    );
}

/// Only this host's unexpired signed or delivered ops, oldest first, nothing when blocked.
pub async fn fleet_deliver_ops(store: &dyn Store) {
    let (customer, host) = customer_with_host(store, T0).await;
    let (_, neighbour) = customer_with_host(store, T0).await;
    let now = T0 + 10_000;
    let mut later = new_op(&customer.id, &host.id, T0 + 2);
    later.expires_at_ms = now; // expires exactly now: still deliverable
    let earlier = new_op(&customer.id, &host.id, T0 + 1);
    let mut expired = new_op(&customer.id, &host.id, T0);
    expired.expires_at_ms = now - 1;
    let unsigned = new_op(&customer.id, &host.id, T0);
    let ops = vec![
        later.clone(),
        earlier.clone(),
        expired.clone(),
        unsigned.clone(),
    ];
    store
        .apply_desired_edit(&ops_edit(&host.id, ops, T0))
        .await
        .unwrap();
    for op in [&later, &earlier, &expired] {
        store
            .transition_op(&transition(
                &op.id,
                &["pending_signature"],
                "signed",
                T0 + 5,
            ))
            .await
            .unwrap();
    }
    assert!(store
        .deliver_ops(&neighbour.id, now)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .deliver_ops(&uid("hst"), now)
        .await
        .unwrap()
        .is_empty());

    let block = |status: &str| CustomerUpdate {
        status: Some(status.to_string()),
        updated_at_ms: now,
        ..CustomerUpdate::default()
    };
    store
        .update_customer(&customer.id, &block("blocked"))
        .await
        .unwrap();
    assert!(
        store.deliver_ops(&host.id, now).await.unwrap().is_empty(),
        "a blocked customer gets no ops"
    );
    assert_eq!(
        store.get_op(&earlier.id).await.unwrap().unwrap().status,
        "signed",
        "and nothing was marked delivered"
    );
    store
        .update_customer(&customer.id, &block("active"))
        .await
        .unwrap();

    let ids: Vec<String> = store
        .deliver_ops(&host.id, now)
        .await
        .unwrap()
        .into_iter()
        .map(|op| op.id)
        .collect();
    assert_eq!(
        ids,
        vec![earlier.id.clone(), later.id.clone()],
        "oldest first"
    );
    assert_eq!(
        store.get_op(&expired.id).await.unwrap().unwrap().status,
        "signed"
    );
    assert_eq!(
        store.get_op(&unsigned.id).await.unwrap().unwrap().status,
        "pending_signature"
    );
    let delivered_events = store
        .list_events(&EventFilter {
            host_id: Some(host.id.clone()),
            kind: Some("op_delivered".into()),
            limit: 10,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    let mut event_ops: Vec<String> = delivered_events
        .iter()
        .filter_map(|event| event.op_id.clone())
        .collect();
    event_ops.sort();
    let mut expected = vec![earlier.id.clone(), later.id.clone()];
    expected.sort();
    assert_eq!(
        event_ops, expected,
        "one op_delivered event per delivered op"
    );
    assert!(delivered_events
        .iter()
        .all(|event| event.customer_id.as_deref() == Some(customer.id.as_str())));
}

/// Unfinished ops past their expiry become `expired` with an event; others are left alone.
pub async fn fleet_expire_ops(store: &dyn Store) {
    let (customer, host) = customer_with_host(store, T0).await;
    let now = T0 + 50_000;
    let mk = |expires_at_ms: i64| {
        let mut op = new_op(&customer.id, &host.id, T0);
        op.expires_at_ms = expires_at_ms;
        op
    };
    let (pending, signed, delivered, finished, current, boundary) = (
        mk(now - 1),
        mk(now - 1),
        mk(now - 1),
        mk(now - 1),
        mk(now + 1),
        mk(now),
    );
    let all = vec![
        pending.clone(),
        signed.clone(),
        delivered.clone(),
        finished.clone(),
        current.clone(),
        boundary.clone(),
    ];
    store
        .apply_desired_edit(&ops_edit(&host.id, all, T0))
        .await
        .unwrap();
    for op in [&signed, &delivered, &finished] {
        store
            .transition_op(&transition(
                &op.id,
                &["pending_signature"],
                "signed",
                T0 + 1,
            ))
            .await
            .unwrap();
    }
    for op in [&delivered, &finished] {
        store
            .transition_op(&transition(&op.id, &["signed"], "delivered", T0 + 2))
            .await
            .unwrap();
    }
    store
        .transition_op(&transition(&finished.id, &["delivered"], "failed", T0 + 3))
        .await
        .unwrap();

    let mut ids: Vec<String> = store
        .expire_ops(now)
        .await
        .unwrap()
        .into_iter()
        .filter(|op| op.host_id == host.id)
        .map(|op| {
            assert_eq!(op.status, "expired");
            assert_eq!(op.finished_at_ms, Some(now));
            op.id
        })
        .collect();
    ids.sort();
    let mut expected = vec![pending.id.clone(), signed.id.clone(), delivered.id.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(
        store.get_op(&finished.id).await.unwrap().unwrap().status,
        "failed"
    );
    for op in [&current, &boundary] {
        assert_eq!(
            store.get_op(&op.id).await.unwrap().unwrap().status,
            "pending_signature",
            "an op is expired only once expires_at < now"
        );
    }
    let events = store
        .list_events(&EventFilter {
            host_id: Some(host.id.clone()),
            kind: Some("op_expired".into()),
            limit: 10,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 3, "one op_expired event per expired op");
    assert!(events.iter().all(
        |event| matches!(event.severity.as_str(), "info" | "warning") && event.op_id.is_some()
    ));
    assert!(
        store
            .expire_ops(now)
            .await
            .unwrap()
            .iter()
            .all(|op| op.host_id != host.id),
        "a second sweep finds nothing of ours"
    );
}

/// Filters by host, customer and statuses, newest first, limited.
pub async fn fleet_list_ops(store: &dyn Store) {
    let (customer, host) = customer_with_host(store, T0).await;
    let second = store
        .create_host(&new_host(&customer.id, T0), 100)
        .await
        .unwrap();
    let (a, b, c) = (
        new_op(&customer.id, &host.id, T0),
        new_op(&customer.id, &host.id, T0),
        new_op(&customer.id, &second.id, T0),
    );
    store
        .apply_desired_edit(&ops_edit(&host.id, vec![a.clone()], T0 + 1))
        .await
        .unwrap();
    store
        .apply_desired_edit(&ops_edit(&host.id, vec![b.clone()], T0 + 2))
        .await
        .unwrap();
    store
        .apply_desired_edit(&ops_edit(&second.id, vec![c.clone()], T0 + 3))
        .await
        .unwrap();
    store
        .transition_op(&transition(&b.id, &["pending_signature"], "signed", T0 + 4))
        .await
        .unwrap();
    let list = |filter: OpFilter| async move {
        store
            .list_ops(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|op| op.id)
            .collect::<Vec<_>>()
    };
    let by_host = |host_id: &str| OpFilter {
        host_id: Some(host_id.to_string()),
        limit: 10,
        ..OpFilter::default()
    };
    assert_eq!(
        list(by_host(&host.id)).await,
        vec![b.id.clone(), a.id.clone()],
        "newest first"
    );
    assert_eq!(list(by_host(&second.id)).await, vec![c.id.clone()]);
    let by_customer = OpFilter {
        customer_id: Some(customer.id.clone()),
        limit: 10,
        ..OpFilter::default()
    };
    assert_eq!(
        list(by_customer.clone()).await,
        vec![c.id.clone(), b.id.clone(), a.id.clone()]
    );
    assert_eq!(
        list(OpFilter {
            limit: 2,
            ..by_customer.clone()
        })
        .await,
        vec![c.id.clone(), b.id.clone()]
    );
    assert_eq!(
        list(OpFilter {
            statuses: vec!["signed".into()],
            ..by_customer.clone()
        })
        .await,
        vec![b.id.clone()]
    );
    assert_eq!(
        list(OpFilter {
            statuses: vec!["signed".into(), "pending_signature".into()],
            host_id: Some(host.id.clone()),
            ..by_customer
        })
        .await,
        vec![b.id.clone(), a.id.clone()]
    );
    assert!(
        list(OpFilter {
            limit: 5,
            ..OpFilter::default()
        })
        .await
        .len()
            <= 5
    );
}
