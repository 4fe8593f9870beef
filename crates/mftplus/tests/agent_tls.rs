//! The agent and `mftctl` against a cloud that serves TLS 1.3 only with a certificate from a
//! private CA: both trust it only when told to (`--ca-file` / `server.ca_file`, `--cacert`),
//! and the enrolled agent reports over HTTPS, directly or through an edge hub that serves TLS
//! to agents and trusts the cloud's CA (`HUB_TLS_*`, `CLOUD_CA_FILE`).

mod agent_support;

use agent_support::*;
use mftplus_client::Client;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_enrolls_and_reports_over_tls_when_it_trusts_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cloud, https, operator, ca_file) = tls_cloud(dir.path()).await;
    customer_via(&operator, "kovacs").await;

    // Without the CA the agent refuses the server's certificate, and says so.
    let agent_box = Box::with_driver(&dir.path().join("box"), &https, "none");
    let refused = agent_box.enroll("kovacs", &[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");

    let host_id =
        enrolled_host_id(&agent_box.enroll("kovacs", &["--ca-file", ca_file.to_str().unwrap()]));
    let config = std::fs::read_to_string(&agent_box.config).unwrap();
    assert!(
        config.contains("ca_file:"),
        "enroll wrote the CA into the config: {config}"
    );
    let agent = agent_box.start();
    first_report(&operator, &host_id, &[&agent]).await;

    // mftctl the same way: refused without --cacert, fine with it.
    let home = dir.path();
    let line = |extra: &[&str]| {
        let mut args = vec![
            "mftctl",
            "--server",
            &https,
            "--api-key",
            &cloud.admin_api_key,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["hosts", "list", "--json"]);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let mut cli_args = args;
        cli_args.extend([
            "--config".to_string(),
            home.join("c.yaml").display().to_string(),
        ]);
        let cli = <mftctl::Cli as clap::Parser>::try_parse_from(&cli_args).unwrap();
        std::thread::spawn(move || mftctl::main_with(cli))
            .join()
            .unwrap()
    };
    assert_ne!(run(line(&[])), 0, "an untrusted certificate is refused");
    assert_eq!(run(line(&["--cacert", ca_file.to_str().unwrap()])), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_tls_hub_to_a_tls_cloud() {
    let dir = tempfile::tempdir().unwrap();
    let (_cloud, https, operator, ca_file) = tls_cloud(dir.path()).await;
    customer_via(&operator, "kovacs").await;
    let certs = dir.path().join("certs");
    let envs = [
        ("HUB_TLS_CERT", certs.join("hub.crt").display().to_string()),
        ("HUB_TLS_KEY", certs.join("hub.key").display().to_string()),
        ("CLOUD_CA_FILE", ca_file.display().to_string()),
    ];
    let (hub, hub_url) = hub_process_with(&operator, &https, dir.path(), &envs).await;
    assert!(hub_url.starts_with("https://"));
    let agent_box = Box::with_driver(&dir.path().join("box"), &hub_url, "none");
    let host_id =
        enrolled_host_id(&agent_box.enroll("kovacs", &["--ca-file", ca_file.to_str().unwrap()]));
    let agent = agent_box.start();
    first_report(&operator, &host_id, &[&agent, &hub]).await;
}

/// The host's reports as the cloud last saw them: (report count so far is not exposed, so the
/// time of the latest).
async fn last_report(operator: &Client, host_id: &str) -> Option<String> {
    operator.get_host(host_id).await.ok()?.last_report_at
}

/// Waits until the host reports after `after`.
async fn reports_again(
    operator: &Client,
    host_id: &str,
    after: &Option<String>,
    logs: &[&Proc],
    what: &str,
) {
    eventually(Duration::from_secs(40), what, logs, || async {
        let latest = last_report(operator, host_id).await;
        (latest.is_some() && latest > *after).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_mutual_tls_the_agent_gets_renews_and_recovers_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    // Short-lived leaves so renewal and expiry happen within the test.
    let (_cloud, https, operator, ca_file) = tls_cloud_with(
        dir.path(),
        "requireAndVerifyClientCert",
        "certificates:\n  validity: 20s\n  renew_before: 5s\n",
    )
    .await;
    customer_via(&operator, "kovacs").await;
    let agent_box = Box::with_driver(&dir.path().join("box"), &https, "none");
    let enrolled = agent_box.enroll("kovacs", &["--ca-file", ca_file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&enrolled.stdout).to_string();
    assert!(stdout.contains("Certificate: serial"), "{stdout}");
    let host_id = enrolled_host_id(&enrolled);
    let subject = format!("host:{host_id}");

    // Box routes need the certificate here, so a report is proof the agent presents it.
    let mut agent = agent_box.start();
    first_report(&operator, &host_id, &[&agent]).await;
    // Renewed before it lapses, with no one involved, and reporting carries on.
    eventually(Duration::from_secs(40), "a renewal", &[&agent], || async {
        let certs = operator.list_certificates(Some(&subject)).await.ok()?;
        (certs.len() >= 2).then_some(())
    })
    .await;
    let seen = last_report(&operator, &host_id).await;
    reports_again(
        &operator,
        &host_id,
        &seen,
        &[&agent],
        "a report with the renewed certificate",
    )
    .await;

    // Revoked: the box is refused until someone recovers it with the retrieval password.
    let current = operator.list_certificates(Some(&subject)).await.unwrap();
    let newest = current.iter().find(|c| c.status == "valid").unwrap();
    operator
        .revoke_certificate(&newest.serial, Some("drill"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let refused_since = last_report(&operator, &host_id).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        last_report(&operator, &host_id).await,
        refused_since,
        "a revoked box still reports"
    );
    let recover = |agent_box: &Box| {
        let config = agent_box.config.display().to_string();
        let password = agent_box.dir.join("password").display().to_string();
        std::process::Command::new(BIN)
            .args([
                "agent",
                "certificate",
                "--recover",
                "--config",
                &config,
                "--password-file",
                &password,
            ])
            .output()
            .unwrap()
    };
    let out = recover(&agent_box);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    reports_again(
        &operator,
        &host_id,
        &refused_since,
        &[&agent],
        "reports after recovery",
    )
    .await;

    // Offline past expiry: started again, it says how to recover, and recovery needs no
    // file deleted.
    agent.kill_9();
    tokio::time::sleep(Duration::from_secs(21)).await;
    let offline_since = last_report(&operator, &host_id).await;
    let agent = agent_box.start();
    eventually(
        Duration::from_secs(20),
        "the recovery notice",
        &[&agent],
        || async { agent.logs().contains("certificate --recover").then_some(()) },
    )
    .await;
    let out = recover(&agent_box);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    reports_again(
        &operator,
        &host_id,
        &offline_since,
        &[&agent],
        "reports after the lapse",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_rotation_keeps_connected_agents_reporting() {
    let dir = tempfile::tempdir().unwrap();
    let (_cloud, https, operator, ca_file) = tls_cloud_with(
        dir.path(),
        "requireAndVerifyClientCert",
        // Long enough that a loaded CI machine never lets a box's certificate lapse mid-test.
        "certificates:\n  validity: 40s\n  renew_before: 8s\nhubs:\n  heartbeat_interval_seconds: 5\n",
    )
    .await;
    // An edge hub phones home over mutual TLS with its own certificate.
    let envs = [("CLOUD_CA_FILE", ca_file.display().to_string())];
    let (hub, _) = hub_process_with(&operator, &https, dir.path(), &envs).await;
    let hub_id = operator.list_hubs().await.unwrap()[0].hub_id.clone();
    let hub_subject = format!("hub:{hub_id}");
    eventually(
        Duration::from_secs(20),
        "the hub's certificate",
        &[&hub],
        || async {
            let certs = operator.list_certificates(Some(&hub_subject)).await.ok()?;
            (!certs.is_empty()).then_some(())
        },
    )
    .await;
    let mut agents = Vec::new();
    for customer in ["kovacs", "szabo"] {
        customer_via(&operator, customer).await;
        let agent_box = Box::with_driver(&dir.path().join(customer), &https, "none");
        let host_id = enrolled_host_id(
            &agent_box.enroll(customer, &["--ca-file", ca_file.to_str().unwrap()]),
        );
        let agent = agent_box.start();
        first_report(&operator, &host_id, &[&agent]).await;
        agents.push((host_id, agent, agent_box));
    }
    let mut logs: Vec<&Proc> = agents.iter().map(|(_, agent, _)| agent).collect();
    logs.push(&hub);

    let started = operator.rotate_ca().await.unwrap();
    assert_eq!(
        started.roots.len(),
        2,
        "old and new roots are trusted together"
    );
    assert!(started.rotation_started_at.is_some());
    assert!(started.on_old_chain >= 2, "{started:?}");
    // Retiring now would cut the agents off: refused.
    let early = operator.retire_ca(false).await.unwrap_err();
    assert_eq!(early.code(), "ca_rotation", "{early:?}");

    // The agents renew onto the new chain by themselves.
    eventually(
        Duration::from_secs(75),
        "every agent on the new chain",
        &logs,
        || async {
            let status = operator.ca_status().await.ok()?;
            (status.on_old_chain == 0).then_some(())
        },
    )
    .await;
    let finished = operator.retire_ca(false).await.unwrap();
    assert_eq!(finished.roots.len(), 1);
    assert_eq!(
        finished.roots[0].fingerprint, started.roots[0].fingerprint,
        "the new root stays"
    );
    for (host_id, _, _) in &agents {
        let seen = last_report(&operator, host_id).await;
        reports_again(
            &operator,
            host_id,
            &seen,
            &logs,
            "a report after the old root was retired",
        )
        .await;
    }
    // The hub renewed onto the new chain too (it counted in `on_old_chain`) and still
    // phones home with its certificate, not its deploy key.
    let seen = operator.get_hub(&hub_id).await.unwrap().last_seen_at;
    eventually(
        Duration::from_secs(20),
        "a hub heartbeat after the retirement",
        &logs,
        || async {
            let hub = operator.get_hub(&hub_id).await.ok()?;
            (hub.last_seen_at > seen).then_some(())
        },
    )
    .await;
    let hub_log = std::fs::read_to_string(dir.path().join("hub.log")).unwrap();
    assert!(!hub_log.contains("uses the deploy key"), "{hub_log}");
    assert!(
        !hub_log.contains("refused the hub certificate"),
        "{hub_log}"
    );
    assert!(
        operator
            .list_certificates(Some(&hub_subject))
            .await
            .unwrap()
            .len()
            >= 2,
        "the hub renewed"
    );
}

/// Under `requireAndVerifyClientCert`, an agent reporting through an edge hub: the hub verifies
/// the agent's certificate at its own listener and forwards it on its own mutual-TLS
/// connection, and the cloud checks it as if the agent had connected directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_certified_hub_the_agents_certificate_still_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (_cloud, https, operator, ca_file) = tls_cloud_with(
        dir.path(),
        "requireAndVerifyClientCert",
        "hubs:\n  heartbeat_interval_seconds: 5\n",
    )
    .await;
    customer_via(&operator, "kovacs").await;
    // The hub verifies agents against the cloud's CA (its roots, as any box can fetch them).
    let roots = operator.ca_roots().await.unwrap();
    let cloud_ca = dir.path().join("cloud-ca.pem");
    std::fs::write(&cloud_ca, roots).unwrap();
    let certs = dir.path().join("certs");
    let envs = [
        ("HUB_TLS_CERT", certs.join("hub.crt").display().to_string()),
        ("HUB_TLS_KEY", certs.join("hub.key").display().to_string()),
        ("HUB_TLS_CLIENT_AUTH", "verifyClientCertIfGiven".to_string()),
        ("HUB_TLS_CLIENT_CA", cloud_ca.display().to_string()),
        ("CLOUD_CA_FILE", ca_file.display().to_string()),
    ];
    let (hub, hub_url) = hub_process_with(&operator, &https, dir.path(), &envs).await;
    let hub_id = operator.list_hubs().await.unwrap()[0].hub_id.clone();
    eventually(
        Duration::from_secs(20),
        "the hub's certificate",
        &[&hub],
        || async {
            let certs = operator
                .list_certificates(Some(&format!("hub:{hub_id}")))
                .await
                .ok()?;
            (!certs.is_empty()).then_some(())
        },
    )
    .await;
    let agent_box = Box::with_driver(&dir.path().join("box"), &hub_url, "none");
    let enrolled = agent_box.enroll("kovacs", &["--ca-file", ca_file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&enrolled.stdout).to_string();
    assert!(stdout.contains("Certificate: serial"), "{stdout}");
    let host_id = enrolled_host_id(&enrolled);
    let agent = agent_box.start();
    first_report(&operator, &host_id, &[&agent, &hub]).await;

    // Revoked, the forwarded certificate is refused like a direct one.
    let subject = format!("host:{host_id}");
    let current = operator.list_certificates(Some(&subject)).await.unwrap();
    operator
        .revoke_certificate(&current[0].serial, Some("drill"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let refused_since = last_report(&operator, &host_id).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        last_report(&operator, &host_id).await,
        refused_since,
        "a revoked certificate still reports through the hub"
    );
}
