//! Fleet contract: each host is judged by the poll interval it was last told (issue 17,
//! decision 0024), and the fleet size that interval is sized for.

use super::fleet::{
    customer_with_host, host_events, host_report, new_host, rule, POLL_SECONDS, T0,
};
use crate::{liveness, Store};

/// Thresholds scale with the interval a host was told (never below the configured one), the
/// interval is kept from the latest report, and a host told a shorter interval again is judged
/// by the shorter rule from then on.
pub async fn fleet_liveness_follows_poll_interval(store: &dyn Store) {
    let base = T0 + 40_000_000;
    let (stale_after, down_after) = (1_000, 10_000);
    let (customer, long) = customer_with_host(store, base).await;
    let mut hosts = vec![long.id.clone()];
    for _ in 0..2 {
        let host = store
            .create_host(&new_host(&customer.id, base), 100)
            .await
            .expect("create host");
        hosts.push(host.id);
    }
    let (long, floor, short) = (hosts[0].clone(), hosts[1].clone(), hosts[2].clone());
    let report = |host_id: String, at: i64, told: i64| {
        let mut report = host_report(&customer.id, &host_id, at);
        report.poll_interval_seconds = told;
        async move {
            store.ingest_host_reports(&[report]).await.unwrap()[0]
                .as_ref()
                .expect("ack");
        }
    };
    report(long.clone(), base, 3 * POLL_SECONDS).await;
    report(floor.clone(), base, POLL_SECONDS).await;
    report(short.clone(), base, POLL_SECONDS / 2).await;
    assert_eq!(
        store
            .get_host(&long)
            .await
            .unwrap()
            .unwrap()
            .poll_interval_seconds,
        Some(3 * POLL_SECONDS),
        "ingest keeps the interval the host was told"
    );
    let pass = |now: i64| {
        let hosts = hosts.clone();
        async move {
            store
                .liveness_pass(&rule(now, stale_after, down_after, 0))
                .await
                .expect("liveness_pass")
                .into_iter()
                .filter(|change| hosts.contains(&change.host_id))
                .map(|change| (change.host_id, change.to))
                .collect::<Vec<_>>()
        }
    };
    let stale = |host: &String| (host.clone(), liveness::STALE.to_string());
    let mut expected = vec![stale(&floor), stale(&short)];
    expected.sort();
    assert_eq!(
        pass(base + stale_after).await,
        expected,
        "the configured rule for the configured interval, and never a shorter one"
    );
    assert!(
        pass(base + 3 * stale_after - 1).await.is_empty(),
        "a host told three intervals is not stale before three stale periods"
    );
    assert_eq!(pass(base + 3 * stale_after).await, vec![stale(&long)]);

    // Told the configured interval again, the host is judged by the configured rule from its
    // next report on: it recovers, then goes stale one (unscaled) period later.
    let again = base + 3 * stale_after + 1;
    report(long.clone(), again, POLL_SECONDS).await;
    assert_eq!(
        pass(again).await,
        vec![(long.clone(), liveness::OK.to_string())]
    );
    assert!(pass(again + stale_after - 1).await.is_empty());
    assert_eq!(pass(again + stale_after).await, vec![stale(&long)]);
    assert_eq!(
        host_events(store, &long).await.len(),
        3,
        "one event per transition"
    );

    // Down scales the same way: the floor host is down after one down period, not three.
    let changes = pass(base + down_after).await;
    assert!(changes.contains(&(floor.clone(), liveness::DOWN.to_string())));
    assert!(!changes.iter().any(|(host, _)| *host == long));
}

/// `count_hosts` counts every enrolled host, of every customer, reported or not.
pub async fn fleet_count_hosts(store: &dyn Store) {
    let before = store.count_hosts().await.expect("count_hosts");
    let (customer, _) = customer_with_host(store, T0).await;
    store
        .create_host(&new_host(&customer.id, T0), 100)
        .await
        .expect("create host");
    assert_eq!(store.count_hosts().await.unwrap(), before + 2);
    store.delete_customer(&customer.id).await.expect("delete");
    assert_eq!(
        store.count_hosts().await.unwrap(),
        before,
        "a deleted customer's hosts (and their liveness rows) are gone"
    );
}
