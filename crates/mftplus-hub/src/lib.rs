//! `mftplus-hub`: the edge hub as a library. A hub runs on a customer's network; agents point
//! their server URL at it instead of the cloud, and it forwards every request transparently.
//!
//! What it is:
//! - `config`: the seed's environment variables (`CLOUD_API_URL`, `HUB_REGISTRATION_KEY`, …).
//! - `server`: `Hub::build` / `Hub::serve` on a caller's listener; `/health`, `/hub/diagnose`,
//!   and the proxy for every other path.
//! - `proxy`: streaming reverse proxy over a pooled hyper client, phases after pingora's
//!   `ProxyHttp`, WebSocket/HTTP upgrade tunnels, errors that say where they came from.
//! - `phone_home`: protocol v1 registration, heartbeats and re-validation with the deploy key.
//! - `diagnose`: the seed's health and diagnosis JSON and issue strings.
//!
//! - `auth_cache`, `queue`, `offline`: the encrypted auth cache and the offline queue in
//!   `HUB_DATA_DIR/hub.db`, so agents keep reporting while the cloud is unreachable, or
//!   stalled; the queue's replay and its dead letter (writes the cloud refused on replay);
//!   `rewrap`: re-sealing that file under a rotated deploy key.
//! - `site`: site-local transfers, whose sealed chunks stay in `HUB_DATA_DIR/site`.
//!
//! It never opens the cloud's database and does not depend on the cloud or store crates: it speaks to the cloud
//! only over HTTP (tests alone use the real cloud, as a dev-dependency).

pub mod auth_cache;
pub mod certificate;
pub mod config;
pub mod diagnose;
pub mod error;
pub mod offline;
pub mod phone_home;
pub mod proxy;
pub mod queue;
pub mod rewrap;
pub mod server;
pub mod site;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::HubConfig;
pub use error::{ErrorSource, ProxyError, RetryType};
pub use server::{bind, shutdown_signal, Hub, HubError};
pub use state::{Announcer, Timings};
