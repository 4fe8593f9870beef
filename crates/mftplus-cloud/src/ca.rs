//! The cloud's built-in certificate authority at run time (SPEC §7, decision 0016): the
//! authority's files, the lifetimes from `certificates.*`, the CRL the listeners load, and the
//! check every box request with a client certificate goes through.

use crate::config::{ConfigError, ServerConfig};
use crate::error::ApiError;
use crate::state::AppState;
use mftplus_pki::ca::{Authority, Revoked};
use mftplus_pki::identity::{read_certificate, CertFacts, PeerCertificate};
use mftplus_store::{CertSubjectKind, CertificateRow, Store};
use mftplus_types::certificates::{BoxIdentity, BoxKind};
use mftplus_types::duration::parse_duration_secs;
use mftplus_types::ErrorCode;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How long a CRL the cloud writes is valid, and so the longest a listener may go without a
/// fresh one; it is rewritten well before, and at once on each revocation.
const CRL_LIFETIME: Duration = Duration::from_secs(24 * 3600);
pub const CRL_REFRESH_EVERY: Duration = Duration::from_secs(600);
/// How often each replica looks whether the CA files changed (a rotation elsewhere).
pub const CA_LOOK_EVERY: Duration = Duration::from_secs(5);

/// The lifetimes of `certificates.*`, checked with the key named.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub validity: Duration,
    pub max_validity: Duration,
    pub renew_before: Duration,
    pub watch_interval: Duration,
}

pub fn lifetimes(config: &ServerConfig) -> Result<Lifetimes, ConfigError> {
    let certs = &config.certificates;
    let parse = |key: &str, text: &str| {
        parse_duration_secs(text)
            .map(Duration::from_secs)
            .map_err(|e| ConfigError::Invalid(format!("certificates.{key}: {e}")))
    };
    let lifetimes = Lifetimes {
        validity: parse("validity", &certs.validity)?,
        max_validity: parse("authority.max_validity", &certs.authority.max_validity)?,
        renew_before: parse("renew_before", &certs.renew_before)?,
        watch_interval: parse("watch_interval", &certs.watch_interval)?,
    };
    if lifetimes.validity > lifetimes.max_validity {
        return Err(ConfigError::Invalid(format!(
            "certificates.validity: {} is longer than certificates.authority.max_validity ({})",
            certs.validity, certs.authority.max_validity
        )));
    }
    if lifetimes.renew_before >= lifetimes.validity {
        return Err(ConfigError::Invalid(format!(
            "certificates.renew_before: {} must be shorter than certificates.validity ({})",
            certs.renew_before, certs.validity
        )));
    }
    Ok(lifetimes)
}

pub struct CaRuntime {
    dir: PathBuf,
    name: String,
    /// Swapped whole when the files change (a rotation, here or on another replica).
    authority: RwLock<Arc<Authority>>,
    stamp: Mutex<Stamp>,
    /// Held through a rotation's start or end: both rewrite the folder's files, and two at once
    /// (a double click, two operators) left it half-written.
    changing: Mutex<()>,
    pub lifetimes: Lifetimes,
}

/// What the CA files looked like at the last load.
type Stamp = Vec<Option<(std::time::SystemTime, u64)>>;

fn stamp(dir: &Path) -> Stamp {
    ["roots.pem", "intermediate.crt", "retiring"]
        .iter()
        .map(|file| {
            let meta = std::fs::metadata(dir.join(file)).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

impl CaRuntime {
    /// Opens (on first start, creates) the authority when `certificates.authority.enabled`,
    /// and makes sure a CRL file exists for the listeners to load.
    pub fn open(config: &ServerConfig, now: i64) -> Result<Option<CaRuntime>, ConfigError> {
        let section = &config.certificates.authority;
        if !section.enabled {
            return Ok(None);
        }
        let lifetimes = lifetimes(config)?;
        let authority = Authority::open_or_create(&section.dir, &section.name, now)
            .map_err(|e| ConfigError::Invalid(format!("certificates.authority.dir: {e}")))?;
        if !authority.crl_file().exists() {
            authority
                .write_crl(&[], now, now + CRL_LIFETIME.as_secs() as i64)
                .map_err(|e| ConfigError::Invalid(format!("certificates.authority.dir: {e}")))?;
        }
        Ok(Some(CaRuntime {
            dir: section.dir.clone(),
            name: section.name.clone(),
            stamp: Mutex::new(stamp(&section.dir)),
            changing: Mutex::new(()),
            authority: RwLock::new(Arc::new(authority)),
            lifetimes,
        }))
    }

    /// The authority as of now.
    pub fn authority(&self) -> Arc<Authority> {
        self.authority
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads the files again when they changed; `Ok(true)` when a new authority is in place.
    /// A folder caught half-way through a rotation by another replica fails to load and is
    /// tried again at the next look.
    pub fn reload_if_changed(&self) -> Result<bool, mftplus_pki::ca::CaError> {
        let now = stamp(&self.dir);
        let mut last = self.stamp.lock().unwrap_or_else(|p| p.into_inner());
        if *last == now {
            return Ok(false);
        }
        let authority = Authority::open(&self.dir)?;
        *last = now;
        *self.authority.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(authority);
        Ok(true)
    }

    /// Starts a rotation (see `Authority::rotate`) and loads the new pair.
    pub fn rotate(&self, now: i64) -> Result<(), mftplus_pki::ca::CaError> {
        let _changing = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        Authority::rotate(&self.dir, &self.name, now)?;
        self.reload_if_changed().map(drop)
    }

    pub fn retire(&self, now: i64) -> Result<(), mftplus_pki::ca::CaError> {
        let _changing = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        Authority::retire(&self.dir, now)?;
        self.reload_if_changed().map(drop)
    }

    /// The CRL as of now, from the store.
    pub async fn crl_pem(&self, store: &dyn Store, now: i64) -> Result<String, ApiError> {
        let revoked = revoked_entries(store, now).await?;
        self.authority()
            .crl_pem(&revoked, now, now + CRL_LIFETIME.as_secs() as i64)
            .map_err(ApiError::internal)
    }

    /// Rewrites the CRL file the listeners watch.
    pub async fn write_crl(&self, store: &dyn Store, now: i64) -> Result<(), ApiError> {
        let revoked = revoked_entries(store, now).await?;
        self.authority()
            .write_crl(&revoked, now, now + CRL_LIFETIME.as_secs() as i64)
            .map_err(ApiError::internal)
    }
}

async fn revoked_entries(store: &dyn Store, now: i64) -> Result<Vec<Revoked>, ApiError> {
    Ok(store
        .revoked_certificates(now)
        .await?
        .into_iter()
        .map(|row| Revoked {
            serial: row.serial,
            revoked_at: row.revoked_at.unwrap_or(now),
        })
        .collect())
}

pub fn store_kind(kind: BoxKind) -> CertSubjectKind {
    match kind {
        BoxKind::Host => CertSubjectKind::Host,
        BoxKind::Hub => CertSubjectKind::Hub,
    }
}

pub fn row_identity(row: &CertificateRow) -> BoxIdentity {
    match row.subject_kind {
        CertSubjectKind::Host => BoxIdentity::host(&row.subject_id),
        CertSubjectKind::Hub => BoxIdentity::hub(&row.subject_id),
    }
}

/// A client certificate the listener verified and this CA recorded, not revoked: the box it
/// speaks for. The TLS layer has checked chain and dates; this adds what only the store knows.
#[derive(Debug, Clone)]
pub struct CertifiedBox {
    pub identity: BoxIdentity,
    pub facts: CertFacts,
}

impl AppState {
    /// Reads the peer certificate and checks it against the store (cached like credentials,
    /// so a revocation on another replica is seen within the cache's lifetime).
    pub async fn certified_box(&self, peer: &PeerCertificate) -> Result<CertifiedBox, ApiError> {
        let facts = read_certificate(&peer.0).map_err(|e| {
            ApiError::new(
                ErrorCode::CertificateRequired,
                format!("client certificate: {e}"),
            )
        })?;
        let Some(identity) = facts.identity.clone() else {
            return Err(ApiError::new(
                ErrorCode::CertificateRequired,
                "the client certificate names no MFTPlus box (urn:mftplus: subject alternative name)",
            ));
        };
        let row = match self.cache.certificates.get(&facts.serial) {
            Some(hit) => (*hit).clone(),
            None => {
                let row = self.store.get_certificate(&facts.serial).await?;
                self.cache
                    .certificates
                    .insert(facts.serial.clone(), std::sync::Arc::new(row.clone()));
                row
            }
        };
        let Some(row) = row else {
            // Verified by a CA in `client_auth.ca_files` but not issued here: the certificate
            // proves nothing about which box this is.
            return Err(ApiError::new(
                ErrorCode::CertificateRequired,
                "the client certificate was not issued by this cloud's certificate authority",
            ));
        };
        if row.revoked_at.is_some() {
            return Err(ApiError::new(
                ErrorCode::CertificateRevoked,
                "the client certificate was revoked; recover with the retrieval password \
                 (mftplus agent certificate --recover)",
            ));
        }
        // The listener checked the dates of a certificate presented to it; one an edge hub
        // forwarded is checked here.
        if row.not_after <= self.clock.now_secs() {
            return Err(ApiError::new(
                ErrorCode::CertificateRequired,
                "the client certificate expired; recover with the retrieval password \
                 (mftplus agent certificate --recover)",
            ));
        }
        if row_identity(&row) != identity {
            return Err(ApiError::new(
                ErrorCode::CertificateRequired,
                "the client certificate does not match this cloud's record of it",
            ));
        }
        Ok(CertifiedBox { identity, facts })
    }

    /// Box routes under `client_auth.mode: requireAndVerifyClientCert` need a certificate.
    pub fn box_certificate_required(&self) -> bool {
        let tls = &self.config.config.tls;
        tls.enabled && tls.client_auth.mode == "requireAndVerifyClientCert"
    }
}
