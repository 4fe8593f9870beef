//! The Proxmox VE driver against a local stand-in of the PVE API.
//!
//! A real PVE cannot run here (it is a whole distribution with a cluster filesystem and
//! QEMU), so this file carries the one fake the project allows: an axum server on 127.0.0.1
//! that answers the endpoints the driver calls the way PVE documents them — the
//! `Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET` check (401 otherwise), the
//! `{"data": …}` envelope, errors in the status line's reason phrase, UPIDs for asynchronous
//! actions and `/nodes/{node}/tasks/{upid}/status` for their end, guests kept in memory. Knobs
//! make a task fail, stall, a shutdown be ignored, or a VMID be taken right after
//! `/cluster/nextid` gave it. Every mutating call is logged with its VMID, so the tests can
//! show guests the agent did not create were never touched.

use mftplus_agent::driver::proxmox::{vm_name, Marker, ProxmoxConfig};
use mftplus_agent::driver::{DriverError, GuestDriver, ObservedGuest, ProxmoxDriver};
use mftplus_types::fleet::{GuestKind, GuestSpec, GuestStatus};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

#[path = "proxmox_driver/stand_in.rs"]
mod stand_in;
use stand_in::*;

fn vm(image: &str, cpu_cores: u32, memory_mb: u64, disk_gb: u64) -> GuestSpec {
    GuestSpec {
        kind: GuestKind::Vm,
        cpu_cores,
        memory_mb,
        disk_gb,
        image: image.into(),
        ..GuestSpec::default()
    }
}

fn container(image: &str) -> GuestSpec {
    GuestSpec {
        kind: GuestKind::Container,
        ..vm(image, 1, 512, 4)
    }
}

async fn observed(driver: &ProxmoxDriver, guest_id: &str) -> Option<ObservedGuest> {
    let mut found: Vec<_> = driver
        .list()
        .await
        .expect("list")
        .into_iter()
        .filter(|g| g.guest_id == guest_id)
        .collect();
    assert!(found.len() <= 1, "guest {guest_id} listed twice: {found:?}");
    found.pop()
}

fn str_of<'a>(guest: &'a Guest, key: &str) -> &'a str {
    guest
        .config
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

// ---------------------------------------------------------------- the tests

#[tokio::test]
async fn a_created_vm_is_listed_stopped_with_its_spec() {
    let pve = stand_in().await;
    let driver = pve.driver();
    assert_eq!(driver.name(), "proxmox");
    assert!(driver.supports(GuestKind::Vm) && driver.supports(GuestKind::Container));
    assert_eq!(driver.ping().await.unwrap(), "8.2.4");
    assert!(
        driver.list().await.unwrap().is_empty(),
        "templates are not guests"
    );

    let spec = vm("debian-12-golden", 2, 2048, 20);
    driver.create("web_1", &spec).await.unwrap();
    let seen = observed(&driver, "web_1").await.expect("listed");
    assert_eq!(seen.status, GuestStatus::Stopped);
    assert_eq!(seen.spec.kind, GuestKind::Vm);
    assert_eq!(
        (seen.spec.cpu_cores, seen.spec.memory_mb, seen.spec.disk_gb),
        (2, 2048, 20)
    );
    assert_eq!(seen.spec.image, "debian-12-golden");

    // What PVE holds: a full clone on the configured storage, named, marked and tagged.
    let vmid = pve.vmid_of("web_1").expect("marked");
    let guest = pve.guest(vmid).unwrap();
    assert_eq!(str_of(&guest, "name"), vm_name("web_1"));
    assert_eq!(str_of(&guest, "tags"), format!("golden;mftplus-{OWNER}"));
    assert_eq!(
        str_of(&guest, "scsi0"),
        format!("fast:vm-{vmid}-disk-0,size=20G")
    );
    assert_eq!(str_of(&guest, "sockets"), "1");
    assert!(pve
        .touched(VM_TEMPLATE)
        .iter()
        .all(|t| t.starts_with("POST clone")));

    // By VMID as well; a VMID that is not a template is refused.
    driver.create("db", &vm("9000", 1, 1024, 10)).await.unwrap();
    assert_eq!(observed(&driver, "db").await.unwrap().spec.image, "9000");
    let err = driver
        .create("x", &vm(&vmid.to_string(), 1, 1024, 20))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "driver_refused", "{err}");
    // A disk below the template's size is a spec PVE cannot honour.
    let err = driver
        .create("small", &vm("9000", 1, 1024, 5))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "guest_invalid_spec", "{err}");
    assert!(observed(&driver, "small").await.is_none());
}

#[tokio::test]
async fn containers_come_from_an_archive_or_a_template() {
    let pve = stand_in().await;
    let driver = pve.driver();
    driver.create("cache", &container(ARCHIVE)).await.unwrap();
    driver
        .create("edge", &container("alpine-ct"))
        .await
        .unwrap();
    let cache = observed(&driver, "cache").await.unwrap();
    assert_eq!(cache.spec.kind, GuestKind::Container);
    assert_eq!(
        (
            cache.spec.cpu_cores,
            cache.spec.memory_mb,
            cache.spec.disk_gb
        ),
        (1, 512, 4)
    );
    let guest = pve.guest(pve.vmid_of("cache").unwrap()).unwrap();
    assert_eq!(guest.kind, "lxc");
    assert_eq!(str_of(&guest, "unprivileged"), "1");
    assert_eq!(str_of(&guest, "tags"), format!("mftplus-{OWNER}"));
    let edge = observed(&driver, "edge").await.unwrap();
    assert_eq!(
        (edge.spec.kind, edge.spec.disk_gb),
        (GuestKind::Container, 4)
    );

    // A VM spec never becomes a container or the other way round.
    let err = driver
        .create("cache", &vm("9000", 1, 512, 10))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "driver_refused", "{err}");
    // Without `storage` an archive has nowhere to go.
    let mut config = pve.config();
    config.storage = None;
    let bare = ProxmoxDriver::from_config(&config, OWNER).unwrap();
    let err = bare.create("other", &container(ARCHIVE)).await.unwrap_err();
    assert!(err.to_string().contains("proxmox.storage"), "{err}");
    let err = driver
        .create("nope", &container("local:vztmpl/none.tar.zst"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "driver_refused", "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn the_lifecycle_is_idempotent() {
    let pve = stand_in().await;
    let driver = pve.driver();
    let spec = vm("debian-12-golden", 2, 2048, 20);
    driver.create("web", &spec).await.unwrap();
    driver.create("web", &spec).await.unwrap();
    let count = pve.with(|p| p.guests.len());
    assert_eq!(count, 3, "two templates and one guest");
    let vmid = pve.vmid_of("web").unwrap();

    driver.start("web").await.unwrap();
    assert_eq!(
        observed(&driver, "web").await.unwrap().status,
        GuestStatus::Running
    );
    driver.start("web").await.unwrap();
    assert_eq!(
        pve.touched(vmid)
            .iter()
            .filter(|t| *t == "POST status/start")
            .count(),
        1
    );

    driver.stop("web").await.unwrap();
    assert_eq!(
        observed(&driver, "web").await.unwrap().status,
        GuestStatus::Stopped
    );
    driver.stop("web").await.unwrap();
    let touched = pve.touched(vmid);
    assert!(
        touched.contains(&"POST status/shutdown".to_string()),
        "{touched:?}"
    );
    assert!(
        !touched.contains(&"POST status/stop".to_string()),
        "a clean shutdown sufficed"
    );

    driver.start("web").await.unwrap();
    driver.remove("web").await.unwrap();
    assert!(pve.guest(vmid).is_none());
    assert!(observed(&driver, "web").await.is_none());
    driver.remove("web").await.unwrap();
    driver.stop("web").await.unwrap();
    assert!(matches!(
        driver.start("web").await,
        Err(DriverError::NotFound(_))
    ));
    assert!(matches!(
        driver.resize("web", &spec).await,
        Err(DriverError::NotFound(_))
    ));
    let touched = pve.touched(vmid);
    assert_eq!(
        touched[touched.len() - 2..],
        ["POST status/stop", "DELETE"],
        "hard stop, delete"
    );
}

#[tokio::test]
async fn a_guest_that_ignores_shutdown_is_stopped_hard() {
    let pve = stand_in().await;
    let driver = pve.driver();
    driver
        .create("web", &vm("9000", 1, 1024, 10))
        .await
        .unwrap();
    driver.start("web").await.unwrap();
    pve.with(|p| p.ignore_shutdown = true);
    driver.stop("web").await.unwrap();
    assert_eq!(
        observed(&driver, "web").await.unwrap().status,
        GuestStatus::Stopped
    );
    let touched = pve.touched(pve.vmid_of("web").unwrap());
    assert_eq!(
        touched[touched.len() - 2..],
        ["POST status/shutdown", "POST status/stop"]
    );
}

#[tokio::test]
async fn resize_sets_cpu_and_memory_and_grows_the_disk() {
    let pve = stand_in().await;
    let driver = pve.driver();
    driver
        .create("web", &vm("9000", 1, 1024, 10))
        .await
        .unwrap();
    let vmid = pve.vmid_of("web").unwrap();
    assert!(
        !pve.touched(vmid).contains(&"PUT resize".to_string()),
        "10 GB is the template's"
    );

    driver
        .resize("web", &vm("9000", 4, 4096, 30))
        .await
        .unwrap();
    let seen = observed(&driver, "web").await.unwrap();
    assert_eq!(
        (seen.spec.cpu_cores, seen.spec.memory_mb, seen.spec.disk_gb),
        (4, 4096, 30)
    );
    driver
        .resize("web", &vm("9000", 4, 4096, 30))
        .await
        .unwrap();
    let resizes = pve
        .touched(vmid)
        .iter()
        .filter(|t| *t == "PUT resize")
        .count();
    assert_eq!(resizes, 1, "a disk at its size is left alone");

    let err = driver
        .resize("web", &vm("9000", 4, 4096, 20))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "driver_refused", "{err}");
    assert!(err.to_string().contains("cannot shrink"), "{err}");
    assert_eq!(observed(&driver, "web").await.unwrap().spec.disk_gb, 30);

    let err = driver
        .resize("web", &vm("9000", 0, 4096, 30))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "guest_invalid_spec", "{err}");
    let mut as_container = vm("9000", 4, 4096, 30);
    as_container.kind = GuestKind::Container;
    let err = driver.resize("web", &as_container).await.unwrap_err();
    assert_eq!(err.code(), "driver_refused", "{err}");
}

#[tokio::test]
async fn guests_the_agent_did_not_create_are_never_listed_or_touched() {
    let pve = stand_in().await;
    let driver = pve.driver();
    driver
        .create("app", &vm("9000", 1, 1024, 10))
        .await
        .unwrap();
    let app = pve.vmid_of("app").unwrap();
    let ours = pve.guest(app).unwrap().config;
    let marker = |host: &str, guest: &str, vmid: u32| {
        Marker {
            host: host.into(),
            guest_id: guest.into(),
            vmid,
            image: "9000".into(),
        }
        .description()
    };
    let tag = format!("mftplus-{OWNER}");
    pve.with(|p| {
        // Someone's VM, no mark at all.
        p.add(
            200,
            "qemu",
            "running",
            json!({"name": "db", "scsi0": "s:v,size=8G"}),
        );
        // The name this driver would give, without its marker.
        p.add(
            201,
            "qemu",
            "running",
            json!({"name": "mftplus-web", "scsi0": "s:v,size=8G"}),
        );
        // Our tag, but another agent's marker.
        p.add(
            202,
            "lxc",
            "stopped",
            json!({
                "hostname": "mftplus-web", "tags": tag, "rootfs": "s:v,size=8G",
                "description": marker("h-other", "web", 202),
            }),
        );
        // A copy of our guest made by hand in PVE: same notes and tag, another VMID.
        let mut copy = ours.clone();
        copy.insert("name".into(), json!("Copy-of-VM-mftplus-app"));
        p.add(203, "qemu", "running", Value::Object(copy));
    });
    let listed: Vec<String> = driver
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.guest_id)
        .collect();
    assert_eq!(listed, ["app"]);

    for guest in ["db", "web"] {
        assert!(matches!(
            driver.start(guest).await,
            Err(DriverError::NotFound(_))
        ));
        driver.stop(guest).await.unwrap();
        driver.remove(guest).await.unwrap();
        let err = driver
            .resize(guest, &vm("9000", 2, 2048, 20))
            .await
            .unwrap_err();
        assert!(matches!(err, DriverError::NotFound(_)), "{err}");
    }
    // `web` is not taken by the look-alikes: creating it makes a guest of its own.
    driver
        .create("web", &vm("9000", 1, 1024, 10))
        .await
        .unwrap();
    let web = pve.vmid_of("web").unwrap();
    assert!(web != 201 && web != 202);
    driver.start("app").await.unwrap();
    driver.remove("app").await.unwrap();
    assert!(pve.guest(app).is_none());
    for foreign in [200, 201, 202, 203] {
        assert!(pve.guest(foreign).is_some(), "{foreign} still there");
        assert_eq!(
            pve.touched(foreign),
            Vec::<String>::new(),
            "{foreign} never touched"
        );
    }
    assert_eq!(pve.guest(203).unwrap().status, "running");

    // Another agent on the same node sees only its own.
    let other = pve.driver_for("h-other");
    let listed: Vec<String> = other
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.guest_id)
        .collect();
    assert_eq!(listed, ["web"], "202 is h-other's");
    assert_eq!(pve.with(|p| p.unauthorized), 0);
}

#[tokio::test]
async fn a_wrong_token_is_refused_without_showing_the_secret() {
    let pve = stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("token");
    std::fs::write(&wrong, "not-the-secret-5d41402abc4b2a76").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut config = pve.config();
    config.token_secret_file = wrong;
    let driver = ProxmoxDriver::from_config(&config, OWNER).unwrap();
    for err in [
        driver.ping().await.unwrap_err(),
        driver.list().await.unwrap_err(),
    ] {
        assert_eq!(err.code(), "driver_refused", "{err}");
        let text = err.to_string();
        assert!(
            text.contains("401") && text.contains("invalid token value!"),
            "{text}"
        );
        assert!(text.contains(TOKEN_ID), "names the token: {text}");
        assert!(
            !text.contains("5d41402abc4b2a76") && !text.contains(SECRET),
            "{text}"
        );
        assert!(!format!("{err:?} {driver:?}").contains("5d41402abc4b2a76"));
    }
    assert!(pve.with(|p| p.unauthorized) >= 2);
    let err = driver
        .create("web", &vm("9000", 1, 1024, 10))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "driver_refused");
    assert_eq!(pve.with(|p| p.mutations.len()), 0);
}

#[tokio::test]
async fn a_failed_task_is_refused_with_its_message() {
    let pve = stand_in().await;
    let driver = pve.driver();
    let message = "clone failed: storage 'fast' is full (out of space)";
    pve.with(|p| p.fail_next_task = Some(message.into()));
    let err = driver
        .create("web", &vm("9000", 1, 1024, 10))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "driver_refused", "{err}");
    assert!(err.to_string().contains(message), "{err}");
    assert!(observed(&driver, "web").await.is_none());
    // The next cycle's attempt goes through.
    driver
        .create("web", &vm("9000", 1, 1024, 10))
        .await
        .unwrap();
    pve.with(|p| p.fail_next_task = Some("start failed: QEMU exited with code 1".into()));
    let err = driver.start("web").await.unwrap_err();
    assert_eq!(err.code(), "driver_refused");
    assert!(err.to_string().contains("QEMU exited with code 1"), "{err}");
    assert_eq!(
        observed(&driver, "web").await.unwrap().status,
        GuestStatus::Stopped
    );
}

#[tokio::test]
async fn a_stalled_task_hits_the_deadline() {
    let pve = stand_in().await;
    let mut config = pve.config();
    config.task_timeout = Duration::from_millis(400);
    let driver = ProxmoxDriver::from_config(&config, OWNER)
        .unwrap()
        .with_poll_interval(Duration::from_millis(20));
    driver
        .create("web", &vm("9000", 1, 1024, 10))
        .await
        .unwrap();
    pve.with(|p| p.stall_tasks = true);
    let started = Instant::now();
    let err = driver.start("web").await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.code(), "driver_unreachable", "{err}");
    assert!(err.to_string().contains("still `running`"), "{err}");
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_vmid_taken_meanwhile_is_asked_for_again() {
    let pve = stand_in().await;
    let driver = pve.driver();
    pve.with(|p| p.steal_next_ids = 2);
    driver
        .create("web", &vm("9000", 1, 1024, 10))
        .await
        .unwrap();
    let vmid = pve.vmid_of("web").unwrap();
    assert_eq!(vmid, 102, "100 and 101 were taken by someone else");
    assert_eq!(observed(&driver, "web").await.unwrap().guest_id, "web");
    assert_eq!(pve.touched(100), Vec::<String>::new());
}

#[tokio::test]
async fn setup_mistakes_are_refused() {
    let pve = stand_in().await;
    // A secret file others can read.
    std::fs::set_permissions(&pve.secret_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = ProxmoxDriver::from_config(&pve.config(), OWNER).unwrap_err();
    assert_eq!(err.code(), "driver_unreachable");
    assert!(err.to_string().contains("chmod"), "{err}");
    std::fs::set_permissions(&pve.secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A host id that cannot be a tag.
    let err = ProxmoxDriver::from_config(&pve.config(), "H 1").unwrap_err();
    assert!(err.to_string().contains("tag"), "{err}");
    // Plain http off this machine.
    let err = ProxmoxConfig::new(
        "http://192.0.2.7:8006",
        NODE,
        TOKEN_ID,
        pve.secret_file.clone(),
    );
    assert!(err.unwrap_err().contains("in clear"));
    // Nobody listening.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut config = pve.config();
    config.api_url = format!("http://127.0.0.1:{port}");
    let driver = ProxmoxDriver::from_config(&config, OWNER).unwrap();
    assert_eq!(
        driver.ping().await.unwrap_err().code(),
        "driver_unreachable"
    );
    assert_eq!(
        driver.list().await.unwrap_err().code(),
        "driver_unreachable"
    );
    // A CA file that is not one.
    let mut config = pve.config();
    config.ca_file = Some(pve.secret_file.clone());
    assert_eq!(
        ProxmoxDriver::from_config(&config, OWNER)
            .unwrap_err()
            .code(),
        "driver_unreachable"
    );
}
