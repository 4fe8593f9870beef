//! The `tls.*` keys of the server config (seed 001, "Server Certificate Configuration"), checked
//! once, with errors that name the key to fix.

use rustls::crypto::ring::{cipher_suite, kx_group};
use rustls::crypto::SupportedKxGroup;
use rustls::SupportedCipherSuite;
use std::path::PathBuf;
use thiserror::Error;

/// The TLS 1.3 cipher suites by the names the seed writes, in rustls' terms.
pub const CIPHER_SUITES: [(&str, SupportedCipherSuite); 3] = [
    (
        "TLS_AES_128_GCM_SHA256",
        cipher_suite::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        cipher_suite::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
];

/// The key-exchange groups by the names the seed writes.
pub const CURVES: [(&str, &dyn SupportedKxGroup); 3] = [
    ("X25519", kx_group::X25519),
    ("secp256r1", kx_group::SECP256R1),
    ("secp384r1", kx_group::SECP384R1),
];

#[derive(Debug, Error)]
pub enum TlsError {
    /// A setting that cannot work; `key` is the config key to fix.
    #[error("{key}: {why}")]
    Invalid { key: String, why: String },
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },
    #[error(transparent)]
    Private(#[from] mftplus_base::PrivateFileError),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsError {
    pub fn code(&self) -> &'static str {
        match self {
            TlsError::Invalid { .. } => "tls_config",
            TlsError::File { .. } => "tls_file",
            TlsError::Private(e) => e.code(),
            TlsError::Rustls(_) => "tls",
        }
    }
}

fn invalid(key: &str, why: impl Into<String>) -> TlsError {
    TlsError::Invalid {
        key: key.to_string(),
        why: why.into(),
    }
}

/// Whether and how a listener asks for client certificates (the seed's
/// `client_auth.mode`, named as Go's `tls.ClientAuthType` values are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMode {
    /// `noClientCert`: no client certificate is asked for.
    None,
    /// `verifyClientCertIfGiven`: a certificate is optional; one that is given must verify.
    VerifyIfGiven,
    /// `requireAndVerifyClientCert`: no connection without a certificate from the client CAs.
    RequireAndVerify,
}

impl ClientAuthMode {
    pub const NAMES: [&'static str; 3] = [
        "noClientCert",
        "verifyClientCertIfGiven",
        "requireAndVerifyClientCert",
    ];

    pub fn parse(text: &str) -> Result<ClientAuthMode, TlsError> {
        match text {
            "" | "noClientCert" => Ok(ClientAuthMode::None),
            "verifyClientCertIfGiven" => Ok(ClientAuthMode::VerifyIfGiven),
            "requireAndVerifyClientCert" => Ok(ClientAuthMode::RequireAndVerify),
            other => Err(invalid(
                "tls.client_auth.mode",
                format!(
                    "{other:?} is not supported; use one of {}",
                    Self::NAMES.join(", ")
                ),
            )),
        }
    }
}

/// Validated TLS settings of one listener.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// PEM: the leaf first, then the intermediates.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1), readable by the owner only.
    pub key: PathBuf,
    pub client_auth: ClientAuthMode,
    /// PEM bundles of the CAs whose client certificates are accepted.
    pub client_ca_files: Vec<PathBuf>,
    /// PEM CRLs; a client certificate they list is refused at the handshake. Certificates of
    /// CAs no CRL covers are accepted (revocation status unknown is not a refusal).
    pub crl_files: Vec<PathBuf>,
    /// With `RequireAndVerify`: refuse a connection without a certificate at the handshake
    /// (`true`), or accept it and let the application require one per route (`false`: the
    /// cloud, whose people sign in with passwords and tokens while boxes use certificates).
    pub require_at_handshake: bool,
    pub cipher_suites: Vec<SupportedCipherSuite>,
    pub groups: Vec<&'static dyn SupportedKxGroup>,
}

/// The raw `tls.*` values as a config file gives them.
#[derive(Debug, Clone, Default)]
pub struct TlsKeys<'a> {
    pub min_version: &'a str,
    pub max_version: &'a str,
    pub cert: Option<&'a std::path::Path>,
    pub key: Option<&'a std::path::Path>,
    pub client_auth_mode: &'a str,
    pub client_ca_files: &'a [PathBuf],
    pub crl_files: &'a [PathBuf],
    pub cipher_suites: &'a [String],
    pub curve_preferences: &'a [String],
}

impl TlsSettings {
    /// Checks every key; the first problem is returned with its key.
    pub fn from_keys(keys: &TlsKeys<'_>) -> Result<TlsSettings, TlsError> {
        for (key, value) in [
            ("tls.min_version", keys.min_version),
            ("tls.max_version", keys.max_version),
        ] {
            if !matches!(value, "TLSv1.3" | "1.3") {
                return Err(invalid(
                    key,
                    format!("{value:?}: only TLSv1.3 is served (TLS 1.2 and below are refused)"),
                ));
            }
        }
        let cert = keys
            .cert
            .ok_or_else(|| invalid("tls.certificate.cert", "required when tls.enabled is true"))?;
        let key = keys
            .key
            .ok_or_else(|| invalid("tls.certificate.key", "required when tls.enabled is true"))?;
        let client_auth = ClientAuthMode::parse(keys.client_auth_mode)?;
        if client_auth != ClientAuthMode::None && keys.client_ca_files.is_empty() {
            return Err(invalid(
                "tls.client_auth.ca_files",
                "at least one CA file is needed to verify client certificates",
            ));
        }
        let cipher_suites = pick("tls.cipher_suites", keys.cipher_suites, &CIPHER_SUITES)?;
        let groups = pick("tls.curve_preferences", keys.curve_preferences, &CURVES)?;
        Ok(TlsSettings {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            client_auth,
            client_ca_files: keys.client_ca_files.to_vec(),
            crl_files: keys.crl_files.to_vec(),
            require_at_handshake: true,
            cipher_suites,
            groups,
        })
    }
}

/// The named items in the order given (that order is the preference); none named = all.
fn pick<T: Copy>(key: &str, names: &[String], known: &[(&str, T)]) -> Result<Vec<T>, TlsError> {
    if names.is_empty() {
        return Ok(known.iter().map(|(_, item)| *item).collect());
    }
    names
        .iter()
        .map(|name| {
            known
                .iter()
                .find(|(known_name, _)| known_name == name)
                .map(|(_, item)| *item)
                .ok_or_else(|| {
                    let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
                    invalid(
                        key,
                        format!("{name:?} is not supported; use any of {}", names.join(", ")),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn seed_keys<'a>(ca: &'a [PathBuf], suites: &'a [String], curves: &'a [String]) -> TlsKeys<'a> {
        TlsKeys {
            min_version: "TLSv1.3",
            max_version: "TLSv1.3",
            cert: Some(Path::new("/etc/mftplus/certs/server.crt")),
            key: Some(Path::new("/etc/mftplus/certs/server.key")),
            client_auth_mode: "requireAndVerifyClientCert",
            client_ca_files: ca,
            crl_files: &[],
            cipher_suites: suites,
            curve_preferences: curves,
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_seed_block_is_accepted_in_its_order() {
        let ca = vec![PathBuf::from("/etc/mftplus/certs/ca.crt")];
        let suites = strings(&["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"]);
        let curves = strings(&["X25519", "secp256r1", "secp384r1"]);
        let settings = TlsSettings::from_keys(&seed_keys(&ca, &suites, &curves)).unwrap();
        assert_eq!(settings.client_auth, ClientAuthMode::RequireAndVerify);
        assert_eq!(
            settings.cipher_suites[0],
            cipher_suite::TLS13_AES_256_GCM_SHA384
        );
        assert_eq!(settings.cipher_suites.len(), 2);
        assert_eq!(settings.groups.len(), 3);
    }

    #[test]
    fn each_mistake_names_its_key() {
        let ca = vec![PathBuf::from("/ca.crt")];
        let none: Vec<PathBuf> = Vec::new();
        let ok_suites = strings(&["TLS_AES_128_GCM_SHA256"]);
        let ok_curves = strings(&["X25519"]);
        let cases: Vec<(TlsKeys<'_>, &str)> = vec![
            (
                TlsKeys {
                    min_version: "TLSv1.2",
                    ..seed_keys(&ca, &ok_suites, &ok_curves)
                },
                "tls.min_version",
            ),
            (
                TlsKeys {
                    cert: None,
                    ..seed_keys(&ca, &ok_suites, &ok_curves)
                },
                "tls.certificate.cert",
            ),
            (
                seed_keys(&none, &ok_suites, &ok_curves),
                "tls.client_auth.ca_files",
            ),
            (
                TlsKeys {
                    client_auth_mode: "requireAnyClientCert",
                    ..seed_keys(&ca, &ok_suites, &ok_curves)
                },
                "tls.client_auth.mode",
            ),
        ];
        for (keys, expect) in cases {
            let err = TlsSettings::from_keys(&keys).unwrap_err();
            assert!(err.to_string().starts_with(expect), "{err}");
        }
        let bad_suite = strings(&["TLS_RSA_WITH_AES_128_CBC_SHA"]);
        let err = TlsSettings::from_keys(&seed_keys(&ca, &bad_suite, &ok_curves)).unwrap_err();
        assert!(err.to_string().starts_with("tls.cipher_suites"), "{err}");
        let bad_curve = strings(&["secp521r1"]);
        let err = TlsSettings::from_keys(&seed_keys(&ca, &ok_suites, &bad_curve)).unwrap_err();
        assert!(
            err.to_string().starts_with("tls.curve_preferences"),
            "{err}"
        );
    }
}
