//! The cloud's listeners over TLS (`tls.*`, seed 001): the settings checked at config load with
//! the offending key named, and the certificate files loaded when the cloud is built, so a
//! cloud never starts (or passes `--check-config`) with TLS it cannot serve.

use crate::config::{ConfigError, ServerConfig};
use mftplus_pki::{TlsKeys, TlsServer, TlsSettings};
use std::sync::Arc;

/// The validated settings when `tls.enabled`; `None` otherwise.
pub fn settings(config: &ServerConfig) -> Result<Option<TlsSettings>, ConfigError> {
    let tls = &config.tls;
    if !tls.enabled {
        return Ok(None);
    }
    TlsSettings::from_keys(&TlsKeys {
        min_version: &tls.min_version,
        max_version: &tls.max_version,
        cert: tls.certificate.cert.as_deref(),
        key: tls.certificate.key.as_deref(),
        client_auth_mode: &tls.client_auth.mode,
        client_ca_files: &tls.client_auth.ca_files,
        cipher_suites: &tls.cipher_suites,
        curve_preferences: &tls.curve_preferences,
    })
    .map(Some)
    .map_err(|err| ConfigError::Invalid(err.to_string()))
}

/// Loads the certificate, key and client CAs: `None` when TLS is off.
pub fn load(config: &ServerConfig) -> Result<Option<Arc<TlsServer>>, ConfigError> {
    match settings(config)? {
        None => Ok(None),
        Some(settings) => TlsServer::load(settings)
            .map(Some)
            .map_err(|err| ConfigError::Invalid(format!("tls: {err}"))),
    }
}
