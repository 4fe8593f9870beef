//! Sending to someone who has no key yet (decision 0022), with both people as real `mftctl`
//! processes, each with their own HOME, against a real cloud on 127.0.0.1:0: seed 001's send
//! line to a user who never ran mftctl, the recipient told to wait, the sender's next run of
//! any command granting, and `mftctl transfers grant` doing it explicitly.

mod cli_support;

use mftplus_cloud::testing::TestCloud;

use cli_support::{noise, send_id, user, Shell, PASSWORD};

fn sha256_of(path: &std::path::Path) -> String {
    mftplus_crypto::sha256_hex(&std::fs::read(path).unwrap())
}

async fn login(shell: &Shell, email: &str) {
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
}

fn marker(shell: &Shell, id: &str) -> std::path::PathBuf {
    shell.path(&format!(".local/state/mftplus/grants/{id}"))
}

#[tokio::test]
async fn seed_send_line_to_someone_who_never_ran_mftctl() {
    let cloud = TestCloud::spawn().await;
    let admin = Shell::admin(&cloud);
    let alice = user(&cloud, &admin, "alice@example.com", "user", true).await;
    let bob = user(&cloud, &admin, "bob@example.com", "user", true).await;
    // Exists, but has never run mftctl: no key pair anywhere.
    let recipient = user(&cloud, &admin, "recipient@example.com", "user", false).await;

    // Several chunks, so the grant is seen to leave every one of them as it was.
    std::fs::write(alice.path("sensitive-file.txt"), noise(200 * 1024 + 7, 1)).unwrap();
    let sent = alice
        .line("mftctl send --encrypt ./sensitive-file.txt recipient@example.com --chunk-size 64KiB")
        .await
        .ok();
    let id = send_id(&sent);
    assert!(
        sent.stderr.contains(
            "recipient@example.com has no key yet; they can receive once they sign in with \
             mftctl and your next mftctl run grants access"
        ),
        "{sent:#?}"
    );
    assert!(marker(&alice, &id).exists(), "the send remembers to grant");
    // Someone who is no user at all is still an error, before anything is uploaded.
    alice
        .line("mftctl send ./sensitive-file.txt nobody@example.com")
        .await
        .fails_with("unknown_recipient");
    // A run of the sender's before the recipient has a key grants nothing and keeps waiting.
    let early = alice.line("mftctl transfers list").await.ok();
    assert!(!early.stderr.contains("granted"), "{early:#?}");
    assert!(marker(&alice, &id).exists());

    // The recipient signs in (which makes their key), and is told to wait.
    login(&recipient, "recipient@example.com").await;
    std::fs::write(
        bob.path("other.txt"),
        b"from bob, who sent after the sign-in\n",
    )
    .unwrap();
    bob.line("mftctl send ./other.txt recipient@example.com")
        .await
        .ok();
    let partly = recipient.line("mftctl receive").await.ok();
    assert!(
        partly.stderr.contains(&format!(
            "transfer {id} from alice@example.com: waiting for the sender to grant access"
        )),
        "{partly:#?}"
    );
    assert!(
        partly.stdout.contains("other.txt"),
        "the others still come: {partly:#?}"
    );
    assert!(!recipient.path("sensitive-file.txt").exists());
    recipient
        .line(&format!("mftctl receive {id}"))
        .await
        .fails_with("awaiting_grant");
    let listed = recipient.line("mftctl transfers list").await.ok();
    assert!(
        listed
            .stdout
            .contains("recipient@example.com (waiting for the sender to grant access)"),
        "{listed:#?}"
    );
    let shown = recipient
        .line(&format!("mftctl transfers show {id} --json"))
        .await
        .ok()
        .json();
    assert_eq!(shown["recipients"][0]["awaiting_grant"], true, "{shown:#}");

    // The sender runs any command: it grants, on stderr, and --json stdout stays JSON.
    let next = alice.line("mftctl transfers list --json").await.ok();
    assert!(next.json().is_array());
    assert!(
        next.stderr.contains(&format!(
            "granted recipient@example.com access to transfer {id}"
        )),
        "{next:#?}"
    );
    assert!(!marker(&alice, &id).exists(), "nothing waits any more");
    let quiet = alice.line("mftctl transfers list").await.ok();
    assert!(!quiet.stderr.contains("granted"), "{quiet:#?}");

    let got = recipient.line("mftctl receive").await.ok();
    assert!(got.stdout.contains("sensitive-file.txt"), "{got:#?}");
    assert_eq!(
        sha256_of(&recipient.path("sensitive-file.txt")),
        sha256_of(&alice.path("sensitive-file.txt"))
    );
    let shown = alice
        .line(&format!("mftctl transfers show {id} --json"))
        .await
        .ok()
        .json();
    let to = &shown["recipients"][0];
    assert_eq!(to["awaiting_grant"], false);
    assert!(to["granted_at"].is_string() && to["downloaded_at"].is_string());
}

#[tokio::test]
async fn transfers_grant_does_it_explicitly() {
    let cloud = TestCloud::spawn().await;
    let admin = Shell::admin(&cloud);
    let alice = user(&cloud, &admin, "alice@example.com", "user", true).await;
    let dave = user(&cloud, &admin, "dave@example.com", "user", false).await;
    let erin = user(&cloud, &admin, "erin@example.com", "user", false).await;

    let data = noise(70_000, 2);
    std::fs::write(alice.path("plan.bin"), &data).unwrap();
    let sent = alice
        .line("mftctl send ./plan.bin dave@example.com,erin@example.com --json")
        .await
        .ok();
    let sent = sent.json();
    let id = sent["id"].as_str().unwrap().to_string();
    let waits: Vec<bool> = sent["transfer"]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["awaiting_grant"].as_bool().unwrap())
        .collect();
    assert_eq!(waits, vec![true, true]);

    let before = alice.line("mftctl transfers grant").await.ok();
    for who in ["dave@example.com", "erin@example.com"] {
        assert!(
            before
                .stdout
                .contains(&format!("{who} is still waiting for transfer {id}")),
            "{before:#?}"
        );
    }

    login(&dave, "dave@example.com").await;
    // The explicit command does the grant itself and reports it; nothing else runs after it.
    let granted = alice
        .line(&format!("mftctl transfers grant {id} --json"))
        .await
        .ok();
    let report = granted.json();
    assert_eq!(report["granted"][0]["recipient"], "dave@example.com");
    assert_eq!(report["granted"][0]["transfer_id"], id.as_str());
    assert_eq!(report["waiting"][0]["recipient"], "erin@example.com");
    assert_eq!(report["failed"], serde_json::json!([]));
    let again = alice.line("mftctl transfers grant").await.ok();
    assert!(!again.stdout.contains("granted dave"), "{again:#?}");
    assert!(
        again.stdout.contains("erin@example.com is still waiting"),
        "{again:#?}"
    );

    dave.line("mftctl receive").await.ok();
    assert_eq!(std::fs::read(dave.path("plan.bin")).unwrap(), data);

    // A cancelled transfer cannot be granted: it no longer waits for anything.
    alice
        .line(&format!("mftctl transfers cancel {id}"))
        .await
        .ok();
    login(&erin, "erin@example.com").await;
    let after = alice.line("mftctl transfers grant").await.ok();
    assert_eq!(
        after.stdout.trim(),
        "nobody is waiting for a grant",
        "{after:#?}"
    );
    erin.line(&format!("mftctl receive {id}"))
        .await
        .fails_with("conflict");
}
