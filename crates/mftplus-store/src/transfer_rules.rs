//! The rules the transfer methods of [`crate::Store`] apply, written once for every backend:
//! backends load the rows, call these, and write what they decide.

use std::collections::HashMap;

use crate::{
    grant_conflict, recipient_kind, transfer_status, ChunkOutcome, ChunkRow, NewChunk,
    TransferGrant, TransferRow,
};

impl ChunkRow {
    /// Same index, size, hash and last flag: what a retried upload of the same chunk sends.
    pub fn matches(&self, chunk: &NewChunk) -> bool {
        self.size == chunk.size && self.sha256 == chunk.sha256 && self.last == chunk.last
    }
}

impl From<&NewChunk> for ChunkRow {
    fn from(chunk: &NewChunk) -> ChunkRow {
        ChunkRow {
            idx: chunk.idx,
            size: chunk.size,
            sha256: chunk.sha256.clone(),
            last: chunk.last,
            stored_at_ms: chunk.stored_at_ms,
            inline: chunk.data.is_some(),
        }
    }
}

/// The decision `record_chunks` makes for a batch, shared by the backends so they decide alike.
///
/// `existing` holds the rows already stored for (at least) the batch's indexes. Chunks are
/// judged in batch order, so a repeated index within one batch is judged against the earlier
/// one. Returns the outcome of every chunk and the chunks to insert.
pub fn plan_chunk_batch<'a>(
    existing: &[ChunkRow],
    batch: &'a [NewChunk],
) -> (Vec<ChunkOutcome>, Vec<&'a NewChunk>) {
    let mut known: HashMap<i64, ChunkRow> =
        existing.iter().map(|row| (row.idx, row.clone())).collect();
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut inserts = Vec::new();
    for chunk in batch {
        let outcome = match known.get(&chunk.idx) {
            None => {
                known.insert(chunk.idx, ChunkRow::from(chunk));
                inserts.push(chunk);
                ChunkOutcome::Stored
            }
            Some(row) if row.matches(chunk) => ChunkOutcome::AlreadyStored,
            Some(_) => ChunkOutcome::Conflict,
        };
        outcomes.push(outcome);
    }
    (outcomes, inserts)
}

/// Whether stored chunks, as `(idx, last)` in ascending `idx` order, form a whole stream: indexes
/// exactly `0..n` and exactly one `last` chunk, at `n - 1`. Returns `n`, or what is wrong, worded
/// for the `Conflict` that `complete_transfer` answers.
pub fn check_complete_chunks(chunks: &[(i64, bool)]) -> Result<i64, String> {
    for (expected, &(idx, _)) in (0_i64..).zip(chunks) {
        if idx != expected {
            return Err(format!("missing chunk {expected}"));
        }
    }
    let count = chunks.len() as i64;
    match chunks.iter().find(|(_, last)| *last) {
        None => Err("no last chunk".into()),
        Some(&(idx, _)) if idx != count - 1 => Err(format!(
            "chunk {idx} is marked last but {count} chunks are stored"
        )),
        Some(_) => Ok(count),
    }
}

/// Whether `grant` may apply to `row` as loaded inside the grant's transaction: the transfer
/// is `uploading` or `complete` and not past its expiry at the grant's time, its header is the
/// grant's base, and every named recipient is a user recipient waiting for a grant (and named
/// once). Returns the [`grant_conflict`] text otherwise.
pub fn check_grant(row: &TransferRow, grant: &TransferGrant) -> Result<(), &'static str> {
    let open = row.status == transfer_status::UPLOADING || row.status == transfer_status::COMPLETE;
    if !open || row.expires_at_ms <= grant.at_ms {
        return Err(grant_conflict::CLOSED);
    }
    if row.header != grant.base_header {
        return Err(grant_conflict::STALE);
    }
    if grant.recipient_ids.is_empty() {
        return Err(grant_conflict::NOT_AWAITING);
    }
    for (at, id) in grant.recipient_ids.iter().enumerate() {
        let waiting = row
            .recipients
            .iter()
            .any(|r| r.kind == recipient_kind::USER && &r.id == id && r.awaiting_grant);
        if !waiting || grant.recipient_ids[..at].contains(id) {
            return Err(grant_conflict::NOT_AWAITING);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(idx: i64, sha256: &str, last: bool) -> NewChunk {
        NewChunk {
            idx,
            size: 10,
            sha256: sha256.into(),
            last,
            stored_at_ms: 1,
            data: None,
        }
    }

    #[test]
    fn plans_new_retried_and_conflicting_chunks() {
        let existing = vec![ChunkRow::from(&chunk(0, "aa", false))];
        let batch = vec![
            chunk(0, "aa", false),
            chunk(0, "bb", false),
            chunk(1, "cc", false),
            chunk(1, "cc", false),
            chunk(1, "dd", false),
            chunk(2, "ee", true),
            chunk(2, "ee", false),
        ];
        let (outcomes, inserts) = plan_chunk_batch(&existing, &batch);
        use ChunkOutcome::*;
        assert_eq!(
            outcomes,
            vec![
                AlreadyStored,
                Conflict,
                Stored,
                AlreadyStored,
                Conflict,
                Stored,
                Conflict
            ]
        );
        let inserted: Vec<i64> = inserts.iter().map(|chunk| chunk.idx).collect();
        assert_eq!(inserted, vec![1, 2]);
    }

    #[test]
    fn a_different_size_is_a_conflict() {
        let existing = vec![ChunkRow::from(&chunk(0, "aa", false))];
        let mut longer = chunk(0, "aa", false);
        longer.size = 11;
        let batch = [longer];
        let (outcomes, inserts) = plan_chunk_batch(&existing, &batch);
        assert_eq!(outcomes, vec![ChunkOutcome::Conflict]);
        assert!(inserts.is_empty());
    }

    #[test]
    fn judges_grants() {
        use crate::RecipientRow;
        let recipient = |id: &str, awaiting: bool| RecipientRow {
            kind: recipient_kind::USER.into(),
            id: id.into(),
            display: format!("{id}@example.com"),
            downloaded_at_ms: None,
            awaiting_grant: awaiting,
            granted_at_ms: None,
        };
        let row = TransferRow {
            id: "t".into(),
            sender_kind: "user".into(),
            sender_id: "s".into(),
            status: transfer_status::COMPLETE.into(),
            header: b"base".to_vec(),
            chunk_size: 65536,
            chunk_count: Some(1),
            ciphertext_bytes: 1,
            manifest: None,
            created_at_ms: 1,
            completed_at_ms: Some(2),
            cancelled_at_ms: None,
            expires_at_ms: 100,
            site: None,
            recipients: vec![recipient("a", true), recipient("b", false)],
        };
        let grant = |ids: &[&str], base: &[u8], at_ms: i64| TransferGrant {
            transfer_id: "t".into(),
            base_header: base.to_vec(),
            header: b"base+a".to_vec(),
            recipient_ids: ids.iter().map(|id| id.to_string()).collect(),
            at_ms,
        };
        assert_eq!(check_grant(&row, &grant(&["a"], b"base", 50)), Ok(()));
        assert_eq!(
            check_grant(&row, &grant(&["a"], b"other", 50)),
            Err(grant_conflict::STALE)
        );
        assert_eq!(
            check_grant(&row, &grant(&["a"], b"base", 100)),
            Err(grant_conflict::CLOSED)
        );
        for ids in [&["b"][..], &["c"], &["a", "a"], &[]] {
            assert_eq!(
                check_grant(&row, &grant(ids, b"base", 50)),
                Err(grant_conflict::NOT_AWAITING),
                "{ids:?}"
            );
        }
        for status in [transfer_status::CANCELLED, transfer_status::EXPIRED] {
            let closed = TransferRow {
                status: status.into(),
                ..row.clone()
            };
            assert_eq!(
                check_grant(&closed, &grant(&["a"], b"base", 50)),
                Err(grant_conflict::CLOSED)
            );
        }
    }

    #[test]
    fn checks_completeness() {
        assert_eq!(check_complete_chunks(&[(0, true)]), Ok(1));
        assert_eq!(
            check_complete_chunks(&[(0, false), (1, false), (2, true)]),
            Ok(3)
        );
        assert_eq!(check_complete_chunks(&[]), Err("no last chunk".into()));
        assert_eq!(
            check_complete_chunks(&[(0, false), (1, false)]),
            Err("no last chunk".into())
        );
        assert_eq!(
            check_complete_chunks(&[(1, true)]),
            Err("missing chunk 0".into())
        );
        assert_eq!(
            check_complete_chunks(&[(0, false), (1, false), (3, true)]),
            Err("missing chunk 2".into())
        );
        assert_eq!(
            check_complete_chunks(&[(0, false), (1, true), (2, true)]),
            Err("chunk 1 is marked last but 3 chunks are stored".into())
        );
        assert_eq!(
            check_complete_chunks(&[(0, true), (1, false)]),
            Err("chunk 0 is marked last but 2 chunks are stored".into())
        );
    }
}
