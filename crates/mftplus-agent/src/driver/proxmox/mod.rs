//! The Proxmox VE driver: guests of kind `vm` are QEMU VMs (`/nodes/{node}/qemu`), guests of
//! kind `container` are LXC containers (`/nodes/{node}/lxc`), on one PVE node, through its
//! REST API with an API token. One driver serves both kinds because both are the same PVE
//! objects (a VMID in one id space, the same `status/*`, `config`, `resize`, tasks and
//! permissions), differing only in a path segment and a few parameter names.
//!
//! Creating: `image` names the golden image. A VM is a full clone of a template (by VMID or by
//! its unique template name) at a VMID from `/cluster/nextid`; a container is a full clone of
//! a container template the same way, or is created from a template archive volume
//! (`local:vztmpl/…`, unprivileged, its root filesystem on `proxmox.storage`). Then CPU and
//! memory are set and the main disk grown to `disk_gb`. Full clones, never linked ones: a
//! guest must not depend on its template, which the operator may update or delete.
//!
//! Ownership (see `model`): the description marker written in the same call that creates the
//! guest names this agent's host id, the guest id and the guest's own VMID; the tag
//! `mftplus-<host_id>` is added right after. Nothing without the marker is ever listed or
//! touched, and every action goes to the VMID the marker was found at.
//!
//! Asynchronous PVE actions answer a task id (UPID), which is polled to its end with a
//! deadline (`proxmox.task_timeout`); see `api` for which failures are `driver_refused` and
//! which `driver_unreachable`.

mod api;
pub mod config;
mod create;
mod model;

pub use config::{ProxmoxConfig, ProxmoxSection};
pub use model::{tag, vm_name, Marker, NAME_PREFIX};

use super::{DriverError, GuestDriver, ObservedGuest};
use api::{Api, Context};
use async_trait::async_trait;
use mftplus_base::Secret;
use mftplus_types::fleet::{GuestKind, GuestSpec};
use model::{Entry, Kind, Source};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;

const DRIVER: &str = "proxmox";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Beyond the shutdown timeout PVE itself waits, before the driver stops waiting for that task.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(15);

/// The Proxmox VE guest driver for one node.
pub struct ProxmoxDriver {
    api: Api,
    node: String,
    /// This agent's host id: in every marker and in the tag.
    owner: String,
    storage: Option<String>,
    task_timeout: Duration,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for ProxmoxDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxmoxDriver")
            .field("api", &self.api.base())
            .field("node", &self.node)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// One guest of this agent, as found now.
struct Owned {
    kind: Kind,
    entry: Entry,
    config: Map<String, Value>,
    marker: Marker,
}

impl Owned {
    fn vmid(&self) -> u32 {
        self.entry.vmid
    }

    fn is_stopped(&self) -> bool {
        self.entry.status.as_deref() == Some("stopped")
    }
}

/// The driver `select_driver` uses for `driver: proxmox`: built from the config (reading the
/// token secret) and checked with `GET /version`, so a wrong URL, CA or token stops the agent
/// at start with the reason instead of failing every cycle.
pub async fn connect(
    config: Option<&ProxmoxConfig>,
    owner: &str,
) -> Result<ProxmoxDriver, DriverError> {
    let config = config.ok_or_else(|| DriverError::Unreachable {
        driver: DRIVER,
        endpoint: "(not configured)".into(),
        why: "`driver: proxmox` needs a `proxmox:` section".into(),
    })?;
    let driver = ProxmoxDriver::from_config(config, owner)?;
    let version = driver.ping().await?;
    tracing::info!(%version, node = %config.node, "guests run on Proxmox VE");
    Ok(driver)
}

impl ProxmoxDriver {
    /// Reads the token secret from `token_secret_file` (refused when group or others can read
    /// it). A secret that cannot be read leaves PVE out of reach: `driver_unreachable`.
    pub fn from_config(config: &ProxmoxConfig, owner: &str) -> Result<Self, DriverError> {
        let secret = mftplus_base::private_file::read_private_to_string(&config.token_secret_file)
            .map_err(|e| DriverError::Unreachable {
                driver: DRIVER,
                endpoint: config.api_url.clone(),
                why: format!("cannot read the API token secret ({}): {e}", e.code()),
            })?;
        Self::new(config, &Secret::new(secret.trim()), owner)
    }

    pub fn new(config: &ProxmoxConfig, secret: &Secret, owner: &str) -> Result<Self, DriverError> {
        let setup = |why: String| DriverError::Unreachable {
            driver: DRIVER,
            endpoint: config.api_url.clone(),
            why,
        };
        // Checked again here for drivers built without the config file (tests, tools).
        let api_url = config::api_url(&config.api_url).map_err(setup)?;
        model::validate_owner(owner).map_err(setup)?;
        let roots = match &config.ca_file {
            Some(file) => Some(
                mftplus_pki::TrustStore::from_pem_files(std::slice::from_ref(file))
                    .map_err(|e| setup(format!("`ca_file`: {e}")))?,
            ),
            None => None,
        };
        let api = Api::new(
            api_url,
            config.token_id.clone(),
            secret,
            roots.as_ref(),
            REQUEST_TIMEOUT,
        )
        .map_err(setup)?;
        Ok(ProxmoxDriver {
            api,
            node: config.node.clone(),
            owner: owner.to_string(),
            storage: config.storage.clone(),
            task_timeout: config.task_timeout,
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    /// How often a running task is asked about (1 s by default).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.api.poll_interval = interval;
        self
    }

    /// PVE's version (`GET /version`): the address, TLS trust and token in one call.
    pub async fn ping(&self) -> Result<String, DriverError> {
        #[derive(Deserialize)]
        struct Version {
            version: String,
        }
        let ctx = Context {
            action: "connect",
            guest_id: "*",
        };
        Ok(self.api.get::<Version>("/version", ctx).await?.version)
    }

    fn guest_path(&self, kind: Kind, vmid: u32) -> String {
        format!("/nodes/{}/{}/{vmid}", self.node, kind.path())
    }

    async fn entries(&self, kind: Kind, ctx: Context<'_>) -> Result<Vec<Entry>, DriverError> {
        let path = format!("/nodes/{}/{}", self.node, kind.path());
        self.api.get(&path, ctx).await
    }

    /// A guest's config; `None` when it vanished since the listing.
    async fn config_of(
        &self,
        kind: Kind,
        vmid: u32,
        ctx: Context<'_>,
    ) -> Result<Option<Map<String, Value>>, DriverError> {
        let path = format!("{}/config", self.guest_path(kind, vmid));
        match self.api.exchange(Method::GET, &path, &[]).await? {
            Ok(Value::Object(config)) => Ok(Some(config)),
            Ok(other) => Err(self
                .api
                .unreachable(format!("GET {path}: not a config: {other}"))),
            Err(refusal) if refusal.message.contains("does not exist") => Ok(None),
            Err(refusal) => Err(self.api.refused(&Method::GET, &path, refusal, ctx)),
        }
    }

    /// Every guest of this agent on the node, both kinds.
    async fn scan(&self, ctx: Context<'_>) -> Result<Vec<Owned>, DriverError> {
        let mut owned = Vec::new();
        for kind in Kind::ALL {
            for entry in self.entries(kind, ctx).await? {
                if !entry.is_candidate(&self.owner) {
                    continue;
                }
                let Some(config) = self.config_of(kind, entry.vmid, ctx).await? else {
                    continue;
                };
                let marker = config
                    .get("description")
                    .and_then(Value::as_str)
                    .and_then(Marker::parse)
                    .filter(|m| m.owns(&self.owner, entry.vmid));
                match marker {
                    Some(marker) => owned.push(Owned {
                        kind,
                        entry,
                        config,
                        marker,
                    }),
                    None => tracing::debug!(
                        vmid = entry.vmid,
                        "PVE guest looks like an MFTPlus guest but is not this agent's; left alone"
                    ),
                }
            }
        }
        owned.sort_by_key(|o| o.vmid());
        Ok(owned)
    }

    /// This agent's guest `guest_id`. Two guests claiming it (only by editing their notes) are
    /// refused rather than guessed between.
    async fn find(&self, guest_id: &str, ctx: Context<'_>) -> Result<Option<Owned>, DriverError> {
        let mut found: Vec<Owned> = self
            .scan(ctx)
            .await?
            .into_iter()
            .filter(|o| o.marker.guest_id == guest_id)
            .collect();
        if found.len() > 1 {
            let vmids: Vec<String> = found.iter().map(|o| o.vmid().to_string()).collect();
            return Err(self.refuse(
                ctx,
                format!(
                    "VMIDs {} all carry this guest's marker; remove the extra ones in PVE",
                    vmids.join(", ")
                ),
            ));
        }
        Ok(found.pop())
    }

    fn refuse(&self, ctx: Context<'_>, why: String) -> DriverError {
        DriverError::Refused {
            driver: DRIVER,
            action: ctx.action,
            guest_id: ctx.guest_id.to_string(),
            why,
        }
    }

    /// One action and, when PVE answers with a task, its end.
    async fn act(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, String)],
        deadline: Duration,
        ctx: Context<'_>,
    ) -> Result<(), DriverError> {
        let data = self.api.call(method, path, params, ctx).await?;
        self.api.finish(&self.node, data, deadline, ctx).await
    }

    async fn power(&self, owned: &Owned, verb: &str, ctx: Context<'_>) -> Result<(), DriverError> {
        let path = format!(
            "{}/status/{verb}",
            self.guest_path(owned.kind, owned.vmid())
        );
        self.act(Method::POST, &path, &[], self.task_timeout, ctx)
            .await
    }
}

#[async_trait]
impl GuestDriver for ProxmoxDriver {
    fn name(&self) -> &'static str {
        DRIVER
    }

    fn supports(&self, kind: GuestKind) -> bool {
        matches!(kind, GuestKind::Vm | GuestKind::Container)
    }

    async fn list(&self) -> Result<Vec<ObservedGuest>, DriverError> {
        let ctx = Context {
            action: "list",
            guest_id: "*",
        };
        let mut guests: Vec<ObservedGuest> = Vec::new();
        for owned in self.scan(ctx).await? {
            if guests.iter().any(|g| g.guest_id == owned.marker.guest_id) {
                tracing::warn!(
                    guest_id = %owned.marker.guest_id,
                    vmid = owned.vmid(),
                    "a second PVE guest carries this guest's marker; reporting the lower VMID"
                );
                continue;
            }
            guests.push(model::observe(
                owned.kind,
                &owned.entry,
                &owned.config,
                &owned.marker,
            ));
        }
        guests.sort_by(|a, b| a.guest_id.cmp(&b.guest_id));
        Ok(guests)
    }

    async fn create(&self, guest_id: &str, spec: &GuestSpec) -> Result<(), DriverError> {
        let ctx = Context {
            action: "create",
            guest_id,
        };
        let (kind, source) = model::check_spec(guest_id, spec)?;
        if let Some(owned) = self.find(guest_id, ctx).await? {
            if owned.kind != kind {
                return Err(self.refuse(
                    ctx,
                    format!(
                        "it exists already as {} guest {}",
                        owned.kind.path(),
                        owned.vmid()
                    ),
                ));
            }
            // Only a creation cut short (marker written, tag not yet) still needs its settings.
            let tags = owned.config.get("tags").and_then(Value::as_str);
            if model::has_tag(tags, &model::tag(&self.owner)) {
                return Ok(());
            }
            return self.apply(&owned, spec, ctx).await;
        }
        let vmid = match &source {
            Source::OsTemplate(volume) => {
                self.create_container(volume, guest_id, spec, ctx).await?
            }
            template => {
                self.clone_template(kind, template, guest_id, spec, ctx)
                    .await?
            }
        };
        let owned = self
            .find(guest_id, ctx)
            .await?
            .filter(|o| o.vmid() == vmid)
            .ok_or_else(|| {
                self.refuse(
                    ctx,
                    format!("guest {vmid} is gone right after its creation"),
                )
            })?;
        self.apply(&owned, spec, ctx).await
    }

    async fn start(&self, guest_id: &str) -> Result<(), DriverError> {
        let ctx = Context {
            action: "start",
            guest_id,
        };
        let owned = self
            .find(guest_id, ctx)
            .await?
            .ok_or_else(|| DriverError::NotFound(guest_id.into()))?;
        if owned.entry.status.as_deref() == Some("running") {
            return Ok(());
        }
        self.power(&owned, "start", ctx).await
    }

    async fn stop(&self, guest_id: &str) -> Result<(), DriverError> {
        let ctx = Context {
            action: "stop",
            guest_id,
        };
        let Some(owned) = self.find(guest_id, ctx).await? else {
            return Ok(());
        };
        if owned.is_stopped() {
            return Ok(());
        }
        let path = format!(
            "{}/status/shutdown",
            self.guest_path(owned.kind, owned.vmid())
        );
        let params = [(
            "timeout",
            self.shutdown_timeout.as_secs().max(1).to_string(),
        )];
        let deadline = self.shutdown_timeout + SHUTDOWN_SLACK;
        match self.act(Method::POST, &path, &params, deadline, ctx).await {
            Ok(()) => Ok(()),
            Err(err) => {
                tracing::info!(
                    guest_id,
                    code = err.code(),
                    "shutdown did not end it ({err}); stopping it"
                );
                self.power(&owned, "stop", ctx).await
            }
        }
    }

    async fn remove(&self, guest_id: &str) -> Result<(), DriverError> {
        let ctx = Context {
            action: "remove",
            guest_id,
        };
        let Some(owned) = self.find(guest_id, ctx).await? else {
            return Ok(());
        };
        // A hard stop: removing is the destructive op the operator signed; the grace period
        // belongs to `stop`.
        if !owned.is_stopped() {
            self.power(&owned, "stop", ctx).await?;
        }
        let path = self.guest_path(owned.kind, owned.vmid());
        let params = [
            ("purge", "1".to_string()),
            ("destroy-unreferenced-disks", "1".to_string()),
        ];
        match self.api.exchange(Method::DELETE, &path, &params).await? {
            Ok(data) => {
                self.api
                    .finish(&self.node, data, self.task_timeout, ctx)
                    .await
            }
            Err(refusal) if refusal.message.contains("does not exist") => Ok(()),
            Err(refusal) => Err(self.api.refused(&Method::DELETE, &path, refusal, ctx)),
        }
    }

    async fn resize(&self, guest_id: &str, spec: &GuestSpec) -> Result<(), DriverError> {
        let ctx = Context {
            action: "resize",
            guest_id,
        };
        model::check_limits(guest_id, spec)?;
        let owned = self
            .find(guest_id, ctx)
            .await?
            .ok_or_else(|| DriverError::NotFound(guest_id.into()))?;
        if owned.kind != Kind::of(spec.kind) {
            return Err(self.refuse(
                ctx,
                format!(
                    "it is a {} guest; changing the kind recreates it",
                    owned.kind.path()
                ),
            ));
        }
        self.apply(&owned, spec, ctx).await
    }
}
