//! The hub as a container, the way the deployment guide runs it: an image from
//! `docker/Dockerfile.local` (the runtime stage of `Dockerfile`, fed the binary cargo built for
//! this test), started with `docker run` and with `docker-compose.yml`, against the hub crate's
//! stand-in cloud on this machine. Checks: healthy through the image's own `HEALTHCHECK`,
//! registered, `/hub/diagnose` served, not root, the data volume owned by the hub's user, the
//! seed's start-up lines in `docker logs`, exit 0 on `docker stop` (SIGTERM).
//!
//! The containers use host networking, bound to 127.0.0.1: the stand-in cloud listens on the
//! host's loopback and the test reaches the hub there, with no bridge, NAT or iptables rule in
//! between and nothing reachable from outside this machine.
//!
//! Without a Docker Engine (`docker info` fails) the Docker tests say so loudly and pass, unless
//! `MFTPLUS_TEST_REQUIRE_DOCKER=1` (CI sets it), which turns the skip into a failure.

use mftplus_hub::testing::StandInCloud;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const KEY: &str = "mft_dep_containertest0123456789abcdefghijklmn";
/// A name only the container's /etc/hosts knows (`--add-host`), so the hub's lookups of the
/// cloud's host go through the resolver inside the image.
const CLOUD_HOST: &str = "mftplus-cloud.test";
const HUB_UID: &str = "65532";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// Runs `docker args…`, panics with its stderr unless it succeeds, returns stdout trimmed.
fn docker(args: &[&str]) -> String {
    let out = run("docker", args);
    assert!(
        out.status.success(),
        "docker {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker_available() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("MFTPLUS_TEST_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "MFTPLUS_TEST_REQUIRE_DOCKER=1 but `docker info` fails: no Docker Engine to test against"
        );
        eprintln!(
            "\n!!!!! SKIPPED: `docker info` fails, so the hub container is NOT tested !!!!!\n"
        );
    }
    ok
}

/// `docker compose` (v2) when present, else `docker-compose` (v1).
fn compose_command() -> Option<Vec<&'static str>> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("docker", &["compose", "version"]) {
        Some(vec!["docker", "compose"])
    } else if works("docker-compose", &["version"]) {
        Some(vec!["docker-compose"])
    } else {
        None
    }
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Removes what a test created, also when it fails half-way.
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    volumes: Vec<String>,
    images: Vec<String>,
    /// (compose command, its `-p … -f … -f …` arguments)
    compose: Option<(Vec<&'static str>, Vec<String>)>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some((cmd, args)) = &self.compose {
            let _ = Command::new(cmd[0])
                .args(&cmd[1..])
                .args(args)
                .args(["down", "-v", "--timeout", "10"])
                .output();
        }
        for c in &self.containers {
            let _ = run("docker", &["rm", "-f", "-v", c]);
        }
        for v in &self.volumes {
            let _ = run("docker", &["volume", "rm", "-f", v]);
        }
        for i in &self.images {
            let _ = run("docker", &["rmi", "-f", i]);
        }
    }
}

/// Stages the runtime filesystem from the binary cargo built for this test and builds the
/// image from docker/Dockerfile.local under a tag unique to this run.
fn build_image(cleanup: &mut Cleanup, staging: &Path) -> String {
    let stage = run(
        repo_root().join("docker/stage-rootfs.sh").to_str().unwrap(),
        &[env!("CARGO_BIN_EXE_mftplus"), staging.to_str().unwrap()],
    );
    assert!(
        stage.status.success(),
        "stage-rootfs.sh: {}",
        String::from_utf8_lossy(&stage.stderr)
    );
    let tag = format!("{}:test", unique("mftplus-hub-test"));
    cleanup.images.push(tag.clone());
    let dockerfile = repo_root().join("docker/Dockerfile.local");
    docker(&[
        "build",
        "--quiet",
        "-f",
        dockerfile.to_str().unwrap(),
        "-t",
        &tag,
        staging.to_str().unwrap(),
    ]);
    tag
}

/// Waits (at most 60 s) for Docker to call the container healthy through the image's own
/// health check; fails early when it exits or turns unhealthy.
fn wait_healthy(container: &str) {
    let started = Instant::now();
    loop {
        let state = docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
            container,
        ]);
        if state == "running healthy" {
            return;
        }
        let failed = !state.starts_with("running") && !state.starts_with("created")
            || state.ends_with("unhealthy")
            || started.elapsed() > Duration::from_secs(60);
        if failed {
            let health = docker(&["inspect", "-f", "{{json .State.Health}}", container]);
            let logs = run("docker", &["logs", container]);
            panic!(
                "container {container} is {state:?} after {:?}\nhealth: {health}\nstdout: {}\nstderr: {}",
                started.elapsed(),
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// One raw HTTP/1.1 GET on the host's loopback: no HTTP client crate needed.
fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// What a registered hub in a container must show: the stand-in cloud saw the registration,
/// and the host gets a healthy, registered diagnosis that resolved the cloud's host inside the
/// container.
async fn assert_registered_and_diagnosed(cloud: &StandInCloud, hub_port: u16) {
    assert!(
        cloud.state.registrations.load(Ordering::SeqCst) >= 1,
        "the stand-in cloud saw no registration"
    );
    let (status, body) = tokio::task::spawn_blocking(move || http_get(hub_port, "/hub/diagnose"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let d: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(d["phoneHome"]["registered"], true, "{d:#}");
    assert!(
        d["phoneHome"]["hubId"]
            .as_str()
            .is_some_and(|id| id.starts_with("hub_")),
        "{d:#}"
    );
    assert_eq!(d["connectivity"]["cloudApiReachable"], true, "{d:#}");
    assert_eq!(d["config"]["nodeEnv"], "production", "{d:#}");
    assert_eq!(d["config"]["port"], hub_port, "{d:#}");
    assert_eq!(d["dns"][0]["hostname"], CLOUD_HOST, "{d:#}");
    assert_eq!(d["dns"][0]["resolved"][0], "127.0.0.1", "{d:#}");
    assert_eq!(d["healthy"], true, "{d:#}");
    let (status, body) = tokio::task::spawn_blocking(move || http_get(hub_port, "/health"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    // An agent's call goes through the containerised proxy to the cloud and back.
    let (status, body) =
        tokio::task::spawn_blocking(move || http_get(hub_port, "/api/v1/echo/agent?x=1"))
            .await
            .unwrap();
    assert_eq!(status, 200, "{body}");
    let echo: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["path"], "/api/v1/echo/agent", "{echo:#}");
    assert_eq!(echo["query"], "x=1", "{echo:#}");
}

/// The guide's restart policy (the checklist's "restarts on host reboot") and its minimum RAM:
/// the test runs the hub under a 256 MB limit, and a hub that outgrew it would show OOMKilled.
fn assert_restart_policy_and_memory_limit(container: &str) {
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.Memory}}",
            container
        ]),
        format!("unless-stopped {}", 256 * 1024 * 1024)
    );
}

/// The hub runs as the image's numeric user, and the data volume it got is that user's.
fn assert_not_root(container: &str) {
    assert_eq!(
        docker(&["inspect", "-f", "{{.Config.User}}", container]),
        format!("{HUB_UID}:{HUB_UID}")
    );
    let top = docker(&["top", container]);
    let hub_line = top
        .lines()
        .find(|l| l.contains("/mftplus hub"))
        .unwrap_or_else(|| panic!("no hub process in `docker top`: {top}"));
    assert_eq!(
        hub_line.split_whitespace().next(),
        Some(HUB_UID),
        "the hub process is not UID {HUB_UID}: {top}"
    );
    // `docker cp` of a mounted path reads the volume; the tar's first header is the directory.
    let out = run("docker", &["cp", &format!("{container}:/app/data"), "-"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header = &out.stdout[..512];
    let field = |range: std::ops::Range<usize>| {
        let text = String::from_utf8_lossy(&header[range]);
        u32::from_str_radix(text.trim_matches(|c: char| c == '\0' || c == ' '), 8).unwrap()
    };
    assert_eq!(field(108..116), 65532, "/app/data owner uid");
    assert_eq!(field(116..124), 65532, "/app/data owner gid");
}

/// `docker stop` sends SIGTERM; the hub must exit 0 well inside the grace period (a SIGKILL
/// after the 10 s would show as exit 137).
fn stop_and_assert_clean_exit(stop: impl FnOnce(), container: &str) {
    let started = Instant::now();
    stop();
    let elapsed = started.elapsed();
    let state = docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}",
        container,
    ]);
    assert_eq!(state, "exited 0 false", "after stopping for {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(9),
        "stopping took {elapsed:?}"
    );
}

/// The deployment guide's "healthy start-up" log lines, in order, on the container's stdout.
fn assert_seed_log_lines(container: &str, hub_port: u16, cloud_url: &str) {
    let logs = run("docker", &["logs", container]);
    let stdout = String::from_utf8_lossy(&logs.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 6, "stdout: {stdout}");
    assert_eq!(
        lines[0],
        format!("[Hub] Server running on port {hub_port} (production)")
    );
    assert_eq!(lines[1], "[Hub] Version: 0.1.0");
    assert_eq!(lines[2], format!("[Hub] Cloud API: {cloud_url}"));
    assert_eq!(lines[3], "[PhoneHome] Registering with cloud...");
    assert!(
        lines[4].starts_with("[PhoneHome] Registered successfully — hubId: hub_"),
        "{stdout}"
    );
    assert_eq!(lines[5], "[PhoneHome] Periodic re-validation every 24h");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_run_the_image_is_healthy_registers_diagnoses_and_stops_cleanly() {
    if !docker_available() {
        return;
    }
    // Declared before `cleanup` so it is dropped after it: `down` needs the compose file.
    let staging = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let image = build_image(&mut cleanup, staging.path());
    let cloud = StandInCloud::start(&[KEY]).await;
    let cloud_url = format!("http://{CLOUD_HOST}:{}/api", cloud.addr.port());
    let hub_port = free_port();
    let name = unique("mftplus-hub-run");
    let volume = format!("{name}-data");
    cleanup.containers.push(name.clone());
    cleanup.volumes.push(volume.clone());
    // The guide's `docker run`, with the test's cloud and port; a 1 s health interval instead
    // of the image's 30 s so the wait is short.
    docker(&[
        "run",
        "-d",
        "--pull",
        "never",
        "--name",
        &name,
        "--restart",
        "unless-stopped",
        "--memory",
        "256m",
        "--network",
        "host",
        "--add-host",
        &format!("{CLOUD_HOST}:127.0.0.1"),
        "--health-interval",
        "1s",
        "-e",
        &format!("CLOUD_API_URL={cloud_url}"),
        "-e",
        &format!("HUB_REGISTRATION_KEY={KEY}"),
        "-e",
        &format!("HUB_PORT={hub_port}"),
        "-e",
        "HUB_LISTEN_ADDR=127.0.0.1",
        "-e",
        "NODE_ENV=production",
        "-e",
        "PHONE_HOME_INTERVAL_HOURS=24",
        "-e",
        "RUST_LOG=warn",
        "-v",
        &format!("{volume}:/app/data"),
        &image,
    ]);
    wait_healthy(&name);
    assert_registered_and_diagnosed(&cloud, hub_port).await;
    assert_restart_policy_and_memory_limit(&name);
    assert_not_root(&name);
    stop_and_assert_clean_exit(
        || {
            docker(&["stop", "-t", "10", &name]);
        },
        &name,
    );
    assert_seed_log_lines(&name, hub_port, &cloud_url);
    cloud.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_compose_up_runs_the_image_healthy_and_stop_is_clean() {
    if !docker_available() {
        return;
    }
    let Some(compose) = compose_command() else {
        assert!(
            std::env::var("MFTPLUS_TEST_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "MFTPLUS_TEST_REQUIRE_DOCKER=1 but neither `docker compose` nor `docker-compose` works \
             (scripts/install-test-deps.sh installs docker-compose)"
        );
        eprintln!("\n!!!!! SKIPPED: no `docker compose` / `docker-compose`: docker-compose.yml is NOT run !!!!!\n");
        return;
    };
    // Declared before `cleanup` so it is dropped after it: `down` needs the compose file.
    let staging = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    let image = build_image(&mut cleanup, staging.path());
    let cloud = StandInCloud::start(&[KEY]).await;
    let cloud_url = format!("http://{CLOUD_HOST}:{}/api", cloud.addr.port());
    let hub_port = free_port();
    let name = unique("mftplus-hub-compose");
    cleanup.containers.push(name.clone());
    // The repository's compose file with only what must differ on a shared test machine: the
    // test's image, name, cloud and port, the guide's minimum RAM as a limit, and host
    // networking instead of publishing 3002 (a port another hub may hold; compose refuses
    // published ports with host networking, so they go, and `build` goes with `--no-build`).
    // Everything else (restart policy, environment, volume, health check) is the file's own;
    // only the health interval drops to 1 s.
    let text = std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap();
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let hub = doc["services"]["hub"].as_mapping_mut().unwrap();
    hub.remove("ports");
    hub.remove("build");
    hub.insert("image".into(), image.clone().into());
    hub.insert("container_name".into(), name.clone().into());
    hub.insert("network_mode".into(), "host".into());
    hub.insert("mem_limit".into(), "256m".into());
    hub.insert(
        "extra_hosts".into(),
        vec![format!("{CLOUD_HOST}:127.0.0.1")].into(),
    );
    let env = hub["environment"].as_mapping_mut().unwrap();
    env.insert("CLOUD_API_URL".into(), cloud_url.clone().into());
    env.insert("HUB_PORT".into(), hub_port.to_string().into());
    env.insert("HUB_LISTEN_ADDR".into(), "127.0.0.1".into());
    env.insert("RUST_LOG".into(), "warn".into());
    hub["healthcheck"]
        .as_mapping_mut()
        .unwrap()
        .insert("interval".into(), "1s".into());
    let compose_file = staging.path().join("docker-compose.yml");
    std::fs::write(&compose_file, serde_yaml::to_string(&doc).unwrap()).unwrap();
    let project = unique("mftplus-hub-test").replace('-', "");
    let args: Vec<String> = vec![
        "-p".into(),
        project,
        "-f".into(),
        compose_file.to_str().unwrap().into(),
    ];
    cleanup.compose = Some((compose.clone(), args.clone()));
    let compose_run = |extra: &[&str]| {
        let out = Command::new(compose[0])
            .args(&compose[1..])
            .args(&args)
            .args(extra)
            // The deploy key comes from the environment, as from the guide's .env file.
            .env("HUB_REGISTRATION_KEY", KEY)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {extra:?}: {}{}",
            compose.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    compose_run(&["up", "-d", "--no-build"]);
    wait_healthy(&name);
    assert_registered_and_diagnosed(&cloud, hub_port).await;
    assert_restart_policy_and_memory_limit(&name);
    assert_not_root(&name);
    stop_and_assert_clean_exit(|| compose_run(&["stop", "--timeout", "10"]), &name);
    assert_seed_log_lines(&name, hub_port, &cloud_url);
    cloud.stop().await;
}

/// Lines of a Dockerfile after `FROM scratch`, with the COPY sources reduced to what they copy.
fn runtime_stage(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip_while(|l| l.trim() != "FROM scratch")
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.replace("--from=builder ", "")
                .replace(" /stage/", " ")
                .to_string()
        })
        .collect()
}

#[test]
fn both_dockerfiles_have_the_same_runtime_stage_and_it_is_non_root_with_a_self_health_check() {
    let root = repo_root();
    let main = runtime_stage(&root.join("Dockerfile"));
    let local = runtime_stage(&root.join("docker/Dockerfile.local"));
    assert_eq!(main, local, "Dockerfile and docker/Dockerfile.local differ");
    for expected in [
        "FROM scratch",
        "COPY --chown=65532:65532 data/ /app/data/",
        "ENV HUB_PORT=3002 HUB_DATA_DIR=/app/data",
        "USER 65532:65532",
        "VOLUME [\"/app/data\"]",
        "EXPOSE 3002",
        "HEALTHCHECK --interval=30s --timeout=5s --retries=3 --start-period=10s CMD [\"/mftplus\", \"healthcheck\"]",
        "ENTRYPOINT [\"/mftplus\", \"hub\"]",
    ] {
        assert!(main.iter().any(|l| l == expected), "missing {expected:?} in {main:#?}");
    }
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("cargo build --release --locked -p mftplus"));
    assert!(dockerfile.contains(" AS builder"));
}

#[test]
fn the_compose_file_mirrors_the_deployment_guides() {
    let text = std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let hub = &doc["services"]["hub"];
    let s = |v: &serde_yaml::Value| v.as_str().map(str::to_string);
    assert_eq!(s(&hub["image"]).as_deref(), Some("mftplus-hub:latest"));
    assert_eq!(s(&hub["build"]).as_deref(), Some("."));
    assert_eq!(s(&hub["container_name"]).as_deref(), Some("mftplus-hub"));
    assert_eq!(s(&hub["restart"]).as_deref(), Some("unless-stopped"));
    assert_eq!(s(&hub["ports"][0]).as_deref(), Some("3002:3002"));
    let env = &hub["environment"];
    let keys: Vec<_> = env
        .as_mapping()
        .unwrap()
        .keys()
        .filter_map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "CLOUD_API_URL",
            "HUB_REGISTRATION_KEY",
            "HUB_PORT",
            "NODE_ENV",
            "PHONE_HOME_INTERVAL_HOURS"
        ]
    );
    assert!(s(&env["CLOUD_API_URL"])
        .unwrap()
        .contains("https://api.mftplus.co.za/api"));
    assert_eq!(
        s(&env["HUB_REGISTRATION_KEY"]).as_deref(),
        Some("${HUB_REGISTRATION_KEY}")
    );
    assert_eq!(s(&env["HUB_PORT"]).as_deref(), Some("3002"));
    assert_eq!(s(&env["NODE_ENV"]).as_deref(), Some("production"));
    assert_eq!(s(&env["PHONE_HOME_INTERVAL_HOURS"]).as_deref(), Some("24"));
    assert_eq!(
        s(&hub["volumes"][0]).as_deref(),
        Some("mftplus-hub-data:/app/data")
    );
    assert!(doc["volumes"]
        .as_mapping()
        .unwrap()
        .contains_key("mftplus-hub-data"));
    let check = &hub["healthcheck"];
    let test: Vec<_> = check["test"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(test, ["CMD", "/mftplus", "healthcheck"]);
    assert_eq!(s(&check["interval"]).as_deref(), Some("30s"));
    assert_eq!(s(&check["timeout"]).as_deref(), Some("5s"));
    assert_eq!(check["retries"].as_u64(), Some(3));
    assert_eq!(s(&check["start_period"]).as_deref(), Some("10s"));
}
