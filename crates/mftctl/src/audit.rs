//! `mftctl audit verify` and `mftctl audit export`. Verification happens here, on the client:
//! trusting the server to say its own log is intact would prove nothing.

use mftplus_crypto::audit::{ChainBreak, ChainCheck};
use serde_json::json;

use crate::cli::{AuditCommand, AuditExportArgs};
use crate::config_file::write_private;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{emit, emit_json, emit_raw, note};

/// Entries per request while verifying.
const PAGE_SIZE: u32 = 1000;

pub async fn run(ctx: &mut Context, command: &AuditCommand) -> Result<u8, CliError> {
    match command {
        AuditCommand::Verify => verify(ctx).await,
        AuditCommand::Export(args) => export(ctx, args).await,
    }
}

/// What `mftctl audit verify` prints for an intact log.
fn summary(check: &ChainCheck) -> String {
    match (check.head(), check.first_seq()) {
        (Some((hash, last)), Some(first)) => format!(
            "audit log intact: {} entries (seq {first}..{last}), head {hash}",
            check.count()
        ),
        _ => "audit log intact: 0 entries (the log is empty)".to_string(),
    }
}

async fn verify(ctx: &mut Context) -> Result<u8, CliError> {
    let mut check = ChainCheck::default();
    let mut after_seq = 0i64;
    loop {
        let page = ctx
            .call(|c| async move { c.audit_page(after_seq, PAGE_SIZE).await })
            .await?;
        if let Err(broken) = check.feed(&page.entries) {
            return report_break(ctx, &broken);
        }
        match page.next_after_seq {
            Some(next) if !page.entries.is_empty() => {
                // A cursor that does not move would page forever.
                if next <= after_seq {
                    return Err(CliError::new(
                        "bad_answer",
                        format!("the server's audit cursor went from {after_seq} to {next}"),
                    ));
                }
                after_seq = next;
            }
            _ => break,
        }
    }
    if ctx.json() {
        emit_json(&json!({
            "intact": true,
            "entries": check.count(),
            "first_seq": check.first_seq(),
            "last_seq": check.head().map(|(_, seq)| seq),
            "head": check.head().map(|(hash, _)| hash),
        }))?;
    } else {
        emit(&summary(&check))?;
    }
    Ok(0)
}

fn report_break(ctx: &Context, broken: &ChainBreak) -> Result<u8, CliError> {
    if ctx.json() {
        emit_json(&json!({ "intact": false, "seq": broken.seq, "reason": broken.reason }))?;
    }
    note(&format!(
        "audit log TAMPERED at entry #{}: {}",
        broken.seq, broken.reason
    ));
    Ok(1)
}

async fn export(ctx: &mut Context, args: &AuditExportArgs) -> Result<u8, CliError> {
    let format = args.format.as_str();
    let body = ctx
        .call(|c| async move { c.audit_export(format).await })
        .await?;
    match &args.output {
        Some(path) => {
            // Audit records name people and addresses: keep the file as private as the log.
            write_private(path, body.as_bytes())?;
            note(&format!(
                "wrote {} bytes of {format} to {}",
                body.len(),
                path.display()
            ));
        }
        None => emit_raw(body.as_bytes())?,
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mftplus_crypto::audit::{entry_hash, AuditFields, GENESIS_HASH};
    use mftplus_types::api::AuditEntry;

    fn chain(first_seq: i64, n: i64, first_prev: &str) -> Vec<AuditEntry> {
        let mut prev = first_prev.to_string();
        (first_seq..first_seq + n)
            .map(|seq| {
                let details = json!({ "n": seq });
                let hash = entry_hash(
                    &prev,
                    &AuditFields {
                        seq,
                        ts_ms: seq * 10,
                        event: "user.create",
                        actor: "admin@example.com",
                        target: "user@example.com",
                        outcome: "success",
                        client_ip: "127.0.0.1",
                        details: &details,
                    },
                );
                AuditEntry {
                    seq,
                    ts_ms: seq * 10,
                    time: String::new(),
                    event: "user.create".into(),
                    actor: "admin@example.com".into(),
                    target: "user@example.com".into(),
                    outcome: "success".into(),
                    client_ip: "127.0.0.1".into(),
                    details,
                    prev_hash: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                }
            })
            .collect()
    }

    #[test]
    fn intact_chain_across_pages() {
        let entries = chain(1, 5, GENESIS_HASH);
        let mut check = ChainCheck::default();
        check.feed(&entries[..2]).unwrap();
        check.feed(&entries[2..]).unwrap();
        check.feed(&[]).unwrap();
        let head = &entries[4].hash;
        assert_eq!(
            summary(&check),
            format!("audit log intact: 5 entries (seq 1..5), head {head}")
        );
    }

    #[test]
    fn pruned_log_anchors_on_its_first_entry() {
        let entries = chain(7, 3, &"ab".repeat(32));
        let mut check = ChainCheck::default();
        check.feed(&entries).unwrap();
        assert!(summary(&check).contains("3 entries (seq 7..9)"));
    }

    #[test]
    fn finds_tampering_between_pages() {
        let mut entries = chain(1, 6, GENESIS_HASH);
        entries[4].outcome = "failure".into();
        let mut check = ChainCheck::default();
        check.feed(&entries[..3]).unwrap();
        let broken = check.feed(&entries[3..]).unwrap_err();
        assert_eq!(broken.seq, 5);

        let entries = chain(1, 6, GENESIS_HASH);
        let mut check = ChainCheck::default();
        check.feed(&entries[..3]).unwrap();
        assert_eq!(check.feed(&entries[4..]).unwrap_err().seq, 5);
    }

    #[test]
    fn first_entry_must_start_at_genesis() {
        let entries = chain(1, 2, &"cd".repeat(32));
        let broken = ChainCheck::default().feed(&entries).unwrap_err();
        assert_eq!(broken.seq, 1);
    }

    #[test]
    fn empty_log() {
        let check = ChainCheck::default();
        assert_eq!(
            summary(&check),
            "audit log intact: 0 entries (the log is empty)"
        );
    }
}
