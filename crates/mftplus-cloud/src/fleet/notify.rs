//! Notifications for fleet events (SPEC §3, decision 0009): operator tier in English to the
//! operators' addresses and every webhook, customer tier in the customer's language to the
//! customer's address for the events that concern them. A per-(customer, subject, kind, tier)
//! cooldown gate in the database keeps a flapping host from flooding anyone, across replicas;
//! recoveries are never held back. Every attempt is a `notification_log` row.

use crate::clock::rfc3339;
use crate::handlers::fleet::event_to_api;
use crate::state::AppState;
use mftplus_notify::{EmailMessage, NotifyEvent, Tier};
use mftplus_store::{EventFilter, EventRow, NewNotificationLog};
use serde_json::{json, Value};

/// Event kinds that notify at all: those the templates have words for.
const NOTIFIABLE: [&str; 7] = mftplus_notify::NOTIFIABLE_KINDS;
/// Of those, the ones the customer hears about too.
const CUSTOMER_KINDS: [&str; 3] = ["host_down", "host_recovered", "expected_backup_missed"];
const PAGE: u32 = 200;

/// Starts notifying from the newest event, so a restart does not re-send history.
pub async fn init_cursor(state: &AppState) {
    let newest = state
        .store
        .list_events(&EventFilter {
            limit: 1,
            ..EventFilter::default()
        })
        .await
        .ok()
        .and_then(|rows| rows.first().map(|row| row.id))
        .unwrap_or(0);
    let mut cursor = state.fleet.notify_cursor.lock().await;
    if cursor.is_none() {
        *cursor = Some(newest);
    }
}

/// Sends what the events since the last call call for, without holding up the caller.
pub fn notify_soon(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move { notify_new_events(&state).await });
}

/// Sends what the events since the last call call for. Calls are serialized per process.
pub async fn notify_new_events(state: &AppState) {
    if !state.config.config.notifications.enabled {
        return;
    }
    let mut cursor = state.fleet.notify_cursor.lock().await;
    let Some(mut after) = *cursor else {
        return;
    };
    loop {
        let events = match state
            .store
            .list_events(&EventFilter {
                after_id: Some(after),
                limit: PAGE,
                ..EventFilter::default()
            })
            .await
        {
            Ok(events) => events,
            Err(err) => {
                tracing::warn!(error = %err, "reading events to notify failed");
                break;
            }
        };
        for event in &events {
            if NOTIFIABLE.contains(&event.kind.as_str()) {
                dispatch(state, event).await;
            }
            after = event.id;
        }
        *cursor = Some(after);
        if events.len() < PAGE as usize {
            break;
        }
    }
}

async fn dispatch(state: &AppState, event: &EventRow) {
    let customer = match &event.customer_id {
        Some(id) => state.store.get_customer(id).await.ok().flatten(),
        None => None,
    };
    let details: Value = serde_json::from_str(&event.details_json).unwrap_or_else(|_| json!({}));
    let notify_event = NotifyEvent {
        kind: event.kind.clone(),
        customer_id: event.customer_id.clone().unwrap_or_default(),
        customer_name: customer
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default(),
        host_id: event.host_id.clone(),
        guest_id: event.guest_id.clone(),
        at: rfc3339(event.at_ms),
        details: details.clone(),
    };
    let config = &state.config.config.notifications;
    let cooldown_ms = mftplus_types::duration::parse_duration_secs(&config.cooldown)
        .map(|secs| secs as i64 * 1000)
        .unwrap_or(6 * 3600 * 1000);
    let subject_key = details
        .get("target")
        .and_then(Value::as_str)
        .or(event.guest_id.as_deref())
        .or(event.op_id.as_deref())
        .unwrap_or("-");
    for (tier, recipients, locale) in tiers(config, customer.as_ref(), event) {
        let tier_name = match tier {
            Tier::Operator => "operator",
            Tier::Customer => "customer",
        };
        let (key, window) = cooldown_gate(event, subject_key, tier_name, cooldown_ms);
        let claimed = state
            .store
            .claim_notification(
                &key,
                event.customer_id.as_deref(),
                state.clock.now_ms(),
                window,
                false,
            )
            .await
            .unwrap_or(false);
        if !claimed {
            log(state, event, tier_name, "-", "-", "suppressed", None).await;
            continue;
        }
        let (subject, body) = mftplus_notify::render(&notify_event, tier, &locale);
        if !recipients.is_empty() {
            send_email(state, event, tier_name, recipients, subject, body).await;
        }
        if tier == Tier::Operator {
            send_webhooks(state, event).await;
        }
    }
}

/// Who hears of `event`, and in which language: the operators always, the customer for the
/// kinds that concern them.
fn tiers(
    config: &crate::config::NotificationsSection,
    customer: Option<&mftplus_store::CustomerRow>,
    event: &EventRow,
) -> Vec<(Tier, Vec<String>, String)> {
    let mut tiers = vec![(
        Tier::Operator,
        config.operator_emails.clone(),
        "en".to_string(),
    )];
    if let Some(customer) = customer.filter(|_| CUSTOMER_KINDS.contains(&event.kind.as_str())) {
        tiers.push((
            Tier::Customer,
            vec![customer.email.clone()],
            customer.locale.clone(),
        ));
    }
    tiers
}

/// The cooldown gate's key and window for one tier of `event`. A recovery is keyed by its own
/// event, so it is never held back by the cooldown of an earlier one, and still sent once
/// across replicas.
fn cooldown_gate(
    event: &EventRow,
    subject_key: &str,
    tier_name: &str,
    cooldown_ms: i64,
) -> (String, i64) {
    if event.kind == "host_recovered" {
        return (format!("event:{}|{tier_name}", event.id), i64::MAX / 4);
    }
    let key = format!(
        "{}|{}|{subject_key}|{}|{tier_name}",
        event.customer_id.as_deref().unwrap_or("-"),
        event.host_id.as_deref().unwrap_or("-"),
        event.kind
    );
    (key, cooldown_ms)
}

async fn send_email(
    state: &AppState,
    event: &EventRow,
    tier: &str,
    recipients: Vec<String>,
    subject: String,
    body: String,
) {
    let to = recipients.join(", ");
    let Some(mailer) = &state.fleet.mailer else {
        log(
            state,
            event,
            tier,
            "email",
            &to,
            "failed",
            Some("SMTP is not configured (notifications.smtp.host)".into()),
        )
        .await;
        return;
    };
    let result = mailer
        .send(&EmailMessage {
            to: recipients,
            subject,
            body,
        })
        .await;
    match result {
        Ok(()) => log(state, event, tier, "email", &to, "sent", None).await,
        Err(err) => {
            log(
                state,
                event,
                tier,
                "email",
                &to,
                "failed",
                Some(err.to_string()),
            )
            .await
        }
    }
}

async fn send_webhooks(state: &AppState, event: &EventRow) {
    let payload = json!({"event": event_to_api(event)});
    for (url, secret) in &state.fleet.webhooks {
        let delivery = format!("evt-{}-{}", event.id, uuid::Uuid::new_v4().simple());
        let result = state
            .fleet
            .webhook_sender
            .send(url, secret, &event.kind, &delivery, &payload)
            .await;
        let (status, error) = match result {
            Ok(()) => ("sent", None),
            Err(err) => ("failed", Some(err.to_string())),
        };
        log(state, event, "operator", "webhook", url, status, error).await;
    }
}

async fn log(
    state: &AppState,
    event: &EventRow,
    tier: &str,
    channel: &str,
    recipient: &str,
    status: &str,
    error: Option<String>,
) {
    let entry = NewNotificationLog {
        at_ms: state.clock.now_ms(),
        event_id: Some(event.id),
        customer_id: event.customer_id.clone(),
        tier: tier.into(),
        channel: channel.into(),
        recipient: recipient.into(),
        status: status.into(),
        error,
    };
    if let Err(err) = state.store.log_notification(&entry).await {
        tracing::warn!(error = %err, "writing the notification log failed");
    }
}
