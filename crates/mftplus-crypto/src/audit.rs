//! The audit hash chain. Each entry's hash covers its own fields and the previous entry's hash,
//! so changing, inserting or removing a row in the middle breaks every hash after it.

use mftplus_types::api::AuditEntry;
use serde_json::json;

/// `prev_hash` of the very first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields an entry's hash covers, in the form they are stored.
pub struct AuditFields<'a> {
    pub seq: i64,
    pub ts_ms: i64,
    pub event: &'a str,
    pub actor: &'a str,
    pub target: &'a str,
    pub outcome: &'a str,
    pub client_ip: &'a str,
    pub details: &'a serde_json::Value,
}

/// SHA-256 over a domain tag, the previous hash and the canonical JSON of the fields.
pub fn entry_hash(prev_hash: &str, fields: &AuditFields<'_>) -> String {
    let body = json!({
        "seq": fields.seq,
        "ts_ms": fields.ts_ms,
        "event": fields.event,
        "actor": fields.actor,
        "target": fields.target,
        "outcome": fields.outcome,
        "client_ip": fields.client_ip,
        "details": fields.details,
    });
    let mut material = String::from("mftplus-audit-v1\n");
    material.push_str(prev_hash);
    material.push('\n');
    material.push_str(&crate::canonical_json(&body));
    crate::sha256_hex(material.as_bytes())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// Sequence number of the first entry that does not verify.
    pub seq: i64,
    pub reason: String,
}

/// Verifies a run of consecutive entries. `anchor` is the hash the first entry must link to:
/// [`GENESIS_HASH`] for a full log, or the `prev_hash` recorded when older entries were pruned.
/// Feed pages in order; the returned hash is the anchor for the next page.
pub fn verify_run(
    anchor: Option<(&str, i64)>,
    entries: &[AuditEntry],
) -> Result<Option<(String, i64)>, ChainBreak> {
    let mut previous: Option<(String, i64)> = anchor.map(|(hash, seq)| (hash.to_string(), seq));
    for entry in entries {
        if let Some((prev_hash, prev_seq)) = &previous {
            if entry.seq != prev_seq + 1 {
                return Err(ChainBreak {
                    seq: entry.seq,
                    reason: format!(
                        "sequence gap: entry {} follows entry {} (entries removed)",
                        entry.seq, prev_seq
                    ),
                });
            }
            if entry.prev_hash != *prev_hash {
                return Err(ChainBreak {
                    seq: entry.seq,
                    reason: "prev_hash does not match the previous entry's hash".into(),
                });
            }
        }
        let fields = AuditFields {
            seq: entry.seq,
            ts_ms: entry.ts_ms,
            event: &entry.event,
            actor: &entry.actor,
            target: &entry.target,
            outcome: &entry.outcome,
            client_ip: &entry.client_ip,
            details: &entry.details,
        };
        let recomputed = entry_hash(&entry.prev_hash, &fields);
        if recomputed != entry.hash {
            return Err(ChainBreak {
                seq: entry.seq,
                reason: "content does not match its hash (entry modified)".into(),
            });
        }
        previous = Some((entry.hash.clone(), entry.seq));
    }
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let details = json!({"n": seq});
                let hash = entry_hash(
                    &prev,
                    &AuditFields {
                        seq,
                        ts_ms: 1000 + seq,
                        event: "login",
                        actor: "a@example.com",
                        target: "",
                        outcome: "success",
                        client_ip: "127.0.0.1",
                        details: &details,
                    },
                );
                let entry = AuditEntry {
                    seq,
                    ts_ms: 1000 + seq,
                    time: String::new(),
                    event: "login".into(),
                    actor: "a@example.com".into(),
                    target: String::new(),
                    outcome: "success".into(),
                    client_ip: "127.0.0.1".into(),
                    details,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                entry
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies_in_pages() {
        let entries = chain(5);
        let head = verify_run(None, &entries[..2]).unwrap().unwrap();
        let end = verify_run(Some((&head.0, head.1)), &entries[2..]).unwrap();
        assert_eq!(end.unwrap().1, 5);
    }

    #[test]
    fn names_first_tampered_entry() {
        let mut entries = chain(5);
        entries[2].actor = "mallory@example.com".into();
        assert_eq!(verify_run(None, &entries).unwrap_err().seq, 3);

        let mut entries = chain(5);
        entries.remove(3);
        assert_eq!(verify_run(None, &entries).unwrap_err().seq, 5);
    }
}
