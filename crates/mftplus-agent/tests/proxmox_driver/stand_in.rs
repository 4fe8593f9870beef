//! A stand-in of the Proxmox VE API endpoints the driver calls (see the test file's docs for
//! why one is needed): axum on 127.0.0.1, guests and tasks in memory, knobs for failing,
//! stalling and racing, and a log of every mutating call per VMID.

use axum::extract::{Form, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use mftplus_agent::driver::proxmox::{Marker, ProxmoxConfig};
use mftplus_agent::driver::ProxmoxDriver;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const NODE: &str = "pve1";
pub const TOKEN_ID: &str = "mftplus@pve!agent";
pub const SECRET: &str = "3f2a6c1e-7b4d-4e5f-9a0b-1c2d3e4f5a6b";
pub const OWNER: &str = "h-0123456789abcdef";
pub const VM_TEMPLATE: u32 = 9000;
pub const CT_TEMPLATE: u32 = 9001;
pub const ARCHIVE: &str = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst";

#[derive(Clone)]
pub struct Guest {
    pub kind: &'static str,
    pub status: &'static str,
    pub template: bool,
    pub config: Map<String, Value>,
}

pub struct Task {
    pub exitstatus: Option<String>,
}

#[derive(Default)]
pub struct Pve {
    pub guests: BTreeMap<u32, Guest>,
    pub tasks: HashMap<String, Task>,
    pub seq: u32,
    /// The next task ends with this exit status, without its effect.
    pub fail_next_task: Option<String>,
    /// Tasks never end.
    pub stall_tasks: bool,
    /// Shutdown tasks fail as when the guest ignores ACPI.
    pub ignore_shutdown: bool,
    /// This many times, the VMID `/cluster/nextid` gave is taken by someone else at once.
    pub steal_next_ids: u32,
    /// `(vmid, "METHOD what")` of every mutating call that reached a guest.
    pub mutations: Vec<(u32, String)>,
    pub unauthorized: u32,
}

pub type Shared = Arc<Mutex<Pve>>;

fn ok(data: Value) -> Response {
    Json(json!({ "data": data })).into_response()
}

/// PVE's error answer: the message in the reason phrase, `data: null` in the body.
fn fail(status: u16, reason: &str) -> Response {
    let mut response = (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({ "data": null })),
    )
        .into_response();
    response
        .extensions_mut()
        .insert(hyper::ext::ReasonPhrase::try_from(reason.as_bytes()).unwrap());
    response
}

fn missing(kind: &str, vmid: u32) -> Response {
    let dir = if kind == "qemu" { "qemu-server" } else { "lxc" };
    fail(
        500,
        &format!("Configuration file 'nodes/{NODE}/{dir}/{vmid}.conf' does not exist"),
    )
}

impl Pve {
    /// A task for an action whose effect happens when the task ends.
    fn task(&mut self, kind: &str, vmid: u32, effect: impl FnOnce(&mut Pve)) -> Response {
        self.seq += 1;
        let upid = format!(
            "UPID:{NODE}:{:08X}:{:08X}:6650A1B2:{kind}:{vmid}:{TOKEN_ID}:",
            0x1000 + self.seq,
            0x20000 + self.seq
        );
        let exitstatus = if self.stall_tasks {
            None
        } else if let Some(message) = self.fail_next_task.take() {
            Some(message)
        } else {
            effect(self);
            Some("OK".to_string())
        };
        self.tasks.insert(upid.clone(), Task { exitstatus });
        ok(json!(upid))
    }

    fn next_free(&self) -> u32 {
        (100..).find(|id| !self.guests.contains_key(id)).unwrap()
    }

    pub fn add(&mut self, vmid: u32, kind: &'static str, status: &'static str, config: Value) {
        let config = config.as_object().unwrap().clone();
        let template = config.get("template").is_some();
        self.guests.insert(
            vmid,
            Guest {
                kind,
                status,
                template,
                config,
            },
        );
    }
}

async fn auth(State(pve): State<Shared>, request: Request, next: Next) -> Response {
    let want = format!("PVEAPIToken={TOKEN_ID}={SECRET}");
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if given != Some(want.as_str()) {
        pve.lock().unwrap().unauthorized += 1;
        return fail(401, "invalid token value!");
    }
    next.run(request).await
}

async fn version() -> Response {
    ok(json!({"version": "8.2.4", "release": "8.2", "repoid": "faa83925c9641325"}))
}

async fn nextid(State(pve): State<Shared>) -> Response {
    let mut pve = pve.lock().unwrap();
    let id = pve.next_free();
    if pve.steal_next_ids > 0 {
        pve.steal_next_ids -= 1;
        pve.add(id, "qemu", "stopped", json!({"name": "someone-else"}));
    }
    ok(json!(id.to_string()))
}

async fn task_status(
    State(pve): State<Shared>,
    Path((_, upid)): Path<(String, String)>,
) -> Response {
    match pve.lock().unwrap().tasks.get(&upid) {
        None => fail(500, "no such task"),
        Some(Task { exitstatus: None }) => ok(json!({"upid": upid, "status": "running"})),
        Some(Task {
            exitstatus: Some(exit),
        }) => ok(json!({"upid": upid, "status": "stopped", "exitstatus": exit})),
    }
}

fn kind_of(kind: &str) -> Option<&'static str> {
    match kind {
        "qemu" => Some("qemu"),
        "lxc" => Some("lxc"),
        _ => None,
    }
}

async fn list(State(pve): State<Shared>, Path((_, kind)): Path<(String, String)>) -> Response {
    let pve = pve.lock().unwrap();
    let entries: Vec<Value> = pve
        .guests
        .iter()
        .filter(|(_, g)| g.kind == kind)
        .map(|(vmid, g)| {
            let name = g.config.get("name").or_else(|| g.config.get("hostname"));
            let mut entry = json!({"vmid": vmid, "status": g.status, "name": name});
            if let Some(tags) = g.config.get("tags") {
                entry["tags"] = tags.clone();
            }
            if g.template {
                entry["template"] = json!(1);
            }
            entry
        })
        .collect();
    ok(json!(entries))
}

async fn get_config(
    State(pve): State<Shared>,
    Path((_, kind, vmid)): Path<(String, String, u32)>,
) -> Response {
    match pve.lock().unwrap().guests.get(&vmid) {
        Some(g) if g.kind == kind => {
            let mut config = g.config.clone();
            config.insert("digest".into(), json!("0f3c1b2a"));
            ok(Value::Object(config))
        }
        _ => missing(&kind, vmid),
    }
}

async fn put_config(
    State(pve): State<Shared>,
    Path((_, kind, vmid)): Path<(String, String, u32)>,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    let mut pve = pve.lock().unwrap();
    pve.mutations.push((vmid, "PUT config".into()));
    if let Some(memory) = params.get("memory").and_then(|m| m.parse::<u64>().ok()) {
        if memory < 16 {
            return fail(400, "Parameter verification failed.");
        }
    }
    let Some(guest) = pve.guests.get_mut(&vmid).filter(|g| g.kind == kind) else {
        return missing(&kind, vmid);
    };
    for (key, value) in params {
        guest.config.insert(key, json!(value));
    }
    ok(Value::Null)
}

async fn create_lxc(State(pve): State<Shared>, Form(p): Form<HashMap<String, String>>) -> Response {
    let mut pve = pve.lock().unwrap();
    let vmid: u32 = p["vmid"].parse().unwrap();
    pve.mutations.push((vmid, "POST lxc".into()));
    if pve.guests.contains_key(&vmid) {
        return fail(500, &format!("CT {vmid} already exists on node '{NODE}'"));
    }
    if p["ostemplate"] != ARCHIVE {
        return fail(500, &format!("volume '{}' does not exist", p["ostemplate"]));
    }
    let (storage, size) = p["rootfs"].split_once(':').unwrap();
    let rootfs = format!("{storage}:vm-{vmid}-disk-0,size={size}G");
    let mut config = json!({"rootfs": rootfs, "ostype": "debian", "arch": "amd64"});
    for key in [
        "hostname",
        "description",
        "tags",
        "cores",
        "memory",
        "unprivileged",
    ] {
        config[key] = json!(p[key]);
    }
    pve.task("vzcreate", vmid, move |pve| {
        pve.add(vmid, "lxc", "stopped", config)
    })
}

async fn clone(
    State(pve): State<Shared>,
    Path((_, kind, vmid)): Path<(String, String, u32)>,
    Form(p): Form<HashMap<String, String>>,
) -> Response {
    let mut pve = pve.lock().unwrap();
    let newid: u32 = p["newid"].parse().unwrap();
    pve.mutations.push((vmid, format!("POST clone to {newid}")));
    let Some(source) = pve.guests.get(&vmid).filter(|g| g.kind == kind).cloned() else {
        return missing(&kind, vmid);
    };
    if pve.guests.contains_key(&newid) {
        return fail(
            500,
            &format!("unable to create VM {newid}: config file already exists"),
        );
    }
    assert_eq!(
        p.get("full").map(String::as_str),
        Some("1"),
        "clones are full"
    );
    let mut config = source.config.clone();
    config.remove("template");
    for (key, value) in &p {
        if matches!(key.as_str(), "name" | "hostname" | "description") {
            config.insert(key.clone(), json!(value));
        }
    }
    let storage = p.get("storage").cloned();
    for disk in ["scsi0", "rootfs"] {
        if let Some(Value::String(old)) = config.get(disk) {
            let (old_storage, rest) = old.split_once(':').unwrap();
            let size = rest.split(',').find(|p| p.starts_with("size=")).unwrap();
            let target = storage.clone().unwrap_or(old_storage.to_string());
            config.insert(
                disk.into(),
                json!(format!("{target}:vm-{newid}-disk-0,{size}")),
            );
        }
    }
    let kind = source.kind;
    let task = if kind == "qemu" { "qmclone" } else { "vzclone" };
    pve.task(task, newid, move |pve| {
        pve.add(newid, kind, "stopped", Value::Object(config))
    })
}

async fn resize(
    State(pve): State<Shared>,
    Path((_, kind, vmid)): Path<(String, String, u32)>,
    Form(p): Form<HashMap<String, String>>,
) -> Response {
    let mut pve = pve.lock().unwrap();
    pve.mutations.push((vmid, "PUT resize".into()));
    let Some(guest) = pve.guests.get(&vmid).filter(|g| g.kind == kind) else {
        return missing(&kind, vmid);
    };
    let disk = p["disk"].clone();
    let Some(Value::String(old)) = guest.config.get(&disk).cloned() else {
        return fail(500, &format!("disk '{disk}' does not exist"));
    };
    let old_gb: u64 = old
        .split("size=")
        .nth(1)
        .unwrap()
        .trim_end_matches('G')
        .parse()
        .unwrap();
    let new_gb: u64 = p["size"].trim_end_matches('G').parse().unwrap();
    if new_gb < old_gb {
        return fail(500, "shrinking disks is not supported");
    }
    let new = old.replace(&format!("size={old_gb}G"), &format!("size={new_gb}G"));
    pve.task("resize", vmid, move |pve| {
        pve.guests
            .get_mut(&vmid)
            .unwrap()
            .config
            .insert(disk, json!(new));
    })
}

async fn power(
    State(pve): State<Shared>,
    Path((_, kind, vmid, action)): Path<(String, String, u32, String)>,
    body: axum::body::Bytes,
) -> Response {
    // PVE takes a POST without a body (and so without a form content type) here.
    let p: HashMap<String, String> = String::from_utf8_lossy(&body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut pve = pve.lock().unwrap();
    pve.mutations.push((vmid, format!("POST status/{action}")));
    let Some(status) = pve
        .guests
        .get(&vmid)
        .filter(|g| g.kind == kind)
        .map(|g| g.status)
    else {
        return missing(&kind, vmid);
    };
    let set =
        |to: &'static str| move |pve: &mut Pve| pve.guests.get_mut(&vmid).unwrap().status = to;
    match action.as_str() {
        "start" if status == "running" => fail(500, &format!("VM {vmid} already running")),
        "start" => pve.task("qmstart", vmid, set("running")),
        "shutdown" => {
            assert!(p.contains_key("timeout"), "shutdown carries a timeout");
            if pve.ignore_shutdown && !pve.stall_tasks {
                pve.fail_next_task = Some("VM quit/powerdown failed - got timeout".into());
            }
            pve.task("qmshutdown", vmid, set("stopped"))
        }
        "stop" => pve.task("qmstop", vmid, set("stopped")),
        other => fail(
            501,
            &format!("Method 'POST status/{other}' not implemented"),
        ),
    }
}

async fn destroy(
    State(pve): State<Shared>,
    Path((_, kind, vmid)): Path<(String, String, u32)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut pve = pve.lock().unwrap();
    pve.mutations.push((vmid, "DELETE".into()));
    match pve.guests.get(&vmid).filter(|g| g.kind == kind) {
        None => missing(&kind, vmid),
        Some(g) if g.status == "running" => {
            fail(500, &format!("VM {vmid} is running - destroy failed"))
        }
        Some(_) => {
            assert_eq!(q.get("purge").map(String::as_str), Some("1"));
            pve.task("qmdestroy", vmid, move |pve| {
                pve.guests.remove(&vmid);
            })
        }
    }
}

/// Only the two guest types exist under a node.
async fn known_kind(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let kind = path.split('/').nth(5).unwrap_or_default();
    if path.split('/').count() > 5 && kind != "tasks" && kind_of(kind).is_none() {
        return fail(501, &format!("Method '{path}' not implemented"));
    }
    next.run(request).await
}

pub struct StandIn {
    pub url: String,
    pub pve: Shared,
    pub _dir: tempfile::TempDir,
    pub secret_file: std::path::PathBuf,
}

pub async fn stand_in() -> StandIn {
    let pve: Shared = Arc::default();
    {
        let mut p = pve.lock().unwrap();
        p.add(
            VM_TEMPLATE,
            "qemu",
            "stopped",
            json!({
                "name": "debian-12-golden", "template": 1, "tags": "golden",
                "boot": "order=scsi0;ide2;net0", "ide2": "none,media=cdrom",
                "scsi0": "local-lvm:base-9000-disk-0,size=10G",
                "cores": 1, "sockets": 1, "memory": "512", "description": "golden image",
            }),
        );
        p.add(CT_TEMPLATE, "lxc", "stopped", json!({
            "hostname": "alpine-ct", "template": 1, "rootfs": "local-lvm:base-9001-disk-0,size=2G",
            "cores": 1, "memory": 256,
        }));
    }
    let n = "/api2/json/nodes/{node}";
    let app = Router::new()
        .route("/api2/json/version", get(version))
        .route("/api2/json/cluster/nextid", get(nextid))
        .route(&format!("{n}/tasks/{{upid}}/status"), get(task_status))
        .route(&format!("{n}/{{kind}}"), get(list).post(create_lxc))
        .route(
            &format!("{n}/{{kind}}/{{vmid}}"),
            axum::routing::delete(destroy),
        )
        .route(
            &format!("{n}/{{kind}}/{{vmid}}/config"),
            get(get_config).put(put_config),
        )
        .route(
            &format!("{n}/{{kind}}/{{vmid}}/clone"),
            axum::routing::post(clone),
        )
        .route(
            &format!("{n}/{{kind}}/{{vmid}}/resize"),
            axum::routing::put(resize),
        )
        .route(
            &format!("{n}/{{kind}}/{{vmid}}/status/{{action}}"),
            axum::routing::post(power),
        )
        .layer(middleware::from_fn(known_kind))
        .layer(middleware::from_fn_with_state(pve.clone(), auth))
        .with_state(pve.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("pve-token");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    StandIn {
        url,
        pve,
        _dir: dir,
        secret_file,
    }
}

impl StandIn {
    pub fn config(&self) -> ProxmoxConfig {
        let mut config =
            ProxmoxConfig::new(&self.url, NODE, TOKEN_ID, self.secret_file.clone()).unwrap();
        config.storage = Some("fast".into());
        config.task_timeout = Duration::from_secs(5);
        config.shutdown_timeout = Duration::from_secs(2);
        config
    }

    pub fn driver_for(&self, owner: &str) -> ProxmoxDriver {
        ProxmoxDriver::from_config(&self.config(), owner)
            .unwrap()
            .with_poll_interval(Duration::from_millis(10))
    }

    pub fn driver(&self) -> ProxmoxDriver {
        self.driver_for(OWNER)
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Pve) -> T) -> T {
        f(&mut self.pve.lock().unwrap())
    }

    pub fn guest(&self, vmid: u32) -> Option<Guest> {
        self.with(|p| p.guests.get(&vmid).cloned())
    }

    /// The VMID of this agent's guest `guest_id`, read from the stand-in's own state.
    pub fn vmid_of(&self, guest_id: &str) -> Option<u32> {
        self.with(|p| {
            p.guests.iter().find_map(|(vmid, g)| {
                let marker = Marker::parse(g.config.get("description")?.as_str()?)?;
                (marker.guest_id == guest_id && marker.owns(OWNER, *vmid)).then_some(*vmid)
            })
        })
    }

    pub fn touched(&self, vmid: u32) -> Vec<String> {
        self.with(|p| {
            p.mutations
                .iter()
                .filter(|(id, _)| *id == vmid)
                .map(|(_, what)| what.clone())
                .collect()
        })
    }
}
