//! The box's client certificate from the cloud's built-in CA (SPEC §7, decision 0016).
//!
//! The agent asks for its first certificate right after enrollment (the host key authorises
//! that once), presents it on every request, and renews it over mutual TLS when 70–85 % of
//! its life has passed (`mftplus_pki::identity::renewal_time`). The certificate and its key
//! live in `agent.db` beside the host key: one transaction replaces both, so a crash can never
//! leave a key that does not match its certificate.
//!
//! A box that was offline past expiry, or whose certificate was revoked, cannot renew; it keeps
//! running without presenting it and says how to recover: `mftplus agent certificate
//! --recover` with the customer's retrieval password. Nothing needs deleting.
//!
//! When the config names `server.client_cert`/`client_key` (an operator-managed certificate),
//! the agent presents those and manages nothing.

use crate::error::AgentError;
use crate::state::{StateDb, StateError};
use mftplus_client::{AgentClient, ClientError, TlsIdentity};
use mftplus_pki::ca::new_key_and_csr;
use mftplus_pki::identity::{read_certificate_pem, renewal_time_within};
use mftplus_types::certificates::{IssueCertificateRequest, IssuedCertificate};
use rusqlite::{params, OptionalExtension};

#[derive(Clone)]
pub struct StoredCertificate {
    pub chain_pem: String,
    pub key_pem: mftplus_base::Secret,
    pub ca_pem: String,
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    /// When this box stored it (unix seconds): the lifetime counts from here, since the CA
    /// backdates `not_before` for clocks running behind.
    pub stored_at: i64,
    /// What the CA said with it: renew no later than this long before expiry, and look at
    /// least this often (seconds).
    pub renew_before: Option<u64>,
    pub watch_interval: Option<u64>,
}

impl std::fmt::Debug for StoredCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCertificate")
            .field("serial", &self.serial)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl StoredCertificate {
    /// The PEM chain and key as the HTTP client presents them.
    pub fn tls_identity(&self) -> TlsIdentity {
        TlsIdentity(format!("{}\n{}", self.chain_pem, self.key_pem.expose()).into_bytes())
    }

    /// When to renew (see `mftplus_pki::identity::renewal_time_within`).
    pub fn renew_at(&self) -> i64 {
        renewal_time_within(
            self.not_before,
            self.not_after,
            self.stored_at,
            &self.serial,
            self.renew_before,
        )
    }

    /// The longest the agent goes without looking at it: the CA's `watch_interval`, at most
    /// five minutes (a recovery run from the command line is picked up within that).
    pub fn look_every(&self) -> i64 {
        self.watch_interval
            .map_or(300, |every| every.min(300) as i64)
            .max(1)
    }
}

/// What the maintenance step decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Upkeep {
    /// Nothing to do until `renew_at`; look again after `look_every` seconds at the latest.
    Current { renew_at: i64, look_every: i64 },
    /// A new certificate is stored; the client must be rebuilt.
    Replaced { serial: String, not_after: i64 },
    /// The box needs a person: the certificate lapsed or was refused. Said once per cause.
    NeedsRecovery { why: String },
    /// The cloud has no built-in CA.
    NoAuthority,
    /// The server could not be asked; the next look tries again.
    Retry(ClientError),
}

impl StateDb {
    pub fn certificate(&self) -> Result<Option<StoredCertificate>, StateError> {
        self.conn()
            .query_row(
                "SELECT chain_pem, key_pem, ca_pem, serial, not_before, not_after, stored_at_ms,
                        renew_before, watch_interval
                 FROM certificate WHERE id = 1",
                [],
                |r| {
                    Ok(StoredCertificate {
                        chain_pem: r.get(0)?,
                        key_pem: mftplus_base::Secret::new(r.get::<_, String>(1)?),
                        ca_pem: r.get(2)?,
                        serial: r.get(3)?,
                        not_before: r.get(4)?,
                        not_after: r.get(5)?,
                        stored_at: r.get::<_, i64>(6)? / 1000,
                        renew_before: r.get::<_, Option<i64>>(7)?.map(|v| v.max(0) as u64),
                        watch_interval: r.get::<_, Option<i64>>(8)?.map(|v| v.max(0) as u64),
                    })
                },
            )
            .optional()
            .map_err(self.sql())
    }

    pub fn store_certificate(&self, cert: &StoredCertificate) -> Result<(), StateError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO certificate
                 (id, chain_pem, key_pem, ca_pem, serial, not_before, not_after, stored_at_ms,
                  renew_before, watch_interval)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    cert.chain_pem,
                    cert.key_pem.expose(),
                    cert.ca_pem,
                    cert.serial,
                    cert.not_before,
                    cert.not_after,
                    cert.stored_at * 1000,
                    cert.renew_before.map(|v| v as i64),
                    cert.watch_interval.map(|v| v as i64)
                ],
            )
            .map(drop)
            .map_err(self.sql())
    }
}

/// How a certificate is asked for.
pub enum Ask<'a> {
    /// The first one, with the host key.
    First,
    /// With the host key and the retrieval password.
    Recover { password: &'a str },
    /// With the current certificate (the client presents it).
    Renew,
}

/// Makes a key, asks the cloud to certify it, and stores both.
pub async fn obtain(
    db: &StateDb,
    client: &AgentClient,
    host_id: &str,
    ask: Ask<'_>,
    now_ms: i64,
) -> Result<StoredCertificate, ClientError> {
    let (key_pem, csr) = new_key_and_csr(host_id)
        .map_err(|e| ClientError::Decode(format!("cannot make a certificate request: {e}")))?;
    let request = IssueCertificateRequest {
        csr,
        subject: Some(format!("host:{host_id}")),
        validity: None,
    };
    let issued = match ask {
        Ask::First => client.issue_certificate(&request).await?,
        Ask::Recover { password } => client.recover_certificate(&request, password).await?,
        Ask::Renew => client.renew_certificate(&request).await?,
    };
    let stored = stored(issued, key_pem, now_ms / 1000)?;
    db.store_certificate(&stored)
        .map_err(|e| ClientError::Decode(format!("cannot store the certificate: {e}")))?;
    Ok(stored)
}

fn stored(
    issued: IssuedCertificate,
    key_pem: String,
    now: i64,
) -> Result<StoredCertificate, ClientError> {
    // What is stored is what the certificate itself says, not what the answer claims.
    let facts = read_certificate_pem(&issued.certificate)
        .map_err(|e| ClientError::Decode(format!("the issued certificate: {e}")))?;
    Ok(StoredCertificate {
        renew_before: issued.renew_before,
        watch_interval: issued.watch_interval,
        chain_pem: issued.certificate,
        key_pem: mftplus_base::Secret::new(key_pem),
        ca_pem: issued.ca,
        serial: facts.serial,
        not_before: facts.not_before,
        not_after: facts.not_after,
        stored_at: now,
    })
}

/// One look at the certificate: ask for the first, renew when due, or say recovery is needed.
/// `client` presents the current certificate (when there is a live one).
pub async fn upkeep(
    db: &StateDb,
    client: &AgentClient,
    host_id: &str,
    now: i64,
) -> Result<Upkeep, AgentError> {
    let current = db.certificate()?;
    let (ask, what) = match &current {
        None => (Ask::First, "asking for this host's first certificate"),
        Some(cert) if cert.not_after <= now => {
            return Ok(Upkeep::NeedsRecovery {
                why: format!(
                    "the client certificate {} expired at {}",
                    cert.serial, cert.not_after
                ),
            })
        }
        Some(cert) if now < cert.renew_at() => {
            return Ok(Upkeep::Current {
                renew_at: cert.renew_at(),
                look_every: cert.look_every(),
            })
        }
        Some(_) => (Ask::Renew, "renewing the client certificate"),
    };
    tracing::info!(host_id, "{what}");
    match obtain(db, client, host_id, ask, now * 1000).await {
        Ok(cert) => Ok(Upkeep::Replaced {
            serial: cert.serial,
            not_after: cert.not_after,
        }),
        Err(err) => match err.code() {
            "ca_disabled" => Ok(Upkeep::NoAuthority),
            "certificate_exists" | "certificate_revoked" => Ok(Upkeep::NeedsRecovery {
                why: err.message().to_string(),
            }),
            // The network or the server: the next look tries again.
            _ => Ok(Upkeep::Retry(err)),
        },
    }
}
