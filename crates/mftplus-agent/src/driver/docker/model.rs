//! The pure half of the Docker driver: how a guest spec becomes an engine request, and how
//! the engine's description of a container becomes an observed guest. Kept apart from the
//! transport so every rule about names, labels and limits is unit-tested without an engine.

use super::DRIVER;
use crate::driver::{DriverError, ObservedGuest};
use mftplus_types::fleet::{GuestKind, GuestSpec, GuestStatus};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Marks a container as this agent's; `list` filters on exactly this label.
pub const LABEL_AGENT: &str = "io.mftplus.agent";
pub const LABEL_GUEST: &str = "io.mftplus.guest";
pub const LABEL_IMAGE: &str = "io.mftplus.image";
pub const LABEL_DISK_GB: &str = "io.mftplus.disk_gb";
const NAME_PREFIX: &str = "mftplus-";
const MIB: u64 = 1 << 20;
const NANOS_PER_CORE: u64 = 1_000_000_000;

/// The container name of a guest. Guest ids are validated, and the prefix contains letters
/// outside hex, so the name can never be taken by the engine for a container-id prefix.
pub fn container_name(guest_id: &str) -> String {
    format!("{NAME_PREFIX}{guest_id}")
}

/// Guest ids become container names and label values: `[a-z0-9][a-z0-9_.-]{0,62}`.
pub fn validate_guest_id(guest_id: &str) -> Result<(), DriverError> {
    let bytes = guest_id.as_bytes();
    let first_ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = bytes
        .iter()
        .skip(1)
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok && bytes.len() <= 63 {
        Ok(())
    } else {
        Err(DriverError::InvalidSpec {
            guest_id: guest_id.into(),
            why: "a guest id must match [a-z0-9][a-z0-9_.-]{0,62}".into(),
        })
    }
}

/// Checks the spec is one this driver can create, and returns (NanoCpus, Memory bytes) with
/// 0 meaning "no limit", as the engine reads them at creation.
pub(super) fn limits(guest_id: &str, spec: &GuestSpec) -> Result<(i64, i64), DriverError> {
    validate_guest_id(guest_id)?;
    if spec.kind != GuestKind::Container {
        return Err(DriverError::Unsupported {
            driver: DRIVER,
            kind: spec.kind,
        });
    }
    let invalid = |why: String| DriverError::InvalidSpec {
        guest_id: guest_id.into(),
        why,
    };
    // u32 cores times 1e9 always fits in i64; memory is the one that can overflow.
    let nano_cpus = i64::from(spec.cpu_cores) * NANOS_PER_CORE as i64;
    let memory = spec
        .memory_mb
        .checked_mul(MIB)
        .and_then(|b| i64::try_from(b).ok())
        .ok_or_else(|| invalid(format!("memory_mb {} is out of range", spec.memory_mb)))?;
    Ok((nano_cpus, memory))
}

pub(super) fn create_body(
    owner: &str,
    guest_id: &str,
    spec: &GuestSpec,
    data: Option<&std::path::Path>,
) -> Result<Value, DriverError> {
    let (nano_cpus, memory) = limits(guest_id, spec)?;
    let image = &spec.image;
    if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DriverError::InvalidSpec {
            guest_id: guest_id.into(),
            why: format!("`{}` is not an image reference", spec.image),
        });
    }
    let labels: BTreeMap<&str, String> = [
        (LABEL_AGENT, owner.to_string()),
        (LABEL_GUEST, guest_id.to_string()),
        (LABEL_IMAGE, spec.image.clone()),
        (LABEL_DISK_GB, spec.disk_gb.to_string()),
    ]
    .into_iter()
    .collect();
    Ok(json!({
        "Image": spec.image,
        "Labels": labels,
        "HostConfig": {
            "NanoCpus": nano_cpus,
            "Memory": memory,
            // Equal to Memory: no swap on top of the limit (0 and 0: neither is limited).
            "MemorySwap": memory,
            // The agent decides restarts from the desired state; the engine must not race it.
            "RestartPolicy": { "Name": "no" },
            "Binds": data.map(|dir| vec![format!("{}:{GUEST_DATA_MOUNT}", dir.display())]),
        },
    }))
}

/// Where a guest sees its data folder.
pub const GUEST_DATA_MOUNT: &str = "/data";

/// The body of `POST /containers/{id}/update`. The engine reads 0 as "leave unchanged", and it
/// refuses -1 for memory, so a limit cannot be lifted in place: that is refused here with the
/// reason, instead of answering `Ok` while the old limit stays.
pub(super) fn update_body(
    current: &HostConfig,
    nano_cpus: i64,
    memory: i64,
) -> Result<Value, String> {
    let mut lifted = Vec::new();
    if nano_cpus == 0 && current.nano_cpus != 0 {
        lifted.push("CPU");
    }
    if memory == 0 && current.memory != 0 {
        lifted.push("memory");
    }
    if !lifted.is_empty() {
        return Err(format!(
            "the engine cannot lift a {} limit of a container in place; recreate the guest \
             to run it unlimited",
            lifted.join(" and ")
        ));
    }
    let mut body = json!({ "NanoCpus": nano_cpus });
    if memory != 0 {
        body["Memory"] = json!(memory);
        body["MemorySwap"] = json!(memory);
    }
    Ok(body)
}

pub(super) fn is_ours(inspect: &Inspect, owner: &str, guest_id: &str) -> bool {
    let labels = inspect.config.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    label(LABEL_AGENT) == Some(owner) && label(LABEL_GUEST) == Some(guest_id)
}

/// The guest a container is, when it is one of ours under its guest's name.
pub(super) fn observe(inspect: &Inspect, owner: &str) -> Option<ObservedGuest> {
    let labels = inspect.config.labels.as_ref()?;
    let guest_id = labels.get(LABEL_GUEST)?;
    validate_guest_id(guest_id).ok()?;
    let name_matches = inspect.name.trim_start_matches('/') == container_name(guest_id);
    if !is_ours(inspect, owner, guest_id) || !name_matches {
        return None;
    }
    let state = &inspect.state;
    // `restarting` counts as running: the engine is bringing the process back on its own.
    let status = match state.status.as_str() {
        "running" | "restarting" => GuestStatus::Running,
        _ if state.running && !state.paused => GuestStatus::Running,
        _ => GuestStatus::Stopped,
    };
    let spec = GuestSpec {
        kind: GuestKind::Container,
        cpu_cores: ceil_div(inspect.host_config.nano_cpus, NANOS_PER_CORE) as u32,
        memory_mb: ceil_div(inspect.host_config.memory, MIB),
        disk_gb: labels
            .get(LABEL_DISK_GB)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        image: labels
            .get(LABEL_IMAGE)
            .cloned()
            .unwrap_or_else(|| inspect.config.image.clone()),
        restore_from: None,
        extra: BTreeMap::new(),
    };
    Some(ObservedGuest {
        guest_id: guest_id.clone(),
        status,
        spec,
        restart_count: inspect.restart_count,
        detail: detail(state),
    })
}

/// Rounded up, so a fractional limit set by hand never reads as 0, which means "unlimited".
fn ceil_div(value: i64, unit: u64) -> u64 {
    u64::try_from(value).map_or(0, |v| v.div_ceil(unit))
}

fn detail(state: &State) -> Option<String> {
    if state.status.is_empty() {
        return None;
    }
    let mut out = match state.status.as_str() {
        "exited" | "dead" => format!("{} ({})", state.status, state.exit_code),
        _ => state.status.clone(),
    };
    if state.oom_killed {
        out.push_str(", out of memory");
    }
    if !state.error.is_empty() {
        let error: String = state.error.chars().take(200).collect();
        out.push_str(": ");
        out.push_str(&error);
    }
    Some(out)
}

#[derive(Debug, Deserialize)]
pub(super) struct Summary {
    #[serde(rename = "Id")]
    pub(super) id: String,
}

/// The parts of `GET /containers/{id}/json` the driver reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Inspect {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) restart_count: u64,
    pub(super) state: State,
    pub(super) host_config: HostConfig,
    pub(super) config: Config,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct State {
    pub(super) status: String,
    pub(super) running: bool,
    pub(super) paused: bool,
    pub(super) exit_code: i64,
    #[serde(rename = "OOMKilled")]
    pub(super) oom_killed: bool,
    pub(super) error: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct HostConfig {
    pub(super) nano_cpus: i64,
    pub(super) memory: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct Config {
    pub(super) image: String,
    /// `null` when a container has no labels at all.
    pub(super) labels: Option<BTreeMap<String, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cpu: u32, memory_mb: u64) -> GuestSpec {
        GuestSpec {
            kind: GuestKind::Container,
            cpu_cores: cpu,
            memory_mb,
            disk_gb: 20,
            image: "registry.local/app:1.2".into(),
            ..GuestSpec::default()
        }
    }

    fn inspect_json(labels: Value, state: Value) -> Inspect {
        serde_json::from_value(json!({
            "Id": "abc123",
            "Name": "/mftplus-web-1",
            "RestartCount": 3,
            "State": state,
            "HostConfig": { "NanoCpus": 2_000_000_000i64, "Memory": 512 * MIB, "MemorySwap": 512 * MIB },
            "Config": { "Image": "sha256:deadbeef", "Labels": labels },
            "Unknown": { "fields": "are ignored" },
        }))
        .unwrap()
    }

    fn our_labels() -> Value {
        json!({
            "io.mftplus.agent": "1",
            "io.mftplus.guest": "web-1",
            "io.mftplus.image": "registry.local/app:1.2",
            "io.mftplus.disk_gb": "20",
        })
    }

    #[test]
    fn guest_ids() {
        for ok in ["a", "web-1", "0db", "a.b_c-d", &"x".repeat(63)] {
            assert!(validate_guest_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "_a",
            "Web",
            "a b",
            "a/b",
            "a:b",
            "é",
            &"x".repeat(64),
        ] {
            let err = validate_guest_id(bad).unwrap_err();
            assert_eq!(err.code(), "guest_invalid_spec", "{bad}");
        }
        assert_eq!(container_name("web-1"), "mftplus-web-1");
    }

    #[test]
    fn create_body_carries_labels_and_limits() {
        let body = create_body("1", "web-1", &spec(2, 512), None).unwrap();
        assert_eq!(body["Image"], "registry.local/app:1.2");
        assert_eq!(body["Labels"], our_labels());
        let host = &body["HostConfig"];
        assert_eq!(host["NanoCpus"], 2_000_000_000i64);
        assert_eq!(host["Memory"], 512 * MIB);
        assert_eq!(host["MemorySwap"], 512 * MIB);
        assert_eq!(host["RestartPolicy"]["Name"], "no");
        assert_eq!(host["Binds"], Value::Null);
        let with_data = create_body(
            "1",
            "web-1",
            &spec(2, 512),
            Some(std::path::Path::new("/g/web-1")),
        )
        .unwrap();
        assert_eq!(
            with_data["HostConfig"]["Binds"],
            serde_json::json!(["/g/web-1:/data"])
        );

        let unlimited = create_body("1", "web-1", &spec(0, 0), None).unwrap();
        assert_eq!(unlimited["HostConfig"]["NanoCpus"], 0);
        assert_eq!(unlimited["HostConfig"]["Memory"], 0);
        assert_eq!(unlimited["HostConfig"]["MemorySwap"], 0);
    }

    #[test]
    fn create_body_refusals() {
        let vm = GuestSpec {
            kind: GuestKind::Vm,
            ..spec(1, 64)
        };
        assert_eq!(
            create_body("1", "web-1", &vm, None).unwrap_err().code(),
            "driver_unsupported"
        );
        assert_eq!(
            create_body("1", "Web", &spec(1, 64), None)
                .unwrap_err()
                .code(),
            "guest_invalid_spec"
        );
        for image in ["", "  ", "a b", "app\n"] {
            let s = GuestSpec {
                image: image.into(),
                ..spec(1, 64)
            };
            assert_eq!(
                create_body("1", "web-1", &s, None).unwrap_err().code(),
                "guest_invalid_spec"
            );
        }
        let huge = spec(1, u64::MAX / 2);
        assert_eq!(
            create_body("1", "web-1", &huge, None).unwrap_err().code(),
            "guest_invalid_spec"
        );
        let max_cpu = limits("web-1", &spec(u32::MAX, 0)).unwrap();
        assert_eq!(max_cpu.0, i64::from(u32::MAX) * 1_000_000_000);
    }

    #[test]
    fn observes_a_running_guest() {
        let running = json!({ "Status": "running", "Running": true, "ExitCode": 0 });
        let guest = observe(&inspect_json(our_labels(), running), "1").unwrap();
        assert_eq!(guest.guest_id, "web-1");
        assert_eq!(guest.status, GuestStatus::Running);
        assert_eq!(guest.spec, spec(2, 512));
        assert_eq!(guest.restart_count, 3);
        assert_eq!(guest.detail.as_deref(), Some("running"));
    }

    #[test]
    fn observes_stopped_states_with_detail() {
        let cases = [
            (
                json!({ "Status": "exited", "ExitCode": 137 }),
                "exited (137)",
            ),
            (
                json!({ "Status": "exited", "ExitCode": 137, "OOMKilled": true }),
                "exited (137), out of memory",
            ),
            (json!({ "Status": "created" }), "created"),
            (
                json!({ "Status": "paused", "Running": true, "Paused": true }),
                "paused",
            ),
            (
                json!({ "Status": "dead", "ExitCode": 1, "Error": "driver failed" }),
                "dead (1): driver failed",
            ),
        ];
        for (state, want) in cases {
            let guest = observe(&inspect_json(our_labels(), state), "1").unwrap();
            assert_eq!(guest.status, GuestStatus::Stopped, "{want}");
            assert_eq!(guest.detail.as_deref(), Some(want));
        }
        let restarting = json!({ "Status": "restarting", "Running": true });
        let guest = observe(&inspect_json(our_labels(), restarting), "1").unwrap();
        assert_eq!(guest.status, GuestStatus::Running);
    }

    #[test]
    fn only_our_containers_under_their_names_are_guests() {
        let state = json!({ "Status": "running", "Running": true });
        assert!(observe(&inspect_json(Value::Null, state.clone()), "1").is_none());
        let mut foreign = our_labels();
        foreign["io.mftplus.agent"] = json!("0");
        assert!(observe(&inspect_json(foreign, state.clone()), "1").is_none());
        let mut other_guest = our_labels();
        other_guest["io.mftplus.guest"] = json!("web-2");
        assert!(observe(&inspect_json(other_guest, state.clone()), "1").is_none());
        let mut bad_id = our_labels();
        bad_id["io.mftplus.guest"] = json!("../x");
        assert!(observe(&inspect_json(bad_id, state.clone()), "1").is_none());

        let ours = inspect_json(our_labels(), state);
        assert!(is_ours(&ours, "1", "web-1"));
        assert!(!is_ours(&ours, "1", "web-2"));
    }

    #[test]
    fn observed_limits_round_up_and_labels_fill_gaps() {
        let mut inspect = inspect_json(
            json!({ "io.mftplus.agent": "1", "io.mftplus.guest": "web-1" }),
            json!({ "Status": "exited" }),
        );
        inspect.host_config.nano_cpus = 500_000_000;
        inspect.host_config.memory = 6 * MIB as i64 + 1;
        let guest = observe(&inspect, "1").unwrap();
        assert_eq!(guest.spec.cpu_cores, 1);
        assert_eq!(guest.spec.memory_mb, 7);
        assert_eq!(guest.spec.disk_gb, 0);
        assert_eq!(guest.spec.image, "sha256:deadbeef");
    }

    #[test]
    fn update_body_never_pretends_to_lift_a_limit() {
        let limited = HostConfig {
            nano_cpus: 1_000_000_000,
            memory: 64 * MIB as i64,
        };
        let body = update_body(&limited, 2_000_000_000, 128 * MIB as i64).unwrap();
        assert_eq!(
            body,
            json!({ "NanoCpus": 2_000_000_000i64, "Memory": 128 * MIB, "MemorySwap": 128 * MIB })
        );
        let err = update_body(&limited, 0, 0).unwrap_err();
        assert!(err.contains("CPU and memory"), "{err}");
        assert!(update_body(&limited, 1, 0).unwrap_err().contains("memory"));
        let unlimited = HostConfig::default();
        assert_eq!(
            update_body(&unlimited, 0, 0).unwrap(),
            json!({ "NanoCpus": 0 })
        );
    }
}
