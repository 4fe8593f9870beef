//! `mftctl auth token …`: access tokens issued by an admin, their listing and revocation.

use mftplus_types::api::{CreateTokenRequest, TokenInfo};
use serde_json::json;

use crate::apikeys::check_duration;
use crate::cli::{AuthCommand, TokenCommand, TokenCreateArgs, TokenRevokeArgs};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{emit, emit_json, note, or_dash, Table};

pub async fn run(ctx: &mut Context, command: &AuthCommand) -> Result<u8, CliError> {
    let AuthCommand::Token(command) = command;
    match command {
        TokenCommand::Create(args) => create(ctx, args).await,
        TokenCommand::List { user } => list(ctx, user.as_deref()).await,
        TokenCommand::Revoke(args) => revoke(ctx, args).await,
    }
}

async fn create(ctx: &mut Context, args: &TokenCreateArgs) -> Result<u8, CliError> {
    check_duration("--expires", args.expires.as_deref())?;
    let request = CreateTokenRequest {
        user: args.user.clone(),
        role: args.role.clone(),
        expires: args.expires.clone(),
    };
    let request = &request;
    let created = ctx
        .call(|c| async move { c.create_token(request.clone()).await })
        .await?;
    if ctx.json() {
        emit_json(&created)?;
    } else {
        emit(&created.token)?;
    }
    let info = &created.info;
    note(&format!(
        "token {} for {} (role {}) expires {}. It is shown only once; keep it out of logs.",
        info.token_id, info.user_email, info.role, info.expires_at
    ));
    Ok(0)
}

async fn list(ctx: &mut Context, user: Option<&str>) -> Result<u8, CliError> {
    let tokens = ctx
        .call(|c| async move { c.list_tokens(user).await })
        .await?;
    if ctx.json() {
        emit_json(&tokens)?;
        return Ok(0);
    }
    emit(&render_tokens(&tokens))?;
    Ok(0)
}

fn render_tokens(tokens: &[TokenInfo]) -> String {
    let mut table = Table::new(&[
        "TOKEN ID", "USER", "KIND", "ROLE", "VIA", "ISSUED", "EXPIRES", "REVOKED",
    ]);
    for token in tokens {
        table.row(vec![
            token.token_id.clone(),
            token.user_email.clone(),
            token.kind.clone(),
            token.role.clone(),
            token.created_via.clone(),
            token.issued_at.clone(),
            token.expires_at.clone(),
            or_dash(token.revoked_at.as_deref()),
        ]);
    }
    table.render()
}

async fn revoke(ctx: &mut Context, args: &TokenRevokeArgs) -> Result<u8, CliError> {
    // clap already enforces "--token-id, or --user with --all"; this keeps the function honest
    // if it is ever called another way.
    match (&args.token_id, &args.user, args.all) {
        (Some(token_id), None, false) => {
            let token_id = token_id.as_str();
            ctx.call(|c| async move { c.revoke_token(token_id).await })
                .await?;
            if ctx.json() {
                emit_json(&json!({ "revoked": 1, "token_id": token_id }))?;
            } else {
                emit(&format!("revoked token {token_id}"))?;
            }
        }
        (None, Some(user), true) => {
            let user = user.as_str();
            let count = ctx
                .call(|c| async move { c.revoke_user_tokens(user).await })
                .await?;
            if ctx.json() {
                emit_json(&json!({ "revoked": count.revoked, "user": user }))?;
            } else {
                emit(&format!("revoked {} token(s) of {user}", count.revoked))?;
            }
        }
        (None, Some(_), false) => {
            return Err(CliError::usage(
                "--user revokes every token of that user; add --all to confirm",
            ))
        }
        _ => return Err(CliError::usage("pass --token-id ID, or --user EMAIL --all")),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_table_never_holds_secrets() {
        let info = TokenInfo {
            token_id: "abc123".into(),
            user_id: "u1".into(),
            user_email: "admin@example.com".into(),
            kind: "access".into(),
            role: "admin".into(),
            created_via: "admin".into(),
            issued_at: "2026-01-01T00:00:00Z".into(),
            expires_at: "2026-01-01T01:00:00Z".into(),
            revoked_at: None,
        };
        let text = render_tokens(&[info]);
        assert!(text.starts_with("TOKEN ID  USER"), "{text}");
        assert!(text.contains("abc123    admin@example.com"), "{text}");
    }
}
