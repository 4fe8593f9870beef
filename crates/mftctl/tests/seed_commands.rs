//! Every `mftctl` command of seed 001, typed exactly as the seed shows it, run as the real binary
//! against a real cloud on 127.0.0.1:0. Each test has its own cloud, database and HOME.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mftplus_cloud::testing::{TestCloud, TestOptions, TEST_JWT_SECRET};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mftctl");

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    #[track_caller]
    fn fails_with(self, code: &str) -> Run {
        assert_eq!(self.code, 1, "expected exit 1: {self:#?}");
        let line = self.stderr.trim_end();
        assert!(line.starts_with("error: "), "{self:#?}");
        assert!(
            line.ends_with(&format!("({code})")),
            "expected ({code}): {self:#?}"
        );
        assert_eq!(line.lines().count(), 1, "one line on stderr: {self:#?}");
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

/// A user's shell: its own HOME, MFTPLUS_SERVER pointing at the cloud, nothing else inherited
/// from MFTPLUS_*.
struct Shell {
    home: tempfile::TempDir,
    server: String,
    env: Vec<(String, String)>,
}

impl Shell {
    fn new(cloud: &TestCloud) -> Shell {
        Shell {
            home: tempfile::tempdir().unwrap(),
            server: cloud.url.clone(),
            env: Vec::new(),
        }
    }

    fn with_env(mut self, name: &str, value: &str) -> Shell {
        self.env.push((name.into(), value.into()));
        self
    }

    fn config_path(&self) -> PathBuf {
        self.home.path().join(".config/mftplus/config.yaml")
    }

    fn config(&self) -> serde_yaml::Value {
        let text = std::fs::read_to_string(self.config_path()).unwrap();
        serde_yaml::from_str(&text).unwrap()
    }

    fn config_str(&self, key: &str) -> Option<String> {
        self.config()
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    /// Runs a line as typed in a shell; the leading `mftctl` is the binary.
    async fn line(&self, line: &str) -> Run {
        self.line_with_stdin(line, None).await
    }

    async fn line_with_stdin(&self, line: &str, stdin: Option<&str>) -> Run {
        let words = shell_words(line);
        assert_eq!(words[0], "mftctl", "{line}");
        let args: Vec<String> = words[1..].to_vec();
        self.args(args, stdin).await
    }

    async fn args(&self, args: Vec<String>, stdin: Option<&str>) -> Run {
        let mut command = Command::new(BIN);
        command
            .args(&args)
            .env("HOME", self.home.path())
            .env("MFTPLUS_SERVER", &self.server)
            .env_remove("MFTPLUS_API_KEY")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let stdin = stdin.map(str::to_string);
        // The cloud runs on this test's runtime; waiting for the child must not block it.
        tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("mftctl starts");
            if let Some(text) = stdin {
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(text.as_bytes())
                    .unwrap();
            }
            let output = child.wait_with_output().unwrap();
            Run {
                code: output.status.code().unwrap_or(-1),
                stdout: String::from_utf8(output.stdout).unwrap(),
                stderr: String::from_utf8(output.stderr).unwrap(),
            }
        })
        .await
        .unwrap()
    }
}

/// Splits like a POSIX shell for the double quotes the seed uses.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut in_word) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            ' ' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            other => {
                current.push(other);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn login_status_config_and_logout() {
    let cloud = TestCloud::spawn().await;
    let shell = Shell::new(&cloud);

    let wrong = shell
        .line_with_stdin(
            "mftctl login --email admin@example.com --password-stdin",
            Some("not-the-password\n"),
        )
        .await;
    wrong.fails_with("invalid_credentials");

    let login = shell
        .line_with_stdin(
            "mftctl login --email admin@example.com --password-stdin",
            Some(&format!("{}\n", cloud.admin_password)),
        )
        .await
        .ok();
    assert!(
        login
            .stdout
            .contains("logged in: admin@example.com (role admin)"),
        "{login:#?}"
    );
    assert_eq!(mode_of(&shell.config_path()), 0o600);
    assert_eq!(mode_of(shell.config_path().parent().unwrap()), 0o700);
    let stored = std::fs::read_to_string(shell.config_path()).unwrap();
    assert!(stored.contains("access_token:"), "{stored}");
    assert!(!stored.contains(&cloud.admin_password));
    assert!(!login.stdout.contains("eyJ") && !login.stderr.contains("eyJ"));

    let status = shell.line("mftctl status").await.ok();
    assert!(
        status.stdout.contains("signed in as  admin@example.com"),
        "{status:#?}"
    );
    assert!(status.stdout.contains("role          admin"), "{status:#?}");
    assert!(
        status.stdout.contains("database      sqlite (ok)"),
        "{status:#?}"
    );
    let status = shell.line("mftctl status --json").await.ok().json();
    assert_eq!(status["principal"]["email"], "admin@example.com");

    let rbac = shell.line("mftctl config get rbac.enabled").await.ok();
    assert_eq!(rbac.stdout, "true\n");
    shell
        .line("mftctl config get encryption.enabled")
        .await
        .ok();
    let secret = shell.line("mftctl config get auth.jwt.secret").await.ok();
    assert_eq!(secret.stdout, "set (from env JWT_SECRET)\n");
    let secret = shell
        .line("mftctl --json config get auth.jwt.secret")
        .await
        .ok();
    assert!(!secret.stdout.contains(TEST_JWT_SECRET));
    assert_eq!(secret.json()["value"], Value::Null);
    shell
        .line("mftctl config get no.such.key")
        .await
        .fails_with("not_found");

    shell.line("mftctl logout").await.ok();
    assert_eq!(shell.config_str("access_token"), None);
    assert_eq!(shell.config_str("refresh_token"), None);
    assert_eq!(
        shell.config_str("email").as_deref(),
        Some("admin@example.com")
    );
    let after = shell
        .line("mftctl status")
        .await
        .fails_with("unauthenticated");
    assert!(after.stderr.contains("mftctl login"), "{after:#?}");
}

#[tokio::test]
async fn session_is_renewed_then_refreshed() {
    let cloud = TestCloud::spawn().await;
    let shell = Shell::new(&cloud);
    shell
        .line_with_stdin(
            "mftctl login --email admin@example.com --password-stdin",
            Some(&cloud.admin_password),
        )
        .await
        .ok();
    let first = shell.config_str("access_token").unwrap();
    let refresh = shell.config_str("refresh_token").unwrap();

    // Within the rotation threshold: the server renews on use and mftctl keeps the new token.
    cloud.clock.advance_secs(3600 - 200);
    shell.line("mftctl status").await.ok();
    let renewed = shell.config_str("access_token").unwrap();
    assert_ne!(renewed, first);
    assert_eq!(shell.config_str("refresh_token").unwrap(), refresh);

    // Past expiry: one transparent refresh, and the new pair is saved.
    cloud.clock.advance_secs(2 * 3600);
    let status = shell.line("mftctl status").await.ok();
    assert!(status.stdout.contains("admin@example.com"));
    assert_ne!(shell.config_str("access_token").unwrap(), renewed);
    assert_ne!(shell.config_str("refresh_token").unwrap(), refresh);
    shell.line("mftctl users list").await.ok();

    // Past the refresh token too: a clear request to log in again.
    cloud.clock.advance_secs(8 * 86_400);
    let expired = shell.line("mftctl status").await;
    assert_eq!(expired.code, 1, "{expired:#?}");
    assert!(expired.stderr.contains("mftctl login"), "{expired:#?}");
}

#[tokio::test]
async fn users_seed_commands() {
    let cloud = TestCloud::spawn().await;
    let shell = Shell::new(&cloud);
    let saved = shell
        .args(
            vec![
                "login".into(),
                "--api-key".into(),
                cloud.admin_api_key.clone(),
            ],
            None,
        )
        .await
        .ok();
    assert!(saved
        .stdout
        .contains("API key saved: admin@example.com (role admin)"));
    assert!(!saved.stdout.contains(&cloud.admin_api_key));
    assert_eq!(shell.config_str("api_key").unwrap(), cloud.admin_api_key);

    let created = shell
        .line("mftctl users create --email user@example.com --name \"John Doe\" --role user")
        .await
        .ok();
    assert!(created.stdout.contains("John Doe"), "{created:#?}");
    assert!(
        created.stdout.contains("initial password: "),
        "{created:#?}"
    );
    assert!(created.stderr.contains("shown only once"), "{created:#?}");

    let promoted = shell
        .line("mftctl users update user@example.com --role admin")
        .await
        .ok();
    assert!(
        promoted.stdout.contains("role        admin"),
        "{promoted:#?}"
    );

    let list = shell.line("mftctl users list").await.ok();
    assert!(list.stdout.starts_with("EMAIL"), "{list:#?}");
    assert!(list.stdout.contains("user@example.com"));
    assert!(list.stdout.contains("admin@example.com"));
    let list = shell.line("mftctl users list --json").await.ok().json();
    assert_eq!(list.as_array().unwrap().len(), 2);

    let service = shell
        .line(
            "mftctl users create --email backup-service@example.com --role readonly --type service",
        )
        .await
        .ok();
    assert!(
        service.stdout.contains("type        service"),
        "{service:#?}"
    );
    assert!(!service.stdout.contains("initial password"), "{service:#?}");

    let get = shell.line("mftctl users get user@example.com").await.ok();
    assert!(
        get.stdout.contains("email       user@example.com"),
        "{get:#?}"
    );
    shell
        .line("mftctl users update user@example.com --role operator")
        .await
        .ok();
    let get = shell
        .line("mftctl --json users get user@example.com")
        .await
        .ok();
    assert_eq!(get.json()["role"], "operator");

    // A password set from stdin works for logging in, from another shell.
    let password = "correct-horse-battery-staple-42";
    shell
        .line_with_stdin(
            "mftctl users update user@example.com --password-stdin",
            Some(password),
        )
        .await
        .ok();
    let other = Shell::new(&cloud);
    other
        .line_with_stdin(
            "mftctl login --email user@example.com --password-stdin",
            Some(password),
        )
        .await
        .ok();
    let whoami = other.line("mftctl status --json").await.ok().json();
    assert_eq!(whoami["principal"]["role"], "operator");

    shell
        .line("mftctl users delete user@example.com")
        .await
        .ok();
    shell
        .line("mftctl users get user@example.com")
        .await
        .fails_with("not_found");
    shell
        .line("mftctl users create --email not-an-email")
        .await
        .fails_with("invalid_email");
}

#[tokio::test]
async fn apikeys_seed_commands() {
    let cloud = TestCloud::spawn().await;
    let shell = Shell::new(&cloud).with_env("MFTPLUS_API_KEY", &cloud.admin_api_key);

    let created = shell
        .line(
            "mftctl apikeys create --name \"Service Account - Backup\" --role readonly --expires 90d",
        )
        .await
        .ok();
    let key = created.stdout.trim_end().to_string();
    assert_eq!(created.stdout, format!("{key}\n"), "only the key on stdout");
    assert!(key.starts_with("mftpk_"), "{created:#?}");
    assert!(created.stderr.contains("shown only once"), "{created:#?}");

    let list = shell.line("mftctl apikeys list").await.ok();
    assert!(
        list.stdout.contains("Service Account - Backup"),
        "{list:#?}"
    );
    assert!(!list.stdout.contains(&key));
    let get = shell.line(&format!("mftctl apikeys get {key}")).await.ok();
    assert!(get.stdout.contains("role       readonly"), "{get:#?}");
    assert!(!get.stdout.contains(&key));

    // The seed's own form: --api-key wins over MFTPLUS_API_KEY.
    let status = shell
        .line(&format!("mftctl --api-key {key} status"))
        .await
        .ok();
    assert!(
        status.stdout.contains("role          readonly"),
        "{status:#?}"
    );
    let denied = shell
        .line(&format!(
            "mftctl --api-key {key} users create --email x@example.com --name X --role user"
        ))
        .await
        .fails_with("forbidden");
    assert!(denied.stderr.contains("readonly"), "{denied:#?}");

    let rotated = shell
        .line(&format!("mftctl apikeys rotate {key}"))
        .await
        .ok();
    let new_key = rotated.stdout.trim_end().to_string();
    assert!(
        new_key.starts_with("mftpk_") && new_key != key,
        "{rotated:#?}"
    );
    shell
        .line(&format!("mftctl --api-key {key} status"))
        .await
        .fails_with("token_revoked");
    shell
        .line(&format!("mftctl --api-key {new_key} status"))
        .await
        .ok();

    shell
        .line(&format!("mftctl apikeys delete {new_key}"))
        .await
        .ok();
    let dead = shell
        .line(&format!("mftctl --api-key {new_key} status"))
        .await;
    assert_eq!(dead.code, 1, "{dead:#?}");

    let bad = shell
        .line("mftctl apikeys create --name x --role readonly --expires 90x")
        .await
        .fails_with("invalid_duration");
    assert!(bad.stderr.contains("\"90x\""), "{bad:#?}");
    shell
        .line("mftctl apikeys get mftpk_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6")
        .await
        .fails_with("not_found");
}

#[tokio::test]
async fn token_seed_commands() {
    let cloud = TestCloud::spawn().await;
    let shell = Shell::new(&cloud).with_env("MFTPLUS_API_KEY", &cloud.admin_api_key);

    let plain = shell
        .line("mftctl auth token create --user admin@example.com --role admin")
        .await
        .ok();
    let token = plain.stdout.trim_end().to_string();
    assert_eq!(token.split('.').count(), 3, "{plain:#?}");
    assert!(plain.stderr.contains("shown only once"), "{plain:#?}");

    let created = shell
        .line("mftctl --json auth token create --user admin@example.com --expires 1h")
        .await
        .ok()
        .json();
    let token_id = created["info"]["token_id"].as_str().unwrap().to_string();

    // The token works as a stored session.
    let session = Shell::new(&cloud);
    std::fs::create_dir_all(session.config_path().parent().unwrap()).unwrap();
    std::fs::write(
        session.config_path(),
        format!("access_token: {}\n", created["token"].as_str().unwrap()),
    )
    .unwrap();
    std::fs::set_permissions(
        session.config_path(),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    session.line("mftctl status").await.ok();

    let list = shell
        .line("mftctl auth token list --user admin@example.com")
        .await
        .ok();
    assert!(list.stdout.contains(&token_id), "{list:#?}");
    assert!(
        !list.stdout.contains(&token),
        "a listing never shows a token"
    );

    shell
        .line(&format!("mftctl auth token revoke --token-id {token_id}"))
        .await
        .ok();
    session
        .line("mftctl status")
        .await
        .fails_with("token_revoked");
    shell
        .line("mftctl auth token revoke --token-id abc123")
        .await
        .fails_with("not_found");

    let all = shell
        .line("mftctl auth token revoke --user admin@example.com --all")
        .await
        .ok();
    assert!(all.stdout.starts_with("revoked "), "{all:#?}");
    let usage = shell
        .line("mftctl auth token revoke --user admin@example.com")
        .await;
    assert_eq!(usage.code, 2, "{usage:#?}");
    assert!(usage.stderr.contains("--all"), "{usage:#?}");

    shell
        .line("mftctl auth token create --user user@example.com")
        .await
        .fails_with("not_found");
}

#[tokio::test]
async fn audit_verify_export_and_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cloud.db");
    let cloud = TestCloud::spawn_with(TestOptions {
        database_url: Some(format!("sqlite://{}", db.display())),
        ..TestOptions::default()
    })
    .await;
    let shell = Shell::new(&cloud).with_env("MFTPLUS_API_KEY", &cloud.admin_api_key);
    shell
        .line("mftctl users create --email user@example.com --name \"John Doe\" --role user")
        .await
        .ok();
    shell
        .line("mftctl users update user@example.com --role admin")
        .await
        .ok();

    let verify = shell.line("mftctl audit verify").await.ok();
    assert!(
        verify.stdout.starts_with("audit log intact: "),
        "{verify:#?}"
    );
    assert!(verify.stdout.contains("entries (seq 1.."), "{verify:#?}");
    assert!(verify.stdout.contains(", head "), "{verify:#?}");

    let out = dir.path().join("audit.csv");
    shell
        .args(
            vec![
                "audit".into(),
                "export".into(),
                "--format".into(),
                "csv".into(),
                "--output".into(),
                out.display().to_string(),
            ],
            None,
        )
        .await
        .ok();
    assert_eq!(mode_of(&out), 0o600);
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("user@example.com"));
    shell
        .line("mftctl audit export --format json")
        .await
        .ok()
        .json();

    // Someone with write access to the database rewrites history.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.execute_batch(
        "DROP TRIGGER IF EXISTS audit_log_no_update;
         UPDATE audit_log SET actor = 'mallory@example.com' WHERE seq = 2;",
    )
    .unwrap();
    drop(conn);

    let tampered = shell.line("mftctl audit verify").await;
    assert_eq!(tampered.code, 1, "{tampered:#?}");
    assert!(
        tampered
            .stderr
            .starts_with("audit log TAMPERED at entry #2: "),
        "{tampered:#?}"
    );
}
