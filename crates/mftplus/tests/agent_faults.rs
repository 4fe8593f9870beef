//! The agent under faults, all real processes and the real Docker Engine:
//! - `kill -9` at seeded random points while it reconciles (creates, stops, starts, resizes,
//!   and a signed removal), restarted each time: it converges, no container is duplicated or
//!   lost, and the journal holds no step still `begun`;
//! - the cloud unreachable for a while: guests keep running, an agent that talks to the cloud
//!   directly backs off and resumes, and one behind an edge hub has its reports queued there
//!   and replayed once when the cloud is back.
//!
//! The seed is printed; `MFTPLUS_AGENT_CRASH_SEED=<n>` replays a run.

mod agent_support;

use agent_support::*;
use mftplus_client::OpQuery;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_types::fleet::op_status;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// xorshift64*: a small seeded generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `mftctl desired set HOST` with these guests, as an operator would; must succeed.
fn set_desired(
    cloud: &TestCloud,
    dir: &std::path::Path,
    host_id: &str,
    image: &str,
    guests: &[(String, bool, u64)],
) {
    let file = dir.join("desired.yaml");
    std::fs::write(&file, desired_text(image, guests)).unwrap();
    let code = mftctl(
        cloud,
        dir,
        &["desired", "set", host_id, file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "mftctl desired set {host_id}");
}

fn desired_text(image: &str, guests: &[(String, bool, u64)]) -> String {
    let mut text = String::from("guests:\n");
    for (id, running, memory_mb) in guests {
        text.push_str(&format!(
            "  {id}:\n    spec:\n      kind: container\n      image: {image}\n      memory_mb: {memory_mb}\n    run_state: {}\n",
            if *running { "running" } else { "stopped" }
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_of_a_reconcile_then_restart_converges() {
    if !mftplus_agent::testing::docker_available() {
        return;
    }
    let image = mftplus_agent::testing::guest_image();
    let seed: u64 = std::env::var("MFTPLUS_AGENT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) << 20 | 0x9e37);
    eprintln!("agent crash test seed: {seed} (MFTPLUS_AGENT_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed | 1);
    let tag = format!("{:06x}", seed & 0xff_ffff);
    let ids: Vec<String> = (0..3).map(|i| format!("crash{i}-{tag}")).collect();
    let _cleanup = ContainerGuard(ids.clone());

    let cloud = fast_cloud().await;
    customer(&cloud, "kovacs").await;
    let operator = operator(&cloud);
    let dir = tempfile::tempdir().unwrap();
    let agent_box = Box::new(&dir.path().join("box"), &cloud.url);
    let host_id = enrolled_host_id(&agent_box.enroll("kovacs", &[]));
    let mut agent = agent_box.start();

    // Each round changes the intent, then kills the agent somewhere in the reconcile that
    // follows (the agent polls every second, a step takes tens to hundreds of ms).
    let mut guests: Vec<(String, bool, u64)> = Vec::new();
    let rounds = 6;
    for round in 0..rounds {
        if guests.len() < ids.len() {
            guests.push((ids[guests.len()].clone(), true, 32));
        }
        for guest in &mut guests {
            if rng.below(3) == 0 {
                guest.1 = !guest.1;
            }
            if rng.below(3) == 0 {
                guest.2 = if guest.2 == 32 { 48 } else { 32 };
            }
        }
        set_desired(&cloud, dir.path(), &host_id, &image, &guests);
        let delay = Duration::from_millis(rng.below(1600));
        tokio::time::sleep(delay).await;
        agent.kill_9();
        eprintln!("round {round}: killed {delay:?} after the edit");
        agent = agent_box.start();
    }

    // A destructive change as well: the last guest removed with a signed op, and a kill
    // somewhere around its execution.
    let removed = guests.pop().unwrap();
    set_desired(&cloud, dir.path(), &host_id, &image, &guests);
    let key = cloud.operator_key.display().to_string();
    assert_eq!(
        mftctl(
            &cloud,
            dir.path(),
            &["ops", "sign", "--pending", "--key", &key, "--yes"]
        ),
        0
    );
    tokio::time::sleep(Duration::from_millis(rng.below(1600))).await;
    agent.kill_9();
    agent = agent_box.start();

    eventually(
        Duration::from_secs(60),
        "convergence after the crashes",
        &[&agent],
        || async {
            let host = operator.get_host(&host_id).await.ok()?;
            let done = host.convergence == "converged"
                && host.applied_generation == host.desired_generation;
            let ops = operator
                .list_ops(&OpQuery {
                    statuses: vec![],
                    host: Some(host_id.clone()),
                })
                .await
                .ok()?;
            let executed = ops.iter().all(|op| op.status == op_status::EXECUTED);
            (done && executed).then_some(())
        },
    )
    .await;

    for (id, running, _) in &guests {
        let found = containers_of(id);
        assert_eq!(found.len(), 1, "exactly one container for {id}: {found:?}");
        let state = &found[0].1;
        assert_eq!(state == "running", *running, "{id} is {state}");
    }
    assert!(
        containers_of(&removed.0).is_empty(),
        "the removed guest is gone"
    );

    assert_eq!(agent.terminate(Duration::from_secs(20)), Some(0));
    let journal = agent_box.state().journal(1000).unwrap();
    assert!(journal.iter().all(|e| e.state != "begun"), "{journal:#?}");
    let interrupted = journal.iter().filter(|e| e.state == "interrupted").count();
    eprintln!(
        "journal: {} steps, {interrupted} cut short by a kill",
        journal.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cloud_away_guests_keep_running_and_reports_resume_or_replay_once() {
    if !mftplus_agent::testing::docker_available() {
        return;
    }
    let image = mftplus_agent::testing::guest_image();
    let guest = format!("away-{:x}", std::process::id());
    let _cleanup = ContainerGuard(vec![guest.clone()]);
    let dir = tempfile::tempdir().unwrap();
    // The cloud's database outlives the cloud, so it can come back on the same address.
    let database_url = format!("sqlite://{}", dir.path().join("cloud.db").display());
    let options = || {
        let mut options = TestOptions {
            database_url: Some(database_url.clone()),
            ..TestOptions::default()
        };
        options
            .config_yaml
            .push_str("fleet:\n  poll_interval_seconds: 1\n");
        options
    };
    let cloud = TestCloud::spawn_with(options()).await;
    // One host per customer: one customer per box.
    customer(&cloud, "kovacs").await;
    customer(&cloud, "szabo").await;
    let (hub, hub_url) = hub_process(&cloud, dir.path()).await;
    let direct = Box::new(&dir.path().join("direct"), &cloud.url);
    let behind = Box::new(&dir.path().join("behind"), &hub_url);
    let direct_host = enrolled_host_id(&direct.enroll("kovacs", &[]));
    let behind_host = enrolled_host_id(&behind.enroll("szabo", &[]));
    set_desired(
        &cloud,
        dir.path(),
        &behind_host,
        &image,
        &[(guest.clone(), true, 32)],
    );
    let direct_agent = direct.start();
    let behind_agent = behind.start();
    let operator = operator(&cloud);
    eventually(
        Duration::from_secs(30),
        "both converged",
        &[&direct_agent, &behind_agent],
        || async {
            let a = operator.get_host(&direct_host).await.ok()?;
            let b = operator.get_host(&behind_host).await.ok()?;
            (a.last_report_at.is_some()
                && b.convergence == "converged"
                && b.applied_generation == 1)
                .then_some(())
        },
    )
    .await;
    assert_eq!(containers_of(&guest)[0].1, "running");

    // The cloud goes away for a few seconds.
    let address = cloud.url.trim_start_matches("http://").to_string();
    let before = operator
        .host_reports(&behind_host, Some(1000))
        .await
        .unwrap()
        .len();
    let down_ms = chrono::Utc::now().timestamp_millis();
    cloud.stop().await;
    let away = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        containers_of(&guest)[0].1,
        "running",
        "the guest kept running"
    );
    let listener = tokio::net::TcpListener::bind(&address).await.unwrap();
    let cloud = TestCloud::spawn_on(options(), Some(listener)).await;
    let operator = agent_support::operator(&cloud);
    let outage = away.elapsed();
    let up_ms = chrono::Utc::now().timestamp_millis();

    // The direct agent backed off and comes back; the one behind the hub had its reports
    // queued there and replayed once each.
    let resumed_after = chrono_ms(
        &operator
            .get_host(&direct_host)
            .await
            .unwrap()
            .last_report_at,
    );
    eventually(
        Duration::from_secs(30),
        "direct reports resumed",
        &[&direct_agent],
        || async {
            let host = operator.get_host(&direct_host).await.ok()?;
            (chrono_ms(&host.last_report_at) > resumed_after).then_some(())
        },
    )
    .await;
    assert!(
        direct_agent.logs().contains("cannot report"),
        "{}",
        direct_agent.logs()
    );
    let made_while_away = |reports: &[mftplus_types::fleet::HostReportInfo]| {
        reports
            .iter()
            .filter(|r| {
                let at = chrono_ms(&r.report["reported_at"].as_str().map(str::to_string));
                at > down_ms && at < up_ms
            })
            .count()
    };
    let reports = eventually(
        Duration::from_secs(30),
        "queued reports replayed",
        &[&behind_agent],
        || async {
            let reports = operator.host_reports(&behind_host, Some(1000)).await.ok()?;
            (made_while_away(&reports) >= 3).then_some(reports)
        },
    )
    .await;
    let stamps: Vec<String> = reports
        .iter()
        .filter_map(|r| r.report["reported_at"].as_str().map(str::to_string))
        .collect();
    let distinct: BTreeSet<&String> = stamps.iter().collect();
    assert_eq!(distinct.len(), stamps.len(), "no report applied twice");
    eprintln!(
        "outage {outage:?}: {} reports behind the hub in all, {} before, {} made while away",
        reports.len(),
        before,
        made_while_away(&reports)
    );
    assert_eq!(containers_of(&guest).len(), 1);
    drop(hub);
}

/// Milliseconds of an RFC 3339 stamp (0 when absent), for comparing report times.
fn chrono_ms(stamp: &Option<String>) -> i64 {
    stamp
        .as_deref()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map_or(0, |t| t.timestamp_millis())
}
