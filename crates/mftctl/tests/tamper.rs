//! Tampering with what the cloud stores, and who may touch whose transfer, through the real
//! `mftctl` binary against a real cloud (SQLite file and filesystem blob store we can reach).
//!
//! A chunk's bytes are where the cloud keeps them: the short last chunk in its database row
//! (decision 0037), the full ones in the blob folder; tampering goes to whichever holds them.
//!
//! Every stored-ciphertext tampering must make `transfers verify` exit 1 naming the damage, and
//! `receive` fail with a clear error leaving neither the file nor its temporary file. Tampering
//! that also rewrites the database to look consistent gets past the server's checks by
//! construction; there only the recipient's authenticated decryption can catch it.

mod cli_support;

use std::path::{Path, PathBuf};

use cli_support::{entries, noise, send_id, user, Run, Shell};
use mftplus_blob::{BlobKey, FsBlobStore, TransferId};
use mftplus_cloud::testing::{TestCloud, TestOptions};

/// 300 KiB + 123 B in 64 KiB chunks: full chunks 0..=3 in the blob folder and a short last
/// chunk 4 in its database row.
const FILE_LEN: usize = 300 * 1024 + 123;
const LAST: u64 = 4;

/// A cloud whose SQLite file and blob folder the test can reach, a sender and a recipient.
struct Lab {
    cloud: TestCloud,
    admin: Shell,
    alice: Shell,
    bob: Shell,
    db: PathBuf,
    blobs: FsBlobStore,
    _dir: tempfile::TempDir,
}

impl Lab {
    async fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("cloud.db");
        let cloud = TestCloud::spawn_with(TestOptions {
            database_url: Some(format!("sqlite://{}", db.display())),
            ..TestOptions::default()
        })
        .await;
        let admin = Shell::admin(&cloud);
        let alice = user(&cloud, &admin, "alice@example.com", "user", true).await;
        let bob = user(&cloud, &admin, "bob@example.com", "user", true).await;
        let blobs = FsBlobStore::open(&cloud.state.config.config.transfers.blob_path).unwrap();
        Lab {
            cloud,
            admin,
            alice,
            bob,
            db,
            blobs,
            _dir: dir,
        }
    }

    /// Alice sends a fresh file (content chosen by `seed`) to Bob; returns the transfer id.
    async fn send(&self, name: &str, seed: u64) -> String {
        let file = self.alice.path(name);
        std::fs::write(&file, noise(FILE_LEN, seed)).unwrap();
        let sent = self
            .alice
            .line(&format!(
                "mftctl send {} bob@example.com --chunk-size 64KiB",
                file.display()
            ))
            .await
            .ok();
        send_id(&sent)
    }

    fn chunk_path(&self, id: &str, index: u64) -> PathBuf {
        let id = TransferId::new(id).unwrap();
        self.blobs.object_path(&BlobKey::chunk(&id, index))
    }

    /// The bytes of a chunk kept in its database row; `None` for one in the blob folder.
    fn row_bytes(&self, id: &str, index: u64) -> Option<Vec<u8>> {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        conn.query_row(
            "SELECT data FROM transfer_chunks WHERE transfer_id = ?1 AND idx = ?2",
            rusqlite::params![id, index as i64],
            |row| row.get(0),
        )
        .unwrap()
    }

    fn read_chunk(&self, id: &str, index: u64) -> Vec<u8> {
        self.row_bytes(id, index)
            .unwrap_or_else(|| std::fs::read(self.chunk_path(id, index)).unwrap())
    }

    fn write_chunk(&self, id: &str, index: u64, bytes: &[u8]) {
        if self.row_bytes(id, index).is_some() {
            let conn = rusqlite::Connection::open(&self.db).unwrap();
            conn.execute(
                "UPDATE transfer_chunks SET data = ?3 WHERE transfer_id = ?1 AND idx = ?2",
                rusqlite::params![id, index as i64, bytes],
            )
            .unwrap();
        } else {
            std::fs::write(self.chunk_path(id, index), bytes).unwrap();
        }
    }

    /// The chunk's bytes lost, its row kept: the blob file removed, or the row's bytes cleared.
    fn lose_chunk(&self, id: &str, index: u64) {
        if self.row_bytes(id, index).is_some() {
            self.sql(&format!(
                "UPDATE transfer_chunks SET data = NULL WHERE transfer_id = '{id}' AND idx = {index};"
            ));
        } else {
            std::fs::remove_file(self.chunk_path(id, index)).unwrap();
        }
    }

    fn swap_chunks(&self, id: &str, a: u64, b: u64) {
        let (first, second) = (self.read_chunk(id, a), self.read_chunk(id, b));
        self.write_chunk(id, a, &second);
        self.write_chunk(id, b, &first);
    }

    /// Someone with write access to the database.
    fn sql(&self, statements: &str) {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        conn.execute_batch(statements).unwrap();
    }

    fn recorded_sha(&self, id: &str, index: u64) -> String {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        conn.query_row(
            "SELECT sha256 FROM transfer_chunks WHERE transfer_id = ?1 AND idx = ?2",
            rusqlite::params![id, index as i64],
            |row| row.get(0),
        )
        .unwrap()
    }

    /// `transfers verify` as the sender exits 1 and its report names `damage`.
    async fn verify_reports(&self, id: &str, damage: &str) {
        let run = self
            .alice
            .line(&format!("mftctl transfers verify {id}"))
            .await;
        assert_eq!(run.code, 1, "verify must fail: {run:#?}");
        assert!(run.stdout.contains("NOT intact"), "{run:#?}");
        assert!(run.stdout.contains(damage), "expected {damage:?}: {run:#?}");
    }

    /// `transfers verify` passes: the server's own records agree with its blobs.
    async fn verify_passes(&self, id: &str) {
        let run = self
            .alice
            .line(&format!("mftctl transfers verify {id}"))
            .await
            .ok();
        assert!(run.stdout.contains("intact"), "{run:#?}");
    }

    /// Bob's `receive ID --dir D` fails with `code`, says what broke and that nothing was
    /// written, and D is left exactly as empty as it was.
    async fn receive_refused(&self, id: &str, code: &str, mention: &str) -> Run {
        let dir = self.bob.dir(&format!("in-{id}"));
        let run = self
            .bob
            .line(&format!("mftctl receive {id} --dir {}", dir.display()))
            .await
            .fails_with(code);
        assert!(
            run.stderr.contains(mention),
            "expected {mention:?}: {run:#?}"
        );
        assert!(run.stderr.contains("nothing was written"), "{run:#?}");
        assert_no_output(&dir);
        run
    }
}

#[track_caller]
fn assert_no_output(dir: &Path) {
    assert!(
        entries(dir).is_empty(),
        "no file and no temporary file may be left: {:?}",
        entries(dir)
    );
}

#[tokio::test]
async fn flipped_bit_in_a_stored_chunk() {
    let lab = Lab::new().await;
    let id = lab.send("flip.bin", 1).await;
    // The last byte is in the AEAD tag of the last chunk.
    let mut bytes = lab.read_chunk(&id, LAST);
    *bytes.last_mut().unwrap() ^= 0x80;
    lab.write_chunk(&id, LAST, &bytes);

    lab.verify_reports(&id, "corrupt chunks: 4").await;
    lab.receive_refused(&id, "integrity", "chunk 4").await;
}

#[tokio::test]
async fn dropped_last_chunk() {
    let lab = Lab::new().await;
    let id = lab.send("drop.bin", 2).await;
    assert!(
        lab.row_bytes(&id, LAST).is_some(),
        "the short last chunk is in its row"
    );
    lab.lose_chunk(&id, LAST);

    lab.verify_reports(&id, "missing chunks: 4").await;
    // A storage fault on the server, not an attack the crypto sees: whatever the code, the
    // message must say which chunk could not be had.
    let dir = lab.bob.dir("in");
    let run = lab
        .bob
        .line(&format!("mftctl receive {id} --dir {}", dir.display()))
        .await;
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.starts_with("error: "), "{run:#?}");
    assert!(run.stderr.contains("chunk 4"), "name the chunk: {run:#?}");
    assert!(run.stderr.contains("nothing was written"), "{run:#?}");
    assert_no_output(&dir);
}

#[tokio::test]
async fn swapped_chunks() {
    let lab = Lab::new().await;
    let id = lab.send("swap.bin", 3).await;
    lab.swap_chunks(&id, 1, 2);

    lab.verify_reports(&id, "corrupt chunks: 1, 2").await;
    lab.receive_refused(&id, "integrity", "chunk 1").await;
}

#[tokio::test]
async fn chunk_replayed_from_another_transfer() {
    let lab = Lab::new().await;
    let id = lab.send("target.bin", 4).await;
    let other = lab.send("other.bin", 5).await;
    // Same sender, same recipient, same index and size: only the keys differ.
    let replayed = lab.read_chunk(&other, 2);
    assert_eq!(replayed.len(), lab.read_chunk(&id, 2).len());
    lab.write_chunk(&id, 2, &replayed);

    lab.verify_reports(&id, "corrupt chunks: 2").await;
    lab.receive_refused(&id, "integrity", "chunk 2").await;
    // The donor is untouched and still arrives intact.
    lab.verify_passes(&other).await;
    let dir = lab.bob.dir("donor");
    lab.bob
        .line(&format!("mftctl receive {other} --dir {}", dir.display()))
        .await
        .ok();
    assert_eq!(
        std::fs::read(dir.join("other.bin")).unwrap(),
        noise(FILE_LEN, 5)
    );
}

/// Blobs swapped and their recorded hashes swapped to match: the server sees nothing wrong.
#[tokio::test]
async fn swap_with_rewritten_hashes_is_caught_by_the_recipient() {
    let lab = Lab::new().await;
    let id = lab.send("swap-db.bin", 6).await;
    let (sha1, sha2) = (lab.recorded_sha(&id, 1), lab.recorded_sha(&id, 2));
    lab.swap_chunks(&id, 1, 2);
    lab.sql(&format!(
        "UPDATE transfer_chunks SET sha256 = '{sha2}' WHERE transfer_id = '{id}' AND idx = 1;
         UPDATE transfer_chunks SET sha256 = '{sha1}' WHERE transfer_id = '{id}' AND idx = 2;"
    ));

    lab.verify_passes(&id).await;
    lab.receive_refused(&id, "integrity", "chunk 1").await;
}

/// The last chunk removed everywhere and the count lowered: a consistent, shorter transfer.
#[tokio::test]
async fn truncation_rewritten_in_the_database_is_caught_by_the_recipient() {
    let lab = Lab::new().await;
    let id = lab.send("cut.bin", 7).await;
    lab.lose_chunk(&id, LAST);
    lab.sql(&format!(
        "DELETE FROM transfer_chunks WHERE transfer_id = '{id}' AND idx = {LAST};
         UPDATE transfer_chunks SET last = 1 WHERE transfer_id = '{id}' AND idx = {};
         UPDATE transfers SET chunk_count = {LAST} WHERE id = '{id}';",
        LAST - 1
    ));

    lab.verify_passes(&id).await;
    // Chunk 3 was sealed as "not last", so opening it as the end of the stream fails.
    lab.receive_refused(&id, "integrity", "chunk 3").await;
}

/// Another transfer's chunk with its hash copied too: a replay the server cannot tell apart.
#[tokio::test]
async fn replay_with_rewritten_hash_is_caught_by_the_recipient() {
    let lab = Lab::new().await;
    let id = lab.send("target.bin", 8).await;
    let other = lab.send("other.bin", 9).await;
    lab.write_chunk(&id, 0, &lab.read_chunk(&other, 0));
    let sha = lab.recorded_sha(&other, 0);
    lab.sql(&format!(
        "UPDATE transfer_chunks SET sha256 = '{sha}' WHERE transfer_id = '{id}' AND idx = 0;"
    ));

    lab.verify_passes(&id).await;
    lab.receive_refused(&id, "integrity", "chunk 0").await;
}

/// Headers and manifests live in the database only; swapping them between two transfers
/// gives each a well-formed, authenticated-looking part made under the wrong key.
#[tokio::test]
async fn header_or_manifest_from_another_transfer() {
    let lab = Lab::new().await;
    let a = lab.send("a.bin", 10).await;
    let b = lab.send("b.bin", 11).await;
    let c = lab.send("c.bin", 12).await;
    lab.sql(&format!(
        "UPDATE transfers SET header = (SELECT header FROM transfers WHERE id = '{b}') WHERE id = '{a}';
         UPDATE transfers SET manifest = (SELECT manifest FROM transfers WHERE id = '{b}') WHERE id = '{c}';"
    ));

    // Bob opens b's header with his key: valid MAC, wrong payload key for a's chunks.
    lab.receive_refused(&a, "integrity", "chunk 0").await;
    // Every chunk of c decrypts into the temporary file; the manifest does not, and the
    // temporary file must go.
    lab.receive_refused(&c, "integrity", "manifest").await;
    lab.verify_passes(&b).await;
    // The failed receive fetched c's manifest, but only a verified download counts: c stays
    // pending for Bob, while b, received intact, no longer is.
    let pending = |id: &str| {
        let id = id.to_string();
        let bob = &lab.bob;
        async move {
            let shown = bob
                .line(&format!("mftctl --json transfers show {id}"))
                .await
                .ok()
                .json();
            shown["recipients"][0]["downloaded_at"].is_null()
        }
    };
    assert!(pending(&c).await, "a refused download must stay pending");
    let dir = lab.bob.dir("in-b");
    lab.bob
        .line(&format!("mftctl receive {b} --dir {}", dir.display()))
        .await
        .ok();
    assert!(!pending(&b).await, "a verified download is marked received");
}

#[tokio::test]
async fn readonly_cannot_send_and_strangers_cannot_touch() {
    let lab = Lab::new().await;
    let carol = user(&lab.cloud, &lab.admin, "carol@example.com", "user", true).await;
    let rita = user(&lab.cloud, &lab.admin, "rita@example.com", "readonly", true).await;
    let id = lab.send("private.bin", 13).await;

    // A readonly user cannot send: refused up front, nothing created.
    std::fs::write(rita.path("mine.bin"), noise(1000, 14)).unwrap();
    let refused = rita
        .line("mftctl send ./mine.bin bob@example.com")
        .await
        .fails_with("forbidden");
    assert!(refused.stderr.contains("transfers:create"), "{refused:#?}");
    let all = lab
        .admin
        .line("mftctl transfers list --json")
        .await
        .ok()
        .json();
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id.as_str()], "{all:#}");

    // A user who is neither sender nor recipient: the transfer does not exist for them.
    let list = carol.line("mftctl transfers list --json").await.ok().json();
    assert_eq!(list, serde_json::json!([]), "{list:#}");
    for line in [
        format!("mftctl transfers show {id}"),
        format!("mftctl status {id}"),
        format!("mftctl transfers verify {id}"),
        format!("mftctl transfers cancel {id}"),
    ] {
        carol.line(&line).await.fails_with("not_found");
    }
    let dir = carol.dir("in");
    carol
        .line(&format!("mftctl receive {id} --dir {}", dir.display()))
        .await
        .fails_with("not_found");
    assert_no_output(&dir);
    // Nor does a receive of everything pending pick it up.
    let pending = carol
        .line(&format!("mftctl receive --dir {}", dir.display()))
        .await
        .ok();
    assert!(
        pending.stderr.contains("nothing to receive"),
        "{pending:#?}"
    );
    assert_no_output(&dir);

    // readonly holds transfers:read: it may see and verify the ciphertext, which it cannot
    // open, and may not cancel.
    let seen = rita.line("mftctl transfers list").await.ok();
    assert!(seen.stdout.contains(&id), "{seen:#?}");
    rita.line(&format!("mftctl transfers verify {id}"))
        .await
        .ok();
    rita.line(&format!("mftctl transfers cancel {id}"))
        .await
        .fails_with("forbidden");
    let dir = rita.dir("in");
    rita.line(&format!("mftctl receive {id} --dir {}", dir.display()))
        .await
        .fails_with("no_key");
    assert_no_output(&dir);

    // Still intact and still Bob's to receive.
    let dir = lab.bob.dir("in");
    lab.bob
        .line(&format!("mftctl receive {id} --dir {}", dir.display()))
        .await
        .ok();
    assert_eq!(
        std::fs::read(dir.join("private.bin")).unwrap(),
        noise(FILE_LEN, 13)
    );
}

/// Seed 001, word for word, once the recipient exists and has logged in once.
#[tokio::test]
async fn seed_001_send_line() {
    let lab = Lab::new().await;
    let recipient = user(
        &lab.cloud,
        &lab.admin,
        "recipient@example.com",
        "user",
        true,
    )
    .await;
    let data = b"quarterly numbers, not for the public\n".repeat(100);
    std::fs::write(lab.alice.path("sensitive-file.txt"), &data).unwrap();
    let sent = lab
        .alice
        .line("mftctl send --encrypt ./sensitive-file.txt recipient@example.com")
        .await
        .ok();
    let id = send_id(&sent);
    let got = recipient.line("mftctl receive").await.ok();
    assert!(got.stdout.contains("sensitive-file.txt"), "{got:#?}");
    assert_eq!(
        std::fs::read(recipient.path("sensitive-file.txt")).unwrap(),
        data
    );
    lab.bob
        .line(&format!("mftctl transfers show {id}"))
        .await
        .fails_with("not_found");
}
