//! The TLS client config of every connection the workspace opens (mftctl and the agent through
//! `mftplus-client`, the hub to the cloud): TLS 1.3 only, the public roots plus any private CA
//! the operator names, and a client certificate when there is one.

use crate::settings::TlsError;
use crate::trust::TrustStore;
use rustls::{ClientConfig, RootCertStore};

use std::sync::Arc;

/// Public roots (webpki) plus `extra` when given. No ALPN: the HTTP connector sets the
/// protocols it speaks (hyper-rustls refuses a config that has them already).
pub fn client_config(extra: Option<&TrustStore>) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(extra))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn roots(extra: Option<&TrustStore>) -> RootCertStore {
    TrustStore::public_and(extra)
}

/// The client certificate a process presents on connections it opens, replaceable while it
/// runs (a box renewing its certificate): connections opened after [`ClientIdentity::set_pem`]
/// present the new one.
#[derive(Debug, Default)]
pub struct ClientIdentity {
    current: std::sync::RwLock<Option<Arc<rustls::sign::CertifiedKey>>>,
}

impl ClientIdentity {
    /// Presents `chain_pem` (leaf first) with `key_pem` from now on.
    pub fn set_pem(&self, chain_pem: &str, key_pem: &str) -> Result<(), TlsError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |why: String| TlsError::Invalid {
            key: "client certificate".into(),
            why,
        };
        let chain = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
        if chain.is_empty() {
            return Err(bad("no certificate".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| bad(format!("not a PEM private key: {e}")))?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key)?;
        let certified = rustls::sign::CertifiedKey::new(chain, signing);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(certified));
        Ok(())
    }

    /// Presents nothing from now on (the certificate lapsed).
    pub fn clear(&self) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub fn is_set(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}

impl rustls::client::ResolvesClientCert for ClientIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// [`client_config`] that presents `identity` when the server asks for a certificate.
pub fn client_config_with_identity(
    extra: Option<&TrustStore>,
    identity: Arc<ClientIdentity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(extra));
    let mut config = config.with_client_cert_resolver(identity);
    // A resumed TLS 1.3 session carries the client certificate of the handshake it came
    // from: after a renewal the server would still see the old certificate (and, once that
    // lapsed, refuse it). Every connection presents the current one in a full handshake.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}
