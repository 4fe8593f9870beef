//! What a restore checks on the restored database before it says yes: the audit chain, entry
//! by entry with `mftplus_crypto::audit` (as `mftctl audit verify` does), ending at the head
//! the backup recorded; and the rows, table by table, as many as the snapshot had.

use std::collections::BTreeMap;

use mftplus_crypto::audit::{verify_run, GENESIS_HASH};
use mftplus_store::Store;

use super::manifest::AuditHead;
use super::BackupError;

const PAGE: u32 = 1000;

/// The chain as verified: entries, and the first and last sequence numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditCheck {
    pub entries: u64,
    pub first_seq: Option<i64>,
    pub head: Option<AuditHead>,
}

/// Verifies the whole audit log of `store`. Returns the problem as `Err(String)` when the chain
/// is broken or does not end at `expected` (the head at the snapshot). A log pruned to nothing
/// has no entry to compare; its head row is compared with the snapshot's by the caller.
pub async fn audit_chain(
    store: &dyn Store,
    expected: Option<&AuditHead>,
) -> Result<Result<AuditCheck, String>, BackupError> {
    let mut check = AuditCheck::default();
    let mut anchor: Option<(String, i64)> = None;
    let mut after = 0i64;
    loop {
        let rows = store
            .list_audit(after, PAGE)
            .await
            .map_err(|err| BackupError::Database(err.to_string()))?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        let entries: Vec<_> = rows
            .into_iter()
            .map(crate::handlers::audit::audit_to_api)
            .collect();
        if check.first_seq.is_none() {
            let first = &entries[0];
            // Pruning may have removed the start; an entry numbered 1 has nothing before it.
            if first.seq == 1 && first.prev_hash != GENESIS_HASH {
                return Ok(Err(
                    "audit entry #1 does not link to the genesis hash".into()
                ));
            }
            check.first_seq = Some(first.seq);
        }
        let from = anchor.as_ref().map(|(hash, seq)| (hash.as_str(), *seq));
        match verify_run(from, &entries) {
            Ok(head) => anchor = head,
            Err(broken) => {
                return Ok(Err(format!(
                    "audit chain broken at entry #{}: {}",
                    broken.seq, broken.reason
                )))
            }
        }
        check.entries += entries.len() as u64;
        if entries.len() < PAGE as usize {
            break;
        }
    }
    check.head = anchor.map(|(hash, seq)| AuditHead { seq, hash });
    if let (Some(expected), Some(head)) = (expected, &check.head) {
        if head != expected {
            return Ok(Err(format!(
                "the audit chain ends at entry #{} ({}), the backup recorded #{} ({})",
                head.seq, head.hash, expected.seq, expected.hash
            )));
        }
    }
    Ok(Ok(check))
}

/// Tables whose row count differs from the snapshot's, as problems.
pub fn row_counts(
    expected: &BTreeMap<String, u64>,
    restored: &BTreeMap<String, u64>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (table, count) in expected {
        match restored.get(table) {
            Some(found) if found == count => {}
            Some(found) => problems.push(format!(
                "table {table}: {found} rows restored, the backup had {count}"
            )),
            None => problems.push(format!("table {table}: missing after the restore")),
        }
    }
    for table in restored.keys().filter(|t| !expected.contains_key(*t)) {
        problems.push(format!("table {table}: not in the backup"));
    }
    problems
}
