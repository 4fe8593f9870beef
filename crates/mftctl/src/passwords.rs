//! `mftctl passwd` (your own password) and `mftctl users reset-password` (someone's, as an
//! administrator). Secrets come from a terminal without echo or from 0600 files for scripts.

use mftplus_types::api::{ChangePasswordRequest, ResetPasswordRequest};

use crate::cli::{PasswdArgs, UserResetPasswordArgs};
use crate::context::Context;
use crate::error::CliError;
use crate::input;
use crate::output::{emit, emit_json, note};

pub async fn passwd(ctx: &mut Context, args: &PasswdArgs) -> Result<u8, CliError> {
    let current_password = match &args.current_file {
        Some(path) => input::secret_from_file(path, "--current-file")?,
        None => ask("Current password: ", "--current-file")?,
    };
    let new_password = match &args.new_file {
        Some(path) => input::secret_from_file(path, "--new-file")?,
        None => {
            let first = ask("New password: ", "--new-file")?;
            if ask("New password again: ", "--new-file")? != first {
                return Err(CliError::usage(
                    "the two new passwords differ; nothing was changed",
                ));
            }
            first
        }
    };
    let request = &ChangePasswordRequest {
        current_password,
        new_password,
    };
    let changed = ctx
        .call(|c| async move { c.change_password(request.clone()).await })
        .await?;
    if ctx.json() {
        emit_json(&changed)?;
    } else {
        emit("password changed")?;
        note(&format!(
            "your other sessions were signed out ({} tokens revoked); this one stays",
            changed.revoked_tokens
        ));
    }
    Ok(0)
}

pub async fn reset(ctx: &mut Context, args: &UserResetPasswordArgs) -> Result<u8, CliError> {
    let password = args
        .password_file
        .as_deref()
        .map(|path| input::secret_from_file(path, "--password-file"))
        .transpose()?;
    let (user, request) = (args.user.as_str(), &ResetPasswordRequest { password });
    let reset = ctx
        .call(|c| async move { c.reset_password(user, request.clone()).await })
        .await?;
    if ctx.json() {
        emit_json(&reset)?;
        return Ok(0);
    }
    emit(&format!(
        "password of {} reset; {} tokens of their sessions revoked",
        reset.user.email, reset.revoked_tokens
    ))?;
    if let Some(password) = &reset.generated_password {
        emit(&format!("new password: {password}"))?;
        note("the password is shown only once: pass it on securely and have the user run `mftctl passwd`");
    }
    Ok(0)
}

/// A prompt without echo; without a terminal, the flag that replaces it is named.
fn ask(prompt: &str, flag: &str) -> Result<String, CliError> {
    if !input::stdin_is_terminal() {
        return Err(CliError::usage(format!(
            "no terminal to ask for the password on; give it with {flag}"
        )));
    }
    input::prompt_password(prompt)
}
