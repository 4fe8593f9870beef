//! `mftplus cloud rotate-jwt` against a running cloud (issue 14, key rotation): a client keeps
//! using a token signed by the old secret throughout, the running cloud switches to the new one
//! without a restart, a rotation too soon is refused and changes nothing, and a forced one ends
//! the oldest key's sessions only.

mod cloud_process;

use base64::Engine;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIRST_SECRET: &str = "the-first-signing-secret-of-this-test-0123456789";
const PASSWORD: &str = "a sufficiently long password";
const ADMIN: &str = "root@example.com";

struct Deployment {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Deployment {
    fn new() -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("server.yaml");
        std::fs::write(
            &config,
            "server:\n  listen: 127.0.0.1:0\n  metrics_listen: 127.0.0.1:0\n",
        )
        .unwrap();
        private(&dir.path().join("jwt-secret"), &format!("{FIRST_SECRET}\n"));
        // Empty: no previous secret yet.
        private(&dir.path().join("jwt-previous-secret"), "");
        private(&dir.path().join("admin-password"), &format!("{PASSWORD}\n"));
        Deployment { dir, config }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mftplus"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("JWT_SECRET_FILE", self.path("jwt-secret"))
            .env("JWT_PREVIOUS_SECRET_FILE", self.path("jwt-previous-secret"))
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", self.path("cloud.db").display()),
            )
            .env("MFTPLUS_LOG_FORMAT", "json")
            .arg("cloud")
            .arg("--config")
            .arg(&self.config)
            .args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Starts `mftplus cloud` and returns it with its API address.
    fn start(&self) -> (Child, String) {
        cloud_process::start(self.command(&[]))
    }
}

fn private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr)
}

fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: Value = serde_json::from_slice(&bytes).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

async fn login(http: &reqwest::Client, api: &str) -> (String, String) {
    let pair: Value = http
        .post(format!("{api}/api/v1/auth/login"))
        .json(&json!({"email": ADMIN, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        pair["access_token"].as_str().unwrap().to_string(),
        pair["refresh_token"].as_str().unwrap().to_string(),
    )
}

async fn whoami(http: &reqwest::Client, api: &str, token: &str) -> u16 {
    http.get(format!("{api}/api/v1/auth/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Logs in until new tokens carry `expected` (the cloud reloads its key files every few s).
async fn wait_for_signing_kid(http: &reqwest::Client, api: &str, expected: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (access, _) = login(http, api).await;
        if kid(&access) == expected {
            return access;
        }
        assert!(
            Instant::now() < deadline,
            "the running cloud still signs with {}, not {expected}",
            kid(&access)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The kids a rotation printed: "key NEW signs … key OLD keeps verifying …".
fn printed_kids(output: &Output) -> (String, String) {
    let printed = text(output);
    let words: Vec<&str> = printed.split_whitespace().collect();
    let after = |marker: &str| {
        let at = words.iter().position(|w| *w == marker).unwrap();
        words[at + 1].to_string()
    };
    let new = after("key");
    let old = words
        .iter()
        .enumerate()
        .filter(|(_, w)| **w == "key")
        .nth(1)
        .map(|(at, _)| words[at + 1].to_string())
        .unwrap();
    (new, old)
}

#[tokio::test]
async fn rotating_the_jwt_secret_keeps_sessions_and_a_forced_one_ends_only_the_oldest() {
    let deployment = Deployment::new();
    let password_file = deployment.path("admin-password");
    let init = deployment.run(&[
        "init",
        "--admin-email",
        ADMIN,
        "--password-file",
        password_file.to_str().unwrap(),
    ]);
    assert!(init.status.success(), "{}", text(&init));
    let (mut cloud, api) = deployment.start();
    let http = reqwest::Client::new();
    let (first_access, first_refresh) = login(&http, &api).await;
    let first_kid = kid(&first_access);

    // A client using the first key's token, all through the rotation and its grace.
    let failures = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicBool::new(true));
    let client = tokio::spawn({
        let (http, api, token) = (http.clone(), api.clone(), first_access.clone());
        let (failures, calls, running) = (failures.clone(), calls.clone(), running.clone());
        async move {
            while running.load(Ordering::Relaxed) {
                if whoami(&http, &api, &token).await != 200 {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                calls.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    let rotated = deployment.run(&["rotate-jwt"]);
    assert!(rotated.status.success(), "{}", text(&rotated));
    let (second_kid, printed_old) = printed_kids(&rotated);
    assert_eq!(printed_old, first_kid);
    assert_ne!(second_kid, first_kid);
    assert!(!text(&rotated).contains(FIRST_SECRET));
    for file in ["jwt-secret", "jwt-previous-secret"] {
        let mode = std::fs::metadata(deployment.path(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let second_access = wait_for_signing_kid(&http, &api, &second_kid).await;

    // The old credentials keep working: the access token, and its refresh token, which now
    // yields tokens of the new key.
    assert_eq!(whoami(&http, &api, &first_access).await, 200);
    let refreshed: Value = http
        .post(format!("{api}/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": first_refresh}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refreshed_access = refreshed["access_token"].as_str().expect("refreshed");
    assert_eq!(kid(refreshed_access), second_kid);

    // Too soon: refused with its own exit status, nothing changed.
    let before = std::fs::read(deployment.path("jwt-secret")).unwrap();
    let early = deployment.run(&["rotate-jwt"]);
    assert_eq!(early.status.code(), Some(3), "{}", text(&early));
    assert!(text(&early).contains("--force"), "{}", text(&early));
    assert_eq!(
        std::fs::read(deployment.path("jwt-secret")).unwrap(),
        before
    );

    running.store(false, Ordering::Relaxed);
    client.await.unwrap();
    assert!(calls.load(Ordering::Relaxed) > 10);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "the old key's token was refused during its grace"
    );

    // The audit log has the rotation, by key id.
    let audit: Value = http
        .get(format!("{api}/api/v1/audit?limit=1000"))
        .bearer_auth(&second_access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().expect("audit entries");
    let rotation = entries
        .iter()
        .find(|entry| entry["event"] == "jwt_key_rotated")
        .expect("the rotation is audited");
    assert_eq!(rotation["details"]["old_kid"], first_kid.as_str());
    assert_eq!(rotation["details"]["new_kid"], second_kid.as_str());

    // Forced: the first key is dropped (its token refused), the second still verifies.
    let forced = deployment.run(&["rotate-jwt", "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    let (third_kid, _) = printed_kids(&forced);
    wait_for_signing_kid(&http, &api, &third_kid).await;
    assert_eq!(whoami(&http, &api, &first_access).await, 401);
    assert_eq!(whoami(&http, &api, &second_access).await, 200);

    let _ = cloud.kill();
    let _ = cloud.wait();
}
