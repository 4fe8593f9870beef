//! The cloud's fleet runtime: what the fleet handlers and jobs share beyond the store — the
//! pinned operator keys, the controller config template, the report committers, the fleet
//! size the adaptive poll interval is sized for (`poll.rs`), and the background checker
//! (liveness, backup deadlines, op expiry, pruning, notifications).

pub mod batcher;
pub mod checker;
pub mod geo;
pub mod notify;
pub mod poll;

use crate::config::{private_error, FleetSection, ServerConfig};
use batcher::Batcher;
use mftplus_base::{PrivateFileError, Secret};
use mftplus_notify::{
    CloudflareFirewall, EdgeFirewall, HttpWebhookSender, Mailer, SmtpConfig, SmtpMailer, SmtpTls,
    WebhookSender,
};
use mftplus_signing::AllowedSigners;
use mftplus_store::{NewGuestReport, NewHostReport, ReportAck, Store};
use mftplus_types::fleet::GeoPolicy;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub struct FleetRuntime {
    /// `allowed_signers` text handed to agents at enrollment (empty when none configured).
    pub operator_keys: String,
    /// The same keys, parsed: uploaded signatures are checked against them.
    pub allowed_signers: AllowedSigners,
    pub controller_template: Option<serde_json::Value>,
    pub host_ingest: Batcher<NewHostReport, ReportAck>,
    pub guest_ingest: Batcher<NewGuestReport, ()>,
    /// `None` when `notifications.smtp.host` is unset.
    pub mailer: Option<Arc<dyn Mailer>>,
    pub webhook_sender: Arc<dyn WebhookSender>,
    /// `(url, secret)` of every configured webhook.
    pub webhooks: Vec<(String, Secret)>,
    /// The last event id notifications were sent for; `None` until the checker starts.
    pub notify_cursor: tokio::sync::Mutex<Option<i64>>,
    pub firewall: Option<Arc<dyn EdgeFirewall>>,
    /// The geo policy last applied per customer by this process.
    pub geo_applied: tokio::sync::Mutex<HashMap<String, GeoPolicy>>,
    /// This process's name in the checker lease.
    pub checker_holder: String,
    /// Enrolled hosts as the checker last counted them (every replica counts).
    pub fleet_size: poll::FleetSize,
}

impl FleetRuntime {
    /// Reads the configured files and starts the committers (needs the runtime).
    pub fn load(config: &ServerConfig, store: Arc<dyn Store>) -> Result<FleetRuntime, String> {
        let files = FleetFiles::read(config)?;
        let batch_max = config.fleet.ingest_batch_max;
        let hosts = store.clone();
        let host_ingest = Batcher::start(batch_max, move |batch| {
            let store = hosts.clone();
            async move { store.ingest_host_reports(&batch).await }
        });
        let guests = store;
        let guest_ingest = Batcher::start(batch_max, move |batch| {
            let store = guests.clone();
            async move { store.ingest_guest_reports(&batch).await }
        });
        Ok(FleetRuntime {
            operator_keys: files.operator_keys,
            allowed_signers: files.allowed_signers,
            controller_template: files.controller_template,
            host_ingest,
            guest_ingest,
            mailer: files.mailer,
            webhook_sender: files.webhook_sender,
            webhooks: files.webhooks,
            notify_cursor: tokio::sync::Mutex::new(None),
            firewall: files.firewall,
            geo_applied: tokio::sync::Mutex::new(HashMap::new()),
            checker_holder: format!("checker-{}", uuid::Uuid::new_v4().simple()),
            fleet_size: poll::FleetSize::default(),
        })
    }

    /// The poll interval the envelope tells `host_id` now (decision 0024).
    pub fn poll_interval(&self, host_id: &str, config: &FleetSection) -> u64 {
        poll::host_interval(
            host_id,
            self.fleet_size.get(),
            config.poll_interval_seconds,
            config.report_capacity_per_second,
        )
    }
}

/// What `mftplus cloud --check-config` says about the fleet: the same reading and validation
/// the cloud does at start-up, without starting anything.
pub fn check(config: &ServerConfig) -> Result<String, String> {
    let files = FleetFiles::read(config)?;
    Ok(format!(
        "{} operator key(s) pinned, email {}, {} webhook(s), edge firewall {}",
        files.allowed_signers.entries().len(),
        if files.mailer.is_some() { "on" } else { "off" },
        files.webhooks.len(),
        if files.firewall.is_some() {
            "on"
        } else {
            "off"
        },
    ))
}

/// Everything the fleet reads from configuration and files, validated.
struct FleetFiles {
    operator_keys: String,
    allowed_signers: AllowedSigners,
    controller_template: Option<serde_json::Value>,
    mailer: Option<Arc<dyn Mailer>>,
    webhook_sender: Arc<dyn WebhookSender>,
    webhooks: Vec<(String, Secret)>,
    firewall: Option<Arc<dyn EdgeFirewall>>,
}

impl FleetFiles {
    fn read(config: &ServerConfig) -> Result<FleetFiles, String> {
        let fleet = &config.fleet;
        let operator_keys = match &fleet.operator_keys_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|err| format!("fleet.operator_keys_file {}: {err}", path.display()))?,
            None => String::new(),
        };
        let allowed_signers = AllowedSigners::parse(&operator_keys)
            .map_err(|err| format!("fleet.operator_keys_file: {err}"))?;
        let controller_template = match &fleet.controller_template_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|err| {
                    format!("fleet.controller_template_file {}: {err}", path.display())
                })?;
                Some(serde_yaml::from_str(&text).map_err(|err| {
                    format!("fleet.controller_template_file {}: {err}", path.display())
                })?)
            }
            None => None,
        };
        let notifications = &config.notifications;
        let timeout = Duration::from_secs(notifications.smtp.timeout_seconds.max(1));
        let mailer: Option<Arc<dyn Mailer>> = match &notifications.smtp.host {
            Some(host) => {
                let smtp = &notifications.smtp;
                let mut mail = SmtpConfig::new(host.clone(), smtp.port, smtp.from.clone());
                mail.username = smtp.username.clone();
                mail.password = smtp.password.clone();
                mail.tls = match smtp.tls.as_str() {
                    "none" => SmtpTls::None,
                    "tls" => SmtpTls::Tls,
                    "starttls" => SmtpTls::Starttls,
                    other => {
                        return Err(format!(
                            "notifications.smtp.tls is {other:?}; use none, starttls or tls"
                        ))
                    }
                };
                mail.timeout = timeout;
                Some(Arc::new(
                    SmtpMailer::new(mail).map_err(|err| format!("notifications.smtp: {err}"))?,
                ))
            }
            None => None,
        };
        let webhook_sender: Arc<dyn WebhookSender> =
            Arc::new(HttpWebhookSender::new(timeout).map_err(|err| format!("webhooks: {err}"))?);
        let mut webhooks = Vec::new();
        for hook in &notifications.webhooks {
            let secret = match &hook.secret_file {
                Some(path) => read_private(path)?,
                None => return Err(format!("webhook {} has no secret_file", hook.url)),
            };
            webhooks.push((hook.url.clone(), Secret::new(secret)));
        }
        let cloudflare = &config.edge_firewall.cloudflare;
        let firewall: Option<Arc<dyn EdgeFirewall>> = if cloudflare.enabled {
            let token = cloudflare.api_token.as_ref().ok_or(
                    "edge_firewall.cloudflare.api_token is not set (MFTPLUS__EDGE_FIREWALL__CLOUDFLARE__API_TOKEN_FILE)",
                )?;
            Some(Arc::new(
                CloudflareFirewall::new(
                    cloudflare.base_url.clone(),
                    token.clone(),
                    Duration::from_secs(15),
                )
                .map_err(|err| format!("edge_firewall.cloudflare: {err}"))?,
            ))
        } else {
            None
        };
        Ok(FleetFiles {
            operator_keys,
            allowed_signers,
            controller_template,
            mailer,
            webhook_sender,
            webhooks,
            firewall,
        })
    }
}

/// Files the fleet reads that must stay private (webhook secrets).
pub fn read_private(path: &std::path::Path) -> Result<String, String> {
    match mftplus_base::read_private_to_string(path) {
        Ok(text) => Ok(text.trim().to_string()),
        // The base error already reads "<path>: <cause>"; an insecure file keeps the
        // configuration's own wording.
        Err(err @ PrivateFileError::Io { .. }) => Err(err.to_string()),
        Err(err) => Err(private_error("file", err).to_string()),
    }
}
