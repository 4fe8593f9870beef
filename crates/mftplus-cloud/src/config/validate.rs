//! The rules a typed configuration must satisfy, each broken rule a problem at its key. Every
//! rule runs; none stops the others, so `--check-config` shows everything wrong at once.

use super::load::{check_private_file, Source, SECRET_PATHS};
use super::model::{BlobBackend, JwtAlgorithm, LoginSection, Mode, ServerConfig};
use super::problems::Problems;
use mftplus_crypto::stream::{CipherId, NONCE_LEN, TAG_LEN};
use std::collections::BTreeMap;

/// The key derivation the product implements (`encryption.key_derivation`).
const KEY_DERIVATIONS: &[&str] = &["PBKDF2"];

pub(super) fn validate(
    config: &ServerConfig,
    sources: &BTreeMap<String, Source>,
    problems: &mut Problems,
    warnings: &mut Vec<String>,
) {
    let production = config.mode == Mode::Production;

    for secret in SECRET_PATHS {
        if let Some(Source::File(file)) = sources.get(*secret) {
            if production {
                problems.push(
                    secret,
                    format!(
                        "written in {}; production mode takes secrets only from the environment \
                         or a *_FILE path (or `${{VAR}}` in the file)",
                        file.display()
                    ),
                );
            } else {
                warnings.push(format!(
                    "{secret} is stored inline in the config file; use the environment in \
                     production"
                ));
            }
        }
    }

    validate_database(config, problems);
    validate_jwt(config, production, problems, warnings);
    validate_login(&config.auth.login, problems);
    validate_api_keys(config, problems);
    validate_encryption(config, problems);
    validate_rbac(config, production, problems, warnings);
    validate_blobs(config, production, problems);
    validate_hubs(&config.hubs, problems);
    validate_fleet(&config.fleet, problems);
    if config.audit.retention_days < 90 {
        problems.push("audit.retention_days", "must be at least 90");
    }
    validate_listener(config, production, problems);
    if config.certificates.authority.enabled {
        if let Err(err) = crate::ca::lifetimes(config) {
            problems.push_error("certificates", err);
        }
    }
}

/// `database.url` (or `DATABASE_URL`) is needed to start: missing, it is a problem here and not
/// a failure at start-up. The value is a secret and never shown.
fn validate_database(config: &ServerConfig, problems: &mut Problems) {
    match &config.database.url {
        None => problems.push(
            "database.url",
            "not set: set DATABASE_URL (or DATABASE_URL_FILE), e.g. sqlite:///var/lib/mftplus/mftplus.db \
             or postgres://…",
        ),
        Some(url) => {
            let url = url.expose();
            let known = url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://");
            if !known {
                problems.push(
                    "database.url",
                    "must start with sqlite: or postgres:// (value not shown)",
                );
            }
        }
    }
}

fn validate_jwt(
    config: &ServerConfig,
    production: bool,
    problems: &mut Problems,
    warnings: &mut Vec<String>,
) {
    let jwt = &config.auth.jwt;
    if jwt.expiration == 0 {
        problems.push("auth.jwt.expiration", "must be positive");
    }
    if jwt.refresh_expiration == 0 {
        problems.push("auth.jwt.refresh_expiration", "must be positive");
    }
    if jwt.expiration > 0 && jwt.rotation_threshold >= jwt.expiration {
        problems.push(
            "auth.jwt.rotation_threshold",
            "must be shorter than auth.jwt.expiration",
        );
    }
    match jwt.algorithm {
        JwtAlgorithm::HS256 => {
            let min = if production { 32 } else { 16 };
            match &jwt.secret {
                None => problems.push(
                    "auth.jwt.secret",
                    "not set (set JWT_SECRET or JWT_SECRET_FILE)",
                ),
                Some(secret) if secret.expose().len() < min => {
                    problems.push("auth.jwt.secret", format!("must be at least {min} bytes"))
                }
                Some(_) => {}
            }
            // A weak previous secret would be a way to forge tokens as good as a weak current
            // one; empty means "no previous secret" (a fresh JWT_PREVIOUS_SECRET_FILE).
            if let Some(previous) = &jwt.previous_secret {
                let length = previous.expose().len();
                if length > 0 && length < min {
                    problems.push(
                        "auth.jwt.previous_secret",
                        format!("must be at least {min} bytes (or empty for none)"),
                    )
                }
            }
            if production {
                if jwt.allow_hs256_in_production {
                    warnings.push(
                        "WARNING: HS256 JWT signing in production: every verifier holds the \
                         signing secret; switch to RS256"
                            .into(),
                    );
                } else {
                    problems.push(
                        "auth.jwt.algorithm",
                        "HS256 is refused in production; use RS256 with private_key/public_key, \
                         or set auth.jwt.allow_hs256_in_production",
                    );
                }
            }
        }
        JwtAlgorithm::RS256 => {
            match &jwt.private_key {
                None => problems.push("auth.jwt.private_key", "RS256 needs a private key file"),
                Some(private) => {
                    if let Err(err) = check_private_file(private) {
                        problems.push("auth.jwt.private_key", err.to_string());
                    }
                }
            }
            if jwt.public_key.is_none() {
                problems.push("auth.jwt.public_key", "RS256 needs a public key file");
            }
        }
    }
}

/// The `auth.login.*` throttle: every threshold, the window and the delays must be positive,
/// and no cap may be below the first delay.
fn validate_login(login: &LoginSection, problems: &mut Problems) {
    let positive = [
        ("max_failures", u64::from(login.max_failures)),
        ("lockout_seconds", login.lockout_seconds),
        (
            "per_address_failures",
            u64::from(login.per_address_failures),
        ),
        (
            "per_account_failures",
            u64::from(login.per_account_failures),
        ),
        ("base_delay_seconds", login.base_delay_seconds),
    ];
    for (key, value) in positive {
        if value == 0 {
            problems.push(&format!("auth.login.{key}"), "must be positive");
        }
    }
    for (key, cap) in [
        ("max_delay_seconds", login.max_delay_seconds),
        ("account_max_delay_seconds", login.account_max_delay_seconds),
    ] {
        if cap < login.base_delay_seconds {
            problems.push(
                &format!("auth.login.{key}"),
                "must be at least auth.login.base_delay_seconds",
            );
        }
    }
}

fn validate_api_keys(config: &ServerConfig, problems: &mut Problems) {
    let keys = &config.api_keys;
    if keys.prefix != mftplus_types::API_KEY_PREFIX {
        problems.push(
            "api_keys.prefix",
            format!("must be {:?}", mftplus_types::API_KEY_PREFIX),
        );
    }
    if keys.hash_algorithm != "sha256" {
        problems.push("api_keys.hash_algorithm", "must be sha256");
    }
    let max = mftplus_crypto::secrets::API_KEY_BODY_LEN;
    if keys.min_length > max || keys.min_length < 32 {
        problems.push(
            "api_keys.min_length",
            format!("must be between 32 and {max}"),
        );
    }
    if keys.auto_rotate {
        problems.push(
            "api_keys.auto_rotate",
            "is not supported; rotate with `mftctl apikeys rotate`",
        );
    }
    if keys.rotation_required_days == 0 {
        problems.push("api_keys.rotation_required_days", "must be positive");
    }
}

/// Only what the product implements: the stream's two AEADs (`mftplus_crypto::stream`), their
/// 12-byte nonces and 16-byte tags, and PBKDF2 with the seed's floor.
fn validate_encryption(config: &ServerConfig, problems: &mut Problems) {
    let encryption = &config.encryption;
    let ciphers: Vec<&str> = CipherId::ALL.iter().map(|c| c.name()).collect();
    for (key, value) in [
        ("encryption.algorithm", &encryption.algorithm),
        (
            "encryption.transfers.algorithm",
            &encryption.transfers.algorithm,
        ),
    ] {
        if !ciphers.iter().any(|c| c.eq_ignore_ascii_case(value)) {
            problems.push(
                key,
                format!(
                    "{value:?} is not implemented; use one of {}",
                    ciphers.join(", ")
                ),
            );
        }
    }
    if !KEY_DERIVATIONS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(&encryption.key_derivation))
    {
        problems.push(
            "encryption.key_derivation",
            format!(
                "{:?} is not implemented; use {}",
                encryption.key_derivation,
                KEY_DERIVATIONS.join(", ")
            ),
        );
    }
    let transfers = &encryption.transfers;
    if transfers.nonce_size as usize != NONCE_LEN {
        problems.push(
            "encryption.transfers.nonce_size",
            format!("must be {NONCE_LEN} (96-bit nonces, both ciphers)"),
        );
    }
    if transfers.tag_size as usize != TAG_LEN {
        problems.push(
            "encryption.transfers.tag_size",
            format!("must be {TAG_LEN} (128-bit tags, both ciphers)"),
        );
    }
    let pbkdf2 = &encryption.pbkdf2;
    if pbkdf2.iterations < 600_000 {
        problems.push("encryption.pbkdf2.iterations", "must be at least 600000");
    }
    if pbkdf2.salt_length < 32 {
        problems.push("encryption.pbkdf2.salt_length", "must be at least 32");
    }
    if pbkdf2.key_length != 32 {
        problems.push("encryption.pbkdf2.key_length", "must be 32");
    }
}

/// Roles that are named must exist, and every grant must be a permission some route checks
/// (`crate::rbac::known_permissions`), a `resource:*` over one, or `*`.
fn validate_rbac(
    config: &ServerConfig,
    production: bool,
    problems: &mut Problems,
    warnings: &mut Vec<String>,
) {
    let rbac = &config.rbac;
    let defined = rbac.roles.keys().cloned().collect::<Vec<_>>().join(", ");
    if !rbac.roles.contains_key(&rbac.default_role) {
        problems.push(
            "rbac.default_role",
            format!(
                "{:?} is not a role in rbac.roles (defined: {defined})",
                rbac.default_role
            ),
        );
    }
    if !rbac.roles.contains_key("admin") {
        problems.push(
            "rbac.roles",
            "must define admin (rbac.admin_users and `mftplus cloud init` grant it)",
        );
    }
    let known = crate::rbac::known_permissions();
    for (role, spec) in &rbac.roles {
        for (index, grant) in spec.permissions.iter().enumerate() {
            if !crate::rbac::grant_is_known(grant, &known) {
                problems.push(
                    &format!("rbac.roles.{role}.permissions[{index}]"),
                    format!(
                        "role {role:?} grants {grant:?}, which is no permission: use `*`, \
                         `resource:*` or one of {}",
                        known.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
    }
    if !rbac.enabled {
        if production {
            problems.push("rbac.enabled", "false is refused in production");
        } else {
            warnings.push(
                "WARNING: rbac.enabled is false: every authenticated principal is an admin".into(),
            );
        }
    }
}

/// The `tls.*` keys, and the production rule: TLS here, or a named proxy in front.
fn validate_listener(config: &ServerConfig, production: bool, problems: &mut Problems) {
    if let Err(err) = crate::tls::settings(config) {
        problems.push_error("tls", err);
    }
    if let Err(err) = config.server.limits.validate() {
        problems.push_error("server.limits", err);
    }
    if config.server.tls_terminated_by_proxy && config.server.trusted_proxies.is_empty() {
        problems.push(
            "server.tls_terminated_by_proxy",
            "needs server.trusted_proxies: the proxies that terminate TLS and forward the \
             requests",
        );
    }
    if production && !config.tls.enabled && !config.server.tls_terminated_by_proxy {
        problems.push(
            "tls.enabled",
            "production mode serves TLS: set tls.enabled with tls.certificate.cert and .key, \
             or, when a proxy in front terminates TLS, server.tls_terminated_by_proxy: true \
             with server.trusted_proxies",
        );
    }
    if let Some(key) = &config.tls.certificate.key {
        if key.exists() {
            if let Err(err) = check_private_file(key) {
                problems.push("tls.certificate.key", err.to_string());
            }
        }
    }
}

/// The poll interval's floor and the capacity it is stretched for (decision 0024).
fn validate_fleet(fleet: &super::fleet::FleetSection, problems: &mut Problems) {
    if !(1..=crate::fleet::poll::MAX_SECONDS).contains(&fleet.poll_interval_seconds) {
        problems.push("fleet.poll_interval_seconds", "must be between 1 and 3600");
    }
    if fleet.report_capacity_per_second == 0 {
        problems.push(
            "fleet.report_capacity_per_second",
            "must be at least 1 (host reports per second the deployment takes)",
        );
    }
}

fn validate_hubs(hubs: &super::fleet::HubsSection, problems: &mut Problems) {
    if let Some(version) = &hubs.latest_version {
        if crate::hubs::parse_version(version).is_none() {
            problems.push(
                "hubs.latest_version",
                format!("{version:?} is not a version like 1.4.0"),
            );
        }
    }
    if !(5..=86_400).contains(&hubs.heartbeat_interval_seconds) {
        problems.push(
            "hubs.heartbeat_interval_seconds",
            "must be between 5 and 86400",
        );
    }
    for (index, hash) in hubs.license_keys.iter().enumerate() {
        let hex = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex {
            problems.push(
                &format!("hubs.license_keys[{index}]"),
                "must be the SHA-256 hash of a license key (64 lowercase hex characters), \
                 never the key itself",
            );
        }
    }
}

/// The payload store's settings; whether the bucket is reachable is checked at start-up and by
/// `--check-config` (`crate::blobs::open`), not here.
fn validate_blobs(config: &ServerConfig, production: bool, problems: &mut Problems) {
    let transfers = &config.transfers;
    if transfers.max_chunk_size == 0 {
        problems.push("transfers.max_chunk_size", "must be positive");
    }
    if transfers.max_request_upload_bytes == 0
        || transfers.max_request_upload_bytes > i64::MAX as u64
    {
        problems.push(
            "transfers.max_request_upload_bytes",
            "must be positive and below 2^63",
        );
    }
    if transfers.blob_backend != BlobBackend::S3 {
        return;
    }
    let s3 = &transfers.s3;
    if s3.allow_http && production {
        problems.push(
            "transfers.s3.allow_http",
            "is refused in production; use an https endpoint",
        );
    }
    if s3.bucket.trim().is_empty() {
        problems.push(
            "transfers.s3.bucket",
            "not set, and transfers.blob_backend is s3",
        );
    }
    if s3.region.trim().is_empty() {
        problems.push("transfers.s3.region", "must not be empty");
    }
    if s3.access_key_id.as_deref().is_none_or(str::is_empty) {
        problems.push(
            "transfers.s3.access_key_id",
            "not set, and transfers.blob_backend is s3 (set \
             MFTPLUS__TRANSFERS__S3__ACCESS_KEY_ID)",
        );
    }
    if s3.secret_access_key.is_none() {
        problems.push(
            "transfers.s3.secret_access_key",
            "not set, and transfers.blob_backend is s3 (set \
             MFTPLUS__TRANSFERS__S3__SECRET_ACCESS_KEY_FILE)",
        );
    }
    if let Some(endpoint) = &s3.endpoint {
        if endpoint.starts_with("http://") && !s3.allow_http {
            problems.push(
                "transfers.s3.endpoint",
                "is http:// but transfers.s3.allow_http is false",
            );
        }
        if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            problems.push(
                "transfers.s3.endpoint",
                "must be an http:// or https:// URL",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::load::{load_from, ConfigError, LoadedConfig};
    use std::collections::BTreeMap;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load(yaml: &str, pairs: &[(&str, &str)]) -> (Result<LoadedConfig, ConfigError>, String) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, yaml.as_bytes()).unwrap();
        let path = file.path().display().to_string();
        (load_from(Some(file.path()), &env(pairs)), path)
    }

    fn problems(result: Result<LoadedConfig, ConfigError>) -> Vec<String> {
        match result {
            Err(ConfigError::Many(list)) => list.iter().map(ToString::to_string).collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    /// Seed 001's server-side blocks, as the seed writes them (HS256, since RS256 needs keys).
    const SEED: &str = "\
auth:
  jwt:
    secret: ${JWT_SECRET} # Load from environment variable
    issuer: mftplus-server
    audience: mftplus-api
    expiration: 3600 # 1 hour in seconds
    refresh_expiration: 604800
    algorithm: HS256
    rotation_enabled: true
    rotation_threshold: 300
api_keys:
  enabled: true
  hash_algorithm: sha256
  min_length: 32
  rotation_required_days: 90
  prefix: \"mftpk_\"
  warning_days: 7
  auto_rotate: false
  max_inactive_days: 30
encryption:
  algorithm: AES-256-GCM
  key_derivation: PBKDF2
  pbkdf2:
    iterations: 600000
    salt_length: 32
    key_length: 32
  transfers:
    enabled: true
    algorithm: AES-256-GCM
    nonce_size: 12
    tag_size: 16
rbac:
  enabled: true
  default_role: user
  admin_users:
    - admin@example.com
    - ${SECURITY_ADMIN:-security@example.com}
  roles:
    admin:
      permissions:
        - \"*\"
    operator:
      permissions:
        - \"transfers:*\"
        - \"transfers:read\"
        - \"transfers:create\"
        - \"logs:read\"
    user:
      permissions:
        - \"transfers:create\"
        - \"transfers:read:own\"
        - \"transfers:cancel:own\"
    readonly:
      permissions:
        - \"transfers:read\"
        - \"logs:read\"
audit:
  retention_days: 90
";

    #[test]
    fn the_seed_file_loads_with_its_variables_from_the_environment() {
        let (result, _) = load(
            SEED,
            &[("JWT_SECRET", SECRET), ("DATABASE_URL", "sqlite://x.db")],
        );
        let loaded = result.unwrap();
        let config = &loaded.config;
        assert_eq!(config.auth.jwt.secret.as_ref().unwrap().expose(), SECRET);
        assert_eq!(
            config.rbac.admin_users,
            vec!["admin@example.com", "security@example.com"]
        );
        assert!(
            loaded.warnings.is_empty(),
            "a ${{VAR}} secret is not inline: {:?}",
            loaded.warnings
        );
        // JWT_SECRET is also read by the environment layer, which comes last (same value).
        assert_eq!(
            loaded.lookup("auth.jwt.secret").unwrap().3,
            "env JWT_SECRET"
        );
        // Any other variable is recorded as the file's, through it; a secret stays redacted.
        let (result, path) = load(
            &SEED.replace("${JWT_SECRET}", "${SIGNING_KEY}"),
            &[("SIGNING_KEY", SECRET), ("DATABASE_URL", "sqlite://x.db")],
        );
        let loaded = result.unwrap();
        let (value, secret, display, source) = loaded.lookup("auth.jwt.secret").unwrap();
        let via = format!("file {path} via ${{SIGNING_KEY}}");
        assert!(value.is_none() && secret);
        assert_eq!((display, source), (format!("set (from {via})"), via));
        assert!(!format!("{:?}", loaded.lookup("auth.jwt")).contains(SECRET));

        // Unset, the variable is the one problem (not also "secret not set").
        let (result, path) = load(SEED, &[("DATABASE_URL", "sqlite://x.db")]);
        assert_eq!(
            problems(result),
            vec![format!(
                "auth.jwt.secret (file {path}): ${{JWT_SECRET}} is not set in the environment \
                 (set JWT_SECRET, or write ${{JWT_SECRET:-default}})"
            )]
        );
    }

    #[test]
    fn production_takes_a_secret_through_a_variable_but_not_a_default_written_in_the_file() {
        let production = "mode: production\nserver:\n  tls_terminated_by_proxy: true\n  \
                          trusted_proxies: [10.0.0.1]\nauth:\n  jwt:\n    \
                          allow_hs256_in_production: true\n";
        let db = ("DATABASE_URL", "postgres://db/x");
        let (result, _) = load(
            &format!("{production}    secret: ${{SIGNING_KEY}}\n"),
            &[db, ("SIGNING_KEY", SECRET)],
        );
        result.unwrap();
        let (result, _) = load(
            &format!("{production}    secret: ${{JWT_SECRET:-{SECRET}}}\n"),
            &[db],
        );
        let found = problems(result);
        assert!(
            found.len() == 1 && found[0].contains("production mode takes secrets only"),
            "{found:?}"
        );
        assert!(!found[0].contains(SECRET));
    }

    #[test]
    fn every_problem_is_reported_with_its_key_and_source() {
        let yaml = "\
auth:
  jwt:
    expiraton: 10
    issuer: ${ISSUER}
    refresh_expiration: soon
encryption:
  algorithm: AES-128-CBC
  transfers:
    nonce_size: 24
rbac:
  default_role: staff
  roles:
    auditor:
      permissions: [\"logs:read\", \"logs:delete\", \"nothing:*\"]
audit:
  retention_days: 30
";
        let (result, path) = load(
            yaml,
            &[
                ("JWT_SECRET", SECRET),
                ("MFTPLUS__SERVER__LIMITS__MAX_URI_BYTES", "10"),
            ],
        );
        let file = format!("file {path}");
        let found = problems(result);
        let expected = [
            ("auth.jwt.expiraton", file.as_str(), "unknown key (did you mean `expiration`?)"),
            ("auth.jwt.issuer", &file, "${ISSUER} is not set"),
            ("auth.jwt.refresh_expiration", &file, "invalid type: string \"soon\", expected u64"),
            ("database.url", "default", "not set: set DATABASE_URL"),
            ("encryption.algorithm", &file, "\"AES-128-CBC\" is not implemented; use one of AES-256-GCM, ChaCha20-Poly1305"),
            ("encryption.transfers.nonce_size", &file, "must be 12"),
            ("rbac.default_role", &file, "\"staff\" is not a role in rbac.roles (defined: admin, auditor, operator, readonly, user)"),
            ("rbac.roles.auditor.permissions[1]", &file, "role \"auditor\" grants \"logs:delete\", which is no permission"),
            ("rbac.roles.auditor.permissions[2]", &file, "role \"auditor\" grants \"nothing:*\""),
            ("audit.retention_days", &file, "must be at least 90"),
            ("server.limits.max_uri_bytes", "env MFTPLUS__SERVER__LIMITS__MAX_URI_BYTES", "must be at least 1024"),
        ];
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        for (key, source, message) in expected {
            let start = format!("{key} ({source}): {message}");
            assert!(
                found.iter().any(|line| line.starts_with(&start)),
                "{start:?} not in {found:#?}"
            );
        }
    }

    #[test]
    fn the_database_url_is_required_and_never_shown() {
        let (result, _) = load("", &[("JWT_SECRET", SECRET)]);
        let found = problems(result);
        assert!(
            found.len() == 1 && found[0].starts_with("database.url (default): not set"),
            "{found:?}"
        );
        let (result, _) = load(
            "",
            &[
                ("JWT_SECRET", SECRET),
                ("DATABASE_URL", "mysql://u:hunter2@db/x"),
            ],
        );
        let found = problems(result);
        assert_eq!(
            found,
            vec![
                "database.url (env DATABASE_URL): must start with sqlite: or postgres:// \
                  (value not shown)"
            ]
        );
        let (result, _) = load(
            "database:\n  url: [\"hunter2\"]\n",
            &[("JWT_SECRET", SECRET)],
        );
        let found = problems(result);
        assert!(!found.concat().contains("hunter2"), "{found:?}");
    }

    #[test]
    fn other_algorithms_and_key_derivations_are_refused_chacha_is_offered() {
        let (result, _) = load(
            "encryption:\n  algorithm: chacha20-poly1305\n  transfers:\n    algorithm: \
             ChaCha20-Poly1305\n",
            &[("JWT_SECRET", SECRET), ("DATABASE_URL", "sqlite://x.db")],
        );
        result.unwrap();
        let (result, _) = load(
            "encryption:\n  key_derivation: scrypt\n  transfers:\n    algorithm: AES-128-GCM\n",
            &[("JWT_SECRET", SECRET), ("DATABASE_URL", "sqlite://x.db")],
        );
        let found = problems(result);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("encryption.key_derivation")
                || found[1].contains("encryption.key_derivation")
        );
        assert!(found
            .iter()
            .any(|line| line.starts_with("encryption.transfers.algorithm")));
    }
}
