//! Creating guests and bringing them to their spec: the template a spec names, a fresh VMID,
//! the full clone or the container from an archive, then CPU, memory, tag and disk.

use super::api::Context;
use super::model::{self, Entry, Kind, Marker, Source};
use super::{Owned, ProxmoxDriver};
use crate::driver::DriverError;
use mftplus_types::fleet::GuestSpec;
use reqwest::Method;
use serde_json::{Map, Value};

/// Tries at a fresh VMID when another client took the one `/cluster/nextid` gave.
const VMID_TRIES: usize = 3;

impl ProxmoxDriver {
    /// The template `source` names, and its config (for its disk size).
    async fn template(
        &self,
        kind: Kind,
        source: &Source,
        ctx: Context<'_>,
    ) -> Result<(u32, Map<String, Value>), DriverError> {
        let templates: Vec<Entry> = self
            .entries(kind, ctx)
            .await?
            .into_iter()
            .filter(Entry::is_template)
            .collect();
        let matching: Vec<u32> = templates
            .iter()
            .filter(|t| match source {
                Source::TemplateId(vmid) => t.vmid == *vmid,
                Source::TemplateName(name) => t.name.as_deref() == Some(name),
                Source::OsTemplate(_) => false,
            })
            .map(|t| t.vmid)
            .collect();
        let what = match source {
            Source::TemplateId(vmid) => format!("VMID {vmid}"),
            Source::TemplateName(name) => format!("name `{name}`"),
            Source::OsTemplate(volume) => volume.clone(),
        };
        let vmid = match matching.as_slice() {
            [one] => *one,
            [] => {
                return Err(self.refuse(
                    ctx,
                    format!(
                        "no {} template with {what} on node {} (a guest is cloned from a \
                         template, never from a plain guest)",
                        kind.path(),
                        self.node
                    ),
                ))
            }
            many => {
                return Err(self.refuse(
                    ctx,
                    format!(
                        "{} templates have {what} ({many:?}); name one by its VMID",
                        many.len()
                    ),
                ))
            }
        };
        let config = self
            .config_of(kind, vmid, ctx)
            .await?
            .ok_or_else(|| self.refuse(ctx, format!("template {vmid} vanished")))?;
        Ok((vmid, config))
    }

    async fn next_id(&self, ctx: Context<'_>) -> Result<u32, DriverError> {
        let value: Value = self.api.get("/cluster/nextid", ctx).await?;
        model::as_u64(&value)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                self.api
                    .unreachable(format!("/cluster/nextid answered {value}"))
            })
    }

    /// Creates a guest at a fresh VMID with the parameters `params(vmid)` gives, trying again
    /// when another PVE client took that VMID in between.
    async fn create_at_fresh_vmid(
        &self,
        path: &str,
        params: impl Fn(u32) -> Vec<(&'static str, String)>,
        ctx: Context<'_>,
    ) -> Result<u32, DriverError> {
        for attempt in 1..=VMID_TRIES {
            let vmid = self.next_id(ctx).await?;
            match self.api.exchange(Method::POST, path, &params(vmid)).await? {
                Ok(data) => {
                    self.api
                        .finish(&self.node, data, self.task_timeout, ctx)
                        .await?;
                    return Ok(vmid);
                }
                Err(refusal)
                    if refusal.message.contains("already exists") && attempt < VMID_TRIES =>
                {
                    tracing::debug!(vmid, "VMID taken meanwhile; asking for another");
                }
                Err(refusal) => return Err(self.api.refused(&Method::POST, path, refusal, ctx)),
            }
        }
        Err(self.refuse(ctx, "no free VMID".into()))
    }

    fn marker(&self, guest_id: &str, vmid: u32, spec: &GuestSpec) -> Marker {
        Marker {
            host: self.owner.clone(),
            guest_id: guest_id.to_string(),
            vmid,
            image: spec.image.trim().to_string(),
        }
    }

    /// A full clone of the template `source` names; returns the new VMID.
    pub(super) async fn clone_template(
        &self,
        kind: Kind,
        source: &Source,
        guest_id: &str,
        spec: &GuestSpec,
        ctx: Context<'_>,
    ) -> Result<u32, DriverError> {
        let (template, template_config) = self.template(kind, source, ctx).await?;
        let template_gb = model::main_disk(kind, &template_config)
            .and_then(|key| template_config.get(&key)?.as_str().and_then(model::disk_gb));
        if let Some(size) = template_gb.filter(|size| spec.disk_gb < *size) {
            return Err(DriverError::InvalidSpec {
                guest_id: guest_id.into(),
                why: format!(
                    "disk_gb {} is below the template's disk ({size} GB); PVE cannot shrink it",
                    spec.disk_gb
                ),
            });
        }
        let path = format!("{}/clone", self.guest_path(kind, template));
        let params = |vmid: u32| {
            let mut params = vec![
                ("newid", vmid.to_string()),
                (kind.name_param(), model::vm_name(guest_id)),
                ("full", "1".to_string()),
                (
                    "description",
                    self.marker(guest_id, vmid, spec).description(),
                ),
            ];
            if let Some(storage) = &self.storage {
                params.push(("storage", storage.clone()));
            }
            params
        };
        self.create_at_fresh_vmid(&path, params, ctx).await
    }

    /// A container from a template archive; returns its VMID.
    pub(super) async fn create_container(
        &self,
        volume: &str,
        guest_id: &str,
        spec: &GuestSpec,
        ctx: Context<'_>,
    ) -> Result<u32, DriverError> {
        let storage = self.storage.clone().ok_or_else(|| {
            self.refuse(
                ctx,
                "a container from a template archive needs `proxmox.storage` for its root \
                 filesystem"
                    .into(),
            )
        })?;
        let path = format!("/nodes/{}/lxc", self.node);
        let params = |vmid: u32| {
            let mut params = vec![
                ("vmid", vmid.to_string()),
                ("ostemplate", volume.to_string()),
                ("hostname", model::vm_name(guest_id)),
                (
                    "description",
                    self.marker(guest_id, vmid, spec).description(),
                ),
                ("tags", model::tag(&self.owner)),
                ("rootfs", format!("{storage}:{}", spec.disk_gb)),
                ("unprivileged", "1".to_string()),
            ];
            params.extend(model::limit_params(Kind::Lxc, spec));
            params
        };
        self.create_at_fresh_vmid(&path, params, ctx).await
    }

    /// Brings an existing guest to `spec`'s CPU, memory and disk and makes sure it carries the
    /// tag. Every step is idempotent (a disk is only ever grown).
    pub(super) async fn apply(
        &self,
        owned: &Owned,
        spec: &GuestSpec,
        ctx: Context<'_>,
    ) -> Result<(), DriverError> {
        let base = self.guest_path(owned.kind, owned.vmid());
        let disk = model::main_disk(owned.kind, &owned.config)
            .ok_or_else(|| self.refuse(ctx, "the guest has no disk to size".into()))?;
        let current_gb = owned
            .config
            .get(&disk)
            .and_then(Value::as_str)
            .and_then(model::disk_gb)
            .unwrap_or(0);
        if spec.disk_gb < current_gb {
            return Err(model::shrink_refused(
                ctx.guest_id,
                current_gb,
                spec.disk_gb,
            ));
        }
        let mut params = model::limit_params(owned.kind, spec);
        let tags = owned.config.get("tags").and_then(Value::as_str);
        if let Some(tags) = model::with_tag(tags, &model::tag(&self.owner)) {
            params.push(("tags", tags));
        }
        let path = format!("{base}/config");
        self.act(Method::PUT, &path, &params, self.task_timeout, ctx)
            .await?;
        if spec.disk_gb > current_gb {
            let params = [("disk", disk), ("size", format!("{}G", spec.disk_gb))];
            let path = format!("{base}/resize");
            self.act(Method::PUT, &path, &params, self.task_timeout, ctx)
                .await?;
        }
        Ok(())
    }
}
