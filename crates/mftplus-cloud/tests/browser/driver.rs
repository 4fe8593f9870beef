//! The chromedriver process: started on a free loopback port, ready when `/status` says so,
//! and stopped without an async runtime, because `Drop` (also while a test panics) has none.

use super::BrowserError;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long chromedriver may take to answer `/status` with `ready: true`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// A free port is found by binding and releasing it, so another process may take it before
/// chromedriver does (chromedriver then exits): that many tries with a fresh port.
const START_ATTEMPTS: usize = 3;
/// How long `Drop` waits for each of "delete the session" and "shut down" before killing.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct Driver {
    pub(super) addr: SocketAddr,
    /// Set once a session exists, so `Drop` deletes it (which quits Chromium).
    pub(super) session: Option<String>,
    child: Child,
    log: PathBuf,
}

/// The full path of an executable called `name` on `PATH`, as `which` finds it.
pub(super) fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Driver {
    /// Starts `binary` (chromedriver) with its output in `log_dir`, and waits until it is ready.
    pub(super) async fn start(
        binary: &Path,
        log_dir: &Path,
        http: &reqwest::Client,
    ) -> Result<Driver, BrowserError> {
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port()?;
            let log = log_dir.join(format!("chromedriver-{attempt}.log"));
            let output = std::fs::File::create(&log)?;
            let child = Command::new(binary)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(output.try_clone()?)
                .stderr(output)
                .spawn()
                .map_err(|err| {
                    BrowserError::Start(format!("cannot run {}: {err}", binary.display()))
                })?;
            let mut driver = Driver {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                session: None,
                child,
                log,
            };
            match driver.wait_ready(http).await {
                Ok(()) => return Ok(driver),
                Err(why) => failures.push(format!("port {port}: {why}; {}", driver.log_tail())),
            }
        }
        Err(BrowserError::Start(format!(
            "chromedriver did not become ready: {}",
            failures.join(" | ")
        )))
    }

    /// Polls `/status` until `ready: true`, the process exits, or [`READY_TIMEOUT`] passes.
    async fn wait_ready(&mut self, http: &reqwest::Client) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("http://{}/status", self.addr);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("chromedriver exited ({status})"));
            }
            if let Ok(response) = http.get(&url).send().await {
                if let Ok(body) = response.json::<Value>().await {
                    if body["value"]["ready"] == Value::Bool(true) {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no ready /status within {READY_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines chromedriver wrote, for error messages.
    pub(super) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(8)..].join(" / ");
        format!("chromedriver output: {tail}")
    }
}

impl Drop for Driver {
    /// Deletes the session (chromedriver quits Chromium), asks chromedriver to shut down, and
    /// kills it if it has not exited by then. Best effort: nothing here may panic.
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = blocking_request(self.addr, "DELETE", &format!("/session/{session}"));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = blocking_request(self.addr, "GET", "/shutdown");
            let deadline = Instant::now() + STOP_TIMEOUT;
            while let Ok(None) = self.child.try_wait() {
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request without a body on a plain socket, waiting for the whole reply: the
/// async client cannot be used from `Drop`.
fn blocking_request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(STOP_TIMEOUT))?;
    stream.set_write_timeout(Some(STOP_TIMEOUT))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            return Ok(());
        }
        reply.extend_from_slice(&buffer[..read]);
        if reply_complete(&reply) {
            return Ok(());
        }
    }
}

/// Whether `reply` holds the headers and a `Content-Length` worth of body.
fn reply_complete(reply: &[u8]) -> bool {
    let Some(end) = reply.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let headers = String::from_utf8_lossy(&reply[..end]).to_ascii_lowercase();
    let length = headers
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok());
    match length {
        Some(length) => reply.len() >= end + 4 + length,
        // No length: the body ends when chromedriver closes the connection.
        None => false,
    }
}
