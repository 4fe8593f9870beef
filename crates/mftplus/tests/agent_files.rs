//! The agents' file inbox and outbox, every part real: two `mftplus agent` processes enrolled
//! with a real cloud; files dropped into one box's outbox folder arrive in the other's inbox,
//! decrypted and verified, once each — also when either agent is killed with SIGKILL midway.

mod agent_support;

use agent_support::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A cloud where a customer may have two boxes (one sends, one receives).
async fn two_box_cloud() -> mftplus_cloud::testing::TestCloud {
    let mut options = mftplus_cloud::testing::TestOptions::default();
    options
        .config_yaml
        .push_str("fleet:\n  poll_interval_seconds: 1\n  max_hosts_per_customer: 2\n");
    mftplus_cloud::testing::TestCloud::spawn_with(options).await
}

/// A box with a file section: `inbox`, and an outbox rule sending `outbox` to `to`.
fn files_box(dir: &Path, server: &str, files_yaml: &str) -> Box {
    let agent_box = Box::with_driver(dir, server, "none");
    let mut config = std::fs::read_to_string(&agent_box.config).unwrap();
    config.push_str(files_yaml);
    std::fs::write(&agent_box.config, config).unwrap();
    agent_box
}

/// The receiving box (inbox `inbox`), enrolled through `server` and started, once the cloud
/// has its transfer key (senders encrypt to it): the box, its host id and its process.
async fn receiving_box(
    cloud: &mftplus_cloud::testing::TestCloud,
    server: &str,
    dir: &Path,
    inbox: &Path,
) -> (Box, String, Proc) {
    receiving_box_every(cloud, server, dir, inbox, "1s").await
}

/// [`receiving_box`] whose inbox checks every `interval` (YAML duration).
async fn receiving_box_every(
    cloud: &mftplus_cloud::testing::TestCloud,
    server: &str,
    dir: &Path,
    inbox: &Path,
    interval: &str,
) -> (Box, String, Proc) {
    let receiver = files_box(
        dir,
        server,
        &format!(
            "files:\n  inbox: {}\n  check_interval: {interval}\n",
            inbox.display()
        ),
    );
    let receiver_id = enrolled_host_id(&receiver.enroll("kovacs", &[]));
    let receiving = receiver.start();
    let operator = operator(cloud);
    eventually(
        Duration::from_secs(30),
        "the receiver's transfer key",
        &[&receiving],
        || async { operator.host_transfer_key(&receiver_id).await.ok() },
    )
    .await;
    (receiver, receiver_id, receiving)
}

/// An outbox rule (YAML list item) sending `folder` to the host `to`.
fn outbox_rule(folder: &Path, to: &str) -> String {
    format!(
        "    - watch: {}\n      to: [\"host:{to}\"]\n      settle: 1s\n",
        folder.display()
    )
}

/// A sending box whose outbox rules are `rules` (from [`outbox_rule`]), enrolled through
/// `server`.
fn sending_box(dir: &Path, server: &str, rules: &[String]) -> Box {
    sending_box_every(dir, server, rules, "1s")
}

/// [`sending_box`] whose outbox checks every `interval` (YAML duration).
fn sending_box_every(dir: &Path, server: &str, rules: &[String], interval: &str) -> Box {
    let sender = files_box(
        dir,
        server,
        &format!(
            "files:\n  check_interval: {interval}\n  outbox:\n{}",
            rules.concat()
        ),
    );
    enrolled_host_id(&sender.enroll("kovacs", &[]));
    sender
}

fn digests(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (!name.starts_with('.')).then(|| {
                (
                    name,
                    format!("{:x}", Sha256::digest(std::fs::read(e.path()).unwrap())),
                )
            })
        })
        .collect()
}

/// Deterministic content of `len` bytes for file `i`.
fn content(i: usize, len: usize) -> Vec<u8> {
    let seed = Sha256::digest(i.to_le_bytes());
    (0..len).map(|k| seed[k % 32] ^ (k / 32) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_files_arrive_once_in_the_other_agents_inbox_through_crashes() {
    let cloud = two_box_cloud().await;
    customer(&cloud, "kovacs").await;
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let outbox = dir.path().join("outbox");

    // The receiving box first: senders need its registered key.
    let (receiver, receiver_id, mut receiving) =
        receiving_box(&cloud, &cloud.url, &dir.path().join("b"), &inbox).await;
    let sender = sending_box(
        &dir.path().join("a"),
        &cloud.url,
        &[outbox_rule(&outbox, &receiver_id)],
    );
    let mut sending = sender.start();

    // 1,000 files of mixed sizes; some written slowly, some announced with a `.done` marker.
    std::fs::create_dir_all(&outbox).unwrap();
    let mut expected = BTreeMap::new();
    let total = 1000;
    for i in 0..total {
        let len = match i % 100 {
            0 => 3 << 20,
            1..=9 => 200 << 10,
            _ => i % 4096,
        };
        let body = content(i, len);
        let name = format!("file-{i:04}.bin");
        expected.insert(name.clone(), format!("{:x}", Sha256::digest(&body)));
        let path = outbox.join(&name);
        if i % 250 == 7 {
            // Written in two halves with a pause longer than `settle` would be if it counted
            // from the first write: the size change restarts it.
            let mut f = std::fs::File::create(&path).unwrap();
            f.write_all(&body[..len / 2]).unwrap();
            f.flush().unwrap();
            std::thread::sleep(Duration::from_millis(600));
            f.write_all(&body[len / 2..]).unwrap();
        } else {
            std::fs::write(&path, &body).unwrap();
        }
        if i % 10 == 3 {
            std::fs::write(outbox.join(format!("{name}.done")), b"").unwrap();
        }
        // Crashes midway: the sender at 300, the receiver at 600; both come back.
        if i == 300 {
            sending.kill_9();
            sending = sender.start();
        }
        if i == 600 {
            receiving.kill_9();
            receiving = receiver.start();
        }
    }

    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let got = digests(&inbox);
        if got.len() >= total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {total} arrived\n--- sender\n{}\n--- receiver\n{}",
            got.len(),
            sending.logs(),
            receiving.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A moment more: a duplicate would show up as `name (2).bin`.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = digests(&inbox);
    assert_eq!(got, expected, "every file once, intact");
    let sent: Vec<PathBuf> = std::fs::read_dir(outbox.join("sent"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(sent.len(), total, "every file moved to sent/");
    assert!(!outbox.join("failed").exists() || digests(&outbox.join("failed")).is_empty());
    let left: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "nothing left in the outbox: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_moves_the_file_to_failed_with_the_reason() {
    let cloud = fast_cloud().await;
    customer(&cloud, "kovacs").await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let sender = files_box(
        &dir.path().join("a"),
        &cloud.url,
        &format!(
            "files:\n  check_interval: 1s\n  outbox:\n    - watch: {}\n      to: [\"nobody@example.com\"]\n      settle: 1s\n",
            outbox.display()
        ),
    );
    enrolled_host_id(&sender.enroll("kovacs", &[]));
    std::fs::create_dir_all(&outbox).unwrap();
    std::fs::write(outbox.join("report.csv"), b"a,b\n").unwrap();
    let agent = sender.start();
    let reason_file = outbox.join("failed/report.csv.reason.txt");
    eventually(
        Duration::from_secs(30),
        "the file in failed/",
        &[&agent],
        || async { reason_file.exists().then_some(()) },
    )
    .await;
    let reason = std::fs::read_to_string(&reason_file).unwrap();
    assert!(reason.contains("nobody@example.com"), "{reason}");
    assert_eq!(
        std::fs::read(outbox.join("failed/report.csv")).unwrap(),
        b"a,b\n"
    );
    assert!(!outbox.join("report.csv").exists());
}

/// Both boxes behind one edge hub (their only change is the server URL): the files still
/// arrive, the hub passing the transfer routes to the cloud.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_an_edge_hub_files_still_arrive() {
    let cloud = two_box_cloud().await;
    customer(&cloud, "kovacs").await;
    let dir = tempfile::tempdir().unwrap();
    let (_hub, hub_url) = hub_process(&cloud, dir.path()).await;
    let inbox = dir.path().join("inbox");
    let outbox = dir.path().join("outbox");
    let (_receiver, receiver_id, receiving) =
        receiving_box(&cloud, &hub_url, &dir.path().join("b"), &inbox).await;
    let sender = sending_box(
        &dir.path().join("a"),
        &hub_url,
        &[outbox_rule(&outbox, &receiver_id)],
    );
    let sending = sender.start();
    std::fs::create_dir_all(&outbox).unwrap();
    let mut expected = BTreeMap::new();
    for i in 0..10 {
        let body = content(i, 1000 + i * 7919);
        let name = format!("via-hub-{i}.dat");
        expected.insert(name.clone(), format!("{:x}", Sha256::digest(&body)));
        std::fs::write(outbox.join(&name), &body).unwrap();
    }
    eventually(
        Duration::from_secs(60),
        "ten files through the hub",
        &[&sending, &receiving],
        || async { (digests(&inbox).len() >= 10).then_some(()) },
    )
    .await;
    assert_eq!(digests(&inbox), expected);
}

/// Files of the same name from two outbox folders, received in the same passes (several at
/// once, and larger ones one at a time): each lands under its own name (`x.dat`,
/// `x (2).dat`), none over another, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_of_one_name_received_at_once_each_get_their_own_name() {
    let cloud = two_box_cloud().await;
    customer(&cloud, "kovacs").await;
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let (left, right) = (dir.path().join("left"), dir.path().join("right"));
    let (receiver, receiver_id, receiving) =
        receiving_box(&cloud, &cloud.url, &dir.path().join("b"), &inbox).await;
    // The receiver is stopped while the files go out, so its next pass finds all of them.
    drop(receiving);
    let sender = sending_box(
        &dir.path().join("a"),
        &cloud.url,
        &[
            outbox_rule(&left, &receiver_id),
            outbox_rule(&right, &receiver_id),
        ],
    );
    let mut bodies = Vec::new();
    for (side, folder) in [&left, &right].into_iter().enumerate() {
        std::fs::create_dir_all(folder).unwrap();
        for i in 0..6 {
            // `same-5` is over one 10 MiB chunk: larger files take the one-at-a-time path.
            let len = if i == 5 {
                (10 << 20) + 4096
            } else {
                500 + i * 311
            };
            let body = content(side * 100 + i, len);
            bodies.push(format!("{:x}", Sha256::digest(&body)));
            std::fs::write(folder.join(format!("same-{i}.dat")), &body).unwrap();
        }
    }
    let sending = sender.start();
    eventually(
        Duration::from_secs(60),
        "all twelve files in sent/",
        &[&sending],
        || async {
            let sent = |f: &Path| digests(&f.join("sent")).len();
            (left.join("sent").is_dir() && right.join("sent").is_dir())
                .then(|| sent(&left) + sent(&right))
                .filter(|n| *n == 12)
        },
    )
    .await;
    let receiving = receiver.start();
    eventually(
        Duration::from_secs(60),
        "twelve files in the inbox",
        &[&receiving],
        || async { (digests(&inbox).len() >= 12).then_some(()) },
    )
    .await;
    // Each name was free when it was linked: no placement was refused and tried again (two
    // transfers choosing the same name while one waits for its record's sync would be).
    let refused: Vec<String> = receiving
        .logs()
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("inbox:"))
        .map(str::to_string)
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
    let received = digests(&inbox);
    for i in 0..6 {
        assert!(
            received.contains_key(&format!("same-{i}.dat")),
            "{received:?}"
        );
        assert!(
            received.contains_key(&format!("same-{i} (2).dat")),
            "{received:?}"
        );
    }
    let mut got: Vec<_> = received.into_values().collect();
    got.sort();
    bodies.sort();
    assert_eq!(got, bodies, "every file once, none overwritten");
}

/// A crash between recording a file's name and linking it there: the restarted receiver
/// places the file under the recorded name — not `name (2)` beside a name nothing will fill.
/// (The crash is stood in for by writing the record while the receiver is stopped; CI caught
/// the real one in the thousand-file test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placement_a_crash_cut_short_lands_under_its_recorded_name() {
    let cloud = two_box_cloud().await;
    customer(&cloud, "kovacs").await;
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let outbox = dir.path().join("outbox");
    let (receiver, receiver_id, receiving) =
        receiving_box(&cloud, &cloud.url, &dir.path().join("b"), &inbox).await;
    drop(receiving);
    let sender = sending_box(
        &dir.path().join("a"),
        &cloud.url,
        &[outbox_rule(&outbox, &receiver_id)],
    );
    std::fs::create_dir_all(&outbox).unwrap();
    let body = content(7, 5000);
    std::fs::write(outbox.join("report.csv"), &body).unwrap();
    let sending = sender.start();
    let transfer_id = eventually(
        Duration::from_secs(60),
        "report.csv sent",
        &[&sending],
        || async {
            let items = sender.state().recent_outbox_items(10).ok()?;
            items
                .into_iter()
                .find(|i| i.state == mftplus_agent::state_files::OutboxState::Done)
                .and_then(|i| i.transfer_id)
        },
    )
    .await;
    let target = inbox.join("report.csv");
    {
        let (state, _) = mftplus_agent::state::StateDb::open(&receiver.dir.join("state")).unwrap();
        state
            .record_placing(&transfer_id, &target.display().to_string(), 0)
            .await
            .unwrap();
    }
    let receiving = receiver.start();
    eventually(
        Duration::from_secs(60),
        "the file in the inbox",
        &[&receiving],
        || async { (!digests(&inbox).is_empty()).then_some(()) },
    )
    .await;
    assert_eq!(
        digests(&inbox),
        BTreeMap::from([(
            "report.csv".to_string(),
            format!("{:x}", Sha256::digest(&body))
        )]),
        "under its recorded name, once"
    );
}

/// A transfer of several chunks is followed while it uploads (decision 0035): the receiver
/// starts its hidden part file before the sender completes, and places the file only once the
/// sender completes and the manifest verifies. The sender is this test, pacing the upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_larger_transfer_is_received_while_it_still_uploads() {
    use base64::Engine;
    use mftplus_crypto::stream::{
        Encryptor, ManifestInfo, Recipient, StreamOptions, X25519PublicKey, MIN_CHUNK_SIZE,
    };
    let cloud = two_box_cloud().await;
    customer(&cloud, "kovacs").await;
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    let (_receiver, receiver_id, receiving) =
        receiving_box(&cloud, &cloud.url, &dir.path().join("b"), &inbox).await;
    let operator = operator(&cloud);
    let key = operator.host_transfer_key(&receiver_id).await.unwrap();
    let key = X25519PublicKey::from_encoded(&key).unwrap();

    let body: Vec<u8> = (0..6u64)
        .flat_map(|i| content(1000 + i as usize, MIN_CHUNK_SIZE as usize))
        .chain(content(2000, 777))
        .collect();
    let options = StreamOptions {
        chunk_size: MIN_CHUNK_SIZE,
        ..StreamOptions::default()
    };
    let mut sealer = Encryptor::new(&options, &[Recipient::X25519(key)]).unwrap();
    let header = sealer.header_bytes().to_vec();
    let mut chunks = sealer.push(&body).unwrap();
    let trailer = sealer
        .finish(ManifestInfo {
            name: "followed.bin".into(),
            mode: None,
        })
        .unwrap();
    chunks.push(trailer.last_chunk);
    assert_eq!(chunks.len(), 7);
    let created = operator
        .create_transfer(mftplus_types::transfers::CreateTransferRequest {
            recipients: vec![format!("host:{receiver_id}")],
            header: base64::engine::general_purpose::STANDARD.encode(&header),
            chunk_size: u64::from(MIN_CHUNK_SIZE),
            expires: None,
            awaiting_grant: Vec::new(),
            id: None,
            whole: None,
        })
        .await
        .unwrap();
    let upload = |index: usize| {
        let chunk = &chunks[index];
        let sha = mftplus_crypto::sha256_hex(&chunk.bytes);
        let (operator, id) = (&operator, &created.id);
        async move {
            operator
                .upload_chunk(id, chunk.index, chunk.bytes.clone(), &sha, chunk.last)
                .await
                .unwrap();
        }
    };
    upload(0).await;
    upload(1).await;
    let part_prefix = format!(".{}.", created.id);
    eventually(
        Duration::from_secs(30),
        "the receiver following the upload (its part file)",
        &[&receiving],
        || async {
            std::fs::read_dir(&inbox)
                .ok()?
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(&part_prefix))
                .then_some(())
        },
    )
    .await;
    assert!(
        digests(&inbox).is_empty(),
        "nothing placed before completion"
    );
    for index in 2..chunks.len() {
        upload(index).await;
    }
    operator
        .complete_transfer(
            &created.id,
            mftplus_types::transfers::CompleteTransferRequest {
                manifest: base64::engine::general_purpose::STANDARD
                    .encode(&trailer.sealed_manifest),
            },
        )
        .await
        .unwrap();
    eventually(
        Duration::from_secs(30),
        "the followed file in the inbox",
        &[&receiving],
        || async { digests(&inbox).remove("followed.bin") },
    )
    .await;
    assert_eq!(
        digests(&inbox)["followed.bin"],
        format!("{:x}", Sha256::digest(&body))
    );
}

/// An idle inbox hears of a file sent to it at once (decision 0036): with a check interval of
/// a minute, a file dropped into the other box's outbox arrives within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_inbox_takes_a_new_file_at_once_not_at_its_next_check() {
    let cloud = two_box_cloud().await;
    customer(&cloud, "kovacs").await;
    let dir = tempfile::tempdir().unwrap();
    let (inbox, outbox) = (dir.path().join("inbox"), dir.path().join("outbox"));
    let (_receiver, receiver_id, receiving) =
        receiving_box_every(&cloud, &cloud.url, &dir.path().join("b"), &inbox, "60s").await;
    let sender = sending_box(
        &dir.path().join("a"),
        &cloud.url,
        &[outbox_rule(&outbox, &receiver_id)],
    );
    let sending = sender.start();
    // Past the receiver's first pass: it is waiting out its minute now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    std::fs::create_dir_all(&outbox).unwrap();
    std::fs::write(outbox.join("now.txt"), b"arrives at once\n").unwrap();
    std::fs::write(outbox.join("now.txt.done"), b"").unwrap();
    eventually(
        Duration::from_secs(20),
        "the file in the inbox well before the receiver's next check",
        &[&receiving, &sending],
        || async { digests(&inbox).remove("now.txt") },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_outbox_sends_a_dropped_file_at_once_and_a_settling_one_once_settled() {
    let cloud = two_box_cloud().await;
    customer(&cloud, "kovacs").await;
    let dir = tempfile::tempdir().unwrap();
    let (inbox, outbox) = (dir.path().join("inbox"), dir.path().join("outbox"));
    let (_receiver, receiver_id, receiving) =
        receiving_box(&cloud, &cloud.url, &dir.path().join("b"), &inbox).await;
    std::fs::create_dir_all(&outbox).unwrap();
    let sender = sending_box_every(
        &dir.path().join("a"),
        &cloud.url,
        &[outbox_rule(&outbox, &receiver_id)],
        "60s",
    );
    let sending = sender.start();
    // Past the sender's first pass: it is waiting out its minute now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let staged = dir.path().join("staged.txt");
    std::fs::write(&staged, b"moved in with its marker\n").unwrap();
    std::fs::rename(&staged, outbox.join("dropped.txt")).unwrap();
    std::fs::write(outbox.join("dropped.txt.done"), b"").unwrap();
    eventually(
        Duration::from_secs(20),
        "the dropped file in the inbox well before the sender's next check",
        &[&receiving, &sending],
        || async { digests(&inbox).remove("dropped.txt") },
    )
    .await;
    // No marker: complete once it held still for the rule's settle time (1 s), and sent then.
    std::fs::write(outbox.join("settling.txt"), b"sent once settled\n").unwrap();
    eventually(
        Duration::from_secs(20),
        "the settled file in the inbox well before the sender's next check",
        &[&receiving, &sending],
        || async { digests(&inbox).remove("settling.txt") },
    )
    .await;
}
