//! `mftplus dev`: the whole product in one process on an embedded SQLite database in a local
//! folder, for a first run and for demos. Prints the URL and a one-time admin credential.

use crate::clock::SystemClock;
use crate::server::{bind, shutdown_signal, Cloud, CloudError};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Arc;

pub const DEV_ADMIN_EMAIL: &str = "admin@example.com";

pub struct DevOptions {
    pub data_dir: PathBuf,
    pub listen: String,
    pub metrics_listen: String,
}

pub async fn run(options: DevOptions) -> Result<(), CloudError> {
    let io = |context: &str| {
        let context = context.to_string();
        move |source| CloudError::Io { context, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&options.data_dir)
        .map_err(io("creating the data folder"))?;
    let data_dir = options
        .data_dir
        .canonicalize()
        .map_err(io("resolving the data folder"))?;

    let secret_path = data_dir.join("jwt.secret");
    if !secret_path.exists() {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&secret_path)
            .map_err(io("writing the JWT secret"))?;
        file.write_all(mftplus_crypto::random_token(48).as_bytes())
            .map_err(io("writing the JWT secret"))?;
    }
    let config_path = data_dir.join("server.yaml");
    if !config_path.exists() {
        std::fs::write(
            &config_path,
            "# mftplus dev configuration; see docs/configuration.md\nmode: development\n",
        )
        .map_err(io("writing server.yaml"))?;
    }

    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    env.entry("DATABASE_URL".into())
        .or_insert_with(|| format!("sqlite://{}", data_dir.join("mftplus.db").display()));
    if !env.contains_key("JWT_SECRET") {
        env.insert("JWT_SECRET_FILE".into(), secret_path.display().to_string());
    }
    env.insert("MFTPLUS__SERVER__LISTEN".into(), options.listen.clone());
    env.entry("MFTPLUS__TRANSFERS__BLOB_PATH".into())
        .or_insert_with(|| data_dir.join("blobs").display().to_string());
    let config = crate::config::load_from(Some(&config_path), &env)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }

    let cloud = Cloud::build(config, Arc::new(SystemClock)).await?;
    let api = bind(&options.listen, "API").await?;
    let metrics = bind(&options.metrics_listen, "metrics").await?;
    let api_addr = api.local_addr().map_err(io("reading the API address"))?;
    let metrics_addr = metrics
        .local_addr()
        .map_err(io("reading the metrics address"))?;

    let (admin, password) = cloud.ensure_admin(DEV_ADMIN_EMAIL).await?;
    let stamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S");
    let key = cloud
        .mint_api_key(&admin, &format!("mftplus dev {stamp}"), "admin", 86_400)
        .await?;

    let url = format!("http://{api_addr}");
    let mut out = String::new();
    out.push_str("\nMFTPlus dev is running (cloud on embedded SQLite).\n");
    out.push_str(&format!("  API:        {url}\n"));
    out.push_str(&format!("  Metrics:    http://{metrics_addr}/metrics\n"));
    out.push_str(&format!("  Data:       {}\n", data_dir.display()));
    out.push_str(&format!("  Admin:      {}\n", admin.email));
    if let Some(password) = password {
        out.push_str(&format!(
            "  Password:   {password}   (first start only; shown once)\n"
        ));
    }
    out.push_str(&format!(
        "  API key:    {key}   (admin, valid 24 h; shown once)\n\n"
    ));
    out.push_str("Try it:\n");
    out.push_str(&format!(
        "  export MFTPLUS_SERVER={url}\n  export MFTPLUS_API_KEY={key}\n  mftctl status\n\n"
    ));
    out.push_str("Press Ctrl-C to stop.\n");
    print!("{out}");
    let _ = std::io::stdout().flush();

    cloud.serve(api, Some(metrics), shutdown_signal()).await
}
