//! `/health`, `/hub/diagnose` and phone-home against the stand-in cloud: the seed's shapes,
//! log lines and issue strings, backoff while the cloud is down, and revocation.

mod common;

use common::*;
use mftplus_hub::testing::StandInCloud;
use mftplus_hub::Timings;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

// Mirrors of the seed's JSON: an extra or renamed field on our side fails to parse.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Health {
    status: String,
    version: String,
    uptime: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Diagnosis {
    timestamp: String,
    hostname: String,
    platform: String,
    uptime_hours: f64,
    config: Config,
    connectivity: Connectivity,
    disk: Disk,
    dns: Vec<Dns>,
    phone_home: PhoneHome,
    healthy: bool,
    issues: Vec<String>,
    /// Ours, not the seed's: the offline queue's depths (`null` without `hub.db`).
    offline: Option<OfflineDepths>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OfflineDepths {
    queued: u64,
    dead_letter: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Config {
    hub_version: String,
    port: u16,
    node_env: String,
    cloud_api_configured: bool,
    registration_key_configured: bool,
    license_key_configured: bool,
    phone_home_interval_hours: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Connectivity {
    cloud_api_reachable: bool,
    cloud_api_url: Option<String>,
    latency_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Disk {
    path: String,
    total_gb: f64,
    free_gb: f64,
    used_gb: f64,
    used_percent: f64,
    healthy: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Dns {
    hostname: String,
    resolved: Vec<String>,
    healthy: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PhoneHome {
    registered: bool,
    hub_id: Option<String>,
    last_registered: Option<String>,
    last_validated: Option<String>,
    validation_error: Option<String>,
}

/// Every key path in a JSON document (`a.b`, arrays as `a[]`).
fn key_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(path.clone());
                key_paths(v, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                key_paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn keys_of(value: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    key_paths(value, "", &mut out);
    out
}

fn seed(name: &str) -> Value {
    let path = format!("{}/tests/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Issues other than a small disk on the test machine, which the test cannot control.
fn issues_besides_disk(issues: &[String]) -> Vec<String> {
    issues
        .iter()
        .filter(|i| !i.starts_with("Low disk space"))
        .cloned()
        .collect()
}

fn is_seed_timestamp(text: &str) -> bool {
    // 2026-05-31T12:00:00.000Z
    text.len() == 24
        && text.ends_with('Z')
        && text.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

#[tokio::test]
async fn health_and_diagnose_have_the_seed_shapes() {
    let cloud = StandInCloud::start(&[KEY]).await;
    let hub = TestHub::start(cloud_config(&cloud.base_url()), fast_timings()).await;
    hub.wait_registered().await;
    let state = cloud.state.clone();
    wait_until(
        "a heartbeat and a re-validation",
        Duration::from_secs(10),
        || {
            state.heartbeats.load(Ordering::SeqCst) > 0
                && state.validations.load(Ordering::SeqCst) > 0
        },
    )
    .await;

    let answer = get(&hub.url("/health")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(keys_of(&answer.json()), keys_of(&seed("health_seed.json")));
    let health: Health = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        (health.status.as_str(), health.version.as_str()),
        ("healthy", "0.1.0")
    );
    assert!(health.uptime > 0.0 && health.uptime < 60.0);

    let answer = get(&hub.url("/hub/diagnose")).await;
    assert_eq!(answer.status, 200);
    let mut ours = keys_of(&answer.json());
    // The one addition to the seed's shape, at the top level; every seed field is unchanged.
    assert!(ours.remove("offline"), "the offline depths are reported");
    ours.retain(|k| !k.starts_with("offline."));
    assert_eq!(
        ours,
        keys_of(&seed("diagnose_seed.json")),
        "key sets differ"
    );
    let d: Diagnosis = serde_json::from_slice(&answer.body).unwrap();
    assert!(is_seed_timestamp(&d.timestamp), "{}", d.timestamp);
    assert!(!d.hostname.is_empty());
    assert_eq!(d.platform, "linux");
    assert!(d.uptime_hours >= 0.0 && d.uptime_hours < 0.1);
    assert_eq!(d.config.hub_version, "0.1.0");
    assert_eq!(
        d.config.port, 3002,
        "the configured port, as the seed reports it"
    );
    assert_eq!(d.config.node_env, "production");
    assert!(d.config.cloud_api_configured && d.config.registration_key_configured);
    assert!(!d.config.license_key_configured);
    assert_eq!(d.config.phone_home_interval_hours, 24);
    assert!(d.connectivity.cloud_api_reachable);
    assert_eq!(
        d.connectivity.cloud_api_url.as_deref(),
        Some(cloud.base_url().as_str())
    );
    assert!(d.connectivity.latency_ms.is_some());
    assert_eq!(d.disk.path, "/");
    assert!(d.disk.total_gb > 0.0 && d.disk.free_gb >= 0.0 && d.disk.used_gb >= 0.0);
    assert!((0.0..=100.0).contains(&d.disk.used_percent));
    // Only the cloud's host is resolved (no outside lookups); here it is an IP literal.
    assert_eq!(d.dns.len(), 1);
    assert_eq!(d.dns[0].hostname, "127.0.0.1");
    assert_eq!(d.dns[0].resolved, vec!["127.0.0.1"]);
    // No HUB_DATA_DIR here, so usually no hub.db; where one opens, it is empty.
    if let Some(offline) = &d.offline {
        assert_eq!((offline.queued, offline.dead_letter), (0, 0));
    }
    assert!(d.dns[0].healthy);
    assert!(d.phone_home.registered);
    let hub_id = d.phone_home.hub_id.unwrap();
    assert!(hub_id.starts_with("hub_") && hub_id.len() == 20, "{hub_id}");
    assert!(is_seed_timestamp(&d.phone_home.last_registered.unwrap()));
    assert!(is_seed_timestamp(&d.phone_home.last_validated.unwrap()));
    assert_eq!(d.phone_home.validation_error, None);
    assert_eq!(issues_besides_disk(&d.issues), Vec::<String>::new());
    assert_eq!(d.healthy, d.issues.is_empty());
    assert_eq!(d.disk.healthy, issues_besides_disk(&d.issues) == d.issues);

    // The protocol's register and heartbeat bodies.
    let register = cloud.state.last_register.lock().unwrap().clone().unwrap();
    assert_eq!(register["protocol"], 1);
    assert_eq!(register["hub_version"], "0.1.0");
    assert_eq!(register["hostname"], d.hostname.as_str());
    assert_eq!(register["platform"], "linux");
    assert_eq!(register["license_key"], Value::Null);
    let heartbeat = cloud.state.last_heartbeat.lock().unwrap().clone().unwrap();
    assert_eq!(heartbeat["hub_version"], "0.1.0");
    assert!(heartbeat["uptime_seconds"].is_u64());
    assert!(heartbeat["healthy"].is_boolean() && heartbeat["issues"].is_array());
    hub.stop().await;
    cloud.stop().await;
}

#[tokio::test]
async fn startup_lines_match_the_seed() {
    let cloud = StandInCloud::start(&[KEY]).await;
    let config = cloud_config(&cloud.base_url());
    let timings = Timings::from_config(&config);
    let hub = TestHub::start(config, timings).await;
    let lines = hub.lines.clone();
    wait_until("the re-validation line", Duration::from_secs(10), || {
        lines.lock().unwrap().len() >= 6
    })
    .await;
    let lines = hub.lines();
    let hub_id = hub.state.phone_home().hub_id.unwrap();
    assert_eq!(
        lines,
        vec![
            format!(
                "[Hub] Server running on port {} (production)",
                hub.addr.port()
            ),
            "[Hub] Version: 0.1.0".to_string(),
            format!("[Hub] Cloud API: {}", cloud.base_url()),
            "[PhoneHome] Registering with cloud...".to_string(),
            format!("[PhoneHome] Registered successfully — hubId: {hub_id}"),
            "[PhoneHome] Periodic re-validation every 24h".to_string(),
        ]
    );
    hub.stop().await;
    cloud.stop().await;
}

#[tokio::test]
async fn missing_configuration_still_serves_health_and_diagnose() {
    let hub = TestHub::start(config(&[]), fast_timings()).await;
    let answer = get(&hub.url("/health")).await;
    assert_eq!(answer.status, 503);
    let health: Health = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(health.status, "unhealthy");

    let d: Diagnosis = serde_json::from_slice(&get(&hub.url("/hub/diagnose")).await.body).unwrap();
    assert_eq!(
        issues_besides_disk(&d.issues),
        vec![
            "Cloud API URL is not configured",
            "Registration key is not configured"
        ]
    );
    assert!(!d.healthy);
    assert_eq!(d.config.node_env, "development");
    assert!(!d.connectivity.cloud_api_reachable);
    assert_eq!(d.connectivity.cloud_api_url, None);
    assert!(d.dns.is_empty());
    assert!(!d.phone_home.registered);

    let answer = get(&hub.url("/api/v1/anything")).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["error"]["code"], "hub_not_registered");

    let lines = hub.lines();
    assert!(
        lines.contains(&"[Hub] Cloud API: (not configured)".to_string()),
        "{lines:?}"
    );
    assert!(lines
        .contains(&"[PhoneHome] Not registering: Registration key is not configured".to_string()));
    assert!(lines[0].ends_with("(development)"), "{lines:?}");
    hub.stop().await;
}

fn retry_delays(lines: &[String]) -> Vec<f64> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("[PhoneHome] Registration failed: "))
        .filter_map(|l| l.rsplit_once("retrying in "))
        .filter_map(|(_, d)| d.trim_end_matches('s').parse().ok())
        .collect()
}

#[tokio::test]
async fn registration_backs_off_until_the_cloud_comes_up() {
    // An address nothing listens on yet: connections are refused until the cloud starts there.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let hub = TestHub::start(cloud_config(&format!("http://{addr}/api")), fast_timings()).await;
    let lines = hub.lines.clone();
    wait_until("four failed attempts", Duration::from_secs(10), || {
        retry_delays(&lines.lock().unwrap()).len() >= 4
    })
    .await;
    let delays = retry_delays(&hub.lines());
    // 50 ms doubling, ±20 % jitter, capped at 400 ms.
    assert!(delays[0] >= 0.03 && delays[0] <= 0.07, "{delays:?}");
    assert!(delays[1] > delays[0] && delays[2] > delays[1], "{delays:?}");
    assert!(delays.iter().all(|d| *d <= 0.4 + 1e-9), "{delays:?}");

    // Pending registration: diagnose says why, /health stays healthy (a restart would not help).
    let d: Diagnosis = serde_json::from_slice(&get(&hub.url("/hub/diagnose")).await.body).unwrap();
    let issues = issues_besides_disk(&d.issues);
    assert!(
        issues.contains(&"Cloud API unreachable".to_string()),
        "{issues:?}"
    );
    assert!(issues.contains(&"Hub is not registered with the cloud yet".to_string()));
    assert!(d.phone_home.validation_error.is_some());
    assert_eq!(get(&hub.url("/health")).await.status, 200);

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let cloud = StandInCloud::start_on(listener, &[KEY]).await;
    hub.wait_registered().await;
    assert!(hub
        .lines()
        .iter()
        .any(|l| l.starts_with("[PhoneHome] Registered successfully — hubId: hub_")));
    let d: Diagnosis = serde_json::from_slice(&get(&hub.url("/hub/diagnose")).await.body).unwrap();
    assert_eq!(issues_besides_disk(&d.issues), Vec::<String>::new());
    assert_eq!(d.phone_home.validation_error, None);
    hub.stop().await;
    cloud.stop().await;
}

#[tokio::test]
async fn a_revoked_key_stops_the_proxy_and_shows_in_diagnose() {
    let cloud = StandInCloud::start(&[KEY]).await;
    let hub = TestHub::start(cloud_config(&cloud.base_url()), fast_timings()).await;
    hub.wait_registered().await;
    assert_eq!(get(&hub.url("/api/v1/echo/x")).await.status, 200);

    cloud.revoke(KEY);
    let state = hub.state.clone();
    wait_until("the refusal", Duration::from_secs(10), || {
        state.phone_home().refused.is_some()
    })
    .await;
    let answer = get(&hub.url("/health")).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["status"], "unhealthy");
    let answer = get(&hub.url("/api/v1/echo/x")).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["error"]["code"], "hub_not_registered");
    assert!(answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Registration key was revoked"));
    let d: Diagnosis = serde_json::from_slice(&get(&hub.url("/hub/diagnose")).await.body).unwrap();
    assert_eq!(
        issues_besides_disk(&d.issues),
        vec!["Registration key was revoked"]
    );
    assert!(!d.healthy && !d.phone_home.registered);
    assert!(d
        .phone_home
        .validation_error
        .unwrap()
        .contains("token_revoked"));
    assert!(hub
        .lines()
        .contains(&"[PhoneHome] Registration key was revoked".to_string()));
    hub.stop().await;
    cloud.stop().await;
}

#[tokio::test]
async fn an_unknown_key_is_refused() {
    let cloud = StandInCloud::start(&["mft_dep_someoneelse"]).await;
    let hub = TestHub::start(cloud_config(&cloud.base_url()), fast_timings()).await;
    let state = hub.state.clone();
    wait_until("the refusal", Duration::from_secs(10), || {
        state.phone_home().refused.is_some()
    })
    .await;
    let d: Diagnosis = serde_json::from_slice(&get(&hub.url("/hub/diagnose")).await.body).unwrap();
    assert_eq!(
        issues_besides_disk(&d.issues),
        vec!["Registration key was refused by the cloud"]
    );
    let answer = get(&hub.url("/api/v1/echo/x")).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["error"]["code"], "hub_not_registered");
    hub.stop().await;
    cloud.stop().await;
}
