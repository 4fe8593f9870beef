//! `mftctl certificates ca status|rotate|retire`: the built-in CA's roots and their rotation
//! (decision 0016, docs/certificates.md "Rotating the CA"). The operator's credential needs
//! `certificates:rotate` to rotate or retire (admins), `certificates:read` to look.

use crate::cli_certificates::CaAction;
use crate::context::Context;
use crate::error::CliError;
use crate::op_sign::unix_to_rfc3339;
use crate::output::{details, emit, emit_json, note};
use mftplus_types::certificates::CaStatus;

pub async fn run(ctx: &mut Context, action: &CaAction) -> Result<u8, CliError> {
    let status = match action {
        CaAction::Status => ctx.call(|c| async move { c.ca_status().await }).await?,
        CaAction::Rotate => ctx.call(|c| async move { c.rotate_ca().await }).await?,
        CaAction::Retire { force } => {
            let force = *force;
            ctx.call(|c| async move { c.retire_ca(force).await })
                .await?
        }
    };
    if ctx.json() {
        emit_json(&status)?;
        return Ok(0);
    }
    show(&status)?;
    match action {
        CaAction::Rotate => note(
            "both roots are trusted now; boxes move to the new chain as they renew. Retire the \
             old root once `mftctl certificates ca status` shows none left on it",
        ),
        CaAction::Retire { .. } => note("only the new root is trusted from now on"),
        CaAction::Status => {}
    }
    Ok(0)
}

fn show(status: &CaStatus) -> Result<(), CliError> {
    let mut rows: Vec<(&str, String)> = Vec::new();
    for (index, root) in status.roots.iter().enumerate() {
        let label = if index == 0 { "root" } else { "old root" };
        rows.push((
            label,
            format!(
                "{} (sha256 {}, until {})",
                root.subject,
                &root.fingerprint[..16.min(root.fingerprint.len())],
                unix_to_rfc3339(root.not_after)
            ),
        ));
    }
    rows.push((
        "rotation",
        match status.rotation_started_at {
            Some(at) => format!(
                "under way since {}; {} live certificate(s) still on the old root",
                unix_to_rfc3339(at),
                status.on_old_chain
            ),
            None => "none".to_string(),
        },
    ));
    emit(&details(&rows))
}
