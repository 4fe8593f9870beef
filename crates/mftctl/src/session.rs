//! `login`, `logout` and `status`: who mftctl talks to the server as.

use mftplus_client::Credential;
use mftplus_types::api::{LoginRequest, Principal, Status};
use serde_json::json;

use crate::cli::LoginArgs;
use crate::context::{Context, CredentialSource};
use crate::error::CliError;
use crate::input;
use crate::output::{self, details, emit, emit_json, note};

pub async fn login(ctx: &mut Context, args: &LoginArgs) -> Result<u8, CliError> {
    let flag_key = ctx.global.api_key.clone().filter(|k| !k.trim().is_empty());
    if let Some(key) = flag_key {
        if args.email.is_some() || args.password_stdin {
            return Err(CliError::usage(
                "login --api-key stores a key; it takes no --email or --password-stdin",
            ));
        }
        return login_with_api_key(ctx, key).await;
    }

    let email = match &args.email {
        Some(email) => email.clone(),
        None if !args.password_stdin && input::stdin_is_terminal() => {
            input::prompt_line("Email", ctx.config.email.as_deref())?
        }
        None => ctx.config.email.clone().ok_or_else(|| {
            CliError::usage("no email: pass --email (there is no terminal to ask on)")
        })?,
    };
    let password = if args.password_stdin {
        input::password_from_stdin()?
    } else {
        input::prompt_password("Password: ")?
    };

    let pair = ctx
        .anonymous_client()
        .login(LoginRequest {
            email: email.clone(),
            password,
        })
        .await
        .map_err(|e| ctx.explain(e))?;

    ctx.config.forget_credentials();
    ctx.config.server = Some(ctx.server.clone());
    ctx.config.email = Some(email.clone());
    ctx.config.access_token = Some(pair.access_token.clone());
    ctx.config.refresh_token = Some(pair.refresh_token);
    ctx.save_config()?;
    ctx.use_credential(
        Credential::Bearer(pair.access_token.clone()),
        CredentialSource::ConfigToken,
    );

    // The role is a courtesy; the login itself has already succeeded and been saved.
    let role = ctx
        .client_with(Credential::Bearer(pair.access_token))
        .status()
        .await
        .ok()
        .map(|s| s.principal.role);
    report_login(ctx, &email, role.as_deref(), "session")
}

async fn login_with_api_key(ctx: &mut Context, key: String) -> Result<u8, CliError> {
    // Checked before saving, so a mistyped key never replaces a working login.
    let status = ctx
        .client_with(Credential::ApiKey(key.clone()))
        .status()
        .await
        .map_err(|e| ctx.explain(e))?;
    ctx.config.forget_credentials();
    ctx.config.server = Some(ctx.server.clone());
    ctx.config.email = Some(status.principal.email.clone());
    ctx.config.api_key = Some(key.clone());
    ctx.save_config()?;
    ctx.use_credential(Credential::ApiKey(key), CredentialSource::ConfigApiKey);
    for warning in &status.warnings {
        note(&format!("warning: {warning}"));
    }
    report_login(
        ctx,
        &status.principal.email,
        Some(&status.principal.role),
        "api_key",
    )
}

fn report_login(
    ctx: &Context,
    email: &str,
    role: Option<&str>,
    kind: &str,
) -> Result<u8, CliError> {
    if ctx.json() {
        emit_json(&json!({
            "server": ctx.server,
            "email": email,
            "role": role,
            "credential": kind,
            "config": ctx.config_path,
        }))?;
    } else {
        let role = role.map(|r| format!(" (role {r})")).unwrap_or_default();
        let what = if kind == "api_key" {
            "API key saved"
        } else {
            "logged in"
        };
        emit(&format!("{what}: {email}{role} on {}", ctx.server))?;
        note(&format!(
            "credentials stored in {}",
            ctx.config_path.display()
        ));
    }
    Ok(0)
}

pub async fn logout(ctx: &mut Context) -> Result<u8, CliError> {
    if let Some(token) = ctx.config.access_token.clone() {
        match ctx.client_with(Credential::Bearer(token)).logout().await {
            Ok(()) => {}
            // Expired or already revoked: the session is over either way.
            Err(e) if e.status() == Some(401) => {}
            Err(e) => note(&format!(
                "warning: the server did not end the session ({}); forgetting it locally anyway",
                ctx.explain(e)
            )),
        }
    }
    let had_key = ctx.config.api_key.is_some();
    let had_anything = ctx.config.has_secrets();
    if had_anything {
        ctx.config.forget_credentials();
        ctx.save_config()?;
    }
    if had_key {
        note("the stored API key was forgotten here but is still valid; `mftctl apikeys delete` revokes it");
    }
    if ctx.json() {
        emit_json(&json!({ "logged_out": had_anything }))?;
    } else if had_anything {
        emit("logged out")?;
    } else {
        emit("not logged in")?;
    }
    Ok(0)
}

pub async fn status(ctx: &mut Context) -> Result<u8, CliError> {
    let status = ctx.call(|c| async move { c.status().await }).await?;
    if ctx.json() {
        emit_json(&status)?;
    } else {
        emit(&render_status(&ctx.server, &status))?;
    }
    Ok(0)
}

fn render_status(server: &str, status: &Status) -> String {
    let db = &status.database;
    let mut pairs = vec![
        ("server", server.to_string()),
        ("version", status.version.clone()),
        ("mode", status.mode.clone()),
        ("database", format!("{} ({})", db.backend, db.status)),
        ("uptime", format!("{}s", status.uptime)),
        ("server time", status.server_time.clone()),
        ("signed in as", status.principal.email.clone()),
        ("role", status.principal.role.clone()),
        ("credential", describe_principal(&status.principal)),
    ];
    for warning in &status.warnings {
        pairs.push(("warning", warning.clone()));
    }
    details(&pairs)
}

fn describe_principal(principal: &Principal) -> String {
    match (
        principal.kind.as_str(),
        &principal.api_key_id,
        &principal.token_id,
    ) {
        ("api_key", Some(id), _) => format!("API key {id}"),
        (_, _, Some(jti)) => format!("token {jti}"),
        (kind, _, _) => output::or_dash(Some(kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mftplus_types::api::DatabaseHealth;

    #[test]
    fn status_shows_who_and_warnings() {
        let status = Status {
            version: "0.1.0".into(),
            server_time: "2026-01-01T00:00:00Z".into(),
            uptime: 42,
            mode: "standalone".into(),
            database: DatabaseHealth {
                backend: "sqlite".into(),
                status: "ok".into(),
            },
            principal: Principal {
                kind: "api_key".into(),
                user_id: "u1".into(),
                email: "admin@example.com".into(),
                role: "admin".into(),
                permissions: vec!["*".into()],
                api_key_id: Some("k1".into()),
                token_id: None,
            },
            warnings: vec!["your API key expires in 3 days".into()],
        };
        let text = render_status("http://h:1", &status);
        assert!(text.contains("database      sqlite (ok)"), "{text}");
        assert!(text.contains("signed in as  admin@example.com"), "{text}");
        assert!(text.contains("credential    API key k1"), "{text}");
        assert!(
            text.contains("warning       your API key expires in 3 days"),
            "{text}"
        );
    }
}
