//! Reporter credentials: host keys (agents) and guest keys (controllers). A key resolves to its
//! host or guest and from there to the customer; it is never a user credential, so it opens
//! only the routes whose access is `Host`, `Guest` or `HostOr` (decision 0009).

use crate::error::ApiError;
use crate::state::AppState;
use mftplus_types::fleet::{GUEST_KEY_PREFIX, HOST_KEY_PREFIX};
use mftplus_types::ErrorCode;
use std::sync::Arc;

/// Who is reporting, inserted as a request extension on reporter routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reporter {
    Host {
        host_id: String,
        customer_id: String,
    },
    Guest {
        guest_id: String,
        host_id: String,
        customer_id: String,
    },
}

impl Reporter {
    pub fn host_id(&self) -> &str {
        match self {
            Reporter::Host { host_id, .. } | Reporter::Guest { host_id, .. } => host_id,
        }
    }
    pub fn customer_id(&self) -> &str {
        match self {
            Reporter::Host { customer_id, .. } | Reporter::Guest { customer_id, .. } => customer_id,
        }
    }
    fn label(&self) -> String {
        match self {
            Reporter::Host { host_id, .. } => format!("host:{host_id}"),
            Reporter::Guest { guest_id, .. } => format!("guest:{guest_id}"),
        }
    }
    /// The subject of per-credential rate limiting.
    pub fn rate_key(&self) -> (&'static str, String) {
        ("reporter", self.label())
    }
}

/// A bearer token that looks like a reporter key, if one was presented.
pub fn presented_reporter_key(headers: &http::HeaderMap) -> Option<&str> {
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer")
        && (token.starts_with(HOST_KEY_PREFIX) || token.starts_with(GUEST_KEY_PREFIX)))
    .then_some(token)
}

/// A fresh reporter key: the prefix and 40 base62 characters (238 bits).
pub fn generate_key(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        mftplus_crypto::secrets::random_base62(mftplus_crypto::secrets::API_KEY_BODY_LEN)
    )
}

impl AppState {
    /// Resolves a host or guest key. Unknown keys are 401 `unauthenticated`; a host key
    /// replaced by a rotation keeps resolving to its host until the rotation's grace ends,
    /// then it is 401 `token_revoked` (`docs/key-rotation.md`).
    pub async fn authenticate_reporter(&self, key: &str) -> Result<Reporter, ApiError> {
        let digest = mftplus_crypto::api_key_digest(key);
        if let Some(hit) = self.cache.reporters.get(&digest) {
            return Ok((*hit).clone());
        }
        let hash = hex::encode(digest);
        let reporter = if key.starts_with(HOST_KEY_PREFIX) {
            match self.store.get_host_by_key_hash(&hash).await? {
                Some(host) => Some(Reporter::Host {
                    host_id: host.id,
                    customer_id: host.customer_id,
                }),
                // Not cached: the grace ends by the clock, and only stragglers use an old key.
                None => return self.previous_host_key(&hash).await,
            }
        } else {
            self.store
                .get_guest_by_key_hash(&hash)
                .await?
                .map(|guest| Reporter::Guest {
                    guest_id: guest.id,
                    host_id: guest.host_id,
                    customer_id: guest.customer_id,
                })
        };
        let Some(reporter) = reporter else {
            return Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "unknown or revoked host or guest key",
            ));
        };
        self.cache
            .reporters
            .insert(digest, Arc::new(reporter.clone()));
        Ok(reporter)
    }

    /// A host key a rotation replaced: its host while the grace lasts.
    async fn previous_host_key(&self, hash: &str) -> Result<Reporter, ApiError> {
        let unknown = || {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "unknown or revoked host or guest key",
            )
        };
        let Some(rotation) = self
            .store
            .get_host_key_rotation_by_previous_hash(hash)
            .await?
        else {
            return Err(unknown());
        };
        if rotation.previous_valid_until_ms <= self.clock.now_ms() {
            return Err(ApiError::new(
                ErrorCode::TokenRevoked,
                "this host key was replaced by a rotation and its grace has ended",
            ));
        }
        let host = self
            .store
            .get_host(&rotation.host_id)
            .await?
            .ok_or_else(unknown)?;
        Ok(Reporter::Host {
            host_id: host.id,
            customer_id: host.customer_id,
        })
    }

    /// Drops every cached reporter lookup after a key rotation or deletion in this process;
    /// other replicas follow within the cache TTL (decision 0003).
    pub fn forget_reporters(&self) {
        self.cache.reporters.clear();
    }
}
