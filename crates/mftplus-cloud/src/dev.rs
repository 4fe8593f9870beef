//! `mftplus dev`: the whole product in one process on an embedded SQLite database in a local
//! folder, for a first run and for demos. Prints the URL and a one-time admin credential.
//!
//! [`start`] prepares the cloud and its listeners; the `mftplus` binary adds an edge hub in
//! front of it (this crate does not depend on the hub) and then serves both. [`run`] is the
//! cloud alone.

use crate::clock::SystemClock;
use crate::server::{bind, shutdown_signal, Cloud, CloudError};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const DEV_ADMIN_EMAIL: &str = "admin@example.com";

pub struct DevOptions {
    pub data_dir: PathBuf,
    pub listen: String,
    pub metrics_listen: String,
    /// `--tls`: HTTPS with a certificate from the dev cloud's own CA, and box routes that need
    /// the box's client certificate (the whole mutual-TLS path; decision 0016).
    pub tls: bool,
}

/// How long the dev listeners' certificates last; re-issued at start when less is left
/// than a week.
const DEV_SERVER_CERT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// `--tls`: the cloud's certificate from the dev CA and the settings that serve it; returns the
/// CA bundle to trust.
fn tls_env(data_dir: &Path, env: &mut BTreeMap<String, String>) -> Result<PathBuf, CloudError> {
    let (cert, key, roots) = dev_server_certificate(data_dir, "cloud")?;
    env.insert("MFTPLUS__TLS__ENABLED".into(), "true".into());
    env.insert(
        "MFTPLUS__TLS__CERTIFICATE__CERT".into(),
        cert.display().to_string(),
    );
    env.insert(
        "MFTPLUS__TLS__CERTIFICATE__KEY".into(),
        key.display().to_string(),
    );
    // Box routes need the box's certificate (the agent behind the hub has its certificate
    // forwarded by the hub); people sign in as ever.
    env.insert(
        "MFTPLUS__TLS__CLIENT_AUTH__MODE".into(),
        "requireAndVerifyClientCert".into(),
    );
    Ok(roots)
}

/// A server certificate for `name` (`cloud`, `hub`) from the dev CA in `data_dir/ca`, for
/// localhost and 127.0.0.1: `data_dir/tls/<name>.crt` and `.key` (0600), kept while it has
/// more than a week left. Returns (cert, key, the CA bundle to trust).
pub fn dev_server_certificate(
    data_dir: &Path,
    name: &str,
) -> Result<(PathBuf, PathBuf, PathBuf), CloudError> {
    let fail = |why: String| CloudError::Io {
        context: format!("the dev {name} certificate"),
        source: std::io::Error::other(why),
    };
    let now = chrono::Utc::now().timestamp();
    let authority =
        mftplus_pki::ca::Authority::open_or_create(&data_dir.join("ca"), "MFTPlus Dev", now)
            .map_err(|e| fail(e.to_string()))?;
    let dir = data_dir.join("tls");
    mftplus_base::ensure_private_dir(&dir).map_err(|e| fail(e.to_string()))?;
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let fresh = std::fs::read_to_string(&cert)
        .ok()
        .and_then(|pem| mftplus_pki::identity::read_certificate_pem(&pem).ok())
        .is_some_and(|facts| facts.not_after > now + 7 * 86_400)
        && key.exists();
    if !fresh {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let (chain, private) = authority
            .issue_server(&names, DEV_SERVER_CERT_LIFETIME, now)
            .map_err(|e| fail(e.to_string()))?;
        mftplus_base::write_private(&key, private.as_bytes()).map_err(|e| fail(e.to_string()))?;
        std::fs::write(&cert, chain).map_err(|e| fail(e.to_string()))?;
    }
    Ok((cert, key, authority.roots_file()))
}

/// A prepared dev cloud: built, bound, with its admin credential minted.
pub struct DevCloud {
    cloud: Cloud,
    api: tokio::net::TcpListener,
    metrics: tokio::net::TcpListener,
    pub url: String,
    pub data_dir: PathBuf,
    /// With `--tls`: the dev CA's roots, which the hub and the agent trust.
    pub ca_bundle: Option<PathBuf>,
    summary: String,
    key: String,
}

/// The cloud alone: [`start`], print, serve until SIGTERM/SIGINT.
pub async fn run(options: DevOptions) -> Result<(), CloudError> {
    let dev = start(options).await?;
    dev.announce(&[]);
    dev.serve(shutdown_signal()).await
}

pub async fn start(options: DevOptions) -> Result<DevCloud, CloudError> {
    let data_dir = prepare_data_dir(&options.data_dir)?;
    let (env, ca_bundle) = dev_env(&options, &data_dir)?;
    let config = crate::config::load_from(Some(&data_dir.join("server.yaml")), &env)?;
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

    let scheme = if ca_bundle.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{api_addr}");
    let summary = Summary {
        url: &url,
        metrics: format!("{scheme}://{metrics_addr}/metrics"),
        dashboard: cloud.state().config.config.web.enabled,
        ca_bundle: ca_bundle.as_deref(),
        data_dir: &data_dir,
        admin_email: &admin.email,
        password: password.as_deref(),
        key: &key,
    }
    .render();
    Ok(DevCloud {
        cloud,
        api,
        metrics,
        url,
        data_dir,
        ca_bundle,
        summary,
        key,
    })
}

fn io(context: &str) -> impl FnOnce(std::io::Error) -> CloudError {
    let context = context.to_string();
    move |source| CloudError::Io { context, source }
}

/// The data folder (0700), with a JWT secret (0600) and a `server.yaml` made on first use;
/// its canonical path.
fn prepare_data_dir(dir: &Path) -> Result<PathBuf, CloudError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("creating the data folder"))?;
    let data_dir = dir
        .canonicalize()
        .map_err(io("resolving the data folder"))?;
    let secret_path = data_dir.join("jwt.secret");
    if !secret_path.exists() {
        mftplus_base::write_private(&secret_path, mftplus_crypto::random_token(48).as_bytes())
            .map_err(|err| io("writing the JWT secret")(err.into()))?;
    }
    let config_path = data_dir.join("server.yaml");
    if !config_path.exists() {
        std::fs::write(
            &config_path,
            "# mftplus dev configuration; see docs/configuration.md\nmode: development\n",
        )
        .map_err(io("writing server.yaml"))?;
    }
    Ok(data_dir)
}

/// The environment the dev cloud's configuration is read with: the process's own, with the
/// data folder's database, secret, payloads and CA filled in where not set; with `--tls`, the
/// certificate settings too and the CA roots' path.
fn dev_env(
    options: &DevOptions,
    data_dir: &Path,
) -> Result<(BTreeMap<String, String>, Option<PathBuf>), CloudError> {
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    env.entry("DATABASE_URL".into())
        .or_insert_with(|| format!("sqlite://{}", data_dir.join("mftplus.db").display()));
    if !env.contains_key("JWT_SECRET") {
        let secret_path = data_dir.join("jwt.secret");
        env.insert("JWT_SECRET_FILE".into(), secret_path.display().to_string());
    }
    env.insert("MFTPLUS__SERVER__LISTEN".into(), options.listen.clone());
    env.entry("MFTPLUS__TRANSFERS__BLOB_PATH".into())
        .or_insert_with(|| data_dir.join("blobs").display().to_string());
    env.insert(
        "MFTPLUS__CERTIFICATES__AUTHORITY__DIR".into(),
        data_dir.join("ca").display().to_string(),
    );
    let ca_bundle = if options.tls {
        Some(tls_env(data_dir, &mut env)?)
    } else {
        None
    };
    Ok((env, ca_bundle))
}

/// What `mftplus dev` prints about itself once it is up.
struct Summary<'a> {
    url: &'a str,
    metrics: String,
    dashboard: bool,
    ca_bundle: Option<&'a Path>,
    data_dir: &'a Path,
    admin_email: &'a str,
    /// Only on the first start: it is shown once.
    password: Option<&'a str>,
    key: &'a str,
}

impl Summary<'_> {
    fn render(&self) -> String {
        let url = self.url;
        let mut out = format!("  API:        {url}\n");
        if self.dashboard {
            out.push_str(&format!(
                "  Dashboard:  {url}/   (sign in as the admin below)\n"
            ));
        }
        out.push_str(&format!("  Metrics:    {}\n", self.metrics));
        if let Some(roots) = self.ca_bundle {
            out.push_str(&format!(
                "  CA:         {}   (the dev CA's roots: trust them to reach the API)\n",
                roots.display()
            ));
        }
        out.push_str(&format!("  Data:       {}\n", self.data_dir.display()));
        out.push_str(&format!("  Admin:      {}\n", self.admin_email));
        match self.password {
            Some(password) => out.push_str(&format!(
                "  Password:   {password}   (first start only; shown once)\n"
            )),
            None => out.push_str(
                "  Password:   the one shown at the first start (forgotten? mftctl users \
                 reset-password with the API key below)\n",
            ),
        }
        out.push_str(&format!(
            "  API key:    {}   (admin, valid 24 h; shown once)\n",
            self.key
        ));
        if let Some(roots) = self.ca_bundle {
            out.push_str(&format!(
                "  Try:        mftctl --server {url} --cacert {} --api-key <API key> hosts list\n",
                roots.display()
            ));
        }
        out
    }
}

impl DevCloud {
    /// The dev hub's deploy key, kept in `hub/deploy.key` (0600) so a restarted dev hub keeps
    /// its registration; a new one when that file is missing or its key was revoked.
    pub async fn hub_deploy_key(&self) -> Result<String, CloudError> {
        let path = self.data_dir.join("hub").join("deploy.key");
        let io = |context: &'static str| {
            move |source| CloudError::Io {
                context: context.into(),
                source,
            }
        };
        if let Ok(kept) = std::fs::read_to_string(&path) {
            let kept = kept.trim().to_string();
            let digest = mftplus_crypto::hash_api_key(&kept);
            let row = self
                .cloud
                .state()
                .store
                .get_deploy_key_by_hash(&digest)
                .await?;
            if row.is_some_and(|row| row.revoked_at_ms.is_none()) {
                return Ok(kept);
            }
        }
        let (_, key) = crate::handlers::hubs::new_deploy_key(
            self.cloud.state(),
            "mftplus dev hub".into(),
            "system",
        )
        .await
        .map_err(|err| {
            CloudError::Keys(format!("cannot create the dev hub's deploy key: {err:?}"))
        })?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(self.data_dir.join("hub"))
            .map_err(io("creating the hub folder"))?;
        mftplus_base::write_private(&path, key.as_bytes())
            .map_err(|err| io("writing the hub's deploy key")(err.into()))?;
        Ok(key)
    }

    /// The admin API key minted for this run, for the parts of `mftplus dev` that set
    /// things up through the API (the dev agent's customer).
    pub fn admin_api_key(&self) -> &str {
        &self.key
    }

    /// Prints what is running, with `extra` lines (e.g. the hub's address) after the API's.
    pub fn announce(&self, extra: &[String]) {
        let (url, key) = (&self.url, &self.key);
        let mut out = String::new();
        let parts = if extra.is_empty() {
            "cloud"
        } else {
            "cloud and edge hub"
        };
        out.push_str(&format!(
            "\nMFTPlus dev is running ({parts} on embedded SQLite).\n"
        ));
        out.push_str(&self.summary);
        for line in extra {
            out.push_str(&format!("  {line}\n"));
        }
        out.push_str("\nTry it:\n");
        out.push_str(&format!(
            "  export MFTPLUS_SERVER={url}\n  export MFTPLUS_API_KEY={key}\n  mftctl status\n\n"
        ));
        out.push_str("Press Ctrl-C to stop.\n");
        print!("{out}");
        let _ = std::io::stdout().flush();
    }

    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), CloudError> {
        self.cloud
            .serve(self.api, Some(self.metrics), shutdown)
            .await
    }
}
