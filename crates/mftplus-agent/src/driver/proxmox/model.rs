//! The pure half of the Proxmox VE driver: how guests are marked and recognised, how a PVE
//! guest config becomes an observed guest, and how a spec becomes config parameters. Kept
//! apart from the transport so every rule about ownership and sizes is unit-tested without a
//! PVE.
//!
//! Ownership: a guest is this agent's when its description (PVE's "Notes") carries the marker
//! lines this driver wrote at creation, naming this agent's host id *and the guest's own
//! VMID*. Cloning such a VM by hand in PVE copies the notes but gives the copy a new VMID, so
//! the copy is not mistaken for the guest. The tag `mftplus-<host_id>` is the visible mark in
//! the PVE UI and lets `list` skip reading other guests' configs.

use super::DRIVER;
use crate::driver::docker::validate_guest_id;
use crate::driver::{DriverError, ObservedGuest};
use mftplus_types::fleet::{GuestKind, GuestSpec, GuestStatus};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Guests' names begin with this (a listing entry with such a name has its config read even
/// without the tag, so a creation cut short before the tag was set is still found).
pub const NAME_PREFIX: &str = "mftplus-";
const MARKER_HEADER: &str = "Managed by the MFTPlus agent: keep the mftplus.* lines as they are.";
const KEY_HOST: &str = "mftplus.host";
const KEY_GUEST: &str = "mftplus.guest";
const KEY_VMID: &str = "mftplus.vmid";
const KEY_IMAGE: &str = "mftplus.image";
const GIB: u64 = 1 << 30;
/// Below this PVE itself refuses a guest; a spec asking less is a mistake.
const MIN_MEMORY_MB: u64 = 16;

/// PVE's two guest types, which are also the path segment of their API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Qemu,
    Lxc,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Qemu, Kind::Lxc];

    pub fn of(kind: GuestKind) -> Kind {
        match kind {
            GuestKind::Vm => Kind::Qemu,
            GuestKind::Container => Kind::Lxc,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Kind::Qemu => "qemu",
            Kind::Lxc => "lxc",
        }
    }

    pub fn guest_kind(self) -> GuestKind {
        match self {
            Kind::Qemu => GuestKind::Vm,
            Kind::Lxc => GuestKind::Container,
        }
    }

    /// The parameter that names the guest: a VM's `name`, a container's `hostname`.
    pub fn name_param(self) -> &'static str {
        match self {
            Kind::Qemu => "name",
            Kind::Lxc => "hostname",
        }
    }
}

/// One entry of `GET /nodes/{node}/qemu` or `/lxc`.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    #[serde(deserialize_with = "number")]
    pub vmid: u32,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub tags: Option<String>,
    #[serde(default)]
    pub template: Option<Value>,
    #[serde(default)]
    pub lock: Option<String>,
}

impl Entry {
    pub fn is_template(&self) -> bool {
        self.template.as_ref().is_some_and(truthy)
    }

    /// Worth reading the config of: carries this agent's tag, or a name this driver gives.
    /// Templates never are: a guest is a clone, never the golden image itself.
    pub fn is_candidate(&self, owner: &str) -> bool {
        !self.is_template()
            && (has_tag(self.tags.as_deref(), &tag(owner))
                || self
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(NAME_PREFIX)))
    }
}

fn number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let value = Value::deserialize(d)?;
    as_u64(&value)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("not a VMID: {value}")))
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_u64().is_some_and(|n| n != 0),
        Value::String(s) => matches!(s.as_str(), "1" | "true" | "yes" | "on"),
        _ => false,
    }
}

/// PVE answers numbers as JSON numbers or as strings depending on version and field.
pub fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The tag that marks this agent's guests in the PVE UI.
pub fn tag(owner: &str) -> String {
    format!("{NAME_PREFIX}{owner}")
}

/// Host ids become tags: PVE allows `[a-z0-9_][a-z0-9_+.-]*` (we keep to lowercase).
pub fn validate_owner(owner: &str) -> Result<(), String> {
    let bytes = owner.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 100
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "host id {owner:?} cannot be a PVE tag ([a-z0-9_.-]); the proxmox driver marks \
             guests with it"
        ))
    }
}

/// PVE keeps tags as one string separated by `;` (older versions also accept `,` and spaces).
pub fn split_tags(tags: Option<&str>) -> Vec<String> {
    tags.unwrap_or_default()
        .split([';', ',', ' '])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn has_tag(tags: Option<&str>, tag: &str) -> bool {
    split_tags(tags).iter().any(|t| t.eq_ignore_ascii_case(tag))
}

/// The existing tags plus `tag`, in PVE's form; `None` when it is there already.
pub fn with_tag(tags: Option<&str>, tag: &str) -> Option<String> {
    if has_tag(tags, tag) {
        return None;
    }
    let mut all = split_tags(tags);
    all.push(tag.to_string());
    Some(all.join(";"))
}

/// A guest's PVE name: DNS-safe (PVE refuses `_` in names), at most 63 characters. Only for
/// people reading the PVE UI; identity is the description marker.
pub fn vm_name(guest_id: &str) -> String {
    let mut name: String = format!("{NAME_PREFIX}{guest_id}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    while name.ends_with('-') {
        name.pop();
    }
    name
}

/// What the description marker says.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub host: String,
    pub guest_id: String,
    pub vmid: u32,
    pub image: String,
}

impl Marker {
    pub fn description(&self) -> String {
        format!(
            "{MARKER_HEADER}\n{KEY_HOST}={}\n{KEY_GUEST}={}\n{KEY_VMID}={}\n{KEY_IMAGE}={}\n",
            self.host, self.guest_id, self.vmid, self.image
        )
    }

    /// The marker in a description, when it is whole and well-formed.
    pub fn parse(description: &str) -> Option<Marker> {
        let value = |key: &str| {
            description.lines().find_map(|line| {
                let (k, v) = line.trim().split_once('=')?;
                (k.trim() == key).then(|| v.trim().to_string())
            })
        };
        let marker = Marker {
            host: value(KEY_HOST)?,
            guest_id: value(KEY_GUEST)?,
            vmid: value(KEY_VMID)?.parse().ok()?,
            image: value(KEY_IMAGE)?,
        };
        validate_guest_id(&marker.guest_id).ok()?;
        Some(marker)
    }

    /// This agent's guest, sitting at the VMID it was created at.
    pub fn owns(&self, owner: &str, vmid: u32) -> bool {
        self.host == owner && self.vmid == vmid
    }
}

/// How the spec's `image` is read.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A template (VM or container) by VMID.
    TemplateId(u32),
    /// A template by name (the unique template with that name).
    TemplateName(String),
    /// A container template archive (`storage:vztmpl/…`), containers only.
    OsTemplate(String),
}

/// Checks the spec is one this driver can create as `kind`.
pub fn check_spec(guest_id: &str, spec: &GuestSpec) -> Result<(Kind, Source), DriverError> {
    validate_guest_id(guest_id)?;
    let kind = Kind::of(spec.kind);
    let invalid = |why: String| DriverError::InvalidSpec {
        guest_id: guest_id.into(),
        why,
    };
    check_limits(guest_id, spec)?;
    let image = spec.image.trim();
    if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(format!(
            "`{}` is not a template VMID, template name or container template volume",
            spec.image
        )));
    }
    let source = if let Ok(vmid) = image.parse::<u32>() {
        Source::TemplateId(vmid)
    } else if image.contains(':') {
        if kind != Kind::Lxc {
            return Err(invalid(format!(
                "`{image}` is a volume; a VM is cloned from a template (its VMID or name)"
            )));
        }
        Source::OsTemplate(image.to_string())
    } else {
        Source::TemplateName(image.to_string())
    };
    Ok((kind, source))
}

/// CPU, memory and disk must be stated: PVE has no "unlimited" guest, and the observed size
/// would never equal a 0, so the guest would be resized (or its disk "shrunk") forever.
pub fn check_limits(guest_id: &str, spec: &GuestSpec) -> Result<(), DriverError> {
    validate_guest_id(guest_id)?;
    if spec.cpu_cores == 0 || spec.memory_mb < MIN_MEMORY_MB || spec.disk_gb == 0 {
        return Err(DriverError::InvalidSpec {
            guest_id: guest_id.into(),
            why: format!(
                "a Proxmox guest needs cpu_cores ≥ 1, memory_mb ≥ {MIN_MEMORY_MB} and disk_gb ≥ 1 \
                 (got {}, {} and {})",
                spec.cpu_cores, spec.memory_mb, spec.disk_gb
            ),
        });
    }
    Ok(())
}

/// The config parameters for CPU and memory. A VM's vCPUs are `cores × sockets`, so sockets
/// is pinned to 1 and `cpu_cores` is the VM's whole count.
pub fn limit_params(kind: Kind, spec: &GuestSpec) -> Vec<(&'static str, String)> {
    let mut params = vec![
        ("cores", spec.cpu_cores.to_string()),
        ("memory", spec.memory_mb.to_string()),
    ];
    if kind == Kind::Qemu {
        params.push(("sockets", "1".into()));
    }
    params
}

/// The disk that is the guest's size: a container's `rootfs`; a VM's boot disk (the first
/// disk in `boot: order=…`, else the legacy `bootdisk`, else the first of scsi0, virtio0,
/// sata0, ide0), never a CD-ROM.
pub fn main_disk(kind: Kind, config: &Map<String, Value>) -> Option<String> {
    if kind == Kind::Lxc {
        return config.contains_key("rootfs").then(|| "rootfs".to_string());
    }
    let is_disk = |key: &str| {
        let bus_ok = ["scsi", "virtio", "sata", "ide"].iter().any(|bus| {
            key.strip_prefix(bus)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
        bus_ok
            && config
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.contains("media=cdrom") && !v.starts_with("none"))
    };
    let from_boot = config
        .get("boot")
        .and_then(Value::as_str)
        .and_then(|b| b.strip_prefix("order="))
        .and_then(|order| order.split([';', ',']).map(str::trim).find(|k| is_disk(k)))
        .map(str::to_string);
    from_boot
        .or_else(|| {
            config
                .get("bootdisk")
                .and_then(Value::as_str)
                .filter(|k| is_disk(k))
                .map(str::to_string)
        })
        .or_else(|| {
            ["scsi0", "virtio0", "sata0", "ide0"]
                .into_iter()
                .find(|k| is_disk(k))
                .map(str::to_string)
        })
}

/// The `size=` of a disk property string in whole GiB, rounded up (`32G`, `8192M`, `1T`).
pub fn disk_gb(property: &str) -> Option<u64> {
    let size = property
        .split(',')
        .find_map(|part| part.trim().strip_prefix("size="))?;
    let (digits, unit) = size.split_at(
        size.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(size.len()),
    );
    let amount: u64 = digits.parse().ok()?;
    let bytes = match unit {
        "" => amount,
        "K" => amount.checked_mul(1 << 10)?,
        "M" => amount.checked_mul(1 << 20)?,
        "G" => amount.checked_mul(GIB)?,
        "T" => amount.checked_mul(1 << 40)?,
        _ => return None,
    };
    Some(bytes.div_ceil(GIB))
}

/// The memory of a config: a number, or (PVE 8.1+ VMs) a property string `[current=]N,…`.
fn memory_mb(config: &Map<String, Value>) -> u64 {
    match config.get("memory") {
        Some(Value::String(s)) => s
            .split(',')
            .find_map(|part| {
                let part = part.trim();
                part.strip_prefix("current=").unwrap_or(part).parse().ok()
            })
            .unwrap_or(0),
        Some(other) => as_u64(other).unwrap_or(0),
        None => 0,
    }
}

/// How many vCPUs the config gives: `cores × sockets` for a VM (PVE's defaults are 1 and 1);
/// a container's `cores` (absent = every host core, reported 0).
fn cpu_cores(kind: Kind, config: &Map<String, Value>) -> u32 {
    let get = |key: &str| config.get(key).and_then(as_u64);
    let cores = match kind {
        Kind::Qemu => get("cores").unwrap_or(1) * get("sockets").unwrap_or(1),
        Kind::Lxc => get("cores").unwrap_or(0),
    };
    u32::try_from(cores).unwrap_or(u32::MAX)
}

/// The guest as the reconciler sees it.
pub fn observe(
    kind: Kind,
    entry: &Entry,
    config: &Map<String, Value>,
    marker: &Marker,
) -> ObservedGuest {
    let disk_gb = main_disk(kind, config)
        .and_then(|key| config.get(&key).and_then(Value::as_str).and_then(disk_gb))
        .unwrap_or(0);
    let (status, detail) = match (entry.lock.as_deref(), entry.status.as_deref()) {
        (Some(lock), _) if !lock.is_empty() => {
            (GuestStatus::Unknown, Some(format!("locked ({lock})")))
        }
        (_, Some("running")) => (GuestStatus::Running, None),
        (_, Some("stopped")) => (GuestStatus::Stopped, None),
        (_, other) => (GuestStatus::Unknown, other.map(str::to_string)),
    };
    ObservedGuest {
        guest_id: marker.guest_id.clone(),
        status,
        spec: GuestSpec {
            kind: kind.guest_kind(),
            cpu_cores: cpu_cores(kind, config),
            memory_mb: memory_mb(config),
            disk_gb,
            image: marker.image.clone(),
            ..GuestSpec::default()
        },
        restart_count: 0,
        detail,
    }
}

/// PVE cannot shrink a disk; saying so beats a loop of failing resizes.
pub fn shrink_refused(guest_id: &str, from_gb: u64, to_gb: u64) -> DriverError {
    DriverError::Refused {
        driver: DRIVER,
        action: "resize",
        guest_id: guest_id.into(),
        why: format!(
            "Proxmox VE cannot shrink a disk ({from_gb} GB to {to_gb} GB); recreate the guest \
             from its image to get a smaller one"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_marker_round_trips_and_binds_the_vmid() {
        let marker = Marker {
            host: "h-1".into(),
            guest_id: "web_1".into(),
            vmid: 123,
            image: "9000".into(),
        };
        let text = format!("operator's note\n{}more notes\n", marker.description());
        let parsed = Marker::parse(&text).unwrap();
        assert_eq!(parsed, marker);
        assert!(parsed.owns("h-1", 123));
        assert!(
            !parsed.owns("h-1", 124),
            "a hand-made clone of the guest is not the guest"
        );
        assert!(!parsed.owns("h-2", 123));
        assert_eq!(Marker::parse("mftplus.host=h-1\nmftplus.guest=web\n"), None);
        let bad_id = marker.description().replace("web_1", "Web 1");
        assert_eq!(Marker::parse(&bad_id), None);
    }

    #[test]
    fn tags_and_names() {
        assert_eq!(tag("h-1"), "mftplus-h-1");
        assert!(has_tag(Some("golden;mftplus-h-1"), "mftplus-h-1"));
        assert!(has_tag(Some("golden,MFTPLUS-H-1"), "mftplus-h-1"));
        assert!(!has_tag(Some("mftplus-h-10"), "mftplus-h-1"));
        assert!(!has_tag(None, "mftplus-h-1"));
        assert_eq!(with_tag(Some("golden"), "t").as_deref(), Some("golden;t"));
        assert_eq!(with_tag(None, "t").as_deref(), Some("t"));
        assert_eq!(with_tag(Some("t;x"), "t"), None);
        assert_eq!(vm_name("web_1.a-"), "mftplus-web-1-a");
        assert_eq!(vm_name(&"a".repeat(63)).len(), 63);
        assert!(validate_owner("h-0123456789abcdef").is_ok());
        assert!(validate_owner("H-1").is_err());
        assert!(validate_owner("").is_err());
        assert!(validate_owner("a;b").is_err());
    }

    #[test]
    fn entries_and_candidates() {
        let entry: Entry = serde_json::from_value(json!({
            "vmid": "101", "name": "mftplus-web", "status": "stopped", "template": ""
        }))
        .unwrap();
        assert_eq!(entry.vmid, 101);
        assert!(entry.is_candidate("h-1"));
        let tagged: Entry =
            serde_json::from_value(json!({"vmid": 7, "name": "x", "tags": "mftplus-h-1"})).unwrap();
        assert!(tagged.is_candidate("h-1"));
        assert!(!tagged.is_candidate("h-2"));
        let template: Entry =
            serde_json::from_value(json!({"vmid": 9000, "name": "mftplus-gold", "template": 1}))
                .unwrap();
        assert!(template.is_template());
        assert!(!template.is_candidate("h-1"));
    }

    #[test]
    fn specs() {
        let spec = |kind, image: &str, disk_gb| GuestSpec {
            kind,
            cpu_cores: 2,
            memory_mb: 2048,
            disk_gb,
            image: image.into(),
            ..GuestSpec::default()
        };
        let vm = |image| check_spec("web", &spec(GuestKind::Vm, image, 10));
        assert_eq!(vm("9000").unwrap(), (Kind::Qemu, Source::TemplateId(9000)));
        assert_eq!(
            vm("debian-12").unwrap().1,
            Source::TemplateName("debian-12".into())
        );
        assert_eq!(
            vm("local:vztmpl/x.tar.zst").unwrap_err().code(),
            "guest_invalid_spec"
        );
        assert_eq!(vm("a b").unwrap_err().code(), "guest_invalid_spec");
        let ct = check_spec(
            "web",
            &spec(GuestKind::Container, "local:vztmpl/d.tar.zst", 8),
        )
        .unwrap();
        assert_eq!(
            ct,
            (
                Kind::Lxc,
                Source::OsTemplate("local:vztmpl/d.tar.zst".into())
            )
        );
        let no_disk = check_spec(
            "web",
            &spec(GuestKind::Container, "local:vztmpl/d.tar.zst", 0),
        );
        assert_eq!(no_disk.unwrap_err().code(), "guest_invalid_spec");
        let mut zero = spec(GuestKind::Vm, "9000", 10);
        zero.cpu_cores = 0;
        assert_eq!(
            check_spec("web", &zero).unwrap_err().code(),
            "guest_invalid_spec"
        );
        assert_eq!(
            check_spec("Web", &spec(GuestKind::Vm, "9000", 10))
                .unwrap_err()
                .code(),
            "guest_invalid_spec"
        );
        assert_eq!(
            check_spec("web", &spec(GuestKind::Vm, "9000", 0))
                .unwrap_err()
                .code(),
            "guest_invalid_spec"
        );
        let params = limit_params(Kind::Qemu, &spec(GuestKind::Vm, "9000", 0));
        assert!(params.contains(&("sockets", "1".into())));
        assert!(!limit_params(Kind::Lxc, &spec(GuestKind::Vm, "9000", 0))
            .iter()
            .any(|(k, _)| *k == "sockets"));
    }

    #[test]
    fn disks_and_observation() {
        assert_eq!(disk_gb("local-lvm:vm-1-disk-0,size=32G"), Some(32));
        assert_eq!(
            disk_gb("local:1/vm-1-disk-0.qcow2,format=qcow2,size=8193M"),
            Some(9)
        );
        assert_eq!(disk_gb("x,size=1T"), Some(1024));
        assert_eq!(disk_gb("x,size=3Q"), None);
        assert_eq!(disk_gb("x"), None);
        let config = map(json!({
            "boot": "order=ide2;virtio1;net0",
            "ide2": "local:iso/d.iso,media=cdrom",
            "scsi0": "local-lvm:vm-5-disk-0,size=4G",
            "virtio1": "local-lvm:vm-5-disk-1,size=20G",
            "cores": 2, "sockets": "2", "memory": "current=3072",
        }));
        assert_eq!(main_disk(Kind::Qemu, &config).as_deref(), Some("virtio1"));
        let legacy =
            map(json!({"bootdisk": "sata0", "sata0": "s:v,size=1G", "scsi0": "s:w,size=2G"}));
        assert_eq!(main_disk(Kind::Qemu, &legacy).as_deref(), Some("sata0"));
        let plain = map(json!({"ide0": "s:v,size=1G", "ide2": "none,media=cdrom"}));
        assert_eq!(main_disk(Kind::Qemu, &plain).as_deref(), Some("ide0"));
        assert_eq!(
            main_disk(Kind::Lxc, &map(json!({"rootfs": "s:v,size=8G"}))).as_deref(),
            Some("rootfs")
        );
        let marker = Marker {
            host: "h".into(),
            guest_id: "web".into(),
            vmid: 5,
            image: "9000".into(),
        };
        let entry: Entry = serde_json::from_value(json!({"vmid": 5, "status": "running"})).unwrap();
        let seen = observe(Kind::Qemu, &entry, &config, &marker);
        assert_eq!(seen.guest_id, "web");
        assert_eq!(seen.status, GuestStatus::Running);
        assert_eq!(
            (seen.spec.cpu_cores, seen.spec.memory_mb, seen.spec.disk_gb),
            (4, 3072, 20)
        );
        assert_eq!(seen.spec.image, "9000");
        let locked: Entry =
            serde_json::from_value(json!({"vmid": 5, "status": "stopped", "lock": "clone"}))
                .unwrap();
        let seen = observe(Kind::Lxc, &locked, &map(json!({"memory": 512})), &marker);
        assert_eq!(seen.status, GuestStatus::Unknown);
        assert_eq!(seen.detail.as_deref(), Some("locked (clone)"));
        assert_eq!(
            (seen.spec.cpu_cores, seen.spec.memory_mb, seen.spec.kind),
            (0, 512, GuestKind::Container)
        );
    }
}
