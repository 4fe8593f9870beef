//! `mftplus hub` as an operator runs it: environment variables in, the seed's start-up lines on
//! stdout, `/health` served, a clean exit on SIGTERM. The cloud is the hub crate's stand-in
//! (`mftplus_hub::testing::StandInCloud`) until the real cloud side of phone-home lands.

use mftplus_hub::testing::StandInCloud;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const KEY: &str = "mft_dep_binarytest0123456789abcdefghijklmnopq";

/// One raw HTTP/1.1 GET, so this test needs no HTTP client crate.
fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

fn next_line(lines: &mpsc::Receiver<String>, seen: &mut Vec<String>) -> String {
    let line = lines
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no further stdout line; so far: {seen:?}"));
    seen.push(line.clone());
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_starts_prints_the_seed_lines_serves_health_and_stops_on_sigterm() {
    let cloud = StandInCloud::start(&[KEY]).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mftplus"))
        .arg("hub")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CLOUD_API_URL", cloud.base_url())
        .env("HUB_REGISTRATION_KEY", KEY)
        .env("HUB_PORT", "0")
        .env("HUB_LISTEN_ADDR", "127.0.0.1")
        .env("NODE_ENV", "production")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    let mut seen = Vec::new();
    let first = next_line(&lines, &mut seen);
    let port: u16 = first
        .strip_prefix("[Hub] Server running on port ")
        .and_then(|rest| rest.strip_suffix(" (production)"))
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    assert_eq!(next_line(&lines, &mut seen), "[Hub] Version: 0.1.0");
    assert_eq!(
        next_line(&lines, &mut seen),
        format!("[Hub] Cloud API: {}", cloud.base_url())
    );
    assert_eq!(
        next_line(&lines, &mut seen),
        "[PhoneHome] Registering with cloud..."
    );
    let registered = next_line(&lines, &mut seen);
    assert!(
        registered.starts_with("[PhoneHome] Registered successfully — hubId: hub_"),
        "{registered}"
    );
    assert_eq!(
        next_line(&lines, &mut seen),
        "[PhoneHome] Periodic re-validation every 24h"
    );

    let (status, body) = tokio::task::spawn_blocking(move || http_get(port, "/health"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["version"], "0.1.0");
    assert!(health["uptime"].is_f64());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the hub did not stop within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(exit.success(), "exit {exit:?}; stderr: {stderr}");
    cloud.stop().await;
}
