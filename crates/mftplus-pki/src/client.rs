//! The TLS client config for connections the servers make themselves (the hub to the cloud):
//! TLS 1.3 only, the public roots plus any private CA the operator names.

use crate::settings::TlsError;
use crate::trust::TrustStore;
use rustls::{ClientConfig, RootCertStore};
use std::sync::Arc;

/// Public roots (webpki) plus `extra` when given. No ALPN: the HTTP connector sets the
/// protocols it speaks (hyper-rustls refuses a config that has them already).
pub fn client_config(extra: Option<&TrustStore>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(extra) = extra {
        for anchor in extra.roots().roots.iter() {
            roots.roots.push(anchor.clone());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
