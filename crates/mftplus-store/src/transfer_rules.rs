//! The rules the transfer methods of [`crate::Store`] apply, written once for every backend:
//! backends load the rows, call these, and write what they decide.

use std::collections::HashMap;

use crate::{ChunkOutcome, ChunkRow, NewChunk};

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
