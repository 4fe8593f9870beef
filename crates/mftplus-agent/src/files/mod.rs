//! The agent's file inbox and outbox (decision 0030): files sent to this host
//! (`mftctl send FILE host:<host_id>`) are received into the inbox folder, renamed into place
//! only once verified; files dropped into an outbox folder are sent to the rule's recipients
//! once complete, then moved to `sent/` (or `failed/` with the reason). Both run beside the
//! report loop through the same protocol client as `mftctl` (`mftplus-transfer`), with the host
//! key as the credential, and keep what a crash must not lose in `agent.db`.
//!
//! The host's transfer key pair (X25519) lives in `<state_dir>/transfer.key` (0600); its public
//! half is registered with the cloud when the worker starts, so senders can encrypt to it.

mod config;
mod folder_events;
mod inbox;
mod outbox;

pub use config::{FileFiles, FilesConfig, OutboxRule};
pub use outbox::SETTLED_MARKER;

use crate::config::AgentConfig;
use crate::error::AgentError;
use crate::state::StateDb;
use mftplus_base::SharedClock;
use mftplus_client::{AgentClient, Client};
use mftplus_crypto::stream::X25519SecretKey;
use std::collections::HashMap;
use std::path::PathBuf;
use tokio::sync::watch;

/// What one pass did, for tests and the logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Files placed in the inbox.
    pub received: Vec<PathBuf>,
    /// Outbox files sent (and moved to `sent/`), with their transfer ids.
    pub sent: Vec<(PathBuf, String)>,
    /// Outbox files moved to `failed/`, with the reason.
    pub failed: Vec<(PathBuf, String)>,
    /// More work is likely waiting (the inbox received or the outbox sent files, and more may
    /// have come meanwhile): the next pass comes at once, not after the check interval.
    pub more_waiting: bool,
}

/// How long an outbox event waits for the ones that follow it before the pass runs.
const OUTBOX_EVENTS_GATHERED: std::time::Duration = std::time::Duration::from_millis(20);

/// What a pass looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    /// The inbox (a request to the cloud) and every outbox folder.
    Everywhere,
    /// The outbox folders only: something happened in one of them.
    Outboxes,
}

/// The inbox and outbox of one box.
pub struct FileMover {
    config: AgentConfig,
    files: FilesConfig,
    db: StateDb,
    clock: SharedClock,
    host_id: String,
    secret: X25519SecretKey,
    /// The host key the clients below carry; rebuilt when a rotation changed it.
    host_key: String,
    client: Client,
    agent: AgentClient,
    registered: bool,
    /// Outbox files seen but not yet complete: size, modification time, when first seen so.
    watching: HashMap<PathBuf, (u64, i64, i64)>,
    /// When the first of those files will have held still for its rule's settle time (clock
    /// milliseconds): the next look comes then, not a whole check interval later.
    settle_due_ms: Option<i64>,
    /// Uploads whose following failed (stalled, cancelled): received only once complete.
    unfollowed: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// The transfer key: the one on disk, else a new one.
fn transfer_key(config: &AgentConfig) -> Result<X25519SecretKey, AgentError> {
    let path = config.state_dir.join("transfer.key");
    if path.exists() {
        let text = mftplus_base::read_private_to_string(&path)
            .map_err(|e| AgentError::coded(e.code(), e.to_string()))?;
        return X25519SecretKey::from_encoded(text.trim()).map_err(|e| {
            AgentError::coded("transfer_key_invalid", format!("{}: {e}", path.display()))
        });
    }
    let key = X25519SecretKey::generate()
        .map_err(|e| AgentError::coded("transfer_key_invalid", e.to_string()))?;
    mftplus_base::write_private(&path, format!("{}\n", key.to_encoded().as_str()).as_bytes())
        .map_err(|e| AgentError::coded(e.code(), e.to_string()))?;
    Ok(key)
}

impl FileMover {
    /// `None` when the config has no `files:` section.
    pub fn open(config: &AgentConfig, clock: SharedClock) -> Result<Option<FileMover>, AgentError> {
        let Some(files) = config.files.clone() else {
            return Ok(None);
        };
        let db = StateDb::open_to_read(&config.state_dir)?;
        let identity = db.identity()?.ok_or_else(|| AgentError::NotEnrolled {
            state_dir: config.state_dir.display().to_string(),
        })?;
        let secret = transfer_key(config)?;
        let client = crate::enroll::enrolled_http_client(config, &db, &identity, &*clock)?;
        let agent = AgentClient::from_client(&client, Some(identity.host_key.expose()));
        for folder in files
            .inbox
            .iter()
            .chain(files.outbox.iter().map(|r| &r.watch))
        {
            std::fs::create_dir_all(folder).map_err(|e| {
                AgentError::coded("files_folder", format!("{}: {e}", folder.display()))
            })?;
        }
        Ok(Some(FileMover {
            config: config.clone(),
            files,
            db,
            clock,
            host_id: identity.host_id,
            secret,
            host_key: identity.host_key.expose().to_string(),
            client,
            agent,
            registered: false,
            watching: HashMap::new(),
            settle_due_ms: None,
            unfollowed: Default::default(),
        }))
    }

    /// Runs until `stop`; a transfer in flight when it comes is cut short and picked up again
    /// by the next run (the inbox item or outbox item in `agent.db` says where it stood).
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        tracing::info!(
            inbox = ?self.files.inbox,
            outbox_rules = self.files.outbox.len(),
            "file inbox and outbox"
        );
        let outbox_events = folder_events::FolderEvents::watch(
            self.files.outbox.iter().map(|r| r.watch.clone()).collect(),
        );
        let mut look = Look::Everywhere;
        loop {
            let more_waiting = tokio::select! {
                _ = stop.changed() => return,
                pass = self.pass_of(look) => pass.more_waiting,
            };
            if more_waiting {
                look = Look::Everywhere;
                continue;
            }
            look = tokio::select! {
                _ = stop.changed() => return,
                woke_by = self.idle(outbox_events.as_ref()) => woke_by,
            };
        }
    }

    /// Between passes with nothing to do: `check_interval` (or until an outbox file's settle
    /// time ends, if sooner), cut short when a file lands in an outbox folder (decision 0038)
    /// and, for an inbox, when the cloud has news for this host (decision 0036) — a file is
    /// taken at once, not at the next check.
    ///
    /// Returns where the next pass should look: an outbox event concerns only the outboxes.
    async fn idle(&self, outbox_events: Option<&folder_events::FolderEvents>) -> Look {
        let wait = self.next_look();
        let outbox_news = async {
            match outbox_events {
                Some(events) => {
                    events.renew();
                    events.changed().await;
                    // A burst of files (a copy of a folder) is taken by one pass, and a writer
                    // closing a file over and over cannot run passes back to back.
                    tokio::time::sleep(OUTBOX_EVENTS_GATHERED).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.inbox_news(wait) => Look::Everywhere,
            _ = outbox_news => Look::Outboxes,
        }
    }

    /// How long until the next look: the check interval, or less when a file is settling.
    fn next_look(&self) -> std::time::Duration {
        let interval = self.files.check_interval;
        match self.settle_due_ms {
            Some(due) => {
                let left = due.saturating_sub(self.clock.now_ms()).max(0) as u64;
                interval.min(std::time::Duration::from_millis(left))
            }
            None => interval,
        }
    }

    /// Waits `wait`, or less for an inbox whose host the cloud has news for.
    async fn inbox_news(&self, wait: std::time::Duration) {
        let started = std::time::Instant::now();
        if self.files.inbox.is_some() {
            match self.client.wait_for_transfer_news(wait).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::debug!(code = err.code(), "cannot wait for transfer news: {err}")
                }
            }
        }
        tokio::time::sleep(wait.saturating_sub(started.elapsed())).await;
    }

    /// One look at the inbox and every outbox rule.
    pub async fn pass(&mut self) -> Pass {
        self.pass_of(Look::Everywhere).await
    }

    async fn pass_of(&mut self, look: Look) -> Pass {
        let mut pass = Pass::default();
        self.settle_due_ms = None;
        if let Err(err) = self.refresh_credential() {
            tracing::warn!("cannot read the host identity: {err}");
            return pass;
        }
        if !self.registered {
            match self.register().await {
                Ok(()) => self.registered = true,
                Err(err) => {
                    tracing::warn!(code = err.code(), "cannot register the transfer key: {err}");
                    return pass;
                }
            }
        }
        // Only a look everywhere asks the cloud for news of the inbox: what happens in an
        // outbox folder never costs a request by itself.
        if let (Some(inbox), Look::Everywhere) = (self.files.inbox.clone(), look) {
            inbox::pass(self, &inbox, &mut pass).await;
        }
        for rule in self.files.outbox.clone() {
            outbox::pass(self, &rule, &mut pass).await;
        }
        pass
    }

    /// Picks up a rotated host key (`mftplus agent rotate-key` or the running agent).
    fn refresh_credential(&mut self) -> Result<(), AgentError> {
        let identity = self.db.identity()?.ok_or_else(|| AgentError::NotEnrolled {
            state_dir: self.config.state_dir.display().to_string(),
        })?;
        if identity.host_key.expose() != self.host_key {
            self.client = crate::enroll::enrolled_http_client(
                &self.config,
                &self.db,
                &identity,
                &*self.clock,
            )?;
            self.agent = AgentClient::from_client(&self.client, Some(identity.host_key.expose()));
            self.host_key = identity.host_key.expose().to_string();
        }
        Ok(())
    }

    async fn register(&self) -> Result<(), mftplus_client::ClientError> {
        let public = self.secret.public_key().to_encoded();
        self.agent
            .register_host_transfer_key(&self.host_id, &public)
            .await
    }
}
