//! Building and running one cloud process: open the store, build the router from the route
//! table, serve the API and the metrics listener, run background jobs, drain on shutdown.

use crate::clock::SharedClock;
use crate::config::{ConfigError, LoadedConfig};
use crate::state::AppState;
use mftplus_store::{NewApiKey, NewUser, Store, StoreError, UserRow};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("signing keys: {0}")]
    Keys(String),
    #[error(transparent)]
    Blobs(#[from] crate::blobs::BlobSetupError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// `mftplus cloud init` on a database that already has an administrator: nothing changed.
    #[error("an administrator already exists ({0}); `mftplus cloud init` only creates the first one — sign in as an administrator and use `mftctl users` instead")]
    AdminExists(String),
    /// A refused email or password given to `mftplus cloud init`; nothing changed.
    #[error("{0}")]
    InvalidInput(String),
}

pub struct Cloud {
    state: AppState,
    /// The listeners' TLS when `tls.enabled`, rebuilt when its files change.
    tls: Option<Arc<mftplus_pki::TlsServer>>,
}

impl Cloud {
    /// Opens the database named by `database.url` (or `DATABASE_URL`) and applies migrations.
    pub async fn build(config: LoadedConfig, clock: SharedClock) -> Result<Cloud, CloudError> {
        let url = config.config.database.url.clone().ok_or_else(|| {
            ConfigError::Invalid("database.url is not set (set DATABASE_URL)".into())
        })?;
        let store = crate::db::open(url.expose()).await?;
        let blobs = crate::blobs::open(&config.config.transfers).await?;
        Cloud::with_store(config, store, blobs, clock)
    }

    pub fn with_store(
        config: LoadedConfig,
        store: Arc<dyn Store>,
        blobs: Arc<dyn mftplus_blob::BlobStore>,
        clock: SharedClock,
    ) -> Result<Cloud, CloudError> {
        let ca = crate::ca::CaRuntime::open(&config.config, clock.now_secs())?.map(Arc::new);
        let tls = crate::tls::load(&config.config)?;
        let state =
            AppState::new(store, blobs, Arc::new(config), clock, ca).map_err(CloudError::Keys)?;
        Ok(Cloud { state, tls })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn router(&self) -> axum::Router {
        crate::routes::router(self.state.clone())
    }

    /// Serves until `shutdown` resolves, then stops accepting, finishes in-flight requests,
    /// and flushes batched writes.
    pub async fn serve(
        self,
        api: TcpListener,
        metrics: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), CloudError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let jobs = tokio::spawn(crate::jobs::run(self.state.clone(), stop_rx.clone()));
        let checker = tokio::spawn(crate::fleet::checker::run(
            self.state.clone(),
            stop_rx.clone(),
        ));
        tokio::spawn(crate::auth::keyring::watch(
            self.state.clone(),
            stop_rx.clone(),
        ));
        let crl = tokio::spawn(crate::handlers::certificates::refresh_crl(
            self.state.clone(),
            stop_rx.clone(),
        ));
        if let Some(listener) = metrics {
            let state = self.state.clone();
            let app = axum::Router::new().route(
                "/metrics",
                axum::routing::get(move || {
                    let state = state.clone();
                    async move { state.metrics.render(state.uptime_secs()) }
                }),
            );
            let mut stop = stop_rx.clone();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let stopped = async move {
                    let _ = stop.changed().await;
                };
                let limits = mftplus_pki::serve::Limits::default();
                if let Err(err) =
                    mftplus_pki::serve::serve_tcp(listener, tls, app, limits, stopped).await
                {
                    tracing::error!("the metrics listener failed: {err}");
                }
            });
        }
        let stopped = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };
        let limits = self.state.config.config.server.limits.serve();
        let result =
            mftplus_pki::serve::serve_tcp(api, self.tls.clone(), self.router(), limits, stopped)
                .await;
        let _ = jobs.await;
        let _ = checker.await;
        let _ = crl.await;
        result.map_err(|source| CloudError::Io {
            context: "serving the API".into(),
            source,
        })
    }

    /// Creates the account if no user with this email exists. Returns the user and, when one
    /// was generated, its initial password.
    pub async fn ensure_admin(&self, email: &str) -> Result<(UserRow, Option<String>), CloudError> {
        let store = &self.state.store;
        if let Some(user) = store.get_user_by_email(email).await? {
            return Ok((user, None));
        }
        let password = mftplus_crypto::secrets::random_base62(20);
        let hash = mftplus_crypto::password::hash_password(&password)
            .map_err(|err| CloudError::Keys(err.to_string()))?;
        let user = store
            .create_user(&NewUser {
                id: uuid::Uuid::now_v7().to_string(),
                email: email.to_ascii_lowercase(),
                name: "Administrator".into(),
                role: "admin".into(),
                user_type: "user".into(),
                password_hash: Some(hash),
                created_at_ms: self.state.clock.now_ms(),
            })
            .await?;
        self.state
            .audit(
                crate::audit::AuditEvent::new("user_created")
                    .actor("system")
                    .target(&user.email)
                    .details(serde_json::json!({"role": "admin", "bootstrap": true})),
            )
            .await;
        Ok((user, Some(password)))
    }

    /// `mftplus cloud init`: creates the first administrator with a password the operator chose,
    /// once. Refused with [`CloudError::AdminExists`] when any user already has the admin role
    /// (stored, or given by `rbac` in the config), and with [`CloudError::InvalidInput`] for an
    /// invalid email or a password the policy refuses; either way nothing is written. Audited as
    /// `admin_bootstrapped` (actor `system`, target the email; never the password).
    pub async fn init_first_admin(
        &self,
        email: &str,
        password: &str,
    ) -> Result<UserRow, CloudError> {
        let store = &self.state.store;
        let email = crate::handlers::validate_email(email)
            .map_err(|err| CloudError::InvalidInput(err.message))?;
        mftplus_crypto::password::check_password_policy(password)
            .map_err(CloudError::InvalidInput)?;
        if let Some(admin) = store
            .list_users()
            .await?
            .into_iter()
            .find(|u| self.state.rbac.user_role(&u.email, &u.role) == "admin")
        {
            return Err(CloudError::AdminExists(admin.email));
        }
        let owned = password.to_string();
        let hash =
            tokio::task::spawn_blocking(move || mftplus_crypto::password::hash_password(&owned))
                .await
                .map_err(|err| CloudError::Keys(err.to_string()))?
                .map_err(|err| CloudError::Keys(err.to_string()))?;
        let user = store
            .create_user(&NewUser {
                id: uuid::Uuid::now_v7().to_string(),
                email: email.clone(),
                name: "Administrator".into(),
                role: "admin".into(),
                user_type: "user".into(),
                password_hash: Some(hash),
                created_at_ms: self.state.clock.now_ms(),
            })
            .await
            .map_err(|err| match err {
                StoreError::Conflict(_) => CloudError::InvalidInput(format!(
                    "a user {email} already exists without the admin role; choose another email"
                )),
                other => other.into(),
            })?;
        self.state
            .audit(
                crate::audit::AuditEvent::new("admin_bootstrapped")
                    .actor("system")
                    .target(&user.email)
                    .details(serde_json::json!({"role": "admin", "via": "mftplus cloud init"})),
            )
            .await;
        Ok(user)
    }

    /// Mints an API key for a user outside the HTTP API (first start, tests).
    pub async fn mint_api_key(
        &self,
        user: &UserRow,
        name: &str,
        role: &str,
        lifetime_secs: i64,
    ) -> Result<String, CloudError> {
        let secret = mftplus_crypto::generate_api_key();
        let now = self.state.clock.now_ms();
        let row = self
            .state
            .store
            .create_api_key(&NewApiKey {
                id: uuid::Uuid::now_v7().to_string(),
                name: name.into(),
                key_hash: mftplus_crypto::hash_api_key(&secret),
                prefix: secret[..12].to_string(),
                role: role.into(),
                owner_id: user.id.clone(),
                created_at_ms: now,
                expires_at_ms: Some(now + lifetime_secs * 1000),
                replaces: None,
            })
            .await?;
        self.state
            .audit(
                crate::audit::AuditEvent::new("apikey_created")
                    .actor("system")
                    .target(&row.id)
                    .details(serde_json::json!({"name": name, "role": role, "prefix": row.prefix})),
            )
            .await;
        Ok(secret)
    }
}

pub use mftplus_process::shutdown_signal;

pub async fn bind(address: &str, what: &str) -> Result<TcpListener, CloudError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| CloudError::Io {
            context: format!("cannot listen on {address} for the {what}"),
            source,
        })
}
