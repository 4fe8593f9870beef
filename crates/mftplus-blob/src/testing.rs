//! A throwaway S3-compatible server for tests (feature `testing`): moto's server mode
//! (`moto_server`, from PyPI; `scripts/s3-test-setup.sh` installs it), started on 127.0.0.1
//! and a free port, with one bucket, killed when dropped.
//!
//! Without `moto_server` [`Moto::start`] panics, unless `MFTPLUS_SKIP_S3=1`, which makes it
//! return `None` after a loud line, so callers skip.

use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{S3BlobStore, S3Config};
use mftplus_base::Secret;

const READY_WITHIN: Duration = Duration::from_secs(30);
/// The bucket every [`Moto`] creates.
pub const BUCKET: &str = "mftplus-test";

/// A running `moto_server`; killed (and reaped) on drop, also when the test panics.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto and creates [`BUCKET`]; `None` (after a loud line) when
    /// `MFTPLUS_SKIP_S3=1`.
    pub async fn start() -> Option<Moto> {
        if std::env::var("MFTPLUS_SKIP_S3").as_deref() == Ok("1") {
            // Straight to stderr, past libtest's capture, so the skip shows in every run.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: S3 blob store tests (MFTPLUS_SKIP_S3=1); the S3 backend is UNTESTED"
            );
            return None;
        }
        // The port is free when we look and could be taken before moto binds it: then moto
        // exits at once and we try another.
        let mut last_log = String::new();
        for _ in 0..3 {
            let mut moto = Moto::spawn();
            match moto.create_bucket().await {
                Ok(()) => return Some(moto),
                Err(log) => last_log = log,
            }
        }
        panic!("moto_server did not start; its last output:\n{last_log}");
    }

    fn spawn() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("pick a free port")
            .port();
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("moto.log");
        let out = File::create(&log).unwrap();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start moto_server ({e}): run scripts/s3-test-setup.sh to install it, \
                     or set MFTPLUS_SKIP_S3=1 to skip the S3 tests"
                )
            });
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            _log_dir: log_dir,
        }
    }

    /// Polls until moto answers by creating the bucket; `Err(log)` if moto exits or stays
    /// silent for [`READY_WITHIN`].
    async fn create_bucket(&mut self) -> Result<(), String> {
        let client = reqwest::Client::new();
        let url = format!("{}/{BUCKET}", self.endpoint);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(response) = client.put(&url).send().await {
                let status = response.status();
                assert!(status.is_success(), "creating the bucket: {status}");
                return Ok(());
            }
            let exited = self.child.try_wait().unwrap().is_some();
            if exited || Instant::now() > deadline {
                return Err(std::fs::read_to_string(&self.log).unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Settings for `bucket` on this server with moto's accepted dummy credentials.
    pub fn config(&self, bucket: &str, prefix: &str) -> S3Config {
        S3Config {
            endpoint: Some(self.endpoint.clone()),
            bucket: bucket.into(),
            region: "us-east-1".into(),
            access_key_id: "mftplus-test-key".into(),
            secret_access_key: Secret::new("mftplus-test-secret"),
            prefix: prefix.into(),
            allow_http: true,
        }
    }

    /// A store on [`BUCKET`] under `prefix`.
    pub fn store(&self, prefix: &str) -> S3BlobStore {
        S3BlobStore::new(self.config(BUCKET, prefix)).unwrap()
    }
}
