//! The built-in certificate authority (SPEC §7, decision 0016): a root and an issuing
//! intermediate kept as files in one private folder, leaves issued from certificate signing
//! requests (the requester's private key never reaches the CA), and CRLs.
//!
//! The folder holds `root.crt`, `root.key` (optional: an operator may keep the root key
//! offline once the intermediate exists), `intermediate.crt`, `intermediate.key` and
//! `roots.pem`, the bundle boxes are told to trust (the root alone, or old and new roots
//! during a rotation). Keys are 0600 in a 0700 folder; anything group- or world-readable is
//! refused. Several cloud replicas share the folder (or copies of it).

use mftplus_types::certificates::{BoxIdentity, BoxKind};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams,
    CertificateSigningRequestParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
    PKCS_ECDSA_P256_SHA256,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;

/// A leaf may be used this long before its stated start, for clocks slightly behind ours.
const BACKDATE: Duration = Duration::from_secs(300);
/// The files of one root and intermediate pair.
const CA_FILES: [&str; 4] = [
    "root.crt",
    "root.key",
    "intermediate.crt",
    "intermediate.key",
];
/// The folder of the pair being rotated out, and the file in it saying since when.
const RETIRING: &str = "retiring";
const STARTED: &str = "started_at";
const ROOT_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);
const INTERMEDIATE_LIFETIME: Duration = Duration::from_secs(5 * 365 * 86_400);

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },
    #[error(transparent)]
    Private(#[from] mftplus_base::PrivateFileError),
    #[error("invalid certificate signing request: {0}")]
    InvalidCsr(String),
    #[error("certificate authority: {0}")]
    Sign(String),
    #[error("CA rotation: {0}")]
    Rotation(String),
}

impl CaError {
    pub fn code(&self) -> &'static str {
        match self {
            CaError::File { .. } => "ca_file",
            CaError::Private(e) => e.code(),
            CaError::InvalidCsr(_) => "invalid_csr",
            CaError::Sign(_) => "ca_sign",
            CaError::Rotation(_) => "ca_rotation",
        }
    }
}

fn sign_error(err: rcgen::Error) -> CaError {
    CaError::Sign(err.to_string())
}

/// A leaf the CA signed, with what the cloud records about it.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Lowercase hex, as `openssl x509 -serial` prints it (without colons).
    pub serial: String,
    /// PEM: the leaf, then the intermediate.
    pub chain_pem: String,
    /// SHA-256 hex of the leaf's DER.
    pub fingerprint: String,
    pub not_before: i64,
    pub not_after: i64,
}

/// One entry of a CRL.
#[derive(Debug, Clone)]
pub struct Revoked {
    pub serial: String,
    pub revoked_at: i64,
}

pub struct Authority {
    dir: PathBuf,
    intermediate_pem: String,
    intermediate: Issuer<'static, KeyPair>,
    /// During a rotation, the old intermediate: it issues nothing, but signs a CRL for the
    /// certificates it issued, which are still out there.
    retiring: Option<Issuer<'static, KeyPair>>,
    roots_pem: String,
}

impl Authority {
    /// Opens the CA in `dir`, creating a root and an intermediate named after `name` when the
    /// folder has none. A folder with a root but no intermediate gets one signed by the root
    /// (an operator-provided root: put its `root.crt` and `root.key` there first).
    pub fn open_or_create(dir: &Path, name: &str, now: i64) -> Result<Authority, CaError> {
        mftplus_base::ensure_private_dir(dir)?;
        create_missing(dir, name, now)?;
        let roots = dir.join("roots.pem");
        if !roots.exists() {
            write_public(&roots, &read_text(&dir.join("root.crt"))?)?;
        }
        Authority::open(dir)
    }

    /// Starts a CA rotation: the current root and intermediate move to `retiring/`, a new
    /// pair is made, and `roots.pem` trusts both, so certificates of either verify while boxes
    /// renew onto the new chain. Refused while a rotation is under way.
    pub fn rotate(dir: &Path, name: &str, now: i64) -> Result<(), CaError> {
        let retiring = dir.join(RETIRING);
        if retiring.exists() {
            return Err(CaError::Rotation(
                "a rotation is under way already; retire the old root first".into(),
            ));
        }
        let staging = dir.join(format!("{RETIRING}.tmp"));
        let _ = std::fs::remove_dir_all(&staging);
        mftplus_base::ensure_private_dir(&staging)?;
        for file in CA_FILES {
            if dir.join(file).exists() {
                std::fs::copy(dir.join(file), staging.join(file))
                    .map_err(|e| io_error(&staging.join(file), e))?;
            }
        }
        std::fs::write(staging.join(STARTED), now.to_string())
            .map_err(|e| io_error(&staging.join(STARTED), e))?;
        // Renaming the staged folder is the commit: before it, the old CA is untouched.
        std::fs::rename(&staging, &retiring).map_err(|e| io_error(&retiring, e))?;
        for file in CA_FILES {
            let _ = std::fs::remove_file(dir.join(file));
        }
        create_missing(dir, name, now)?;
        let bundle = format!(
            "{}{}",
            read_text(&dir.join("root.crt"))?,
            read_text(&retiring.join("root.crt"))?
        );
        write_public(&dir.join("roots.pem"), &bundle)
    }

    /// Ends a rotation: only the new root is trusted from now on; the old pair is kept in
    /// `retired-<time>/` for the record.
    pub fn retire(dir: &Path, now: i64) -> Result<(), CaError> {
        let retiring = dir.join(RETIRING);
        if !retiring.exists() {
            return Err(CaError::Rotation("no rotation is under way".into()));
        }
        write_public(&dir.join("roots.pem"), &read_text(&dir.join("root.crt"))?)?;
        // Two rotations can end within one second: the record of the first is never replaced.
        let kept = (0..)
            .map(|n| match n {
                0 => dir.join(format!("retired-{now}")),
                n => dir.join(format!("retired-{now}-{n}")),
            })
            .find(|candidate| !candidate.exists())
            .expect("an unbounded range always yields a free name");
        std::fs::rename(&retiring, &kept).map_err(|e| io_error(&kept, e))
    }

    /// When the rotation under way started, if one is.
    pub fn rotation_started(dir: &Path) -> Option<i64> {
        std::fs::read_to_string(dir.join(RETIRING).join(STARTED))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Opens an existing CA folder without creating anything.
    pub fn open(dir: &Path) -> Result<Authority, CaError> {
        let (intermediate_pem, intermediate) = load_issuer(dir)?;
        let retiring_dir = dir.join(RETIRING);
        let retiring = if retiring_dir.exists() {
            Some(load_issuer(&retiring_dir)?.1)
        } else {
            None
        };
        let roots_pem = read_text(&dir.join("roots.pem"))?;
        Ok(Authority {
            dir: dir.to_path_buf(),
            intermediate_pem,
            intermediate,
            retiring,
            roots_pem,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The roots boxes should trust, PEM.
    pub fn roots_pem(&self) -> &str {
        &self.roots_pem
    }

    /// What a box writes as its `ca.crt`: the roots and the issuing intermediate, so the
    /// seed's `openssl verify -CAfile ca.crt client.crt` works with the leaf alone.
    pub fn ca_bundle_pem(&self) -> String {
        format!("{}{}", self.roots_pem, self.intermediate_pem)
    }

    pub fn roots_file(&self) -> PathBuf {
        self.dir.join("roots.pem")
    }

    pub fn crl_file(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    /// Signs a client certificate for `subject` with the public key of `csr_pem`. Everything
    /// else the request asks for (names, extensions, lifetime) is ignored: the certificate
    /// says what the CA decided.
    pub fn issue(
        &self,
        csr_pem: &str,
        subject: &BoxIdentity,
        validity: Duration,
        now: i64,
    ) -> Result<Issued, CaError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| CaError::InvalidCsr(e.to_string()))?;
        let serial = random_serial();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, subject.id.clone());
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, subject.kind.as_str());
        params.subject_alt_names = vec![SanType::URI(
            subject
                .uri()
                .try_into()
                .map_err(|e: rcgen::Error| CaError::Sign(e.to_string()))?,
        )];
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if subject.kind == BoxKind::Hub {
            // A hub also serves TLS to the agents on its site.
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        let (not_before, not_after) = window(now, validity);
        params.not_before = at(not_before)?;
        params.not_after = at(not_after)?;
        let request = CertificateSigningRequestParams {
            params,
            public_key: csr.public_key,
        };
        let cert = request.signed_by(&self.intermediate).map_err(sign_error)?;
        Ok(Issued {
            serial: hex::encode(serial),
            chain_pem: format!("{}{}", cert.pem(), self.intermediate_pem),
            fingerprint: hex::encode(Sha256::digest(cert.der())),
            not_before,
            not_after,
        })
    }

    /// A server certificate for the cloud's own listener (`mftplus dev --tls`): the key is made
    /// here, since it stays on this machine. Returns (chain PEM, key PEM).
    pub fn issue_server(
        &self,
        names: &[String],
        validity: Duration,
        now: i64,
    ) -> Result<(String, String), CaError> {
        let key = new_key()?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(sign_error)?;
        params.distinguished_name = DistinguishedName::new();
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.clone());
        }
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let (not_before, not_after) = window(now, validity);
        params.not_before = at(not_before)?;
        params.not_after = at(not_after)?;
        let cert = params
            .signed_by(&key, &self.intermediate)
            .map_err(sign_error)?;
        Ok((
            format!("{}{}", cert.pem(), self.intermediate_pem),
            key.serialize_pem(),
        ))
    }

    /// A CRL over the intermediate's leaves, valid until `next_update`.
    pub fn crl_pem(
        &self,
        revoked: &[Revoked],
        now: i64,
        next_update: i64,
    ) -> Result<String, CaError> {
        let revoked_certs = revoked
            .iter()
            .filter_map(|entry| {
                let serial = hex::decode(&entry.serial).ok()?;
                Some(Ok::<_, CaError>(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&serial),
                    revocation_time: match at(entry.revoked_at) {
                        Ok(time) => time,
                        Err(err) => return Some(Err(err)),
                    },
                    reason_code: None,
                    invalidity_date: None,
                }))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let params = CertificateRevocationListParams {
            this_update: at(now)?,
            next_update: at(next_update)?,
            crl_number: SerialNumber::from_slice(&(now.max(0) as u64).to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        // A CRL speaks for the certificates of its signer only: during a rotation each
        // intermediate signs one, listing every revoked serial (a serial is unique anyway).
        let mut pem = String::new();
        for issuer in std::iter::once(&self.intermediate).chain(self.retiring.as_ref()) {
            let crl = params.signed_by(issuer).map_err(sign_error)?;
            pem.push_str(&crl.pem().map_err(sign_error)?);
        }
        Ok(pem)
    }

    /// Writes the CRL where the listeners load it from (atomically; public).
    pub fn write_crl(
        &self,
        revoked: &[Revoked],
        now: i64,
        next_update: i64,
    ) -> Result<(), CaError> {
        let pem = self.crl_pem(revoked, now, next_update)?;
        write_public(&self.crl_file(), &pem)
    }
}

/// A fresh ECDSA P-256 key and a CSR for it, for a box asking for its certificate: (key PEM,
/// CSR PEM). The CA ignores the CSR's names; `common_name` is for people reading it.
pub fn new_key_and_csr(common_name: &str) -> Result<(String, String), CaError> {
    let key = new_key()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let csr = params.serialize_request(&key).map_err(sign_error)?;
    Ok((key.serialize_pem(), csr.pem().map_err(sign_error)?))
}

/// The intermediate of `dir`: (certificate PEM, issuer).
fn load_issuer(dir: &Path) -> Result<(String, Issuer<'static, KeyPair>), CaError> {
    let inter_crt = dir.join("intermediate.crt");
    let pem = read_text(&inter_crt)?;
    let signing = load_key(&dir.join("intermediate.key"))?;
    let issuer = Issuer::from_ca_cert_pem(&pem, signing).map_err(|e| CaError::File {
        path: inter_crt.clone(),
        why: format!("not a usable CA certificate: {e}"),
    })?;
    Ok((pem, issuer))
}

/// Makes whatever of the root and intermediate is missing in `dir`.
fn create_missing(dir: &Path, name: &str, now: i64) -> Result<(), CaError> {
    let root_crt = dir.join("root.crt");
    let root_key = dir.join("root.key");
    let inter_crt = dir.join("intermediate.crt");
    let inter_key = dir.join("intermediate.key");
    // Each generation's names differ: verifiers find issuers and CRLs by name, and during a
    // rotation old and new are trusted side by side.
    let generation = hex::encode(&random_serial()[..4]);
    if !root_crt.exists() {
        let key = new_key()?;
        let params = ca_params(
            &format!("{name} Root CA {generation}"),
            None,
            now,
            ROOT_LIFETIME,
        )?;
        let cert = params.self_signed(&key).map_err(sign_error)?;
        mftplus_base::write_private(&root_key, key.serialize_pem().as_bytes())?;
        write_public(&root_crt, &cert.pem())?;
    }
    if !inter_crt.exists() {
        let root_pem = read_text(&root_crt)?;
        let root_signing = load_key(&root_key)?;
        let root =
            Issuer::from_ca_cert_pem(&root_pem, root_signing).map_err(|e| CaError::File {
                path: root_crt.clone(),
                why: format!("not a usable CA certificate: {e}"),
            })?;
        let key = new_key()?;
        let params = ca_params(
            &format!("{name} Intermediate CA {generation}"),
            Some(0),
            now,
            INTERMEDIATE_LIFETIME,
        )?;
        let cert = params.signed_by(&key, &root).map_err(sign_error)?;
        mftplus_base::write_private(&inter_key, key.serialize_pem().as_bytes())?;
        write_public(&inter_crt, &cert.pem())?;
    }
    Ok(())
}

fn io_error(path: &Path, err: std::io::Error) -> CaError {
    CaError::File {
        path: path.to_path_buf(),
        why: err.to_string(),
    }
}

fn new_key() -> Result<KeyPair, CaError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(sign_error)
}

fn ca_params(
    common_name: &str,
    path_len: Option<u8>,
    now: i64,
    lifetime: Duration,
) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "MFTPlus");
    params.is_ca = IsCa::Ca(match path_len {
        Some(len) => BasicConstraints::Constrained(len),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    params.use_authority_key_identifier_extension = path_len.is_some();
    let (not_before, not_after) = window(now, lifetime);
    params.not_before = at(not_before)?;
    params.not_after = at(not_after)?;
    Ok(params)
}

fn window(now: i64, validity: Duration) -> (i64, i64) {
    (
        now - BACKDATE.as_secs() as i64,
        now + validity.as_secs() as i64,
    )
}

fn at(unix: i64) -> Result<OffsetDateTime, CaError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|e| CaError::Sign(e.to_string()))
}

/// 16 random bytes whose first is 0x01..=0x7f: positive, and DER keeps all 16, so the hex
/// the CA records is the hex a verifier reads back.
fn random_serial() -> [u8; 16] {
    let mut serial: [u8; 16] = rand::random();
    serial[0] = (serial[0] & 0x7f).max(1);
    serial
}

fn read_text(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(|e| CaError::File {
        path: path.to_path_buf(),
        why: format!("cannot read: {e}"),
    })
}

fn load_key(path: &Path) -> Result<KeyPair, CaError> {
    let text = mftplus_base::read_private_to_string(path)?;
    KeyPair::from_pem(&text).map_err(|e| CaError::File {
        path: path.to_path_buf(),
        why: format!("not a usable private key: {e}"),
    })
}

/// Certificates and CRLs are public: 0644, written to a temporary file and renamed so a
/// listener watching the file never reads half of one.
pub(crate) fn write_public(path: &Path, text: &str) -> Result<(), CaError> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let io = |e: std::io::Error| CaError::File {
        path: path.to_path_buf(),
        why: format!("cannot write: {e}"),
    };
    // One temporary name per write, not per process: the CRL is rewritten from several tasks.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{write}", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
