//! The agent and `mftctl` against a cloud that serves TLS 1.3 only with a certificate from a
//! private CA: both trust it only when told to (`--ca-file` / `server.ca_file`, `--cacert`),
//! and the enrolled agent reports over HTTPS.

mod agent_support;

use agent_support::*;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_pki::testing::{ca, leaf};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_enrolls_and_reports_over_tls_when_it_trusts_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    ca(&certs, "ca");
    leaf(&certs, "ca", "server", true);
    let mut options = TestOptions::default();
    options.config_yaml.push_str(&format!(
        "fleet:\n  poll_interval_seconds: 1\ntls:\n  enabled: true\n  certificate:\n    cert: {0}/server.crt\n    key: {0}/server.key\n  client_auth:\n    mode: noClientCert\n",
        certs.display()
    ));
    let cloud = TestCloud::spawn_with(options).await;
    let https = cloud.url.replace("http://", "https://");
    let ca_file = certs.join("ca.crt");
    let operator = mftplus_client::Client::with_options(
        &https,
        mftplus_client::Credential::ApiKey(cloud.admin_api_key.clone()),
        mftplus_client::ClientOptions {
            extra_roots_pem: Some(std::fs::read(&ca_file).unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    operator
        .create_customer(&mftplus_types::fleet::CreateCustomer {
            id: Some("kovacs".into()),
            name: "Kovács Kft".into(),
            email: "it@kovacs.example.com".into(),
            domain: None,
            locale: None,
            retrieval_password: Some(PASSWORD.into()),
            config: None,
        })
        .await
        .unwrap();

    // Without the CA the agent refuses the server's certificate, and says so.
    let agent_box = Box::with_driver(&dir.path().join("box"), &https, "none");
    let refused = agent_box.enroll("kovacs", &[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");

    let enrolled = agent_box.enroll("kovacs", &["--ca-file", ca_file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&enrolled.stdout);
    assert!(
        enrolled.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&enrolled.stderr)
    );
    let host_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Enrolled host "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .to_string();
    let config = std::fs::read_to_string(&agent_box.config).unwrap();
    assert!(
        config.contains("ca_file:"),
        "enroll wrote the CA into the config: {config}"
    );
    let agent = agent_box.start();
    eventually(
        Duration::from_secs(30),
        "a report over TLS",
        &[&agent],
        || async {
            operator
                .get_host(&host_id)
                .await
                .ok()?
                .last_report_at
                .map(|_| ())
        },
    )
    .await;

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
