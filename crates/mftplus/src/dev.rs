//! `mftplus dev`: the cloud on embedded SQLite and, unless `--no-hub`, an edge hub in front of
//! it with a deploy key of its own, both in this process. Agents and `mftctl` may use either
//! address; transfers between users who both work through the hub stay in its data folder.

use mftplus_cloud::dev::{DevCloud, DevOptions};
use std::net::SocketAddr;
use tokio::sync::watch;

pub async fn run(options: DevOptions, hub_listen: Option<String>) -> Result<(), String> {
    let dev = mftplus_cloud::dev::start(options)
        .await
        .map_err(|e| e.to_string())?;
    let Some(hub_listen) = hub_listen else {
        dev.announce(&[]);
        return dev
            .serve(mftplus_cloud::server::shutdown_signal())
            .await
            .map_err(|e| e.to_string());
    };
    let (hub, listener, hub_url) = prepare_hub(&dev, &hub_listen).await?;
    dev.announce(&[format!(
        "Hub:        {hub_url}   (edge hub in front of the API; data in {}/hub)",
        dev.data_dir.display()
    )]);
    // One Ctrl-C stops both; each drains its own in-flight requests.
    let (stop, stopping) = watch::channel(false);
    tokio::spawn(async move {
        mftplus_hub::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    };
    let (cloud, hub) = tokio::join!(
        dev.serve(until_stopped(stopping.clone())),
        hub.serve(listener, until_stopped(stopping)),
    );
    cloud.map_err(|e| e.to_string())?;
    hub.map_err(|e| e.to_string())
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
    let vars = [
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
    // The hub's own variables (e.g. HUB_SITE_LOCAL) still apply; the ones above are dev's.
    let config = mftplus_hub::HubConfig::from_lookup(|name| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| value.clone())
            .or_else(|| std::env::var(name).ok())
    })
    .map_err(|e| e.to_string())?;
    let hub = mftplus_hub::Hub::build(config).map_err(|e| e.to_string())?;
    Ok((hub, listener, format!("http://{addr}")))
}
