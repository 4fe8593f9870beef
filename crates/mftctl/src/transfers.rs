//! `mftctl transfers list|show|verify|cancel` and `mftctl status ID`: transfer metadata as
//! the server has it. Nothing here touches keys or plaintext (`transfers grant` is `grants.rs`).

use mftplus_types::transfers::{Transfer, VerifyReport};

use crate::cli::TransfersCommand;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{details, emit, emit_json, note, or_dash, Table};

/// How a recipient the sender has not granted access yet is shown (decision 0022).
pub const WAITING: &str = "waiting for the sender to grant access";

pub async fn run(ctx: &mut Context, command: &TransfersCommand) -> Result<u8, CliError> {
    match command {
        TransfersCommand::List { status } => list(ctx, status.as_deref()).await,
        TransfersCommand::Show { id } => show(ctx, id).await,
        TransfersCommand::Verify { id } => verify(ctx, id).await,
        TransfersCommand::Cancel { id } => cancel(ctx, id).await,
        TransfersCommand::Links(args) => crate::links::run(ctx, args).await,
        TransfersCommand::Grant { id } => crate::grants::run(ctx, id.as_deref()).await,
    }
}

async fn list(ctx: &mut Context, status: Option<&str>) -> Result<u8, CliError> {
    let transfers = ctx
        .call(|c| async move { c.list_transfers(status).await })
        .await?;
    if ctx.json() {
        emit_json(&transfers)?;
        return Ok(0);
    }
    if transfers.is_empty() {
        note("no transfers");
        return Ok(0);
    }
    let mut table = Table::new(&[
        "ID", "STATUS", "FROM", "TO", "CHUNKS", "BYTES", "CREATED", "EXPIRES",
    ]);
    for t in &transfers {
        table.row(vec![
            t.id.clone(),
            t.status.clone(),
            t.sender_email.clone(),
            recipients(t),
            t.chunk_count
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            t.ciphertext_bytes.to_string(),
            t.created_at.clone(),
            t.expires_at.clone(),
        ]);
    }
    emit(&table.render())?;
    Ok(0)
}

fn recipients(t: &Transfer) -> String {
    t.recipients
        .iter()
        .map(|r| {
            if r.awaiting_grant {
                format!("{} ({WAITING})", r.display)
            } else if r.downloaded_at.is_some() {
                format!("{} (downloaded)", r.display)
            } else {
                r.display.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn show(ctx: &mut Context, id: &str) -> Result<u8, CliError> {
    let transfer = ctx
        .call(|c| async move { c.get_transfer(id).await })
        .await?;
    if ctx.json() {
        emit_json(&transfer)?;
    } else {
        emit(&render(&transfer))?;
    }
    Ok(0)
}

/// `status ID --watch`: polls until the transfer is complete, cancelled or expired. Text mode
/// prints a line whenever something changed; `--json` prints only the final state.
pub async fn watch(ctx: &mut Context, id: &str, interval_secs: u64) -> Result<u8, CliError> {
    let mut last_line = String::new();
    loop {
        let transfer = ctx
            .call(|c| async move { c.get_transfer(id).await })
            .await?;
        let finished = matches!(
            transfer.status.as_str(),
            "complete" | "cancelled" | "expired"
        );
        if finished && ctx.json() {
            emit_json(&transfer)?;
        } else if !ctx.json() {
            let line = watch_line(&transfer);
            if line != last_line {
                emit(&line)?;
                last_line = line;
            }
        }
        if finished {
            return Ok(if transfer.status == "complete" { 0 } else { 1 });
        }
        tokio::time::sleep(std::time::Duration::from_secs(interval_secs)).await;
    }
}

fn watch_line(t: &Transfer) -> String {
    let mut line = format!(
        "{} {}: {} encrypted bytes stored",
        t.id, t.status, t.ciphertext_bytes
    );
    if let Some(n) = t.chunk_count {
        line.push_str(&format!(" in {n} chunks"));
    }
    let downloaded = t
        .recipients
        .iter()
        .filter(|r| r.downloaded_at.is_some())
        .count();
    line.push_str(&format!(
        ", downloaded by {downloaded} of {}",
        t.recipients.len()
    ));
    line
}

fn render(t: &Transfer) -> String {
    let mut pairs = vec![
        ("id", t.id.clone()),
        ("status", t.status.clone()),
        ("from", t.sender_email.clone()),
        ("chunk size", t.chunk_size.to_string()),
        (
            "chunks",
            t.chunk_count
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        ("encrypted bytes", t.ciphertext_bytes.to_string()),
        ("created", t.created_at.clone()),
        ("completed", or_dash(t.completed_at.as_deref())),
        ("cancelled", or_dash(t.cancelled_at.as_deref())),
        ("expires", t.expires_at.clone()),
    ];
    for r in &t.recipients {
        let downloaded = match &r.downloaded_at {
            _ if r.awaiting_grant => WAITING.into(),
            Some(at) => format!("downloaded {at}"),
            None => "not downloaded".into(),
        };
        pairs.push(("to", format!("{} ({downloaded})", r.display)));
    }
    details(&pairs)
}

async fn verify(ctx: &mut Context, id: &str) -> Result<u8, CliError> {
    let report = ctx
        .call(|c| async move { c.verify_transfer(id).await })
        .await?;
    if ctx.json() {
        emit_json(&report)?;
    } else {
        emit(&render_verify(&report))?;
    }
    Ok(if report.ok { 0 } else { 1 })
}

fn render_verify(r: &VerifyReport) -> String {
    let list = |v: &[u64]| {
        v.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if r.ok {
        format!(
            "transfer {} intact: {} chunks checked",
            r.transfer_id, r.chunks_checked
        )
    } else {
        let mut text = format!(
            "transfer {} NOT intact: {} chunks checked",
            r.transfer_id, r.chunks_checked
        );
        if !r.corrupt.is_empty() {
            text.push_str(&format!("; corrupt chunks: {}", list(&r.corrupt)));
        }
        if !r.missing.is_empty() {
            text.push_str(&format!("; missing chunks: {}", list(&r.missing)));
        }
        text
    }
}

async fn cancel(ctx: &mut Context, id: &str) -> Result<u8, CliError> {
    let answer = ctx
        .call(|c| async move { c.cancel_transfer(id).await })
        .await?;
    let Some(transfer) = answer.applied() else {
        // An edge hub took it while the cloud was unreachable; the cloud applies it later.
        if ctx.json() {
            emit_json(&serde_json::json!({"id": id, "queued": true}))?;
        } else {
            emit(&format!(
                "transfer {id}: cancellation queued by the edge hub (the cloud is unreachable)"
            ))?;
        }
        return Ok(0);
    };
    if ctx.json() {
        emit_json(&transfer)?;
    } else {
        emit(&format!("transfer {} cancelled", transfer.id))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_lines() {
        let mut r = VerifyReport {
            transfer_id: "t1".into(),
            chunks_checked: 5,
            ok: true,
            corrupt: vec![],
            missing: vec![],
        };
        assert_eq!(render_verify(&r), "transfer t1 intact: 5 chunks checked");
        r.ok = false;
        r.corrupt = vec![1, 3];
        r.missing = vec![4];
        assert_eq!(
            render_verify(&r),
            "transfer t1 NOT intact: 5 chunks checked; corrupt chunks: 1, 3; missing chunks: 4"
        );
    }
}
