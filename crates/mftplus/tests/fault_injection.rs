//! Fault injection, end to end with real processes (docs/fault-injection.md): the cloud and an
//! edge hub as `mftplus` processes in network namespaces built here, a dozen reporters sending
//! host reports through the hub, and seeded faults: partitions (dropped, reset, link down),
//! delay and loss, a stalled cloud (SIGSTOP), kill -9 of the hub, of the cloud and of agents
//! mid-request, the hub's disk full, and skewed clocks. Every run ends with the invariant:
//! each acknowledged report stored exactly once and in order per reporter, nothing stored
//! twice.
//!
//! Needs root, `ip` and `iptables`; skipped (loudly) without them unless
//! `MFTPLUS_TEST_REQUIRE_NETNS=1`. `MFTPLUS_FAULT_SEED=<n>` replays a run; the long run is
//! `scripts/fault-injection.sh`.

mod fault_support;

use fault_support::check::{self, Verdict};
use fault_support::faults::{self, Tally};
use fault_support::lab::{self, Lab};
use fault_support::{prerequisites, Rng, Settings, Tools};
use std::time::{Duration, Instant};

/// Prints the seed again if the test panics, wherever it does.
struct SeedOnPanic(u64);

impl Drop for SeedOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "fault injection FAILED: replay with MFTPLUS_FAULT_SEED={}",
                self.0
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_reports_are_stored_once_in_order_under_faults() {
    let settings = Settings::from_env();
    let tools = match prerequisites() {
        Ok(tools) => tools,
        Err(why) if settings.required => {
            panic!("fault injection cannot run ({why}) and MFTPLUS_TEST_REQUIRE_NETNS=1")
        }
        Err(why) => {
            eprintln!("SKIPPED fault injection: {why} (MFTPLUS_TEST_REQUIRE_NETNS=1 makes this a failure)");
            return;
        }
    };
    if tools.faketime.is_none() {
        assert!(
            !settings.required,
            "libfaketime is missing (Debian package faketime; scripts/install-test-deps.sh)"
        );
        eprintln!("fault injection: libfaketime not found, the clock-skew fault is left out");
    }
    eprintln!(
        "MFTPLUS_FAULT_SEED={} (runs {}, extra episodes {}, reporters {})",
        settings.seed, settings.runs, settings.extra_episodes, settings.reporters
    );
    let started = Instant::now();
    let (mut tally, mut verdict) = (Tally::default(), Verdict::default());
    for run in 0..settings.runs {
        let seed = settings.run_seed(run);
        let _guard = SeedOnPanic(seed);
        eprintln!(
            "run {}/{}: MFTPLUS_FAULT_SEED={seed}",
            run + 1,
            settings.runs
        );
        // Bounded: every wait inside is bounded too; this catches what slips through.
        let run_started = Instant::now();
        let limit = Duration::from_secs(150 + 30 * u64::from(settings.extra_episodes));
        let (t, v) = tokio::time::timeout(limit, run_once(&settings, &tools, seed))
            .await
            .unwrap_or_else(|_| panic!("run {} did not finish within {limit:?}", run + 1));
        eprintln!(
            "run {}: {}",
            run + 1,
            summary(1, &t, &v, run_started.elapsed())
        );
        tally.add(&t);
        verdict.add(&v);
    }
    eprintln!(
        "fault injection: {}",
        summary(settings.runs, &tally, &verdict, started.elapsed())
    );
}

/// One run on a fresh lab; panics, with the seed, the problems and the logs, when it fails.
async fn run_once(settings: &Settings, tools: &Tools, seed: u64) -> (Tally, Verdict) {
    let mut rng = Rng::new(seed);
    let mut lab = Lab::build(settings.reporters, tools, &mut rng.fork())
        .await
        .unwrap_or_else(|e| panic!("the lab could not be built: {e}"));
    let fleet = lab::warm_up(&lab, &mut rng.fork())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = faults::plan(&mut rng, settings.extra_episodes, tools.faketime.is_some());
    let mut tally = Tally::default();
    for (i, episode) in plan.iter().enumerate() {
        let at = chrono::Utc::now().format("%H:%M:%S%.3f");
        eprintln!("  {at} episode {}/{}: {episode:?}", i + 1, plan.len());
        if let Err(err) = faults::inject(episode, &mut lab, &fleet, &mut tally).await {
            panic!("injecting {episode:?} failed: {err}\n{}", lab.logs());
        }
        lab.settle(Duration::from_secs(30), &mut tally)
            .await
            .unwrap_or_else(|e| panic!("after {episode:?}: {e}"));
        tokio::time::sleep(Duration::from_millis(rng.between(500, 1500))).await;
    }
    let ledger = fleet.stop().await;
    tally.count_agent_kills(ledger.abandoned);
    lab.finish(&ledger, Duration::from_secs(60), &mut tally)
        .await;
    let stored = check::stored_reports(&lab.cloud.db_path()).unwrap_or_else(|e| panic!("{e}"));
    let verdict = check::verify(&ledger, &lab.reporters, &stored);
    let refusals: Vec<String> = ledger
        .refusals()
        .iter()
        .map(|(why, n)| format!("{why}: {n}"))
        .collect();
    eprintln!(
        "  unacknowledged reports by last answer: {}",
        refusals.join(", ")
    );
    let mut problems = verdict.problems.clone();
    problems.extend(tally.problems.iter().cloned());
    problems.extend(
        ledger
            .unexpected
            .iter()
            .take(20)
            .map(|u| format!("unexpected answer: {u}")),
    );
    if !problems.is_empty() || !verdict.holds() {
        panic!(
            "MFTPLUS_FAULT_SEED={seed}: {}\n{}\n{}",
            summary(1, &tally, &verdict, Duration::ZERO),
            problems.join("\n"),
            lab.logs()
        );
    }
    (tally, verdict)
}

fn summary(runs: u32, tally: &Tally, v: &Verdict, elapsed: Duration) -> String {
    let kinds: Vec<String> = tally
        .faults
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    format!(
        "runs {runs}, {:.0} s; faults injected {} ({}); reports sent {}, acknowledged {} ({} from \
         the hub's queue), stored {}, lost {}, duplicates {}, out of order {}, never sent {}; \
         unacknowledged {} (stored anyway {}); disk full: {} refused, {} acknowledged; \
         acknowledged while the cloud was stopped {}; delayer: {} packets, {} dropped",
        elapsed.as_secs_f64(),
        tally.total(),
        kinds.join(", "),
        v.sent,
        v.acked,
        v.acked_queued,
        v.stored,
        v.lost,
        v.duplicates,
        v.out_of_order,
        v.phantoms,
        v.unacked,
        v.unacked_stored,
        tally.disk_refused,
        tally.disk_acked,
        tally.stall_acked,
        tally.packets,
        tally.packets_dropped
    )
}
