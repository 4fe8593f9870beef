//! A real cloud on port 0 for integration tests: fresh database, known admin credentials, an
//! adjustable clock. Other crates use it through the `testing` feature.

use crate::clock::OffsetClock;
use crate::server::Cloud;
use crate::state::AppState;
use std::collections::BTreeMap;
use std::sync::Arc;

/// HS256 secret of every TestCloud, so tests can forge tokens (expired, wrong audience…).
pub const TEST_JWT_SECRET: &str = "test-secret-for-integration-tests-only-0123456789";

pub struct TestOptions {
    /// `None`: a fresh SQLite file in a temporary folder.
    pub database_url: Option<String>,
    /// Extra YAML merged into the server config.
    pub config_yaml: String,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            database_url: None,
            config_yaml: "rate_limit:\n  per_credential_per_minute: 100000\n  per_address_per_minute: 100000\n".into(),
        }
    }
}

pub struct TestCloud {
    pub url: String,
    pub admin_email: String,
    /// Empty when the database already had the admin (a reused `database_url`).
    pub admin_password: String,
    pub admin_api_key: String,
    pub state: AppState,
    pub clock: Arc<OffsetClock>,
    /// OpenSSH private key (0600) of the operator key this cloud pins.
    pub operator_key: std::path::PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestCloud {
    pub async fn spawn() -> TestCloud {
        TestCloud::spawn_with(TestOptions::default()).await
    }

    pub async fn spawn_with(options: TestOptions) -> TestCloud {
        TestCloud::spawn_on(options, None).await
    }

    /// Same as `spawn_with`, serving on `listener` when given: a test that stops a cloud and
    /// starts another on the same database binds the old address again, so clients that kept
    /// the URL (an edge hub) find it back.
    pub async fn spawn_on(
        options: TestOptions,
        listener: Option<tokio::net::TcpListener>,
    ) -> TestCloud {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("server.yaml");
        std::fs::write(&config_path, &options.config_yaml).expect("write test config");
        let database_url = options
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("cloud.db").display()));
        // An operator signing key made by the real ssh-keygen, pinned on this cloud, so fleet
        // tests can sign ops the way an operator does.
        let operator_key = dir.path().join("operator_ed25519");
        let keygen = std::process::Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "operator@example.com",
                "-f",
            ])
            .arg(&operator_key)
            .status()
            .expect("ssh-keygen runs");
        assert!(keygen.success(), "ssh-keygen failed");
        let public = std::fs::read_to_string(operator_key.with_extension("pub")).expect("pub key");
        let signers = dir.path().join("allowed_signers");
        std::fs::write(
            &signers,
            format!("operator@example.com namespaces=\"mftplus-op-v1\" {public}"),
        )
        .expect("allowed_signers");
        let env = BTreeMap::from([
            (
                "MFTPLUS__FLEET__OPERATOR_KEYS_FILE".to_string(),
                signers.display().to_string(),
            ),
            ("DATABASE_URL".to_string(), database_url),
            ("JWT_SECRET".to_string(), TEST_JWT_SECRET.to_string()),
            (
                "MFTPLUS__TRANSFERS__BLOB_PATH".to_string(),
                dir.path().join("blobs").display().to_string(),
            ),
            (
                "MFTPLUS__CERTIFICATES__AUTHORITY__DIR".to_string(),
                dir.path().join("ca").display().to_string(),
            ),
        ]);
        let config = crate::config::load_from(Some(&config_path), &env).expect("test config loads");
        let clock = Arc::new(OffsetClock::default());
        let cloud = Cloud::build(config, clock.clone())
            .await
            .expect("cloud builds");
        let (admin, password) = cloud
            .ensure_admin("admin@example.com")
            .await
            .expect("admin");
        let admin_api_key = cloud
            .mint_api_key(&admin, "test admin", "admin", 10 * 365 * 86_400)
            .await
            .expect("key");
        let state = cloud.state().clone();
        let listener = match listener {
            Some(listener) => listener,
            None => tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        };
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let _ = cloud
                .serve(listener, None, async move {
                    let _ = rx.await;
                })
                .await;
        });
        TestCloud {
            url,
            admin_email: admin.email,
            admin_password: password.unwrap_or_default(),
            admin_api_key,
            state,
            clock,
            operator_key,
            shutdown: Some(tx),
            handle: Some(handle),
            _dir: dir,
        }
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

impl Drop for TestCloud {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
