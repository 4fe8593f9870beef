//! `mftctl events` (with `--follow`) and `mftctl notifications list`: what happened in the
//! fleet and who was told. Events print as log lines, one per event, so `--follow` output and
//! a one-off listing read (and grep) the same.

use std::time::Duration;

use mftplus_client::EventQuery;
use mftplus_types::fleet::EventInfo;

use crate::cli::{EventsArgs, NotificationsCommand};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{emit, emit_json, note, or_dash, Table};

const FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

pub async fn run(ctx: &mut Context, args: &EventsArgs) -> Result<u8, CliError> {
    let mut query = EventQuery {
        customer: args.customer.clone(),
        host: args.host.clone(),
        kind: args.kind.clone(),
        after_id: None,
        limit: args.limit,
    };
    let first = fetch(ctx, &query).await?;
    if !args.follow {
        if ctx.json() {
            emit_json(&first)?;
        } else if first.is_empty() {
            note("no events");
        } else {
            print_lines(&first)?;
        }
        return Ok(0);
    }
    // Following: JSON becomes one compact object per line, so a consumer can read a stream.
    let mut batch = first;
    loop {
        if ctx.json() {
            for event in &batch {
                emit(&compact(event)?)?;
            }
        } else {
            print_lines(&batch)?;
        }
        if let Some(last) = batch.iter().map(|e| e.id).max() {
            query.after_id = Some(query.after_id.map_or(last, |seen| seen.max(last)));
        }
        tokio::time::sleep(FOLLOW_INTERVAL).await;
        batch = fetch(ctx, &query).await?;
        // A server that ignored after_id must not make us print the same events forever.
        if let Some(seen) = query.after_id {
            batch.retain(|e| e.id > seen);
        }
    }
}

async fn fetch(ctx: &mut Context, query: &EventQuery) -> Result<Vec<EventInfo>, CliError> {
    let mut events = ctx
        .call(|c| async move { c.list_events(query).await })
        .await?;
    events.sort_by_key(|e| e.id);
    Ok(events)
}

fn compact(event: &EventInfo) -> Result<String, CliError> {
    serde_json::to_string(event)
        .map_err(|e| CliError::new("internal", format!("cannot encode JSON: {e}")))
}

fn print_lines(events: &[EventInfo]) -> Result<(), CliError> {
    if events.is_empty() {
        return Ok(());
    }
    let text: String = events.iter().map(|e| event_line(e) + "\n").collect();
    emit(&text)
}

pub(crate) fn event_line(e: &EventInfo) -> String {
    let mut line = format!("#{} {} {:<8} {}", e.id, e.at, e.severity, e.kind);
    for (name, value) in [
        ("customer", &e.customer_id),
        ("host", &e.host_id),
        ("guest", &e.guest_id),
        ("op", &e.op_id),
    ] {
        if let Some(value) = value {
            line.push_str(&format!(" {name}={value}"));
        }
    }
    let empty = e.details.is_null() || e.details.as_object().is_some_and(|m| m.is_empty());
    if !empty {
        line.push(' ');
        line.push_str(&e.details.to_string());
    }
    line
}

pub async fn run_notifications(
    ctx: &mut Context,
    command: &NotificationsCommand,
) -> Result<u8, CliError> {
    let NotificationsCommand::List = command;
    let entries = ctx
        .call(|c| async move { c.list_notifications().await })
        .await?;
    if ctx.json() {
        emit_json(&entries)?;
        return Ok(0);
    }
    if entries.is_empty() {
        note("no notifications");
        return Ok(0);
    }
    let mut table = Table::new(&[
        "ID",
        "AT",
        "TIER",
        "CHANNEL",
        "RECIPIENT",
        "STATUS",
        "EVENT",
        "CUSTOMER",
        "ERROR",
    ]);
    for n in &entries {
        table.row(vec![
            n.id.to_string(),
            n.at.clone(),
            n.tier.clone(),
            n.channel.clone(),
            n.recipient.clone(),
            n.status.clone(),
            n.event_id.map_or("-".into(), |id| id.to_string()),
            or_dash(n.customer_id.as_deref()),
            or_dash(n.error.as_deref()),
        ]);
    }
    emit(&table.render())?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_lines_name_only_what_is_set() {
        let mut event = EventInfo {
            id: 42,
            at: "2026-01-01T00:00:00Z".into(),
            kind: "host_down".into(),
            severity: "critical".into(),
            customer_id: Some("acme".into()),
            host_id: Some("h-1".into()),
            guest_id: None,
            op_id: None,
            details: json!({}),
        };
        assert_eq!(
            event_line(&event),
            "#42 2026-01-01T00:00:00Z critical host_down customer=acme host=h-1"
        );
        event.severity = "info".into();
        event.details = json!({"age_seconds": 3700});
        assert_eq!(
            event_line(&event),
            "#42 2026-01-01T00:00:00Z info     host_down customer=acme host=h-1 {\"age_seconds\":3700}"
        );
    }
}
