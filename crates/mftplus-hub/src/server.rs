//! The hub as a library: `Hub::build` from a configuration, `Hub::serve` on a listener the
//! caller bound (tests use port 0) until a shutdown future resolves.

use crate::config::HubConfig;
use crate::proxy::{DefaultPhases, ProxyPhases};
use crate::state::{Announcer, HubState, Timings, UpstreamClient};
use axum::extract::{ConnectInfo, Request, State};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("cannot set up TLS for the cloud connection: {0}")]
    Tls(#[from] tokio_rustls::rustls::Error),
    #[error("TLS: {0}")]
    Pki(#[from] mftplus_pki::TlsError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub struct Hub {
    state: Arc<HubState>,
    phases: Arc<dyn ProxyPhases>,
    /// The listener's TLS when `HUB_TLS_CERT`/`HUB_TLS_KEY` are set.
    tls: Option<Arc<mftplus_pki::TlsServer>>,
}

impl Hub {
    /// Production timings, log lines on stdout.
    pub fn build(config: HubConfig) -> Result<Hub, HubError> {
        let timings = Timings::from_config(&config);
        Hub::with_options(config, timings, Announcer::stdout())
    }

    /// Same as `build` with chosen timings and log-line sink; tests use it for short
    /// intervals and to read the `[Hub]`/`[PhoneHome]` lines.
    pub fn with_options(
        config: HubConfig,
        timings: Timings,
        announcer: Announcer,
    ) -> Result<Hub, HubError> {
        let client = upstream_client(&timings, &config, None)?;
        let identity = Arc::new(mftplus_pki::ClientIdentity::default());
        let phone_home_client = upstream_client(&timings, &config, Some(identity.clone()))?;
        let tls = match &config.tls {
            Some(settings) => Some(mftplus_pki::TlsServer::load(settings.clone())?),
            None => None,
        };
        let mut state = HubState::new(config, timings, client, announcer);
        state.phone_home_client = phone_home_client;
        state.identity = identity;
        state.offline = open_offline(&state.config);
        state.site = open_site(&state.config);
        Ok(Hub {
            state: Arc::new(state),
            phases: Arc::new(DefaultPhases),
            tls,
        })
    }

    pub fn state(&self) -> &Arc<HubState> {
        &self.state
    }

    /// `/health`, `/hub/diagnose`, `/hub/offline` (with the dead letter), and the proxy for
    /// everything else.
    pub fn router(&self) -> Router {
        let phases = self.phases.clone();
        Router::new()
            .route("/health", get(crate::diagnose::health))
            .route("/hub/diagnose", get(crate::diagnose::diagnose))
            .route("/hub/offline", get(crate::offline::metrics))
            .route(
                "/hub/offline/dead-letter",
                get(crate::offline::dead_letter::list_rows),
            )
            .route(
                "/hub/offline/dead-letter/replay",
                post(crate::offline::dead_letter::replay),
            )
            .fallback(
                move |State(state): State<Arc<HubState>>,
                      ConnectInfo(client): ConnectInfo<SocketAddr>,
                      request: Request| {
                    let phases = phases.clone();
                    async move {
                        let site_route = state.site.clone().and_then(|site| {
                            crate::site::route(request.method(), request.uri().path())
                                .map(|route| (site, route))
                        });
                        if let Some((site, route)) = site_route {
                            return crate::site::handle(
                                state, site, phases, client, request, route,
                            )
                            .await;
                        }
                        let offline = state.offline.clone().filter(|_| {
                            crate::offline::queueable(request.method(), request.uri().path())
                        });
                        match offline {
                            Some(offline) => {
                                crate::offline::handle(state, offline, client, request).await
                            }
                            None => crate::proxy::handle(state, phases, client, request).await,
                        }
                    }
                },
            )
            .with_state(self.state.clone())
    }

    /// Prints the seed's start-up lines, starts phone-home, and serves until `shutdown`
    /// resolves; then stops accepting, lets in-flight requests finish, and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), HubError> {
        let address = listener.local_addr().map_err(|source| HubError::Io {
            context: "cannot read the listening address".into(),
            source,
        })?;
        let config = &self.state.config;
        let say = |line: String| self.state.announcer.say(&line);
        say(format!(
            "[Hub] Server running on port {} ({})",
            address.port(),
            config.node_env
        ));
        say(format!("[Hub] Version: {}", config.hub_version));
        say(format!(
            "[Hub] Cloud API: {}",
            config
                .cloud_api_url
                .as_ref()
                .map(|u| u.base.as_str())
                .unwrap_or("(not configured)")
        ));
        for issue in config.missing() {
            tracing::error!("{issue}: the hub serves /health and /hub/diagnose but will not proxy");
        }
        let phone_home = tokio::spawn(crate::phone_home::run(self.state.clone()));
        let replay = self
            .state
            .offline
            .clone()
            .map(|offline| tokio::spawn(crate::offline::replay(self.state.clone(), offline)));
        let collector = self
            .state
            .site
            .clone()
            .map(|site| tokio::spawn(crate::site::collect::run(self.state.clone(), site)));
        let limits = self.state.config.listener_limits;
        let served = mftplus_pki::serve::serve_tcp(
            listener,
            self.tls.clone(),
            self.router(),
            limits,
            shutdown,
        )
        .await;
        phone_home.abort();
        for task in [replay, collector].into_iter().flatten() {
            task.abort();
        }
        served.map_err(|source| HubError::Io {
            context: "the hub's listener failed".into(),
            source,
        })
    }
}

/// The auth cache and offline queue need the deploy key (their encryption key derives from
/// it) and a writable `HUB_DATA_DIR`; without either the hub still proxies, online only. After
/// a rotation, `HUB_PREVIOUS_REGISTRATION_KEY` re-seals what the old key sealed.
fn open_offline(config: &HubConfig) -> Option<Arc<crate::offline::Offline>> {
    let secret = config.registration_key.as_ref()?;
    let ttl = std::time::Duration::from_secs(u64::from(config.auth_cache_ttl_hours) * 3600);
    let previous = config
        .previous_registration_key
        .as_ref()
        .map(|key| key.expose());
    match crate::offline::Offline::open_rotated(
        &config.data_dir,
        secret.expose(),
        previous,
        ttl,
        config.queue_max,
    ) {
        Ok(offline) => Some(Arc::new(offline)),
        Err(err) => {
            tracing::error!(
                data_dir = %config.data_dir.display(),
                error = %err,
                "auth cache and offline queue unavailable; agents fail while the cloud is down"
            );
            None
        }
    }
}

/// The site store under `HUB_DATA_DIR/site`, unless `HUB_SITE_LOCAL` is off. Without it the
/// hub adds no assertion, so the cloud keeps every transfer's bytes itself.
fn open_site(config: &HubConfig) -> Option<Arc<crate::site::Site>> {
    if !config.site_local {
        return None;
    }
    match crate::site::Site::open(&config.data_dir) {
        Ok(site) => Some(Arc::new(site)),
        Err(err) => {
            tracing::error!(
                data_dir = %config.data_dir.display(),
                error = %err,
                "site store unavailable; every transfer's data goes to the cloud"
            );
            None
        }
    }
}

/// Binds `HUB_LISTEN_ADDR:HUB_PORT`.
pub async fn bind(config: &HubConfig) -> Result<TcpListener, HubError> {
    let address = config.listen_address();
    TcpListener::bind(&address)
        .await
        .map_err(|source| HubError::Io {
            context: format!("cannot listen on {address}"),
            source,
        })
}

pub use mftplus_process::shutdown_signal;

/// A client to the cloud: http or https (rustls with ring and the webpki roots), HTTP/1.1 so
/// upgrades work. The proxy's pools connections; phone-home's presents the hub's `identity`
/// and opens a connection per call.
fn upstream_client(
    timings: &Timings,
    config: &HubConfig,
    identity: Option<Arc<mftplus_pki::ClientIdentity>>,
) -> Result<UpstreamClient, HubError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(timings.connect_timeout));
    let extra = match &config.cloud_ca_file {
        Some(file) => Some(mftplus_pki::TrustStore::from_pem_files(
            std::slice::from_ref(file),
        )?),
        None => None,
    };
    let pooled = identity.is_none();
    let tls = match identity {
        Some(identity) => mftplus_pki::client_config_with_identity(extra.as_ref(), identity)?,
        None => mftplus_pki::client_config(extra.as_ref())?,
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(timings.pool_idle_timeout);
    if !pooled {
        builder.pool_max_idle_per_host(0);
    }
    Ok(builder.build(https))
}
