//! Guest drivers: what actually runs a guest on this box.
//!
//! The reconciler speaks only this trait. A driver owns the guests it created and nothing else:
//! it marks them (the Docker driver with labels) and `list` returns only those, so an agent
//! never stops or removes a workload someone else started on the same machine.
//!
//! Every mutating call is idempotent, because a `kill -9` can land between the driver doing
//! something and the journal saying so: creating a guest that exists with this id is `Ok`,
//! starting a running guest is `Ok`, removing a missing guest is `Ok`.

pub mod docker;
mod null;
pub mod proxmox;

pub use docker::DockerDriver;
pub use null::NullDriver;
pub use proxmox::ProxmoxDriver;

use async_trait::async_trait;
use mftplus_types::fleet::{GuestKind, GuestSpec, GuestStatus};
use thiserror::Error;

/// One guest as the driver sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedGuest {
    pub guest_id: String,
    pub status: GuestStatus,
    /// The fields the driver can observe (kind, image, CPU, memory, disk) as they are now;
    /// the rest of the spec is the driver's business only as far as it records it.
    pub spec: GuestSpec,
    /// How often the engine or the agent restarted it, when the driver knows.
    pub restart_count: u64,
    /// A short word from the engine, e.g. `exited (137)`, for the report.
    pub detail: Option<String>,
}

#[derive(Debug, Error)]
pub enum DriverError {
    #[error("the {driver} driver cannot run guests of kind `{kind}`")]
    Unsupported {
        driver: &'static str,
        kind: GuestKind,
    },
    #[error("{driver} is not reachable at {endpoint}: {why}")]
    Unreachable {
        driver: &'static str,
        endpoint: String,
        why: String,
    },
    #[error("{driver} refused to {action} guest `{guest_id}`: {why}")]
    Refused {
        driver: &'static str,
        action: &'static str,
        guest_id: String,
        why: String,
    },
    #[error("guest `{0}` does not exist")]
    NotFound(String),
    #[error("guest `{guest_id}` has an invalid spec: {why}")]
    InvalidSpec { guest_id: String, why: String },
}

impl DriverError {
    /// A stable machine-readable code, for op results and reports.
    pub fn code(&self) -> &'static str {
        match self {
            DriverError::Unsupported { .. } => "driver_unsupported",
            DriverError::Unreachable { .. } => "driver_unreachable",
            DriverError::Refused { .. } => "driver_refused",
            DriverError::NotFound(_) => "guest_not_found",
            DriverError::InvalidSpec { .. } => "guest_invalid_spec",
        }
    }
}

#[async_trait]
pub trait GuestDriver: Send + Sync {
    /// `docker`, `none`, … (for logs and the report).
    fn name(&self) -> &'static str;
    /// Whether this driver runs guests of `kind`.
    fn supports(&self, kind: GuestKind) -> bool;
    /// Every guest this driver owns on this box, whatever its state.
    async fn list(&self) -> Result<Vec<ObservedGuest>, DriverError>;
    /// Creates the guest stopped. `Ok` when a guest with this id exists already.
    async fn create(&self, guest_id: &str, spec: &GuestSpec) -> Result<(), DriverError>;
    /// `Ok` when it runs already.
    async fn start(&self, guest_id: &str) -> Result<(), DriverError>;
    /// Asks it to stop, then forces it after a grace period. `Ok` when stopped already.
    async fn stop(&self, guest_id: &str) -> Result<(), DriverError>;
    /// Stops and deletes it. `Ok` when it does not exist.
    async fn remove(&self, guest_id: &str) -> Result<(), DriverError>;
    /// Applies CPU and memory limits to an existing guest without recreating it.
    async fn resize(&self, guest_id: &str, spec: &GuestSpec) -> Result<(), DriverError>;
}
