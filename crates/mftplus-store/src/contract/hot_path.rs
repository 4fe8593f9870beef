//! The fleet's hot path does not grow with the fleet (issue 17): every store call a host
//! report, its authentication, its envelope and the checker's liveness pass make sends the
//! same statements to the database with 1,000 hosts as with 100,000.
//!
//! Backends seed two databases in the shape below, set-based and straight into their tables
//! (100,000 enrolments one transaction at a time would take minutes), run [`measure`] on
//! each and hand both results to [`assert_fleet_independent`]. Statements are counted with
//! [`crate::statements::record`]: what the backend itself reports sending, `BEGIN` and
//! `COMMIT` included where it issues them.

use crate::statements::{record, Statement};
use crate::{GuestReality, LivenessRule, NewHostReport, Store};

/// Hosts per customer in the seeded fleet: one, as seed 002 has it, so `customers` is as
/// large as the fleet and a plan that read it whole would show.
pub const HOSTS_PER_CUSTOMER: usize = 1;
/// When every seeded host last reported, and the interval it was told then.
pub const REPORTED_AT_MS: i64 = 1_800_000_000_000;
pub const POLL_SECONDS: i64 = 300;
/// Reports per ingest batch: the same batch for every fleet size.
pub const BATCH: usize = 64;
const MINUTE_MS: i64 = 60_000;

/// Host `n`'s customer id: `n / HOSTS_PER_CUSTOMER`.
pub fn customer_id(customer: usize) -> String {
    format!("cus-scale-{customer:05}")
}

pub fn host_id(n: usize) -> String {
    format!("hst-scale-{n:07}")
}

/// The stored key hash of host `n` (any text: the lookup is by equality).
pub fn key_hash(n: usize) -> String {
    format!("key-scale-{n:07}")
}

/// What each hot-path call sent: (name of the call, its statements).
pub type Measurement = Vec<(&'static str, Vec<Statement>)>;

/// The `index`th report of the batch, from host `n`.
fn report(index: usize, n: usize, at_ms: i64) -> NewHostReport {
    let host_id = host_id(n);
    NewHostReport {
        report_json: format!(r#"{{"host_id":"{host_id}","agent_version":"1.0.1"}}"#),
        customer_id: customer_id(n / HOSTS_PER_CUSTOMER),
        received_at_ms: at_ms,
        agent_version: "1.0.1".into(),
        controller_version: Some("2.0.0".into()),
        applied_generation: 0,
        cpu_percent: 3.5,
        memory_used_bytes: 1 << 30,
        memory_total_bytes: 8 << 30,
        disk_used_bytes: 1 << 34,
        disk_total_bytes: 1 << 36,
        guests_total: 1,
        guests_running: 1,
        last_backups_json: "[]".into(),
        pending_signature_json: "[]".into(),
        poll_interval_seconds: POLL_SECONDS,
        guests: vec![GuestReality {
            guest_id: format!("{host_id}-web"),
            status: "running".into(),
            controller_version: None,
        }],
        // Half the batch as an edge hub's replay would send it.
        idempotency_key: index.is_multiple_of(2).then(|| format!("replay-{index}")),
        host_id,
    }
}

fn rule(now_ms: i64) -> LivenessRule {
    LivenessRule {
        now_ms,
        stale_after_ms: 30 * MINUTE_MS,
        down_after_ms: 60 * MINUTE_MS,
        grace_since_ms: 0,
        poll_interval_seconds: POLL_SECONDS,
    }
}

/// Runs each hot-path call once on a store seeded with `hosts` hosts (all reported at
/// [`REPORTED_AT_MS`], told [`POLL_SECONDS`], all `ok`), checks its answer, and returns what
/// each sent.
pub async fn measure(store: &dyn Store, hosts: usize) -> Measurement {
    assert!(hosts >= BATCH, "the batch is reports of existing hosts");
    let mut measured = Vec::new();

    let (host, sent) = record(store.get_host_by_key_hash(&key_hash(hosts / 2))).await;
    let host = host.expect("auth lookup").expect("the key resolves");
    assert_eq!(host.id, host_id(hosts / 2));
    measured.push(("auth: host key", sent));
    let (missing, sent) = record(async {
        // An unknown key: the cloud then asks whether a rotation replaced it.
        let host = store.get_host_by_key_hash("key-scale-unknown").await?;
        let rotated = store
            .get_host_key_rotation_by_previous_hash("key-scale-unknown")
            .await?;
        Ok::<_, crate::StoreError>((host, rotated))
    })
    .await;
    assert!(matches!(missing, Ok((None, None))), "{missing:?}");
    measured.push(("auth: unknown key", sent));
    let (guest, sent) = record(store.get_guest_by_key_hash("key-scale-unknown")).await;
    assert!(guest.expect("guest lookup").is_none());
    measured.push(("auth: guest key", sent));

    let batch: Vec<NewHostReport> = (0..BATCH)
        .map(|index| report(index, index * (hosts / BATCH), REPORTED_AT_MS + 1_000))
        .collect();
    let (acks, sent) = record(store.ingest_host_reports(&batch)).await;
    let acks = acks.expect("ingest");
    assert_eq!(acks.len(), BATCH);
    for ack in &acks {
        let ack = ack.as_ref().expect("every host exists");
        assert!(!ack.blocked && !ack.has_signed_ops && !ack.rotate_key);
    }
    measured.push(("ingest batch + envelope", sent));

    let (changes, sent) = record(store.liveness_pass(&rule(REPORTED_AT_MS + MINUTE_MS))).await;
    assert!(changes.expect("steady pass").is_empty());
    measured.push(("liveness: steady", sent));
    let later = REPORTED_AT_MS + 45 * MINUTE_MS;
    let (changes, sent) = record(store.liveness_pass(&rule(later))).await;
    assert_eq!(
        changes.expect("all-stale pass").len(),
        hosts,
        "every host goes stale"
    );
    measured.push(("liveness: all stale", sent));
    let (changes, sent) = record(store.liveness_pass(&rule(later))).await;
    assert!(changes.expect("repeated pass").is_empty());
    measured.push(("liveness: repeated", sent));

    let (count, sent) = record(store.count_hosts()).await;
    assert_eq!(count.expect("count_hosts"), hosts as u64);
    measured.push(("fleet size (checker)", sent));

    // The recorder itself: three lookups are three times one, so a call that looped over
    // rows would show up in the counts above.
    let (_, one) = record(store.get_host(&host_id(1))).await;
    let (_, three) = record(async {
        for n in 1..=3 {
            store.get_host(&host_id(n)).await.expect("get_host");
        }
    })
    .await;
    assert!(!one.is_empty(), "the backend reports its statements");
    assert_eq!(three.len(), 3 * one.len(), "{three:#?}");
    measured
}

/// Every call sent the same statements (by count and text) on both fleets.
pub fn assert_fleet_independent(
    small: (usize, &Measurement),
    large: (usize, &Measurement),
) -> String {
    let ((small_hosts, small), (large_hosts, large)) = (small, large);
    assert_eq!(small.len(), large.len());
    let mut table = format!(
        "{:<26} {small_hosts:>9} hosts {large_hosts:>9} hosts\n",
        "call"
    );
    for ((name, few), (other, many)) in small.iter().zip(large) {
        assert_eq!(name, other);
        assert!(!few.is_empty(), "{name}: nothing recorded");
        table.push_str(&format!(
            "{name:<26} {:>9} stmts {:>9} stmts\n",
            few.len(),
            many.len()
        ));
        assert_eq!(
            few.len(),
            many.len(),
            "{name}: {} statements with {small_hosts} hosts, {} with {large_hosts}",
            few.len(),
            many.len()
        );
        if let Some((at, (a, b))) = few
            .iter()
            .zip(many.iter())
            .enumerate()
            .find(|(_, (a, b))| a.sql != b.sql)
        {
            panic!(
                "{name}: statement {at} differs between {small_hosts} and {large_hosts} \
                 hosts:\n  {}\n  {}",
                a.sql, b.sql
            );
        }
    }
    table
}
