//! `mftplus cloud --check-config` is strict and complete (issue 14): every problem of a file at
//! once, each naming its key and where the value came from, and seed 001's own file, with its
//! `${JWT_SECRET}`, accepted.

use std::path::Path;
use std::process::Command;

const SECRET: &str = "a-test-secret-that-is-long-enough-0123456789";

/// Runs `mftplus cloud --check-config` with only `env` (and PATH) set, the CA and the payload
/// store in `dir`; returns (success, stdout, stderr).
fn check(dir: &Path, yaml: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let config = dir.join("server.yaml");
    std::fs::write(&config, yaml).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mftplus"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "MFTPLUS__CERTIFICATES__AUTHORITY__DIR",
            dir.join("ca").display().to_string(),
        )
        .env(
            "MFTPLUS__TRANSFERS__BLOB_PATH",
            dir.join("blobs").display().to_string(),
        )
        .args(["cloud", "--config"])
        .arg(&config)
        .arg("--check-config");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn five_mistakes_are_five_errors_each_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "\
auth:
  jwt:
    secret: ${JWT_SECRET}
    issuer: ${MFTPLUS_TEST_ISSUER}
    expiraton: 1800
encryption:
  algorithm: AES-128-CBC
rbac:
  roles:
    operator:
      permissions: [\"transfers:*\", \"transfers:retry\"]
";
    // No DATABASE_URL: the fifth mistake.
    let (ok, stdout, stderr) = check(dir.path(), yaml, &[("JWT_SECRET", SECRET)]);
    assert!(!ok, "accepted: {stdout}{stderr}");
    assert!(!stdout.contains("configuration OK"), "{stdout}");
    assert!(
        stderr.contains("invalid configuration, 5 problems:"),
        "{stderr}"
    );
    let file = format!("file {}", dir.path().join("server.yaml").display());
    let lines: Vec<&str> = stderr
        .lines()
        .filter_map(|line| line.strip_prefix("  "))
        .collect();
    let expected = [
        format!("auth.jwt.issuer ({file}): ${{MFTPLUS_TEST_ISSUER}} is not set"),
        format!("auth.jwt.expiraton ({file}): unknown key (did you mean `expiration`?)"),
        "database.url (default): not set: set DATABASE_URL".to_string(),
        format!("encryption.algorithm ({file}): \"AES-128-CBC\" is not implemented; use one of AES-256-GCM, ChaCha20-Poly1305"),
        format!("rbac.roles.operator.permissions[1] ({file}): role \"operator\" grants \"transfers:retry\", which is no permission"),
    ];
    assert_eq!(lines.len(), expected.len(), "{stderr}");
    for start in &expected {
        assert!(
            lines.iter().any(|line| line.starts_with(start.as_str())),
            "{start:?} not in:\n{stderr}"
        );
    }
    assert!(!stderr.contains(SECRET), "the secret was printed: {stderr}");

    // Fixed one by one, the count goes down; all fixed, the check passes.
    let fixed = yaml
        .replace("    expiraton: 1800\n", "")
        .replace("AES-128-CBC", "ChaCha20-Poly1305")
        .replace(", \"transfers:retry\"", "");
    let (ok, _, stderr) = check(
        dir.path(),
        &fixed,
        &[("JWT_SECRET", SECRET), ("MFTPLUS_TEST_ISSUER", "acme")],
    );
    assert!(!ok);
    assert!(
        stderr.contains("invalid configuration, 1 problem:\n  database.url (default): not set"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = check(
        dir.path(),
        &fixed,
        &[
            ("JWT_SECRET", SECRET),
            ("MFTPLUS_TEST_ISSUER", "acme"),
            ("DATABASE_URL", "sqlite:///nonexistent/x.db"),
        ],
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("configuration OK"), "{stdout}");
}

#[test]
fn the_seed_001_file_passes_with_its_variables_set() {
    let dir = tempfile::tempdir().unwrap();
    // Seed 001's server-side blocks as the seed writes them (HS256: RS256 needs key files).
    let seed = "\
auth:
  jwt:
    secret: ${JWT_SECRET} # Load from environment variable
    issuer: mftplus-server
    audience: mftplus-api
    expiration: 3600 # 1 hour in seconds
    refresh_expiration: 604800 # 7 days in seconds
    algorithm: HS256
    rotation_enabled: true
    rotation_threshold: 300 # Rotate 5 minutes before expiry
api_keys:
  enabled: true
  hash_algorithm: sha256
  min_length: 32
  rotation_required_days: 90
  prefix: \"mftpk_\" # Keys start with this prefix
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
    nonce_size: 12 # 96-bit nonce for GCM
    tag_size: 16 # 128-bit authentication tag
rbac:
  enabled: true
  default_role: user
  admin_users:
    - admin@example.com
    - security@example.com
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
";
    let database = format!("sqlite://{}", dir.path().join("cloud.db").display());
    let (ok, stdout, stderr) = check(
        dir.path(),
        seed,
        &[("JWT_SECRET", SECRET), ("DATABASE_URL", &database)],
    );
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("configuration OK"), "{stdout}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));

    // Without the variable, the file's reference is the problem, named with its variable.
    let (ok, _, stderr) = check(dir.path(), seed, &[("DATABASE_URL", &database)]);
    assert!(!ok);
    assert!(
        stderr.contains("invalid configuration, 1 problem:\n  auth.jwt.secret (file ")
            && stderr.contains("${JWT_SECRET} is not set in the environment"),
        "{stderr}"
    );
}
