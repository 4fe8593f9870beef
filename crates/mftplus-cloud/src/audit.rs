//! Writing security events to the hash-chained audit log.

use crate::state::AppState;
use mftplus_store::NewAuditEntry;
use std::sync::atomic::Ordering;

/// One security event, built fluently: `AuditEvent::new("user_created").actor(..).target(..)`.
pub struct AuditEvent {
    entry: NewAuditEntry,
}

impl AuditEvent {
    pub fn new(event: &str) -> AuditEvent {
        AuditEvent {
            entry: NewAuditEntry {
                ts_ms: 0,
                event: event.to_string(),
                actor: String::new(),
                target: String::new(),
                outcome: "success".into(),
                client_ip: String::new(),
                details: serde_json::Value::Object(Default::default()),
            },
        }
    }
    pub fn actor(mut self, actor: &str) -> Self {
        self.entry.actor = actor.to_string();
        self
    }
    pub fn target(mut self, target: &str) -> Self {
        self.entry.target = target.to_string();
        self
    }
    pub fn outcome(mut self, outcome: &str) -> Self {
        self.entry.outcome = outcome.to_string();
        self
    }
    pub fn ip(mut self, ip: &str) -> Self {
        self.entry.client_ip = ip.to_string();
        self
    }
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.entry.details = details;
        self
    }
}

impl AppState {
    /// Appends an event. A failure to write is logged and counted but does not fail the request
    /// that caused it: the action already happened, and refusing to answer would hide that.
    pub async fn audit(&self, event: AuditEvent) {
        self.audit_together(vec![event]).await
    }

    /// Appends events one action caused together, in order and in one commit; a failure is
    /// handled as [`AppState::audit`] handles it.
    pub async fn audit_together(&self, events: Vec<AuditEvent>) {
        let now = self.clock.now_ms();
        let entries: Vec<_> = events
            .into_iter()
            .map(|event| NewAuditEntry {
                ts_ms: now,
                ..event.entry
            })
            .collect();
        let result = match entries.as_slice() {
            [one] => self.store.append_audit(one).await.map(drop),
            many => self.store.append_audits(many).await.map(drop),
        };
        match result {
            Ok(()) => {
                self.metrics
                    .audit_events
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
            }
            Err(err) => {
                self.metrics
                    .audit_write_failures
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
                for entry in &entries {
                    tracing::error!(event = %entry.event, error = %err, "audit entry could not be written");
                }
            }
        }
    }
}
