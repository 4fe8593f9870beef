//! The MFTPlus host agent as a library (SPEC §6): enrollment, the report loop that is the box's
//! heartbeat and poll, reconcile of the operator's desired state through a guest driver with a
//! durable journal, and the signed-op gate for destructive changes.
//!
//! Where things are: [`config`] (the YAML file), [`state`] (`agent.db`: identity, pinned keys,
//! nonces, ops, cached desired state, journal), [`enroll`], [`agent`] (the loop), [`plan`]
//! (what to do, a pure function over `mftplus_fleet::diff`), [`reconcile`] (doing it, one
//! journaled queue per guest), [`ops`] (verifying signed ops and the verdicts owed),
//! [`driver`] (Docker Engine and the driver that manages nothing), [`probe`] (this machine's
//! CPU, memory, disks and filesystem UUIDs, mounted or not), [`storage`] (the storage
//! handshake: applying the operator's storage policies to drives, journaled),
//! [`sd_notify`] (systemd readiness and watchdog),
//! [`key_rotation`] (replacing the host key, crash-safe).
//!
//! What it is not: it never opens the cloud's database and speaks to the cloud (or an edge hub
//! in front of it) only through `mftplus_client::AgentClient`. It holds no signing key: it only
//! verifies operators' signatures against the keys pinned at enrollment.

pub mod agent;
pub mod backup;
pub mod certificate;
pub mod cli;
mod cli_backup;
pub mod config;
pub mod driver;
pub mod enroll;
mod error;
pub mod files;
pub mod key_rotation;
pub mod ops;
pub mod plan;
pub mod probe;
pub mod reconcile;
pub mod sd_notify;
pub mod state;
pub mod state_backup;
pub mod state_files;
mod state_sync;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;

pub use agent::{Agent, Cycle};
pub use config::{AgentConfig, DriverChoice};
pub use error::AgentError;

use driver::{DockerDriver, GuestDriver, NullDriver};
use std::sync::Arc;

/// The driver the config asks for, acting for the host `owner` (its containers carry that
/// id, so agents sharing an engine never touch each other's). `auto` takes Docker when its
/// socket answers and otherwise the driver that manages nothing, saying so once, so
/// `mftplus dev` runs on any machine.
pub async fn select_driver(
    config: &AgentConfig,
    owner: &str,
) -> Result<Arc<dyn GuestDriver>, AgentError> {
    if config.driver == DriverChoice::None {
        return Ok(Arc::new(NullDriver));
    }
    if config.driver == DriverChoice::Proxmox {
        let proxmox = driver::proxmox::connect(config.proxmox.as_ref(), owner).await?;
        return Ok(Arc::new(proxmox));
    }
    let docker = match &config.docker_socket {
        Some(socket) => Ok(DockerDriver::new(socket.clone())),
        None => DockerDriver::from_env(),
    };
    let docker = match (docker, config.driver) {
        (Ok(docker), _) => docker.owned_by(owner).with_guest_data(config.guests_dir()),
        (Err(err), DriverChoice::Docker) => return Err(err.into()),
        (Err(err), _) => {
            tracing::warn!("no container engine ({err}); this agent reports but manages no guests");
            return Ok(Arc::new(NullDriver));
        }
    };
    match config.driver {
        // Both returned above.
        DriverChoice::None | DriverChoice::Proxmox => Ok(Arc::new(NullDriver)),
        DriverChoice::Docker => {
            let version = docker.ping().await?;
            tracing::info!(%version, "guests run on the Docker Engine");
            Ok(Arc::new(docker))
        }
        DriverChoice::Auto => match docker.ping().await {
            Ok(version) => {
                tracing::info!(%version, "guests run on the Docker Engine");
                Ok(Arc::new(docker))
            }
            Err(err) => {
                tracing::warn!(
                    "no container engine ({err}); this agent reports but manages no guests"
                );
                Ok(Arc::new(NullDriver))
            }
        },
    }
}

/// The host id this box enrolled as; [`AgentError::NotEnrolled`] before enrollment.
pub fn enrolled_host(config: &AgentConfig) -> Result<String, AgentError> {
    state::StateDb::open_to_read(&config.state_dir)?
        .identity()?
        .map(|identity| identity.host_id)
        .ok_or_else(|| AgentError::NotEnrolled {
            state_dir: config.state_dir.display().to_string(),
        })
}
