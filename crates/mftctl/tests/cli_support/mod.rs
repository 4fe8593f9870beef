//! The real `mftctl` binary driven against a real cloud on 127.0.0.1:0, one HOME (and so one
//! key pair and one config file) per user. Shared by the CLI test files that drive the binary.

#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mftplus_cloud::testing::TestCloud;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_mftctl");
pub const PASSWORD: &str = "correct-horse-battery-staple-42";
/// No single CLI run in these tests should come near this; a hang fails instead of blocking CI.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    /// Exit 1 with one `error: … (<code>)` line on stderr.
    #[track_caller]
    pub fn fails_with(self, code: &str) -> Run {
        assert_eq!(self.code, 1, "expected exit 1: {self:#?}");
        let line = self.stderr.trim_end();
        assert!(line.starts_with("error: "), "{self:#?}");
        assert!(
            line.ends_with(&format!("({code})")),
            "expected ({code}): {self:#?}"
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

pub struct Shell {
    pub home: tempfile::TempDir,
    pub server: String,
    pub env: Vec<(String, String)>,
}

impl Shell {
    pub fn new(cloud: &TestCloud) -> Shell {
        Shell {
            home: tempfile::tempdir().unwrap(),
            server: cloud.url.clone(),
            env: Vec::new(),
        }
    }

    pub fn admin(cloud: &TestCloud) -> Shell {
        let mut shell = Shell::new(cloud);
        shell
            .env
            .push(("MFTPLUS_API_KEY".into(), cloud.admin_api_key.clone()));
        shell
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    pub fn key_path(&self) -> PathBuf {
        self.path(".config/mftplus/keys/x25519.key")
    }

    /// A fresh empty directory under HOME, for `receive --dir`.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    /// Whitespace-separated words; the leading `mftctl` is the binary. Runs in HOME.
    pub async fn line(&self, line: &str) -> Run {
        self.run(line, None).await
    }

    pub async fn run(&self, line: &str, stdin: Option<&str>) -> Run {
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        assert_eq!(words[0], "mftctl", "{line}");
        let mut command = Command::new(BIN);
        command
            .args(&words[1..])
            .current_dir(self.home.path())
            .env("HOME", self.home.path())
            .env_remove("XDG_STATE_HOME")
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
        let line = line.to_string();
        let task = tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("mftctl starts");
            if let Some(text) = stdin {
                // A command that fails before reading its input closes the pipe early.
                match child.stdin.take().unwrap().write_all(text.as_bytes()) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                    other => other.unwrap(),
                }
            }
            let output = child.wait_with_output().unwrap();
            Run {
                code: output.status.code().unwrap_or(-1),
                stdout: String::from_utf8(output.stdout).unwrap(),
                stderr: String::from_utf8(output.stderr).unwrap(),
            }
        });
        tokio::time::timeout(RUN_TIMEOUT, task)
            .await
            .unwrap_or_else(|_| panic!("`{line}` did not finish within {RUN_TIMEOUT:?}"))
            .unwrap()
    }
}

/// Creates the user with `role` and returns a shell in which they are logged in (which
/// creates and registers their key pair) when `login`.
pub async fn user(cloud: &TestCloud, admin: &Shell, email: &str, role: &str, login: bool) -> Shell {
    admin
        .run(
            &format!("mftctl users create --email {email} --role {role} --password-stdin"),
            Some(PASSWORD),
        )
        .await
        .ok();
    let shell = Shell::new(cloud);
    if login {
        let run = shell
            .run(
                &format!("mftctl login --email {email} --password-stdin"),
                Some(PASSWORD),
            )
            .await
            .ok();
        assert!(
            run.stderr.contains("created your encryption key pair"),
            "{run:#?}"
        );
        assert_eq!(mode_of(&shell.key_path()), 0o600);
        assert_eq!(mode_of(shell.key_path().parent().unwrap()), 0o700);
    }
    shell
}

pub fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Deterministic bytes that do not compress; `seed` makes two files differ.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every name in `dir`, hidden ones included, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The transfer id `send` prints alone on stdout.
#[track_caller]
pub fn send_id(run: &Run) -> String {
    let id = run.stdout.trim().to_string();
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{run:#?}"
    );
    id
}

/// A real edge hub on 127.0.0.1:0 in front of `cloud`, registered with a fresh deploy key
/// through the real phone-home protocol. Dropping it stops the hub.
pub struct HubInFront {
    pub url: String,
    pub hub_id: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for HubInFront {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn hub_in_front(cloud: &TestCloud) -> HubInFront {
    hub_in_front_with(cloud, None).await
}

/// [`hub_in_front`] with a data directory, so the hub keeps site-local transfers there, and
/// its site collector running every 200 ms.
pub async fn site_hub_in_front(cloud: &TestCloud, data_dir: &Path) -> HubInFront {
    hub_in_front_with(cloud, Some(data_dir)).await
}

async fn hub_in_front_with(cloud: &TestCloud, data_dir: Option<&Path>) -> HubInFront {
    let operator = mftplus_client::Client::new(
        &cloud.url,
        mftplus_client::Credential::ApiKey(cloud.admin_api_key.clone()),
    )
    .unwrap();
    let key = operator.create_deploy_key("site-a").await.unwrap().key;
    let cloud_api = format!("{}/api", cloud.url);
    let config = mftplus_hub::HubConfig::from_lookup(|name| match name {
        "CLOUD_API_URL" => Some(cloud_api.clone()),
        "HUB_REGISTRATION_KEY" => Some(key.clone()),
        "HUB_DATA_DIR" => data_dir.map(|dir| dir.display().to_string()),
        _ => None,
    })
    .unwrap();
    let mut timings = mftplus_hub::Timings::from_config(&config);
    timings.site_collect_every = Duration::from_millis(200);
    let hub =
        mftplus_hub::Hub::with_options(config, timings, mftplus_hub::Announcer::new(|_: &str| {}))
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hub.serve(listener, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    for _ in 0..200 {
        let diagnose: Value = match http.get(format!("{url}/hub/diagnose")).send().await {
            Ok(answer) => answer.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        };
        if diagnose["phoneHome"]["registered"] == true {
            return HubInFront {
                url,
                hub_id: diagnose["phoneHome"]["hubId"].as_str().unwrap().to_string(),
                stop: Some(stop),
            };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the hub did not register with the cloud within 5 s");
}

/// `len` bytes of [`noise`] written to `path`; their SHA-256.
pub fn make_file(path: &Path, len: usize, seed: u64) -> String {
    let data = noise(len, seed);
    std::fs::write(path, &data).unwrap();
    mftplus_crypto::sha256_hex(&data)
}

/// `mftctl receive ID` in `shell` into a fresh folder, which must then hold `name` alone: the
/// received file's SHA-256.
pub async fn received_sha(shell: &Shell, id: &str, name: &str) -> String {
    let inbox = shell.dir(&format!("inbox-{id}"));
    shell
        .line(&format!("mftctl receive {id} --dir {}", inbox.display()))
        .await
        .ok();
    assert_eq!(entries(&inbox), vec![name.to_string()]);
    mftplus_crypto::sha256_hex(&std::fs::read(inbox.join(name)).unwrap())
}
