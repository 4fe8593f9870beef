//! Fleet contract: events, liveness, backup facts, leases, pruning and notifications.

use super::fleet::{
    customer_with_host, event, host_events, host_report, new_customer, new_host, rule, T0,
};
use super::{assert_not_found, uid};
use crate::{liveness, CustomerUpdate, EventFilter, NewGuestReport, NewNotificationLog, Store};

/// Ids in order; filters; newest first, or oldest first when following.
pub async fn fleet_events(store: &dyn Store) {
    let (customer, host) = customer_with_host(store, T0).await;
    let (_, other) = customer_with_host(store, T0).await;
    let mut batch = vec![
        event(T0 + 1, "alpha", &customer.id, &host.id),
        event(T0 + 2, "beta", &customer.id, &host.id),
        event(T0 + 3, "alpha", &customer.id, &other.id),
    ];
    batch[1].severity = "critical".into();
    batch[1].guest_id = Some("gst-x".into());
    batch[1].op_id = Some("op-x".into());
    let ids = store.append_events(&batch).await.expect("append");
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "ids ascend");
    assert!(store.append_events(&[]).await.unwrap().is_empty());

    let list = |filter: EventFilter| async move { store.list_events(&filter).await.unwrap() };
    let mine = list(EventFilter {
        host_id: Some(host.id.clone()),
        limit: 10,
        ..EventFilter::default()
    })
    .await;
    assert_eq!(
        mine.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[1], ids[0]],
        "newest first"
    );
    let beta = &mine[0];
    assert_eq!(
        (beta.at_ms, beta.kind.as_str(), beta.severity.as_str()),
        (T0 + 2, "beta", "critical")
    );
    assert_eq!(beta.customer_id.as_deref(), Some(customer.id.as_str()));
    assert_eq!(beta.guest_id.as_deref(), Some("gst-x"));
    assert_eq!(beta.op_id.as_deref(), Some("op-x"));
    assert_eq!(beta.details_json, r#"{"why":"test"}"#);

    let of_customer = EventFilter {
        customer_id: Some(customer.id.clone()),
        limit: 10,
        ..EventFilter::default()
    };
    assert_eq!(list(of_customer.clone()).await.len(), 3);
    let alphas = list(EventFilter {
        kind: Some("alpha".into()),
        ..of_customer.clone()
    })
    .await;
    assert_eq!(
        alphas.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[2], ids[0]]
    );
    let followed = list(EventFilter {
        after_id: Some(ids[0]),
        ..of_customer.clone()
    })
    .await;
    assert_eq!(
        followed.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[1], ids[2]],
        "following reads oldest first after the given id"
    );
    let limited = list(EventFilter {
        limit: 1,
        ..of_customer.clone()
    })
    .await;
    assert_eq!(
        limited.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[2]]
    );
    let older = list(EventFilter {
        before_id: Some(ids[2]),
        limit: 1,
        ..of_customer.clone()
    })
    .await;
    assert_eq!(
        older.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[1]],
        "the cursor going back stays newest first"
    );
    let older_alphas = list(EventFilter {
        kind: Some("alpha".into()),
        before_id: Some(ids[2]),
        ..of_customer
    })
    .await;
    assert_eq!(
        older_alphas.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[0]]
    );
    let global = list(EventFilter {
        limit: 2,
        ..EventFilter::default()
    })
    .await;
    assert_eq!(global.len(), 2);
    assert!(global[0].id > global[1].id);
}

/// ok → stale → down → ok, one event each; never-reported hosts, blocked customers and the
/// start-up grace are respected.
pub async fn fleet_liveness(store: &dyn Store) {
    let base = T0 + 10_000_000;
    let (stale_after, down_after) = (1_000, 10_000);
    let (customer, host) = customer_with_host(store, base).await;
    let silent = store
        .create_host(&new_host(&customer.id, base), 100)
        .await
        .unwrap();
    let (blocked, blocked_host) = customer_with_host(store, base).await;
    let report = |customer_id: &str, host_id: &str, at: i64| {
        let report = host_report(customer_id, host_id, at);
        async move {
            store.ingest_host_reports(&[report]).await.unwrap()[0]
                .as_ref()
                .expect("ack");
        }
    };
    report(&customer.id, &host.id, base).await;
    report(&blocked.id, &blocked_host.id, base).await;
    store
        .update_customer(
            &blocked.id,
            &CustomerUpdate {
                status: Some("blocked".into()),
                updated_at_ms: base,
                ..CustomerUpdate::default()
            },
        )
        .await
        .unwrap();
    let ours = [host.id.clone(), silent.id.clone(), blocked_host.id.clone()];
    let pass = |now: i64, grace: i64| {
        let ours = ours.clone();
        async move {
            store
                .liveness_pass(&rule(now, stale_after, down_after, grace))
                .await
                .expect("liveness_pass")
                .into_iter()
                .filter(|change| ours.contains(&change.host_id))
                .collect::<Vec<_>>()
        }
    };

    assert!(
        pass(base + stale_after - 1, 0).await.is_empty(),
        "fresh is ok"
    );
    // The cloud itself was down until `grace`: age counts from there, not from the report.
    assert!(pass(base + down_after + 10, base + down_after)
        .await
        .is_empty());
    assert_eq!(
        store.get_host(&host.id).await.unwrap().unwrap().liveness,
        liveness::OK
    );
    let changes = pass(base + stale_after, 0).await;
    assert_eq!(
        changes.len(),
        1,
        "only the reporting host of the active customer: {changes:?}"
    );
    let change = &changes[0];
    assert_eq!(change.host_id, host.id);
    assert_eq!(change.customer_id, customer.id);
    assert_eq!(
        (change.from.as_str(), change.to.as_str()),
        (liveness::OK, liveness::STALE)
    );
    assert_eq!(
        store.get_host(&host.id).await.unwrap().unwrap().liveness,
        liveness::STALE
    );
    let events = host_events(store, &host.id).await;
    assert_eq!(events.len(), 1, "one event per transition");
    assert_eq!(events[0].id, change.event_id);
    assert_eq!(events[0].kind, liveness::EVENT_STALE);
    assert_eq!(events[0].severity, "warning");
    assert_eq!(events[0].customer_id.as_deref(), Some(customer.id.as_str()));
    let details: serde_json::Value = serde_json::from_str(&events[0].details_json).unwrap();
    assert!(details.is_object(), "details are a JSON object");

    assert!(
        pass(base + stale_after + 5, 0).await.is_empty(),
        "no change, no event"
    );
    assert_eq!(host_events(store, &host.id).await.len(), 1);

    let changes = pass(base + down_after, 0).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].from.as_str(), changes[0].to.as_str()),
        ("stale", "down")
    );
    let events = host_events(store, &host.id).await;
    assert_eq!(
        (events[0].kind.as_str(), events[0].severity.as_str()),
        (liveness::EVENT_DOWN, "critical")
    );

    report(&customer.id, &host.id, base + down_after + 100).await;
    assert_eq!(
        store.get_host(&host.id).await.unwrap().unwrap().liveness,
        liveness::DOWN,
        "liveness is the checker's column, not the report's"
    );
    let changes = pass(base + down_after + 100, 0).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].from.as_str(), changes[0].to.as_str()),
        ("down", "ok")
    );
    let events = host_events(store, &host.id).await;
    assert_eq!(events.len(), 3);
    assert_eq!(
        (events[0].kind.as_str(), events[0].severity.as_str()),
        (liveness::EVENT_RECOVERED, "info")
    );
    assert_eq!(
        store.get_host(&host.id).await.unwrap().unwrap().liveness,
        "ok"
    );

    // Straight from ok to down when a whole down period passes between two passes.
    let changes = pass(base + 3 * down_after, 0).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].from.as_str(), changes[0].to.as_str()),
        ("ok", "down")
    );
    for skipped in [&silent.id, &blocked_host.id] {
        assert_eq!(
            store.get_host(skipped).await.unwrap().unwrap().liveness,
            "ok"
        );
        assert!(host_events(store, skipped).await.is_empty());
    }
}

/// Only hosts that reported, are not down and belong to an active customer; the overdue set
/// is written with its events.
pub async fn fleet_backup_facts(store: &dyn Store) {
    let base = T0 + 20_000_000;
    let (customer, fresh) = customer_with_host(store, base).await;
    let silent = store
        .create_host(&new_host(&customer.id, base), 100)
        .await
        .unwrap();
    let gone_quiet = store
        .create_host(&new_host(&customer.id, base), 100)
        .await
        .unwrap();
    let (blocked, blocked_host) = customer_with_host(store, base).await;
    for (customer_id, host_id, at) in [
        (&customer.id, &gone_quiet.id, base),
        (&customer.id, &fresh.id, base + 10_000),
        (&blocked.id, &blocked_host.id, base + 10_000),
    ] {
        store
            .ingest_host_reports(&[host_report(customer_id, host_id, at)])
            .await
            .unwrap();
    }
    store
        .liveness_pass(&rule(base + 10_001, 5_000, 9_000, 0))
        .await
        .unwrap();
    store
        .update_customer(
            &blocked.id,
            &CustomerUpdate {
                status: Some("blocked".into()),
                updated_at_ms: base,
                ..CustomerUpdate::default()
            },
        )
        .await
        .unwrap();
    let ours = [&fresh.id, &silent.id, &gone_quiet.id, &blocked_host.id];
    let facts: Vec<_> = store
        .list_backup_facts()
        .await
        .unwrap()
        .into_iter()
        .filter(|facts| ours.contains(&&facts.host_id))
        .collect();
    assert_eq!(facts.len(), 1, "{facts:?}");
    let facts = &facts[0];
    let host = store.get_host(&fresh.id).await.unwrap().unwrap();
    assert_eq!(facts.host_id, host.id);
    assert_eq!(facts.customer_id, customer.id);
    assert_eq!(facts.desired_json, host.desired_json);
    assert_eq!(facts.last_backups_json, host.last_backups_json);
    assert_eq!(facts.backup_missed_json, "[]");

    let events = [
        event(base, "expected_backup_missed", &customer.id, &fresh.id),
        event(base, "expected_backup_missed", &customer.id, &fresh.id),
    ];
    let ids = store
        .set_backup_missed(&fresh.id, r#"["d1","d2"]"#, &events)
        .await
        .expect("set_backup_missed");
    assert_eq!(ids.len(), 2);
    assert_eq!(
        store
            .get_host(&fresh.id)
            .await
            .unwrap()
            .unwrap()
            .backup_missed_json,
        r#"["d1","d2"]"#
    );
    let listed: Vec<i64> = host_events(store, &fresh.id)
        .await
        .iter()
        .map(|e| e.id)
        .collect();
    assert!(ids.iter().all(|id| listed.contains(id)));
    assert_not_found(
        store.set_backup_missed(&uid("hst"), "[]", &[]).await,
        "overdue set of an unknown host",
    );
}

/// One holder at a time; the holder renews; expiry lets another in.
pub async fn fleet_leases(store: &dyn Store) {
    let name = uid("lease");
    let now = T0;
    assert!(store
        .try_acquire_lease(&name, "a", now, 1_000)
        .await
        .unwrap());
    assert!(!store
        .try_acquire_lease(&name, "b", now + 1, 1_000)
        .await
        .unwrap());
    assert!(
        store
            .try_acquire_lease(&name, "a", now + 500, 1_000)
            .await
            .unwrap(),
        "renew"
    );
    assert!(
        !store
            .try_acquire_lease(&name, "b", now + 1_200, 1_000)
            .await
            .unwrap(),
        "the renewal moved the expiry"
    );
    assert!(store
        .try_acquire_lease(&name, "b", now + 1_500, 1_000)
        .await
        .unwrap());
    assert!(!store
        .try_acquire_lease(&name, "a", now + 1_600, 1_000)
        .await
        .unwrap());
    let other = uid("lease");
    assert!(
        store
            .try_acquire_lease(&other, "a", now + 1_600, 1_000)
            .await
            .unwrap(),
        "leases are independent by name"
    );
}

/// Old reports, events and log entries go; newer ones stay.
pub async fn fleet_prune(store: &dyn Store) {
    // Small timestamps: no other section writes before T0.
    let (old, cutoff, recent) = (1_000, 2_000, 3_000);
    let (customer, host) = customer_with_host(store, T0).await;
    let guest = store
        .create_guest(&super::fleet::new_guest(&customer.id, &host.id, T0))
        .await
        .unwrap();
    for at in [old, recent] {
        store
            .ingest_host_reports(&[host_report(&customer.id, &host.id, at)])
            .await
            .unwrap();
        store
            .ingest_guest_reports(&[NewGuestReport {
                guest_id: guest.id.clone(),
                host_id: host.id.clone(),
                customer_id: customer.id.clone(),
                received_at_ms: at,
                controller_version: None,
                cpu_percent: None,
                memory_used_bytes: None,
                memory_total_bytes: None,
                report_json: "{}".into(),
                idempotency_key: None,
            }])
            .await
            .unwrap();
        store
            .append_events(&[event(at, "prune_me", &customer.id, &host.id)])
            .await
            .unwrap();
        store
            .log_notification(&notification(at, &customer.id))
            .await
            .unwrap();
    }
    let counts = store.prune_fleet(cutoff, cutoff).await.expect("prune");
    assert!(counts.host_reports >= 1 && counts.guest_reports >= 1);
    assert!(counts.events >= 1 && counts.notifications >= 1);
    let reports = store.list_host_reports(&host.id, 10).await.unwrap();
    assert_eq!(
        reports.iter().map(|r| r.received_at_ms).collect::<Vec<_>>(),
        vec![recent]
    );
    let guest_reports = store.list_guest_reports(&guest.id, 10).await.unwrap();
    assert_eq!(guest_reports.len(), 1);
    assert_eq!(guest_reports[0].received_at_ms, recent);
    let events = host_events(store, &host.id).await;
    assert_eq!(
        events.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
        vec![recent]
    );
    let again = store.prune_fleet(cutoff, cutoff).await.unwrap();
    assert_eq!(
        again,
        crate::PruneCounts::default(),
        "nothing left to prune"
    );
    // Events have their own, longer retention.
    let counts = store.prune_fleet(cutoff, recent + 1).await.unwrap();
    assert_eq!((counts.host_reports, counts.events), (0, 1));
}

fn notification(at_ms: i64, customer_id: &str) -> NewNotificationLog {
    NewNotificationLog {
        at_ms,
        event_id: Some(7),
        customer_id: Some(customer_id.to_string()),
        tier: "customer".into(),
        channel: "email".into(),
        recipient: "ops@example.com".into(),
        status: "sent".into(),
        error: None,
    }
}

/// The cooldown gate, its bypass, and the log.
pub async fn fleet_notifications(store: &dyn Store) {
    let customer = store.create_customer(&new_customer(T0)).await.unwrap();
    let key = uid("notify");
    let cooldown = 60_000;
    let claim = |now: i64, bypass: bool| {
        let key = key.clone();
        let customer_id = customer.id.clone();
        async move {
            store
                .claim_notification(&key, Some(&customer_id), now, cooldown, bypass)
                .await
                .unwrap()
        }
    };
    assert!(claim(T0, false).await, "never sent: send");
    assert!(!claim(T0 + 1, false).await, "inside the cooldown: hold");
    assert!(claim(T0 + 2, true).await, "bypass sends anyway");
    assert!(
        !claim(T0 + 2 + cooldown - 1, false).await,
        "the bypass restarted the cooldown"
    );
    assert!(
        claim(T0 + 2 + cooldown, false).await,
        "at the end of the cooldown: send"
    );
    assert!(
        store
            .claim_notification(&uid("notify"), None, T0, cooldown, false)
            .await
            .unwrap(),
        "keys are independent; a customer is optional"
    );

    let mut failed = notification(T0 + 10, &customer.id);
    failed.status = "failed".into();
    failed.error = Some("smtp: 550".into());
    failed.event_id = None;
    let first = store
        .log_notification(&notification(T0 + 9, &customer.id))
        .await
        .unwrap();
    let second = store.log_notification(&failed).await.unwrap();
    assert!(second > first);
    let rows = store.list_notifications(2).await.unwrap();
    assert_eq!(
        rows.iter().map(|row| row.id).collect::<Vec<_>>(),
        vec![second, first]
    );
    let row = &rows[0];
    assert_eq!(row.at_ms, T0 + 10);
    assert_eq!(row.event_id, None);
    assert_eq!(row.customer_id.as_deref(), Some(customer.id.as_str()));
    assert_eq!(
        (
            row.tier.as_str(),
            row.channel.as_str(),
            row.recipient.as_str()
        ),
        ("customer", "email", "ops@example.com")
    );
    assert_eq!(
        (row.status.as_str(), row.error.as_deref()),
        ("failed", Some("smtp: 550"))
    );
    assert_eq!(rows[1].event_id, Some(7));
}
