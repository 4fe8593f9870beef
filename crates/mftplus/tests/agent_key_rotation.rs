//! Host-key rotation with the real `mftplus agent` binary against a real cloud whose clock the
//! tests move (`docs/key-rotation.md`): `mftplus agent rotate-key` beside a running agent (which
//! switches to the new key while a client keeps using the old one through its grace), and an
//! agent that died between the rotation call and storing its answer (simulated: the call made,
//! the answer dropped) finishing the rotation with the same new key when it starts, or when the
//! command is run again.

mod agent_support;

use agent_support::*;
use mftplus_base::Clock;
use mftplus_client::{AgentClient, Client};
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_types::fleet::HostReport;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

const GRACE: i64 = 3600;

/// Agents come back every second; a rotated key works for an hour.
async fn cloud() -> TestCloud {
    let mut options = TestOptions::default();
    options.config_yaml.push_str(&format!(
        "fleet:\n  poll_interval_seconds: 1\n  host_key_grace_seconds: {GRACE}\n"
    ));
    TestCloud::spawn_with(options).await
}

fn report(host_id: &str) -> HostReport {
    serde_json::from_value(
        json!({"host_id": host_id, "agent_version": "1.0.0", "applied_generation": 0}),
    )
    .unwrap()
}

fn stored_key(agent_box: &Box) -> String {
    let identity = agent_box.state().identity().unwrap().unwrap();
    identity.host_key.expose().to_string()
}

fn rotate_key_command(agent_box: &Box) -> std::process::Output {
    let config = agent_box.config.display().to_string();
    Command::new(BIN)
        .args(["agent", "rotate-key", "--config", &config])
        .output()
        .unwrap()
}

async fn report_count(operator: &Client, host_id: &str) -> usize {
    operator
        .host_reports(host_id, Some(1000))
        .await
        .unwrap()
        .len()
}

/// Waits until the cloud has `more` reports from the host beyond `after`.
async fn more_reports(operator: &Client, host_id: &str, after: usize, more: usize, logs: &[&Proc]) {
    eventually(
        Duration::from_secs(30),
        "reports with the new key",
        logs,
        || async { (report_count(operator, host_id).await >= after + more).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_key_beside_a_running_agent_and_the_old_key_through_its_grace() {
    let cloud = cloud().await;
    let dir = tempfile::tempdir().unwrap();
    customer(&cloud, "kovacs").await;
    let operator = operator(&cloud);
    let agent_box = Box::with_driver(&dir.path().join("box"), &cloud.url, "none");
    let host_id = enrolled_host_id(&agent_box.enroll("kovacs", &[]));
    let old_key = stored_key(&agent_box);
    let mut agent = agent_box.start();
    first_report(&operator, &host_id, &[&agent]).await;

    let out = rotate_key_command(&agent_box);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("Rotated the host key of host {host_id}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("The old key keeps working until"),
        "{stdout}"
    );
    let new_key = stored_key(&agent_box);
    assert_ne!(new_key, old_key);
    assert!(
        !stdout.contains("mfth_"),
        "the key is never printed: {stdout}"
    );
    assert_eq!(agent_box.state().pending_key_rotation().unwrap(), None);

    // Something still holding the old key keeps working through the grace.
    let old = AgentClient::new(&cloud.url, &old_key).unwrap();
    old.host_report(&report(&host_id)).await.unwrap();
    cloud.clock.advance_secs(GRACE - 60);
    old.host_report(&report(&host_id)).await.unwrap();

    // Past it the old key is refused, and the running agent carries on with the new one.
    cloud.clock.advance_secs(61);
    let refused = old
        .host_report(&report(&host_id))
        .await
        .expect_err("refused after the grace");
    assert_eq!(refused.status(), Some(401), "{refused}");
    let before = report_count(&operator, &host_id).await;
    more_reports(&operator, &host_id, before, 2, &[&agent]).await;
    assert!(
        agent
            .logs()
            .contains("using the host key stored in agent.db"),
        "{}",
        agent.logs()
    );
    assert_eq!(agent.terminate(Duration::from_secs(10)), Some(0));

    let audit = cloud.state.store.list_audit(0, 10_000).await.unwrap();
    let rotations: Vec<_> = audit
        .iter()
        .filter(|row| row.event == "host_key_rotated")
        .collect();
    assert_eq!(rotations.len(), 1, "{rotations:?}");
    assert_eq!(rotations[0].target, host_id);
}

/// The call reached the cloud, the answer never reached `agent.db`: what a crash between the
/// two leaves. Returns the new key the cloud made (the test's knowledge, not the box's).
async fn rotation_with_a_lost_answer(cloud: &TestCloud, agent_box: &Box, host_id: &str) -> String {
    let state = agent_box.state();
    let now = mftplus_base::SystemClock.now_ms();
    let pending = state.begin_key_rotation(now).unwrap();
    let old_key = stored_key(agent_box);
    drop(state);
    let client = AgentClient::new(&cloud.url, &old_key).unwrap();
    let answer = client
        .rotate_host_key(host_id, &pending.idempotency_key)
        .await
        .unwrap();
    assert!(!answer.repeated);
    assert_eq!(stored_key(agent_box), old_key, "nothing stored: the crash");
    answer.host_key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_died_mid_rotation_finishes_it_when_it_starts() {
    let cloud = cloud().await;
    let dir = tempfile::tempdir().unwrap();
    customer(&cloud, "kovacs").await;
    let operator = operator(&cloud);
    let agent_box = Box::with_driver(&dir.path().join("box"), &cloud.url, "none");
    let host_id = enrolled_host_id(&agent_box.enroll("kovacs", &[]));
    let lost = rotation_with_a_lost_answer(&cloud, &agent_box, &host_id).await;

    let mut agent = agent_box.start();
    eventually(
        Duration::from_secs(30),
        "the rotation finished",
        &[&agent],
        || async { (stored_key(&agent_box) == lost).then_some(()) },
    )
    .await;
    assert_eq!(agent_box.state().pending_key_rotation().unwrap(), None);
    // The old key's grace ends; the agent keeps reporting with the key it recovered.
    cloud.clock.advance_secs(GRACE + 1);
    let before = report_count(&operator, &host_id).await;
    more_reports(&operator, &host_id, before, 2, &[&agent]).await;
    assert!(
        agent.logs().contains("host key rotated"),
        "{}",
        agent.logs()
    );
    assert_eq!(agent.terminate(Duration::from_secs(10)), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_rotate_key_again_finishes_an_interrupted_rotation() {
    let cloud = cloud().await;
    let dir = tempfile::tempdir().unwrap();
    customer(&cloud, "kovacs").await;
    let agent_box = Box::with_driver(&dir.path().join("box"), &cloud.url, "none");
    let host_id = enrolled_host_id(&agent_box.enroll("kovacs", &[]));
    let lost = rotation_with_a_lost_answer(&cloud, &agent_box, &host_id).await;

    let out = rotate_key_command(&agent_box);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("finishing an interrupted rotation"),
        "{stdout}"
    );
    assert_eq!(
        stored_key(&agent_box),
        lost,
        "the same key the lost answer had"
    );
    cloud.clock.advance_secs(GRACE + 1);
    AgentClient::new(&cloud.url, &lost)
        .unwrap()
        .host_report(&report(&host_id))
        .await
        .unwrap();

    // A second rotation right away is a new one: another key, the recovered one kept for its
    // grace.
    let out = rotate_key_command(&agent_box);
    assert!(out.status.success());
    let newest = stored_key(&agent_box);
    assert_ne!(newest, lost);
    AgentClient::new(&cloud.url, &lost)
        .unwrap()
        .host_report(&report(&host_id))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mftctl_hosts_rotate_key_has_the_running_agent_rotate_at_its_next_report() {
    let cloud = cloud().await;
    let dir = tempfile::tempdir().unwrap();
    customer(&cloud, "kovacs").await;
    let operator = operator(&cloud);
    let agent_box = Box::with_driver(&dir.path().join("box"), &cloud.url, "none");
    let host_id = enrolled_host_id(&agent_box.enroll("kovacs", &[]));
    let old_key = stored_key(&agent_box);
    let mut agent = agent_box.start();
    first_report(&operator, &host_id, &[&agent]).await;

    assert_eq!(
        mftctl(&cloud, dir.path(), &["hosts", "rotate-key", &host_id]),
        0
    );
    eventually(
        Duration::from_secs(30),
        "the agent rotated",
        &[&agent],
        || async { (stored_key(&agent_box) != old_key).then_some(()) },
    )
    .await;
    // The old key works through the grace; past it the agent goes on with its new key.
    let old = AgentClient::new(&cloud.url, &old_key).unwrap();
    let envelope = old.host_report(&report(&host_id)).await.unwrap();
    assert!(!envelope.rotate_key, "asked once: {envelope:?}");
    cloud.clock.advance_secs(GRACE + 1);
    let before = report_count(&operator, &host_id).await;
    more_reports(&operator, &host_id, before, 2, &[&agent]).await;
    assert!(
        agent.logs().contains("rotated as the operator asked"),
        "{}",
        agent.logs()
    );
    assert_eq!(agent.terminate(Duration::from_secs(10)), Some(0));
}
