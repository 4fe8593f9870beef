//! Share links end to end (issue 16, decision 0023): the real `mftctl send --link` against a
//! real cloud, and the link opened in a real headless Chromium over WebDriver, which downloads
//! the file through the page's workers into a download folder. The downloaded file's
//! SHA-256 equals the original for 0 B, 1 B, exactly one chunk and 200 MiB; `mftctl receive`
//! of the same transfer still works; a chunk flipped in the payload store stops the download
//! with a clear message and no complete file; revoked and expired links are refused; a link
//! with a passphrase asks for it; and neither the server's logs (down to debug, captured from the
//! cloud in this process) nor its database files ever hold a link's secret or passphrase.
//!
//! Skips without chromedriver and chromium unless `MFTPLUS_TEST_REQUIRE_BROWSER=1`.

#[allow(unused_imports)]
#[path = "../../mftplus-cloud/tests/browser/mod.rs"]
mod browser;
mod cli_support;

use browser::{Browser, OrFail, WAIT};
use cli_support::*;
use mftplus_blob::{BlobKey, FsBlobStore, TransferId};
use mftplus_cloud::testing::TestCloud;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const CHUNK: usize = 10 << 20;
/// A 200 MiB download in a debug build on a busy two-core machine.
const DOWNLOAD_WITHIN: Duration = Duration::from_secs(300);

/// Everything the cloud in this process logs, down to debug (trace would be every frame of
/// every byte sent).
fn server_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || LogWriter(sink.clone()))
            .try_init();
        logs
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct World {
    cloud: TestCloud,
    alice: Shell,
    browser: Browser,
    downloads: tempfile::TempDir,
}

async fn world() -> Option<World> {
    server_logs();
    let downloads = tempfile::tempdir().unwrap();
    let browser = Browser::start_downloading_to(downloads.path()).await?;
    let cloud = TestCloud::spawn().await;
    let admin = Shell::admin(&cloud);
    let alice = user(&cloud, &admin, "alice@example.com", "user", true).await;
    Some(World {
        cloud,
        alice,
        browser,
        downloads,
    })
}

/// `len` bytes that do not repeat within a chunk, written to `path`.
fn make_file(path: &Path, len: usize, seed: u64) {
    let mut state = seed | 1;
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(len);
    std::fs::write(path, data).unwrap();
}

fn sha256_of(path: &Path) -> String {
    mftplus_crypto::sha256_hex(&std::fs::read(path).unwrap())
}

/// The fragment of a link: its secret.
fn secret_of(url: &str) -> Option<&str> {
    url.split_once('#').map(|(_, secret)| secret)
}

/// `mftctl send FILE --link EXTRA…` as alice, with no recipient: the transfer id and the URL.
async fn send_link(w: &World, file: &Path, extra: &str) -> (String, String) {
    let line = format!("mftctl send {} --link {extra}", file.display());
    let run = w.alice.line(&line).await.ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "the transfer id, then the link: {run:#?}");
    let url = lines[1].to_string();
    assert!(
        url.starts_with(&format!("{}/s/", w.cloud.url)),
        "a link on this server: {url}"
    );
    (lines[0].to_string(), url)
}

/// How a page on a link ended: the file saved, or the message it shows.
enum Outcome {
    Saved(PathBuf),
    Refused(String),
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The page's state (`loading`, `ready`, `downloading`, `done`, `failed`) once it leaves
/// `from`, waiting at most `within`.
async fn state_after(browser: &Browser, from: &[&str], within: Duration) -> String {
    let started = Instant::now();
    loop {
        let state = browser
            .execute(
                "return document.body ? document.body.dataset.state : 'none'",
                &[],
            )
            .await
            .or_fail("read the page's state");
        let state = state.as_str().unwrap_or_default().to_string();
        if !from.contains(&state.as_str()) {
            return state;
        }
        assert!(
            started.elapsed() < within,
            "the page stayed {state} for {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn error_text(browser: &Browser) -> String {
    browser
        .find("#link-error")
        .await
        .or_fail("the error line")
        .text()
        .await
        .or_fail("the error's text")
}

/// Opens `url`, types `passphrase` when the page asks, presses Download and waits for the
/// browser to finish saving `name` (no `.crdownload` left) or the page to say why not.
async fn open_and_download(w: &World, url: &str, passphrase: Option<&str>, name: &str) -> Outcome {
    let browser = &w.browser;
    // From a blank page: going from a link without its fragment to the same link with one
    // would only move within the page, not load it again.
    browser
        .goto("about:blank")
        .await
        .or_fail("leave the last page");
    browser.goto(url).await.or_fail("open the link");
    let mut state = state_after(browser, &["loading"], WAIT).await;
    if let Some(passphrase) = passphrase {
        assert_eq!(state, "passphrase", "the page asks for the passphrase");
        let field = browser
            .wait_for("#link-passphrase:not([hidden]) #passphrase", WAIT)
            .await
            .or_fail("the page asks for the passphrase");
        field.send_keys(passphrase).await.or_fail("type it");
        browser
            .find("#unlock")
            .await
            .or_fail("Unlock")
            .click()
            .await
            .or_fail("click Unlock");
        state = state_after(browser, &["loading"], Duration::from_secs(60)).await;
    }
    if state == "failed" {
        return Outcome::Refused(error_text(browser).await);
    }
    assert_eq!(state, "ready", "the page shows the file");
    let shown = browser
        .find("#file-name")
        .await
        .or_fail("the name")
        .text()
        .await
        .or_fail("name");
    assert_eq!(shown, name, "the name from the decrypted manifest");
    browser
        .find("#download")
        .await
        .or_fail("Download")
        .click()
        .await
        .or_fail("click Download");
    let state = state_after(browser, &["ready", "downloading"], DOWNLOAD_WITHIN).await;
    if state == "failed" {
        return Outcome::Refused(error_text(browser).await);
    }
    assert_eq!(state, "done");
    // The page says done when the worker closed the stream; Chromium then renames the file.
    let saved = w.downloads.path().join(name);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !saved.exists()
        || files_in(w.downloads.path())
            .iter()
            .any(|f| f.ends_with(".crdownload"))
    {
        assert!(
            Instant::now() < deadline,
            "Chromium did not finish saving {name}: {:?}",
            files_in(w.downloads.path())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Outcome::Saved(saved)
}

/// Every secret of `urls` and each of `passphrases`, as text, raw bytes and hex, is absent from
/// the server's logs and its database files.
fn assert_never_stored(cloud: &TestCloud, urls: &[String], passphrases: &[&str]) {
    let mut needles: Vec<Vec<u8>> = passphrases.iter().map(|p| p.as_bytes().to_vec()).collect();
    for url in urls {
        let Some(secret) = secret_of(url) else {
            continue;
        };
        let raw = mftplus_crypto::stream::LinkSecret::from_encoded(secret).unwrap();
        needles.push(secret.as_bytes().to_vec());
        needles.push(raw.as_bytes().to_vec());
        needles.push(hex_of(raw.as_bytes()).into_bytes());
    }
    assert!(!needles.is_empty());
    let logs = server_logs().lock().unwrap().clone();
    assert!(
        logs.len() > 1_000,
        "the server's logs were captured ({} bytes)",
        logs.len()
    );
    let blobs = cloud.state.config.config.transfers.blob_path.clone();
    let dir = blobs.parent().unwrap();
    let mut haystacks = vec![("the server's logs".to_string(), logs)];
    for name in ["cloud.db", "cloud.db-wal", "cloud.db-shm"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            haystacks.push((name.to_string(), bytes));
        }
    }
    assert!(
        haystacks.len() >= 2,
        "the database file was found in {}",
        dir.display()
    );
    for (what, bytes) in &haystacks {
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == &needle[..]),
                "{what} contain a link secret or passphrase"
            );
        }
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_download_the_exact_file_in_a_real_browser() {
    let Some(w) = world().await else { return };
    let mut urls = Vec::new();
    let mut last = String::new();
    for (name, len) in [
        ("empty.bin", 0),
        ("one-byte.bin", 1),
        ("one-chunk.bin", CHUNK),
        ("two-hundred-mib.bin", 200 << 20),
    ] {
        let file = w.alice.path(name);
        make_file(&file, len, len as u64 + 7);
        let (transfer, url) = send_link(&w, &file, "").await;
        let Outcome::Saved(saved) = open_and_download(&w, &url, None, name).await else {
            panic!(
                "{name}: the download failed: {}",
                error_text(&w.browser).await
            );
        };
        assert_eq!(
            std::fs::metadata(&saved).unwrap().len(),
            len as u64,
            "{name}"
        );
        assert_eq!(
            sha256_of(&saved),
            sha256_of(&file),
            "{name}: the same bytes"
        );
        if len == 1 {
            // The sender is always a recipient: mftctl receive of the link's transfer works.
            let dir = w.alice.dir("received");
            w.alice
                .line(&format!(
                    "mftctl receive {transfer} --dir {}",
                    dir.display()
                ))
                .await
                .ok();
            assert_eq!(sha256_of(&dir.join(name)), sha256_of(&file));
        }
        if len == CHUNK {
            browser_screenshot(&w, "link-downloaded").await;
        }
        urls.push(url);
        last = transfer;
    }
    // Each link counted its one download; the sender sees it.
    let listed = w
        .alice
        .line(&format!("mftctl --json transfers links {last}"))
        .await
        .ok()
        .json();
    assert_eq!(listed[0]["downloads"], 1, "{listed}");
    assert!(listed[0]["last_opened_at"].is_string(), "{listed}");
    assert_never_stored(&w.cloud, &urls, &[]);
}

async fn browser_screenshot(w: &World, name: &str) {
    w.browser.save_screenshot(name).await.or_fail("screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_chunk_fails_the_download_and_leaves_no_file() {
    let Some(w) = world().await else { return };
    let name = "tampered.bin";
    let file = w.alice.path(name);
    make_file(&file, 3 * (1 << 20) + 5, 99);
    let (transfer, url) = send_link(&w, &file, "--chunk-size 1MiB").await;
    // Flip one byte inside chunk 1 in the payload store, as a damaged disk or an attacker with
    // the server's files would.
    let store = FsBlobStore::open(&w.cloud.state.config.config.transfers.blob_path).unwrap();
    let key = BlobKey::chunk(&TransferId::new(transfer.clone()).unwrap(), 1);
    let path = store.object_path(&key);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    match open_and_download(&w, &url, None, name).await {
        Outcome::Saved(path) => panic!("a tampered file was saved as {}", path.display()),
        Outcome::Refused(message) => {
            assert!(
                message.contains("chunk 1 failed authentication") && message.contains("stopped"),
                "a clear message: {message}"
            );
        }
    }
    browser_screenshot(&w, "link-tampered").await;
    // Chromium marks the download failed: no file under its name, now or a moment later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let left = files_in(w.downloads.path());
    eprintln!("after the failed download the folder holds {left:?}");
    assert!(
        !left.iter().any(|f| f == name),
        "no complete file may be left: {left:?}"
    );
    // mftctl receive refuses it too.
    let dir = w.alice.dir("received");
    let run = w
        .alice
        .line(&format!(
            "mftctl receive {transfer} --dir {}",
            dir.display()
        ))
        .await;
    assert_ne!(run.code, 0, "{run:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_expired_links_are_refused_and_a_passphrase_is_asked_for() {
    let Some(w) = world().await else { return };
    let file = w.alice.path("note.txt");
    make_file(&file, 4_321, 5);

    // Revoked with mftctl: the page says so.
    let (transfer, url) = send_link(&w, &file, "--max-downloads 3").await;
    let links = w
        .alice
        .line(&format!("mftctl --json transfers links {transfer}"))
        .await
        .ok()
        .json();
    let link_id = links[0]["id"].as_str().unwrap().to_string();
    assert_eq!(links[0]["max_downloads"], 3);
    w.alice
        .line(&format!("mftctl transfers links revoke {link_id}"))
        .await
        .ok();
    match open_and_download(&w, &url, None, "note.txt").await {
        Outcome::Refused(message) => assert!(message.contains("revoked"), "{message}"),
        Outcome::Saved(_) => panic!("a revoked link downloaded"),
    }
    browser_screenshot(&w, "link-revoked").await;

    // Expired: an hour's link, and the cloud's clock two hours on.
    let (_, expiring) = send_link(&w, &file, "--link-expires 1h").await;
    w.cloud.clock.advance_secs(2 * 3_600);
    match open_and_download(&w, &expiring, None, "note.txt").await {
        Outcome::Refused(message) => assert!(message.contains("expired"), "{message}"),
        Outcome::Saved(_) => panic!("an expired link downloaded"),
    }

    // A passphrase as well as the key: asked for, a wrong one said so, the right one opens.
    let passphrase = "correct horse battery staple";
    let pass_file = w.alice.path("link-pass");
    std::fs::write(&pass_file, format!("{passphrase}\n")).unwrap();
    std::fs::set_permissions(
        &pass_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let name = "with-passphrase.bin";
    let protected = w.alice.path(name);
    make_file(&protected, 70_000, 11);
    let (_, url) = send_link(
        &w,
        &protected,
        &format!(
            "--link-passphrase --link-passphrase-file {}",
            pass_file.display()
        ),
    )
    .await;
    // Without the key in the fragment the page says what is missing.
    let bare = url.split('#').next().unwrap().to_string();
    match open_and_download(&w, &bare, None, name).await {
        Outcome::Refused(message) => assert!(message.contains("missing its key"), "{message}"),
        Outcome::Saved(_) => panic!("a link without its key downloaded"),
    }
    w.browser
        .goto("about:blank")
        .await
        .or_fail("leave the last page");
    w.browser
        .goto(&url)
        .await
        .or_fail("open the protected link");
    let field = w
        .browser
        .wait_for("#link-passphrase:not([hidden]) #passphrase", WAIT)
        .await
        .or_fail("asked for the passphrase");
    field
        .send_keys("not the passphrase")
        .await
        .or_fail("type a wrong one");
    w.browser
        .find("#unlock")
        .await
        .or_fail("Unlock")
        .click()
        .await
        .or_fail("click");
    w.browser
        .wait_for_text("#passphrase-note", "does not open", Duration::from_secs(60))
        .await
        .or_fail("a wrong passphrase is said so");
    browser_screenshot(&w, "link-passphrase").await;
    match open_and_download(&w, &url, Some(passphrase), name).await {
        Outcome::Saved(saved) => assert_eq!(sha256_of(&saved), sha256_of(&protected)),
        Outcome::Refused(message) => panic!("the right passphrase: {message}"),
    }
    assert_never_stored(&w.cloud, &[url, expiring], &[passphrase]);
}

/// Version 1 streams need an incremental SHA-256 of the plaintext, which WebCrypto lacks: the
/// page's own (`sha256.js`, which the download worker loads) must agree with WebCrypto's one-shot
/// digest on every length around the block boundaries and across uneven pieces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incremental_sha256_agrees_with_webcrypto() {
    let Some(w) = world().await else { return };
    let browser = &w.browser;
    browser
        .goto(&format!("{}/s/not-a-link", w.cloud.url))
        .await
        .or_fail("a page of the cloud");
    let load = "const s = document.createElement('script'); s.src = '/static/sha256.js'; \
                return new Promise(ok => { s.onload = () => ok(typeof MftSha256); \
                document.head.appendChild(s); });";
    let loaded = browser.execute(load, &[]).await.or_fail("load sha256.js");
    assert_eq!(loaded, "function", "sha256.js loads under the page's CSP");
    let compare = "const hex = b => Array.from(new Uint8Array(b), x => x.toString(16).padStart(2, '0')).join(''); \
        const bad = []; \
        for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 65536, 1048579]) { \
          const data = new Uint8Array(n); \
          for (let i = 0; i < n; i++) data[i] = (i * 7919 + n) & 255; \
          const ours = new MftSha256(); \
          let at = 0, step = 1; \
          while (at < n) { ours.update(data.subarray(at, at + step)); at += step; step = step * 3 + 1; } \
          const expected = hex(await crypto.subtle.digest('SHA-256', data)); \
          if (hex(ours.digest()) !== expected) bad.push(n); \
        } \
        return bad;";
    let script = format!("return (async () => {{ {compare} }})();");
    let bad = browser
        .execute(&script, &[])
        .await
        .or_fail("compare digests");
    assert_eq!(
        bad,
        serde_json::json!([]),
        "lengths where sha256.js differs"
    );
}
