//! What the backup and restore tests share: a deployment (config file, database, payload
//! folder, CA folder) driven through the real `mftplus` binary, a running cloud, and a client
//! that writes and records what the cloud acknowledged.

#![allow(dead_code)]

use base64::Engine;
use mftplus_client::{Client, Credential};
use mftplus_crypto::stream::{
    Encryptor, ManifestInfo, Recipient, SealedChunk, StreamOptions, X25519PublicKey, MIN_CHUNK_SIZE,
};
use mftplus_types::api::{CreateApiKeyRequest, CreateUserRequest, LoginRequest};
use mftplus_types::transfers::{CompleteTransferRequest, CreateTransferRequest};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const SECRET: &str = "a-backup-test-secret-that-is-long-enough-0123456789";
pub const ADMIN: &str = "admin@example.com";
pub const PASSWORD: &str = "a sufficiently long password";
/// Moto accepts any credentials; this one must never be printed either.
pub const S3_SECRET: &str = "moto-accepts-any-secret-0123456789";

/// One deployment's files; the database is `db_url` (a SQLite file inside, or PostgreSQL).
pub struct Deployment {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub db_url: String,
    pub blobs: PathBuf,
    pub ca: PathBuf,
}

impl Deployment {
    /// `db_url` `None`: a SQLite file inside `dir`; payloads in a folder inside `dir`.
    pub fn new(dir: &Path, db_url: Option<&str>) -> Deployment {
        let blobs = dir.join("blobs");
        let transfers = format!("transfers:\n  blob_path: {}\n", blobs.display());
        Deployment::with_transfers(dir, db_url, &transfers)
    }

    /// Payloads in an S3 bucket (`endpoint`, e.g. moto's), under `prefix`.
    pub fn on_s3(dir: &Path, endpoint: &str, bucket: &str, prefix: &str) -> Deployment {
        let transfers = format!(
            "transfers:\n  blob_backend: s3\n  s3:\n    bucket: {bucket}\n    endpoint: {endpoint}\n    \
             prefix: {prefix}\n    access_key_id: mftplus-test-key\n    \
             secret_access_key: {S3_SECRET}\n    allow_http: true\n"
        );
        Deployment::with_transfers(dir, None, &transfers)
    }

    fn with_transfers(dir: &Path, db_url: Option<&str>, transfers: &str) -> Deployment {
        std::fs::create_dir_all(dir).unwrap();
        let blobs = dir.join("blobs");
        let ca = dir.join("ca");
        let config = dir.join("server.yaml");
        std::fs::write(
            &config,
            format!(
                "server:\n  listen: 127.0.0.1:0\n  metrics_listen: 127.0.0.1:0\nrate_limit:\n  enabled: false\n{transfers}certificates:\n  authority:\n    dir: {}\n",
                ca.display()
            ),
        )
        .unwrap();
        let db_url = db_url.map_or_else(
            || format!("sqlite://{}", dir.join("cloud.db").display()),
            str::to_string,
        );
        Deployment {
            dir: dir.to_path_buf(),
            config,
            db_url,
            blobs,
            ca,
        }
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mftplus"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("JWT_SECRET", SECRET)
            .env("DATABASE_URL", &self.db_url)
            .current_dir(&self.dir);
        command
    }

    /// `mftplus cloud init` with the test administrator.
    pub fn init_admin(&self) {
        let file = self.dir.join("admin-password");
        std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let output = self
            .command()
            .args(["cloud", "init", "--config"])
            .arg(&self.config)
            .args(["--admin-email", ADMIN, "--password-file"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
    }

    /// `mftplus admin ARGS… --config <this deployment's>`, on a blocking thread.
    pub async fn admin(&self, args: &[&str]) -> Output {
        let mut command = self.command();
        command
            .arg("admin")
            .args(args)
            .arg("--config")
            .arg(&self.config);
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    /// Starts `mftplus cloud` and waits until it says where it listens.
    pub fn start(&self) -> RunningCloud {
        let mut child = self
            .command()
            .args(["cloud", "--config"])
            .arg(&self.config)
            .env("MFTPLUS_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = log.clone();
        // Reads to the end, so the pipe never fills while the cloud runs.
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) {
                    if event["fields"]["message"] == "mftplus cloud listening" {
                        if let Some(api) = event["fields"]["api"].as_str() {
                            let _ = tx.send(api.to_string());
                        }
                    }
                }
                kept.lock().unwrap().push(line);
            }
        });
        let Ok(api) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!(
                "the cloud did not announce its address:\n{}",
                log.lock().unwrap().join("\n")
            );
        };
        RunningCloud {
            child,
            url: format!("http://{api}"),
        }
    }
}

pub fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr)
}

pub struct RunningCloud {
    child: Child,
    pub url: String,
}

impl RunningCloud {
    /// SIGTERM, then wait for the drain (bounded: killed after 20 s).
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..200 {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn admin_client(&self) -> Client {
        let anonymous = Client::new(&self.url, Credential::None).unwrap();
        let tokens = anonymous
            .login(LoginRequest {
                email: ADMIN.into(),
                password: PASSWORD.into(),
            })
            .await
            .expect("the administrator signs in");
        anonymous.with_credential(Credential::Bearer(tokens.access_token))
    }
}

impl Drop for RunningCloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sealed stream: what was encrypted, and the ciphertext the cloud stores.
pub struct Sealed {
    pub data: Vec<u8>,
    pub header: Vec<u8>,
    pub chunks: Vec<SealedChunk>,
    pub manifest: Vec<u8>,
}

pub fn seal(data: Vec<u8>, to: &X25519PublicKey) -> Sealed {
    let options = StreamOptions {
        chunk_size: MIN_CHUNK_SIZE,
        ..StreamOptions::default()
    };
    let mut encryptor = Encryptor::new(&options, &[Recipient::X25519(*to)]).unwrap();
    let header = encryptor.header_bytes().to_vec();
    let mut chunks = encryptor.push(&data).unwrap();
    let trailer = encryptor
        .finish(ManifestInfo {
            name: "drill.bin".into(),
            mode: Some(0o600),
        })
        .unwrap();
    chunks.push(trailer.last_chunk);
    Sealed {
        data,
        header,
        chunks,
        manifest: trailer.sealed_manifest,
    }
}

/// A write the cloud acknowledged.
pub enum Ack {
    User(String),
    /// The key's id and its secret.
    ApiKey(String, String),
    /// A completed transfer, with what was sealed.
    Transfer(String, Arc<Sealed>),
}

/// Uploads a whole transfer to `recipient`; returns its id once completed.
pub async fn send(client: &Client, recipient: &str, sealed: &Sealed) -> Result<String, String> {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let created = client
        .create_transfer(CreateTransferRequest {
            recipients: vec![recipient.to_string()],
            header: b64(&sealed.header),
            chunk_size: MIN_CHUNK_SIZE as u64,
            expires: None,
            awaiting_grant: Vec::new(),
            id: None,
            whole: None,
        })
        .await
        .map_err(|e| e.to_string())?;
    for chunk in &sealed.chunks {
        let sha = hex::encode(Sha256::digest(&chunk.bytes));
        client
            .upload_chunk(
                &created.id,
                chunk.index,
                chunk.bytes.clone(),
                &sha,
                chunk.last,
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    client
        .complete_transfer(
            &created.id,
            CompleteTransferRequest {
                manifest: b64(&sealed.manifest),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(created.id)
}

/// Who writes what in [`write_load`].
pub struct Writer {
    pub client: Client,
    /// Transfers are sealed to this key.
    pub to: X25519PublicKey,
    /// Names this writer's API keys `drill key <task>-<round>`.
    pub task: u32,
    /// Users and transfers too, not only API keys.
    pub full: bool,
}

/// Writes until `stop`: an API key each round and, when `full`, a user every 4th round and a
/// whole transfer every 3rd. Every acknowledged write is pushed to `acks` after its answer;
/// any failure to `errors`.
pub async fn write_load(
    writer: Writer,
    acks: Arc<Mutex<Vec<Ack>>>,
    errors: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    let Writer {
        client,
        to,
        task,
        full,
    } = writer;
    let mut round = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let created = client
            .create_api_key(CreateApiKeyRequest {
                name: format!("drill key {task}-{round}"),
                role: None,
                expires: None,
            })
            .await;
        match created {
            Ok(key) => push(&acks, Ack::ApiKey(key.api_key.id, key.key)),
            Err(err) => push(&errors, format!("api key {task}-{round}: {err}")),
        }
        if full && round.is_multiple_of(4) {
            let email = format!("drill{task}-{round}@example.com");
            let user = client
                .create_user(CreateUserRequest {
                    email: email.clone(),
                    name: format!("Drill {round}"),
                    role: None,
                    user_type: None,
                    password: Some(format!("drill password number {round}")),
                })
                .await;
            match user {
                Ok(_) => push(&acks, Ack::User(email)),
                Err(err) => push(&errors, format!("user {round}: {err}")),
            }
        }
        if full && round.is_multiple_of(3) {
            let data: Vec<u8> = (0..(MIN_CHUNK_SIZE as u64 * 2 + 100 + round))
                .map(|i| (i * 7 + round) as u8)
                .collect();
            let sealed = Arc::new(seal(data, &to));
            match send(&client, ADMIN, &sealed).await {
                Ok(id) => push(&acks, Ack::Transfer(id, sealed)),
                Err(err) => push(&errors, format!("transfer {round}: {err}")),
            }
        }
        round += 1;
    }
}

fn push<T>(list: &Arc<Mutex<Vec<T>>>, item: T) {
    list.lock().unwrap().push(item);
}

/// The first chunk file under a payload folder.
pub fn first_chunk_file(root: &Path) -> Option<PathBuf> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir).ok()?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "chunk") {
                return Some(path);
            }
        }
    }
    None
}

/// Flips one byte in the middle of a file.
pub fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}
