//! The driver of a box where the agent manages no guests (no container engine reachable, or
//! `driver: none` in the config): it lists nothing and refuses to create anything, saying why,
//! so the operator sees "unsupported" instead of a guest that silently never appears.

use super::{DriverError, GuestDriver, ObservedGuest};
use async_trait::async_trait;
use mftplus_types::fleet::{GuestKind, GuestSpec};

#[derive(Debug, Default, Clone, Copy)]
pub struct NullDriver;

#[async_trait]
impl GuestDriver for NullDriver {
    fn name(&self) -> &'static str {
        "none"
    }

    fn supports(&self, _kind: GuestKind) -> bool {
        false
    }

    async fn list(&self) -> Result<Vec<ObservedGuest>, DriverError> {
        Ok(Vec::new())
    }

    async fn create(&self, _guest_id: &str, spec: &GuestSpec) -> Result<(), DriverError> {
        Err(DriverError::Unsupported {
            driver: "none",
            kind: spec.kind,
        })
    }

    async fn start(&self, guest_id: &str) -> Result<(), DriverError> {
        Err(DriverError::NotFound(guest_id.into()))
    }

    async fn stop(&self, _guest_id: &str) -> Result<(), DriverError> {
        Ok(())
    }

    async fn remove(&self, _guest_id: &str) -> Result<(), DriverError> {
        Ok(())
    }

    async fn resize(&self, guest_id: &str, _spec: &GuestSpec) -> Result<(), DriverError> {
        Err(DriverError::NotFound(guest_id.into()))
    }
}
