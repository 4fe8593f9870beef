//! The hub's own client certificate from the cloud's built-in CA (SPEC §7, decision 0016).
//!
//! After registering, the hub asks for a certificate naming it (`hub:<hub_id>`) with its
//! deploy key, keeps it with its key in one 0600 file, `HUB_DATA_DIR/hub-identity.pem`, and
//! renews it over mutual TLS at 70–85 % of its life. While it holds a live one, heartbeats and
//! re-validations prove the hub by that certificate and no longer carry the deploy key. A cloud
//! without the built-in CA, or a certificate that lapsed, leaves the hub on its deploy key.
//!
//! Only phone-home presents the certificate: proxied requests are the agents' own, and the
//! cloud checks the agents' certificates on those, not the hub's.

use crate::state::HubState;
use mftplus_pki::ca::new_key_and_csr;
use mftplus_pki::identity::{read_certificate_pem, renewal_time, renewal_time_within};
use mftplus_types::certificates::{IssueCertificateRequest, IssuedCertificate};
use std::path::{Path, PathBuf};

const FILE: &str = "hub-identity.pem";

/// What the hub knows of the certificate it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub serial: String,
    pub not_after: i64,
    pub renew_at: i64,
    /// The CA's `watch_interval` (seconds, at most five minutes).
    pub look_every: i64,
}

fn file(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Loads a stored certificate into the phone-home client at start; one that lapsed is left out.
pub fn load(state: &HubState) -> Option<Held> {
    let path = file(&state.config.data_dir);
    let text = mftplus_base::read_private_to_string(&path).ok()?;
    let facts = read_certificate_pem(&text).ok()?;
    if facts.not_after <= now() {
        return None;
    }
    let received = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(facts.not_before, |d| d.as_secs() as i64);
    // The file holds the chain, then the key; the identity reads each part it needs.
    state.identity.set_pem(&text, &text).ok()?;
    Some(Held {
        renew_at: renewal_time(facts.not_before, facts.not_after, received, &facts.serial),
        serial: facts.serial,
        not_after: facts.not_after,
        look_every: 300,
    })
}

/// Asks for a certificate (first: with the deploy key; renewal: with the current one), stores
/// it and presents it from the next call on.
pub async fn obtain(
    state: &HubState,
    hub_id: &str,
    renewing: bool,
) -> Result<Held, crate::phone_home::CallError> {
    use crate::phone_home::{call, Auth, CallError};
    let (key_pem, csr) = new_key_and_csr(hub_id)
        .map_err(|e| CallError::Decode(format!("certificate request: {e}")))?;
    let request = IssueCertificateRequest {
        csr,
        subject: None,
        validity: None,
    };
    let issued: IssuedCertificate = if renewing {
        call(state, "v1/certificates/renew", &request, Auth::Certificate).await?
    } else {
        let path = format!("v1/hubs/{hub_id}/certificate");
        call(state, &path, &request, Auth::DeployKey).await?
    };
    let facts = read_certificate_pem(&issued.certificate)
        .map_err(|e| CallError::Decode(format!("the issued certificate: {e}")))?;
    let look_every = issued
        .watch_interval
        .map_or(300, |every| every.min(300) as i64);
    let text = format!("{}{}", issued.certificate, key_pem);
    mftplus_base::write_private(&file(&state.config.data_dir), text.as_bytes())
        .map_err(|e| CallError::Decode(format!("storing the certificate: {e}")))?;
    state
        .identity
        .set_pem(&issued.certificate, &key_pem)
        .map_err(|e| CallError::Decode(format!("the issued certificate: {e}")))?;
    Ok(Held {
        renew_at: renewal_time_within(
            facts.not_before,
            facts.not_after,
            now(),
            &facts.serial,
            issued.renew_before,
        ),
        serial: facts.serial,
        not_after: facts.not_after,
        look_every: look_every.max(1),
    })
}

/// One look: get the first certificate, renew a due one, drop a lapsed one. `held` is what
/// the hub presents now; the answer is what it presents next, and when to look again.
pub async fn upkeep(state: &HubState, hub_id: &str, held: Option<Held>) -> (Option<Held>, i64) {
    let now = now();
    // Renew with the current certificate while it is live and presented; otherwise (none yet,
    // lapsed, or refused by the cloud) ask again with the deploy key.
    let renewing = match &held {
        Some(h) if h.not_after > now && state.identity.is_set() => {
            if now < h.renew_at {
                return (held.clone(), h.renew_at.min(now + h.look_every));
            }
            true
        }
        Some(h) => {
            state.identity.clear();
            tracing::warn!(serial = %h.serial, "the hub certificate lapsed or was refused; asking for a new one with the deploy key");
            false
        }
        None => false,
    };
    match obtain(state, hub_id, renewing).await {
        Ok(new) => {
            tracing::info!(serial = %new.serial, not_after = new.not_after, "hub certificate stored");
            let next = new.renew_at.min(now + new.look_every);
            (Some(new), next)
        }
        Err(err) => {
            let disabled = matches!(
                &err,
                crate::phone_home::CallError::Status { status: 404, .. }
            );
            if !disabled {
                tracing::warn!(error = %err, "the hub cannot get its certificate now");
            }
            // A cloud without the CA is asked again hourly; anything else soon.
            let next = if disabled { now + 3600 } else { now + 15 };
            let still = held.filter(|h| h.not_after > now);
            (still, next)
        }
    }
}

/// The certificate the hub holds and when to look at it next, for phone-home's loop.
pub struct Keeper {
    held: Option<Held>,
    next_look: i64,
}

impl Keeper {
    pub fn load(state: &HubState) -> Keeper {
        Keeper {
            held: load(state),
            next_look: 0,
        }
    }

    /// Looks when it is time (at once when the cloud refused the certificate); returns the
    /// latest moment phone-home should wake for the next look.
    pub async fn look(&mut self, state: &HubState, hub_id: &str) -> tokio::time::Instant {
        let unix_now = now();
        let refused = self.held.is_some() && !state.identity.is_set();
        if unix_now >= self.next_look || refused {
            (self.held, self.next_look) = upkeep(state, hub_id, self.held.take()).await;
        }
        let until = (self.next_look - unix_now).max(1) as u64;
        tokio::time::Instant::now() + std::time::Duration::from_secs(until)
    }
}
