//! The listener's current `rustls::ServerConfig`, rebuilt from the files when they change.
//!
//! Each new connection takes the config current at its accept; connections already open keep
//! theirs, so replacing a certificate drops nothing. A rebuild that fails (a half-written
//! file, a key that does not match) keeps the previous config and logs why, so a botched
//! rotation never takes the listener down; the watcher tries again at its next look.

use crate::settings::{ClientAuthMode, TlsError, TlsSettings};
use crate::trust::{read_certs, TrustStore};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// How often the watcher looks at the files' modification times.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// What a file looked like when the config was built: a change of either means a rebuild.
type Stamp = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

pub struct TlsServer {
    settings: TlsSettings,
    current: RwLock<Arc<ServerConfig>>,
    stamp: Mutex<Stamp>,
}

impl TlsServer {
    /// Builds the first config; any problem is an error (a listener must not start without).
    pub fn load(settings: TlsSettings) -> Result<Arc<TlsServer>, TlsError> {
        let stamp = stamp(&settings);
        let config = build(&settings)?;
        Ok(Arc::new(TlsServer {
            settings,
            current: RwLock::new(config),
            stamp: Mutex::new(stamp),
        }))
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The config a new connection uses.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Rebuilds when a file changed since the last build (or always with `force`); `Ok(true)`
    /// when a new config is in place.
    pub fn reload(&self, force: bool) -> Result<bool, TlsError> {
        let now = stamp(&self.settings);
        let mut last = self.stamp.lock().unwrap_or_else(|p| p.into_inner());
        if !force && *last == now {
            return Ok(false);
        }
        // Remember the stamp even if the build fails, so a broken file is reported once per
        // change rather than every look.
        *last = now;
        let config = build(&self.settings)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = config;
        Ok(true)
    }

    /// Looks at the files every `every`, and rebuilds at once on SIGHUP, until the returned
    /// task is aborted.
    pub fn watch(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let server = self.clone();
        tokio::spawn(async move {
            let mut hangups =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                let forced = tokio::select! {
                    _ = tokio::time::sleep(every) => false,
                    Some(()) = async {
                        match hangups.as_mut() {
                            Some(signal) => signal.recv().await,
                            None => std::future::pending().await,
                        }
                    } => true,
                };
                match server.reload(forced) {
                    Ok(true) => tracing::info!(
                        cert = %server.settings.cert.display(),
                        "TLS certificate reloaded"
                    ),
                    Ok(false) => {}
                    Err(err) => tracing::error!(
                        code = err.code(),
                        "TLS reload failed, still serving the previous certificate: {err}"
                    ),
                }
            }
        })
    }
}

fn stamp(settings: &TlsSettings) -> Stamp {
    std::iter::once(&settings.cert)
        .chain(std::iter::once(&settings.key))
        .chain(settings.client_ca_files.iter())
        .chain(settings.crl_files.iter())
        .map(|path| {
            let meta = std::fs::metadata(path).ok();
            let seen = meta.and_then(|m| Some((m.modified().ok()?, m.len())));
            (path.clone(), seen)
        })
        .collect()
}

fn read_crls(
    files: &[PathBuf],
) -> Result<Vec<rustls::pki_types::CertificateRevocationListDer<'static>>, TlsError> {
    let mut crls = Vec::new();
    for file in files {
        let found = rustls::pki_types::CertificateRevocationListDer::pem_file_iter(file)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|e| TlsError::File {
                path: file.clone(),
                why: format!("not a PEM CRL: {e}"),
            })?;
        if found.is_empty() {
            return Err(TlsError::File {
                path: file.clone(),
                why: "holds no PEM CRL".into(),
            });
        }
        crls.extend(found);
    }
    Ok(crls)
}

/// A server config from the files: TLS 1.3 only, the configured suites and groups in order.
pub(crate) fn build(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(&settings.cert)?;
    let key_text = mftplus_base::read_private_to_string(&settings.key)?;
    let key = PrivateKeyDer::from_pem_slice(key_text.as_bytes()).map_err(|e| TlsError::File {
        path: settings.key.clone(),
        why: format!("not a PEM private key: {e}"),
    })?;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = settings.cipher_suites.clone();
    provider.kx_groups = settings.groups.clone();
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let builder = match settings.client_auth {
        ClientAuthMode::None => builder.with_no_client_auth(),
        mode => {
            let trust = TrustStore::from_pem_files(&settings.client_ca_files)?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(trust.roots(), provider.clone());
            let optional = mode == ClientAuthMode::VerifyIfGiven || !settings.require_at_handshake;
            let verifier = if optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = if settings.crl_files.is_empty() {
                verifier
            } else {
                verifier
                    .with_crls(read_crls(&settings.crl_files)?)
                    .only_check_end_entity_revocation()
                    .allow_unknown_revocation_status()
            };
            let verifier = verifier.build().map_err(|e| TlsError::Invalid {
                key: "tls.client_auth.ca_files".into(),
                why: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::File {
            path: settings.key.clone(),
            why: format!("does not go with {}: {e}", settings.cert.display()),
        })?;
    // HTTP/1.1 only: the workspace's one HTTP stack serves HTTP/1.1 to every client.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // `tls.cipher_suites` is the server's preference, as the operator wrote it.
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}
