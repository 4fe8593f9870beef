//! `mftctl hubs …`: the edge hubs that phoned home and the deploy keys they register with
//! (decision 0010).

use mftplus_types::hubs::HubInfo;
use serde_json::json;

use crate::cli::{DeployKeysCommand, HubsCommand};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{details, emit, emit_json, note, or_dash, Table};

pub async fn run(ctx: &mut Context, command: &HubsCommand) -> Result<u8, CliError> {
    match command {
        HubsCommand::List => list(ctx).await,
        HubsCommand::Show { id } => show(ctx, id).await,
        HubsCommand::DeployKeys(command) => run_keys(ctx, command).await,
    }
}

async fn list(ctx: &mut Context) -> Result<u8, CliError> {
    let hubs = ctx.call(|c| async move { c.list_hubs().await }).await?;
    if ctx.json() {
        emit_json(&hubs)?;
        return Ok(0);
    }
    if hubs.is_empty() {
        note("no hubs have registered");
        return Ok(0);
    }
    let mut table = Table::new(&[
        "ID",
        "HOSTNAME",
        "STATUS",
        "VERSION",
        "LICENSE",
        "DEPLOY KEY",
        "LAST SEEN",
        "WARNING",
    ]);
    for hub in &hubs {
        table.row(vec![
            hub.hub_id.clone(),
            hub.hostname.clone(),
            hub.status.clone(),
            hub.hub_version.clone(),
            hub.license_mode.clone(),
            hub.deploy_key_label.clone(),
            hub.last_seen_at.clone(),
            or_dash(hub.warning.as_deref()),
        ]);
    }
    emit(&table.render())?;
    Ok(0)
}

async fn show(ctx: &mut Context, id: &str) -> Result<u8, CliError> {
    let hub = ctx.call(|c| async move { c.get_hub(id).await }).await?;
    if ctx.json() {
        emit_json(&hub)?;
    } else {
        emit(&render(&hub))?;
    }
    Ok(0)
}

fn render(hub: &HubInfo) -> String {
    let issues = if hub.issues.is_empty() {
        "-".to_string()
    } else {
        hub.issues.join("; ")
    };
    details(&[
        ("id", hub.hub_id.clone()),
        ("hostname", hub.hostname.clone()),
        ("status", hub.status.clone()),
        ("version", hub.hub_version.clone()),
        ("versions behind", hub.versions_behind.to_string()),
        ("warning", or_dash(hub.warning.as_deref())),
        ("platform", hub.platform.clone()),
        ("license", hub.license_mode.clone()),
        (
            "deploy key",
            format!("{} ({})", hub.deploy_key_label, hub.deploy_key_id),
        ),
        ("registered", hub.registered_at.clone()),
        ("last seen", hub.last_seen_at.clone()),
        ("last validated", or_dash(hub.last_validated_at.as_deref())),
        ("issues", issues),
    ])
}

async fn run_keys(ctx: &mut Context, command: &DeployKeysCommand) -> Result<u8, CliError> {
    match command {
        DeployKeysCommand::Create { label } => {
            let created = ctx
                .call(|c| async move { c.create_deploy_key(label).await })
                .await?;
            if ctx.json() {
                emit_json(&created)?;
                return Ok(0);
            }
            emit(&details(&[
                ("id", created.id.clone()),
                ("label", created.label.clone()),
                ("created", created.created_at.clone()),
                ("key", created.key.clone()),
            ]))?;
            note("the deploy key is shown only once: set it as HUB_REGISTRATION_KEY on the hub");
            Ok(0)
        }
        DeployKeysCommand::List => {
            let keys = ctx
                .call(|c| async move { c.list_deploy_keys().await })
                .await?;
            if ctx.json() {
                emit_json(&keys)?;
                return Ok(0);
            }
            if keys.is_empty() {
                note("no deploy keys");
                return Ok(0);
            }
            let mut table = Table::new(&[
                "ID",
                "LABEL",
                "PREFIX",
                "STATUS",
                "HUBS",
                "CREATED",
                "CREATED BY",
            ]);
            for key in &keys {
                table.row(vec![
                    key.id.clone(),
                    key.label.clone(),
                    key.prefix.clone(),
                    match (key.status.as_str(), &key.expires_at) {
                        ("rotated", Some(until)) => format!("rotated (until {until})"),
                        _ => key.status.clone(),
                    },
                    key.hubs.to_string(),
                    key.created_at.clone(),
                    key.created_by.clone(),
                ]);
            }
            emit(&table.render())?;
            Ok(0)
        }
        DeployKeysCommand::Rotate { id, grace } => rotate_key(ctx, id, *grace).await,
        DeployKeysCommand::Revoke { id } => {
            ctx.call(|c| async move { c.revoke_deploy_key(id).await })
                .await?;
            if ctx.json() {
                emit_json(&json!({ "revoked": id }))?;
            } else {
                emit(&format!(
                    "revoked deploy key {id}: its hubs stop at their next contact"
                ))?;
            }
            Ok(0)
        }
    }
}

/// The new key is printed once; the hub needs it as `HUB_REGISTRATION_KEY` and the old one as
/// `HUB_PREVIOUS_REGISTRATION_KEY` for its restart (`docs/key-rotation.md`).
async fn rotate_key(ctx: &mut Context, id: &str, grace: Option<u64>) -> Result<u8, CliError> {
    let rotated = ctx
        .call(|c| async move { c.rotate_deploy_key(id, grace).await })
        .await?;
    if ctx.json() {
        emit_json(&rotated)?;
        return Ok(0);
    }
    emit(&details(&[
        ("id", rotated.id.clone()),
        ("label", rotated.label.clone()),
        ("replaces", rotated.replaces.clone()),
        ("old key valid until", rotated.previous_valid_until.clone()),
        ("key", rotated.key.clone()),
    ]))?;
    note(
        "the new deploy key is shown only once: restart the hub with it as HUB_REGISTRATION_KEY \
         and the old key as HUB_PREVIOUS_REGISTRATION_KEY before the old one's grace ends",
    );
    Ok(0)
}
