//! `mftctl send`, `receive`, `status ID` and `transfers …` as the real binary against a real
//! cloud on 127.0.0.1:0: every user has their own HOME (and so their own key pair).

mod cli_support;

use std::os::unix::fs::PermissionsExt;

use mftplus_blob::{BlobKey, FsBlobStore, TransferId};
use mftplus_cloud::testing::TestCloud;

use cli_support::{entries, mode_of, noise, send_id, user, Shell, PASSWORD};

#[tokio::test]
async fn send_receive_round_trip() {
    let cloud = TestCloud::spawn().await;
    let admin = Shell::admin(&cloud);
    let alice = user(&cloud, &admin, "alice@example.com", "user", true).await;
    let bob = user(&cloud, &admin, "bob@example.com", "user", true).await;
    let carol = user(&cloud, &admin, "carol@example.com", "user", true).await;

    let shown = bob.line("mftctl keys show --json").await.ok().json();
    assert!(shown["public_key"]
        .as_str()
        .unwrap()
        .starts_with("mftx25519_"));
    let init = bob.line("mftctl keys init").await.ok();
    assert!(init.stdout.contains("already present"), "{init:#?}");

    // ~300 KiB in 64 KiB chunks: several chunks and a short last one.
    let data = noise(300 * 1024 + 123, 0);
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
    let alice = user(&cloud, &admin, "alice@example.com", "user", true).await;
    let bob = user(&cloud, &admin, "bob@example.com", "user", true).await;

    let file = alice.path("secret.bin");
    std::fs::write(&file, noise(300 * 1024, 0)).unwrap();
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
    let alice = user(&cloud, &admin, "alice@example.com", "user", true).await;
    let recipient = user(&cloud, &admin, "recipient@example.com", "user", true).await;
    let dave = user(&cloud, &admin, "dave@example.com", "user", false).await;

    // Seed 001's exact shape, from the directory holding ./file.
    let data = noise(70_000, 0);
    std::fs::write(alice.path("file"), &data).unwrap();
    let sent = alice
        .line("mftctl send --encrypt ./file recipient@example.com")
        .await
        .ok();
    send_id(&sent);
    recipient.line("mftctl receive").await.ok();
    assert_eq!(std::fs::read(recipient.path("file")).unwrap(), data);

    // A recipient who is no user: a clear error before anything is uploaded. (One without a
    // key waits for the sender's grant instead: tests/grants.rs.)
    let refused = alice
        .line("mftctl send ./file nobody@example.com")
        .await
        .fails_with("unknown_recipient");
    assert!(
        refused.stderr.contains("nobody@example.com"),
        "{refused:#?}"
    );
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
    let alice = user(&cloud, &admin, "alice@example.com", "user", true).await;
    let bob = user(&cloud, &admin, "bob@example.com", "user", true).await;

    // Text so it survives the test harness's String stdin; several 64 KiB chunks.
    let text = "line of text from a pipe, not a file\n".repeat(6000);
    alice
        .run(
            "mftctl send - bob@example.com --chunk-size 64KiB",
            Some(&text),
        )
        .await
        .fails_with("usage");
    // Recipients may only be left out with --link.
    alice
        .run("mftctl send - --name piped.txt", Some(&text))
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

/// Seed 000, step 5: `mftctl send … --server http://hub:3002` and `mftctl status --server …`
/// through a real edge hub in front of the cloud, several chunks streamed through its proxy.
#[tokio::test]
async fn send_and_receive_through_a_hub() {
    let cloud = TestCloud::spawn().await;
    let hub = cli_support::hub_in_front(&cloud).await;
    let admin = Shell::admin(&cloud);
    let alice = user(&cloud, &admin, "alice@example.com", "user", true).await;
    let bob = user(&cloud, &admin, "bob@example.com", "user", true).await;
    let data = noise(3 * 1024 * 1024 + 17, 7);
    let file = alice.path("test-file.txt");
    std::fs::write(&file, &data).unwrap();
    let server = &hub.url;
    let sent = alice
        .line(&format!(
            "mftctl send {} bob@example.com --chunk-size 1MiB --server {server}",
            file.display()
        ))
        .await
        .ok();
    let id = send_id(&sent);
    let status = alice
        .line(&format!("mftctl status {id} --server {server}"))
        .await
        .ok();
    assert!(status.stdout.contains("bob@example.com"), "{status:#?}");
    let inbox = bob.path("inbox");
    std::fs::create_dir(&inbox).unwrap();
    bob.line(&format!(
        "mftctl receive {id} --dir {} --server {server}",
        inbox.display()
    ))
    .await
    .ok();
    assert_eq!(std::fs::read(inbox.join("test-file.txt")).unwrap(), data);
}
