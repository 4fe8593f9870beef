//! Shared state of one cloud process.

use crate::auth::cache::{TtlMap, CACHE_TTL};
use crate::auth::jwt::JwtKeys;
use crate::clock::SharedClock;
use crate::config::LoadedConfig;
use crate::metrics::Metrics;
use crate::ratelimit::{LoginThrottle, RateLimiter};
use crate::rbac::Rbac;
use mftplus_store::{ApiKeyRow, Store, TokenRow, UserRow};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub struct CredentialCache {
    pub verified: TtlMap<String, crate::auth::jwt::Claims>,
    /// By the raw SHA-256 of the key.
    pub keys: TtlMap<[u8; 32], ApiKeyRow>,
    pub tokens: TtlMap<String, TokenRow>,
    pub users: TtlMap<String, UserRow>,
}

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub config: Arc<LoadedConfig>,
    pub jwt: JwtKeys,
    pub rbac: Rbac,
    pub clock: SharedClock,
    pub limiter: RateLimiter,
    pub login_throttle: LoginThrottle,
    pub cache: CredentialCache,
    pub metrics: Metrics,
    pub started: Instant,
    /// Last-use stamps of API keys, written in batches by a background job.
    pub key_uses: Mutex<HashMap<String, i64>>,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        config: Arc<LoadedConfig>,
        clock: SharedClock,
    ) -> Result<AppState, String> {
        let jwt = JwtKeys::from_config(&config.config.auth.jwt)?;
        let rbac = Rbac::new(&config.config.rbac);
        let login = &config.config.auth.login;
        Ok(AppState(Arc::new(Inner {
            limiter: RateLimiter::default(),
            login_throttle: LoginThrottle::new(login.max_failures, login.lockout_seconds),
            cache: CredentialCache {
                verified: TtlMap::new(CACHE_TTL),
                keys: TtlMap::new(CACHE_TTL),
                tokens: TtlMap::new(CACHE_TTL),
                users: TtlMap::new(CACHE_TTL),
            },
            metrics: Metrics::default(),
            started: Instant::now(),
            key_uses: Mutex::new(HashMap::new()),
            store,
            config,
            jwt,
            rbac,
            clock,
        })))
    }

    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}
