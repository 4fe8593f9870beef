//! `mftplus dev` as the real binary: the cloud and an edge hub in front of it, the hub
//! registered with a deploy key the dev cloud minted for it and kept (0600) across restarts,
//! and a host agent enrolled through the hub once and kept across restarts.

mod plain_http;

use plain_http::get;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

struct Dev {
    child: Child,
    out: std::path::PathBuf,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    fn start(data: &Path, name: &str) -> Dev {
        Dev::start_with(data, name, &[])
    }

    fn start_with(data: &Path, name: &str, extra: &[&str]) -> Dev {
        let out = data.with_file_name(format!("{name}.out"));
        let child = Command::new(env!("CARGO_BIN_EXE_mftplus"))
            .args(["dev", "--data-dir"])
            .arg(data)
            .args(extra)
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(["--hub-listen", "127.0.0.1:0"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("mftplus starts");
        Dev { child, out }
    }

    /// The banner's value after `label`, once printed.
    fn field(&mut self, label: &str) -> String {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            let found = text
                .lines()
                .find_map(|l| l.trim().strip_prefix(label))
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string);
            if let Some(found) = found {
                return found;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("mftplus dev exited ({status}): {text}");
            }
            assert!(Instant::now() < deadline, "no {label} in: {text}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// Polls the hub's diagnosis until it says it registered; returns its hub id.
fn registered_hub_id(hub: &str) -> String {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let reply = get(hub, "/hub/diagnose");
        let body = reply.split("\r\n\r\n").nth(1).unwrap_or_default();
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(body) {
            if json["phoneHome"]["registered"] == true {
                return json["phoneHome"]["hubId"].as_str().unwrap().to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the dev hub never registered: {reply}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn dev_runs_the_cloud_and_a_registered_hub_in_front_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut dev = Dev::start(&data, "first");
    let api = dev.field("API:");
    let hub = dev.field("Hub:");
    assert_ne!(api, hub);
    let hub_id = registered_hub_id(&hub);
    // The hub proxies the cloud's API.
    let health = get(&hub, "/api/v1/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // The dashboard is where the summary says, and asks to sign in.
    let dashboard = dev.field("Dashboard:");
    assert_eq!(dashboard.trim_end_matches('/'), api);
    let page = get(&api, "/login");
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("Sign in"),
        "{page}"
    );
    let key_file = data.join("hub").join("deploy.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert!(key.starts_with("mft_dep_"));
    let text = std::fs::read_to_string(&dev.out).unwrap();
    assert!(!text.contains(&key), "the deploy key was printed");
    // A host agent enrolled through the hub; its state is private.
    let host_id = dev.field("Agent:      host");
    assert!(host_id.starts_with("h-"), "{host_id}");
    let agent_dir = data.join("agent");
    let mode = std::fs::metadata(&agent_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    drop(dev);

    // Restarted on the same folder, the hub keeps its key and so its registration.
    let mut again = Dev::start(&data, "second");
    let hub = again.field("Hub:");
    assert_eq!(registered_hub_id(&hub), hub_id);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    // And the agent keeps its identity: enrolled once, not again at every start.
    assert_eq!(again.field("Agent:      host"), host_id);
}

/// `mftplus dev --tls`: HTTPS from the dev CA on the API and the hub, TLS 1.2 refused, the CA
/// path and a ready `mftctl` line printed, and the hub and the agent holding certificates
/// from the dev CA.
#[test]
fn dev_tls_runs_the_whole_path_with_its_own_ca() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut dev = Dev::start_with(&data, "tls", &["--tls"]);
    let api = dev.field("API:");
    let hub = dev.field("Hub:");
    let ca = dev.field("CA:");
    let key = dev.field("API key:");
    assert!(
        api.starts_with("https://") && hub.starts_with("https://"),
        "{api} {hub}"
    );
    let try_line = dev.field("Try:");
    assert_eq!(try_line, "mftctl");
    let curl = |url: &str, extra: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--cacert", &ca])
            .args(extra)
            .arg(url)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    assert!(curl(&format!("{api}/api/v1/health"), &[]).0);
    assert!(
        curl(&format!("{hub}/api/v1/health"), &[]).0,
        "the hub serves TLS"
    );
    assert!(
        !curl(
            &format!("{api}/api/v1/health"),
            &["--tlsv1.2", "--tls-max", "1.2"]
        )
        .0
    );
    // The hub and the agent get their certificates from the dev CA.
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let (ok, body) = curl(
            &format!("{api}/api/v1/certificates"),
            &["-H", &format!("x-api-key: {key}")],
        );
        let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let subjects: Vec<&str> = list
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["subject"].as_str()).collect())
            .unwrap_or_default();
        if ok
            && subjects.iter().any(|s| s.starts_with("host:"))
            && subjects.iter().any(|s| s.starts_with("hub:"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "certificates: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Box routes need the agent's certificate; the hub forwards it, and the agent reports.
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let (_, body) = curl(
            &format!("{api}/api/v1/hosts"),
            &["-H", &format!("x-api-key: {key}")],
        );
        let hosts: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if hosts[0]["last_report_at"].is_string() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no report from the dev agent: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mode = std::fs::metadata(data.join("tls").join("cloud.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}
