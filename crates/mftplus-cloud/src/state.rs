//! Shared state of one cloud process.

use crate::auth::cache::{TtlMap, CACHE_TTL};
use crate::auth::jwt::JwtKeys;
use crate::chunk_commit::ChunkCommitter;
use crate::clock::SharedClock;
use crate::config::LoadedConfig;
use crate::metrics::Metrics;
use crate::ratelimit::{LoginThrottle, RateLimiter};
use crate::rbac::Rbac;
use mftplus_store::{ApiKeyRow, DeployKeyRow, HubRow, Store, TokenRow, UserRow};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Chunk uploads under way in this process, so two uploads of the same chunk never write its
/// blob at once (the loser's bytes could otherwise replace the recorded ones).
#[derive(Default)]
pub struct ChunkClaims(Mutex<std::collections::HashSet<(String, u64)>>);

pub struct ChunkClaim<'a> {
    claims: &'a ChunkClaims,
    key: (String, u64),
}

impl ChunkClaims {
    pub fn claim(&self, transfer_id: &str, index: u64) -> Option<ChunkClaim<'_>> {
        let key = (transfer_id.to_string(), index);
        let fresh = self
            .0
            .lock()
            .expect("chunk claims lock")
            .insert(key.clone());
        // Built only when fresh: a claim dropped on refusal would release the holder's key.
        fresh.then(|| ChunkClaim { claims: self, key })
    }

    /// [`claim`](Self::claim), waiting up to `patience` for another upload of the chunk to end.
    /// A sender that resumes right after its connection broke meets the upload the break cut
    /// off still ending on the server (its handler runs to the end); that one fails within
    /// moments, and the retry should not.
    pub async fn claim_within(
        &self,
        transfer_id: &str,
        index: u64,
        patience: std::time::Duration,
    ) -> Option<ChunkClaim<'_>> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(claim) = self.claim(transfer_id, index) {
                return Some(claim);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ChunkClaim<'_> {
    fn drop(&mut self) {
        self.claims
            .0
            .lock()
            .expect("chunk claims lock")
            .remove(&self.key);
    }
}

pub struct CredentialCache {
    /// Verified tokens with the key set that verified them: a hit counts only while that set
    /// is still the one in force, so a rotation that drops a key ends its tokens at once.
    pub verified: TtlMap<
        String,
        (
            Arc<crate::auth::jwt::Claims>,
            std::sync::Weak<crate::auth::jwt::JwtKeys>,
        ),
    >,
    /// By the raw SHA-256 of the key.
    pub keys: TtlMap<[u8; 32], ApiKeyRow>,
    pub tokens: TtlMap<String, TokenRow>,
    pub users: TtlMap<String, UserRow>,
    /// Host and guest keys, by the raw SHA-256 of the key.
    pub reporters: TtlMap<[u8; 32], crate::auth::reporter::Reporter>,
    /// Deploy keys (edge hubs), revoked ones included, by the raw SHA-256 of the key.
    pub deploy_keys: TtlMap<[u8; 32], DeployKeyRow>,
    /// Hubs by id, for checking a hub's assertion on transfer requests (decision 0012).
    pub hubs: TtlMap<String, HubRow>,
    /// Certificates by serial as the guard checks them (`None`: not issued here).
    pub certificates: TtlMap<String, Option<mftplus_store::CertificateRow>>,
}

pub struct Inner {
    pub store: Arc<dyn Store>,
    /// Ciphertext of transfers; rows about them live in `store`.
    pub blobs: Arc<dyn mftplus_blob::BlobStore>,
    pub config: Arc<LoadedConfig>,
    /// The JWT keys in force; replaced when their files change (`auth::keyring`).
    pub jwt: crate::auth::keyring::JwtKeyring,
    pub rbac: Rbac,
    pub clock: SharedClock,
    pub limiter: RateLimiter,
    pub login_throttle: LoginThrottle,
    pub cache: CredentialCache,
    pub metrics: Metrics,
    pub chunk_claims: ChunkClaims,
    /// Commits chunk rows in batches, after syncing their blobs.
    pub chunk_committer: ChunkCommitter,
    pub fleet: crate::fleet::FleetRuntime,
    /// The last database ping `/api/v1/health` made, and when (`handlers::health`).
    pub database_health: Mutex<Option<(Instant, mftplus_types::api::DatabaseHealth)>>,
    /// The built-in CA, unless `certificates.authority.enabled` is false.
    pub ca: Option<Arc<crate::ca::CaRuntime>>,
    pub started: Instant,
    /// Last-use stamps of API keys, written in batches by a background job.
    pub key_uses: Mutex<HashMap<String, i64>>,
    /// The path last recorded for each user (decision 0012), so an unchanged path is written
    /// again only after a while rather than on every request.
    pub site_paths: TtlMap<String, Option<String>>,
    /// Moves after every successful write request this replica answers, so a live page looks
    /// at its data at once instead of at its next tick (`web::live`). Other replicas' writes
    /// and background jobs are still seen at the tick.
    pub writes: tokio::sync::watch::Sender<u64>,
    /// Wakes recipients' long-polls of their pending transfers (decision 0036).
    pub transfer_news: Arc<crate::transfer_news::TransferNews>,
    /// Held while the audit chain is verified: one full walk of the log at a time.
    pub audit_verifying: tokio::sync::Mutex<()>,
    /// Live streams open on this replica, bounded per account and in all (`web::live_permits`).
    pub live_streams: Arc<crate::web::live_permits::LiveStreams>,
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
        blobs: Arc<dyn mftplus_blob::BlobStore>,
        config: Arc<LoadedConfig>,
        clock: SharedClock,
        ca: Option<Arc<crate::ca::CaRuntime>>,
    ) -> Result<AppState, String> {
        let jwt = crate::auth::keyring::JwtKeyring::watching(
            JwtKeys::from_config(&config.config.auth.jwt)?,
            &config,
        );
        let metrics = Metrics::default();
        // Needs the runtime: AppState is only built inside it (Cloud::build / with_store).
        let chunk_committer =
            ChunkCommitter::start(store.clone(), blobs.clone(), metrics.chunk_commits.clone());
        let rbac = Rbac::new(&config.config.rbac);
        let fleet = crate::fleet::FleetRuntime::load(&config.config, store.clone())?;
        let login = &config.config.auth.login;
        Ok(AppState(Arc::new(Inner {
            limiter: RateLimiter::default(),
            login_throttle: LoginThrottle::from_config(login),
            cache: CredentialCache {
                verified: TtlMap::new(CACHE_TTL),
                keys: TtlMap::new(CACHE_TTL),
                tokens: TtlMap::new(CACHE_TTL),
                users: TtlMap::new(CACHE_TTL),
                reporters: TtlMap::new(CACHE_TTL),
                deploy_keys: TtlMap::new(CACHE_TTL),
                hubs: TtlMap::new(CACHE_TTL),
                certificates: TtlMap::new(CACHE_TTL),
            },
            database_health: Mutex::new(None),
            ca,
            site_paths: TtlMap::new(crate::handlers::site::PATH_REWRITE_AFTER),
            writes: tokio::sync::watch::Sender::new(0),
            transfer_news: Arc::default(),
            audit_verifying: tokio::sync::Mutex::new(()),
            live_streams: Arc::default(),
            metrics,
            chunk_claims: ChunkClaims::default(),
            chunk_committer,
            fleet,
            started: Instant::now(),
            key_uses: Mutex::new(HashMap::new()),
            store,
            blobs,
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

#[cfg(test)]
mod tests {
    use super::ChunkClaims;
    use std::sync::Arc;
    use std::time::Duration;

    /// A claim held past the patience is refused; one given back meanwhile is taken.
    #[tokio::test]
    async fn a_chunk_claim_waits_for_the_other_upload_to_end() {
        let claims = Arc::new(ChunkClaims::default());
        let held = claims.claim("t", 3).unwrap();
        assert!(claims.claim("t", 4).is_some(), "another chunk is free");
        let short = claims.claim_within("t", 3, Duration::from_millis(60)).await;
        assert!(short.is_none(), "still held after the patience");
        let waiter = {
            let claims = claims.clone();
            tokio::spawn(async move {
                claims
                    .claim_within("t", 3, Duration::from_secs(5))
                    .await
                    .is_some()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        assert!(waiter.await.unwrap(), "taken once the other upload ended");
    }
}
