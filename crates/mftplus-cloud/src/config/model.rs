//! The typed configuration. Every section refuses unknown keys so a typo fails `--check-config`
//! instead of silently falling back to a default.

use mftplus_base::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Development,
    Production,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Development => "development",
            Mode::Production => "production",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `development` (default) or `production`; production refuses unsafe settings.
    pub mode: Mode,
    pub server: ServerSection,
    pub database: DatabaseSection,
    pub auth: AuthSection,
    pub api_keys: ApiKeysSection,
    pub encryption: EncryptionSection,
    pub rbac: RbacSection,
    pub tls: TlsSection,
    pub certificates: CertificatesSection,
    pub audit: AuditSection,
    pub rate_limit: RateLimitSection,
    pub transfers: TransfersSection,
    pub fleet: super::fleet::FleetSection,
    pub notifications: super::fleet::NotificationsSection,
    pub edge_firewall: super::fleet::EdgeFirewallSection,
    pub hubs: super::fleet::HubsSection,
    /// The dashboard at `/`.
    pub web: super::WebSection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransfersSection {
    /// Where the payload store keeps ciphertext: `fs` (under `blob_path`) or `s3` (the bucket
    /// in `transfers.s3`).
    pub blob_backend: BlobBackend,
    /// Folder of the filesystem payload store (ciphertext only). Used when `blob_backend` is
    /// `fs`.
    pub blob_path: PathBuf,
    /// The S3-compatible bucket used when `blob_backend` is `s3`.
    pub s3: S3Section,
    /// Default lifetime of a transfer; the sweeper deletes expired payloads.
    pub retention_days: u64,
    /// Largest chunk size a sender may declare (the stream format allows up to 64 MiB).
    pub max_chunk_size: u64,
    /// The largest upload (ciphertext bytes) a file request may allow an outsider
    /// (decision 0034); also the default of a request that names none.
    pub max_request_upload_bytes: u64,
}

impl Default for TransfersSection {
    fn default() -> Self {
        TransfersSection {
            blob_backend: BlobBackend::Fs,
            blob_path: PathBuf::from("/var/lib/mftplus/blobs"),
            s3: S3Section::default(),
            retention_days: 7,
            max_chunk_size: 64 * 1024 * 1024,
            max_request_upload_bytes: 10 << 30,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum BlobBackend {
    #[default]
    Fs,
    S3,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Section {
    /// Bucket name; it must exist (start-up checks it can be listed).
    pub bucket: String,
    /// e.g. `eu-central-1`; services that ignore regions accept any value.
    pub region: String,
    /// Base URL of an S3-compatible service (MinIO, Garage…), e.g. `https://s3.internal:9000`;
    /// unset for AWS's endpoint of `region`.
    pub endpoint: Option<String>,
    /// Key prefix all objects live under, e.g. `mftplus/blobs`; empty for the bucket root.
    pub prefix: String,
    /// Static credentials only (no instance-metadata lookups).
    /// Env: `MFTPLUS__TRANSFERS__S3__ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// Env: `MFTPLUS__TRANSFERS__S3__SECRET_ACCESS_KEY` or `…_FILE` (mode 0600).
    pub secret_access_key: Option<Secret>,
    /// Accept an `http://` endpoint. For local test servers; refused in production.
    pub allow_http: bool,
}

impl Default for S3Section {
    fn default() -> Self {
        S3Section {
            bucket: String::new(),
            region: "us-east-1".into(),
            endpoint: None,
            prefix: String::new(),
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address of the API listener.
    pub listen: String,
    /// Address of the Prometheus `/metrics` listener, kept off the API port.
    pub metrics_listen: String,
    /// Largest accepted JSON request body in bytes.
    pub max_body_bytes: usize,
    /// Peers whose `X-Forwarded-For` is believed (edge hubs, load balancers).
    pub trusted_proxies: Vec<String>,
    /// A proxy in front terminates TLS, so the listener itself may speak plain HTTP in
    /// production. Requires `trusted_proxies` (only they can have forwarded the request).
    pub tls_terminated_by_proxy: bool,
    /// Connection and request-head limits of the API listener.
    pub limits: super::LimitsSection,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
            metrics_listen: "127.0.0.1:9464".into(),
            max_body_bytes: 1024 * 1024,
            trusted_proxies: Vec::new(),
            tls_terminated_by_proxy: false,
            limits: super::LimitsSection::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// `sqlite:///var/lib/mftplus/mftplus.db` or `postgres://…`. A secret, since it may carry
    /// a password. Env: `DATABASE_URL`.
    pub url: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    pub jwt: JwtSection,
    pub login: LoginSection,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum JwtAlgorithm {
    HS256,
    RS256,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtSection {
    /// HS256 signing secret. Env: `JWT_SECRET` or `JWT_SECRET_FILE`.
    pub secret: Option<Secret>,
    /// A retired HS256 secret still accepted for verification during rotation.
    /// Env: `JWT_PREVIOUS_SECRET` or `JWT_PREVIOUS_SECRET_FILE`.
    pub previous_secret: Option<Secret>,
    pub issuer: String,
    pub audience: String,
    /// Access-token lifetime in seconds.
    pub expiration: u64,
    /// Refresh-token lifetime in seconds.
    pub refresh_expiration: u64,
    pub algorithm: JwtAlgorithm,
    /// RS256 private key (PEM, mode 0600).
    pub private_key: Option<PathBuf>,
    /// RS256 public key (PEM), published in the JWKS.
    pub public_key: Option<PathBuf>,
    /// Retired RS256 public keys still accepted for verification (and published in the JWKS).
    pub previous_public_keys: Vec<PathBuf>,
    pub rotation_enabled: bool,
    /// A token with less than this many seconds left is renewed on use.
    pub rotation_threshold: u64,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway: u64,
    /// Production refuses HS256 unless this is set.
    pub allow_hs256_in_production: bool,
}

impl Default for JwtSection {
    fn default() -> Self {
        JwtSection {
            secret: None,
            previous_secret: None,
            issuer: "mftplus-server".into(),
            audience: "mftplus-api".into(),
            expiration: 3600,
            refresh_expiration: 604_800,
            algorithm: JwtAlgorithm::HS256,
            private_key: None,
            public_key: None,
            previous_public_keys: Vec::new(),
            rotation_enabled: true,
            rotation_threshold: 300,
            leeway: 30,
            allow_hs256_in_production: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSection {
    /// Failed logins of one account from one client address, within the window, before that
    /// address waits `base_delay_seconds`, doubled with each further failure, before its next
    /// try for that account. The name is kept from when this locked the account.
    pub max_failures: u32,
    /// The counting window in seconds: failures are forgotten this long after the first one.
    /// The name is kept from when this was also the lock's length.
    pub lockout_seconds: u64,
    /// Failed logins from one client address, any account, within the window before that
    /// address waits (growing delays as for `max_failures`).
    pub per_address_failures: u32,
    /// Failed logins of one account, from any address, within the window before attempts from
    /// addresses that have not signed in to it lately wait a short, growing delay.
    pub per_account_failures: u32,
    /// The first delay past a threshold, in seconds; each further failure doubles it.
    pub base_delay_seconds: u64,
    /// The longest delay of an (account, address) pair or of an address, in seconds.
    pub max_delay_seconds: u64,
    /// The longest delay of an account, in seconds: short, so an attacker cannot lock out the
    /// account's owner.
    pub account_max_delay_seconds: u64,
}

impl Default for LoginSection {
    fn default() -> Self {
        LoginSection {
            max_failures: 5,
            lockout_seconds: 900,
            per_address_failures: 20,
            per_account_failures: 100,
            base_delay_seconds: 1,
            max_delay_seconds: 900,
            account_max_delay_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysSection {
    pub enabled: bool,
    /// Only `sha256` is supported: keys are high-entropy, so a fast hash is safe.
    pub hash_algorithm: String,
    /// Minimum characters after the prefix.
    pub min_length: usize,
    /// Default and maximum lifetime of a key in days.
    pub rotation_required_days: u64,
    /// Only `mftpk_` is supported.
    pub prefix: String,
    /// Keys within this many days of expiry are reported as `expiring_soon`.
    pub warning_days: u64,
    /// Accepted for compatibility; automatic rotation is not implemented and must stay false.
    pub auto_rotate: bool,
    /// Keys unused for this many days are revoked; 0 disables.
    pub max_inactive_days: u64,
}

impl Default for ApiKeysSection {
    fn default() -> Self {
        ApiKeysSection {
            enabled: true,
            hash_algorithm: "sha256".into(),
            min_length: 32,
            rotation_required_days: 90,
            prefix: "mftpk_".into(),
            warning_days: 7,
            auto_rotate: false,
            max_inactive_days: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptionSection {
    pub enabled: bool,
    pub algorithm: String,
    pub key_derivation: String,
    /// Server-side key for data at rest that is not end-to-end encrypted (e.g. the hub auth
    /// cache). Env: `MFTPLUS_ENCRYPTION_KEY` or `MFTPLUS_ENCRYPTION_KEY_FILE`.
    pub key: Option<Secret>,
    pub pbkdf2: Pbkdf2Section,
    pub transfers: TransferEncryptionSection,
}

impl Default for EncryptionSection {
    fn default() -> Self {
        EncryptionSection {
            enabled: true,
            algorithm: "AES-256-GCM".into(),
            key_derivation: "PBKDF2".into(),
            key: None,
            pbkdf2: Pbkdf2Section::default(),
            transfers: TransferEncryptionSection::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pbkdf2Section {
    /// Env: `MFTPLUS_PBKDF2_ITERATIONS`. Never below 600,000.
    pub iterations: u32,
    /// Env: `MFTPLUS_PBKDF2_SALT_LENGTH`. Never below 32.
    pub salt_length: u32,
    pub key_length: u32,
}

impl Default for Pbkdf2Section {
    fn default() -> Self {
        Pbkdf2Section {
            iterations: 600_000,
            salt_length: 32,
            key_length: 32,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransferEncryptionSection {
    pub enabled: bool,
    pub algorithm: String,
    pub nonce_size: u32,
    pub tag_size: u32,
}

impl Default for TransferEncryptionSection {
    fn default() -> Self {
        TransferEncryptionSection {
            enabled: true,
            algorithm: "AES-256-GCM".into(),
            nonce_size: 12,
            tag_size: 16,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RbacSection {
    /// Development only: when false every authenticated principal holds `*`.
    pub enabled: bool,
    pub default_role: String,
    /// These accounts are always admins, whatever role is stored for them.
    pub admin_users: Vec<String>,
    pub roles: BTreeMap<String, RoleSpec>,
}

impl Default for RbacSection {
    fn default() -> Self {
        let role = |perms: &[&str]| RoleSpec {
            permissions: perms.iter().map(|p| p.to_string()).collect(),
        };
        let mut roles = BTreeMap::new();
        roles.insert("admin".into(), role(&["*"]));
        roles.insert(
            "operator".into(),
            role(&[
                "transfers:*",
                "transfers:read",
                "transfers:create",
                "logs:read",
                "users:read",
                "config:read",
                "users:read:own",
                "apikeys:manage:own",
                "tokens:manage:own",
                "fleet:read",
                "fleet:manage",
                "ops:sign",
                "hubs:read",
                "hubs:manage",
                "certificates:read",
                "certificates:issue",
                "certificates:revoke",
            ]),
        );
        roles.insert(
            "user".into(),
            role(&[
                "transfers:create",
                "transfers:read:own",
                "transfers:cancel:own",
                "users:read:own",
                "apikeys:manage:own",
                "tokens:manage:own",
            ]),
        );
        roles.insert(
            "readonly".into(),
            role(&[
                "transfers:read",
                "logs:read",
                "users:read:own",
                "fleet:read",
                "hubs:read",
            ]),
        );
        RbacSection {
            enabled: true,
            default_role: "user".into(),
            admin_users: Vec::new(),
            roles,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    pub enabled: bool,
    pub min_version: String,
    pub max_version: String,
    pub certificate: TlsCertificate,
    pub client_auth: TlsClientAuth,
    pub cipher_suites: Vec<String>,
    pub curve_preferences: Vec<String>,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            enabled: false,
            min_version: "TLSv1.3".into(),
            max_version: "TLSv1.3".into(),
            certificate: TlsCertificate::default(),
            client_auth: TlsClientAuth::default(),
            cipher_suites: vec![
                "TLS_AES_128_GCM_SHA256".into(),
                "TLS_AES_256_GCM_SHA384".into(),
                "TLS_CHACHA20_POLY1305_SHA256".into(),
            ],
            curve_preferences: vec!["X25519".into(), "secp256r1".into(), "secp384r1".into()],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsCertificate {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClientAuth {
    pub mode: String,
    pub ca_files: Vec<PathBuf>,
    /// PEM CRLs the listener checks client certificates against (the built-in CA's own is
    /// added by itself).
    pub crl_files: Vec<PathBuf>,
}

impl Default for TlsClientAuth {
    fn default() -> Self {
        TlsClientAuth {
            mode: "requireAndVerifyClientCert".into(),
            ca_files: Vec::new(),
            crl_files: Vec::new(),
        }
    }
}

/// The seed's `certificates.*` block, plus the built-in CA (`certificates.authority`). Leaves
/// are short-lived by default (24 h, renewed 8 h before expiry); the seed's values apply when
/// written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CertificatesSection {
    pub ca_url: Option<String>,
    pub auto_renew: bool,
    /// Told to boxes: renew this long before expiry.
    pub renew_before: String,
    /// The lifetime of a leaf when the request names none.
    pub validity: String,
    /// Told to boxes: look at the certificate this often.
    pub watch_interval: String,
    pub authority: AuthoritySection,
}

impl Default for CertificatesSection {
    fn default() -> Self {
        CertificatesSection {
            ca_url: None,
            auto_renew: true,
            renew_before: "8h".into(),
            validity: "24h".into(),
            watch_interval: "1h".into(),
            authority: AuthoritySection::default(),
        }
    }
}

/// The built-in certificate authority (decision 0016).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthoritySection {
    pub enabled: bool,
    /// root.crt/.key, intermediate.crt/.key, roots.pem, crl.pem; created on first start. Put an
    /// operator-provided root's `root.crt` and `root.key` here before that start to use it.
    pub dir: PathBuf,
    /// Names the root and intermediate ("<name> Root CA").
    pub name: String,
    /// The longest lifetime a request may ask for.
    pub max_validity: String,
}

impl Default for AuthoritySection {
    fn default() -> Self {
        AuthoritySection {
            enabled: true,
            dir: PathBuf::from("/var/lib/mftplus/ca"),
            name: "MFTPlus".into(),
            max_validity: "8760h".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// Entries older than this are pruned; never less than 90 (seed 001's compliance floor).
    pub retention_days: u64,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            retention_days: 365,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSection {
    pub enabled: bool,
    /// Requests per minute for one credential (API key or user).
    pub per_credential_per_minute: u32,
    /// Requests per minute from one client address.
    pub per_address_per_minute: u32,
    /// Share-link lookups (a link's file details, and opens) per minute from one client
    /// address: a link's token is unguessable, and this keeps anyone from trying (decision 0023).
    pub per_address_link_lookups_per_minute: u32,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        RateLimitSection {
            enabled: true,
            per_credential_per_minute: 1200,
            per_address_per_minute: 2400,
            per_address_link_lookups_per_minute: 60,
        }
    }
}
