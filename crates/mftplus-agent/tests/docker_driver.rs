//! The Docker driver against the machine's real Docker Engine: the lifecycle the reconciler
//! drives, idempotence, and above all that containers the agent did not create are never
//! listed or touched. Skips (with a banner) without Docker unless
//! `MFTPLUS_TEST_REQUIRE_DOCKER=1`.

use mftplus_agent::driver::docker::container_name;
use mftplus_agent::driver::{DockerDriver, DriverError, GuestDriver, ObservedGuest};
use mftplus_agent::testing::{
    docker, docker_available, guest_image, unique_suffix, ContainerCleanup,
};
use mftplus_types::fleet::{GuestKind, GuestSpec, GuestStatus};

fn driver() -> DockerDriver {
    DockerDriver::from_env().expect("DOCKER_HOST names a unix socket")
}

fn spec(image: &str, cpu_cores: u32, memory_mb: u64, disk_gb: u64) -> GuestSpec {
    GuestSpec {
        kind: GuestKind::Container,
        cpu_cores,
        memory_mb,
        disk_gb,
        image: image.into(),
        ..GuestSpec::default()
    }
}

async fn observed(driver: &DockerDriver, guest_id: &str) -> Option<ObservedGuest> {
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

/// `docker inspect -f <format> <name>`, trimmed; `None` when the container does not exist.
fn inspect(name: &str, format: &str) -> Option<String> {
    let out = docker(&["inspect", "-f", format, name]).unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn run_foreign(name: &str, image: &str, labels: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    for label in labels {
        args.extend(["--label", label]);
    }
    args.push(image);
    let out = docker(&args).unwrap();
    assert!(out.status.success(), "docker run {name}: {out:?}");
}

#[tokio::test]
async fn engine_answers_ping() {
    if !docker_available() {
        return;
    }
    let version = driver().ping().await.expect("ping");
    assert!(!version.is_empty());
}

#[tokio::test]
async fn lifecycle_of_one_guest() {
    if !docker_available() {
        return;
    }
    let image = guest_image();
    let id = format!("lc-{}", unique_suffix());
    let mut cleanup = ContainerCleanup::new();
    cleanup.add(container_name(&id));
    let d = driver();
    let small = spec(&image, 1, 64, 5);

    d.create(&id, &small).await.expect("create");
    let guest = observed(&d, &id).await.expect("listed after create");
    assert_eq!(guest.status, GuestStatus::Stopped);
    assert_eq!(guest.spec, small);
    assert_eq!(guest.restart_count, 0);
    assert_eq!(guest.detail.as_deref(), Some("created"));
    assert_eq!(
        inspect(&container_name(&id), "{{.HostConfig.RestartPolicy.Name}}").as_deref(),
        Some("no")
    );

    d.start(&id).await.expect("start");
    d.start(&id).await.expect("start when running");
    let guest = observed(&d, &id).await.unwrap();
    assert_eq!(guest.status, GuestStatus::Running);
    assert_eq!(guest.detail.as_deref(), Some("running"));

    d.create(&id, &small).await.expect("create again");
    assert!(observed(&d, &id).await.is_some());

    let bigger = spec(&image, 2, 128, 5);
    d.resize(&id, &bigger).await.expect("resize");
    assert_eq!(observed(&d, &id).await.unwrap().spec, bigger);
    assert_eq!(
        inspect(
            &container_name(&id),
            "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}"
        )
        .as_deref(),
        Some("2000000000 134217728")
    );
    let unlimited = spec(&image, 0, 0, 5);
    let err = d.resize(&id, &unlimited).await.unwrap_err();
    assert!(
        matches!(&err, DriverError::Refused { why, .. } if why.contains("in place")),
        "{err}"
    );

    let started = std::time::Instant::now();
    d.stop(&id).await.expect("stop");
    assert!(started.elapsed().as_secs() < 5, "the guest ignored SIGTERM");
    let guest = observed(&d, &id).await.unwrap();
    assert_eq!(guest.status, GuestStatus::Stopped);
    assert_eq!(guest.detail.as_deref(), Some("exited (0)"));
    d.stop(&id).await.expect("stop when stopped");

    d.start(&id).await.expect("start again");
    let out = docker(&["kill", &container_name(&id)]).unwrap();
    assert!(out.status.success(), "{out:?}");
    let guest = observed(&d, &id).await.unwrap();
    assert_eq!(guest.status, GuestStatus::Stopped);
    assert_eq!(guest.detail.as_deref(), Some("exited (137)"));

    d.remove(&id).await.expect("remove");
    assert!(observed(&d, &id).await.is_none());
    assert!(inspect(&container_name(&id), "{{.Id}}").is_none());
    d.remove(&id).await.expect("remove when gone");
    d.stop(&id).await.expect("stop when gone");
    let err = d.start(&id).await.unwrap_err();
    assert!(matches!(err, DriverError::NotFound(_)), "{err}");
    let err = d.resize(&id, &small).await.unwrap_err();
    assert!(matches!(err, DriverError::NotFound(_)), "{err}");
}

#[tokio::test]
async fn remove_kills_a_running_guest() {
    if !docker_available() {
        return;
    }
    let image = guest_image();
    let id = format!("rm-{}", unique_suffix());
    let mut cleanup = ContainerCleanup::new();
    cleanup.add(container_name(&id));
    let d = driver();
    d.create(&id, &spec(&image, 0, 0, 0)).await.unwrap();
    d.start(&id).await.unwrap();
    let guest = observed(&d, &id).await.unwrap();
    assert_eq!(guest.spec, spec(&image, 0, 0, 0));
    d.remove(&id).await.expect("remove running");
    assert!(observed(&d, &id).await.is_none());
}

#[tokio::test]
async fn containers_of_others_are_never_listed_or_touched() {
    if !docker_available() {
        return;
    }
    let image = guest_image();
    let id = format!("fx-{}", unique_suffix());
    let forged = format!("{id}-forged");
    let guest_label = format!("io.mftplus.guest={id}");
    let mut cleanup = ContainerCleanup::new();
    // Named like the guest id, like the guest's container, and one that copies our labels
    // under another name: none of them is the agent's guest.
    let foreign = [id.clone(), container_name(&id), forged.clone()];
    for name in &foreign {
        cleanup.add(name.clone());
    }
    run_foreign(&id, &image, &[]);
    run_foreign(
        &container_name(&id),
        &image,
        &["io.mftplus.agent=0", &guest_label],
    );
    run_foreign(&forged, &image, &["io.mftplus.agent=1", &guest_label]);
    let d = driver();

    assert!(observed(&d, &id).await.is_none());
    let listed = d.list().await.unwrap();
    assert!(
        listed.iter().all(|g| !g.guest_id.starts_with(&id)),
        "{listed:?}"
    );

    d.stop(&id).await.expect("stop of a guest we do not have");
    d.remove(&id)
        .await
        .expect("remove of a guest we do not have");
    for name in &foreign {
        assert_eq!(
            inspect(name, "{{.State.Running}}").as_deref(),
            Some("true"),
            "{name} was touched"
        );
    }
    let err = d.start(&id).await.unwrap_err();
    assert_eq!(err.code(), "driver_refused", "{err}");
    let err = d.create(&id, &spec(&image, 1, 64, 1)).await.unwrap_err();
    assert!(err.to_string().contains("did not create"), "{err}");
    let err = d.resize(&id, &spec(&image, 1, 64, 1)).await.unwrap_err();
    assert_eq!(err.code(), "driver_refused", "{err}");
}

#[tokio::test]
async fn a_missing_image_is_refused_and_never_pulled() {
    if !docker_available() {
        return;
    }
    let id = format!("ni-{}", unique_suffix());
    let image = format!("mftplus-no-such-image-{}:1", unique_suffix());
    let mut cleanup = ContainerCleanup::new();
    cleanup.add(container_name(&id));
    let err = driver()
        .create(&id, &spec(&image, 1, 64, 1))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DriverError::Refused { .. }), "{text}");
    assert!(
        text.contains(&image) && text.contains("never pulls"),
        "{text}"
    );
    assert!(inspect(&container_name(&id), "{{.Id}}").is_none());
    assert!(inspect(&image, "{{.Id}}").is_none(), "the image was pulled");
}

#[tokio::test]
async fn vms_and_bad_ids_are_refused_before_the_engine() {
    let d = DockerDriver::new("/nonexistent/docker.sock");
    assert!(d.supports(GuestKind::Container));
    assert!(!d.supports(GuestKind::Vm));
    let vm = GuestSpec {
        kind: GuestKind::Vm,
        ..spec("app:1", 1, 64, 1)
    };
    let err = d.create("vm-1", &vm).await.unwrap_err();
    assert!(matches!(err, DriverError::Unsupported { .. }), "{err}");
    for bad in ["", "Web", "a/b", "../x"] {
        for err in [
            d.start(bad).await.unwrap_err(),
            d.stop(bad).await.unwrap_err(),
            d.remove(bad).await.unwrap_err(),
        ] {
            assert_eq!(err.code(), "guest_invalid_spec", "{bad}: {err}");
        }
    }
}

#[tokio::test]
async fn an_absent_socket_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let d = DockerDriver::new(dir.path().join("docker.sock"));
    for err in [
        d.list().await.unwrap_err(),
        d.ping().await.unwrap_err(),
        d.stop("web-1").await.unwrap_err(),
        d.create("web-1", &spec("app:1", 1, 64, 1))
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, DriverError::Unreachable { .. }), "{err}");
    }
}

#[tokio::test]
async fn agents_sharing_an_engine_never_see_or_take_each_others_guests() {
    if !docker_available() {
        return;
    }
    let image = guest_image();
    let id = format!("shared-{}", unique_suffix());
    let mut cleanup = ContainerCleanup::new();
    cleanup.add(container_name(&id));
    let mine = driver().owned_by("h-mine");
    let theirs = driver().owned_by("h-theirs");
    mine.create(&id, &spec(&image, 1, 32, 1))
        .await
        .expect("create");
    mine.start(&id).await.expect("start");
    assert!(observed(&mine, &id).await.is_some());
    assert!(
        observed(&theirs, &id).await.is_none(),
        "another agent's guest is not listed"
    );
    // The other agent cannot adopt it by creating the same guest id, nor remove or stop it.
    assert_eq!(
        theirs
            .create(&id, &spec(&image, 1, 32, 1))
            .await
            .unwrap_err()
            .code(),
        "driver_refused"
    );
    theirs
        .stop(&id)
        .await
        .expect("stop of a guest it does not own is a no-op");
    theirs
        .remove(&id)
        .await
        .expect("remove of a guest it does not own is a no-op");
    assert_eq!(
        observed(&mine, &id).await.map(|g| g.status),
        Some(GuestStatus::Running),
        "still there and running"
    );
}
