//! Persistence of the certificates the cloud's built-in CA issued (SPEC §7, decision 0016):
//! one row per leaf, keyed by its serial, so listings, revocation (the guard refuses a revoked
//! serial; a revoked identity cannot renew) and the CRL all come from the one table, on every
//! replica. The certificates themselves are not stored: only what identifies and limits them.

use async_trait::async_trait;

use crate::StoreResult;

/// The kind of box a certificate speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertSubjectKind {
    Host,
    Hub,
}

impl CertSubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CertSubjectKind::Host => "host",
            CertSubjectKind::Hub => "hub",
        }
    }

    pub fn parse(text: &str) -> Option<CertSubjectKind> {
        match text {
            "host" => Some(CertSubjectKind::Host),
            "hub" => Some(CertSubjectKind::Hub),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRow {
    /// Lowercase hex of the serial number; unique.
    pub serial: String,
    pub subject_kind: CertSubjectKind,
    /// The host or hub id the certificate names.
    pub subject_id: String,
    /// SHA-256 hex of the certificate's DER.
    pub fingerprint: String,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    /// Who asked: an operator's email, `host:<id>` or `hub:<id>`.
    pub issued_by: String,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

#[async_trait]
pub trait CertificateStore: Send + Sync {
    /// A serial that exists already is a `Conflict("serial")`.
    async fn insert_certificate(&self, row: &CertificateRow) -> StoreResult<()>;
    async fn get_certificate(&self, serial: &str) -> StoreResult<Option<CertificateRow>>;
    /// Newest issue first; only one subject's when `subject` is given.
    async fn list_certificates(
        &self,
        subject: Option<(CertSubjectKind, &str)>,
    ) -> StoreResult<Vec<CertificateRow>>;
    /// Marks one certificate revoked. `Ok(false)` when no such serial; revoking twice keeps the
    /// first time and reason and is `Ok(true)`.
    async fn revoke_certificate(&self, serial: &str, at: i64, reason: &str) -> StoreResult<bool>;
    /// Revokes every unrevoked certificate of a subject; the number revoked.
    async fn revoke_subject_certificates(
        &self,
        kind: CertSubjectKind,
        subject_id: &str,
        at: i64,
        reason: &str,
    ) -> StoreResult<u64>;
    /// Revoked certificates that have not expired at `now` (what a CRL must list), oldest
    /// revocation first.
    async fn revoked_certificates(&self, now: i64) -> StoreResult<Vec<CertificateRow>>;
}
