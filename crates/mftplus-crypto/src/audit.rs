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

/// What is wrong with the first entry that does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// The entry does not follow the previous one's number: entries were removed.
    Gap,
    /// The entry's `prev_hash` is not the previous entry's hash.
    PrevHashMismatch,
    /// The entry's content does not hash to its `hash`: it was modified.
    HashMismatch,
    /// Entry #1 does not link to [`GENESIS_HASH`].
    NotGenesis,
}

impl BreakKind {
    /// The stable code, as the API answers it.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::Gap => "gap",
            BreakKind::PrevHashMismatch => "prev_hash_mismatch",
            BreakKind::HashMismatch => "hash_mismatch",
            BreakKind::NotGenesis => "not_genesis",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// Sequence number of the first entry that does not verify.
    pub seq: i64,
    pub kind: BreakKind,
    /// The problem in words.
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
                    kind: BreakKind::Gap,
                    reason: format!(
                        "sequence gap: entry {} follows entry {} (entries removed)",
                        entry.seq, prev_seq
                    ),
                });
            }
            if entry.prev_hash != *prev_hash {
                return Err(ChainBreak {
                    seq: entry.seq,
                    kind: BreakKind::PrevHashMismatch,
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
                kind: BreakKind::HashMismatch,
                reason: "content does not match its hash (entry modified)".into(),
            });
        }
        previous = Some((entry.hash.clone(), entry.seq));
    }
    Ok(previous)
}

/// A whole log checked one page at a time, in order, holding only the last hash: the one walk
/// `mftctl audit verify` (on the client, the independent check) and the cloud's own
/// convenience check (`POST /api/v1/audit/verify`) both run, so they cannot disagree.
#[derive(Debug, Default)]
pub struct ChainCheck {
    head: Option<(String, i64)>,
    first_seq: Option<i64>,
    count: u64,
}

impl ChainCheck {
    /// Checks the next page (consecutive entries, ascending). On a break, the entries before
    /// the broken one still count as checked.
    pub fn feed(&mut self, entries: &[AuditEntry]) -> Result<(), ChainBreak> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if self.first_seq.is_none() {
            // The log may have been pruned, so its first entry's prev_hash is the anchor; but an
            // entry numbered 1 has nothing before it and must link to the genesis hash.
            if first.seq == 1 && first.prev_hash != GENESIS_HASH {
                return Err(ChainBreak {
                    seq: 1,
                    kind: BreakKind::NotGenesis,
                    reason: "the first entry does not link to the genesis hash".into(),
                });
            }
            self.first_seq = Some(first.seq);
        }
        let anchor = self.head.as_ref().map(|(hash, seq)| (hash.as_str(), *seq));
        match verify_run(anchor, entries) {
            Ok(head) => {
                self.head = head;
                self.count += entries.len() as u64;
                Ok(())
            }
            Err(broken) => {
                let before = entries.iter().take_while(|e| e.seq != broken.seq).count();
                self.count += before as u64;
                if let Some(last_good) = before.checked_sub(1).map(|index| &entries[index]) {
                    self.head = Some((last_good.hash.clone(), last_good.seq));
                }
                Err(broken)
            }
        }
    }

    /// Entries that verified (up to the first broken one).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The first entry's number (above 1 when the log was pruned).
    pub fn first_seq(&self) -> Option<i64> {
        self.first_seq
    }

    /// The last verified entry's hash and number (before the first broken one, if any).
    pub fn head(&self) -> Option<(&str, i64)> {
        self.head.as_ref().map(|(hash, seq)| (hash.as_str(), *seq))
    }
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
        let broken = verify_run(None, &entries).unwrap_err();
        assert_eq!((broken.seq, broken.kind), (5, BreakKind::Gap));
    }

    #[test]
    fn a_check_counts_what_verified_across_pages() {
        let entries = chain(6);
        let mut check = ChainCheck::default();
        check.feed(&entries[..4]).unwrap();
        check.feed(&entries[4..]).unwrap();
        assert_eq!(check.count(), 6);
        assert_eq!(check.first_seq(), Some(1));
        assert_eq!(check.head(), Some((entries[5].hash.as_str(), 6)));

        let mut tampered = chain(6);
        tampered[4].details = json!({"n": 99});
        let mut check = ChainCheck::default();
        check.feed(&tampered[..3]).unwrap();
        let broken = check.feed(&tampered[3..]).unwrap_err();
        assert_eq!((broken.seq, broken.kind), (5, BreakKind::HashMismatch));
        assert_eq!(check.count(), 4, "entries 1-4 verified");
        assert_eq!(check.head(), Some((tampered[3].hash.as_str(), 4)));

        let mut relinked = chain(3);
        relinked[1].prev_hash = GENESIS_HASH.into();
        let broken = ChainCheck::default().feed(&relinked).unwrap_err();
        assert_eq!((broken.seq, broken.kind), (2, BreakKind::PrevHashMismatch));

        let mut forged = chain(2);
        forged[0].prev_hash = "ab".repeat(32);
        let broken = ChainCheck::default().feed(&forged).unwrap_err();
        assert_eq!((broken.seq, broken.kind), (1, BreakKind::NotGenesis));
        assert_eq!(BreakKind::NotGenesis.as_str(), "not_genesis");
    }
}
