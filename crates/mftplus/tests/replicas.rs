//! Three cloud replicas on one PostgreSQL and one S3-compatible store, behind HAProxy
//! (`packaging/replicas/haproxy.cfg`, docs/replicas.md), while replicas are killed and
//! restarted (issue 17 item 4): an upload resumes and completes with the sender's SHA-256;
//! host reports through rolling restarts are never lost once acknowledged; the fleet checker
//! runs on one replica at a time and moves when that one dies; a revoked API key is refused by
//! every replica within the credential cache's bound; rate limits hold within the replica
//! count's factor. See replicas_support for what runs.

mod replicas_support;

use mftplus_client::testing::new_user_with_api_key;
use mftplus_client::{Client, Credential};
use replicas_support::{Cluster, REPLICAS};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct-horse-battery-staple-42";
/// The credential caches' lifetime (`auth::cache::CACHE_TTL`): another replica's revocation
/// is seen within it.
const CACHE_TTL: Duration = Duration::from_secs(5);
const HIGH_LIMITS: &str =
    "rate_limit:\n  per_credential_per_minute: 1000000\n  per_address_per_minute: 1000000\n";

/// A person as `mftctl` sees them: a HOME (resume state), a config (key pair), an API key.
struct Person {
    home: PathBuf,
    api_key: String,
    api_key_id: String,
}

impl Person {
    async fn new(cluster: &Cluster, email: &str) -> Person {
        let key = new_user_with_api_key(&cluster.admin(), email, PASSWORD, "replica test")
            .await
            .unwrap();
        let home = cluster.root.path().join(email);
        std::fs::create_dir_all(&home).unwrap();
        Person {
            home,
            api_key: key.key,
            api_key_id: key.api_key.id,
        }
    }

    fn client(&self, url: &str) -> Client {
        Client::new(url, Credential::ApiKey(self.api_key.clone())).unwrap()
    }

    fn run(&self, url: &str, args: &[&str]) -> std::process::Output {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        mftctl_at(&self.home, url, &self.api_key, &args)
    }
}

/// `mftctl ARGS` as its own process against `url`, with `home` as HOME (its resume state) and
/// `home/config.yaml` as its config (its key pair).
fn mftctl_at(home: &Path, url: &str, api_key: &str, args: &[String]) -> std::process::Output {
    let binary = Path::new(env!("CARGO_BIN_EXE_mftplus")).with_file_name("mftctl");
    assert!(binary.exists(), "{} is missing", binary.display());
    Command::new(binary)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .args(["--server", url, "--api-key", api_key, "--config"])
        .arg(home.join("config.yaml"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn random_file(path: &Path, len: usize) -> String {
    let mut state = 0x2545_F491_4F6C_DD1Du64 ^ len as u64;
    let mut data = vec![0u8; len];
    for word in data.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
    }
    std::fs::File::create(path)
        .unwrap()
        .write_all(&data)
        .unwrap();
    hex::encode(Sha256::digest(&data))
}

/// Waits until the transfer `id` has at least `chunks` chunks stored; false when the upload
/// completed first.
async fn wait_for_chunks(client: &Client, id: &str, chunks: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(Instant::now() < deadline, "no progress to {chunks} chunks");
        if let Ok(transfer) = client.get_transfer(id).await {
            if transfer.status == "complete" {
                return false;
            }
        }
        if let Ok(stored) = client.list_chunks(id).await {
            if stored.len() >= chunks {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[track_caller]
fn succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The id of the sender's first transfer, once it exists.
async fn first_transfer(client: &Client) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(t) = client.list_transfers(None).await.unwrap().first() {
            return t.id.clone();
        }
        assert!(Instant::now() < deadline, "the transfer never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The transfer is the sender's only one, complete with `chunks` chunks, intact in the
/// bucket, and what the recipient receives has the SHA-256 `sha`.
async fn assert_arrived(
    cluster: &Cluster,
    (alice, bob): (&Person, &Person),
    id: &str,
    chunks: u64,
    sha: &str,
) {
    let client = alice.client(&cluster.url);
    let mine = client.list_transfers(None).await.unwrap();
    assert_eq!(mine.len(), 1, "one transfer, not a second one: {mine:?}");
    let done = client.get_transfer(id).await.unwrap();
    assert_eq!(done.status, "complete");
    assert_eq!(done.chunk_count, Some(chunks));
    succeeded(&alice.run(&cluster.url, &["transfers", "verify", id]));
    let inbox = cluster.root.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let dir = inbox.display().to_string();
    succeeded(&bob.run(&cluster.url, &["receive", id, "--dir", &dir]));
    let copy = std::fs::read(inbox.join("payload.bin")).unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&copy)),
        sha,
        "the received file differs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_through_the_balancer_completes_while_replicas_are_killed_and_restarted() {
    let Some(mut cluster) = Cluster::start(HIGH_LIMITS).await else {
        return;
    };
    let url = cluster.url.clone();
    let alice = Person::new(&cluster, "alice@replicas.test").await;
    let bob = Person::new(&cluster, "bob@replicas.test").await;
    for who in [&alice, &bob] {
        succeeded(&who.run(&url, &["keys", "init"]));
    }
    // 1 MiB chunks: many requests, so each fault lands among them.
    const CHUNKS: usize = 48;
    let file = cluster.root.path().join("payload.bin");
    let sha = random_file(&file, CHUNKS << 20);
    let args: Vec<String> = [
        "send",
        &file.display().to_string(),
        "bob@replicas.test",
        "--chunk-size",
        "1MiB",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let sender = {
        let (url, key, home) = (url.clone(), alice.api_key.clone(), alice.home.clone());
        std::thread::spawn(move || mftctl_at(&home, &url, &key, &args))
    };
    let client = alice.client(&url);
    let id = first_transfer(&client).await;
    // kill -9 cloud2 a quarter in, bring it back at half, kill -9 cloud3 at three quarters.
    assert!(
        wait_for_chunks(&client, &id, CHUNKS / 4).await,
        "finished before the first fault"
    );
    cluster.replicas[1].kill_9();
    assert!(
        wait_for_chunks(&client, &id, CHUNKS / 2).await,
        "finished before the restart"
    );
    cluster.replicas[1].start().await;
    assert!(
        wait_for_chunks(&client, &id, CHUNKS * 3 / 4).await,
        "finished before the second fault"
    );
    cluster.replicas[2].kill_9();
    let sent = tokio::task::spawn_blocking(move || sender.join().unwrap())
        .await
        .unwrap();
    // A chunk cut off by a dying replica is sent again by mftctl itself (to a live one): the
    // user's one `send` completes.
    succeeded(&sent);
    cluster.replicas[2].start().await;
    cluster.settle().await;
    assert_arrived(&cluster, (&alice, &bob), &id, CHUNKS as u64, &sha).await;
}

/// A host reporting through the balancer like an agent with a journal: report `n` carries `n`
/// in `system.uptime_seconds` and its own `Idempotency-Key`, and is retried under that key
/// until acknowledged (an answer lost with a dying replica is asked again, never dropped).
async fn report_until_stopped(
    url: String,
    host_id: String,
    host_key: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> (Vec<u64>, u32) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let endpoint = format!("{url}{}", mftplus_types::routes::HOST_REPORT);
    let (mut acked, mut failures) = (Vec::new(), 0);
    let mut seq = 0;
    while !*stop.borrow() {
        seq += 1;
        let report = mftplus_types::fleet::HostReport {
            host_id: host_id.clone(),
            agent_version: "replica-test".into(),
            controller_version: None,
            applied_generation: 0,
            reported_at: Some(chrono::Utc::now().to_rfc3339()),
            system: mftplus_types::fleet::HostSystem {
                uptime_seconds: seq,
                ..Default::default()
            },
            guests: Vec::new(),
            storage_targets: Vec::new(),
            backup_snapshots: Vec::new(),
            tunnel: None,
            pending_signature: Vec::new(),
        };
        for _ in 0..50 {
            let sent = client
                .post(&endpoint)
                .bearer_auth(&host_key)
                .header(
                    mftplus_types::fleet::IDEMPOTENCY_KEY_HEADER,
                    format!("r-{seq}"),
                )
                .json(&report)
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                acked.push(seq);
                break;
            }
            failures += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (acked, failures)
}

/// The customer `replicas` and `n` hosts enrolled through the balancer: (host id, host key).
async fn enroll_hosts(cluster: &Cluster, n: usize) -> Vec<(String, String)> {
    cluster
        .admin()
        .create_customer(&mftplus_types::fleet::CreateCustomer {
            id: Some("replicas".into()),
            name: "Replicas".into(),
            email: "it@replicas.example.com".into(),
            domain: None,
            locale: None,
            retrieval_password: Some(PASSWORD.into()),
            config: None,
        })
        .await
        .unwrap();
    let boxes = mftplus_client::AgentClient::unenrolled(&cluster.url).unwrap();
    let mut hosts = Vec::new();
    for i in 0..n {
        let request = mftplus_types::fleet::EnrollRequest {
            customer_id: "replicas".into(),
            hostname: format!("box-{i}"),
            agent_version: "replica-test".into(),
            platform: None,
        };
        let enrolled = boxes.enroll(&request, PASSWORD).await.unwrap();
        hosts.push((enrolled.host_id, enrolled.host_key));
    }
    hosts
}

/// Every acknowledged report of the host is stored, none twice; returns how many there were.
async fn assert_all_stored(admin: &Client, host_id: &str, acked: &[u64]) -> usize {
    let stored = admin.host_reports(host_id, Some(500)).await.unwrap();
    assert!(stored.len() < 500, "more reports than one page holds");
    let mut seqs: Vec<u64> = stored
        .iter()
        .map(|r| r.report["system"]["uptime_seconds"].as_u64().unwrap())
        .collect();
    seqs.sort_unstable();
    let before = seqs.len();
    seqs.dedup();
    assert_eq!(
        before,
        seqs.len(),
        "{host_id}: a retried report was stored twice"
    );
    let lost: Vec<&u64> = acked
        .iter()
        .filter(|n| seqs.binary_search(n).is_err())
        .collect();
    assert!(
        lost.is_empty(),
        "{host_id}: acknowledged but not stored: {lost:?}"
    );
    assert!(
        acked.len() >= 20,
        "{host_id}: only {} reports acknowledged",
        acked.len()
    );
    acked.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_reports_through_rolling_restarts_are_never_lost_once_acknowledged() {
    let yaml = format!("{HIGH_LIMITS}fleet:\n  max_hosts_per_customer: 10\n");
    let Some(mut cluster) = Cluster::start(&yaml).await else {
        return;
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut reporters = Vec::new();
    for (host_id, host_key) in enroll_hosts(&cluster, 6).await {
        let url = cluster.url.clone();
        let task = tokio::spawn(report_until_stopped(
            url,
            host_id.clone(),
            host_key,
            stopped.clone(),
        ));
        reporters.push((host_id, task));
    }
    // One replica down at a time: two stopped gracefully, one killed, each back (and seen
    // healthy by the balancer) before the next goes.
    cluster.settle().await;
    for n in 0..REPLICAS {
        if n == REPLICAS - 1 {
            cluster.replicas[n].kill_9();
        } else {
            tokio::task::block_in_place(|| cluster.replicas[n].terminate());
        }
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        cluster.replicas[n].start().await;
        cluster.settle().await;
    }
    let _ = stop.send(true);
    let admin = cluster.admin();
    let (mut acknowledged, mut retried) = (0, 0);
    for (host_id, task) in reporters {
        let (acked, failures) = task.await.unwrap();
        retried += failures;
        acknowledged += assert_all_stored(&admin, &host_id, &acked).await;
    }
    eprintln!(
        "replicas: {acknowledged} reports acknowledged and stored; {retried} attempts retried"
    );
}

/// The replicas' `mftplus_fleet_checker_lease_held` and `mftplus_fleet_checker_passes_total`
/// (`None` for a stopped replica).
async fn checker_view(cluster: &Cluster) -> Vec<Option<(f64, f64)>> {
    let mut view = Vec::new();
    for replica in &cluster.replicas {
        let held = replica.metric("mftplus_fleet_checker_lease_held").await;
        let passes = replica.metric("mftplus_fleet_checker_passes_total").await;
        view.push(held.zip(passes).filter(|_| replica.running()));
    }
    view
}

/// The one replica holding the checker's lease, once exactly one does.
async fn lease_holder(cluster: &Cluster, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let view = checker_view(cluster).await;
        let holders: Vec<usize> = (0..view.len())
            .filter(|&n| view[n].is_some_and(|(held, _)| held == 1.0))
            .collect();
        if let [one] = holders[..] {
            return one;
        }
        assert!(
            Instant::now() < deadline,
            "no single lease holder within {within:?}: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Over `window`, only `holder` runs checker passes, at about one per second.
async fn only_one_runs(cluster: &Cluster, holder: usize, window: Duration) {
    let before = checker_view(cluster).await;
    tokio::time::sleep(window).await;
    let after = checker_view(cluster).await;
    for n in 0..REPLICAS {
        let (Some((_, was)), Some((_, now))) = (before[n], after[n]) else {
            continue;
        };
        let ran = now - was;
        if n == holder {
            assert!(
                ran >= window.as_secs_f64() / 2.0,
                "the holder ran {ran} passes in {window:?}"
            );
            assert!(
                ran <= window.as_secs_f64() + 2.0,
                "the holder ran {ran} passes in {window:?}"
            );
        } else {
            assert_eq!(
                ran,
                0.0,
                "cloud{} ran {ran} passes without the lease",
                n + 1
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_checker_runs_on_one_replica_and_moves_when_it_dies() {
    let yaml = format!("{HIGH_LIMITS}fleet:\n  check_interval_seconds: 1\n");
    let Some(mut cluster) = Cluster::start(&yaml).await else {
        return;
    };
    let holder = lease_holder(&cluster, Duration::from_secs(15)).await;
    only_one_runs(&cluster, holder, Duration::from_secs(5)).await;
    // The lease lasts max(3 intervals, 10 s): another replica takes over within that and one
    // interval more.
    cluster.replicas[holder].kill_9();
    let killed = Instant::now();
    let next = lease_holder(&cluster, Duration::from_secs(20)).await;
    assert_ne!(next, holder);
    eprintln!(
        "replicas: the checker moved from cloud{} to cloud{} {:?} after kill -9",
        holder + 1,
        next + 1,
        killed.elapsed()
    );
    // The old holder comes back and does not take the lease from the live one.
    cluster.replicas[holder].start().await;
    only_one_runs(&cluster, next, Duration::from_secs(5)).await;
    assert_eq!(lease_holder(&cluster, Duration::from_secs(1)).await, next);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_api_key_is_refused_by_every_replica_within_the_cache_bound() {
    let Some(cluster) = Cluster::start(HIGH_LIMITS).await else {
        return;
    };
    let carol = Person::new(&cluster, "carol@replicas.test").await;
    let whoami = |base: &str| {
        let url = format!("{base}{}", mftplus_types::routes::AUTH_WHOAMI);
        let key = carol.api_key.clone();
        async move {
            reqwest::Client::new()
                .get(url)
                .header("x-api-key", key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Every replica has the key in its cache.
    for replica in &cluster.replicas {
        assert_eq!(
            whoami(&replica.url).await,
            200,
            "{} refused a valid key",
            replica.name
        );
    }
    carol
        .client(&cluster.replicas[0].url)
        .delete_api_key(&carol.api_key_id)
        .await
        .unwrap();
    let revoked = Instant::now();
    assert_eq!(
        whoami(&cluster.replicas[0].url).await,
        401,
        "the revoking replica still accepts"
    );
    for replica in &cluster.replicas[1..] {
        loop {
            // Judged by when the request left, not when its answer came: a slow answer on a
            // busy machine is not a late refusal. The key was cached before it was revoked,
            // so its entry is gone by `revoked + CACHE_TTL`; a quarter second covers timers.
            let sent = revoked.elapsed();
            match whoami(&replica.url).await {
                401 => break,
                200 => assert!(
                    sent < CACHE_TTL + Duration::from_millis(250),
                    "{} still accepts a key revoked {sent:?} before the request",
                    replica.name,
                ),
                other => panic!("{} answered {other}", replica.name),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "replicas: {} refuses the key {:?} after it was revoked",
            replica.name,
            revoked.elapsed()
        );
    }
    assert_eq!(
        whoami(&cluster.url).await,
        401,
        "the balancer's replicas still accept"
    );
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sends `request` until 20 of them were refused with 429 (or `most` were sent), and answers
/// how many passed and in how many of the limiter's one-minute windows (decision 0007: fixed
/// windows on the clock's minutes) the requests fell.
async fn until_limited(
    most: u32,
    request: impl Fn(u32) -> reqwest::RequestBuilder,
) -> (u32, u32, u64) {
    let first = unix_secs() / 60;
    let (mut passed, mut limited) = (0, 0);
    for i in 0..most {
        match request(i).send().await.unwrap().status().as_u16() {
            200 => passed += 1,
            429 => limited += 1,
            // A replica whose own health checks were limited too is taken out by the balancer.
            503 => {}
            other => panic!("answered {other}"),
        }
        if limited >= 20 {
            break;
        }
    }
    (passed, limited, unix_secs() / 60 - first + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_hold_across_replicas_within_the_replica_factor() {
    const PER_KEY: u32 = 20;
    const PER_ADDRESS: u32 = 150;
    let yaml = format!(
        "rate_limit:\n  per_credential_per_minute: {PER_KEY}\n  \
         per_address_per_minute: {PER_ADDRESS}\n"
    );
    let Some(cluster) = Cluster::start(&yaml).await else {
        return;
    };
    let dave = Person::new(&cluster, "dave@replicas.test").await;
    let http = reqwest::Client::new();
    let n = REPLICAS as u32;
    // Each replica counts on its own (decision 0007): up to N times the configured limit in
    // each window the requests fell in, never less than the limit itself.
    let whoami = format!("{}{}", cluster.url, mftplus_types::routes::AUTH_WHOAMI);
    let (granted, refused, windows) = until_limited(1_000, |_| {
        http.get(&whoami).header("x-api-key", &dave.api_key)
    })
    .await;
    assert!(refused > 0, "one key was never limited");
    assert!(
        granted >= PER_KEY && u64::from(granted) <= u64::from(n * PER_KEY) * windows,
        "{granted} requests with one key granted in {windows} window(s); the limit is {PER_KEY} per replica"
    );
    // A client cannot pick its address: HAProxy appends the one it saw to X-Forwarded-For and
    // the replicas believe only the last entry, so forged ones all count as 127.0.0.1.
    let health = format!("{}{}", cluster.url, mftplus_types::routes::API_HEALTH);
    let (passed, limited, windows) = until_limited(5_000, |i| {
        let forged = format!("10.7.{}.{}", i / 250, i % 250 + 1);
        http.get(&health).header("x-forwarded-for", forged)
    })
    .await;
    assert!(
        limited > 0,
        "forged X-Forwarded-For addresses escaped the per-address limit"
    );
    assert!(
        u64::from(passed) <= u64::from(n * PER_ADDRESS) * windows,
        "{passed} requests from one address passed in {windows} window(s); the limit is {PER_ADDRESS} per replica"
    );
    eprintln!("replicas: one key {granted} granted; one address {passed} passed, then limited");
}
