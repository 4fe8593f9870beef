//! `mftctl apikeys …`. Commands accept a key's id or the full key; a full key is turned into its
//! id through `POST /apikeys/resolve` so the secret never appears in a URL.

use mftplus_types::api::{ApiKey, CreateApiKeyRequest, CreatedApiKey};
use mftplus_types::API_KEY_PREFIX;
use serde_json::json;

use crate::cli::{ApiKeyCreateArgs, ApiKeysCommand};
use crate::context::{Context, CredentialSource};
use crate::error::CliError;
use crate::output::{details, emit, emit_json, note, or_dash, Table};

pub async fn run(ctx: &mut Context, command: &ApiKeysCommand) -> Result<u8, CliError> {
    match command {
        ApiKeysCommand::Create(args) => create(ctx, args).await,
        ApiKeysCommand::List => list(ctx).await,
        ApiKeysCommand::Get { key } => get(ctx, key).await,
        ApiKeysCommand::Delete { key } => delete(ctx, key).await,
        ApiKeysCommand::Rotate { key } => rotate(ctx, key).await,
    }
}

/// Checks a `--expires` value before anything is sent, so `90x` fails with a clear message
/// instead of a round trip.
pub fn check_duration(flag: &str, value: Option<&str>) -> Result<(), CliError> {
    if let Some(value) = value {
        mftplus_types::duration::parse_duration_secs(value)
            .map_err(|e| CliError::new("invalid_duration", format!("{flag}: {e}")))?;
    }
    Ok(())
}

fn is_full_key(text: &str) -> bool {
    text.starts_with(API_KEY_PREFIX)
}

async fn create(ctx: &mut Context, args: &ApiKeyCreateArgs) -> Result<u8, CliError> {
    check_duration("--expires", args.expires.as_deref())?;
    let request = CreateApiKeyRequest {
        name: args.name.clone(),
        role: args.role.clone(),
        expires: args.expires.clone(),
    };
    let request = &request;
    let created = ctx
        .call(|c| async move { c.create_api_key(request.clone()).await })
        .await?;
    show_new_key(ctx, &created, "created")
}

/// The key alone on stdout, so `KEY=$(mftctl apikeys create …)` works; the rest on stderr.
fn show_new_key(ctx: &Context, created: &CreatedApiKey, verb: &str) -> Result<u8, CliError> {
    if ctx.json() {
        emit_json(created)?;
    } else {
        emit(&created.key)?;
    }
    let key = &created.api_key;
    note(&format!(
        "API key {:?} {verb} (id {}, role {}, expires {}). Store it now: it is shown only once.",
        key.name,
        key.id,
        key.role,
        key.expires_at.as_deref().unwrap_or("never"),
    ));
    Ok(0)
}

async fn list(ctx: &mut Context) -> Result<u8, CliError> {
    let keys = ctx.call(|c| async move { c.list_api_keys().await }).await?;
    if ctx.json() {
        emit_json(&keys)?;
        return Ok(0);
    }
    let mut table = Table::new(&[
        "ID",
        "NAME",
        "PREFIX",
        "ROLE",
        "OWNER",
        "STATUS",
        "EXPIRES",
        "LAST USED",
    ]);
    for key in &keys {
        table.row(vec![
            key.id.clone(),
            key.name.clone(),
            key.prefix.clone(),
            key.role.clone(),
            key.owner_email.clone(),
            key.status.clone(),
            or_dash(key.expires_at.as_deref()),
            or_dash(key.last_used_at.as_deref()),
        ]);
    }
    emit(&table.render())?;
    Ok(0)
}

/// The key record for an id or a full key.
async fn find(ctx: &mut Context, key_or_id: &str) -> Result<ApiKey, CliError> {
    if is_full_key(key_or_id) {
        ctx.call(|c| async move { c.resolve_api_key(key_or_id).await })
            .await
    } else {
        ctx.call(|c| async move { c.get_api_key(key_or_id).await })
            .await
    }
}

async fn id_of(ctx: &mut Context, key_or_id: &str) -> Result<String, CliError> {
    if is_full_key(key_or_id) {
        Ok(find(ctx, key_or_id).await?.id)
    } else {
        Ok(key_or_id.to_string())
    }
}

async fn get(ctx: &mut Context, key_or_id: &str) -> Result<u8, CliError> {
    let key = find(ctx, key_or_id).await?;
    if ctx.json() {
        emit_json(&key)?;
    } else {
        emit(&render_key(&key))?;
    }
    Ok(0)
}

async fn delete(ctx: &mut Context, key_or_id: &str) -> Result<u8, CliError> {
    let id = id_of(ctx, key_or_id).await?;
    let id_ref = id.as_str();
    ctx.call(|c| async move { c.delete_api_key(id_ref).await })
        .await?;
    if ctx.json() {
        emit_json(&json!({ "deleted": id }))?;
    } else {
        emit(&format!("deleted API key {id}"))?;
    }
    Ok(0)
}

async fn rotate(ctx: &mut Context, key_or_id: &str) -> Result<u8, CliError> {
    let id = id_of(ctx, key_or_id).await?;
    let id_ref = id.as_str();
    let rotated = ctx
        .call(|c| async move { c.rotate_api_key(id_ref).await })
        .await?;
    follow_rotation(ctx, key_or_id, &rotated.key)?;
    show_new_key(ctx, &rotated, "rotated")
}

/// Rotating the very key mftctl authenticates with would leave the stored one dead; keep the
/// config file working, and say so when the key lives somewhere mftctl cannot update.
fn follow_rotation(ctx: &mut Context, old: &str, new: &str) -> Result<(), CliError> {
    if ctx.config.api_key.as_deref() == Some(old) {
        ctx.config.api_key = Some(new.to_string());
        ctx.save_config()?;
        note(&format!(
            "the stored API key in {} was replaced by the new one",
            ctx.config_path.display()
        ));
    }
    match ctx.source {
        CredentialSource::Flag if ctx.global.api_key.as_deref() == Some(old) => {
            note("the key passed with --api-key was rotated; use the new one from now on")
        }
        CredentialSource::Env
            if std::env::var(crate::context::ENV_API_KEY).ok().as_deref() == Some(old) =>
        {
            note("the key in MFTPLUS_API_KEY was rotated; update the variable")
        }
        _ => {}
    }
    Ok(())
}

fn render_key(key: &ApiKey) -> String {
    details(&[
        ("id", key.id.clone()),
        ("name", key.name.clone()),
        ("prefix", key.prefix.clone()),
        ("role", key.role.clone()),
        ("owner", key.owner_email.clone()),
        ("status", key.status.clone()),
        ("created", key.created_at.clone()),
        ("expires", or_dash(key.expires_at.as_deref())),
        ("last used", or_dash(key.last_used_at.as_deref())),
        ("revoked", or_dash(key.revoked_at.as_deref())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_is_checked_locally() {
        assert!(check_duration("--expires", Some("90d")).is_ok());
        assert!(check_duration("--expires", Some("1h")).is_ok());
        assert!(check_duration("--expires", None).is_ok());
        let err = check_duration("--expires", Some("90x")).unwrap_err();
        assert_eq!(err.code, "invalid_duration");
        assert!(
            err.message
                .starts_with("--expires: invalid duration \"90x\""),
            "{}",
            err.message
        );
        for bad in ["90", "0d", "-1d", "d", ""] {
            assert!(check_duration("--expires", Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn full_keys_are_recognised() {
        assert!(is_full_key("mftpk_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6"));
        assert!(!is_full_key("0193a2b4-uuid"));
    }
}
