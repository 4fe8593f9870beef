//! `mftplus dev`: the cloud on embedded SQLite and, unless `--no-hub`, an edge hub in front of
//! it with a deploy key of its own, both in this process. Agents and `mftctl` may use either
//! address; transfers between users who both work through the hub stay in its data folder.
//! Unless `--no-agent`, a host agent runs too (`dev_agent.rs`), so the fleet has a live host.

use mftplus_cloud::dev::{DevCloud, DevOptions};
use std::net::SocketAddr;
use tokio::sync::watch;

pub async fn run(
    options: DevOptions,
    hub_listen: Option<String>,
    with_agent: bool,
) -> Result<(), String> {
    let dev = mftplus_cloud::dev::start(options)
        .await
        .map_err(|e| e.to_string())?;
    let (cloud_url, admin_key) = (dev.url.clone(), dev.admin_api_key().to_string());
    let data_dir = dev.data_dir.clone();
    let ca_bundle = dev.ca_bundle.clone();
    let hub = match &hub_listen {
        Some(listen) => Some(prepare_hub(&dev, listen).await?),
        None => None,
    };
    match &hub {
        Some((_, _, hub_url)) => dev.announce(&[format!(
            "Hub:        {hub_url}   (edge hub in front of the API; data in {}/hub)",
            data_dir.display()
        )]),
        None => dev.announce(&[]),
    }
    // Agents work through the hub when there is one, as they would on a site.
    let agent_server = hub
        .as_ref()
        .map_or(cloud_url.clone(), |(_, _, url)| url.clone());
    // One Ctrl-C stops all of them; each drains or finishes its own work.
    let (stop, stopping) = watch::channel(false);
    tokio::spawn(async move {
        mftplus_process::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    };
    let hub_task = async {
        match hub {
            Some((hub, listener, _)) => hub
                .serve(listener, until_stopped(stopping.clone()))
                .await
                .map_err(|e| e.to_string()),
            None => Ok(()),
        }
    };
    let agent_task = async {
        if with_agent {
            let agent = crate::dev_agent::run(
                &data_dir,
                &cloud_url,
                &admin_key,
                &agent_server,
                ca_bundle.as_deref(),
                stopping.clone(),
            );
            // The agent is a demo of the fleet; the cloud and hub keep serving without it.
            if let Err(err) = agent.await {
                eprintln!("warning: the dev agent stopped: {err}");
            }
        }
    };
    let (cloud, hub, ()) = tokio::join!(
        dev.serve(until_stopped(stopping.clone())),
        hub_task,
        agent_task
    );
    cloud.map_err(|e| e.to_string())?;
    hub
}

async fn prepare_hub(
    dev: &DevCloud,
    listen: &str,
) -> Result<(mftplus_hub::Hub, tokio::net::TcpListener, String), String> {
    let key = dev.hub_deploy_key().await.map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen} for the hub: {e}"))?;
    let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    let mut vars = vec![
        ("CLOUD_API_URL", format!("{}/api", dev.url)),
        ("HUB_REGISTRATION_KEY", key),
        ("HUB_PORT", addr.port().to_string()),
        (
            "HUB_DATA_DIR",
            dev.data_dir.join("hub").display().to_string(),
        ),
        ("DIAGNOSE_DISK_PATH", dev.data_dir.display().to_string()),
        ("NODE_ENV", "development".to_string()),
    ];
    if let Some(roots) = &dev.ca_bundle {
        let (cert, key, _) = mftplus_cloud::dev::dev_server_certificate(&dev.data_dir, "hub")
            .map_err(|e| e.to_string())?;
        let roots = roots.display().to_string();
        vars.extend([
            ("HUB_TLS_CERT", cert.display().to_string()),
            ("HUB_TLS_KEY", key.display().to_string()),
            ("HUB_TLS_CLIENT_AUTH", "verifyClientCertIfGiven".to_string()),
            ("HUB_TLS_CLIENT_CA", roots.clone()),
            ("CLOUD_CA_FILE", roots),
        ]);
    }
    // The hub's own variables (e.g. HUB_SITE_LOCAL) still apply; the ones above are dev's.
    let config = mftplus_hub::HubConfig::from_lookup(|name| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| value.clone())
            .or_else(|| std::env::var(name).ok())
    })
    .map_err(|e| e.to_string())?;
    let hub = mftplus_hub::Hub::build(config).map_err(|e| e.to_string())?;
    let scheme = if dev.ca_bundle.is_some() {
        "https"
    } else {
        "http"
    };
    Ok((hub, listener, format!("{scheme}://{addr}")))
}
