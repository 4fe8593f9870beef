//! `mftplus cloud init` as an operator runs it (decision 0017): the first administrator once,
//! from a password file or standard input; a second run exits 3 and changes nothing.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const SECRET: &str = "a-test-secret-that-is-long-enough-0123456789";
const PASSWORD: &str = "a sufficiently long password";

fn init(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let config = dir.join("server.yaml");
    std::fs::write(&config, "").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_mftplus"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("JWT_SECRET", SECRET)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("cloud.db").display()),
        )
        .current_dir(dir)
        .args(["cloud", "init", "--config"])
        .arg(&config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr)
}

fn users(dir: &Path) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(dir.join("cloud.db")).unwrap();
    let mut statement = db
        .prepare("SELECT email, role FROM users ORDER BY email")
        .unwrap();
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn init_creates_the_first_admin_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A password file others can read is refused before anything happens.
    let file = d.join("admin-password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file_arg = file.display().to_string();
    let open = init(
        d,
        &[
            "--admin-email",
            "root@example.com",
            "--password-file",
            &file_arg,
        ],
        None,
    );
    assert_eq!(open.status.code(), Some(1), "{}", text(&open));
    assert!(text(&open).contains("chmod"), "{}", text(&open));

    // A weak password from standard input: refused, nothing written.
    let weak = init(d, &["--admin-email", "root@example.com"], Some("short\n"));
    assert_eq!(weak.status.code(), Some(1), "{}", text(&weak));
    assert!(text(&weak).contains("12 characters"), "{}", text(&weak));
    assert!(users(d).is_empty());

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let created = init(
        d,
        &[
            "--admin-email",
            "Root@Example.com",
            "--password-file",
            &file_arg,
        ],
        None,
    );
    assert!(created.status.success(), "{}", text(&created));
    assert!(
        text(&created).contains("created the first administrator root@example.com"),
        "{}",
        text(&created)
    );
    assert!(!text(&created).contains(PASSWORD));
    assert_eq!(
        users(d),
        vec![("root@example.com".to_string(), "admin".to_string())]
    );

    // Once only: the documented exit status, and nothing changes.
    let again = init(
        d,
        &["--admin-email", "other@example.com"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    assert!(
        text(&again).contains("an administrator already exists (root@example.com)"),
        "{}",
        text(&again)
    );
    assert_eq!(users(d).len(), 1);

    let db = rusqlite::Connection::open(d.join("cloud.db")).unwrap();
    let (actor, target, details): (String, String, String) = db
        .query_row(
            "SELECT actor, target, details FROM audit_log WHERE event = 'admin_bootstrapped'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (actor.as_str(), target.as_str()),
        ("system", "root@example.com")
    );
    assert!(!details.contains(PASSWORD));

    // Usage errors are clap's 2.
    let usage = init(d, &[], None);
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage));
}
