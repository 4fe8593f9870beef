//! Fleet contract: reports carrying an idempotency key (an edge hub's replay) are stored and
//! applied once per (host or guest, key), duplicates inside one batch included.

use super::fleet::{customer_with_host, host_report, new_guest, T0};
use crate::{NewGuestReport, Store};

pub async fn fleet_report_idempotency(store: &dyn Store) {
    let (customer, host) = customer_with_host(store, T0).await;
    let (_, other) = customer_with_host(store, T0).await;

    let keyed = |host_id: &str, at: i64, key: &str, version: &str| {
        let mut report = host_report(&customer.id, host_id, at);
        report.idempotency_key = Some(key.into());
        report.agent_version = version.into();
        report
    };
    let first = keyed(&host.id, T0 + 10, "k-1", "1.0.0");
    // The same key again in the same batch, with different content: acknowledged, not applied.
    let replay = keyed(&host.id, T0 + 20, "k-1", "6.6.6");
    let plain = host_report(&customer.id, &host.id, T0 + 30);
    let acks = store
        .ingest_host_reports(&[first.clone(), replay.clone(), plain])
        .await
        .expect("batch");
    assert!(
        acks.iter().all(Result::is_ok),
        "every report acked: {acks:?}"
    );
    // A later batch replays the key once more; a same key on another host is another report.
    let acks = store
        .ingest_host_reports(&[replay, keyed(&other.id, T0 + 40, "k-1", "2.0.0")])
        .await
        .expect("second batch");
    assert!(acks.iter().all(Result::is_ok), "replays acked: {acks:?}");

    let rows = store.list_host_reports(&host.id, 100).await.unwrap();
    assert_eq!(rows.len(), 2, "the keyed report once plus the plain one");
    assert_eq!(
        rows.iter().filter(|r| r.received_at_ms == T0 + 10).count(),
        1,
        "the first delivery is the one kept"
    );
    assert!(rows.iter().all(|r| r.received_at_ms != T0 + 20));
    let stored = store.get_host(&host.id).await.unwrap().unwrap();
    assert_eq!(
        stored.last_report_at_ms,
        Some(T0 + 30),
        "a replay does not move reality"
    );
    assert_ne!(stored.agent_version, "6.6.6");
    assert_eq!(
        store.list_host_reports(&other.id, 10).await.unwrap().len(),
        1
    );

    let guest = store
        .create_guest(&new_guest(&customer.id, &host.id, T0))
        .await
        .unwrap();
    let guest_report = |at: i64, key: Option<&str>| NewGuestReport {
        guest_id: guest.id.clone(),
        host_id: host.id.clone(),
        customer_id: customer.id.clone(),
        received_at_ms: at,
        controller_version: None,
        cpu_percent: None,
        memory_used_bytes: None,
        memory_total_bytes: None,
        report_json: format!(r#"{{"at":{at}}}"#),
        idempotency_key: key.map(str::to_owned),
    };
    let results = store
        .ingest_guest_reports(&[
            guest_report(T0 + 50, Some("g-1")),
            guest_report(T0 + 60, Some("g-1")),
            guest_report(T0 + 70, None),
        ])
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let results = store
        .ingest_guest_reports(&[guest_report(T0 + 80, Some("g-1"))])
        .await
        .unwrap();
    assert!(results[0].is_ok());
    let rows = store.list_guest_reports(&guest.id, 100).await.unwrap();
    let mut at: Vec<i64> = rows.iter().map(|r| r.received_at_ms).collect();
    at.sort();
    assert_eq!(at, vec![T0 + 50, T0 + 70], "one row per key");

    // Keys are pruned with the reports: an ancient key goes, and the same key is new again.
    let ancient = keyed(&other.id, 1_000, "k-old", "1.0.0");
    store
        .ingest_host_reports(std::slice::from_ref(&ancient))
        .await
        .unwrap();
    store.prune_fleet(2_000, 0).await.unwrap();
    store.ingest_host_reports(&[ancient]).await.unwrap();
    let rows = store.list_host_reports(&other.id, 10).await.unwrap();
    assert_eq!(
        rows.iter().filter(|r| r.received_at_ms == 1_000).count(),
        1,
        "after pruning the key (and its report) the replay is stored again"
    );
}
