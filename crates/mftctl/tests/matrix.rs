//! Round trips through the CLI library (`mftctl::run_with`, in-process, each user with their own
//! HOME) against a real cloud on 127.0.0.1:0, for every cipher x compression x recipient kind
//! at the sizes around a chunk boundary and at 100 MiB; and `send --resume` after a send was
//! interrupted at a known chunk.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mftctl::{Cli, CliError, RunOptions};
use mftplus_client::testing::new_signed_in_user;
use mftplus_client::{Client, Credential};
use mftplus_cloud::testing::TestCloud;

const PASSWORD: &str = "correct-horse-battery-staple-42";
const PASSPHRASE: &str = "a passphrase for the matrix";
const SMALL_CHUNK: usize = 64 * 1024;

/// One person at a shell: their HOME holds their config (a login session) and key pair.
struct User {
    email: String,
    home: tempfile::TempDir,
    server: String,
}

impl User {
    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    fn state_dir(&self) -> PathBuf {
        self.path(".local/state/mftplus/uploads")
    }

    /// Runs one `mftctl …` line in-process as this user.
    async fn run(&self, line: &str) -> Result<u8, CliError> {
        self.run_with(line, None).await
    }

    async fn run_with(&self, line: &str, interrupt: Option<u64>) -> Result<u8, CliError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], "mftctl", "{line}");
        let cli = <Cli as clap::Parser>::try_parse_from(&words).unwrap_or_else(|e| panic!("{e}"));
        let home = self.home.path().display().to_string();
        let server = self.server.clone();
        let env = move |name: &str| match name {
            "HOME" => Some(home.clone()),
            "MFTPLUS_SERVER" => Some(server.clone()),
            _ => None,
        };
        mftctl::run_with(
            cli,
            RunOptions {
                env: &env,
                interrupt_send_after: interrupt,
            },
        )
        .await
    }

    async fn ok(&self, line: &str) {
        match self.run(line).await {
            Ok(0) => {}
            other => panic!("{} `{line}`: {other:?}", self.email),
        }
    }

    async fn fails_with(&self, line: &str, code: &str) -> CliError {
        match self.run(line).await {
            Err(e) if e.code == code => e,
            other => panic!("{} `{line}`: expected ({code}), got {other:?}", self.email),
        }
    }
}

struct Lab {
    cloud: TestCloud,
    alice: User,
    bob: User,
    carol: User,
    /// No key pair: reachable by passphrase only.
    dave: User,
    passphrase_file: PathBuf,
}

impl Lab {
    async fn new() -> Lab {
        let cloud = TestCloud::spawn().await;
        let alice = user(&cloud, "alice@example.com", true).await;
        let bob = user(&cloud, "bob@example.com", true).await;
        let carol = user(&cloud, "carol@example.com", true).await;
        let dave = user(&cloud, "dave@example.com", false).await;
        let passphrase_file = alice.path("passphrase");
        std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).unwrap();
        std::fs::set_permissions(&passphrase_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        Lab {
            cloud,
            alice,
            bob,
            carol,
            dave,
            passphrase_file,
        }
    }

    fn client(&self, user: &User) -> Client {
        let text = std::fs::read_to_string(user.path(".config/mftplus/config.yaml")).unwrap();
        let config: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let token = config["access_token"].as_str().unwrap().to_string();
        Client::new(&self.cloud.url, Credential::Bearer(token)).unwrap()
    }
}

/// Creates the user, signs them in (a config file with the session, as `mftctl login` writes)
/// and, when `with_key`, creates and registers their key pair with `mftctl keys init`.
async fn user(cloud: &TestCloud, email: &str, with_key: bool) -> User {
    let admin = Client::new(&cloud.url, Credential::ApiKey(cloud.admin_api_key.clone())).unwrap();
    let pair = new_signed_in_user(&admin, email, PASSWORD).await.unwrap();
    let user = User {
        email: email.into(),
        home: tempfile::tempdir().unwrap(),
        server: cloud.url.clone(),
    };
    let config = user.path(".config/mftplus/config.yaml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "server: {}\naccess_token: {}\nrefresh_token: {}\n",
            cloud.url, pair.access_token, pair.refresh_token
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    if with_key {
        user.ok("mftctl keys init").await;
    }
    user
}

/// Deterministic bytes that do not compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Half noise, half a repeated phrase: zstd has something to do, and something it cannot.
fn mixed(len: usize, seed: u64) -> Vec<u8> {
    let mut data = noise(len, seed);
    let phrase = b"the quick brown fox jumps over the lazy dog; ";
    for (i, b) in data.iter_mut().enumerate().skip(len / 2) {
        *b = phrase[i % phrase.len()];
    }
    data
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// One recipient with a registered key.
    PublicKey,
    /// A recipient without a key, who opens it with the passphrase.
    Passphrase,
    /// Two recipients and the sender named explicitly.
    Several,
}

/// Sends `data` as `name` from alice with `flags`, has each reader of `kind` receive it, and
/// checks bytes (by SHA-256) and mode.
async fn round_trip(lab: &Lab, kind: Kind, flags: &str, name: &str, data: &[u8]) {
    let file = lab.alice.path(name);
    std::fs::write(&file, data).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let want = mftplus_crypto::sha256_hex(data);
    let (to, readers): (&str, Vec<&User>) = match kind {
        Kind::PublicKey => ("bob@example.com", vec![&lab.bob]),
        Kind::Passphrase => ("dave@example.com", vec![&lab.dave]),
        Kind::Several => (
            "bob@example.com,carol@example.com,alice@example.com",
            vec![&lab.carol, &lab.alice],
        ),
    };
    let passphrase = match kind {
        Kind::Passphrase => format!(
            " --passphrase --passphrase-file {}",
            lab.passphrase_file.display()
        ),
        _ => String::new(),
    };
    lab.alice
        .ok(&format!(
            "mftctl send {} {to} {flags}{passphrase}",
            file.display()
        ))
        .await;
    // Nothing is left to resume once a send completed.
    assert!(
        std::fs::read_dir(lab.alice.state_dir())
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "resume state left behind"
    );
    for reader in readers {
        let inbox = tempfile::tempdir_in(reader.home.path()).unwrap();
        reader
            .ok(&format!(
                "mftctl receive --dir {}{passphrase}",
                inbox.path().display()
            ))
            .await;
        let got = inbox.path().join(name);
        let bytes = std::fs::read(&got).unwrap();
        assert_eq!(bytes.len(), data.len(), "{kind:?} {flags} {name}");
        assert_eq!(
            mftplus_crypto::sha256_hex(&bytes),
            want,
            "{kind:?} {flags} {name} read by {}",
            reader.email
        );
        assert_eq!(mode_of(&got), 0o640, "{kind:?} {flags} {name}");
        let names: Vec<_> = std::fs::read_dir(inbox.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the file, no temporary: {names:?}");
    }
}

/// Sizes 0, 1, chunk-1, chunk, chunk+1 at 64 KiB chunks, for each recipient kind.
async fn small_sizes(cipher: &str, compress: bool) {
    let lab = Lab::new().await;
    let flags = format!(
        "--cipher {cipher} --chunk-size 64KiB{}",
        if compress { " --compress" } else { "" }
    );
    for kind in [Kind::PublicKey, Kind::Passphrase, Kind::Several] {
        for (i, size) in [0, 1, SMALL_CHUNK - 1, SMALL_CHUNK, SMALL_CHUNK + 1]
            .into_iter()
            .enumerate()
        {
            let data = mixed(size, i as u64);
            let name = format!("{kind:?}-{size}.bin");
            round_trip(&lab, kind, &flags, &name, &data).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_aes_plain() {
    small_sizes("aes-256-gcm", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_aes_zstd() {
    small_sizes("aes-256-gcm", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_chacha_plain() {
    small_sizes("chacha20-poly1305", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_chacha_zstd() {
    small_sizes("chacha20-poly1305", true).await;
}

/// 100 MiB (and 3 bytes) at the default 10 MiB chunk size: ten full chunks and a short last one.
async fn large(cipher: &str, compress: bool) {
    let lab = Lab::new().await;
    let flags = format!(
        "--cipher {cipher}{}",
        if compress { " --compress" } else { "" }
    );
    let data = mixed((100 << 20) + 3, 7);
    round_trip(&lab, Kind::PublicKey, &flags, "large.bin", &data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_aes_plain() {
    large("aes-256-gcm", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_aes_zstd() {
    large("aes-256-gcm", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_chacha_plain() {
    large("chacha20-poly1305", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_chacha_zstd() {
    large("chacha20-poly1305", true).await;
}

/// The saved resume state of alice's one interrupted send.
fn saved_state(user: &User) -> (PathBuf, serde_json::Value) {
    let files: Vec<PathBuf> = std::fs::read_dir(user.state_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let state = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    (files[0].clone(), state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_send_resumes_from_the_missing_chunks() {
    let lab = Lab::new().await;
    for (flags, seed) in [
        ("--chunk-size 64KiB", 1u64),
        (
            "--chunk-size 64KiB --compress --cipher chacha20-poly1305",
            2,
        ),
    ] {
        // 20 chunks and a short last one.
        let data = mixed(20 * SMALL_CHUNK + 500, seed);
        let file = lab.alice.path("big.bin");
        std::fs::write(&file, &data).unwrap();
        let line = format!("mftctl send {} bob@example.com {flags}", file.display());
        let err = lab.alice.run_with(&line, Some(3)).await.unwrap_err();
        assert_eq!(err.code, "interrupted", "{err:?}");

        // The transfer is kept, half uploaded, and its state saved privately without secrets.
        let (path, state) = saved_state(&lab.alice);
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(path.parent().unwrap()), 0o700);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("mftx25519sk_"), "{text}");
        let id = state["transfer_id"].as_str().unwrap().to_string();
        let client = lab.client(&lab.alice);
        let shown = client.get_transfer(&id).await.unwrap();
        assert_eq!(shown.status, "uploading");
        let before = client.list_chunks(&id).await.unwrap();
        assert!(
            (3..21).contains(&before.len()),
            "{} chunks stored",
            before.len()
        );

        // Resuming with other recipients is refused; with the same ones it completes.
        lab.alice
            .fails_with(
                &format!("mftctl send --resume {} carol@example.com", file.display()),
                "resume_mismatch",
            )
            .await;
        lab.alice
            .ok(&format!(
                "mftctl send --resume {} bob@example.com",
                file.display()
            ))
            .await;
        assert!(!path.exists(), "state removed once complete");
        let after = client.list_chunks(&id).await.unwrap();
        assert_eq!(after.len(), 21);
        for chunk in &before {
            assert!(after.contains(chunk), "chunk {} was replaced", chunk.index);
        }
        assert_eq!(client.get_transfer(&id).await.unwrap().status, "complete");

        let inbox = tempfile::tempdir_in(lab.bob.home.path()).unwrap();
        lab.bob
            .ok(&format!(
                "mftctl receive {id} --dir {}",
                inbox.path().display()
            ))
            .await;
        assert_eq!(std::fs::read(inbox.path().join("big.bin")).unwrap(), data);
        std::fs::remove_file(&file).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_refuses_a_changed_file_and_unknown_sends() {
    let lab = Lab::new().await;
    let file = lab.alice.path("doc.bin");
    let data = noise(10 * SMALL_CHUNK, 3);
    std::fs::write(&file, &data).unwrap();

    lab.alice
        .fails_with(
            &format!("mftctl send --resume {} bob@example.com", file.display()),
            "resume_not_found",
        )
        .await;
    lab.alice
        .fails_with(
            "mftctl send --resume - bob@example.com --name x",
            "not_resumable",
        )
        .await;

    let line = format!(
        "mftctl send {} bob@example.com --chunk-size 64KiB",
        file.display()
    );
    lab.alice.run_with(&line, Some(2)).await.unwrap_err();
    let (_, state) = saved_state(&lab.alice);
    let id = state["transfer_id"].as_str().unwrap().to_string();
    let client = lab.client(&lab.alice);
    // A chunk whose body had fully arrived when the client stopped is still committed (the
    // server finishes a request the client walked away from): read the list once it settled.
    let mut stored = client.list_chunks(&id).await.unwrap();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let again = client.list_chunks(&id).await.unwrap();
        if again == stored {
            break;
        }
        stored = again;
    }

    // Same size and modification time, different content in a chunk already on the server:
    // caught by its hash, and nothing is uploaded.
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    let mut changed = data.clone();
    changed[5] ^= 0xff;
    std::fs::write(&file, &changed).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let resume = format!("mftctl send --resume {} bob@example.com", file.display());
    lab.alice.fails_with(&resume, "file_changed").await;
    assert_eq!(client.list_chunks(&id).await.unwrap(), stored);

    // A visible change (size) is refused before anything is read.
    std::fs::write(&file, [&data[..], b"more"].concat()).unwrap();
    lab.alice.fails_with(&resume, "file_changed").await;

    // Put back as it was (mtime included): the resume goes through.
    std::fs::write(&file, &data).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    lab.alice.ok(&resume).await;
    assert_eq!(client.get_transfer(&id).await.unwrap().status, "complete");
    // Nothing left to resume.
    lab.alice.fails_with(&resume, "resume_not_found").await;
}
