//! `mftctl hosts …`, `mftctl guests list` and `mftctl recovery arm|disarm`: what the fleet's
//! boxes reported, the recovery switch that lets a new box take over a lost host, and asking a
//! host's agent for a new key (`hosts rotate-key`).

use mftplus_client::GuestQuery;
use mftplus_types::fleet::HostInfo;
use serde_json::json;

use crate::cli::{GuestsCommand, HostsCommand, RecoveryCommand};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{details, emit, emit_json, note, or_dash, Table};

/// What the cloud clamps a recovery TTL to (0009 "DR").
const RECOVERY_TTL_SECS: std::ops::RangeInclusive<u64> = 60..=4 * 3600;

pub async fn run(ctx: &mut Context, command: &HostsCommand) -> Result<u8, CliError> {
    match command {
        HostsCommand::List { customer } => list(ctx, customer.as_deref()).await,
        HostsCommand::Show { id } => show(ctx, id).await,
        HostsCommand::Reports { id, limit } => reports(ctx, id, *limit).await,
        HostsCommand::RotateKey { id } => rotate_key(ctx, id).await,
    }
}

/// The cloud flags the host; its agent rotates at its next report (`docs/key-rotation.md`).
async fn rotate_key(ctx: &mut Context, id: &str) -> Result<u8, CliError> {
    let requested = ctx
        .call(|c| async move { c.request_host_key_rotation(id).await })
        .await?;
    if ctx.json() {
        emit_json(&requested)?;
    } else {
        emit(&format!(
            "asked host {id} to rotate its key: its agent does at its next report (audited as \
             host_key_rotated); the old key keeps working for the cloud's grace"
        ))?;
    }
    Ok(0)
}

async fn list(ctx: &mut Context, customer: Option<&str>) -> Result<u8, CliError> {
    let hosts = ctx
        .call(|c| async move { c.list_hosts(customer).await })
        .await?;
    if ctx.json() {
        emit_json(&hosts)?;
        return Ok(0);
    }
    if hosts.is_empty() {
        note("no hosts");
        return Ok(0);
    }
    let mut table = Table::new(&[
        "HOST",
        "CUSTOMER",
        "HOSTNAME",
        "LIVENESS",
        "CONVERGENCE",
        "GENERATION",
        "AGENT",
        "LAST REPORT",
    ]);
    for h in &hosts {
        table.row(vec![
            h.host_id.clone(),
            h.customer_id.clone(),
            h.hostname.clone(),
            h.liveness.clone(),
            h.convergence.clone(),
            format!("{}/{}", h.applied_generation, h.desired_generation),
            h.agent_version.clone(),
            or_dash(h.last_report_at.as_deref()),
        ]);
    }
    emit(&table.render())?;
    Ok(0)
}

async fn show(ctx: &mut Context, id: &str) -> Result<u8, CliError> {
    let host = ctx.call(|c| async move { c.get_host(id).await }).await?;
    if ctx.json() {
        emit_json(&host)?;
    } else {
        emit(&render(&host))?;
    }
    Ok(0)
}

fn render(h: &HostInfo) -> String {
    let pending = if h.pending_signature.is_empty() {
        "-".to_string()
    } else {
        h.pending_signature
            .iter()
            .map(|p| match &p.guest_id {
                Some(g) => format!("{} ({g})", p.op),
                None => p.op.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    details(&[
        ("host", h.host_id.clone()),
        ("customer", h.customer_id.clone()),
        ("hostname", h.hostname.clone()),
        ("platform", or_dash(h.platform.as_deref())),
        ("agent", h.agent_version.clone()),
        ("controller", or_dash(h.controller_version.as_deref())),
        ("liveness", h.liveness.clone()),
        ("convergence", h.convergence.clone()),
        ("desired generation", h.desired_generation.to_string()),
        ("applied generation", h.applied_generation.to_string()),
        ("last report", or_dash(h.last_report_at.as_deref())),
        ("enrolled", h.enrolled_at.clone()),
        (
            "recovery armed until",
            or_dash(h.recovery_mode_until.as_deref()),
        ),
        ("backup namespace", or_dash(h.backup_namespace.as_deref())),
        ("repository", or_dash(h.repository_fingerprint.as_deref())),
        ("escrow stored", or_dash(h.escrow_at.as_deref())),
        ("waiting for signature", pending),
    ])
}

async fn reports(ctx: &mut Context, id: &str, limit: Option<u32>) -> Result<u8, CliError> {
    let reports = ctx
        .call(|c| async move { c.host_reports(id, limit).await })
        .await?;
    if ctx.json() {
        emit_json(&reports)?;
        return Ok(0);
    }
    if reports.is_empty() {
        note(&format!("host {id} has not reported yet"));
        return Ok(0);
    }
    let mut table = Table::new(&["ID", "RECEIVED", "AGENT", "APPLIED", "GUESTS", "CPU %"]);
    for r in &reports {
        let field = |name: &str| r.report.get(name).cloned().unwrap_or_default();
        let text = |v: serde_json::Value| match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => "-".into(),
            other => other.to_string(),
        };
        let guests = field("guests").as_array().map_or(0, Vec::len);
        let cpu = r
            .report
            .pointer("/system/cpu_percent")
            .and_then(serde_json::Value::as_f64)
            .map_or("-".to_string(), |p| format!("{p:.1}"));
        table.row(vec![
            r.id.to_string(),
            r.received_at.clone(),
            text(field("agent_version")),
            text(field("applied_generation")),
            guests.to_string(),
            cpu,
        ]);
    }
    emit(&table.render())?;
    Ok(0)
}

pub async fn run_guests(ctx: &mut Context, command: &GuestsCommand) -> Result<u8, CliError> {
    let GuestsCommand::List { host, customer } = command;
    let query = GuestQuery {
        host: host.clone(),
        customer: customer.clone(),
    };
    let query = &query;
    let guests = ctx
        .call(|c| async move { c.list_guests(query).await })
        .await?;
    if ctx.json() {
        emit_json(&guests)?;
        return Ok(0);
    }
    if guests.is_empty() {
        note("no guests");
        return Ok(0);
    }
    let mut table = Table::new(&[
        "GUEST",
        "NAME",
        "HOST",
        "CUSTOMER",
        "STATUS",
        "CONTROLLER",
        "LAST SEEN",
    ]);
    for g in &guests {
        table.row(vec![
            g.guest_id.clone(),
            g.display_name.clone(),
            g.host_id.clone(),
            g.customer_id.clone(),
            g.status.clone(),
            or_dash(g.controller_version.as_deref()),
            or_dash(g.last_seen_at.as_deref()),
        ]);
    }
    emit(&table.render())?;
    Ok(0)
}

pub async fn run_recovery(ctx: &mut Context, command: &RecoveryCommand) -> Result<u8, CliError> {
    match command {
        RecoveryCommand::Arm { host, ttl } => {
            if !RECOVERY_TTL_SECS.contains(ttl) {
                note(&format!(
                    "warning: the cloud clamps the recovery TTL to 60s–4h; {ttl}s will be clamped"
                ));
            }
            let ttl = *ttl;
            let state = ctx
                .call(|c| async move { c.arm_recovery(host, ttl).await })
                .await?;
            if ctx.json() {
                emit_json(&state)?;
            } else {
                emit(&format!(
                    "recovery armed for host {} until {}",
                    state.host_id,
                    or_dash(state.recovery_mode_until.as_deref())
                ))?;
                note("a new box can now re-enroll as this host with the customer's retrieval password");
            }
            Ok(0)
        }
        RecoveryCommand::Disarm { host } => {
            ctx.call(|c| async move { c.disarm_recovery(host).await })
                .await?;
            if ctx.json() {
                emit_json(&json!({ "host_id": host, "recovery_mode_until": null }))?;
            } else {
                emit(&format!("recovery disarmed for host {host}"))?;
            }
            Ok(0)
        }
    }
}
