//! The cloud's listeners over TLS (`tls.*`, seed 001): the settings checked at config load with
//! the offending key named, and the certificate files loaded when the cloud is built, so a
//! cloud never starts (or passes `--check-config`) with TLS it cannot serve.
//!
//! With the built-in CA (`certificates.authority.enabled`), a listener that verifies client
//! certificates also trusts the CA's roots and loads its CRL, and leaves "required" to the box
//! routes: people sign in with passwords and tokens on the same listener.

use crate::config::{ConfigError, ServerConfig};
use mftplus_pki::{ClientAuthMode, TlsKeys, TlsServer, TlsSettings};
use std::sync::Arc;

/// The validated settings when `tls.enabled`; `None` otherwise.
pub fn settings(config: &ServerConfig) -> Result<Option<TlsSettings>, ConfigError> {
    let tls = &config.tls;
    if !tls.enabled {
        return Ok(None);
    }
    let authority = &config.certificates.authority;
    let mut ca_files = tls.client_auth.ca_files.clone();
    let mut crl_files = tls.client_auth.crl_files.clone();
    let verifies_clients =
        ClientAuthMode::parse(&tls.client_auth.mode).is_ok_and(|mode| mode != ClientAuthMode::None);
    if authority.enabled && verifies_clients {
        ca_files.push(authority.dir.join("roots.pem"));
        crl_files.push(authority.dir.join("crl.pem"));
    }
    let mut settings = TlsSettings::from_keys(&TlsKeys {
        min_version: &tls.min_version,
        max_version: &tls.max_version,
        cert: tls.certificate.cert.as_deref(),
        key: tls.certificate.key.as_deref(),
        client_auth_mode: &tls.client_auth.mode,
        client_ca_files: &ca_files,
        crl_files: &crl_files,
        cipher_suites: &tls.cipher_suites,
        curve_preferences: &tls.curve_preferences,
    })
    .map_err(|err| ConfigError::Invalid(err.to_string()))?;
    settings.require_at_handshake = false;
    Ok(Some(settings))
}

/// Loads the certificate, key, client CAs and CRLs: `None` when TLS is off.
pub fn load(config: &ServerConfig) -> Result<Option<Arc<TlsServer>>, ConfigError> {
    match settings(config)? {
        None => Ok(None),
        Some(settings) => TlsServer::load(settings)
            .map(Some)
            .map_err(|err| ConfigError::Invalid(format!("tls: {err}"))),
    }
}
