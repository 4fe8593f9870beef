//! Upgrades from earlier releases (`docs/upgrading.md`): every `testdata/upgrade/<release>/`
//! holds a `hub.db` a real hub of that release wrote (a row in the offline queue, one in the
//! dead letter, an auth-cache entry and an envelope, all sealed under the deploy key named in
//! its `manifest.json`). Today's hub must bring a copy forward to its schema, open every sealed
//! value, and then, running on it, replay the old queued write to the cloud; a `hub.db` from a
//! newer hub must be refused untouched.
//!
//! `make_fixture` (ignored) is the writer `scripts/make-upgrade-fixtures.sh` runs at a release.

mod common;

use common::*;
use mftplus_hub::auth_cache::{
    open_db, schema_version, token_hash, AuthCache, OfflineError, SCHEMA_VERSION,
};
use mftplus_hub::offline::Offline;
use mftplus_hub::queue;
use mftplus_hub::testing::StandInCloud;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

const FILE: &str = "hub.db";
/// Where `make_fixture` writes; a temporary directory when unset.
const OUT_ENV: &str = "MFTPLUS_UPGRADE_FIXTURE_DIR";
/// The agent's host key in the fixture (the stand-in cloud accepts any).
const TOKEN: &str = "mfth_agent_key_of_the_upgrade_fixture";
const ROUTE: &str = "/api/v1/host-report";
const QUEUED: &str = "k-fixture-queued";
const REFUSED: &str = "k-fixture-refused";
const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// `(release, directory)` of every release fixture, oldest name first.
fn releases() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/upgrade");
    let entries = std::fs::read_dir(&root)
        .unwrap_or_else(|err| panic!("{}: {err}", root.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir());
    let mut releases: Vec<(String, PathBuf)> = entries
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                path,
            )
        })
        .collect();
    releases.sort();
    assert!(
        !releases.is_empty(),
        "no release fixtures under {}: run scripts/make-upgrade-fixtures.sh",
        root.display()
    );
    releases
}

/// What `manifest.json` says of the release's `hub.db`.
fn manifest_entry(release: &str, dir: &Path) -> Value {
    let path = dir.join("manifest.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let manifest: Value = serde_json::from_str(&text).expect("manifest.json");
    assert_eq!(manifest["release"], release, "{}", path.display());
    let entry = manifest["files"][FILE].clone();
    assert!(
        entry["user_version"].is_u64() && entry["deploy_key"].is_string(),
        "{} does not give {FILE}'s user_version and deploy_key",
        path.display()
    );
    entry
}

/// A private data directory holding a copy of the release's file.
fn copy_of(dir: &Path) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join(FILE), data.path().join(FILE))
        .unwrap_or_else(|err| panic!("{}: {err}", dir.join(FILE).display()));
    data
}

fn raw_user_version(data: &Path) -> u32 {
    let conn = rusqlite::Connection::open(data.join(FILE)).unwrap();
    schema_version(&conn).unwrap()
}

async fn post_report(hub: &TestHub, version: &str, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(hub.url(ROUTE))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", key)
        .json(&json!({"host_id": "h1", "agent_version": version, "applied_generation": 0}))
        .send()
        .await
        .unwrap()
}

async fn rebind(addr: SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..100 {
        if let Ok(listener) = tokio::net::TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot bind {addr} again");
}

fn hub_config(cloud: &StandInCloud, deploy_key: &str, data: &Path) -> mftplus_hub::HubConfig {
    let base = cloud.base_url();
    let data = data.display().to_string();
    config(&[
        ("CLOUD_API_URL", base.as_str()),
        ("HUB_REGISTRATION_KEY", deploy_key),
        ("HUB_DATA_DIR", data.as_str()),
    ])
}

/// Every sealed value of the old file opens with today's code after the migration.
fn check_rows(release: &str, data: &Path, deploy_key: &str) {
    let (conn, sealer) = open_db(data, deploy_key).expect("open the fixture");
    assert_eq!(schema_version(&conn).unwrap(), SCHEMA_VERSION, "{release}");
    let conn = Mutex::new(conn);
    let rows = queue::oldest(&conn, &sealer, 10).unwrap();
    assert_eq!(rows.len(), 1, "{release}: the queued write");
    let row = &rows[0];
    assert_eq!(
        (row.write.route.as_str(), row.write.idempotency_key.as_str()),
        (ROUTE, QUEUED)
    );
    assert_eq!(row.write.token, TOKEN, "{release}: the sealed token opens");
    let body: Value = serde_json::from_slice(&row.write.body).unwrap();
    assert_eq!(body["agent_version"], "0.1.2");
    assert_eq!(row.client_addr, Some("127.0.0.1".parse().unwrap()));
    let cache = AuthCache {
        conn: &conn,
        sealer: &sealer,
        ttl: 100 * YEAR,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let cached = cache
        .lookup(TOKEN, now)
        .unwrap()
        .expect("the auth cache entry");
    assert_eq!(cached.kind, ROUTE);
    assert!(
        cache.envelope(&token_hash(TOKEN)).unwrap().is_some(),
        "{release}: the kept envelope opens"
    );
    drop(conn);

    let offline = Offline::open(data, deploy_key, YEAR, 1_000).unwrap();
    assert_eq!((offline.queued(), offline.dead_letter()), (1, 1));
    let dead = offline.dead_letter_rows().unwrap();
    assert_eq!(
        (dead[0].idempotency_key.as_str(), dead[0].status),
        (REFUSED, 403),
        "{release}: the dead letter"
    );
    assert_eq!(dead[0].code.as_deref(), Some("forbidden"));
}

/// Today's hub on the upgraded file: the old queued write reaches the cloud once, the dead
/// letter replays, and new writes go through.
async fn run_hub_on(release: &str, data: &Path, deploy_key: &str) {
    let cloud = StandInCloud::start(&[deploy_key]).await;
    let hub = TestHub::start(hub_config(&cloud, deploy_key, data), fast_timings()).await;
    hub.wait_registered().await;
    let offline = hub
        .state
        .offline
        .clone()
        .expect("the offline store is open");
    let sent = |key: &'static str| {
        let cloud = &cloud;
        move || {
            cloud
                .reports()
                .iter()
                .filter(|r| r.header("idempotency-key") == vec![key])
                .map(|r| r.status)
                .collect::<Vec<u16>>()
        }
    };
    wait_until("the old queued write", Duration::from_secs(20), || {
        offline.queued() == 0
    })
    .await;
    assert_eq!(sent(QUEUED)(), [200], "{release}: replayed once");
    assert_eq!(offline.replay_dead_letter().unwrap(), 1);
    wait_until("the dead letter's row", Duration::from_secs(20), || {
        sent(REFUSED)() == [200]
    })
    .await;
    assert_eq!((offline.queued(), offline.dead_letter()), (0, 0));
    assert_eq!(post_report(&hub, "0.2.0", "k-after").await.status(), 200);
    hub.stop().await;
    cloud.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_release_fixture_upgrades_and_the_hub_replays_it() {
    for (release, dir) in releases() {
        eprintln!("upgrading the hub.db of {release}");
        let entry = manifest_entry(&release, &dir);
        let deploy_key = entry["deploy_key"].as_str().unwrap();
        let data = copy_of(&dir);
        assert_eq!(
            u64::from(raw_user_version(data.path())),
            entry["user_version"].as_u64().unwrap(),
            "{release}: the file is what its manifest says"
        );
        check_rows(&release, data.path(), deploy_key);
        assert_eq!(raw_user_version(data.path()), SCHEMA_VERSION);
        run_hub_on(&release, data.path(), deploy_key).await;
    }
}

#[test]
fn a_hub_db_from_a_newer_hub_is_refused() {
    let (release, dir) = releases().pop().unwrap();
    let deploy_key = manifest_entry(&release, &dir)["deploy_key"]
        .as_str()
        .unwrap()
        .to_string();
    let data = copy_of(&dir);
    drop(open_db(data.path(), &deploy_key).unwrap());
    let newer = SCHEMA_VERSION + 1;
    let conn = rusqlite::Connection::open(data.path().join(FILE)).unwrap();
    conn.pragma_update(None, "user_version", newer).unwrap();
    drop(conn);
    let before = std::fs::read(data.path().join(FILE)).unwrap();

    let err = open_db(data.path(), &deploy_key).err().expect("refused");
    assert!(
        matches!(err, OfflineError::TooNew { found, known, .. } if found == newer && known == SCHEMA_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains("newer hub"), "{err}");
    let err = Offline::open(data.path(), &deploy_key, YEAR, 1_000).expect_err("refused");
    assert!(matches!(err, OfflineError::TooNew { .. }), "{err}");
    assert_eq!(raw_user_version(data.path()), newer);
    assert_eq!(
        std::fs::read(data.path().join(FILE)).unwrap(),
        before,
        "the file is untouched"
    );
}

/// Writes `hub.db` with a real hub (a write answered online, one refused on replay into the
/// dead letter, one left queued) and its manifest entry into `$MFTPLUS_UPGRADE_FIXTURE_DIR`
/// (run by `scripts/make-upgrade-fixtures.sh`), or into a temporary directory as a self-test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes a release fixture; run by scripts/make-upgrade-fixtures.sh"]
async fn make_fixture() {
    let scratch = tempfile::tempdir().unwrap();
    let out = std::env::var_os(OUT_ENV).map_or(scratch.path().to_path_buf(), PathBuf::from);
    let data = tempfile::tempdir().unwrap();
    let cloud = StandInCloud::start(&[KEY]).await;
    let addr = cloud.addr;
    let hub = TestHub::start(hub_config(&cloud, KEY, data.path()), fast_timings()).await;
    hub.wait_registered().await;
    let offline = hub.state.offline.clone().unwrap();
    assert_eq!(
        post_report(&hub, "0.1.0", "k-fixture-online")
            .await
            .status(),
        200
    );

    cloud.stop().await;
    let answer = post_report(&hub, "0.1.1", REFUSED).await;
    assert_eq!(answer.headers()["x-hub-offline"], "queued");
    let refusal =
        json!({"error": {"code": "forbidden", "message": "the report names another host"}});
    let cloud =
        StandInCloud::start_answering(rebind(addr).await, &[KEY], Some((403, refusal))).await;
    wait_until("the refusal", Duration::from_secs(20), || {
        offline.queued() == 0 && offline.dead_letter() == 1
    })
    .await;
    cloud.stop().await;
    let answer = post_report(&hub, "0.1.2", QUEUED).await;
    assert_eq!(answer.headers()["x-hub-offline"], "queued");
    drop(offline);
    hub.stop().await;

    let user_version = compact_into(&data.path().join(FILE), &out.join(FILE));
    let entry = json!({
        "schema": "PRAGMA user_version",
        "user_version": user_version,
        "deploy_key": KEY,
        "writer": "crates/mftplus-hub/tests/upgrade.rs make_fixture",
    });
    let manifest = out.join(format!("{FILE}.manifest.json"));
    std::fs::write(&manifest, format!("{entry:#}\n")).unwrap();

    let copy = copy_of(&out);
    check_rows("this release", copy.path(), KEY);
}

/// One compact file without its WAL: what a backup of a stopped hub looks like. Returns its
/// `user_version`.
fn compact_into(from: &Path, to: &Path) -> u32 {
    let _ = std::fs::remove_file(to);
    let conn = rusqlite::Connection::open(from).unwrap();
    conn.execute("VACUUM INTO ?1", [to.to_str().expect("a UTF-8 path")])
        .expect("VACUUM INTO");
    drop(conn);
    let written = rusqlite::Connection::open(to).unwrap();
    let version = schema_version(&written).unwrap();
    assert_eq!(version, SCHEMA_VERSION, "VACUUM INTO kept the user_version");
    version
}
