//! `mftplus admin backup` and `mftplus admin restore` as an operator runs them (decision 0019,
//! docs/backup.md).
//!
//! The restore drill, on SQLite and on PostgreSQL: a real cloud takes writes from a client
//! (API keys, users, whole transfers) while the backup runs; the backup is restored into a new
//! database and payload folder with the CA put back from the secrets bundle; a cloud started
//! there has every write acknowledged before the backup started, the administrator signs in,
//! the keys authenticate, each transfer's ciphertext downloads byte for byte and decrypts, and
//! the audit chain verifies. Then the refusals: a target that is not empty, a backup without a
//! manifest, with a changed file, from a newer release or schema, or of the other backend; and
//! a chunk damaged in the source, reported by the backup and failing the restore's check.

mod backup_support;

use backup_support::*;
use mftplus_client::{Client, Credential};
use mftplus_crypto::audit::{verify_run, GENESIS_HASH};
use mftplus_crypto::stream::{Decryptor, Header, Identity, SealedChunk, X25519SecretKey};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TARGET_NOT_EMPTY: i32 = 4;
const REFUSED: i32 = 5;
const DAMAGED: i32 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_drill_on_sqlite() {
    let root = tempfile::tempdir().unwrap();
    drill(root.path(), None, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_drill_on_postgres() {
    let Some(source) = mftplus_store_postgres::testing::fresh_database().await else {
        return;
    };
    let target = mftplus_store_postgres::testing::fresh_database()
        .await
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    drill(root.path(), Some(source.url()), Some(target.url())).await;
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn transfers_in(acks: &Mutex<Vec<Ack>>) -> usize {
    let acks = acks.lock().unwrap();
    acks.iter()
        .filter(|a| matches!(a, Ack::Transfer(..)))
        .count()
}

/// What the source phase of the drill leaves for the restore phase.
struct Taken {
    acks: Vec<Ack>,
    /// How many of `acks` were acknowledged before the backup started.
    before: usize,
    secret: X25519SecretKey,
    out: PathBuf,
    bundle: PathBuf,
}

async fn drill(root: &Path, source_db: Option<&str>, target_db: Option<&str>) {
    let taken = back_up_under_load(root, source_db).await;
    let target = Deployment::new(&root.join("target"), target_db);
    put_back_ca(&taken.bundle, &target.ca);
    let from = taken.out.to_str().unwrap();
    let restored = target.admin(&["restore", "--from", from]).await;
    let output = text(&restored);
    assert!(restored.status.success(), "{output}");
    assert!(output.contains("verified: audit chain"), "{output}");
    assert!(output.contains("restore verified"), "{output}");
    // Once restored, the target is no longer empty: a second restore changes nothing.
    let again = target.admin(&["restore", "--from", from]).await;
    let output = text(&again);
    assert_eq!(again.status.code(), Some(TARGET_NOT_EMPTY), "{output}");
    assert!(output.contains("error[target_not_empty]"), "{output}");

    let cloud = target.start();
    let client = cloud.admin_client().await;
    for ack in &taken.acks[..taken.before] {
        check_write(&cloud.url, &client, &taken.secret, ack).await;
    }
    verify_audit(&client).await;
    point_in_time(&client).await;
    cloud.stop();
}

/// Two writers on a running source cloud — one of everything, one of API keys only, which
/// keeps requests in flight for the whole backup — and `mftplus admin backup` in the middle.
async fn back_up_under_load(root: &Path, source_db: Option<&str>) -> Taken {
    let source = Deployment::new(&root.join("source"), source_db);
    source.init_admin();
    let cloud = source.start();
    let client = cloud.admin_client().await;
    let secret = X25519SecretKey::generate().unwrap();
    client
        .put_my_key(&secret.public_key().to_encoded())
        .await
        .unwrap();
    let acks = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = [(1, true), (2, false)]
        .into_iter()
        .map(|(task, full)| {
            let client = client.clone();
            let writer = Writer {
                client,
                to: secret.public_key(),
                task,
                full,
            };
            tokio::spawn(write_load(
                writer,
                acks.clone(),
                errors.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let count = |acks: &Mutex<Vec<Ack>>| acks.lock().unwrap().len();
    wait_until("writes before the backup", || {
        count(&acks) >= 12 && transfers_in(&acks) >= 2
    })
    .await;
    // Everything in the list now was acknowledged before the backup process starts.
    let before = count(&acks);
    let (out, bundle) = (root.join("backup"), root.join("secrets"));
    let args = [
        "backup",
        "--out",
        out.to_str().unwrap(),
        "--secrets-out",
        bundle.to_str().unwrap(),
    ];
    let backup = source.admin(&args).await;
    let after_backup = count(&acks);
    // The writers keep going after the backup too: they never waited on it.
    wait_until("writes after the backup", || {
        count(&acks) >= after_backup + 3
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
    cloud.stop();
    check_backup_output(&backup, source_db);
    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "writes failed during the backup: {errors:?}"
    );
    eprintln!(
        "drill: {before} writes acknowledged before the backup, {} while it ran, {} in all",
        after_backup - before,
        count(&acks)
    );
    assert!(
        after_backup > before,
        "no write was acknowledged while the backup ran"
    );
    let acks = std::mem::take(&mut *acks.lock().unwrap());
    Taken {
        acks,
        before,
        secret,
        out,
        bundle,
    }
}

/// Each writer's keys come one after another, so a snapshot of one instant holds a prefix of
/// them: rounds 0..=n with no hole.
async fn point_in_time(client: &Client) {
    let keys = client.list_api_keys().await.unwrap();
    for task in [1, 2] {
        let prefix = format!("drill key {task}-");
        let mut rounds: Vec<u64> = keys
            .iter()
            .filter_map(|k| k.name.strip_prefix(&prefix)?.parse().ok())
            .collect();
        rounds.sort_unstable();
        let expected: Vec<u64> = (0..rounds.len() as u64).collect();
        assert_eq!(rounds, expected, "writer {task}'s keys are not a prefix");
    }
}

/// The backup succeeded, said that secrets are kept apart, and printed none.
fn check_backup_output(backup: &std::process::Output, source_db: Option<&str>) {
    let output = text(backup);
    assert!(backup.status.success(), "{output}");
    assert!(
        output.contains("SECRETS ARE NOT IN THIS BACKUP"),
        "{output}"
    );
    assert!(
        !output.contains(SECRET),
        "the JWT secret was printed: {output}"
    );
    if let Some(url) = source_db {
        assert!(
            !output.contains(url),
            "the database URL was printed: {output}"
        );
    }
}

/// Copies the CA folder from the secrets bundle to where the new deployment looks for it.
fn put_back_ca(bundle: &Path, ca: &Path) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("secrets.json")).unwrap()).unwrap();
    let item = index["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == "certificates.authority.dir")
        .expect("the CA folder is in the bundle");
    assert!(!index.to_string().contains(SECRET), "{index}");
    copy_dir(&bundle.join(item["bundled_as"].as_str().unwrap()), ca);
}

/// Copies a folder, keeping it private as the bundle has it (the cloud refuses a CA folder
/// others can read).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

async fn check_write(url: &str, client: &Client, secret: &X25519SecretKey, ack: &Ack) {
    match ack {
        Ack::User(email) => {
            let user = client.get_user(email).await;
            assert!(user.is_ok(), "user {email} lost: {user:?}");
        }
        Ack::ApiKey(id, key) => {
            client
                .get_api_key(id)
                .await
                .unwrap_or_else(|e| panic!("API key {id} lost: {e}"));
            let own = Client::new(url, Credential::ApiKey(key.clone())).unwrap();
            own.status()
                .await
                .unwrap_or_else(|e| panic!("API key {id} no longer authenticates: {e}"));
        }
        Ack::Transfer(id, sealed) => {
            let transfer = client.get_transfer(id).await.unwrap();
            assert_eq!(transfer.status, "complete", "{transfer:?}");
            let header = client.transfer_header(id).await.unwrap();
            let (header, _) = Header::parse(&header).unwrap();
            let mut decryptor = Decryptor::new(header, &[Identity::X25519(secret)]).unwrap();
            let mut plain = Vec::new();
            for chunk in &sealed.chunks {
                let bytes = client.transfer_chunk(id, chunk.index).await.unwrap();
                assert_eq!(bytes, chunk.bytes, "chunk {} of {id} differs", chunk.index);
                let opened = SealedChunk::from_bytes(chunk.index, chunk.last, bytes);
                plain.extend_from_slice(decryptor.open(&opened).unwrap());
            }
            let manifest = client.transfer_manifest(id).await.unwrap();
            decryptor.finish(&manifest).unwrap();
            assert_eq!(plain, sealed.data, "transfer {id} decrypts to other bytes");
        }
    }
}

/// `mftctl audit verify`'s check, over the API of the restored cloud.
async fn verify_audit(client: &Client) {
    let mut anchor: Option<(String, i64)> = None;
    let mut after = 0;
    let mut entries = 0;
    loop {
        let page = client.audit_page(after, 1000).await.unwrap();
        if page.entries.is_empty() {
            break;
        }
        if anchor.is_none() {
            assert_eq!(page.entries[0].seq, 1);
            assert_eq!(page.entries[0].prev_hash, GENESIS_HASH);
        }
        let from = anchor.as_ref().map(|(h, s)| (h.as_str(), *s));
        anchor = verify_run(from, &page.entries).expect("the restored audit chain verifies");
        entries += page.entries.len();
        match page.next_after_seq {
            Some(next) => after = next,
            None => break,
        }
    }
    assert!(entries > 10, "only {entries} audit entries");
}

/// A source deployment with one complete transfer, stopped, and its backup.
async fn small_backup(root: &Path) -> (Deployment, std::path::PathBuf) {
    let source = Deployment::new(&root.join("source"), None);
    source.init_admin();
    let cloud = source.start();
    let client = cloud.admin_client().await;
    let secret = X25519SecretKey::generate().unwrap();
    client
        .put_my_key(&secret.public_key().to_encoded())
        .await
        .unwrap();
    let data = vec![7u8; 70_000];
    send(&client, ADMIN, &seal(data, &secret.public_key()))
        .await
        .unwrap();
    cloud.stop();
    let out = root.join("backup");
    let backup = source
        .admin(&["backup", "--out", out.to_str().unwrap()])
        .await;
    assert!(backup.status.success(), "{}", text(&backup));
    (source, out)
}

#[tokio::test]
async fn restore_refuses_a_target_that_is_not_empty() {
    let root = tempfile::tempdir().unwrap();
    let (source, backup) = small_backup(root.path()).await;
    let from = backup.to_str().unwrap();

    // The source itself holds data: refused, and it is left as it was.
    let refused = source.admin(&["restore", "--from", from]).await;
    assert_eq!(
        refused.status.code(),
        Some(TARGET_NOT_EMPTY),
        "{}",
        text(&refused)
    );
    assert!(
        text(&refused).contains("is not empty"),
        "{}",
        text(&refused)
    );
    let db = rusqlite::Connection::open(source.dir.join("cloud.db")).unwrap();
    let users: i64 = db
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 1);

    // A new database, but a payload folder with something in it.
    let target = Deployment::new(&root.path().join("target"), None);
    std::fs::create_dir_all(&target.blobs).unwrap();
    std::fs::write(target.blobs.join("stray"), b"x").unwrap();
    let refused = target.admin(&["restore", "--from", from]).await;
    assert_eq!(
        refused.status.code(),
        Some(TARGET_NOT_EMPTY),
        "{}",
        text(&refused)
    );
    assert!(
        text(&refused).contains("transfers.blob_path"),
        "{}",
        text(&refused)
    );
    assert!(!target.dir.join("cloud.db").exists());
}

#[tokio::test]
async fn restore_refuses_unfinished_changed_newer_and_other_backend_backups() {
    let root = tempfile::tempdir().unwrap();
    let (_, backup) = small_backup(root.path()).await;
    for (n, (what, change, code, expected)) in tamper_cases().into_iter().enumerate() {
        let copy = root.path().join(format!("backup-{n}"));
        copy_dir(&backup, &copy);
        change(&copy);
        let target = Deployment::new(&root.path().join(format!("target-{n}")), None);
        let refused = target
            .admin(&["restore", "--from", copy.to_str().unwrap()])
            .await;
        let output = text(&refused);
        assert_eq!(refused.status.code(), Some(REFUSED), "{what}: {output}");
        assert!(
            output.contains(&format!("error[{code}]")),
            "{what}: {output}"
        );
        assert!(
            output.contains(expected),
            "{what}: expected {expected:?} in {output}"
        );
        assert!(
            !target.dir.join("cloud.db").exists(),
            "{what}: the target was touched"
        );
        assert!(
            !target.blobs.exists(),
            "{what}: the payload folder was touched"
        );
    }
}

type Change = fn(&Path);

/// What is changed in a copy of a good backup, the error code and a text the refusal names.
fn tamper_cases() -> Vec<(&'static str, Change, &'static str, &'static str)> {
    vec![
        (
            "no manifest",
            |b| std::fs::remove_file(b.join("manifest.json")).unwrap(),
            "backup_incomplete",
            "did not finish",
        ),
        (
            "a changed database file",
            |b| flip_a_byte(&b.join("database.sqlite3")),
            "backup_tampered",
            "database.sqlite3",
        ),
        (
            "a changed chunk copy",
            |b| flip_a_byte(&first_chunk_file(&b.join("blobs")).unwrap()),
            "backup_tampered",
            "chunk 0 of transfer",
        ),
        (
            "a changed payload list",
            |b| flip_a_byte(&b.join("payloads.jsonl")),
            "backup_tampered",
            "payloads.jsonl",
        ),
        (
            "a newer release",
            |b| edit_manifest(b, |m| m["product_version"] = "99.0.0".into()),
            "backup_newer",
            "release 99.0.0",
        ),
        (
            "a newer schema",
            |b| {
                edit_manifest(b, |m| {
                    m["database"]["migrations"]
                        .as_array_mut()
                        .unwrap()
                        .push("9999_future".into())
                })
            },
            "backup_newer",
            "9999_future",
        ),
        (
            "a newer layout",
            |b| edit_manifest(b, |m| m["format_version"] = 2.into()),
            "backup_newer",
            "format version 2",
        ),
        (
            "the other backend",
            |b| edit_manifest(b, |m| m["database"]["backend"] = "postgres".into()),
            "backend_mismatch",
            "across backends",
        ),
    ]
}

fn edit_manifest(dir: &Path, change: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    change(&mut manifest);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

#[tokio::test]
async fn a_chunk_damaged_in_the_source_is_reported_and_fails_the_restore_check() {
    let root = tempfile::tempdir().unwrap();
    let source = Deployment::new(&root.path().join("source"), None);
    source.init_admin();
    let cloud = source.start();
    let client = cloud.admin_client().await;
    let secret = X25519SecretKey::generate().unwrap();
    client
        .put_my_key(&secret.public_key().to_encoded())
        .await
        .unwrap();
    let id = send(
        &client,
        ADMIN,
        &seal(vec![3u8; 70_000], &secret.public_key()),
    )
    .await
    .unwrap();
    cloud.stop();
    // Bit rot in the live payload store.
    flip_a_byte(&first_chunk_file(&source.blobs).unwrap());

    let out = root.path().join("backup");
    let backup = source
        .admin(&["backup", "--out", out.to_str().unwrap()])
        .await;
    let output = text(&backup);
    assert_eq!(backup.status.code(), Some(DAMAGED), "{output}");
    assert!(output.contains("error[source_damaged]"), "{output}");
    assert!(output.contains(&format!("of transfer {id}")), "{output}");
    assert!(
        out.join("manifest.json").exists(),
        "the backup was still written"
    );

    let target = Deployment::new(&root.path().join("target"), None);
    let restored = target
        .admin(&["restore", "--from", out.to_str().unwrap()])
        .await;
    let output = text(&restored);
    assert_eq!(restored.status.code(), Some(DAMAGED), "{output}");
    assert!(output.contains("error[verification_failed]"), "{output}");
    assert!(
        output.contains(&format!("of transfer {id}: the stored bytes do not match")),
        "{output}"
    );
    // Everything else did verify.
    assert!(output.contains("verified: audit chain"), "{output}");
}

/// An S3 payload store is referenced, not copied: the backup records each object's key and
/// hash, a restore onto the same bucket verifies every object, a restore onto a folder is
/// refused, and an object deleted from the bucket fails the restore's check.
#[tokio::test]
async fn an_s3_payload_store_is_referenced_and_checked_on_restore() {
    let Some(moto) = mftplus_blob::testing::Moto::start().await else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let bucket = mftplus_blob::testing::BUCKET;
    let source = Deployment::on_s3(&root.path().join("source"), &moto.endpoint, bucket, "drill");
    source.init_admin();
    let cloud = source.start();
    let client = cloud.admin_client().await;
    let secret = X25519SecretKey::generate().unwrap();
    client
        .put_my_key(&secret.public_key().to_encoded())
        .await
        .unwrap();
    // Three chunks: two full ones in the bucket, the small last one in the database
    // (decision 0037), which the database copy carries.
    let sealed = seal(vec![9u8; 140_000], &secret.public_key());
    let id = send(&client, ADMIN, &sealed).await.unwrap();
    cloud.stop();

    let out = root.path().join("backup");
    let backup = source
        .admin(&["backup", "--out", out.to_str().unwrap()])
        .await;
    let output = text(&backup);
    assert!(backup.status.success(), "{output}");
    assert!(output.contains("referenced in the S3 bucket"), "{output}");
    assert!(
        !output.contains(S3_SECRET),
        "the S3 secret was printed: {output}"
    );
    assert!(!out.join("blobs").exists(), "S3 objects were copied");
    let from = out.to_str().unwrap();

    let folder = Deployment::new(&root.path().join("folder"), None);
    let refused = folder.admin(&["restore", "--from", from]).await;
    assert_eq!(refused.status.code(), Some(REFUSED), "{}", text(&refused));
    assert!(
        text(&refused).contains("error[backend_mismatch]"),
        "{}",
        text(&refused)
    );

    let target = Deployment::on_s3(&root.path().join("target"), &moto.endpoint, bucket, "drill");
    let restored = target.admin(&["restore", "--from", from]).await;
    let output = text(&restored);
    assert!(restored.status.success(), "{output}");
    let in_bucket = sealed
        .chunks
        .iter()
        .filter(|c| c.bytes.len() > mftplus_store::MAX_INLINE_CHUNK)
        .count();
    assert_eq!(in_bucket, 2);
    assert!(
        output.contains(&format!("verified: {in_bucket} chunks")),
        "{output}"
    );

    let store = moto.store("drill");
    let tid = mftplus_blob::TransferId::new(id.clone()).unwrap();
    mftplus_blob::BlobStore::delete(&store, &mftplus_blob::BlobKey::chunk(&tid, 1))
        .await
        .unwrap();
    let again = Deployment::on_s3(&root.path().join("again"), &moto.endpoint, bucket, "drill");
    let failed = again.admin(&["restore", "--from", from]).await;
    let output = text(&failed);
    assert_eq!(failed.status.code(), Some(DAMAGED), "{output}");
    assert!(
        output.contains(&format!(
            "chunk 1 of transfer {id}: absent from the payload store"
        )),
        "{output}"
    );
}
