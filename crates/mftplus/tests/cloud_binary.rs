//! The `mftplus cloud` binary as an operator runs it: `--check-config` verdicts, and a clean
//! drain and exit on SIGTERM.

mod plain_http;

use plain_http::get;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "a-test-secret-that-is-long-enough-0123456789";

fn mftplus() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mftplus"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.display().to_string()
}

/// Runs `mftplus cloud --check-config` with a database URL (the check never opens it) and
/// returns (success, stdout + stderr).
fn check(config: &str, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = mftplus();
    command.args(["cloud", "--config", config, "--check-config"]);
    command.env("DATABASE_URL", "sqlite:///nonexistent/check-config.db");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn check_config_accepts_a_good_file_and_names_each_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = write(
        d,
        "good.yaml",
        "auth:\n  jwt:\n    expiration: 1800\n",
        0o644,
    );
    let (ok, text) = check(&good, &[("JWT_SECRET", SECRET)]);
    assert!(ok, "{text}");
    assert!(text.contains("configuration OK"), "{text}");
    assert!(text.contains("fleet: 0 operator key(s) pinned"), "{text}");

    struct Case<'a> {
        what: &'a str,
        file: String,
        env: Vec<(&'a str, String)>,
        expected: &'a str,
    }
    let case = |what, file, env, expected| Case {
        what,
        file,
        env,
        expected,
    };
    let cases = vec![
        case("a typo", write(d, "typo.yaml", "auth:\n  jwt:\n    expiraton: 10\n", 0o644), vec![("JWT_SECRET", SECRET.into())], "auth.jwt.expiraton"),
        case("no secret", write(d, "empty.yaml", "", 0o644), vec![], "auth.jwt.secret (default): not set"),
        case(
            "an inline secret in production",
            write(d, "inline.yaml", &format!("mode: production\nauth:\n  jwt:\n    secret: {SECRET}\n    allow_hs256_in_production: true\n"), 0o644),
            vec![],
            "production mode takes secrets only from the environment",
        ),
        case("HS256 in production", write(d, "prod.yaml", "mode: production\n", 0o644), vec![("JWT_SECRET", SECRET.into())], "HS256 is refused in production"),
        case("a missing operator keys file", write(d, "keys.yaml", "fleet:\n  operator_keys_file: /nonexistent/allowed_signers\n", 0o644), vec![("JWT_SECRET", SECRET.into())], "fleet.operator_keys_file /nonexistent/allowed_signers"),
        case("a webhook secret others can read", write(d, "hook.yaml", &format!("notifications:\n  webhooks:\n    - url: http://127.0.0.1:9/hook\n      secret_file: {}\n", write(d, "hook.secret", "s3cret-value", 0o644)), 0o644), vec![("JWT_SECRET", SECRET.into())], "hook.secret"),
        case(
            "a world-readable secret file",
            write(d, "plain.yaml", "", 0o644),
            vec![("JWT_SECRET_FILE", write(d, "jwt.secret", SECRET, 0o644))],
            "readable by group or others",
        ),
        case(
            "a bad environment value",
            write(d, "env.yaml", "", 0o644),
            vec![("JWT_SECRET", SECRET.into()), ("MFTPLUS__AUTH__JWT__EXPIRATION", "soon".into())],
            "invalid",
        ),
        case(
            "a short audit retention",
            write(d, "audit.yaml", "audit:\n  retention_days: 30\n", 0o644),
            vec![("JWT_SECRET", SECRET.into())],
            "at least 90",
        ),
        case(
            "a world-readable RS256 private key",
            write(d, "rs.yaml", &format!("auth:\n  jwt:\n    algorithm: RS256\n    private_key: {}\n    public_key: {}\n", d.join("k.pem").display(), d.join("k.pub").display()), 0o644),
            vec![],
            "readable by group or others",
        ),
    ];
    write(d, "k.pem", "not really a key", 0o644);
    write(d, "k.pub", "not really a key", 0o644);
    for Case {
        what,
        file,
        env,
        expected,
    } in cases
    {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (ok, text) = check(&file, &env);
        assert!(!ok, "{what} was accepted: {text}");
        assert!(
            text.contains(expected),
            "{what}: expected {expected:?} in {text}"
        );
        assert!(
            !text.contains(SECRET),
            "{what}: the secret was printed: {text}"
        );
    }

    // Production with RS256 keys from files and the secret from the environment is fine, but
    // HS256 with the explicit opt-in is accepted with a loud warning.
    let opt_in = write(
        d,
        "optin.yaml",
        "mode: production\nauth:\n  jwt:\n    allow_hs256_in_production: true\nserver:\n  tls_terminated_by_proxy: true\n  trusted_proxies: [\"10.0.0.1\"]\n",
        0o644,
    );
    let (ok, text) = check(&opt_in, &[("JWT_SECRET", SECRET)]);
    assert!(ok, "{text}");
    assert!(text.contains("WARNING: HS256"), "{text}");

    // Production serves TLS itself, or says that a proxy in front does (and which).
    let plain = write(
        d,
        "plain.yaml",
        "mode: production\nauth:\n  jwt:\n    allow_hs256_in_production: true\n",
        0o644,
    );
    let (ok, text) = check(&plain, &[("JWT_SECRET", SECRET)]);
    assert!(!ok && text.contains("production mode serves TLS"), "{text}");
    let unnamed = write(
        d,
        "unnamed.yaml",
        "mode: production\nauth:\n  jwt:\n    allow_hs256_in_production: true\nserver:\n  tls_terminated_by_proxy: true\n",
        0o644,
    );
    let (ok, text) = check(&unnamed, &[("JWT_SECRET", SECRET)]);
    assert!(!ok && text.contains("server.trusted_proxies"), "{text}");
}

/// `--check-config` covers the payload store: an fs folder that cannot work fails, one not
/// created yet is reported (and left uncreated), and S3 settings are validated without the
/// secret ever being printed. (A real bucket check is in mftplus-cloud's `s3_backend` test.)
#[test]
fn check_config_covers_the_payload_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = [("JWT_SECRET", SECRET)];

    let not_a_dir = write(d, "blobs-file", "", 0o600);
    let file = write(
        d,
        "fs-file.yaml",
        &format!("transfers:\n  blob_path: {not_a_dir}\n"),
        0o644,
    );
    let (ok, text) = check(&file, &env);
    assert!(!ok, "a file as the blob folder was accepted: {text}");
    assert!(
        text.contains("payload store (fs at") && text.contains("blobs-file"),
        "{text}"
    );

    let later = d.join("later/blobs");
    let fresh = write(
        d,
        "fs-fresh.yaml",
        &format!("transfers:\n  blob_path: {}\n", later.display()),
        0o644,
    );
    let (ok, text) = check(&fresh, &env);
    assert!(ok, "{text}");
    assert!(
        text.contains("payload store fs at") && text.contains("not created yet"),
        "{text}"
    );
    assert!(
        !later.exists(),
        "--check-config created {}",
        later.display()
    );

    let s3_secret = "s3-secret-never-printed-0123456789";
    let s3 = write(
        d,
        "s3.yaml",
        "transfers:\n  blob_backend: s3\n  s3:\n    bucket: payloads\n    access_key_id: AKID\n",
        0o644,
    );
    let (ok, text) = check(&s3, &env);
    assert!(!ok, "S3 without a secret was accepted: {text}");
    assert!(text.contains("secret_access_key"), "{text}");
    let open_secret = write(d, "s3.secret", s3_secret, 0o644);
    let (ok, text) = check(
        &s3,
        &[
            ("JWT_SECRET", SECRET),
            (
                "MFTPLUS__TRANSFERS__S3__SECRET_ACCESS_KEY_FILE",
                &open_secret,
            ),
        ],
    );
    assert!(!ok, "a world-readable S3 secret file was accepted: {text}");
    assert!(text.contains("readable by group or others"), "{text}");
    assert!(
        !text.contains(s3_secret),
        "the S3 secret was printed: {text}"
    );
}

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "server.yaml",
        "server:\n  listen: 127.0.0.1:0\n  metrics_listen: 127.0.0.1:0\n",
        0o644,
    );
    let mut child = mftplus()
        .args(["cloud", "--config", &config])
        .env("JWT_SECRET", SECRET)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("cloud.db").display()),
        )
        .env("MFTPLUS_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut api = None;
    let mut metrics = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.is_none() && Instant::now() < deadline {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if event["fields"]["message"] == "mftplus cloud listening" {
            api = event["fields"]["api"].as_str().map(str::to_string);
            metrics = event["fields"]["metrics"].as_str().map(str::to_string);
        }
    }
    let api = api.expect("the cloud announced its address");
    let metrics = metrics.expect("the cloud announced its metrics address");

    let reply = get(&api, "/health");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // Metrics live on their own listener and count the request just made; the API has none.
    let scraped = get(&metrics, "/metrics");
    assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
    assert!(
        scraped.contains("mftplus_http_requests_total{route=\"health\",status=\"200\"} 1"),
        "{scraped}"
    );
    assert!(get(&api, "/metrics").starts_with("HTTP/1.1 404"));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the cloud did not stop within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "exit status {exit:?}");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("mftplus cloud stopped"), "{rest}");
}
