//! The agent end to end, every part real: the `mftplus agent` binary enrolls through an
//! `mftplus hub` process in front of a real cloud, reports, and runs the operator's intent on
//! the real Docker Engine; a benign `mftctl desired set` creates and starts a container;
//! removing it waits until `mftctl ops sign --pending` signs with a key made by `ssh-keygen`;
//! then the container is gone, the op `executed`, and the events in order.
//!
//! Without a Docker Engine these tests say so loudly and pass, unless
//! `MFTPLUS_TEST_REQUIRE_DOCKER=1` (CI), where they fail.

mod agent_support;

use agent_support::*;
use mftplus_client::{EventQuery, OpQuery};
use mftplus_types::fleet::op_status;
use std::time::{Duration, Instant};

/// A guest id no other test run uses (containers are global to the Docker host).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand_u32())
}

fn rand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos ^ std::process::id().rotate_left(16)
}

fn desired_yaml(guest: &str, image: &str) -> String {
    format!(
        "guests:\n  {guest}:\n    spec:\n      kind: container\n      image: {image}\n      \
         cpu_cores: 1\n      memory_mb: 64\n      disk_gb: 1\n    run_state: running\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_hub_a_benign_edit_runs_a_container_and_removal_waits_for_a_signature() {
    if !mftplus_agent::testing::docker_available() {
        return;
    }
    let image = mftplus_agent::testing::guest_image();
    let guest = unique("web");
    let _cleanup = ContainerGuard(vec![guest.clone()]);
    let cloud = fast_cloud().await;
    let dir = tempfile::tempdir().unwrap();
    let (hub, hub_url) = hub_process(&cloud, dir.path()).await;
    customer(&cloud, "kovacs").await;
    let operator = operator(&cloud);

    // Enroll through the hub: agent first, with the retrieval password from a 0600 file.
    let agent_box = Box::new(&dir.path().join("box"), &hub_url);
    let host_id = enrolled_host_id(&agent_box.enroll("kovacs", &[]));
    let mut agent = agent_box.start();
    let host = eventually(
        Duration::from_secs(30),
        "the first report",
        &[&agent],
        || async {
            let host = operator.get_host(&host_id).await.ok()?;
            host.last_report_at.is_some().then_some(host)
        },
    )
    .await;
    assert_eq!(host.liveness, "ok");
    let reports = operator.host_reports(&host_id, Some(1)).await.unwrap();
    let system = &reports[0].report["system"];
    assert!(
        system["memory_total_bytes"].as_u64().unwrap() > 0,
        "a real report: {system}"
    );

    // A benign edit with the real CLI: the container is created and started.
    let home = dir.path();
    let desired = home.join("desired.yaml");
    std::fs::write(&desired, desired_yaml(&guest, &image)).unwrap();
    let edited = Instant::now();
    assert_eq!(
        mftctl(
            &cloud,
            home,
            &["desired", "set", &host_id, desired.to_str().unwrap()]
        ),
        0
    );
    let name = format!("mftplus-{guest}");
    eventually(
        Duration::from_secs(30),
        "the container running",
        &[&agent],
        || async {
            (containers_of(&guest) == [(name.clone(), "running".to_string())]).then_some(())
        },
    )
    .await;
    eprintln!("benign edit → container running: {:?}", edited.elapsed());
    eventually(
        Duration::from_secs(30),
        "convergence reported",
        &[&agent],
        || async {
            let host = operator.get_host(&host_id).await.ok()?;
            (host.applied_generation == 1 && host.convergence == "converged").then_some(())
        },
    )
    .await;

    // Removing it is destructive: an op waits for a signature, the container keeps running.
    std::fs::write(&desired, "guests: {}\n").unwrap();
    assert_eq!(
        mftctl(
            &cloud,
            home,
            &["desired", "set", &host_id, desired.to_str().unwrap()]
        ),
        0
    );
    let pending = operator
        .list_ops(&OpQuery {
            statuses: vec![op_status::PENDING_SIGNATURE.into()],
            host: Some(host_id.clone()),
        })
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].op_type, "guest.remove");
    let op_id = pending[0].op_id.clone();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        containers_of(&guest),
        [(name.clone(), "running".to_string())]
    );

    // The operator signs on the workstation with the ssh-keygen key; the agent verifies
    // against the keys it pinned at enrollment and removes the container.
    let key = cloud.operator_key.display().to_string();
    assert_eq!(
        mftctl(
            &cloud,
            home,
            &["ops", "sign", "--pending", "--key", &key, "--yes"]
        ),
        0
    );
    eventually(
        Duration::from_secs(30),
        "the op executed",
        &[&agent],
        || async {
            let op = operator.get_op(&op_id).await.ok()?;
            (op.status == op_status::EXECUTED).then_some(())
        },
    )
    .await;
    assert!(containers_of(&guest).is_empty(), "the container is gone");
    eventually(
        Duration::from_secs(30),
        "the fold converged",
        &[&agent],
        || async {
            let host = operator.get_host(&host_id).await.ok()?;
            (host.applied_generation == 2 && host.convergence == "converged").then_some(())
        },
    )
    .await;

    let events = operator
        .list_events(&EventQuery {
            host: Some(host_id.clone()),
            limit: Some(100),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    let mut kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    kinds.reverse();
    kinds.retain(|k| !k.starts_with("guest_"));
    assert_eq!(
        kinds,
        [
            "host_enrolled",
            "desired_published",
            "op_pending_signature",
            "op_signed",
            "op_delivered",
            "op_executed",
        ],
        "{events:#?}"
    );

    // The journal holds every step, none left half-done; SIGTERM ends the agent with 0.
    assert_eq!(
        agent.terminate(Duration::from_secs(20)),
        Some(0),
        "{}",
        agent.logs()
    );
    let journal = agent_box.state().journal(50).unwrap();
    let steps: Vec<(&str, &str)> = journal
        .iter()
        .rev()
        .map(|e| (e.action.as_str(), e.state.as_str()))
        .collect();
    assert_eq!(
        steps,
        [("create", "done"), ("remove", "done")],
        "{journal:#?}"
    );
    assert!(
        !agent.logs().contains("mfth_"),
        "the agent never logs its key"
    );
    drop(hub);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_box_takes_over_in_recovery_mode_and_the_old_one_stops_after_its_grace() {
    let cloud = fast_cloud().await;
    customer(&cloud, "kovacs").await;
    let operator = operator(&cloud);
    let dir = tempfile::tempdir().unwrap();
    let old_box = Box::with_driver(&dir.path().join("old"), &cloud.url, "none");
    let host_id = enrolled_host_id(&old_box.enroll("kovacs", &[]));
    // Enrolling again without --restore is refused with a clear word.
    let again = old_box.enroll("kovacs", &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already_enrolled"));
    let mut old_agent = old_box.start();
    first_report(&operator, &host_id, &[&old_agent]).await;

    // Without recovery mode armed, a restore is refused.
    let new_box = Box::with_driver(&dir.path().join("new"), &cloud.url, "none");
    let refused = new_box.enroll("kovacs", &["--restore", &host_id]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("recovery_not_armed"));

    let home = dir.path();
    assert_eq!(
        mftctl(&cloud, home, &["recovery", "arm", &host_id, "--ttl", "5m"]),
        0
    );
    let restored = new_box.enroll("kovacs", &["--restore", &host_id]);
    let stdout = String::from_utf8_lossy(&restored.stdout);
    assert!(
        restored.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(
        stdout.contains(&format!("Restored host {host_id}")),
        "{stdout}"
    );
    let new_agent = new_box.start();
    let since = operator.get_host(&host_id).await.unwrap().last_report_at;
    eventually(
        Duration::from_secs(30),
        "the new box reporting",
        &[&new_agent],
        || async {
            let host = operator.get_host(&host_id).await.ok()?;
            (host.last_report_at != since).then_some(())
        },
    )
    .await;

    // The old box's key is refused at once; it keeps trying through its grace, then stops
    // with a message that says what to do.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(status) = old_agent.child.try_wait().unwrap() {
            break status.code();
        }
        assert!(std::time::Instant::now() < deadline, "{}", old_agent.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(code, Some(1), "{}", old_agent.logs());
    let logs = old_agent.logs();
    assert!(
        logs.contains("key_refused") && logs.contains("--restore"),
        "{logs}"
    );
    old_agent.kill_9();
}
