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

impl PeerCertificate {
    /// A certificate that reached this process some other way than its own handshake (an edge
    /// hub forwarding the one it verified).
    pub fn from_der(der: Vec<u8>) -> PeerCertificate {
        PeerCertificate(Arc::new(CertificateDer::from(der)))
    }
}

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

/// When a box renews its certificate: 70–85 % into its life as the box received it (the CA
/// backdates `not_before` for slow clocks, so the lifetime counts from receipt), the exact point
/// derived from the serial, so restarts do not move it and a fleet issued together does not
/// renew together.
pub fn renewal_time(not_before: i64, not_after: i64, received_at: i64, serial: &str) -> i64 {
    renewal_time_within(not_before, not_after, received_at, serial, None)
}

/// [`renewal_time`], and no later than `renew_before` seconds before expiry when the CA says
/// so (the seed's `renew_before`).
pub fn renewal_time_within(
    not_before: i64,
    not_after: i64,
    received_at: i64,
    serial: &str,
    renew_before: Option<u64>,
) -> i64 {
    let spread = fraction_point(not_before, not_after, received_at, serial);
    match renew_before {
        Some(before) => spread.min(not_after - before.min(i64::MAX as u64) as i64),
        None => spread,
    }
}

fn fraction_point(not_before: i64, not_after: i64, received_at: i64, serial: &str) -> i64 {
    let start = not_before.max(received_at.min(not_after));
    let lifetime = (not_after - start).max(0);
    let spread = serial
        .bytes()
        .fold(0u64, |acc, b| acc.wrapping_mul(31).wrapping_add(b as u64))
        % 1000;
    let fraction = 0.70 + 0.15 * (spread as f64 / 1000.0);
    start + (lifetime as f64 * fraction) as i64
}

#[cfg(test)]
mod tests {
    use super::{renewal_time, renewal_time_within};

    #[test]
    fn renewal_falls_in_70_to_85_percent_of_the_life_as_received() {
        for serial in ["01", "7f3a", "deadbeef", "1530b091cf04bb3c"] {
            // Backdated by five minutes, a one-hour certificate received at 1000.
            let at = renewal_time(700, 4600, 1000, serial);
            assert!((1000 + 2520..=1000 + 3060).contains(&at), "{serial}: {at}");
            assert_eq!(at, renewal_time(700, 4600, 1000, serial), "stable");
        }
        // Received after expiry: due at once.
        assert!(renewal_time(0, 100, 500, "01") <= 100);
        // The CA's renew_before is the latest point: the seed's 720h of an 8760h certificate
        // comes after 70-85 %, so the earlier point stands; a long renew_before wins.
        let year = 8760 * 3600;
        let spread = renewal_time(0, year, 0, "ab");
        assert_eq!(
            renewal_time_within(0, year, 0, "ab", Some(720 * 3600)),
            spread
        );
        assert_eq!(renewal_time_within(0, 100, 0, "ab", Some(50)), 50);
    }
}
