//! One run's world: the namespaces, the cloud and hub processes, the delayer, the hub's tmpfs,
//! the enrolled hosts. Built in order, torn down in reverse on drop (processes first, then the
//! delayer, the tmpfs, the namespaces, the files), whether the run passed, failed or panicked.

use super::check;
use super::faults::Tally;
use super::net::{Net, CLOUD_UPLINK_IP};
use super::nfqueue::Shaper;
use super::procs::{CloudProc, HubProc, Skew, Tmpfs};
use super::reporters::{Fleet, Ledger, Reporter};
use super::{Rng, Tools};
use mftplus_client::{AgentClient, Client, Credential};
use mftplus_types::fleet::{CreateCustomer, EnrollRequest};
use std::time::{Duration, Instant};

const CUSTOMER: &str = "faults";
const PASSWORD: &str = "alma-korte-szilva-barack-dio";
/// The hub's data folder: room for its database and a full write-ahead log (16 KiB pages,
/// checkpoint at 1000 pages) with room to spare, small enough to fill in a blink.
const HUB_DISK_MIB: u64 = 48;

/// Field order is drop order.
pub struct Lab {
    pub hub: HubProc,
    pub cloud: CloudProc,
    pub shaper: Shaper,
    pub disk: Tmpfs,
    pub net: Net,
    pub reporters: Vec<Reporter>,
    faketime: Option<std::path::PathBuf>,
    /// Logs, the cloud's database; removed last.
    _dir: tempfile::TempDir,
}

impl Lab {
    pub async fn build(reporters: usize, tools: &Tools, rng: &mut Rng) -> Result<Lab, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let net = Net::create()?;
        let disk = Tmpfs::mount(&dir.path().join("hub-data"), HUB_DISK_MIB)?;
        let mut cloud = CloudProc::prepare(
            &dir.path().join("cloud"),
            &net.cloud_ns,
            &net.cloud_admin_ip,
            CLOUD_UPLINK_IP,
        )?;
        let api_key = cloud.seed_operator()?;
        cloud.start(None).await?;
        let operator = Client::new(&cloud.admin_url, Credential::ApiKey(api_key))
            .map_err(|e| e.to_string())?;
        let reporters = enroll(&operator, &cloud.admin_url, reporters).await?;
        let deploy_key = operator
            .create_deploy_key("fault-injection")
            .await
            .map_err(|e| e.to_string())?
            .key;
        let log = dir.path().join("hub.log");
        let mut hub = HubProc::prepare(
            &net.hub_ns,
            &net.hub_ip,
            &cloud.uplink_url,
            &deploy_key,
            &disk.path,
            &log,
        );
        hub.start(None, true).await?;
        let shaper = Shaper::start(&net.hub_ns, rng.next())?;
        Ok(Lab {
            hub,
            cloud,
            shaper,
            disk,
            net,
            reporters,
            faketime: tools.faketime.clone(),
            _dir: dir,
        })
    }

    /// A skew of `minutes` when libfaketime is there.
    pub fn skew(&self, minutes: i64) -> Option<Skew> {
        self.faketime
            .clone()
            .map(|library| Skew { library, minutes })
    }

    /// (packets seen, dropped, delayed) by the delayer so far.
    pub fn shaper_counts(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let c = &self.shaper.counters;
        (
            c.packets.load(Relaxed),
            c.dropped.load(Relaxed),
            c.delayed.load(Relaxed),
        )
    }

    /// After an episode: both processes alive (a crash on its own is a finding; the process is
    /// restarted so the run goes on) and the hub's queue drained, within `within`.
    pub async fn settle(&mut self, within: Duration, tally: &mut Tally) -> Result<(), String> {
        if let Some(how) = self.cloud.proc.as_mut().and_then(|p| p.exit_status()) {
            let log = super::procs::tail(&self.cloud.log(), 20);
            tally
                .problems
                .push(format!("the cloud exited on its own ({how}):\n{log}"));
            self.cloud.start(None).await?;
        }
        if let Some(how) = self.hub.proc.as_mut().and_then(|p| p.exit_status()) {
            let log = super::procs::tail(self.hub.log(), 20);
            tally
                .problems
                .push(format!("the hub exited on its own ({how}):\n{log}"));
            self.hub.start(None, false).await?;
        }
        let deadline = Instant::now() + within;
        let mut queued = None;
        while Instant::now() < deadline {
            queued = self.hub.queued().await;
            if queued == Some(0) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tally.problems.push(format!(
            "the hub's queue did not drain within {within:?} (queued: {queued:?})"
        ));
        Ok(())
    }

    /// Once the reporters stopped: waits (bounded) until the queue is empty and every
    /// acknowledged report is stored, then stops the hub (kill -9: nothing it still holds can
    /// reach the cloud after the read) and the cloud (SIGTERM, so its batches are flushed).
    pub async fn finish(&mut self, ledger: &Ledger, within: Duration, tally: &mut Tally) {
        let deadline = Instant::now() + within;
        let mut missing = None;
        while Instant::now() < deadline {
            let stored = check::stored_reports(&self.cloud.db_path());
            missing = stored
                .ok()
                .map(|s| check::missing(ledger, &self.reporters, &s));
            if missing == Some(0) && self.hub.queued().await == Some(0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if missing != Some(0) {
            eprintln!("  after {within:?}: {missing:?} acknowledged reports still not stored");
        }
        if let Some(dead) = self.hub.dead_letter().await.filter(|n| *n > 0) {
            tally.problems.push(format!(
                "{dead} queued writes refused by the cloud on replay (the hub's dead letter)"
            ));
        }
        self.hub.kill_9();
        if let Err(err) = self.cloud.terminate() {
            tally
                .problems
                .push(format!("the cloud did not stop cleanly: {err}"));
        }
    }

    /// The logs' tails, for a failure message.
    pub fn logs(&self) -> String {
        format!(
            "--- cloud log ({}):\n{}\n--- hub log ({}):\n{}",
            self.cloud.log().display(),
            super::procs::tail(&self.cloud.log(), 40),
            self.hub.log().display(),
            super::procs::tail(self.hub.log(), 40)
        )
    }
}

/// The customer and `n` hosts enrolled with its retrieval password, half of them keyed.
async fn enroll(operator: &Client, cloud_url: &str, n: usize) -> Result<Vec<Reporter>, String> {
    operator
        .create_customer(&CreateCustomer {
            id: Some(CUSTOMER.into()),
            name: "Fault injection".into(),
            email: "it@faults.example.com".into(),
            domain: None,
            locale: None,
            retrieval_password: Some(PASSWORD.into()),
            config: None,
        })
        .await
        .map_err(|e| format!("create customer: {e}"))?;
    let boxes = AgentClient::unenrolled(cloud_url).map_err(|e| e.to_string())?;
    let mut reporters = Vec::with_capacity(n);
    for i in 0..n {
        let request = EnrollRequest {
            customer_id: CUSTOMER.into(),
            hostname: format!("box-{i:02}"),
            agent_version: "fault-injection".into(),
            platform: None,
        };
        let enrolled = boxes
            .enroll(&request, PASSWORD)
            .await
            .map_err(|e| format!("enroll: {e}"))?;
        reporters.push(Reporter {
            host_id: enrolled.host_id,
            key: enrolled.host_key,
            keyed: i % 2 == 0,
        });
    }
    Ok(reporters)
}

/// Starts the reporters and waits until each has had two reports acknowledged by the cloud
/// through the hub (so the hub's auth cache knows every key before the first fault).
pub async fn warm_up(lab: &Lab, rng: &mut Rng) -> Result<Fleet, String> {
    let fleet = Fleet::start(&lab.hub.url, &lab.reporters, rng);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if fleet.acked().iter().all(|n| *n >= 2) {
            return Ok(fleet);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "reporters not acknowledged through the hub within 30 s: {:?}\n{}",
        fleet.acked(),
        lab.logs()
    ))
}
