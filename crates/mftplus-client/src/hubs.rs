//! The edge-hub routes (SPEC §4, `docs/decisions/0010-hub-phone-home.md`).
//!
//! Operator routes (deploy keys, the hub registry) are methods on [`Client`]. A hub uses
//! [`HubClient`], which sends its deploy key as `Authorization: Bearer` on the three
//! phone-home routes and nowhere else.

use mftplus_types::hubs::{
    CreateDeployKey, CreatedDeployKey, DeployKeyInfo, HubHeartbeatRequest, HubHeartbeatResponse,
    HubInfo, HubRegisterRequest, HubRegisterResponse, RotateDeployKey, RotatedDeployKey,
};
use mftplus_types::routes::{self, fill};

use crate::{Client, ClientError, ClientOptions, Credential, Method};

impl Client {
    /// Creates a deploy key; the key in the answer is shown this once.
    pub async fn create_deploy_key(&self, label: &str) -> Result<CreatedDeployKey, ClientError> {
        let request = CreateDeployKey {
            label: label.to_string(),
        };
        self.fetch(
            self.builder(Method::POST, routes::DEPLOY_KEYS)
                .json(&request),
        )
        .await
    }

    /// Every deploy key, revoked ones included, newest first; never the keys themselves.
    pub async fn list_deploy_keys(&self) -> Result<Vec<DeployKeyInfo>, ClientError> {
        self.fetch(self.builder(Method::GET, routes::DEPLOY_KEYS))
            .await
    }

    /// Revokes a deploy key: its hubs are refused at their next contact.
    pub async fn revoke_deploy_key(&self, id: &str) -> Result<(), ClientError> {
        let path = fill(routes::DEPLOY_KEY, "id", id);
        self.fetch_nothing(self.builder(Method::DELETE, &path))
            .await
    }

    /// Replaces a deploy key with a new one of the same label, shown this once; the old key
    /// keeps working for `grace_seconds` (the cloud's default when `None`), then is refused as
    /// revoked (`docs/key-rotation.md`).
    pub async fn rotate_deploy_key(
        &self,
        id: &str,
        grace_seconds: Option<u64>,
    ) -> Result<RotatedDeployKey, ClientError> {
        let path = fill(routes::DEPLOY_KEY_ROTATE, "id", id);
        let request = RotateDeployKey { grace_seconds };
        self.fetch(self.builder(Method::POST, &path).json(&request))
            .await
    }

    pub async fn list_hubs(&self) -> Result<Vec<HubInfo>, ClientError> {
        self.fetch(self.builder(Method::GET, routes::HUBS)).await
    }

    pub async fn get_hub(&self, hub_id: &str) -> Result<HubInfo, ClientError> {
        let path = fill(routes::HUB, "hub_id", hub_id);
        self.fetch(self.builder(Method::GET, &path)).await
    }
}

/// The client of an edge hub, keyed by its deploy key (`mft_dep_…`).
///
/// Built from the hub's `CLOUD_API_URL`, which by the seed's convention is the cloud's base URL
/// **including** `/api` (e.g. `https://cloud.example.com/api`); the client appends `/v1/hubs/…`.
/// A revoked key surfaces as `ClientError::Api` with code `token_revoked` (status 401), an
/// unknown one as `unauthenticated`, a protocol the cloud does not speak as
/// `unsupported_protocol` (400).
#[derive(Debug, Clone)]
pub struct HubClient {
    keyed: Client,
}

impl HubClient {
    pub fn new(cloud_api_url: &str, deploy_key: &str) -> Result<HubClient, ClientError> {
        HubClient::with_options(cloud_api_url, deploy_key, ClientOptions::default())
    }

    pub fn with_options(
        cloud_api_url: &str,
        deploy_key: &str,
        options: ClientOptions,
    ) -> Result<HubClient, ClientError> {
        let keyed = Client::with_options(
            cloud_api_url,
            Credential::Bearer(deploy_key.to_string()),
            options,
        )?;
        Ok(HubClient { keyed })
    }

    /// The `CLOUD_API_URL` as normalised (no trailing slash).
    pub fn base_url(&self) -> &str {
        self.keyed.base_url()
    }

    /// `route` without its leading `/api`, which the base URL already carries.
    fn path(route: &str) -> &str {
        route.strip_prefix("/api").unwrap_or(route)
    }

    /// Registers (or re-registers: same key and hostname keep the hub id) and learns the hub
    /// id, heartbeat interval, license mode and version warning.
    pub async fn register(
        &self,
        request: &HubRegisterRequest,
    ) -> Result<HubRegisterResponse, ClientError> {
        let c = &self.keyed;
        c.fetch(
            c.builder(Method::POST, Self::path(routes::HUBS_REGISTER))
                .json(request),
        )
        .await
    }

    pub async fn heartbeat(
        &self,
        hub_id: &str,
        request: &HubHeartbeatRequest,
    ) -> Result<HubHeartbeatResponse, ClientError> {
        let c = &self.keyed;
        let path = fill(Self::path(routes::HUB_HEARTBEAT), "hub_id", hub_id);
        c.fetch(c.builder(Method::POST, &path).json(request)).await
    }

    /// The periodic re-validation (every `PHONE_HOME_INTERVAL_HOURS`); same answer as
    /// [`HubClient::register`].
    pub async fn validate(
        &self,
        hub_id: &str,
        request: &HubRegisterRequest,
    ) -> Result<HubRegisterResponse, ClientError> {
        let c = &self.keyed;
        let path = fill(Self::path(routes::HUB_VALIDATE), "hub_id", hub_id);
        c.fetch(c.builder(Method::POST, &path).json(request)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_api_url() {
        assert_eq!(HubClient::path(routes::HUBS_REGISTER), "/v1/hubs/register");
        let client = HubClient::new("http://cloud:8080/api/", "mft_dep_secret").unwrap();
        assert_eq!(client.base_url(), "http://cloud:8080/api");
        assert!(!format!("{client:?}").contains("mft_dep_secret"));
    }
}
