//! `mftctl send`, `receive`, `status ID` and `transfers …` as the real binary against a real
//! cloud on 127.0.0.1:0: every user has their own HOME (and so their own key pair).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mftplus_blob::{BlobKey, FsBlobStore, TransferId};
use mftplus_cloud::testing::TestCloud;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mftctl");
const PASSWORD: &str = "correct-horse-battery-staple-42";

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
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }
}

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

    fn admin(cloud: &TestCloud) -> Shell {
        let mut shell = Shell::new(cloud);
        shell
            .env
            .push(("MFTPLUS_API_KEY".into(), cloud.admin_api_key.clone()));
        shell
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    fn key_path(&self) -> PathBuf {
        self.path(".config/mftplus/keys/x25519.key")
    }

    /// Whitespace-separated words; the leading `mftctl` is the binary. Runs in HOME.
    async fn line(&self, line: &str) -> Run {
        self.run(line, None).await
    }

    async fn run(&self, line: &str, stdin: Option<&str>) -> Run {
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
        tokio::task::spawn_blocking(move || {
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
        })
        .await
        .unwrap()
    }
}

/// Creates the user and returns a shell in which they are logged in (which creates and
/// registers their key pair).
async fn user(cloud: &TestCloud, admin: &Shell, email: &str, login: bool) -> Shell {
    admin
        .run(
            &format!("mftctl users create --email {email} --role user --password-stdin"),
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

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Deterministic bytes that do not compress.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn send_id(run: &Run) -> String {
    let id = run.stdout.trim().to_string();
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{run:#?}"
    );
    id
}

#[tokio::test]
async fn send_receive_round_trip() {
    let cloud = TestCloud::spawn().await;
    let admin = Shell::admin(&cloud);
    let alice = user(&cloud, &admin, "alice@example.com", true).await;
    let bob = user(&cloud, &admin, "bob@example.com", true).await;
    let carol = user(&cloud, &admin, "carol@example.com", true).await;

    let shown = bob.line("mftctl keys show --json").await.ok().json();
    assert!(shown["public_key"]
        .as_str()
        .unwrap()
        .starts_with("mftx25519_"));
    let init = bob.line("mftctl keys init").await.ok();
    assert!(init.stdout.contains("already present"), "{init:#?}");

    // ~300 KiB in 64 KiB chunks: several chunks and a short last one.
    let data = noise(300 * 1024 + 123);
    let file = alice.path("report.bin");
    std::fs::write(&file, &data).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let sent = alice
        .line(&format!(
            "mftctl send {} bob@example.com --chunk-size 64KiB",
            file.display()
        ))
        .await
        .ok();
    let id = send_id(&sent);

    let shown = alice
        .line(&format!("mftctl transfers show {id} --json"))
        .await
        .ok()
        .json();
    assert_eq!(shown["status"], "complete");
    assert_eq!(shown["chunk_count"], 5);
    let status = alice.line(&format!("mftctl status {id}")).await.ok();
    assert!(status.stdout.contains("bob@example.com"), "{status:#?}");
    let list = bob.line("mftctl transfers list").await.ok();
    assert!(list.stdout.starts_with("ID"), "{list:#?}");
    assert!(list.stdout.contains(&id), "{list:#?}");
    let verified = alice
        .line(&format!("mftctl transfers verify {id}"))
        .await
        .ok();
    assert!(verified.stdout.contains("intact"), "{verified:#?}");

    // Someone who is neither sender nor recipient does not see it at all.
    carol
        .line(&format!("mftctl transfers show {id}"))
        .await
        .fails_with("not_found");
    carol
        .line(&format!("mftctl receive {id} --dir ."))
        .await
        .fails_with("not_found");

    let inbox = bob.path("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let got = bob
        .line(&format!("mftctl receive --dir {}", inbox.display()))
        .await
        .ok();
    assert!(got.stdout.contains("received report.bin"), "{got:#?}");
    assert_eq!(entries(&inbox), vec!["report.bin".to_string()]);
    assert_eq!(std::fs::read(inbox.join("report.bin")).unwrap(), data);
    assert_eq!(mode_of(&inbox.join("report.bin")), 0o640);

    // Downloaded: nothing more to receive; by id it refuses to overwrite unless asked.
    let again = bob
        .line(&format!("mftctl receive --dir {}", inbox.display()))
        .await
        .ok();
    assert!(again.stderr.contains("nothing to receive"), "{again:#?}");
    bob.line(&format!("mftctl receive {id} --dir {}", inbox.display()))
        .await
        .fails_with("exists");
    assert_eq!(entries(&inbox), vec!["report.bin".to_string()]);
    bob.line(&format!(
        "mftctl receive {id} --dir {} --overwrite --json",
        inbox.display()
    ))
    .await
    .ok();
    assert_eq!(std::fs::read(inbox.join("report.bin")).unwrap(), data);

    // The sender's own key is a recipient too.
    let mine = alice.path("mine");
    std::fs::create_dir(&mine).unwrap();
    alice
        .line(&format!("mftctl receive {id} --dir {}", mine.display()))
        .await
        .ok();
    assert_eq!(std::fs::read(mine.join("report.bin")).unwrap(), data);

    // Compressed, to two recipients.
    let text: Vec<u8> = "all work and no play makes jack a dull boy\n"
        .repeat(8000)
        .into_bytes();
    let notes = alice.path("notes.txt");
    std::fs::write(&notes, &text).unwrap();
    let sent = alice
        .line(&format!(
            "mftctl send {} bob@example.com,carol@example.com --compress --chunk-size 64KiB --json",
            notes.display()
        ))
        .await
        .ok()
        .json();
    let id2 = sent["id"].as_str().unwrap().to_string();
    assert!(
        sent["transfer"]["ciphertext_bytes"].as_u64().unwrap() < text.len() as u64 / 10,
        "{sent:#}"
    );
    let inbox2 = carol.path("in");
    std::fs::create_dir(&inbox2).unwrap();
    let got = carol
        .line(&format!("mftctl receive --dir {} --json", inbox2.display()))
        .await
        .ok()
        .json();
    assert_eq!(got[0]["id"], id2.as_str());
    assert_eq!(std::fs::read(inbox2.join("notes.txt")).unwrap(), text);
    let got = bob
        .line(&format!("mftctl receive --dir {}", inbox.display()))
        .await
        .ok();
    assert!(got.stdout.contains("notes.txt"), "{got:#?}");
    assert_eq!(std::fs::read(inbox.join("notes.txt")).unwrap(), text);

    // The sender may cancel; recipients then cannot download.
    alice
        .line(&format!("mftctl transfers cancel {id2}"))
        .await
        .ok();
    bob.line(&format!(
        "mftctl receive {id2} --dir {} --overwrite",
        inbox.display()
    ))
    .await
    .fails_with("conflict");
}

#[tokio::test]
async fn tampered_chunk_leaves_nothing_behind() {
    let cloud = TestCloud::spawn().await;
    let admin = Shell::admin(&cloud);
    let alice = user(&cloud, &admin, "alice@example.com", true).await;
    let bob = user(&cloud, &admin, "bob@example.com", true).await;

    let file = alice.path("secret.bin");
    std::fs::write(&file, noise(300 * 1024)).unwrap();
    let sent = alice
        .line(&format!(
            "mftctl send {} bob@example.com --chunk-size 64KiB",
            file.display()
        ))
        .await
        .ok();
    let id = send_id(&sent);

    let store = FsBlobStore::open(&cloud.state.config.config.transfers.blob_path).unwrap();
    let path = store.object_path(&BlobKey::chunk(&TransferId::new(id.as_str()).unwrap(), 1));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let inbox = bob.path("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let refused = bob
        .line(&format!("mftctl receive --dir {}", inbox.display()))
        .await
        .fails_with("integrity");
    assert!(refused.stderr.contains("chunk 1"), "{refused:#?}");
    assert!(
        entries(&inbox).is_empty(),
        "no file and no temporary file: {:?}",
        entries(&inbox)
    );

    let verify = alice.line(&format!("mftctl transfers verify {id}")).await;
    assert_eq!(verify.code, 1, "{verify:#?}");
    assert!(verify.stdout.contains("corrupt chunks: 1"), "{verify:#?}");
    let report = bob
        .line(&format!("mftctl transfers verify {id} --json"))
        .await
        .json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["corrupt"], serde_json::json!([1]));
}

#[tokio::test]
async fn seed_send_line_missing_keys_and_passphrase() {
    let cloud = TestCloud::spawn().await;
    let admin = Shell::admin(&cloud);
    let alice = user(&cloud, &admin, "alice@example.com", true).await;
    let recipient = user(&cloud, &admin, "recipient@example.com", true).await;
    let dave = user(&cloud, &admin, "dave@example.com", false).await;

    // Seed 001's exact shape, from the directory holding ./file.
    let data = noise(70_000);
    std::fs::write(alice.path("file"), &data).unwrap();
    let sent = alice
        .line("mftctl send --encrypt ./file recipient@example.com")
        .await
        .ok();
    send_id(&sent);
    recipient.line("mftctl receive").await.ok();
    assert_eq!(std::fs::read(recipient.path("file")).unwrap(), data);

    // A recipient without a key: a clear error before anything is uploaded.
    let refused = alice
        .line("mftctl send ./file dave@example.com")
        .await
        .fails_with("no_key");
    assert!(refused.stderr.contains("mftctl keys init"), "{refused:#?}");
    let none = alice.line("mftctl transfers list --json").await.ok().json();
    assert_eq!(none.as_array().unwrap().len(), 1, "{none:#}");
    alice
        .line("mftctl send ./file recipient@example.com --resume")
        .await
        .fails_with("resume_not_found");

    // With a passphrase they can still open it, without any key pair.
    let sent = alice
        .run(
            "mftctl send ./file dave@example.com --passphrase --passphrase-stdin",
            Some("open sesame\n"),
        )
        .await
        .ok();
    let id = send_id(&sent);
    dave.run(
        "mftctl login --email dave@example.com --password-stdin",
        Some(PASSWORD),
    )
    .await
    .ok();
    std::fs::remove_file(dave.key_path()).unwrap();
    dave.line(&format!("mftctl receive {id}"))
        .await
        .fails_with("no_key");
    dave.run(
        &format!("mftctl receive {id} --passphrase --passphrase-stdin"),
        Some("wrong\n"),
    )
    .await
    .fails_with("wrong_passphrase");
    assert!(!dave.path("file").exists());
    dave.run(
        &format!("mftctl receive {id} --passphrase --passphrase-stdin"),
        Some("open sesame\n"),
    )
    .await
    .ok();
    assert_eq!(std::fs::read(dave.path("file")).unwrap(), data);

    // An API key works for `keys init` too.
    let init = admin.line("mftctl keys init --json").await.ok().json();
    assert_eq!(init["created"], true);
    assert_eq!(init["registered"], true);
}

#[tokio::test]
async fn stdin_to_stdout_with_chacha_and_watch() {
    let cloud = TestCloud::spawn().await;
    let admin = Shell::admin(&cloud);
    let alice = user(&cloud, &admin, "alice@example.com", true).await;
    let bob = user(&cloud, &admin, "bob@example.com", true).await;

    // Text so it survives the test harness's String stdin; several 64 KiB chunks.
    let text = "line of text from a pipe, not a file\n".repeat(6000);
    alice
        .run(
            "mftctl send - bob@example.com --chunk-size 64KiB",
            Some(&text),
        )
        .await
        .fails_with("usage");
    let sent = alice
        .run(
            "mftctl send - bob@example.com --name piped.txt --chunk-size 64KiB --cipher chacha20-poly1305 --compress",
            Some(&text),
        )
        .await
        .ok();
    let id = send_id(&sent);
    // Nothing to resume from a pipe, so no state is kept.
    assert!(
        !alice.path(".local/state/mftplus/uploads").exists()
            || entries(&alice.path(".local/state/mftplus/uploads")).is_empty()
    );

    let watched = alice
        .line(&format!("mftctl status {id} --watch --interval 1 --json"))
        .await
        .ok()
        .json();
    assert_eq!(watched["status"], "complete");

    let got = bob
        .line(&format!("mftctl receive {id} --output -"))
        .await
        .ok();
    assert_eq!(got.stdout, text);
    assert!(got.stderr.contains("received piped.txt"), "{got:#?}");
    assert!(entries(bob.home.path())
        .iter()
        .all(|n| !n.contains("mftplus-part")));

    // --output PATH writes exactly there, under the sender's mode default (none from a pipe).
    let out = bob.path("named.txt");
    bob.line(&format!("mftctl receive {id} --output {}", out.display()))
        .await
        .ok();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);
    assert_eq!(mode_of(&out), 0o600);
    bob.line(&format!("mftctl receive {id} --output -  --json"))
        .await
        .fails_with("usage");
}
