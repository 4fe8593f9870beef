//! The agent's loop: report (the heartbeat and the poll), then act on the answer.
//!
//! One cycle: observe the guests, send the host report, and unless the customer is blocked
//! fetch the desired state when its generation moved, take delivered signed ops, reconcile,
//! and send the verdicts owed. The next cycle comes after the envelope's interval, clamped
//! and jittered so a fleet restarted together does not report in lockstep; at once when the
//! cycle made progress, so the converged generation reaches the cloud without waiting a whole
//! interval. Errors never end the loop: it backs off exponentially up to a cap and tries
//! again. Only a key the server keeps refusing past a grace period, or local state that cannot
//! be written, stops the agent.

use crate::backup::setup::upload_owed_escrow;
use crate::certificate::{self, StoredCertificate, Upkeep};
use crate::config::AgentConfig;
use crate::driver::{GuestDriver, ObservedGuest};
use crate::enroll::client_options;
use crate::error::AgentError;
use crate::key_rotation::{self, RotateError};
use crate::ops::{self, FOLDED};
use crate::probe::storage::storage_targets;
use crate::probe::system::SystemSampler;
use crate::reconcile::{reconcile, Outcome, ReconcileError};
use crate::sd_notify::Notifier;
use crate::state::{Identity, OpState, StateDb};
use crate::storage::{mount_root, reconcile_storage, StorageOutcome};
use mftplus_base::SharedClock;
use mftplus_client::{AgentClient, ClientError};
use mftplus_signing::AllowedSigners;
use mftplus_types::fleet::{
    ControlEnvelope, GuestKind, GuestStatus, GuestStatusReport, HostReport, PendingChange,
};
use rand::Rng;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What one cycle achieved.
#[derive(Debug)]
pub enum Cycle {
    /// The server took the report.
    Reported {
        envelope: ControlEnvelope,
        /// Something changed that the cloud should hear about at once.
        progressed: bool,
    },
    /// The server could not be reached or refused; the loop backs off.
    Failed(ClientError),
}

fn build_client(
    config: &AgentConfig,
    identity: &Identity,
    certificate: Option<&StoredCertificate>,
) -> Result<AgentClient, AgentError> {
    AgentClient::with_options(
        &config.server_url,
        Some(identity.host_key.expose()),
        client_options(config, certificate)?,
    )
    .map_err(|e| AgentError::Input(format!("server.url: {e}")))
}

pub struct Agent {
    config: AgentConfig,
    db: StateDb,
    identity: Identity,
    pinned: AllowedSigners,
    client: AgentClient,
    driver: Arc<dyn GuestDriver>,
    sampler: SystemSampler,
    clock: SharedClock,
    notifier: Notifier,
    observed: Vec<ObservedGuest>,
    waiting: Vec<PendingChange>,
    unsupported: Vec<(String, GuestKind)>,
    refetch: bool,
    refused_since_ms: Option<i64>,
    /// Client-certificate upkeep (`certificate.rs`): the serial the client presents, when to
    /// look next, and the last recovery notice (said once, not every cycle).
    presented_serial: Option<String>,
    next_certificate_look: i64,
    recovery_notice: Option<String>,
}

impl Agent {
    /// Opens the state and refuses to run unenrolled. The server URL is the config's, so
    /// pointing an enrolled box at an edge hub is a config change only.
    pub fn open(
        config: AgentConfig,
        driver: Arc<dyn GuestDriver>,
        clock: SharedClock,
    ) -> Result<Agent, AgentError> {
        let (db, interrupted) = StateDb::open(&config.state_dir)?;
        if interrupted > 0 {
            tracing::warn!(
                steps = interrupted,
                "the agent stopped in the middle of guest steps; reconciling from reality"
            );
        }
        let identity = db.identity()?.ok_or_else(|| AgentError::NotEnrolled {
            state_dir: config.state_dir.display().to_string(),
        })?;
        let pinned = AllowedSigners::parse(&identity.operator_keys)
            .map_err(|e| AgentError::OperatorKeys(e.to_string()))?;
        let now = clock.now_secs();
        let live = db.certificate()?.filter(|cert| cert.not_after > now);
        let client = build_client(&config, &identity, live.as_ref())?;
        let sampler = SystemSampler::new(config.disk_path.clone());
        Ok(Agent {
            config,
            db,
            identity,
            pinned,
            client,
            driver,
            sampler,
            clock,
            notifier: Notifier::from_env(),
            observed: Vec::new(),
            waiting: Vec::new(),
            unsupported: Vec::new(),
            refetch: false,
            refused_since_ms: None,
            presented_serial: live.map(|cert| cert.serial),
            next_certificate_look: 0,
            recovery_notice: None,
        })
    }

    pub fn host_id(&self) -> &str {
        &self.identity.host_id
    }

    pub fn state(&self) -> &StateDb {
        &self.db
    }

    /// Runs cycles until `stop` turns true; the step in flight finishes first.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<(), AgentError> {
        tracing::info!(
            host_id = %self.identity.host_id,
            server = %self.config.server_url,
            driver = self.driver.name(),
            "mftplus agent running"
        );
        self.notifier.ready();
        let mut backoff = self.config.backoff_initial;
        let mut quick_cycles = 0;
        while !*stop.borrow() {
            let wait = match self.cycle(&stop).await? {
                Cycle::Reported {
                    envelope,
                    progressed,
                } => {
                    backoff = self.config.backoff_initial;
                    // Report progress at once, but never spin: a few quick cycles in a row at most.
                    if progressed && quick_cycles < 3 {
                        quick_cycles += 1;
                        Duration::ZERO
                    } else {
                        quick_cycles = 0;
                        jitter(self.interval(&envelope), 0.1)
                    }
                }
                Cycle::Failed(err) => {
                    let wait = jitter(backoff, 0.2);
                    tracing::warn!(
                        code = err.code(),
                        retry_in_ms = wait.as_millis() as u64,
                        "cannot report: {}",
                        err.message()
                    );
                    backoff = (backoff * 2).min(self.config.backoff_max);
                    wait
                }
            };
            self.sleep(wait, &mut stop).await;
        }
        self.notifier.stopping();
        tracing::info!("mftplus agent stopped");
        Ok(())
    }

    fn interval(&self, envelope: &ControlEnvelope) -> Duration {
        Duration::from_secs(envelope.poll_interval_seconds)
            .clamp(self.config.poll_min, self.config.poll_max)
    }

    async fn sleep(&self, wait: Duration, stop: &mut watch::Receiver<bool>) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            self.notifier.ping();
            let tick = self.notifier.ping_every().map_or(deadline, |every| {
                (tokio::time::Instant::now() + every).min(deadline)
            });
            tokio::select! {
                _ = tokio::time::sleep_until(tick) => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            if tokio::time::Instant::now() >= deadline {
                return;
            }
        }
    }

    /// One report and what follows from its answer.
    pub async fn cycle(&mut self, stop: &watch::Receiver<bool>) -> Result<Cycle, AgentError> {
        self.notifier.ping();
        self.key_upkeep().await?;
        self.certificate_upkeep().await?;
        match self.driver.list().await {
            Ok(observed) => self.observed = observed,
            Err(err) => tracing::warn!(code = err.code(), "cannot list guests: {err}"),
        }
        let report = self.report()?;
        let envelope = match self.client.host_report(&report).await {
            Ok(envelope) => {
                self.refused_since_ms = None;
                envelope
            }
            Err(err) => {
                self.note_refusal(&err)?;
                // A refused handshake or a certificate error may be cured by what is stored
                // now (a recovery run from the command line): look again next cycle.
                self.next_certificate_look = 0;
                return Ok(Cycle::Failed(err));
            }
        };
        if envelope.rotate_key {
            self.rotate_as_asked().await?;
        }
        // A backup escrow the cloud could not take at `backup init` (it was away).
        match upload_owed_escrow(&self.db, &self.client, &self.identity.host_id, &*self.clock).await
        {
            Ok(true) => tracing::info!("the backup key's escrow is with the cloud now"),
            Ok(false) => {}
            Err(err) => tracing::warn!(code = err.code(), "the backup escrow is still owed: {err}"),
        }
        if envelope.blocked {
            // A blocked customer's box keeps reporting and changes nothing.
            return Ok(Cycle::Reported {
                envelope,
                progressed: false,
            });
        }
        match self.converge(&envelope, stop).await {
            Ok(progressed) => Ok(Cycle::Reported {
                envelope,
                progressed,
            }),
            Err(CycleError::Client(err)) => Ok(Cycle::Failed(err)),
            Err(CycleError::Agent(err)) => Err(err),
        }
    }

    /// Uses a host key another process stored (`mftplus agent rotate-key`), and finishes a
    /// rotation that a crash, or that command, left pending (`key_rotation.rs`).
    async fn key_upkeep(&mut self) -> Result<(), AgentError> {
        self.reload_key()?;
        let host_id = self.identity.host_id.clone();
        match key_rotation::resume(&self.db, &self.client, &host_id).await {
            Ok(None) => return Ok(()),
            Ok(Some(rotated)) => tracing::info!(
                old_key_valid_until = %rotated.previous_key_valid_until,
                repeated = rotated.repeated,
                "host key rotated; the new key is in use"
            ),
            Err(RotateError::State(err)) => return Err(err.into()),
            Err(err @ RotateError::Retry(_)) => {
                tracing::warn!(code = err.code(), "{err}; trying again next cycle")
            }
            Err(err @ RotateError::Refused(_)) => tracing::error!(
                code = err.code(),
                "{err}; the rotation is dropped and the stored key stays in use"
            ),
        }
        self.reload_key()
    }

    /// The operator asked for a new host key (`mftctl hosts rotate-key`): the same crash-safe
    /// rotation as `mftplus agent rotate-key`; one already pending is finished instead.
    async fn rotate_as_asked(&mut self) -> Result<(), AgentError> {
        let host_id = self.identity.host_id.clone();
        let now = self.clock.now_ms();
        match key_rotation::rotate(&self.db, &self.client, &host_id, now).await {
            Ok(rotated) => tracing::info!(
                old_key_valid_until = %rotated.previous_key_valid_until,
                "host key rotated as the operator asked; the new key is in use"
            ),
            Err(RotateError::State(err)) => return Err(err.into()),
            Err(err) => tracing::warn!(code = err.code(), "{err}"),
        }
        self.reload_key()
    }

    /// Rebuilds the client when `agent.db` holds another host key than the one in use.
    fn reload_key(&mut self) -> Result<(), AgentError> {
        let Some(stored) = self.db.identity()? else {
            return Ok(());
        };
        if same_secret(stored.host_key.expose(), self.identity.host_key.expose()) {
            return Ok(());
        }
        self.identity.host_key = stored.host_key;
        let now = self.clock.now_secs();
        let live = self.db.certificate()?.filter(|cert| cert.not_after > now);
        self.client = build_client(&self.config, &self.identity, live.as_ref())?;
        self.presented_serial = live.map(|cert| cert.serial);
        self.refused_since_ms = None;
        tracing::info!("using the host key stored in agent.db");
        Ok(())
    }

    /// Asks for, renews or reports on the client certificate when it is time to look.
    async fn certificate_upkeep(&mut self) -> Result<(), AgentError> {
        let now = self.clock.now_secs();
        if self.config.client_cert.is_some() || now < self.next_certificate_look {
            return Ok(());
        }
        let host_id = self.identity.host_id.clone();
        let outcome = certificate::upkeep(&self.db, &self.client, &host_id, now).await?;
        self.next_certificate_look = match &outcome {
            // Look again at least every `watch_interval` (five minutes at most):
            // `agent certificate --recover` may have stored a new one from another process.
            Upkeep::Current {
                renew_at,
                look_every,
            } => (*renew_at).min(now + look_every),
            Upkeep::Replaced { .. } => now,
            Upkeep::NeedsRecovery { .. } | Upkeep::Retry(_) => now + 60,
            Upkeep::NoAuthority => now + 3600,
        };
        match outcome {
            Upkeep::Replaced { serial, not_after } => {
                tracing::info!(%serial, not_after, "client certificate stored");
                self.recovery_notice = None;
            }
            Upkeep::NeedsRecovery { why } if self.recovery_notice.as_ref() != Some(&why) => {
                tracing::error!(
                    host_id = %host_id,
                    "{why}; this box keeps running without it. Recover with \
                     `mftplus agent certificate --recover` (the customer's retrieval password)"
                );
                self.recovery_notice = Some(why);
            }
            Upkeep::Retry(err) => tracing::warn!(
                code = err.code(),
                "cannot reach the certificate authority now: {}",
                err.message()
            ),
            _ => {}
        }
        // Present what is stored and live; an expired one would only fail the handshake.
        let live = self.db.certificate()?.filter(|cert| cert.not_after > now);
        let serial = live.as_ref().map(|cert| cert.serial.clone());
        if serial != self.presented_serial {
            self.client = build_client(&self.config, &self.identity, live.as_ref())?;
            self.presented_serial = serial;
        }
        Ok(())
    }

    fn note_refusal(&mut self, err: &ClientError) -> Result<(), AgentError> {
        // Only the key being refused counts; a missing or lapsed certificate is not that.
        if err.status() != Some(401) || err.code().starts_with("certificate_") {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let since = *self.refused_since_ms.get_or_insert(now);
        let refused_for = Duration::from_millis((now - since).max(0) as u64);
        if refused_for > self.config.auth_grace {
            return Err(AgentError::KeyRefused {
                host_id: self.identity.host_id.clone(),
                seconds: refused_for.as_secs(),
            });
        }
        Ok(())
    }

    async fn converge(
        &mut self,
        envelope: &ControlEnvelope,
        stop: &watch::Receiver<bool>,
    ) -> Result<bool, CycleError> {
        let now = self.clock.now_ms();
        let (mut generation, _) = self.db.desired()?;
        let mut progressed = false;
        if envelope.desired_generation != generation || self.refetch {
            let fetched = self.client.desired_state(&self.identity.host_id).await?;
            self.db
                .store_desired(fetched.generation, &fetched.desired_state, now)?;
            generation = fetched.generation;
            self.refetch = false;
        }
        let mut verdicts = Vec::new();
        if envelope.has_signed_ops {
            let delivered = self.client.signed_ops(&self.identity.host_id).await?;
            verdicts = ops::intake(
                &self.db,
                &delivered,
                &self.pinned,
                &self.identity.host_id,
                now,
            )?;
        }
        progressed |= self.reconcile(generation, stop).await?;
        verdicts.extend(ops::pending_verdicts(&self.db)?);
        if !verdicts.is_empty() {
            let host_id = self.identity.host_id.clone();
            let refetch =
                ops::send_verdicts(&self.db, &self.client, &host_id, &verdicts, now).await?;
            self.refetch |= refetch;
            progressed |= refetch;
        }
        Ok(progressed)
    }

    /// Reconciles toward the cached desired state with the verified ops folded in; records
    /// what became of each op and the generation reality now matches.
    async fn reconcile(
        &mut self,
        generation: u64,
        stop: &watch::Receiver<bool>,
    ) -> Result<bool, CycleError> {
        let (_, cloud) = self.db.desired()?;
        let records = self.db.ops_in(&FOLDED)?;
        let effective = ops::effective(&cloud, &records);
        let authorizations = ops::authorizations(&records);
        // The drives first: independent of the guest driver, which may be away.
        let storage = reconcile_storage(
            &self.db,
            self.clock.as_ref(),
            generation,
            &effective,
            authorizations.clone(),
            &mount_root(&self.config.state_dir),
            stop,
        )
        .await?;
        let outcome = match reconcile(
            &self.db,
            self.driver.as_ref(),
            self.clock.as_ref(),
            generation,
            &effective,
            authorizations.clone(),
            stop,
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(ReconcileError::State(err)) => return Err(AgentError::State(err).into()),
            Err(ReconcileError::Driver(err)) => {
                tracing::warn!(code = err.code(), "cannot reconcile: {err}");
                // Record the storage ops' results only: nothing can be said of the others.
                let unknown = Outcome {
                    interrupted: true,
                    ..Outcome::default()
                };
                self.settle_ops(&unknown, &storage, &authorizations)?;
                return Ok(storage.steps_done > 0);
            }
        };
        self.settle_ops(&outcome, &storage, &authorizations)?;
        let applied_before = self.db.applied_generation()?;
        let storage_settled = storage.remaining.is_empty()
            && storage.waiting.is_empty()
            && storage.steps_failed == 0
            && !storage.interrupted;
        let converged = outcome.remaining.is_converged()
            && outcome.steps_failed == 0
            && !outcome.interrupted
            && storage_settled;
        if converged && applied_before != generation {
            self.db.set_applied_generation(generation)?;
            tracing::info!(generation, "converged");
        }
        let progressed = outcome.steps_done > 0
            || storage.steps_done > 0
            || (converged && applied_before != generation);
        self.observed = outcome.observed;
        self.waiting = outcome.remaining.waiting;
        self.waiting.extend(storage.waiting);
        self.unsupported = outcome.remaining.unsupported;
        Ok(progressed)
    }

    /// Each authorized op is now executed or failed: by the step that carried it out, or, when
    /// no step was needed, because its change is in effect already (a crash after the action
    /// and before this record, or an op whose change the driver has nothing to do for).
    fn settle_ops(
        &self,
        outcome: &Outcome,
        storage: &StorageOutcome,
        authorizations: &[crate::plan::Authorization],
    ) -> Result<(), AgentError> {
        let now = self.clock.now_ms();
        let op_results: Vec<&(String, Result<serde_json::Value, serde_json::Value>)> = outcome
            .op_results
            .iter()
            .chain(&storage.op_results)
            .collect();
        for (op_id, result) in op_results.iter().copied() {
            let (state, value) = match result {
                Ok(value) => (OpState::Executed, value),
                Err(value) => (OpState::Failed, value),
            };
            self.db
                .set_op_state(op_id, &[OpState::Authorized], state, Some(value), now)?;
        }
        if outcome.interrupted || storage.interrupted {
            return Ok(());
        }
        let still_planned: Vec<&str> = outcome
            .remaining
            .steps
            .iter()
            .filter_map(|s| s.op_id.as_deref())
            .chain(storage.remaining.iter().filter_map(|s| s.op_id.as_deref()))
            .collect();
        for auth in authorizations {
            let handled = op_results.iter().any(|(id, _)| id == &auth.op_id);
            if !handled && !still_planned.contains(&auth.op_id.as_str()) {
                let result = json!({"already_in_effect": true, "op": auth.action.op});
                self.db.set_op_state(
                    &auth.op_id,
                    &[OpState::Authorized],
                    OpState::Executed,
                    Some(&result),
                    now,
                )?;
            }
        }
        Ok(())
    }

    fn report(&mut self) -> Result<HostReport, AgentError> {
        let mut storage_targets = storage_targets();
        let backup_snapshots = crate::backup::annotate_report(&self.db, &mut storage_targets)?;
        let mut guests: Vec<GuestStatusReport> = self
            .observed
            .iter()
            .map(|g| GuestStatusReport {
                guest_id: g.guest_id.clone(),
                status: g.status,
                spec: Some(g.spec.clone()),
                controller_version: None,
            })
            .collect();
        guests.extend(self.unsupported.iter().map(|(id, _)| GuestStatusReport {
            guest_id: id.clone(),
            status: GuestStatus::Unknown,
            spec: None,
            controller_version: None,
        }));
        Ok(HostReport {
            host_id: self.identity.host_id.clone(),
            agent_version: mftplus_types::VERSION.into(),
            controller_version: None,
            applied_generation: self.db.applied_generation()?,
            reported_at: Some(
                chrono::DateTime::from_timestamp_millis(self.clock.now_ms())
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ),
            system: self.sampler.sample(),
            guests,
            storage_targets,
            backup_snapshots,
            tunnel: None,
            pending_signature: self.waiting.clone(),
        })
    }
}

enum CycleError {
    Client(ClientError),
    Agent(AgentError),
}

impl From<ClientError> for CycleError {
    fn from(err: ClientError) -> Self {
        CycleError::Client(err)
    }
}

impl From<AgentError> for CycleError {
    fn from(err: AgentError) -> Self {
        CycleError::Agent(err)
    }
}

impl From<crate::state::StateError> for CycleError {
    fn from(err: crate::state::StateError) -> Self {
        CycleError::Agent(err.into())
    }
}

/// Compares two keys without an early exit.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0_u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `base` ± `fraction`, at random.
fn jitter(base: Duration, fraction: f64) -> Duration {
    if base.is_zero() {
        return base;
    }
    let factor = rand::thread_rng().gen_range((1.0 - fraction)..=(1.0 + fraction));
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::jitter;
    use std::time::Duration;

    #[test]
    fn jitter_stays_within_its_band() {
        for _ in 0..1000 {
            let d = jitter(Duration::from_secs(100), 0.1);
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
        assert_eq!(jitter(Duration::ZERO, 0.1), Duration::ZERO);
    }
}
