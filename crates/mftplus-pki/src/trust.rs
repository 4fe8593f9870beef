//! One type for "the CAs we trust", loaded from PEM bundles, for every verifier in the
//! workspace (client certificates here; servers' certificates on the client side later).

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
