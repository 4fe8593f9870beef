//! `mftctl passwd` and `mftctl users reset-password` as the real binary against a real cloud
//! (decision 0017).

mod cli_support;

use cli_support::{user, Shell, PASSWORD};
use mftplus_cloud::testing::TestCloud;
use std::os::unix::fs::PermissionsExt;

const NEW_PASSWORD: &str = "a brand new passphrase of mine";

fn secret_file(shell: &Shell, name: &str, text: &str) -> String {
    let path = shell.path(name);
    std::fs::write(&path, format!("{text}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn passwd_and_reset_password() {
    let cloud = TestCloud::spawn().await;
    let admin = Shell::admin(&cloud);
    let alice = user(&cloud, &admin, "alice@example.com", "user", true).await;
    let _bob = user(&cloud, &admin, "bob@example.com", "user", false).await;

    // Without a terminal the prompts are replaced by files; a wrong current password is 401.
    alice.line("mftctl passwd").await.fails_with("usage");
    let wrong = secret_file(&alice, "wrong", "not the password at all");
    let new = secret_file(&alice, "new", NEW_PASSWORD);
    alice
        .line(&format!(
            "mftctl passwd --current-file {wrong} --new-file {new}"
        ))
        .await
        .fails_with("invalid_credentials");
    let current = secret_file(&alice, "current", PASSWORD);
    let weak = secret_file(&alice, "weak", "short");
    alice
        .line(&format!(
            "mftctl passwd --current-file {current} --new-file {weak}"
        ))
        .await
        .fails_with("weak_password");
    let run = alice
        .line(&format!(
            "mftctl passwd --current-file {current} --new-file {new}"
        ))
        .await
        .ok();
    assert!(run.stdout.contains("password changed"), "{run:#?}");
    // This session stays.
    alice.line("mftctl status").await.ok();
    let again = Shell::new(&cloud);
    again
        .run(
            "mftctl login --email alice@example.com --password-stdin",
            Some(PASSWORD),
        )
        .await
        .fails_with("invalid_credentials");
    again
        .run(
            "mftctl login --email alice@example.com --password-stdin",
            Some(NEW_PASSWORD),
        )
        .await
        .ok();

    // An API key is not a person: refused.
    let key_current = secret_file(&admin, "current", PASSWORD);
    let key_new = secret_file(&admin, "new", NEW_PASSWORD);
    admin
        .line(&format!(
            "mftctl passwd --current-file {key_current} --new-file {key_new}"
        ))
        .await
        .fails_with("forbidden");

    // A plain user cannot reset someone else's password.
    alice
        .line("mftctl users reset-password bob@example.com")
        .await
        .fails_with("forbidden");

    // The admin: generated and printed once, then chosen from a file.
    let run = admin
        .line("mftctl users reset-password bob@example.com --json")
        .await
        .ok();
    let generated = run.json()["generated_password"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = Shell::new(&cloud);
    bob.run(
        "mftctl login --email bob@example.com --password-stdin",
        Some(&generated),
    )
    .await
    .ok();
    let chosen = secret_file(&admin, "chosen", NEW_PASSWORD);
    let run = admin
        .line(&format!(
            "mftctl users reset-password bob@example.com --password-file {chosen}"
        ))
        .await
        .ok();
    assert!(
        run.stdout.contains("password of bob@example.com reset"),
        "{run:#?}"
    );
    assert!(!run.stdout.contains("new password:"), "{run:#?}");
    // Bob's session ended with the reset.
    bob.line("mftctl status").await.fails_with("token_revoked");
}
