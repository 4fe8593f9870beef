//! What the hub's parts share: configuration, timings, the upstream client, the phone-home
//! status (written by `phone_home`, read by the proxy gate, `/health` and `/hub/diagnose`) and
//! where the seed's log lines go.

use crate::config::HubConfig;
use chrono::{DateTime, Utc};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The pooled keep-alive client every upstream request goes through (proxy and phone-home).
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, axum::body::Body>;

/// Intervals and timeouts. `Timings::from_config` gives the production values; tests shorten
/// them instead of sleeping for real hours.
#[derive(Debug, Clone)]
pub struct Timings {
    /// First registration retry delay; doubles per failure up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Overrides the cloud's `heartbeat_interval_seconds` (tests only).
    pub heartbeat_every: Option<Duration>,
    /// Re-validation interval (`PHONE_HOME_INTERVAL_HOURS`).
    pub revalidate_every: Duration,
    /// TCP (and TLS) connect to the cloud.
    pub connect_timeout: Duration,
    /// From sending a proxied request to the cloud's response headers. Bodies have no overall
    /// limit: a large transfer may stream for as long as it needs.
    pub upstream_timeout: Duration,
    /// Each phone-home call and each `/hub/diagnose` probe.
    pub cloud_call_timeout: Duration,
    /// Idle pooled connections are closed after this.
    pub pool_idle_timeout: Duration,
    /// How often the site store asks the cloud which transfers ended (decision 0012).
    pub site_collect_every: Duration,
    /// How long a queueable write waits for the cloud's answer before the hub queues it and
    /// answers itself (`HUB_QUEUE_ANSWER_BUDGET_SECONDS`): a cloud that accepts connections
    /// and never answers is an offline cloud for these writes.
    pub queue_answer_budget: Duration,
}

impl Timings {
    pub fn from_config(config: &HubConfig) -> Timings {
        Timings {
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            heartbeat_every: None,
            revalidate_every: config.phone_home_interval(),
            connect_timeout: Duration::from_secs(10),
            upstream_timeout: Duration::from_secs(120),
            cloud_call_timeout: Duration::from_secs(15),
            pool_idle_timeout: Duration::from_secs(90),
            site_collect_every: Duration::from_secs(3600),
            queue_answer_budget: Duration::from_secs(config.queue_answer_budget_seconds),
        }
    }
}

/// Where the seed's plain `[Hub] …` / `[PhoneHome] …` lines go: stdout in the binary (whatever
/// the tracing format), a buffer in tests.
#[derive(Clone)]
pub struct Announcer(Arc<dyn Fn(&str) + Send + Sync>);

impl Announcer {
    pub fn stdout() -> Announcer {
        Announcer(Arc::new(|line| println!("{line}")))
    }

    pub fn new(sink: impl Fn(&str) + Send + Sync + 'static) -> Announcer {
        Announcer(Arc::new(sink))
    }

    pub fn say(&self, line: &str) {
        (self.0)(line)
    }
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Announcer")
    }
}

/// Why the cloud turned the deploy key away (a 401 on any phone-home call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `token_revoked`: an operator revoked the key.
    Revoked,
    /// Any other 401, typically `unauthenticated` (an unknown key).
    Refused,
}

impl Refusal {
    pub fn issue(self) -> &'static str {
        match self {
            Refusal::Revoked => crate::diagnose::ISSUE_KEY_REVOKED,
            Refusal::Refused => crate::diagnose::ISSUE_KEY_REFUSED,
        }
    }
}

/// The phone-home facts `/hub/diagnose` reports and the proxy gate reads.
#[derive(Debug, Clone, Default)]
pub struct PhoneHomeStatus {
    pub registered: bool,
    pub hub_id: Option<String>,
    pub last_registered: Option<DateTime<Utc>>,
    pub last_validated: Option<DateTime<Utc>>,
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// The last failed registration or re-validation, cleared by the next success.
    pub validation_error: Option<String>,
    pub refused: Option<Refusal>,
    pub license_mode: Option<String>,
    pub warning: Option<String>,
}

#[derive(Debug)]
pub struct HubState {
    pub config: HubConfig,
    pub timings: Timings,
    pub started: Instant,
    pub client: UpstreamClient,
    /// Phone-home's own client: presents `identity`, pools nothing (a connection opened before
    /// a renewal would present the old certificate).
    pub phone_home_client: UpstreamClient,
    /// The hub's certificate from the cloud's CA, when it holds one (`certificate.rs`).
    pub identity: Arc<mftplus_pki::ClientIdentity>,
    /// The cloud refused the certificate once (it does not verify client certificates):
    /// phone-home uses the deploy key until the hub restarts.
    pub certificate_refused: std::sync::atomic::AtomicBool,
    pub announcer: Announcer,
    pub hostname: String,
    /// The auth cache and offline queue; `None` when `hub.db` could not be opened (the hub
    /// then only proxies).
    pub offline: Option<Arc<crate::offline::Offline>>,
    /// The site store; `None` when `HUB_SITE_LOCAL` is off or `HUB_DATA_DIR/site` could not
    /// be opened (transfers then all go to the cloud).
    pub site: Option<Arc<crate::site::Site>>,
    phone_home: RwLock<PhoneHomeStatus>,
}

impl HubState {
    pub fn new(
        config: HubConfig,
        timings: Timings,
        client: UpstreamClient,
        announcer: Announcer,
    ) -> HubState {
        HubState {
            config,
            timings,
            started: Instant::now(),
            phone_home_client: client.clone(),
            identity: Arc::default(),
            certificate_refused: Default::default(),
            client,
            announcer,
            hostname: hostname(),
            offline: None,
            site: None,
            phone_home: RwLock::new(PhoneHomeStatus::default()),
        }
    }

    pub fn phone_home(&self) -> PhoneHomeStatus {
        // A panic while holding the lock leaves plain data behind, still consistent enough to
        // report; refusing to answer diagnose because of it would help nobody.
        mftplus_base::sync::read(&self.phone_home).clone()
    }

    pub fn update_phone_home(&self, change: impl FnOnce(&mut PhoneHomeStatus)) {
        change(&mut mftplus_base::sync::write(&self.phone_home))
    }

    /// Why the hub must not proxy right now, in the seed's issue wording; `None` means go.
    /// A registration still in flight does not block: agents authenticate to the cloud
    /// themselves, and answering 503 while the cloud is merely slow to answer would turn a
    /// short blip into an outage.
    pub fn proxy_block(&self) -> Option<&'static str> {
        if let Some(first) = self.config.missing().first() {
            return Some(first);
        }
        self.phone_home().refused.map(Refusal::issue)
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The kernel's node name, as Node's `os.hostname()` reports it.
fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// `platform` in the seed's spelling (Node's `process.platform`).
pub fn platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    }
}
