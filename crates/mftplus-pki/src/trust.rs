//! One type for "the CAs we trust", loaded from PEM bundles, for every verifier in the
//! workspace: client certificates at the listeners, and servers' certificates on every client
//! (`mftplus-client` for mftctl and the agent, the hub's upstream, the SMTP client).

use crate::settings::TlsError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct TrustStore {
    roots: Arc<RootCertStore>,
}

impl TrustStore {
    /// Every certificate of every file; a file with none, or one that does not parse, is an
    /// error naming it (an empty trust store would refuse everyone, silently).
    pub fn from_pem_files(files: &[PathBuf]) -> Result<TrustStore, TlsError> {
        let mut roots = RootCertStore::empty();
        for file in files {
            let certs = read_certs(file)?;
            for cert in certs {
                roots.add(cert).map_err(|e| TlsError::File {
                    path: file.clone(),
                    why: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
        Ok(TrustStore {
            roots: Arc::new(roots),
        })
    }

    /// Every certificate of a PEM text (`what` names it in errors); none is an error.
    pub fn from_pem(pem: &[u8], what: &str) -> Result<TrustStore, TlsError> {
        let bad = |why: String| TlsError::Invalid {
            key: what.to_string(),
            why,
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| bad(format!("not PEM certificates: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(bad("holds no PEM certificate".into()));
        }
        Ok(TrustStore {
            roots: Arc::new(roots),
        })
    }

    /// The public roots (webpki's), plus `extra`: what a client trusts for a server.
    pub fn public_and(extra: Option<&TrustStore>) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(extra) = extra {
            roots.roots.extend(extra.roots.roots.iter().cloned());
        }
        roots
    }

    pub fn roots(&self) -> Arc<RootCertStore> {
        self.roots.clone()
    }

    pub fn len(&self) -> usize {
        self.roots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }
}

/// The certificates of a PEM file, in order; none is an error.
pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |why: String| TlsError::File {
        path: path.to_path_buf(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(format!("cannot read: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(file_error("holds no PEM certificate".into()));
    }
    Ok(certs)
}
