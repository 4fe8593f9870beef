//! What a certificate says about its holder: the box it names (see
//! `mftplus_types::certificates`), its serial and its lifetime. Used by the cloud's guard on
//! the TLS peer certificate, and by boxes on their own certificate to know when to renew.

use mftplus_types::certificates::BoxIdentity;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use x509_parser::extensions::GeneralName;

/// The client certificate the TLS peer presented and the listener verified (chain, dates,
/// CRL), as the serve loop hands it to each request of the connection.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Arc<CertificateDer<'static>>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// The box named by a `urn:mftplus:` subject alternative name, if any.
    pub identity: Option<BoxIdentity>,
    /// Lowercase hex.
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("not a readable X.509 certificate: {0}")]
pub struct CertParseError(String);

pub fn read_certificate(der: &[u8]) -> Result<CertFacts, CertParseError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| CertParseError(e.to_string()))?;
    let identity = cert
        .subject_alternative_name()
        .map_err(|e| CertParseError(e.to_string()))?
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                GeneralName::URI(uri) => BoxIdentity::from_uri(uri),
                _ => None,
            })
        });
    Ok(CertFacts {
        identity,
        serial: hex::encode(cert.raw_serial()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// The facts of the first certificate of a PEM text (the leaf of a chain file).
pub fn read_certificate_pem(pem: &str) -> Result<CertFacts, CertParseError> {
    let der = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| CertParseError("no PEM certificate".into()))?
        .map_err(|e| CertParseError(e.to_string()))?;
    read_certificate(&der)
}

/// One certificate of a bundle, as a person checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    pub subject: String,
    /// SHA-256 hex of the DER.
    pub fingerprint: String,
    pub not_after: i64,
}

/// Every certificate of a PEM bundle; ones that do not parse are skipped.
pub fn summaries(pem: &str) -> Vec<CertSummary> {
    use sha2::Digest;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .filter_map(|der| {
            let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
            Some(CertSummary {
                subject: cert.subject().to_string(),
                fingerprint: hex::encode(sha2::Sha256::digest(&der)),
                not_after: cert.validity().not_after.timestamp(),
            })
        })
        .collect()
}
