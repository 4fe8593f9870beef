//! Layering of the server configuration: defaults, then the file (with its `${VAR}` expanded),
//! then the environment. Every problem found on the way is collected, with its key and source,
//! and returned together ([`ConfigError::Many`]); the rules themselves are in `validate.rs`.

use super::expand::expand_tree;
use super::model::ServerConfig;
use super::problems::{ConfigProblem, Problems};
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
    /// Everything wrong with the configuration, one problem a line (what `--check-config`
    /// prints). Never empty.
    #[error("{}", super::problems::render(.0))]
    Many(Vec<ConfigProblem>),
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
    EnvFile {
        var: String,
        path: PathBuf,
    },
    /// The file wrote `${var}` (or several, `var` then names them all) and the environment
    /// supplied the value.
    FileVar {
        path: PathBuf,
        var: String,
    },
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Default => "default".into(),
            Source::File(path) => format!("file {}", path.display()),
            Source::Env(var) => format!("env {var}"),
            Source::EnvFile { var, path } => format!("file {} via {var}", path.display()),
            Source::FileVar { path, var } => format!("file {} via ${{{var}}}", path.display()),
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
    /// The file a secret was read from, when it came from a `NAME_FILE` variable.
    pub fn secret_file(&self, key: &str) -> Option<PathBuf> {
        match self.sources.get(key)? {
            Source::EnvFile { path, .. } => Some(path.clone()),
            _ => None,
        }
    }

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

/// Loads with an explicit environment, so tests never touch the process's. Read and YAML
/// errors of the file stop at once; everything else is collected into [`ConfigError::Many`].
pub fn load_from(
    path: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Result<LoadedConfig, ConfigError> {
    let mut tree = serde_json::to_value(ServerConfig::default()).expect("defaults serialise");
    let mut sources = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut early = Vec::new();

    let file = match path {
        Some(explicit) => Some(explicit.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
    };
    if let Some(file) = &file {
        merge_file(&mut tree, &mut sources, &mut early, file, env)?;
    }
    merge_env(&mut tree, &mut sources, &mut early, env);

    let mut problems = Problems::new(&sources);
    for problem in early {
        problems.settle(problem);
    }
    let config = super::problems::typed(&mut tree, &mut problems);
    if let Some(config) = &config {
        super::validate::validate(config, &sources, &mut problems, &mut warnings);
    }
    problems.into_result()?;
    Ok(LoadedConfig {
        config: config.expect("no problems, so the configuration was read"),
        tree,
        sources,
        warnings,
        file,
    })
}

/// Merges the configuration file over `tree`, `${VAR}` references expanded; problems of the
/// references go to `early`, read and YAML errors stop the load.
fn merge_file(
    tree: &mut Value,
    sources: &mut BTreeMap<String, Source>,
    early: &mut Vec<ConfigProblem>,
    file: &Path,
    env: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let mut parsed: Value = if text.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_yaml::from_str(&text).map_err(|err| ConfigError::Parse {
            path: file.to_path_buf(),
            message: err.to_string(),
        })?
    };
    if !parsed.is_object() && !parsed.is_null() {
        return Err(ConfigError::Parse {
            path: file.to_path_buf(),
            message: "the top level must be a mapping".into(),
        });
    }
    let (expanded, errors) =
        expand_tree(&mut parsed, env, &|key: &str| SECRET_PATHS.contains(&key));
    let from_file = Source::File(file.to_path_buf());
    merge(tree, &parsed, "", &from_file, sources);
    for done in expanded.into_iter().filter(|done| !done.defaulted) {
        if sources.get(&done.key) == Some(&from_file) {
            let var = done.vars.join("}, ${");
            let path = file.to_path_buf();
            sources.insert(done.key, Source::FileVar { path, var });
        }
    }
    early.extend(errors.into_iter().map(|error| ConfigProblem {
        key: error.key,
        source: from_file.describe(),
        message: error.message,
    }));
    Ok(())
}

/// Merges the environment over `tree`: the seed's variable names, then `MFTPLUS__…` paths
/// (`…_FILE` for a secret read from a file).
fn merge_env(
    tree: &mut Value,
    sources: &mut BTreeMap<String, Source>,
    early: &mut Vec<ConfigProblem>,
    env: &BTreeMap<String, String>,
) {
    for (var, path) in ENV_ALIASES {
        apply_env(tree, sources, env, var, path, early);
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
            match read_secret_file(var, Path::new(raw)) {
                Ok(value) => {
                    set_path(tree, secret_path, Value::String(value));
                    sources.insert(
                        secret_path.to_string(),
                        Source::EnvFile {
                            var: var.clone(),
                            path: raw.into(),
                        },
                    );
                }
                Err(err) => early.push(env_problem(secret_path, var, err.to_string())),
            }
        } else {
            set_path(tree, &path, env_value(&path, raw));
            sources.insert(path, Source::Env(var.clone()));
        }
    }
}

fn env_problem(key: &str, var: &str, message: String) -> ConfigProblem {
    ConfigProblem {
        key: key.to_string(),
        source: Source::Env(var.to_string()).describe(),
        message,
    }
}

fn apply_env(
    tree: &mut Value,
    sources: &mut BTreeMap<String, Source>,
    env: &BTreeMap<String, String>,
    var: &str,
    path: &str,
    problems: &mut Vec<ConfigProblem>,
) {
    if let Some(raw) = env.get(var) {
        set_path(tree, path, env_value(path, raw));
        sources.insert(path.to_string(), Source::Env(var.to_string()));
    }
    let file_var = format!("{var}_FILE");
    let Some(file) = env.get(&file_var).filter(|_| SECRET_PATHS.contains(&path)) else {
        return;
    };
    if env.contains_key(var) {
        let message = format!("both {var} and {file_var} are set; use one");
        problems.push(env_problem(path, &file_var, message));
        return;
    }
    match read_secret_file(&file_var, Path::new(file)) {
        Ok(value) => {
            set_path(tree, path, Value::String(value));
            sources.insert(
                path.to_string(),
                Source::EnvFile {
                    var: file_var,
                    path: file.into(),
                },
            );
        }
        Err(err) => problems.push(env_problem(path, &file_var, err.to_string())),
    }
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

#[cfg(test)]
mod tests {
    use super::super::model::BlobBackend;
    use super::*;

    /// The pairs, over a database URL (every configuration needs one).
    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        std::iter::once(&("DATABASE_URL", "sqlite://test.db"))
            .chain(pairs)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The problems of a refused configuration, as `key (source): message` lines.
    fn problems(result: Result<LoadedConfig, ConfigError>) -> Vec<String> {
        match result {
            Err(ConfigError::Many(list)) => list.iter().map(ToString::to_string).collect(),
            other => panic!("expected problems, got {other:?}"),
        }
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
        let found = problems(load_from(None, &env(&[("JWT_SECRET_FILE", &path)])));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("auth.jwt.secret (env JWT_SECRET_FILE): ")
                && found[0].contains("readable by group or others"),
            "{found:?}"
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
        let found = problems(open);
        assert!(
            found.len() == 1 && found[0].contains("readable by group or others"),
            "{found:?}"
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
                matches!(with(&extra), Err(ConfigError::Many(_))),
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
            let found = problems(load_from(
                None,
                &env(&[("JWT_SECRET", SECRET), (&var, value)]),
            ));
            let expected = format!("auth.login.{} (env {var}): ", key.to_ascii_lowercase());
            assert!(
                found.len() == 1 && found[0].starts_with(&expected),
                "{var}: {found:?}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let loaded = load_from(None, &env(&[("JWT_SECRET", SECRET)])).unwrap();
        assert!(!format!("{:?}", loaded.config).contains(SECRET));
    }
}
