//! A multi-replica deployment as processes on loopback (issue 17 item 4): one fresh PostgreSQL
//! database, moto as the S3-compatible payload store, three `mftplus cloud` replicas sharing
//! both (and the JWT secret and CA folder), and HAProxy from Debian in front, started with
//! `packaging/replicas/haproxy.cfg` exactly as shipped. Replicas can be killed with SIGKILL,
//! stopped with SIGTERM and started again on the same address.
//!
//! Needs `MFTPLUS_TEST_PG_URL`, `moto_server` and `haproxy` (scripts/test.sh and
//! scripts/install-test-deps.sh provide them); without them the tests skip loudly, unless
//! `MFTPLUS_TEST_REQUIRE_REPLICAS=1` (CI), which turns a skip into a failure.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mftplus_blob::testing::{Moto, BUCKET};
use mftplus_store_postgres::testing::TestDatabase;

pub const REPLICAS: usize = 3;
const BIN: &str = env!("CARGO_BIN_EXE_mftplus");
const JWT_SECRET: &str = "replica-test-secret-that-is-long-enough-0123456789";
const READY_WITHIN: Duration = Duration::from_secs(60);

/// One `mftplus cloud` process and what it needs to start again on the same address.
pub struct Replica {
    pub name: String,
    /// `http://127.0.0.1:<port>`, bypassing the balancer.
    pub url: String,
    pub metrics_url: String,
    config: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Replica {
    fn spawn(&mut self) {
        append(&self.log, "--- start");
        let log = OpenOptions::new().append(true).open(&self.log).unwrap();
        let child = Command::new(BIN)
            .args(["cloud", "--config"])
            .arg(&self.config)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("mftplus cloud starts");
        self.child = Some(child);
    }

    /// Starts the process and waits until it answers `/api/v1/health` with 200.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        self.spawn();
        let url = format!("{}/api/v1/health", self.url);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    tail(&self.log, 40)
                );
            }
            if http_status(&url).await == Some(200) {
                return;
            }
            assert!(Instant::now() < deadline, "{} not ready", self.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no drain, no shutdown hooks.
    pub fn kill_9(&mut self) {
        append(&self.log, "--- kill -9");
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then the exit (a graceful stop drains its requests first).
    pub fn terminate(&mut self) {
        append(&self.log, "--- SIGTERM");
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not stop within 30 s of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// One sample of a metric without labels from this replica's metrics listener.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = reqwest::get(format!("{}/metrics", self.metrics_url))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    }
}

/// The deployment; every process is killed when it is dropped, then the database.
pub struct Cluster {
    /// The balancer: what clients are given.
    pub url: String,
    pub replicas: Vec<Replica>,
    /// An administrator's API key, minted in the database before the first start.
    pub admin_key: String,
    balancer: Child,
    balancer_log: PathBuf,
    _moto: Moto,
    _database: TestDatabase,
    pub root: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for replica in &self.replicas {
                eprintln!(
                    "--- {} log (tail)\n{}",
                    replica.name,
                    tail(&replica.log, 60)
                );
            }
            eprintln!("--- haproxy log (tail)\n{}", tail(&self.balancer_log, 40));
        }
        for replica in &mut self.replicas {
            replica.kill_9();
        }
        let _ = self.balancer.kill();
        let _ = self.balancer.wait();
    }
}

/// What is missing to run the deployment, or `None` when all is there.
fn missing_prerequisite() -> Option<&'static str> {
    if std::env::var("MFTPLUS_TEST_PG_URL").is_err() {
        return Some("MFTPLUS_TEST_PG_URL is not set (scripts/pg-test-setup.sh)");
    }
    let haproxy = Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !haproxy.is_ok_and(|s| s.success()) {
        return Some("haproxy is not installed (scripts/install-test-deps.sh)");
    }
    None
}

impl Cluster {
    /// The deployment with `extra_yaml` appended to every replica's config (sections the base
    /// config does not have: `rate_limit`, `fleet`, …); `None` after a loud line when a
    /// prerequisite is missing and CI does not require it.
    pub async fn start(extra_yaml: &str) -> Option<Cluster> {
        if let Some(missing) = missing_prerequisite() {
            if std::env::var("MFTPLUS_TEST_REQUIRE_REPLICAS").as_deref() == Ok("1") {
                panic!("the replica tests must run here, but {missing}");
            }
            let _ = writeln!(std::io::stderr(), "SKIPPED: multi-replica tests: {missing}");
            return None;
        }
        let database = mftplus_store_postgres::testing::fresh_database().await?;
        let moto = Moto::start().await?;
        let root = tempfile::tempdir().unwrap();
        let mut replicas = Vec::new();
        for n in 1..=REPLICAS {
            replicas.push(prepare(root.path(), n, &database, &moto, extra_yaml));
        }
        let admin_key = seed_operator(&replicas[0]);
        for replica in &mut replicas {
            replica.start().await;
        }
        let (balancer, balancer_log, url) = start_balancer(root.path(), &replicas).await;
        Some(Cluster {
            url,
            replicas,
            admin_key,
            balancer,
            balancer_log,
            _moto: moto,
            _database: database,
            root,
        })
    }

    pub fn admin(&self) -> mftplus_client::Client {
        mftplus_client::Client::new(
            &self.url,
            mftplus_client::Credential::ApiKey(self.admin_key.clone()),
        )
        .unwrap()
    }

    /// Waits until the balancer's health checks agree with which replicas run: a request then
    /// reaches only live ones (HAProxy checks every second, two failures take a server out,
    /// two successes bring it back).
    pub async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(2_500)).await;
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn prepare(
    root: &Path,
    n: usize,
    database: &TestDatabase,
    moto: &Moto,
    extra_yaml: &str,
) -> Replica {
    let (port, metrics_port) = (free_port(), free_port());
    let config = root.join(format!("cloud{n}.yaml"));
    // The CA folder and the bucket are shared, as docs/replicas.md has it; the balancer is on
    // 127.0.0.1, so that is the trusted proxy.
    let yaml = format!(
        "server:\n  listen: 127.0.0.1:{port}\n  metrics_listen: 127.0.0.1:{metrics_port}\n  \
         trusted_proxies: [127.0.0.1]\n\
         transfers:\n  blob_backend: s3\n  s3:\n    bucket: {BUCKET}\n    endpoint: {endpoint}\n    \
         prefix: replicas\n    access_key_id: replica-test\n    \
         secret_access_key: moto-accepts-any-secret-0123456789\n    allow_http: true\n\
         certificates:\n  authority:\n    dir: {ca}\n{extra_yaml}",
        endpoint = moto.endpoint,
        ca = root.join("ca").display(),
    );
    std::fs::write(&config, yaml).unwrap();
    let log = root.join(format!("cloud{n}.log"));
    std::fs::write(&log, "").unwrap();
    Replica {
        name: format!("cloud{n}"),
        url: format!("http://127.0.0.1:{port}"),
        metrics_url: format!("http://127.0.0.1:{metrics_port}"),
        config,
        log,
        env: vec![
            ("JWT_SECRET".into(), JWT_SECRET.into()),
            ("DATABASE_URL".into(), database.url().to_string()),
            ("RUST_LOG".into(), "info".into()),
        ],
        child: None,
    }
}

/// An administrator and its API key, made through the cloud's own code before any replica
/// starts (as `mftplus dev` makes its own), on a runtime of its own.
fn seed_operator(replica: &Replica) -> String {
    let config = replica.config.clone();
    let env: std::collections::BTreeMap<String, String> = replica.env.iter().cloned().collect();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let loaded = mftplus_cloud::config::load_from(Some(&config), &env).unwrap();
            let cloud = mftplus_cloud::Cloud::build(loaded, Arc::new(mftplus_base::SystemClock))
                .await
                .unwrap();
            let (admin, _) = cloud.ensure_admin("operator@replicas.test").await.unwrap();
            cloud
                .mint_api_key(&admin, "replica tests", "admin", 86_400)
                .await
                .unwrap()
        })
    })
    .join()
    .expect("seeding the operator")
}

/// HAProxy in the foreground with the shipped config; returns once it forwards a health check.
async fn start_balancer(root: &Path, replicas: &[Replica]) -> (Child, PathBuf, String) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/replicas/haproxy.cfg");
    let port = free_port();
    let log = root.join("haproxy.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut command = Command::new("haproxy");
    command
        .args(["-db", "-f"])
        .arg(&config)
        .env("MFTPLUS_LB_BIND", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (n, replica) in replicas.iter().enumerate() {
        let address = replica.url.trim_start_matches("http://");
        command.env(format!("MFTPLUS_REPLICA_{}", n + 1), address);
    }
    let mut child = command.spawn().expect("haproxy starts");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + READY_WITHIN;
    while http_status(&format!("{url}/api/v1/health")).await != Some(200) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("haproxy exited ({status}):\n{}", tail(&log, 40));
        }
        assert!(Instant::now() < deadline, "haproxy not forwarding");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, log, url)
}

pub async fn http_status(url: &str) -> Option<u16> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    Some(client.get(url).send().await.ok()?.status().as_u16())
}

fn append(log: &Path, line: &str) {
    if let Ok(mut file) = OpenOptions::new().append(true).create(true).open(log) {
        let _ = writeln!(file, "{line}");
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
