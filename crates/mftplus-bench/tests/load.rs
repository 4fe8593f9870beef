//! The load generator against a real cloud on port 0: reports are accepted and stored, and a
//! wrong key shows up as 401s in the error counts rather than as throughput.

use mftplus_bench::load::{self, LoadOptions};
use mftplus_bench::seed::{self, SeededHost};
use mftplus_cloud::testing::{TestCloud, TestOptions};
use std::time::Duration;

fn options(url: &str) -> LoadOptions {
    LoadOptions {
        url: url.into(),
        duration: Duration::from_millis(1_500),
        warmup: Duration::from_millis(300),
        connections: 4,
        report_bytes: 4096,
    }
}

async fn cloud() -> TestCloud {
    TestCloud::spawn_with(TestOptions {
        database_url: None,
        config_yaml: "rate_limit:\n  enabled: false\n".into(),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_accepted_stored_and_measured() {
    let cloud = cloud().await;
    let store = cloud.state.store.clone();
    let customer = seed::create_customer(&*store, 8).await.unwrap();
    let hosts = seed::create_hosts(store.clone(), &customer, 0, 8, 3, 8, 2)
        .await
        .unwrap();

    let summary = load::run(&hosts, &options(&cloud.url)).await.unwrap();
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert!(summary.ok > 10, "only {} reports", summary.ok);
    assert_eq!(summary.requests, summary.ok);
    assert!(summary.p50_ms > 0.0 && summary.p50_ms <= summary.p99_ms);
    assert!(summary.p99_ms <= summary.max_ms);

    for host in &hosts {
        let reports = store.list_host_reports(&host.host_id, 1).await.unwrap();
        assert_eq!(reports.len(), 1, "{} has a stored report", host.host_id);
        assert_eq!(reports[0].guests_total, 3);
        let row = store.get_host(&host.host_id).await.unwrap().unwrap();
        assert!(row.last_report_at_ms.is_some());
        let guests = store.list_guests(Some(&host.host_id), None).await.unwrap();
        assert!(guests.iter().all(|g| g.last_seen_at_ms.is_some()));
    }
    cloud.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_counted_as_an_error() {
    let cloud = cloud().await;
    let hosts = vec![SeededHost {
        host_id: "h-nobody".into(),
        key: "mfth_0000000000000000000000000000000000000000".into(),
    }];
    let summary = load::run(&hosts, &options(&cloud.url)).await.unwrap();
    assert_eq!(summary.ok, 0);
    assert_eq!(summary.reports_per_s, 0.0);
    assert!(
        summary.errors.get("401").copied().unwrap_or(0) > 0,
        "{:?}",
        summary.errors
    );
    cloud.stop().await;
}
