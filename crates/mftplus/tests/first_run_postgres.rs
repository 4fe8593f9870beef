//! The production first run, as an operator does it (issue 14's first acceptance line): a fresh
//! `mftplus cloud` on an empty PostgreSQL database, `mftplus cloud init` for the first
//! administrator, `mftctl login`, then seed 001's commands with the real `mftctl` binary; a
//! second `init` is refused. Runs when MFTPLUS_TEST_PG_URL names a server (scripts/test.sh
//! starts one).

mod cloud_process;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SECRET: &str = "a-test-secret-that-is-long-enough-0123456789";
const PASSWORD: &str = "a sufficiently long password";

fn mftplus(dir: &Path, database_url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mftplus"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("JWT_SECRET", SECRET)
        .env("DATABASE_URL", database_url)
        .env("MFTPLUS_LOG_FORMAT", "json")
        .current_dir(dir)
        .args(["cloud", "--config"])
        .arg(dir.join("server.yaml"))
        .args(args);
    command
}

/// `mftctl` as built beside `mftplus` (`cargo test --workspace` builds every binary first).
fn mftctl_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_mftplus")).with_file_name("mftctl");
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p mftctl)",
        path.display()
    );
    path
}

fn mftctl(home: &Path, server: &str, line: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(mftctl_binary())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("MFTPLUS_SERVER", server)
        .args(line)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr)
}

#[track_caller]
fn ok(output: Output) -> String {
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[tokio::test]
async fn a_fresh_cloud_on_postgresql_is_initialised_signed_into_and_runs_the_seed_commands() {
    let Some(database) = mftplus_store_postgres::testing::fresh_database().await else {
        eprintln!("skipped: MFTPLUS_TEST_PG_URL is not set");
        return;
    };
    let url = database.url().to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("server.yaml"),
        "server:\n  listen: 127.0.0.1:0\n  metrics_listen: 127.0.0.1:0\n",
    )
    .unwrap();
    let password_file = d.join("admin-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let password_arg = password_file.to_str().unwrap();

    let init = mftplus(
        d,
        &url,
        &[
            "init",
            "--admin-email",
            "admin@example.com",
            "--password-file",
            password_arg,
        ],
    )
    .output()
    .unwrap();
    assert!(init.status.success(), "{}", text(&init));

    let (mut cloud, server) = cloud_process::start(mftplus(d, &url, &[]));
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let run = |line: &[&str]| mftctl(h, &server, line, None);

    ok(mftctl(
        h,
        &server,
        &["login", "--email", "admin@example.com", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    ));
    assert!(ok(run(&["status"])).contains("admin@example.com"));

    // Seed 001, as written there.
    ok(run(&[
        "users",
        "create",
        "--email",
        "user@example.com",
        "--name",
        "John Doe",
        "--role",
        "user",
    ]));
    ok(run(&[
        "users",
        "update",
        "user@example.com",
        "--role",
        "admin",
    ]));
    let users = ok(run(&["users", "list"]));
    assert!(users.contains("user@example.com"), "{users}");
    ok(run(&[
        "users",
        "create",
        "--email",
        "backup-service@example.com",
        "--role",
        "readonly",
        "--type",
        "service",
    ]));
    assert!(ok(run(&["users", "get", "user@example.com"])).contains("admin"));
    let key = ok(run(&[
        "apikeys",
        "create",
        "--name",
        "Service Account - Backup",
        "--role",
        "readonly",
        "--expires",
        "90d",
    ]))
    .trim()
    .to_string();
    assert!(key.starts_with("mftpk_"), "{key}");
    assert!(ok(run(&["apikeys", "list"])).contains("Service Account - Backup"));
    assert!(ok(run(&["apikeys", "get", &key])).contains("readonly"));
    let as_key = ok(run(&["--api-key", &key, "status"]));
    assert!(as_key.contains("readonly"), "{as_key}");
    ok(run(&[
        "auth",
        "token",
        "create",
        "--user",
        "admin@example.com",
        "--role",
        "admin",
    ]));
    assert!(!ok(run(&[
        "auth",
        "token",
        "list",
        "--user",
        "admin@example.com"
    ]))
    .is_empty());
    ok(run(&["config", "get", "auth.jwt.expiration"]));
    ok(run(&["apikeys", "rotate", &key]));
    ok(run(&["users", "delete", "user@example.com"]));
    let audit = run(&["audit", "verify"]);
    assert!(audit.status.success(), "{}", text(&audit));

    // Once only, also while the cloud runs.
    let again = mftplus(
        d,
        &url,
        &[
            "init",
            "--admin-email",
            "other@example.com",
            "--password-file",
            password_arg,
        ],
    )
    .output()
    .unwrap();
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));

    let _ = cloud.kill();
    let _ = cloud.wait();
    database.drop_now().await;
}
