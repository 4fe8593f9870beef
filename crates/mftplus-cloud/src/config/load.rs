//! Layering and validation of the server configuration.

use super::model::{BlobBackend, JwtAlgorithm, Mode, ServerConfig};
use mftplus_base::PrivateFileError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/mftplus/server.yaml";

/// Dotted paths whose values are secrets: never printed, and refused inline in the file in
/// production.
pub const SECRET_PATHS: &[&str] = &[
    "auth.jwt.secret",
    "auth.jwt.previous_secret",
    "encryption.key",
    "database.url",
    "transfers.s3.secret_access_key",
    "notifications.smtp.password",
    "edge_firewall.cloudflare.api_token",
];

/// The seed's variable names, mapped to config paths. Secrets among them also accept `NAME_FILE`.
const ENV_ALIASES: &[(&str, &str)] = &[
    ("MFTPLUS_MODE", "mode"),
    ("DATABASE_URL", "database.url"),
    ("JWT_SECRET", "auth.jwt.secret"),
    ("JWT_PREVIOUS_SECRET", "auth.jwt.previous_secret"),
    ("MFTPLUS_ENCRYPTION_KEY", "encryption.key"),
    ("MFTPLUS_PBKDF2_ITERATIONS", "encryption.pbkdf2.iterations"),
    (
        "MFTPLUS_PBKDF2_SALT_LENGTH",
        "encryption.pbkdf2.salt_length",
    ),
];

const GENERIC_ENV_PREFIX: &str = "MFTPLUS__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("cannot read secret file {path} (from {var}): {source}")]
    SecretFile {
        var: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is readable by group or others (mode {mode:o}); run: chmod 600 {path}")]
    InsecurePermissions { path: PathBuf, mode: u32 },
}

/// Where an effective value came from, for `mftctl config get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    EnvFile { var: String, path: PathBuf },
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Default => "default".into(),
            Source::File(path) => format!("file {}", path.display()),
            Source::Env(var) => format!("env {var}"),
            Source::EnvFile { var, path } => format!("file {} via {var}", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: ServerConfig,
    /// The effective configuration as a tree, secrets included: only ever read through
    /// [`LoadedConfig::lookup`], which redacts them.
    tree: Value,
    sources: BTreeMap<String, Source>,
    pub warnings: Vec<String>,
    pub file: Option<PathBuf>,
}

impl LoadedConfig {
    /// The effective value at a dotted path, with secrets (also inside sections) redacted.
    /// Returns `(value, secret, display, source)`; `None` when no such key exists.
    pub fn lookup(&self, key: &str) -> Option<(Option<Value>, bool, String, String)> {
        let mut node = &self.tree;
        for part in key.split('.') {
            node = node.as_object()?.get(part)?;
        }
        let source = self
            .sources
            .get(key)
            .map(Source::describe)
            .unwrap_or_else(|| {
                if node.is_object() {
                    "effective".into()
                } else {
                    "default".into()
                }
            });
        if SECRET_PATHS.contains(&key) {
            let display = self.secret_display(key, node);
            return Some((None, true, display, source));
        }
        let mut value = node.clone();
        self.redact_below(key, &mut value);
        let display = match &value {
            Value::String(text) => text.clone(),
            other => serde_yaml::to_string(other)
                .unwrap_or_default()
                .trim_end()
                .to_string(),
        };
        Some((Some(value), false, display, source))
    }

    fn secret_display(&self, key: &str, node: &Value) -> String {
        if node.is_null() {
            return "not set".into();
        }
        match self.sources.get(key) {
            Some(source) => format!("set (from {})", source.describe()),
            None => "set".into(),
        }
    }

    fn redact_below(&self, prefix: &str, value: &mut Value) {
        for secret in SECRET_PATHS {
            let Some(rest) = secret
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('.'))
            else {
                continue;
            };
            let pointer = format!("/{}", rest.replace('.', "/"));
            if let Some(leaf) = value.pointer_mut(&pointer) {
                *leaf = Value::String(self.secret_display(secret, leaf));
            }
        }
    }
}

/// Loads with the process environment. `path` `None` means the default path, which may be
/// absent; an explicit path must exist.
pub fn load(path: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    load_from(path, &env)
}

/// Loads with an explicit environment, so tests never touch the process's.
pub fn load_from(
    path: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Result<LoadedConfig, ConfigError> {
    let mut tree = serde_json::to_value(ServerConfig::default()).expect("defaults serialise");
    let mut sources = BTreeMap::new();
    let mut warnings = Vec::new();

    let file = match path {
        Some(explicit) => Some(explicit.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
    };
    if let Some(file) = &file {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            path: file.clone(),
            source,
        })?;
        let parsed: Value = if text.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            serde_yaml::from_str(&text).map_err(|err| ConfigError::Parse {
                path: file.clone(),
                message: err.to_string(),
            })?
        };
        if !parsed.is_object() && !parsed.is_null() {
            return Err(ConfigError::Parse {
                path: file.clone(),
                message: "the top level must be a mapping".into(),
            });
        }
        merge(
            &mut tree,
            &parsed,
            "",
            &Source::File(file.clone()),
            &mut sources,
        );
    }

    for (var, path) in ENV_ALIASES {
        apply_env(&mut tree, &mut sources, env, var, path)?;
    }
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(GENERIC_ENV_PREFIX) else {
            continue;
        };
        let path = rest.to_ascii_lowercase().replace("__", ".");
        if let Some(secret_path) = path
            .strip_suffix("_file")
            .filter(|p| SECRET_PATHS.contains(p))
        {
            let value = read_secret_file(var, Path::new(raw))?;
            set_path(&mut tree, secret_path, Value::String(value));
            sources.insert(
                secret_path.to_string(),
                Source::EnvFile {
                    var: var.clone(),
                    path: raw.into(),
                },
            );
        } else {
            set_path(&mut tree, &path, env_value(&path, raw));
            sources.insert(path, Source::Env(var.clone()));
        }
    }

    let config: ServerConfig = serde_json::from_value(tree.clone())
        .map_err(|err| ConfigError::Invalid(err.to_string()))?;
    validate(&config, &sources, &mut warnings)?;
    Ok(LoadedConfig {
        config,
        tree,
        sources,
        warnings,
        file,
    })
}

fn apply_env(
    tree: &mut Value,
    sources: &mut BTreeMap<String, Source>,
    env: &BTreeMap<String, String>,
    var: &str,
    path: &str,
) -> Result<(), ConfigError> {
    if let Some(raw) = env.get(var) {
        set_path(tree, path, env_value(path, raw));
        sources.insert(path.to_string(), Source::Env(var.to_string()));
    }
    let file_var = format!("{var}_FILE");
    if let Some(file) = env.get(&file_var).filter(|_| SECRET_PATHS.contains(&path)) {
        if env.contains_key(var) {
            return Err(ConfigError::Invalid(format!(
                "both {var} and {file_var} are set; use one"
            )));
        }
        let value = read_secret_file(&file_var, Path::new(file))?;
        set_path(tree, path, Value::String(value));
        sources.insert(
            path.to_string(),
            Source::EnvFile {
                var: file_var,
                path: file.into(),
            },
        );
    }
    Ok(())
}

/// Secrets stay strings; other values are read as YAML scalars so `600000` is a number and
/// `true` a bool.
fn env_value(path: &str, raw: &str) -> Value {
    if SECRET_PATHS.contains(&path) {
        return Value::String(raw.to_string());
    }
    serde_yaml::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

fn read_secret_file(var: &str, path: &Path) -> Result<String, ConfigError> {
    let text = mftplus_base::read_private_to_string(path).map_err(|err| private_error(var, err))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// Refuses secret and private-key files that group or others can access.
pub fn check_private_file(path: &Path) -> Result<(), ConfigError> {
    mftplus_base::check_private(path).map_err(|err| private_error("file", err))
}

/// The base crate's refusal in this crate's stable error variants (`var` names where the path
/// came from, for the I/O message).
pub(crate) fn private_error(var: &str, err: PrivateFileError) -> ConfigError {
    match err {
        PrivateFileError::Insecure { path, mode, .. } => {
            ConfigError::InsecurePermissions { path, mode }
        }
        PrivateFileError::Io { path, source } => ConfigError::SecretFile {
            var: var.to_string(),
            path,
            source,
        },
    }
}

fn merge(
    base: &mut Value,
    overlay: &Value,
    prefix: &str,
    source: &Source,
    sources: &mut BTreeMap<String, Source>,
) {
    let Value::Object(overlay_map) = overlay else {
        return;
    };
    for (key, value) in overlay_map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let slot = base
            .as_object_mut()
            .expect("merge target is an object")
            .entry(key.clone())
            .or_insert(Value::Null);
        // Maps merge key by key, except the role matrix, which a file replaces as a whole
        // role at a time (a role listed in the file means exactly the permissions listed).
        if value.is_object() && slot.is_object() && !path.starts_with("rbac.roles.") {
            merge(slot, value, &path, source, sources);
        } else {
            *slot = value.clone();
            sources.insert(path, source.clone());
        }
    }
}

fn set_path(tree: &mut Value, path: &str, value: Value) {
    let mut node = tree;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        if !node.get(*part).is_some_and(Value::is_object) {
            node[*part] = Value::Object(Map::new());
        }
        node = node.get_mut(*part).expect("just ensured");
    }
    node[parts[parts.len() - 1]] = value;
}

fn validate(
    config: &ServerConfig,
    sources: &BTreeMap<String, Source>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let invalid = |msg: String| Err(ConfigError::Invalid(msg));
    let production = config.mode == Mode::Production;

    for secret in SECRET_PATHS {
        if let Some(Source::File(file)) = sources.get(*secret) {
            if production {
                return invalid(format!(
                    "{secret} is written in {}; production mode takes secrets only from the \
                     environment or a *_FILE path",
                    file.display()
                ));
            }
            warnings.push(format!(
                "{secret} is stored inline in the config file; use the environment in production"
            ));
        }
    }

    let jwt = &config.auth.jwt;
    if jwt.expiration == 0 || jwt.refresh_expiration == 0 {
        return invalid("auth.jwt.expiration and refresh_expiration must be positive".into());
    }
    if jwt.rotation_threshold >= jwt.expiration {
        return invalid(
            "auth.jwt.rotation_threshold must be shorter than auth.jwt.expiration".into(),
        );
    }
    match jwt.algorithm {
        JwtAlgorithm::HS256 => {
            let Some(secret) = &jwt.secret else {
                return invalid(
                    "auth.jwt.secret is not set (set JWT_SECRET or JWT_SECRET_FILE)".into(),
                );
            };
            let min = if production { 32 } else { 16 };
            if secret.expose().len() < min {
                return invalid(format!("auth.jwt.secret must be at least {min} bytes"));
            }
            if production {
                if !jwt.allow_hs256_in_production {
                    return invalid(
                        "auth.jwt.algorithm HS256 is refused in production; use RS256 with \
                         private_key/public_key, or set auth.jwt.allow_hs256_in_production"
                            .into(),
                    );
                }
                warnings.push("WARNING: HS256 JWT signing in production: every verifier holds the signing secret; switch to RS256".into());
            }
        }
        JwtAlgorithm::RS256 => {
            let (Some(private), Some(_public)) = (&jwt.private_key, &jwt.public_key) else {
                return invalid(
                    "auth.jwt.algorithm RS256 needs auth.jwt.private_key and auth.jwt.public_key"
                        .into(),
                );
            };
            check_private_file(private)?;
        }
    }

    validate_login(&config.auth.login)?;

    let keys = &config.api_keys;
    if keys.prefix != mftplus_types::API_KEY_PREFIX {
        return invalid(format!(
            "api_keys.prefix must be {:?}",
            mftplus_types::API_KEY_PREFIX
        ));
    }
    if keys.hash_algorithm != "sha256" {
        return invalid("api_keys.hash_algorithm must be sha256".into());
    }
    if keys.min_length > mftplus_crypto::secrets::API_KEY_BODY_LEN || keys.min_length < 32 {
        return invalid(format!(
            "api_keys.min_length must be between 32 and {}",
            mftplus_crypto::secrets::API_KEY_BODY_LEN
        ));
    }
    if keys.auto_rotate {
        return invalid(
            "api_keys.auto_rotate is not supported; rotate with `mftctl apikeys rotate`".into(),
        );
    }
    if keys.rotation_required_days == 0 {
        return invalid("api_keys.rotation_required_days must be positive".into());
    }

    let pbkdf2 = &config.encryption.pbkdf2;
    if pbkdf2.iterations < 600_000 || pbkdf2.salt_length < 32 || pbkdf2.key_length != 32 {
        return invalid(
            "encryption.pbkdf2 needs iterations >= 600000, salt_length >= 32, key_length = 32"
                .into(),
        );
    }

    let rbac = &config.rbac;
    if !rbac.roles.contains_key(&rbac.default_role) {
        return invalid(format!(
            "rbac.default_role {:?} is not in rbac.roles",
            rbac.default_role
        ));
    }
    if !rbac.roles.contains_key("admin") {
        return invalid("rbac.roles must define admin".into());
    }
    if !rbac.enabled {
        if production {
            return invalid("rbac.enabled: false is refused in production".into());
        }
        warnings.push(
            "WARNING: rbac.enabled is false: every authenticated principal is an admin".into(),
        );
    }

    validate_blobs(config, production)?;
    validate_hubs(&config.hubs)?;

    if config.audit.retention_days < 90 {
        return invalid("audit.retention_days must be at least 90".into());
    }
    validate_listener(config, production)?;
    if let Some(key) = &config.tls.certificate.key {
        if key.exists() {
            check_private_file(key)?;
        }
    }
    Ok(())
}

/// The `auth.login.*` throttle: every threshold, the window and the delays must be positive,
/// and no cap may be below the first delay.
fn validate_login(login: &super::model::LoginSection) -> Result<(), ConfigError> {
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
    if let Some((key, _)) = positive.iter().find(|(_, value)| *value == 0) {
        return Err(ConfigError::Invalid(format!(
            "auth.login.{key} must be positive"
        )));
    }
    for (key, cap) in [
        ("max_delay_seconds", login.max_delay_seconds),
        ("account_max_delay_seconds", login.account_max_delay_seconds),
    ] {
        if cap < login.base_delay_seconds {
            return Err(ConfigError::Invalid(format!(
                "auth.login.{key} must be at least auth.login.base_delay_seconds"
            )));
        }
    }
    Ok(())
}

/// The `tls.*` keys, and the production rule: TLS here, or a named proxy in front.
fn validate_listener(config: &ServerConfig, production: bool) -> Result<(), ConfigError> {
    let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_string()));
    crate::tls::settings(config)?;
    config.server.limits.validate()?;
    if config.server.tls_terminated_by_proxy && config.server.trusted_proxies.is_empty() {
        return invalid(
            "server.tls_terminated_by_proxy needs server.trusted_proxies: the proxies that \
             terminate TLS and forward the requests",
        );
    }
    if production && !config.tls.enabled && !config.server.tls_terminated_by_proxy {
        return invalid(
            "production mode serves TLS: set tls.enabled with tls.certificate.cert and .key, \
             or, when a proxy in front terminates TLS, server.tls_terminated_by_proxy: true \
             with server.trusted_proxies",
        );
    }
    Ok(())
}

fn validate_hubs(hubs: &super::fleet::HubsSection) -> Result<(), ConfigError> {
    let invalid = |msg: String| Err(ConfigError::Invalid(msg));
    if let Some(version) = &hubs.latest_version {
        if crate::hubs::parse_version(version).is_none() {
            return invalid(format!(
                "hubs.latest_version {version:?} is not a version like 1.4.0"
            ));
        }
    }
    if !(5..=86_400).contains(&hubs.heartbeat_interval_seconds) {
        return invalid("hubs.heartbeat_interval_seconds must be between 5 and 86400".into());
    }
    for hash in &hubs.license_keys {
        let hex = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex {
            return invalid(
                "hubs.license_keys holds SHA-256 hashes (64 lowercase hex characters), never \
                 the license keys themselves"
                    .into(),
            );
        }
    }
    Ok(())
}

/// The payload store's settings; whether the bucket is reachable is checked at start-up and by
/// `--check-config` (`crate::blobs::open`), not here.
fn validate_blobs(config: &ServerConfig, production: bool) -> Result<(), ConfigError> {
    let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_string()));
    let transfers = &config.transfers;
    if transfers.max_chunk_size == 0 {
        return invalid("transfers.max_chunk_size must be positive");
    }
    if transfers.blob_backend != BlobBackend::S3 {
        return Ok(());
    }
    let s3 = &transfers.s3;
    if s3.bucket.trim().is_empty() {
        return invalid("transfers.blob_backend is s3 but transfers.s3.bucket is not set");
    }
    if s3.region.trim().is_empty() {
        return invalid("transfers.s3.region must not be empty");
    }
    if s3.access_key_id.as_deref().is_none_or(str::is_empty) || s3.secret_access_key.is_none() {
        return invalid(
            "transfers.blob_backend is s3 but transfers.s3.access_key_id or \
             transfers.s3.secret_access_key is not set (set MFTPLUS__TRANSFERS__S3__ACCESS_KEY_ID \
             and MFTPLUS__TRANSFERS__S3__SECRET_ACCESS_KEY_FILE)",
        );
    }
    if let Some(endpoint) = &s3.endpoint {
        if endpoint.starts_with("http://") && !s3.allow_http {
            return invalid(
                "transfers.s3.endpoint is http:// but transfers.s3.allow_http is false",
            );
        }
        if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            return invalid("transfers.s3.endpoint must be an http:// or https:// URL");
        }
    }
    if s3.allow_http && production {
        return invalid("transfers.s3.allow_http is refused in production; use an https endpoint");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        file
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn layers_defaults_file_then_environment() {
        let f = file("auth:\n  jwt:\n    expiration: 1800\n    issuer: from-file\nrbac:\n  admin_users: [Boss@Example.com]\n");
        let loaded = load_from(
            Some(f.path()),
            &env(&[
                ("JWT_SECRET", SECRET),
                ("MFTPLUS__AUTH__JWT__EXPIRATION", "900"),
                ("MFTPLUS_PBKDF2_ITERATIONS", "700000"),
            ]),
        )
        .unwrap();
        let c = &loaded.config;
        assert_eq!(c.auth.jwt.expiration, 900);
        assert_eq!(c.auth.jwt.issuer, "from-file");
        assert_eq!(c.auth.jwt.refresh_expiration, 604_800);
        assert_eq!(c.encryption.pbkdf2.iterations, 700_000);
        let (value, secret, _, source) = loaded.lookup("auth.jwt.expiration").unwrap();
        assert_eq!(
            (value, secret, source.as_str()),
            (
                Some(serde_json::json!(900)),
                false,
                "env MFTPLUS__AUTH__JWT__EXPIRATION"
            )
        );
        let (_, _, _, source) = loaded.lookup("auth.jwt.issuer").unwrap();
        assert!(source.starts_with("file "), "{source}");
        assert_eq!(loaded.lookup("auth.jwt.leeway").unwrap().3, "default");
        assert!(loaded.lookup("auth.jwt.nope").is_none());
    }

    #[test]
    fn secrets_are_redacted_at_every_depth() {
        let loaded = load_from(
            None,
            &env(&[
                ("JWT_SECRET", SECRET),
                ("DATABASE_URL", "postgres://u:pw@db/x"),
            ]),
        )
        .unwrap();
        let (value, secret, display, _) = loaded.lookup("auth.jwt.secret").unwrap();
        assert!(value.is_none() && secret);
        assert_eq!(display, "set (from env JWT_SECRET)");
        for key in ["auth", "auth.jwt", "database"] {
            let (value, ..) = loaded.lookup(key).unwrap();
            let text = value.unwrap().to_string();
            assert!(
                !text.contains(SECRET) && !text.contains("pw@db"),
                "{key}: {text}"
            );
        }
        assert_eq!(loaded.lookup("encryption.key").unwrap().2, "not set");
    }

    #[test]
    fn secret_files_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let secret = file(SECRET);
        std::fs::set_permissions(secret.path(), std::fs::Permissions::from_mode(0o640)).unwrap();
        let path = secret.path().display().to_string();
        let err = load_from(None, &env(&[("JWT_SECRET_FILE", &path)])).unwrap_err();
        assert!(
            matches!(err, ConfigError::InsecurePermissions { .. }),
            "{err}"
        );
        std::fs::set_permissions(secret.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        let loaded = load_from(None, &env(&[("JWT_SECRET_FILE", &path)])).unwrap();
        assert_eq!(loaded.config.auth.jwt.secret.unwrap().expose(), SECRET);
        let both = load_from(
            None,
            &env(&[("JWT_SECRET_FILE", &path), ("JWT_SECRET", SECRET)]),
        );
        assert!(both.is_err());
    }

    #[test]
    fn a_role_in_the_file_replaces_that_role_only() {
        let f = file("rbac:\n  roles:\n    user:\n      permissions: [\"transfers:create\"]\n");
        let loaded = load_from(Some(f.path()), &env(&[("JWT_SECRET", SECRET)])).unwrap();
        let roles = &loaded.config.rbac.roles;
        assert_eq!(
            roles["user"].permissions,
            vec!["transfers:create".to_string()]
        );
        assert_eq!(roles["admin"].permissions, vec!["*".to_string()]);
    }

    #[test]
    fn s3_payload_store_settings_are_validated_and_the_secret_redacted() {
        use std::os::unix::fs::PermissionsExt;
        let secret = file("s3-secret-value-0123456789");
        std::fs::set_permissions(secret.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        let secret_path = secret.path().display().to_string();
        let base = [
            ("JWT_SECRET", SECRET),
            ("MFTPLUS__TRANSFERS__BLOB_BACKEND", "s3"),
            ("MFTPLUS__TRANSFERS__S3__BUCKET", "payloads"),
            ("MFTPLUS__TRANSFERS__S3__ACCESS_KEY_ID", "AKIDEXAMPLE"),
            (
                "MFTPLUS__TRANSFERS__S3__ENDPOINT",
                "https://s3.internal:9000",
            ),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            load_from(None, &env(&pairs))
        };

        let loaded = with(&[(
            "MFTPLUS__TRANSFERS__S3__SECRET_ACCESS_KEY_FILE",
            &secret_path,
        )])
        .unwrap();
        let t = &loaded.config.transfers;
        assert_eq!(t.blob_backend, BlobBackend::S3);
        assert_eq!(
            t.s3.secret_access_key.as_ref().unwrap().expose(),
            "s3-secret-value-0123456789"
        );
        let (value, secret_flag, display, _) =
            loaded.lookup("transfers.s3.secret_access_key").unwrap();
        assert!(value.is_none() && secret_flag, "{display}");
        for key in ["transfers", "transfers.s3"] {
            let shown = loaded.lookup(key).unwrap().0.unwrap().to_string();
            assert!(!shown.contains("s3-secret-value"), "{key}: {shown}");
        }
        assert!(!format!("{:?}", loaded.config).contains("s3-secret-value"));

        std::fs::set_permissions(secret.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = with(&[(
            "MFTPLUS__TRANSFERS__S3__SECRET_ACCESS_KEY_FILE",
            &secret_path,
        )]);
        assert!(
            matches!(open, Err(ConfigError::InsecurePermissions { .. })),
            "{open:?}"
        );

        let key = ("MFTPLUS__TRANSFERS__S3__SECRET_ACCESS_KEY", "inline-secret");
        for (extra, why) in [
            (vec![], "no secret"),
            (
                vec![key, ("MFTPLUS__TRANSFERS__S3__BUCKET", "")],
                "no bucket",
            ),
            (
                vec![
                    key,
                    ("MFTPLUS__TRANSFERS__S3__ENDPOINT", "http://127.0.0.1:9000"),
                ],
                "http without allow_http",
            ),
            (
                vec![key, ("MFTPLUS__TRANSFERS__S3__ENDPOINT", "s3.internal")],
                "not a URL",
            ),
        ] {
            assert!(
                matches!(with(&extra), Err(ConfigError::Invalid(_))),
                "accepted with {why}"
            );
        }
        let local = with(&[
            key,
            ("MFTPLUS__TRANSFERS__S3__ENDPOINT", "http://127.0.0.1:9000"),
            ("MFTPLUS__TRANSFERS__S3__ALLOW_HTTP", "true"),
        ]);
        assert!(local.is_ok(), "{local:?}");
    }

    #[test]
    fn login_throttle_keys_default_load_and_are_validated() {
        let defaults = load_from(None, &env(&[("JWT_SECRET", SECRET)])).unwrap();
        let login = &defaults.config.auth.login;
        assert_eq!(
            (login.max_failures, login.lockout_seconds),
            (5, 900),
            "the old keys keep their defaults"
        );
        assert_eq!(
            (login.per_address_failures, login.per_account_failures),
            (20, 100)
        );
        assert_eq!(
            (
                login.base_delay_seconds,
                login.max_delay_seconds,
                login.account_max_delay_seconds
            ),
            (1, 900, 30)
        );
        // A file written for the old lock still loads.
        let old = file("auth:\n  login:\n    max_failures: 3\n    lockout_seconds: 600\n");
        let loaded = load_from(Some(old.path()), &env(&[("JWT_SECRET", SECRET)])).unwrap();
        assert_eq!(loaded.config.auth.login.max_failures, 3);
        assert_eq!(loaded.config.auth.login.lockout_seconds, 600);
        for (key, value) in [
            ("MAX_FAILURES", "0"),
            ("LOCKOUT_SECONDS", "0"),
            ("PER_ADDRESS_FAILURES", "0"),
            ("PER_ACCOUNT_FAILURES", "0"),
            ("BASE_DELAY_SECONDS", "0"),
            ("MAX_DELAY_SECONDS", "0"),
            ("ACCOUNT_MAX_DELAY_SECONDS", "0"),
        ] {
            let var = format!("MFTPLUS__AUTH__LOGIN__{key}");
            let err =
                load_from(None, &env(&[("JWT_SECRET", SECRET), (&var, value)])).expect_err(&var);
            let ConfigError::Invalid(message) = err else {
                panic!("{var}: {err:?}");
            };
            assert!(
                message.contains(&format!("auth.login.{}", key.to_ascii_lowercase())),
                "{var}: {message}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let loaded = load_from(None, &env(&[("JWT_SECRET", SECRET)])).unwrap();
        assert!(!format!("{:?}", loaded.config).contains(SECRET));
    }
}
