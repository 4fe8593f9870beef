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
        let mut entry = event.entry;
        entry.ts_ms = self.clock.now_ms();
        match self.store.append_audit(&entry).await {
            Ok(_) => {
                self.metrics.audit_events.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                self.metrics
                    .audit_write_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(event = %entry.event, error = %err, "audit entry could not be written");
            }
        }
    }
}
