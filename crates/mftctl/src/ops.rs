//! `mftctl ops pending|list|show|sign`: destructive changes that wait for, or carry, an
//! operator signature. Signing happens here, on the operator's machine, with the operator's SSH
//! key; the cloud only ever sees the signature (`op_sign.rs` does the offline part).

use mftplus_client::OpQuery;
use mftplus_types::fleet::{op_status, OpInfo, OpStatus};

use crate::cli::{OpsCommand, OpsSignArgs};
use crate::context::Context;
use crate::error::CliError;
use crate::input;
use crate::op_sign::{self, check_op, now_unix, sign_blob, signer_source, summary};
use crate::output::{details, emit, emit_json, note, or_dash, Table};

pub async fn run(ctx: &mut Context, command: &OpsCommand) -> Result<u8, CliError> {
    match command {
        OpsCommand::Pending => list(ctx, Some(op_status::PENDING_SIGNATURE), None).await,
        OpsCommand::List { status, host } => list(ctx, status.as_deref(), host.as_deref()).await,
        OpsCommand::Show { id } => show(ctx, id).await,
        OpsCommand::Sign(args) => sign(ctx, args).await,
    }
}

fn statuses(text: Option<&str>) -> Result<Vec<String>, CliError> {
    let statuses = OpStatus::parse_list(text.unwrap_or("")).map_err(|unknown| {
        CliError::usage(format!(
            "--status {}: expected one of {}",
            unknown.0,
            op_status::ALL.join(", ")
        ))
    })?;
    Ok(statuses.iter().map(|s| s.as_str().to_string()).collect())
}

async fn fetch_list(
    ctx: &mut Context,
    status: Option<&str>,
    host: Option<&str>,
) -> Result<Vec<OpInfo>, CliError> {
    let query = OpQuery {
        statuses: statuses(status)?,
        host: host.map(str::to_string),
    };
    let query = &query;
    ctx.call(|c| async move { c.list_ops(query).await }).await
}

async fn list(ctx: &mut Context, status: Option<&str>, host: Option<&str>) -> Result<u8, CliError> {
    let ops = fetch_list(ctx, status, host).await?;
    if ctx.json() {
        emit_json(&ops)?;
        return Ok(0);
    }
    if ops.is_empty() {
        note("no ops");
        return Ok(0);
    }
    let mut table = Table::new(&[
        "OP ID", "TYPE", "HOST", "GUEST", "STATUS", "ISSUED", "EXPIRES",
    ]);
    for op in &ops {
        table.row(vec![
            op.op_id.clone(),
            op.op_type.clone(),
            op.host_id.clone(),
            or_dash(op.guest_id.as_deref()),
            op.status.clone(),
            op.issued_at.clone(),
            op.expires_at.clone(),
        ]);
    }
    emit(&table.render())?;
    if ops.iter().any(|op| op.status == OpStatus::PendingSignature) {
        note("sign the pending ones with `mftctl ops sign --pending`");
    }
    Ok(0)
}

async fn show(ctx: &mut Context, id: &str) -> Result<u8, CliError> {
    let op = ctx.call(|c| async move { c.get_op(id).await }).await?;
    if ctx.json() {
        emit_json(&op)?;
        return Ok(0);
    }
    let result = op
        .result
        .as_ref()
        .map_or("-".to_string(), |r| r.to_string());
    emit(&details(&[
        ("op id", op.op_id.clone()),
        ("type", op.op_type.clone()),
        ("customer", op.customer_id.clone()),
        ("host", op.host_id.clone()),
        ("guest", or_dash(op.guest_id.as_deref())),
        ("status", op.status.clone()),
        ("issued", op.issued_at.clone()),
        ("expires", op.expires_at.clone()),
        ("signed", or_dash(op.signed_at.as_deref())),
        ("delivered", or_dash(op.delivered_at.as_deref())),
        ("finished", or_dash(op.finished_at.as_deref())),
        ("result", result),
    ]))?;
    // The blob alone on the last line, byte for byte, so it can be cut out and checked with
    // `ssh-keygen -Y verify`.
    emit(&format!("blob:\n{}", op.blob))?;
    Ok(0)
}

/// What happened to one op during `ops sign`, for `--json`.
#[derive(Debug, serde::Serialize)]
struct Outcome {
    op_id: String,
    /// `signed`, `declined` or `refused`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Outcome {
    fn new(info: &OpInfo, outcome: &'static str, error: Option<String>) -> Outcome {
        Outcome {
            op_id: info.op_id.clone(),
            outcome,
            error,
        }
    }
}

async fn sign(ctx: &mut Context, args: &OpsSignArgs) -> Result<u8, CliError> {
    // Decided before anything is fetched or any key is read: without a terminal there is no
    // one to show the op to, so only an explicit --yes may sign.
    if !args.yes && !input::stdin_is_terminal() {
        return Err(CliError::usage(
            "standard input is not a terminal, so there is no one to confirm; pass --yes to sign without asking",
        ));
    }
    let source = signer_source(args.key.as_deref(), args.agent, ctx.home.as_deref())?;
    let signer = op_sign::open_signer(&source)?;
    let fingerprint = signer.public_key().fingerprint();

    let ops = match &args.id {
        Some(id) => vec![ctx.call(|c| async move { c.get_op(id).await }).await?],
        None => fetch_list(ctx, Some(op_status::PENDING_SIGNATURE), None).await?,
    };
    if ops.is_empty() {
        note("no ops wait for a signature");
        if ctx.json() {
            emit_json(&Vec::<Outcome>::new())?;
        }
        return Ok(0);
    }

    let mut outcomes = Vec::new();
    for info in &ops {
        let result = sign_one(ctx, args, signer.as_ref(), &fingerprint, info).await;
        let outcome = match result {
            Ok(true) => Outcome::new(info, "signed", None),
            Ok(false) => Outcome::new(info, "declined", None),
            // One op asked for by id: its refusal is the command's error, reported once.
            Err(e) if args.id.is_some() => return Err(e),
            Err(e) => {
                note(&format!("error: {e}"));
                Outcome::new(info, "refused", Some(e.to_string()))
            }
        };
        outcomes.push(outcome);
    }
    if ctx.json() {
        emit_json(&outcomes)?;
    }
    let unsigned = outcomes.iter().filter(|o| o.outcome != "signed").count();
    if unsigned == 0 {
        return Ok(0);
    }
    if outcomes.len() > 1 {
        note(&format!(
            "{unsigned} of {} op(s) were not signed",
            outcomes.len()
        ));
    }
    Ok(1)
}

/// Checks, shows, confirms, signs and uploads one op. `Ok(false)` when the operator said no.
async fn sign_one(
    ctx: &mut Context,
    args: &OpsSignArgs,
    signer: &dyn mftplus_signing::Signer,
    fingerprint: &str,
    info: &OpInfo,
) -> Result<bool, CliError> {
    let now = now_unix();
    let op = check_op(info, now)?;
    note(&summary(&info.op_id, &op, now));
    if !op.key_id.is_empty() && op.key_id != fingerprint {
        note(&format!(
            "warning: the op was issued for key {}, you are signing with {fingerprint}; the agent accepts any pinned key",
            op.key_id
        ));
    }
    if !args.yes {
        let answer = input::prompt_line(&format!("sign op {}? (yes/no)", info.op_id), Some("no"))?;
        if !matches!(answer.to_lowercase().as_str(), "y" | "yes") {
            note(&format!("skipped {}", info.op_id));
            return Ok(false);
        }
    }
    let signature = sign_blob(signer, &info.op_id, &info.blob)?;
    let (op_id, signature) = (info.op_id.as_str(), signature.as_str());
    ctx.call(|c| async move { c.put_op_signature(op_id, signature).await })
        .await
        .map_err(|e| CliError::new(&e.code, format!("op {op_id}: {}", e.message)))?;
    if !ctx.json() {
        // Data, not a note: scripts read these lines.
        emit(&format!("signed {op_id}"))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_are_checked_and_split() {
        assert_eq!(
            statuses(Some("pending_signature, signed")).unwrap(),
            vec!["pending_signature", "signed"]
        );
        assert!(statuses(None).unwrap().is_empty());
        let err = statuses(Some("pending")).unwrap_err();
        assert_eq!(err.code, "usage");
        assert!(err.message.contains("pending_signature"), "{err}");
    }

    #[test]
    fn outcomes_serialise_for_scripts() {
        let o = Outcome {
            op_id: "op-1".into(),
            outcome: "signed",
            error: None,
        };
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            json!({"op_id": "op-1", "outcome": "signed"})
        );
    }
}
