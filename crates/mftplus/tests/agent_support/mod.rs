//! Real processes for the agent's end-to-end tests: the `mftplus agent` and `mftplus hub`
//! binaries started as an operator would, killed with SIGKILL or stopped with SIGTERM; the
//! operator's `mftctl` run in-process through its own entry point; a real cloud on port 0.

#![allow(dead_code)]

use clap::Parser;
use mftplus_client::{Client, Credential};
use mftplus_cloud::testing::{TestCloud, TestOptions};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mftplus");
pub const PASSWORD: &str = "alma-korte-szilva-barack-dio";

/// A cloud whose envelope asks agents to come back every second.
pub async fn fast_cloud() -> TestCloud {
    let mut options = TestOptions::default();
    options
        .config_yaml
        .push_str("fleet:\n  poll_interval_seconds: 1\n");
    TestCloud::spawn_with(options).await
}

pub fn operator(cloud: &TestCloud) -> Client {
    Client::new(&cloud.url, Credential::ApiKey(cloud.admin_api_key.clone())).unwrap()
}

/// `mftctl --server … --api-key … ARGS` in this process, on its own thread; its exit code.
pub fn mftctl(cloud: &TestCloud, home: &Path, args: &[&str]) -> u8 {
    let mut line: Vec<String> = vec![
        "mftctl".into(),
        "--server".into(),
        cloud.url.clone(),
        "--api-key".into(),
        cloud.admin_api_key.clone(),
        "--config".into(),
        home.join("mftctl.yaml").display().to_string(),
    ];
    line.extend(args.iter().map(|a| a.to_string()));
    let cli = mftctl::Cli::try_parse_from(&line).expect("a valid mftctl line");
    let handle = std::thread::spawn(move || mftctl::main_with(cli));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !handle.is_finished() {
        assert!(Instant::now() < deadline, "mftctl {args:?} hung");
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.join().expect("mftctl did not panic")
}

/// A process of the `mftplus` binary; SIGKILLed when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(args: &[&str], envs: &[(&str, String)], log: &Path) -> Proc {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(BIN)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Proc {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit code within `within`.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "no exit within {within:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// `mftplus hub` in front of `cloud` with a fresh deploy key; its URL once registered.
pub async fn hub_process(cloud: &TestCloud, dir: &Path) -> (Proc, String) {
    hub_process_with(&operator(cloud), &cloud.url, dir, &[]).await
}

/// [`hub_process`] for a cloud at `cloud_url` (reached by `operator`), with extra variables;
/// the URL is `https://` when `HUB_TLS_CERT` is among them.
pub async fn hub_process_with(
    operator: &Client,
    cloud_url: &str,
    dir: &Path,
    envs: &[(&str, String)],
) -> (Proc, String) {
    let key = operator.create_deploy_key("site-agents").await.unwrap().key;
    let data = dir.join("hub-data");
    std::fs::create_dir_all(&data).unwrap();
    let mut child = Command::new(BIN)
        .arg("hub")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .env("CLOUD_API_URL", format!("{cloud_url}/api"))
        .env("HUB_REGISTRATION_KEY", key)
        .env("HUB_PORT", "0")
        .env("HUB_LISTEN_ADDR", "127.0.0.1")
        .env("HUB_DATA_DIR", data.display().to_string())
        .env("DIAGNOSE_DISK_PATH", dir.display().to_string())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("hub.log")).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut port = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        if let Some(rest) = line.strip_prefix("[Hub] Server running on port ") {
            port = rest.split(' ').next().and_then(|p| p.parse::<u16>().ok());
        }
        if line.starts_with("[PhoneHome] Registered successfully") {
            break;
        }
    }
    let port = port.unwrap_or_else(|| {
        let log = std::fs::read_to_string(dir.join("hub.log")).unwrap_or_default();
        panic!("the hub did not announce its port and register: {log}")
    });
    let proc = Proc {
        child,
        log: dir.join("hub.log"),
    };
    let scheme = if envs.iter().any(|(k, _)| *k == "HUB_TLS_CERT") {
        "https"
    } else {
        "http"
    };
    (proc, format!("{scheme}://127.0.0.1:{port}"))
}

/// A customer `id` with the known retrieval password.
pub async fn customer(cloud: &TestCloud, id: &str) {
    customer_via(&operator(cloud), id).await;
}

/// [`customer`] through a given operator client (e.g. one that trusts a private CA).
pub async fn customer_via(operator: &Client, id: &str) {
    operator
        .create_customer(&mftplus_types::fleet::CreateCustomer {
            id: Some(id.into()),
            name: format!("Customer {id}"),
            email: format!("it@{id}.example.com"),
            domain: None,
            locale: None,
            retrieval_password: Some(PASSWORD.into()),
            config: None,
        })
        .await
        .unwrap();
}

/// The host id `mftplus agent enroll` printed; panics with its output when it failed.
pub fn enrolled_host_id(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "enroll failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Enrolled host "))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no host id in {stdout}"))
        .to_string()
}

/// A cloud serving TLS 1.3 only with a certificate from a private CA made by openssl in
/// `dir/certs` (`ca.crt`, `server.*`, `hub.*`), polling every second; its `https://` URL and
/// an operator client that trusts the CA.
pub async fn tls_cloud(dir: &Path) -> (TestCloud, String, Client, PathBuf) {
    tls_cloud_with(dir, "noClientCert", "").await
}

/// [`tls_cloud`] with `client_auth.mode` and more YAML for the server config.
pub async fn tls_cloud_with(
    dir: &Path,
    mode: &str,
    extra_yaml: &str,
) -> (TestCloud, String, Client, PathBuf) {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    mftplus_pki::testing::ca(&certs, "ca");
    mftplus_pki::testing::leaf(&certs, "ca", "server", true);
    mftplus_pki::testing::leaf(&certs, "ca", "hub", true);
    let mut options = TestOptions::default();
    options.config_yaml.push_str(&format!(
        "fleet:\n  poll_interval_seconds: 1\ntls:\n  enabled: true\n  certificate:\n    cert: {0}/server.crt\n    key: {0}/server.key\n  client_auth:\n    mode: {mode}\n{extra_yaml}",
        certs.display()
    ));
    let cloud = TestCloud::spawn_with(options).await;
    let https = cloud.url.replace("http://", "https://");
    let ca_file = certs.join("ca.crt");
    let operator = Client::with_options(
        &https,
        Credential::ApiKey(cloud.admin_api_key.clone()),
        mftplus_client::ClientOptions {
            extra_roots_pem: Some(std::fs::read(&ca_file).unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    (cloud, https, operator, ca_file)
}

/// One box: its config file, state folder and log, all under `dir`.
pub struct Box {
    pub dir: PathBuf,
    pub config: PathBuf,
}

impl Box {
    /// Writes a config for `server` that polls every second and backs off quickly.
    pub fn new(dir: &Path, server: &str) -> Box {
        Box::with_driver(dir, server, "docker")
    }

    pub fn with_driver(dir: &Path, server: &str, driver: &str) -> Box {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("agent.yaml");
        let state = dir.join("state");
        std::fs::write(
            &config,
            format!(
                "server:\n  url: {server}\n  timeout: 10s\nstate_dir: {}\ndriver: {driver}\n\
                 poll:\n  min_interval: 1s\nbackoff:\n  initial: 1s\n  max: 2s\nauth_grace: 5s\n\
                 disk_path: {}\n",
                state.display(),
                dir.display()
            ),
        )
        .unwrap();
        Box {
            dir: dir.to_path_buf(),
            config,
        }
    }

    /// `mftplus agent enroll` with the password in a 0600 file; the process's output.
    pub fn enroll(&self, customer: &str, extra: &[&str]) -> std::process::Output {
        let password = self.dir.join("password");
        std::fs::write(&password, PASSWORD).unwrap();
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = self.config.display().to_string();
        let password = password.display().to_string();
        let mut args = vec![
            "agent",
            "enroll",
            "--config",
            &config,
            "--customer",
            customer,
            "--password-file",
            &password,
        ];
        args.extend_from_slice(extra);
        Command::new(BIN).args(&args).output().unwrap()
    }

    pub fn start(&self) -> Proc {
        let config = self.config.display().to_string();
        Proc::spawn(
            &["agent", "--config", &config],
            &[],
            &self.dir.join("agent.log"),
        )
    }

    pub fn state(&self) -> mftplus_agent::state::StateDb {
        // Read as it is: opening to act would turn `begun` steps into `interrupted`.
        mftplus_agent::state::StateDb::open_to_read(&self.dir.join("state")).unwrap()
    }
}

/// Waits until the cloud has a report from `host_id`.
pub async fn first_report(operator: &Client, host_id: &str, logs: &[&Proc]) {
    eventually(Duration::from_secs(30), "a first report", logs, || async {
        operator
            .get_host(host_id)
            .await
            .ok()?
            .last_report_at
            .map(|_| ())
    })
    .await;
}

/// Polls `check` every 100 ms until it returns `Some`, or panics with `what` and the logs.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, logs: &[&Proc], mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = logs.iter().map(|p| p.logs()).collect();
            panic!(
                "{what} did not happen within {within:?}; logs:\n{}",
                logs.join("\n---\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The containers the agent owns for `guest_id`, by `docker ps` (name, status).
pub fn containers_of(guest_id: &str) -> Vec<(String, String)> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=io.mftplus.guest={guest_id}"),
            "--format",
            "{{.Names}}\t{{.State}}",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

/// Removes the containers of `guest_ids` whatever happens to the test.
pub struct ContainerGuard(pub Vec<String>);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        for guest in &self.0 {
            for (name, _) in containers_of(guest) {
                let _ = Command::new("docker").args(["rm", "-f", &name]).output();
            }
        }
    }
}
