//! Fleet seeding straight through the `Store`, the way the cloud's enrollment writes rows.
//!
//! Deliberately not over HTTP: enrollment verifies the customer's retrieval password with
//! Argon2id (about 20 MiB and tens of milliseconds each), so 10,000 enrollments would measure
//! Argon2 and take minutes. The rows written here are the ones `POST /enroll` and
//! `POST /hosts/{id}/guests` write: a hashed host key per host and hashed guest keys.

use crate::BenchError;
use mftplus_store::{NewCustomer, NewGuest, NewHost, Store};
use mftplus_types::fleet::{DesiredState, GUEST_KEY_PREFIX, HOST_KEY_PREFIX};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Guest names of every seeded host; `report::full` reports guests with the same ids.
pub const GUEST_NAMES: [&str; 3] = ["web", "db", "files"];

/// A seeded host and its plaintext key (the only place the key exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededHost {
    pub host_id: String,
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedSummary {
    pub hosts: usize,
    pub guests: usize,
    pub seconds: f64,
    /// Single-row transactions (one per host and one per guest) per second.
    pub writes_per_second: f64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// One customer allowed `max_hosts` hosts; the retrieval password is hashed once (nobody will
/// use it).
pub async fn create_customer(store: &dyn Store, max_hosts: usize) -> Result<String, BenchError> {
    let id = format!(
        "c-bench-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let password = mftplus_crypto::secrets::random_base62(24);
    let hash = mftplus_crypto::password::hash_password(&password)
        .map_err(|err| BenchError::Invalid(err.to_string()))?;
    store
        .create_customer(&NewCustomer {
            id: id.clone(),
            name: format!("Benchmark customer ({max_hosts} hosts)"),
            email: "bench@example.com".into(),
            domain: None,
            locale: "en".into(),
            retrieval_password_hash: hash,
            config_json: "{}".into(),
            created_at_ms: now_ms(),
        })
        .await?;
    Ok(id)
}

/// Creates `count` hosts of `customer_id` (numbered from `first`), each with `guests` guest
/// rows, using `concurrency` writers at once. Returns the hosts in number order.
pub async fn create_hosts(
    store: Arc<dyn Store>,
    customer_id: &str,
    first: usize,
    count: usize,
    guests: usize,
    max_hosts: u32,
    concurrency: usize,
) -> Result<Vec<SeededHost>, BenchError> {
    let concurrency = concurrency.clamp(1, count.max(1));
    let desired = serde_json::to_string(&DesiredState::default())?;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let store = store.clone();
        let customer_id = customer_id.to_owned();
        let desired = desired.clone();
        workers.spawn(async move {
            let mut made = Vec::new();
            for number in (first + worker..first + count).step_by(concurrency) {
                let host =
                    create_one(&*store, &customer_id, number, guests, max_hosts, &desired).await?;
                made.push((number, host));
            }
            Ok::<_, BenchError>(made)
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(joined) = workers.join_next().await {
        all.extend(joined.map_err(|err| BenchError::Invalid(err.to_string()))??);
    }
    all.sort_by_key(|(number, _)| *number);
    Ok(all.into_iter().map(|(_, host)| host).collect())
}

async fn create_one(
    store: &dyn Store,
    customer_id: &str,
    number: usize,
    guests: usize,
    max_hosts: u32,
    desired: &str,
) -> Result<SeededHost, BenchError> {
    let host_id = format!("h-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let key = mftplus_cloud::auth::reporter::generate_key(HOST_KEY_PREFIX);
    let now = now_ms();
    store
        .create_host(
            &NewHost {
                id: host_id.clone(),
                customer_id: customer_id.into(),
                key_hash: mftplus_crypto::hash_api_key(&key),
                hostname: format!("bench-{number:06}"),
                platform: Some("linux-x86_64".into()),
                agent_version: "1.4.2".into(),
                desired_json: desired.into(),
                enrolled_at_ms: now,
            },
            max_hosts,
        )
        .await?;
    for name in GUEST_NAMES.iter().cycle().take(guests) {
        let guest_key = mftplus_cloud::auth::reporter::generate_key(GUEST_KEY_PREFIX);
        store
            .create_guest(&NewGuest {
                id: format!("{host_id}-{name}"),
                customer_id: customer_id.into(),
                host_id: host_id.clone(),
                key_hash: mftplus_crypto::hash_api_key(&guest_key),
                display_name: (*name).into(),
                created_at_ms: now,
            })
            .await?;
    }
    Ok(SeededHost { host_id, key })
}

/// Writes `host_id key` lines, owner-only: the file holds live credentials.
pub fn write_keys(path: &Path, hosts: &[SeededHost]) -> Result<(), BenchError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    let mut text = String::with_capacity(hosts.len() * 64);
    for host in hosts {
        text.push_str(&host.host_id);
        text.push(' ');
        text.push_str(&host.key);
        text.push('\n');
    }
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// Reads what [`write_keys`] wrote.
pub fn read_keys(path: &Path) -> Result<Vec<SeededHost>, BenchError> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| match line.split_once(' ') {
            Some((host_id, key)) if !host_id.is_empty() && !key.trim().is_empty() => {
                Ok(SeededHost {
                    host_id: host_id.into(),
                    key: key.trim().into(),
                })
            }
            _ => Err(BenchError::Invalid(format!(
                "{}: expected `host_id key` lines",
                path.display()
            ))),
        })
        .collect()
}

/// `mftplus-bench seed`: one customer with `hosts` hosts (and `guests` guests each), one
/// transaction per row like real enrollments, keys written to `out`.
pub async fn run(
    database_url: &str,
    hosts: usize,
    guests: usize,
    concurrency: usize,
    out: &Path,
) -> Result<SeedSummary, BenchError> {
    let store = mftplus_cloud::db::open(database_url).await?;
    let customer_id = create_customer(&*store, hosts).await?;
    let max_hosts = u32::try_from(hosts).unwrap_or(u32::MAX);
    let started = Instant::now();
    let seeded = create_hosts(
        store,
        &customer_id,
        0,
        hosts,
        guests,
        max_hosts,
        concurrency,
    )
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    write_keys(out, &seeded)?;
    let writes = hosts + hosts * guests;
    Ok(SeedSummary {
        hosts,
        guests: hosts * guests,
        seconds,
        writes_per_second: writes as f64 / seconds.max(1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn seeds_hosts_whose_keys_resolve_and_writes_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let out = dir.path().join("keys.txt");
        let summary = run(&url, 5, 2, 2, &out).await.unwrap();
        assert_eq!((summary.hosts, summary.guests), (5, 10));

        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let keys = read_keys(&out).unwrap();
        assert_eq!(keys.len(), 5);
        let store = mftplus_cloud::db::open(&url).await.unwrap();
        for host in &keys {
            assert!(host.key.starts_with(HOST_KEY_PREFIX));
            let row = store
                .get_host_by_key_hash(&mftplus_crypto::hash_api_key(&host.key))
                .await
                .unwrap()
                .expect("the key resolves to its host");
            assert_eq!(row.id, host.host_id);
            let guests = store.list_guests(Some(&host.host_id), None).await.unwrap();
            assert_eq!(guests.len(), 2);
        }
    }

    #[test]
    fn a_malformed_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.txt");
        std::fs::write(&path, "h-1 mfth_abc\njust-one-field\n").unwrap();
        assert!(matches!(read_keys(&path), Err(BenchError::Invalid(_))));
    }
}
