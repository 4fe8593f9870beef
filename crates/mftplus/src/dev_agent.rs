//! The host agent that `mftplus dev` runs beside the cloud and hub, so a fresh machine shows a
//! live host: it enrolls once as customer `local` (through the hub when there is one) and keeps
//! its state in `<data>/agent`. It runs guests on Docker when the engine answers, and otherwise
//! reports without managing any, saying so.

use mftplus_agent::config::{AgentConfig, DriverChoice};
use mftplus_agent::enroll::{enroll, hostname, EnrollRequestArgs};
use mftplus_agent::state::StateDb;
use mftplus_agent::Agent;
use mftplus_base::{Secret, SystemClock};
use mftplus_client::{Client, Credential};
use mftplus_types::fleet::{CreateCustomer, UpdateCustomer};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub const CUSTOMER: &str = "local";

/// Enrolls when needed, then runs the agent until `stop`.
pub async fn run(
    data_dir: &Path,
    cloud_url: &str,
    admin_key: &str,
    server_url: &str,
    ca_bundle: Option<&Path>,
    stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut config = AgentConfig::for_server(server_url, data_dir.join("agent"))?;
    config.server_ca_file = ca_bundle.map(Path::to_path_buf);
    config.driver = DriverChoice::Auto;
    // A demo should answer an edit in seconds, not in the fleet's 5-minute default.
    config.poll_min = Duration::from_secs(5);
    config.poll_max = Duration::from_secs(10);
    config.disk_path = data_dir.to_path_buf();
    let enrolled = StateDb::open_to_read(&config.state_dir)
        .map_err(|e| e.to_string())?
        .identity()
        .map_err(|e| e.to_string())?;
    let host_id = match enrolled {
        Some(identity) => identity.host_id,
        None => enroll_locally(&config, cloud_url, admin_key, ca_bundle).await?,
    };
    let driver = mftplus_agent::select_driver(&config, &host_id)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "  Agent:      host {host_id} (customer {CUSTOMER}) reporting to {server_url}; guests: {}",
        if driver.name() == "docker" {
            "Docker containers"
        } else {
            "none (no container engine reachable)"
        }
    );
    let agent = Agent::open(config, driver, Arc::new(SystemClock)).map_err(|e| e.to_string())?;
    agent.run(stop).await.map_err(|e| e.to_string())
}

/// Makes (or re-keys) the `local` customer with a fresh retrieval password and enrolls with it.
async fn enroll_locally(
    config: &AgentConfig,
    cloud_url: &str,
    admin_key: &str,
    ca_bundle: Option<&Path>,
) -> Result<String, String> {
    let options = mftplus_client::ClientOptions {
        extra_roots_pem: ca_bundle
            .map(std::fs::read)
            .transpose()
            .map_err(|e| format!("the dev CA: {e}"))?,
        ..Default::default()
    };
    let admin = Client::with_options(
        cloud_url,
        Credential::ApiKey(admin_key.to_string()),
        options,
    )
    .map_err(|e| e.to_string())?;
    let password = mftplus_fleet::hungarian_passphrase();
    let created = admin
        .create_customer(&CreateCustomer {
            id: Some(CUSTOMER.into()),
            name: "Local dev box".into(),
            email: "dev@localhost.localdomain".into(),
            domain: None,
            locale: Some("en".into()),
            retrieval_password: Some(password.clone()),
            config: None,
        })
        .await;
    if let Err(err) = created {
        if err.status() != Some(409) {
            return Err(format!("cannot create the dev customer: {err}"));
        }
        admin
            .update_customer(
                CUSTOMER,
                &UpdateCustomer {
                    retrieval_password: Some(password.clone()),
                    ..UpdateCustomer::default()
                },
            )
            .await
            .map_err(|e| format!("cannot re-key the dev customer: {e}"))?;
    }
    let request = EnrollRequestArgs {
        customer_id: CUSTOMER.into(),
        password: Secret::new(password),
        restore: None,
        hostname: hostname(),
    };
    // The hub in front may still be registering: a few tries before giving up.
    let mut last = String::new();
    for _ in 0..20 {
        match enroll(config, &request, &SystemClock).await {
            Ok(enrolled) => return Ok(enrolled.host_id),
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!("the dev agent cannot enroll: {last}"))
}
