//! The agent and `mftctl` against a cloud that serves TLS 1.3 only with a certificate from a
//! private CA: both trust it only when told to (`--ca-file` / `server.ca_file`, `--cacert`),
//! and the enrolled agent reports over HTTPS, directly or through an edge hub that serves TLS
//! to agents and trusts the cloud's CA (`HUB_TLS_*`, `CLOUD_CA_FILE`).

mod agent_support;

use agent_support::*;

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
