//! The cloud and the hub as real `mftplus` processes inside their namespaces
//! (`ip netns exec NS mftplus …`, which execs: the child's pid is the server's), so they can be
//! stopped with SIGSTOP, killed with SIGKILL and started again on the same database or data
//! folder; optionally with a skewed wall clock (libfaketime by `LD_PRELOAD`, the monotonic
//! clock left alone). And the hub's data folder on a small tmpfs that can be filled.

use super::run;
use rustix::process::{Pid, Signal};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mftplus");
const JWT_SECRET: &str = "fault-injection-secret-that-is-long-enough-0123456789";
const CLOUD_PORT: u16 = 8080;
const HUB_PORT: u16 = 3002;
/// What the hub is told to wait for a stalled cloud before queueing (seconds).
pub const ANSWER_BUDGET_SECS: u64 = 2;

/// A wall clock `minutes` off, through libfaketime at `library`.
#[derive(Debug, Clone)]
pub struct Skew {
    pub library: PathBuf,
    pub minutes: i64,
}

/// One server process; SIGKILLed when dropped.
pub struct Proc {
    child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(
        ns: &str,
        args: &[&str],
        envs: &[(String, String)],
        log: &Path,
        skew: Option<&Skew>,
    ) -> Result<Proc, String> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns, BIN])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // A process group of its own: a SIGSTOPped server left in the test's group gets
            // SIGHUP (and dies) when that group is orphaned while it is stopped (POSIX), which
            // happens when the test runs detached from its launcher.
            .process_group(0);
        if let Some(skew) = skew {
            command
                .env("LD_PRELOAD", &skew.library)
                .env("FAKETIME", format!("{:+}m", skew.minutes))
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {BIN}: {e}"))?;
        Ok(Proc {
            child,
            log: log.to_path_buf(),
        })
    }

    fn signal(&self, signal: Signal) {
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }

    pub fn pause(&self) {
        self.signal(Signal::STOP);
    }

    pub fn resume(&self) {
        self.signal(Signal::CONT);
    }

    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and the exit within `within`; SIGKILL after that.
    pub fn terminate(&mut self, within: Duration) -> Result<(), String> {
        self.resume();
        self.signal(Signal::TERM);
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status
                    .success()
                    .then_some(())
                    .ok_or_else(|| format!("exited with {status} after SIGTERM"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill_9();
        Err(format!("no exit within {within:?} of SIGTERM"))
    }

    pub fn exited(&mut self) -> bool {
        self.exit_status().is_some()
    }

    /// How the process ended ("exit status: 1", "signal: 11 (SIGSEGV)"), if it has.
    pub fn exit_status(&mut self) -> Option<String> {
        self.child.try_wait().ok().flatten().map(|s| s.to_string())
    }

    pub fn tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A client for readiness probes: short timeout, no pooled connection kept.
fn probe_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(0)
        .build()
        .expect("a reqwest client")
}

/// Polls `url` until it answers 200, the process exits, or `within` passes.
async fn wait_ready(url: &str, proc: &mut Proc, within: Duration) -> Result<(), String> {
    let client = probe_client();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if proc.exited() {
            return Err(format!("exited while starting:\n{}", proc.tail(30)));
        }
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "{url} not ready within {within:?}:\n{}",
        proc.tail(30)
    ))
}

/// How far the server's wall clock is from ours, by the `Date` header of `url`'s answer.
pub async fn clock_offset_minutes(url: &str) -> Result<i64, String> {
    let answer = probe_client()
        .get(url)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let date = answer
        .headers()
        .get("date")
        .and_then(|v| v.to_str().ok())
        .ok_or("no Date header")?;
    let theirs = chrono::DateTime::parse_from_rfc2822(date).map_err(|e| format!("{date}: {e}"))?;
    let offset = theirs.timestamp() - chrono::Utc::now().timestamp();
    Ok((offset as f64 / 60.0).round() as i64)
}

/// `mftplus cloud` with its config file and SQLite database in `dir`.
pub struct CloudProc {
    ns: String,
    dir: PathBuf,
    config: PathBuf,
    env: BTreeMap<String, String>,
    /// Over the admin link, for the test.
    pub admin_url: String,
    /// Over the uplink, for the hub.
    pub uplink_url: String,
    pub proc: Option<Proc>,
    pub skew: Option<Skew>,
}

impl CloudProc {
    pub fn prepare(
        dir: &Path,
        ns: &str,
        admin_ip: &str,
        uplink_ip: &str,
    ) -> Result<CloudProc, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let config = dir.join("server.yaml");
        let yaml = format!(
            "server:\n  listen: 0.0.0.0:{CLOUD_PORT}\n  metrics_listen: 127.0.0.1:0\n\
             rate_limit:\n  per_credential_per_minute: 1000000\n  per_address_per_minute: 1000000\n\
             fleet:\n  max_hosts_per_customer: 100\n  poll_interval_seconds: 5\n\
             hubs:\n  heartbeat_interval_seconds: 5\n\
             transfers:\n  blob_path: {0}/blobs\n\
             certificates:\n  authority:\n    dir: {0}/ca\n",
            dir.display()
        );
        std::fs::write(&config, yaml).map_err(|e| e.to_string())?;
        let env = BTreeMap::from([
            ("JWT_SECRET".to_string(), JWT_SECRET.to_string()),
            (
                "DATABASE_URL".into(),
                format!("sqlite://{}", dir.join("cloud.db").display()),
            ),
            ("RUST_LOG".into(), "info".into()),
        ]);
        Ok(CloudProc {
            ns: ns.to_string(),
            dir: dir.to_path_buf(),
            config,
            env,
            admin_url: format!("http://{admin_ip}:{CLOUD_PORT}"),
            uplink_url: format!("http://{uplink_ip}:{CLOUD_PORT}"),
            proc: None,
            skew: None,
        })
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.join("cloud.db")
    }

    /// An operator and its API key, made in the database before the process first starts, the
    /// way `mftplus dev` and `TestCloud` make theirs (`Cloud::ensure_admin`, `mint_api_key`),
    /// so the suite needs no password login. On a runtime of its own, gone before the process
    /// opens the database.
    pub fn seed_operator(&self) -> Result<String, String> {
        let (config, env) = (self.config.clone(), self.env.clone());
        let seeding = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let loaded = mftplus_cloud::config::load_from(Some(&config), &env)
                    .map_err(|e| e.to_string())?;
                let clock = Arc::new(mftplus_base::SystemClock);
                let cloud = mftplus_cloud::Cloud::build(loaded, clock)
                    .await
                    .map_err(|e| e.to_string())?;
                let (admin, _) = cloud
                    .ensure_admin("operator@fault-injection.test")
                    .await
                    .map_err(|e| e.to_string())?;
                cloud
                    .mint_api_key(&admin, "fault injection", "admin", 86_400)
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        seeding
            .join()
            .map_err(|_| "seeding the operator panicked".to_string())?
    }

    /// Starts the process (skewed if `skew`) and waits until it answers health checks.
    pub async fn start(&mut self, skew: Option<Skew>) -> Result<(), String> {
        let config = self.config.display().to_string();
        let env: Vec<(String, String)> = self.env.clone().into_iter().collect();
        let log = self.dir.join("cloud.log");
        append_marker(
            &log,
            &format!(
                "start (clock skew {:?} min)",
                skew.as_ref().map(|s| s.minutes)
            ),
        );
        let mut proc = Proc::spawn(
            &self.ns,
            &["cloud", "--config", &config],
            &env,
            &log,
            skew.as_ref(),
        )?;
        let health = format!("{}/api/v1/health", self.admin_url);
        let ready = wait_ready(&health, &mut proc, Duration::from_secs(40)).await;
        self.proc = Some(proc);
        self.skew = skew;
        ready.map_err(|e| format!("cloud: {e}"))
    }

    pub fn proc(&mut self) -> &mut Proc {
        self.proc.as_mut().expect("the cloud was started")
    }

    pub fn kill_9(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill_9();
        }
    }

    pub fn terminate(&mut self) -> Result<(), String> {
        match self.proc.take() {
            Some(mut proc) => proc.terminate(Duration::from_secs(30)),
            None => Ok(()),
        }
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("cloud.log")
    }
}

/// `mftplus hub` with its data folder on the tmpfs.
pub struct HubProc {
    ns: String,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// Over the agents' link, for the test.
    pub url: String,
    pub proc: Option<Proc>,
    pub skew: Option<Skew>,
}

impl HubProc {
    pub fn prepare(
        ns: &str,
        ip: &str,
        cloud_url: &str,
        key: &str,
        data: &Path,
        log: &Path,
    ) -> HubProc {
        let data = data.display().to_string();
        let env = [
            ("CLOUD_API_URL", format!("{cloud_url}/api")),
            ("HUB_REGISTRATION_KEY", key.to_string()),
            ("HUB_PORT", HUB_PORT.to_string()),
            ("HUB_LISTEN_ADDR", ip.to_string()),
            ("HUB_DATA_DIR", data.clone()),
            ("DIAGNOSE_DISK_PATH", data),
            ("HUB_SITE_LOCAL", "false".into()),
            (
                "HUB_QUEUE_ANSWER_BUDGET_SECONDS",
                ANSWER_BUDGET_SECS.to_string(),
            ),
            ("RUST_LOG", "info".into()),
        ];
        HubProc {
            ns: ns.to_string(),
            env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            log: log.to_path_buf(),
            url: format!("http://{ip}:{HUB_PORT}"),
            proc: None,
            skew: None,
        }
    }

    /// Starts the hub and waits for `/health`; with `registered`, also for its registration.
    pub async fn start(&mut self, skew: Option<Skew>, registered: bool) -> Result<(), String> {
        const LINE: &str = "[PhoneHome] Registered successfully";
        let before = std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches(LINE)
            .count();
        append_marker(
            &self.log,
            &format!(
                "start (clock skew {:?} min)",
                skew.as_ref().map(|s| s.minutes)
            ),
        );
        let mut proc = Proc::spawn(&self.ns, &["hub"], &self.env, &self.log, skew.as_ref())?;
        let ready = wait_ready(
            &format!("{}/health", self.url),
            &mut proc,
            Duration::from_secs(30),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while ready.is_ok() && registered && Instant::now() < deadline {
            let now = std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .matches(LINE)
                .count();
            if now > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.proc = Some(proc);
        self.skew = skew;
        ready.map_err(|e| format!("hub: {e}"))
    }

    pub fn kill_9(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill_9();
        }
    }

    pub fn terminate(&mut self) -> Result<(), String> {
        match self.proc.take() {
            Some(mut proc) => proc.terminate(Duration::from_secs(30)),
            None => Ok(()),
        }
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Rows in the hub's offline queue (`GET /hub/offline`), or `None` when it does not answer.
    pub async fn queued(&self) -> Option<u64> {
        self.offline().await?["queued"].as_u64()
    }

    /// Rows the cloud refused on replay, kept in the hub's dead letter (`deadLetter`, from the
    /// hub that has one).
    pub async fn dead_letter(&self) -> Option<u64> {
        self.offline().await?["deadLetter"].as_u64()
    }

    async fn offline(&self) -> Option<serde_json::Value> {
        let answer = probe_client()
            .get(format!("{}/hub/offline", self.url))
            .send()
            .await
            .ok()?;
        answer.json().await.ok()
    }
}

/// A line in a server's log saying what the test did, to read the log against the schedule.
pub fn append_marker(log: &Path, what: &str) {
    if let Ok(mut file) = OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(file, "==== fault injection: {what} ====");
    }
}

/// What SQLite does when the last connection closes cleanly: the write-ahead log folded into
/// the database and truncated. Only while the hub is stopped.
pub fn checkpoint(db: &Path) -> Result<(), String> {
    let conn = rusqlite::Connection::open(db).map_err(|e| format!("{}: {e}", db.display()))?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(|e| format!("checkpoint {}: {e}", db.display()))
}

/// A tmpfs mounted for the run (the hub's data folder), unmounted on drop.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    pub fn mount(path: &Path, mib: u64) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let options = format!("size={mib}m,mode=0700");
        run(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            &options,
            "tmpfs",
            &path.display().to_string(),
        ])?;
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }

    fn filler(&self) -> PathBuf {
        self.path.join("filler")
    }

    /// Writes a file until the filesystem refuses; the bytes written.
    pub fn fill(&self) -> Result<u64, String> {
        let mut file = std::fs::File::create(self.filler()).map_err(|e| e.to_string())?;
        let mut written = 0;
        for size in [1 << 20, 4096, 512] {
            let block = vec![0x5a_u8; size];
            while file.write_all(&block).is_ok() {
                written += size as u64;
            }
        }
        Ok(written)
    }

    /// The files on it and their sizes, for the log.
    pub fn files(&self) -> String {
        let mut files: Vec<String> = std::fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                let size = e.metadata().map_or(0, |m| m.len());
                format!("{} {} KiB", e.file_name().to_string_lossy(), size / 1024)
            })
            .collect();
        files.sort();
        files.join(", ")
    }

    pub fn free(&self) {
        let _ = std::fs::remove_file(self.filler());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let path = self.path.display().to_string();
        if run(&["umount", &path]).is_err() {
            let _ = run(&["umount", "-l", &path]);
        }
    }
}
