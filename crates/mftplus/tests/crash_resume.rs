//! kill -9 of the real cloud binary during a large upload, restart on the same data folder and
//! port, `mftctl send --resume` until done: the transfer completes under its first id, nothing
//! of it is served while incomplete, acknowledged chunks survive the crash, and the received
//! file has the sender's SHA-256.
//!
//! `mftctl` runs in-process as the library (one thread per command); the cloud is
//! `mftplus dev`, the same binary and server as `mftplus cloud` plus a bootstrap admin key.
//!
//! Knobs: `MFTPLUS_CRASH_SEED` replays a run (the seed is printed), `MFTPLUS_CRASH_SIZE_MIB`
//! (default 1024) shrinks or grows the file.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Parser;
use mftplus_client::testing::new_user_with_api_key;
use mftplus_client::{Client, Credential};
use sha2::{Digest, Sha256};

const CHUNK: u64 = 10 << 20;
const KILLS: usize = 3;
const PASSWORD: &str = "correct-horse-battery-staple-42";
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// One `mftctl` command; a 1 GiB send in a debug build stays well inside it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// splitmix64: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `lo..=hi` for picking moments.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// `mftplus dev` on a data folder we own; killed with SIGKILL, never asked to stop.
struct Cloud {
    child: Child,
    url: String,
    admin_key: String,
}

impl Cloud {
    fn start(data: &Path, logs: &Path, port: u16, start: usize) -> Cloud {
        let stdout = logs.join(format!("cloud-{start}.out"));
        let stderr = logs.join(format!("cloud-{start}.err"));
        let child = Command::new(env!("CARGO_BIN_EXE_mftplus"))
            .args(["dev", "--no-hub", "--no-agent", "--data-dir"])
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .expect("mftplus starts");
        let mut cloud = Cloud {
            child,
            url: String::new(),
            admin_key: String::new(),
        };
        // Readiness is the banner, printed once the listener is bound and the key minted.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(&stdout).unwrap_or_default();
            let field = |label: &str| {
                text.lines()
                    .find_map(|l| l.trim().strip_prefix(label))
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_string)
            };
            if let (Some(url), Some(key)) = (field("API:"), field("API key:")) {
                cloud.url = url;
                cloud.admin_key = key;
                return cloud;
            }
            if let Some(status) = cloud.child.try_wait().unwrap() {
                panic!(
                    "mftplus dev exited ({status}) before it was ready: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "mftplus dev not ready in {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn kill_9(&mut self) {
        // Child::kill is SIGKILL on Unix: no drain, no destructors, no final fsync.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Prints the tail of every cloud log when the test fails, so a failure in CI (where the
/// temporary folder is gone afterwards) says what the server saw.
struct LogsOnPanic(PathBuf);

impl Drop for LogsOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.0)
            .map(|dir| dir.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        names.sort();
        for name in names {
            let text = std::fs::read_to_string(&name).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("--- {} (last {} lines)", name.display(), tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

/// Free bytes on the filesystem holding `dir`, by `df` (no libc binding needed for one number).
fn free_bytes(dir: &Path) -> Option<u64> {
    let out = Command::new("df").args(["-Pk"]).arg(dir).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// A user as `mftctl` sees them: a config folder (and so a key pair) and an API key.
struct Person {
    email: String,
    config: PathBuf,
    api_key: String,
}

impl Person {
    /// `mftctl --server … --api-key … --config … ARGS` on its own thread, in this process.
    fn mftctl(&self, url: &str, args: &[&str]) -> JoinHandle<u8> {
        let mut line: Vec<String> = vec![
            "mftctl".into(),
            "--server".into(),
            url.into(),
            "--api-key".into(),
            self.api_key.clone(),
            "--config".into(),
            self.config.display().to_string(),
        ];
        line.extend(args.iter().map(|a| a.to_string()));
        let cli = mftctl::Cli::try_parse_from(&line).expect("a valid mftctl line");
        std::thread::spawn(move || mftctl::main_with(cli))
    }

    fn run(&self, url: &str, args: &[&str]) -> u8 {
        let handle = self.mftctl(url, args);
        wait_for(
            handle,
            COMMAND_TIMEOUT,
            &format!("mftctl {}", args.join(" ")),
        )
    }

    fn client(&self, url: &str) -> Client {
        Client::new(url, Credential::ApiKey(self.api_key.clone())).unwrap()
    }
}

fn wait_for(handle: JoinHandle<u8>, timeout: Duration, what: &str) -> u8 {
    let deadline = Instant::now() + timeout;
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "{what} did not finish in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.join().expect("mftctl did not panic")
}

async fn person(admin: &Client, root: &Path, email: &str) -> Person {
    let created = new_user_with_api_key(admin, email, PASSWORD, "crash test")
        .await
        .unwrap();
    let dir = root.join(email);
    std::fs::create_dir_all(&dir).unwrap();
    Person {
        email: email.into(),
        config: dir.join("config.yaml"),
        api_key: created.key,
    }
}

/// `len` pseudo-random bytes written 1 MiB at a time; returns the SHA-256 hex.
fn random_file(path: &Path, len: u64, seed: u64) -> String {
    let mut rng = Rng(seed ^ 0xF11E);
    let mut out = BufWriter::new(File::create(path).unwrap());
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            word.copy_from_slice(&rng.next().to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n]).unwrap();
        hasher.update(&block[..n]);
        left -= n as u64;
    }
    out.into_inner().unwrap().sync_all().unwrap();
    hex(&hasher.finalize())
}

fn sha256_of(path: &Path) -> String {
    let mut file = File::open(path).unwrap();
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut block).unwrap();
        if n == 0 {
            return hex(&hasher.finalize());
        }
        hasher.update(&block[..n]);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// While a transfer is incomplete its manifest, which alone proves it whole, is refused to
/// everyone; its header and stored chunks may be followed (decision 0035), and a chunk served
/// is the recorded one. Every chunk row must have its intact blob behind it. `people[0]` is the
/// sender.
async fn assert_nothing_served(url: &str, id: &str, people: &[&Person]) {
    let recorded = people[0].client(url).list_chunks(id).await.unwrap();
    for who in people {
        let client = who.client(url);
        let shown = client.get_transfer(id).await.unwrap();
        assert_eq!(shown.status, "uploading", "{shown:?}");
        let manifest = client.transfer_manifest(id).await;
        let err = manifest.expect_err("the manifest of an incomplete transfer was served");
        assert_eq!(
            err.code(),
            "conflict",
            "manifest for {}: {err:?}",
            who.email
        );
        client.transfer_header(id).await.unwrap();
        match client.transfer_chunk(id, 0).await {
            Ok(served) => assert_eq!(
                Some(format!("{:x}", Sha256::digest(&served))),
                recorded
                    .iter()
                    .find(|c| c.index == 0)
                    .map(|c| c.sha256.clone()),
                "chunk 0 served to {} is the recorded one",
                who.email
            ),
            Err(e) => assert_eq!(e.code(), "chunk_pending", "chunk 0 for {}: {e}", who.email),
        }
    }
    let report = people[0].client(url).verify_transfer(id).await.unwrap();
    assert!(
        report.corrupt.is_empty() && report.missing.is_empty(),
        "a chunk row without its intact blob after kill -9: {report:?}"
    );
}

#[test]
fn kill_9_during_upload_then_resume() {
    let root = tempfile::tempdir().unwrap();
    // `send --resume` keeps its state under HOME; never the real one. Set before any thread.
    let home = root.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::env::set_var("HOME", &home);
    for name in [
        "XDG_STATE_HOME",
        "XDG_CONFIG_HOME",
        "MFTPLUS_SERVER",
        "MFTPLUS_API_KEY",
    ] {
        std::env::remove_var(name);
    }
    let seed = std::env::var("MFTPLUS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mut size_mib: u64 = std::env::var("MFTPLUS_CRASH_SIZE_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    // The source, its ciphertext on the server and the received copy, with room to spare: a
    // full disk would fail the upload for a reason this test is not about.
    if let Some(free) = free_bytes(root.path()) {
        let fits = (free / 4) >> 20;
        if fits < size_mib {
            size_mib = fits.max(80);
            eprintln!("crash_resume: only {} MiB free; file shrunk", free >> 20);
        }
    }
    eprintln!("crash_resume: seed {seed} (MFTPLUS_CRASH_SEED={seed} replays), {size_mib} MiB");
    let began = Instant::now();
    let mut rng = Rng(seed);

    let size = size_mib << 20;
    let chunks = size.div_ceil(CHUNK).max(1);
    assert!(chunks >= 8, "need at least 8 chunks for {KILLS} kills");
    // Distinct kill points, each strictly after the previous, and far enough from the end
    // that the upload cannot finish between the poll that sees the point and the kill: a
    // quarter of the file, since five chunks (50 MiB) went by in that gap on a fast machine.
    let last_point = chunks - (chunks / 4).max(5);
    let mut points: Vec<u64> = Vec::new();
    while points.len() < KILLS {
        let p = rng.between(1, last_point);
        if !points.contains(&p) {
            points.push(p);
        }
    }
    points.sort_unstable();

    let file = root.path().join("big.bin");
    let sha = random_file(&file, size, seed);
    let file_arg = file.display().to_string();
    let data = root.path().join("data");
    let logs = root.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let _logs_on_panic = LogsOnPanic(logs.clone());
    std::fs::create_dir_all(&data).unwrap();
    // `mftplus dev` keeps an existing server.yaml; the polling below must not hit rate limits.
    std::fs::write(
        data.join("server.yaml"),
        "mode: development\nrate_limit:\n  per_credential_per_minute: 1000000\n  per_address_per_minute: 1000000\n",
    )
    .unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut starts = 0;
    let mut cloud = Cloud::start(&data, &logs, 0, starts);
    let port = cloud.port();
    let url = cloud.url.clone();
    let admin = Client::new(&url, Credential::ApiKey(cloud.admin_key.clone())).unwrap();
    let (alice, bob) = rt.block_on(async {
        let alice = person(&admin, root.path(), "alice@example.com").await;
        let bob = person(&admin, root.path(), "bob@example.com").await;
        (alice, bob)
    });
    assert_eq!(bob.run(&url, &["keys", "init"]), 0);
    assert_eq!(alice.run(&url, &["keys", "init"]), 0);

    let mut id: Option<String> = None;
    for (kill, &point) in points.iter().enumerate() {
        let args: Vec<&str> = if kill == 0 {
            vec!["send", &file_arg, "bob@example.com"]
        } else {
            vec!["send", "--resume", &file_arg, "bob@example.com"]
        };
        let send = alice.mftctl(&url, &args);
        let client = alice.client(&url);
        let bob_client = bob.client(&url);
        // Watch the server's own record of stored chunks until the chosen point.
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        // Once per round: fetching a 10 MiB chunk on every poll slowed the polling enough
        // that the upload ran far past the chosen point before the kill.
        let mut follow_checked = false;
        let stored = rt.block_on(async {
            loop {
                assert!(
                    !send.is_finished(),
                    "send ended before kill {} at chunk {point} (too fast, or it failed)",
                    kill + 1
                );
                assert!(Instant::now() < deadline, "no progress to chunk {point}");
                if id.is_none() {
                    let mine = client.list_transfers(None).await.unwrap();
                    id = mine.first().map(|t| t.id.clone());
                }
                if let Some(id) = id.as_ref().filter(|_| !follow_checked) {
                    follow_checked = true;
                    // Mid-upload, the recipient may follow the stored chunks (decision 0035):
                    // only what the server recorded, byte for byte; never the manifest.
                    match bob_client.transfer_chunk(id, 0).await {
                        Ok(served) => {
                            let recorded = client.list_chunks(id).await.unwrap();
                            let first = recorded.iter().find(|c| c.index == 0);
                            assert_eq!(
                                Some(format!("{:x}", Sha256::digest(&served))),
                                first.map(|c| c.sha256.clone()),
                                "a chunk served mid-upload is the recorded one"
                            );
                        }
                        Err(e) => assert_eq!(e.code(), "chunk_pending", "{e}"),
                    }
                    let early = bob_client.transfer_manifest(id).await;
                    assert_eq!(
                        early.expect_err("a manifest was served mid-upload").code(),
                        "conflict"
                    );
                }
                if let Some(id) = &id {
                    let n = client.list_chunks(id).await.unwrap().len() as u64;
                    if n >= point {
                        return n;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        // Somewhere inside the next chunk or so.
        std::thread::sleep(Duration::from_millis(rng.between(0, 100)));
        cloud.kill_9();
        let status = wait_for(send, Duration::from_secs(180), "send after kill -9");
        assert_ne!(status, 0, "send reported success although the cloud died");
        let id = id.clone().unwrap();
        eprintln!(
            "crash_resume: kill {} at >= {stored}/{chunks} chunks of {id} ({:?} in)",
            kill + 1,
            began.elapsed()
        );

        starts += 1;
        cloud = Cloud::start(&data, &logs, port, starts);
        assert_eq!(cloud.url, url, "restarted on the same port");
        rt.block_on(async {
            let after = client.list_chunks(&id).await.unwrap().len() as u64;
            assert!(
                after >= stored,
                "acknowledged chunks lost in the crash: {stored} seen before, {after} after"
            );
            assert_nothing_served(&url, &id, &[&alice, &bob]).await;
        });
        let inbox = root.path().join(format!("early-{kill}"));
        std::fs::create_dir(&inbox).unwrap();
        let inbox_arg = inbox.display().to_string();
        assert_eq!(
            bob.run(&url, &["receive", &id, "--dir", &inbox_arg]),
            1,
            "an incomplete transfer was received"
        );
        assert_eq!(std::fs::read_dir(&inbox).unwrap().count(), 0);
    }

    let id = id.unwrap();
    let mut finished = false;
    for _ in 0..3 {
        if alice.run(&url, &["send", "--resume", &file_arg, "bob@example.com"]) == 0 {
            finished = true;
            break;
        }
    }
    assert!(finished, "send --resume did not complete the transfer");
    eprintln!("crash_resume: upload complete ({:?} in)", began.elapsed());

    rt.block_on(async {
        let client = alice.client(&url);
        let mine = client.list_transfers(None).await.unwrap();
        assert_eq!(
            mine.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            vec![id.as_str()],
            "resume must continue the first transfer, not start others"
        );
        let done = client.get_transfer(&id).await.unwrap();
        assert_eq!(done.status, "complete");
        assert_eq!(done.chunk_count, Some(chunks));
    });
    assert_eq!(alice.run(&url, &["transfers", "verify", &id]), 0);
    let inbox = root.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let inbox_arg = inbox.display().to_string();
    assert_eq!(bob.run(&url, &["receive", &id, "--dir", &inbox_arg]), 0);
    let received = inbox.join("big.bin");
    assert_eq!(sha256_of(&received), sha, "received file differs");
    assert_eq!(std::fs::read_dir(&inbox).unwrap().count(), 1);
    eprintln!(
        "crash_resume: verified and received ({:?} in)",
        began.elapsed()
    );
}
