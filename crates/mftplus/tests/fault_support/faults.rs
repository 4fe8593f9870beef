//! The faults, their seeded schedule, and how each is injected and healed.
//!
//! A run is a list of episodes: one of each kind in a seeded order (so even the short run
//! covers them all), then `MFTPLUS_FAULT_EPISODES` drawn at random. Each episode injects its
//! fault(s) for a few seconds while the reporters keep sending, heals everything, and the run
//! then waits (bounded) for the hub's queue to drain before the next. Several episodes combine
//! faults: a hub killed during a partition, a cloud killed while the hub replays, a disk filled
//! while the hub must queue, a partition while a clock is skewed.

use super::lab::Lab;
use super::net::Cut;
use super::nfqueue::{Impairment, QUEUE};
use super::procs::{clock_offset_minutes, ANSWER_BUDGET_SECS};
use super::reporters::Fleet;
use super::Rng;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub enum Episode {
    /// The uplink cut for `hold`; with `kill_hub_after`, the hub killed -9 and restarted on the
    /// same data folder that long into the cut.
    Partition {
        cut: Cut,
        hold: Duration,
        kill_hub_after: Option<Duration>,
    },
    /// Delay ± jitter on the packets the hub sends the cloud, loss on every packet of the
    /// uplink both ways, for `hold`.
    Impair {
        impairment: Impairment,
        hold: Duration,
    },
    /// The cloud SIGSTOPped for `hold`, then SIGCONTed.
    Stall { hold: Duration },
    /// The hub killed -9, restarted after `down`; with `cut`, while the uplink is cut (rows
    /// in its queue).
    KillHub { down: Duration, cut: Option<Cut> },
    /// The cloud killed -9, restarted after `down`; with `replay`, right after a partition of
    /// that length healed (the hub replaying its queue).
    KillCloud {
        down: Duration,
        replay: Option<Duration>,
    },
    /// The hub's tmpfs filled while the uplink is cut (the hub must queue).
    DiskFull(DiskFull),
    /// The cloud and/or hub restarted with a wall clock that many minutes off, traffic and a
    /// partition under it, then restarted with the right time.
    ClockSkew {
        cloud: Option<i64>,
        hub: Option<i64>,
        hold: Duration,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct DiskFull {
    pub cut: Cut,
    /// How long the disk stays full.
    pub hold: Duration,
    /// The hub restarted first with its write-ahead log emptied (see [`disk_full`]).
    pub empty_log: bool,
}

/// Faults injected, by kind, and what the run noticed besides the invariant.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub faults: BTreeMap<&'static str, u64>,
    pub problems: Vec<String>,
    /// Writes refused / acknowledged while the hub's disk was full.
    pub disk_refused: u64,
    pub disk_acked: u64,
    /// Writes acknowledged while the cloud was stopped.
    pub stall_acked: u64,
    /// Packets through the delayer, and dropped by it.
    pub packets: u64,
    pub packets_dropped: u64,
}

impl Tally {
    fn count(&mut self, kind: &'static str) {
        *self.faults.entry(kind).or_default() += 1;
    }

    pub fn add(&mut self, other: &Tally) {
        for (kind, n) in &other.faults {
            *self.faults.entry(kind).or_default() += n;
        }
        self.problems.extend(other.problems.iter().cloned());
        self.disk_refused += other.disk_refused;
        self.disk_acked += other.disk_acked;
        self.stall_acked += other.stall_acked;
        self.packets += other.packets;
        self.packets_dropped += other.packets_dropped;
    }

    /// Requests the reporters abandoned mid-flight (an agent killed with its request open).
    pub fn count_agent_kills(&mut self, n: u64) {
        if n > 0 {
            *self.faults.entry("kill-agent").or_default() += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.faults.values().sum()
    }
}

fn secs(rng: &mut Rng, lo_ms: u64, hi_ms: u64) -> Duration {
    Duration::from_millis(rng.between(lo_ms, hi_ms))
}

fn cut(rng: &mut Rng) -> Cut {
    [Cut::Drop, Cut::Reset, Cut::LinkDown][rng.below(3) as usize]
}

fn skew_minutes(rng: &mut Rng) -> i64 {
    let minutes = rng.between(5, 180) as i64;
    if rng.chance(500) {
        minutes
    } else {
        -minutes
    }
}

impl Episode {
    fn random(kind: u64, rng: &mut Rng) -> Episode {
        match kind {
            0 => Episode::Partition {
                cut: cut(rng),
                hold: secs(rng, 3000, 6000),
                kill_hub_after: rng.chance(400).then(|| secs(rng, 800, 2500)),
            },
            1 => Episode::Impair {
                impairment: Impairment {
                    delay: Duration::from_millis(200),
                    jitter: Duration::from_millis(50),
                    loss_per_mille: rng.between(50, 200),
                },
                hold: secs(rng, 4000, 7000),
            },
            2 => Episode::Stall {
                hold: secs(rng, 4500, 7000),
            },
            3 => Episode::KillHub {
                down: secs(rng, 200, 2000),
                cut: rng.chance(500).then(|| cut(rng)),
            },
            4 => Episode::KillCloud {
                down: secs(rng, 500, 3000),
                replay: rng.chance(500).then(|| secs(rng, 2000, 4000)),
            },
            5 => Episode::DiskFull(DiskFull {
                cut: cut(rng),
                hold: secs(rng, 2000, 4000),
                empty_log: rng.chance(700),
            }),
            _ => {
                let (cloud, hub) = match rng.below(3) {
                    0 => (Some(skew_minutes(rng)), None),
                    1 => (None, Some(skew_minutes(rng))),
                    _ => (Some(skew_minutes(rng)), Some(skew_minutes(rng))),
                };
                Episode::ClockSkew {
                    cloud,
                    hub,
                    hold: secs(rng, 4000, 6000),
                }
            }
        }
    }
}

/// One episode of each kind in a seeded order (clock skew only with libfaketime), then `extra`
/// random ones.
pub fn plan(rng: &mut Rng, extra: u32, skew: bool) -> Vec<Episode> {
    let kinds = if skew { 7 } else { 6 };
    let mut order: Vec<u64> = (0..kinds).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    order.extend((0..extra).map(|_| rng.below(kinds)));
    order
        .into_iter()
        .map(|kind| Episode::random(kind, rng))
        .collect()
}

pub async fn inject(
    episode: &Episode,
    lab: &mut Lab,
    fleet: &Fleet,
    tally: &mut Tally,
) -> Result<(), String> {
    match episode.clone() {
        Episode::Partition {
            cut,
            hold,
            kill_hub_after,
        } => partition(lab, cut, hold, kill_hub_after, tally).await,
        Episode::Impair { impairment, hold } => impair(lab, impairment, hold, tally).await,
        Episode::Stall { hold } => stall(lab, fleet, hold, tally).await,
        Episode::KillHub { down, cut } => kill_hub(lab, down, cut, tally).await,
        Episode::KillCloud { down, replay } => kill_cloud(lab, down, replay, tally).await,
        Episode::DiskFull(disk) => disk_full(lab, fleet, disk, tally).await,
        Episode::ClockSkew { cloud, hub, hold } => clock_skew(lab, cloud, hub, hold, tally).await,
    }
}

async fn partition(
    lab: &mut Lab,
    cut: Cut,
    hold: Duration,
    kill_after: Option<Duration>,
    tally: &mut Tally,
) -> Result<(), String> {
    lab.net.cut(cut)?;
    tally.count("partition");
    if let Some(after) = kill_after.filter(|after| *after < hold) {
        tokio::time::sleep(after).await;
        restart_hub(lab, Duration::from_millis(300), tally).await?;
        tokio::time::sleep(hold - after).await;
    } else {
        tokio::time::sleep(hold).await;
    }
    lab.net.mend(cut)
}

async fn impair(
    lab: &mut Lab,
    impairment: Impairment,
    hold: Duration,
    tally: &mut Tally,
) -> Result<(), String> {
    let before = lab.shaper_counts();
    lab.shaper.set(impairment);
    lab.net.impair(true, QUEUE)?;
    tally.count("delay-loss");
    tokio::time::sleep(hold).await;
    lab.net.impair(false, QUEUE)?;
    let after = lab.shaper_counts();
    tally.packets += after.0 - before.0;
    tally.packets_dropped += after.1 - before.1;
    eprintln!(
        "  delay {:?} ± {:?} to the cloud, loss {}‰ both ways: {} packets, {} dropped, {} delayed",
        impairment.delay,
        impairment.jitter,
        impairment.loss_per_mille,
        after.0 - before.0,
        after.1 - before.1,
        after.2 - before.2
    );
    Ok(())
}

/// SIGSTOP the cloud. With the hub's answer budget, reports must keep being acknowledged (from
/// its queue) while the cloud is stopped; a hub that waits for the cloud acknowledges none.
async fn stall(
    lab: &mut Lab,
    fleet: &Fleet,
    hold: Duration,
    tally: &mut Tally,
) -> Result<(), String> {
    let stopped = Instant::now();
    lab.cloud.proc().pause();
    tally.count("stall");
    tokio::time::sleep(hold).await;
    let resumed = Instant::now();
    lab.cloud.proc().resume();
    let from = stopped + Duration::from_secs(ANSWER_BUDGET_SECS) + Duration::from_millis(1500);
    let answered = fleet.answered_between(from, resumed);
    let acked = answered.iter().filter(|o| o.acked).count() as u64;
    let queued = answered.iter().filter(|o| o.queued).count();
    tally.stall_acked += acked;
    eprintln!("  cloud stopped {hold:?}: {acked} reports acknowledged after the answer budget ({queued} from the queue)");
    if acked == 0 {
        tally.problems.push(format!(
            "cloud stopped for {hold:?}: no report acknowledged between {}.5 s after the stop and \
             the resume: the hub waited for the stalled cloud instead of queueing after \
             HUB_QUEUE_ANSWER_BUDGET_SECONDS={ANSWER_BUDGET_SECS}",
            ANSWER_BUDGET_SECS + 1
        ));
    }
    Ok(())
}

async fn restart_hub(lab: &mut Lab, down: Duration, tally: &mut Tally) -> Result<(), String> {
    lab.hub.kill_9();
    tally.count("kill-hub");
    tokio::time::sleep(down).await;
    let skew = lab.hub.skew.clone();
    lab.hub.start(skew, false).await
}

async fn kill_hub(
    lab: &mut Lab,
    down: Duration,
    cut: Option<Cut>,
    tally: &mut Tally,
) -> Result<(), String> {
    if let Some(cut) = cut {
        lab.net.cut(cut)?;
        tally.count("partition");
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    restart_hub(lab, down, tally).await?;
    if let Some(cut) = cut {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        lab.net.mend(cut)?;
    }
    Ok(())
}

async fn kill_cloud(
    lab: &mut Lab,
    down: Duration,
    replay: Option<Duration>,
    tally: &mut Tally,
) -> Result<(), String> {
    if let Some(hold) = replay {
        lab.net.cut(Cut::Reset)?;
        tally.count("partition");
        tokio::time::sleep(hold).await;
        lab.net.mend(Cut::Reset)?;
        // The hub's replay starts at its next heartbeat or backoff tick.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    lab.cloud.kill_9();
    tally.count("kill-cloud");
    tokio::time::sleep(down).await;
    let skew = lab.cloud.skew.clone();
    lab.cloud.start(skew).await
}

/// Fills the hub's disk while it has to queue: it must refuse (503) what it cannot store,
/// never acknowledge and drop.
async fn disk_full(
    lab: &mut Lab,
    fleet: &Fleet,
    disk: DiskFull,
    tally: &mut Tally,
) -> Result<(), String> {
    let DiskFull {
        cut,
        hold,
        empty_log,
    } = disk;
    if empty_log {
        // As after a clean shutdown: the write-ahead log folded into hub.db and emptied, so
        // queueing needs new blocks (a log with room left would take writes on a full disk).
        lab.hub.terminate()?;
        super::procs::checkpoint(&lab.disk.path.join("hub.db"))?;
        let skew = lab.hub.skew.clone();
        lab.hub.start(skew, false).await?;
    }
    let files = lab.disk.files();
    lab.net.cut(cut)?;
    tally.count("partition");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let filled = lab.disk.fill()?;
    tally.count("disk-full");
    let full = Instant::now();
    tokio::time::sleep(hold).await;
    let freed = Instant::now();
    lab.disk.free();
    let answered = fleet.answered_between(full, freed);
    let refused = answered
        .iter()
        .filter(|o| o.failure.as_deref().is_some_and(|f| f.starts_with("503")))
        .count() as u64;
    let acked = answered.iter().filter(|o| o.acked).count() as u64;
    (tally.disk_refused, tally.disk_acked) =
        (tally.disk_refused + refused, tally.disk_acked + acked);
    eprintln!("  disk full ({} KiB filler; {files}) for {hold:?}: {refused} reports refused with 503, {acked} acknowledged", filled / 1024);
    tokio::time::sleep(Duration::from_millis(500)).await;
    lab.net.mend(cut)?;
    if lab.hub.proc.as_mut().is_none_or(|p| p.exited()) {
        tally
            .problems
            .push("the hub exited when its disk was full".into());
    }
    Ok(())
}

async fn clock_skew(
    lab: &mut Lab,
    cloud: Option<i64>,
    hub: Option<i64>,
    hold: Duration,
    tally: &mut Tally,
) -> Result<(), String> {
    if let Some(minutes) = cloud {
        let skew = lab.skew(minutes);
        lab.cloud.terminate()?;
        lab.cloud.start(skew).await?;
        let url = format!("{}/api/v1/health", lab.cloud.admin_url);
        check_skew("cloud", minutes, &url, tally).await;
    }
    if let Some(minutes) = hub {
        let skew = lab.skew(minutes);
        lab.hub.terminate()?;
        lab.hub.start(skew, false).await?;
        check_skew("hub", minutes, &format!("{}/health", lab.hub.url), tally).await;
    }
    tokio::time::sleep(hold / 2).await;
    lab.net.cut(Cut::Drop)?;
    tally.count("partition");
    tokio::time::sleep(Duration::from_secs(2)).await;
    lab.net.mend(Cut::Drop)?;
    tokio::time::sleep(hold / 2).await;
    if cloud.is_some() {
        lab.cloud.terminate()?;
        lab.cloud.start(None).await?;
    }
    if hub.is_some() {
        lab.hub.terminate()?;
        lab.hub.start(None, false).await?;
    }
    Ok(())
}

/// The skewed process really sees the skewed time (its `Date` header says so).
async fn check_skew(what: &str, minutes: i64, url: &str, tally: &mut Tally) {
    tally.count("clock-skew");
    match clock_offset_minutes(url).await {
        Ok(seen) if (seen - minutes).abs() <= 1 => {
            eprintln!("  {what} clock {minutes:+} min (its Date header agrees)")
        }
        Ok(seen) => tally.problems.push(format!(
            "{what} started {minutes:+} min off shows {seen:+} min: libfaketime did not take"
        )),
        Err(err) => tally
            .problems
            .push(format!("{what}'s clock offset unreadable: {err}")),
    }
}
