use std::sync::Arc;

use mftplus_crypto::audit::{verify_run, GENESIS_HASH};
use mftplus_types::api::AuditEntry;
use serde_json::json;

use crate::{AuditFilter, AuditRow, NewAuditEntry, Store};

fn entry(ts_ms: i64, details: serde_json::Value) -> NewAuditEntry {
    NewAuditEntry {
        ts_ms,
        event: "user.login".into(),
        actor: "admin@example.com".into(),
        target: "user:42".into(),
        outcome: "success".into(),
        client_ip: "192.0.2.7".into(),
        details,
    }
}

fn to_entry(row: &AuditRow) -> AuditEntry {
    AuditEntry {
        seq: row.seq,
        ts_ms: row.ts_ms,
        time: String::new(),
        event: row.event.clone(),
        actor: row.actor.clone(),
        target: row.target.clone(),
        outcome: row.outcome.clone(),
        client_ip: row.client_ip.clone(),
        details: row.details.clone(),
        prev_hash: row.prev_hash.clone(),
        hash: row.hash.clone(),
    }
}

/// Every entry, read page by page.
async fn read_all(store: &dyn Store, page: u32) -> Vec<AuditRow> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.list_audit(after, page).await.expect("list_audit");
        assert!(
            batch.len() <= page as usize,
            "list_audit returned more than its limit"
        );
        let Some(last) = batch.last() else { break };
        after = last.seq;
        all.extend(batch);
    }
    all
}

/// Verifies a contiguous run read back from the store, anchored at its first entry's link.
#[track_caller]
pub(super) fn verify(rows: &[AuditRow]) {
    let Some(first) = rows.first() else { return };
    let anchor = if first.seq == 1 {
        assert_eq!(
            first.prev_hash, GENESIS_HASH,
            "the first entry links to the genesis hash"
        );
        None
    } else {
        Some((first.prev_hash.as_str(), first.seq - 1))
    };
    let entries: Vec<AuditEntry> = rows.iter().map(to_entry).collect();
    if let Err(broken) = verify_run(anchor, &entries) {
        panic!(
            "audit chain does not verify at seq {}: {}",
            broken.seq, broken.reason
        );
    }
}

/// Appends link into one chain that reads back byte-identically, in pages.
pub async fn audit_chain(store: &dyn Store) {
    let head = read_all(store, 1_000)
        .await
        .last()
        .map(|row| (row.seq, row.hash.clone()));
    let details = [
        json!({}),
        json!({"b": 1, "a": {"z": [1, 2, {"y": null, "x": "é✓"}], "c": true}}),
        json!({"ratio": 0.1, "tiny": 1e-7, "big": 12345678901234567_u64, "neg": -3}),
        json!({"reason": "line\nbreak \"quoted\" \\ back", "emoji": "🔐"}),
        json!({"list": [], "nested": {"deeper": {"deepest": [1.5, "x", false]}}}),
    ];
    let mut appended = Vec::new();
    for (index, value) in details.iter().enumerate() {
        let input = entry(1_000 + index as i64, value.clone());
        let row = store.append_audit(&input).await.expect("append_audit");
        assert_eq!(row.ts_ms, input.ts_ms);
        assert_eq!(row.event, input.event);
        assert_eq!(row.actor, input.actor);
        assert_eq!(row.target, input.target);
        assert_eq!(row.outcome, input.outcome);
        assert_eq!(row.client_ip, input.client_ip);
        assert_eq!(row.details, input.details);
        appended.push(row);
    }
    let (expected_seq, expected_prev) = match &head {
        Some((seq, hash)) => (seq + 1, hash.clone()),
        None => (1, GENESIS_HASH.to_string()),
    };
    assert_eq!(appended[0].seq, expected_seq, "seq continues from the head");
    assert_eq!(
        appended[0].prev_hash, expected_prev,
        "first append links to the head"
    );
    for pair in appended.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1, "seq has no gaps");
        assert_eq!(
            pair[1].prev_hash, pair[0].hash,
            "each entry links to the previous"
        );
    }

    // Paging: limit 2 over five entries gives 2 + 2 + 1.
    let after = expected_seq - 1;
    let page1 = store.list_audit(after, 2).await.unwrap();
    let page2 = store.list_audit(page1[1].seq, 2).await.unwrap();
    let page3 = store.list_audit(page2[1].seq, 2).await.unwrap();
    assert_eq!((page1.len(), page2.len(), page3.len()), (2, 2, 1));
    let paged: Vec<AuditRow> = [page1, page2, page3].concat();
    assert_eq!(paged, appended, "entries read back exactly as appended");
    assert!(store
        .list_audit(appended[4].seq, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(
        store.list_audit(after, 0).await.unwrap().is_empty(),
        "limit 0 returns nothing"
    );

    // Several entries in one call: chained exactly as one by one, and read back the same.
    let together = [
        entry(2_000, json!({"together": 1})),
        entry(2_001, json!({"together": 2})),
    ];
    let rows = store.append_audits(&together).await.expect("append_audits");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].seq, appended[4].seq + 1);
    assert_eq!(rows[0].prev_hash, appended[4].hash);
    assert_eq!(
        (rows[1].seq, &rows[1].prev_hash),
        (rows[0].seq + 1, &rows[0].hash)
    );
    assert_eq!(
        rows.iter().map(|r| &r.details).collect::<Vec<_>>(),
        together.iter().map(|e| &e.details).collect::<Vec<_>>()
    );
    assert_eq!(store.list_audit(appended[4].seq, 10).await.unwrap(), rows);
    assert!(store.append_audits(&[]).await.unwrap().is_empty());

    let all = read_all(store, 2).await;
    assert_eq!(all.last(), rows.last());
    verify(&all);
}

/// Pruning removes a prefix of the log, never opens a gap, and never resets `seq`.
pub async fn audit_prune(store: &dyn Store) {
    let before = read_all(store, 1_000).await;
    let head = before
        .last()
        .expect("audit_prune needs a non-empty log; run audit_chain first");
    let (head_seq, head_hash) = (head.seq, head.hash.clone());

    let pruned = store.prune_audit(i64::MAX).await.expect("prune everything");
    assert_eq!(
        pruned,
        before.len() as u64,
        "prune_audit reports how many rows it deleted"
    );
    assert!(store.list_audit(0, 100).await.unwrap().is_empty());

    let first = store
        .append_audit(&entry(100, json!({"n": 1})))
        .await
        .unwrap();
    assert_eq!(
        first.seq,
        head_seq + 1,
        "seq is never reused, even after pruning everything"
    );
    assert_eq!(
        first.prev_hash, head_hash,
        "the chain continues across pruning"
    );

    // Timestamps need not follow seq (clocks of concurrent writers); pruning must still only
    // cut a prefix, otherwise the remaining log would have a hole and stop verifying.
    let second = store
        .append_audit(&entry(200, json!({"n": 2})))
        .await
        .unwrap();
    let out_of_order = store
        .append_audit(&entry(50, json!({"n": 3})))
        .await
        .unwrap();
    let last = store
        .append_audit(&entry(300, json!({"n": 4})))
        .await
        .unwrap();

    assert_eq!(store.prune_audit(150).await.unwrap(), 1);
    let remaining = read_all(store, 1_000).await;
    assert_eq!(
        remaining,
        vec![second.clone(), out_of_order.clone(), last.clone()]
    );
    verify(&remaining);
    assert_eq!(
        remaining[0].prev_hash, first.hash,
        "the first remaining entry is the anchor"
    );

    assert_eq!(store.prune_audit(250).await.unwrap(), 2);
    let remaining = read_all(store, 1_000).await;
    assert_eq!(remaining, vec![last.clone()]);
    verify(&remaining);
    assert_eq!(store.prune_audit(0).await.unwrap(), 0);
}

/// Concurrent appends never fork the chain or skip a number.
pub async fn audit_concurrent_appends(store: Arc<dyn Store>) {
    const WRITERS: i64 = 50;
    let before = read_all(&*store, 1_000).await;
    let head_seq = before.last().map_or(0, |row| row.seq);
    let tasks: Vec<_> = (0..WRITERS)
        .map(|index| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append_audit(&entry(10_000 + index, json!({"writer": index})))
                    .await
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        let row = task.await.expect("task panicked").expect("append_audit");
        seqs.push(row.seq);
    }
    seqs.sort_unstable();
    let expected: Vec<i64> = (head_seq + 1..=head_seq + WRITERS).collect();
    assert_eq!(
        seqs, expected,
        "concurrent appends get distinct, gap-free seqs"
    );

    let after = read_all(&*store, 7).await;
    assert_eq!(after.len(), before.len() + WRITERS as usize);
    verify(&after);
    if let Some(old_head) = before.last() {
        assert_eq!(after[before.len()].prev_hash, old_head.hash);
    }
}

/// The filtered listing: each filter narrows in the query (a page is never short because rows
/// were dropped after reading), both orders, and the seq cursor in both directions.
pub async fn audit_search(store: &dyn Store) {
    let event = super::uid("audit.search");
    let (alice, bob) = (super::uid("alice"), super::uid("bob"));
    let base = 7_000_000_000_000;
    let mut mine = Vec::new();
    for n in 0..6i64 {
        let mut input = entry(base + n * 1_000, json!({ "n": n }));
        input.event = if n == 5 {
            "other.event".into()
        } else {
            event.clone()
        };
        input.actor = if n % 2 == 0 {
            alice.clone()
        } else {
            bob.clone()
        };
        mine.push(store.append_audit(&input).await.expect("append_audit"));
        // Entries of others in between: a filtered page must still fill up to its limit.
        let mut noise = entry(base + n * 1_000 + 1, json!({}));
        noise.actor = super::uid("noise");
        store.append_audit(&noise).await.expect("append_audit");
    }
    let search = |filter: AuditFilter| async move {
        let rows = store.search_audit(&filter).await.expect("search_audit");
        assert!(rows.len() <= filter.limit as usize, "at most the limit");
        rows.iter().map(|row| row.seq).collect::<Vec<_>>()
    };
    let seqs = |indexes: &[usize]| indexes.iter().map(|&i| mine[i].seq).collect::<Vec<_>>();
    let of_event = AuditFilter {
        event: Some(event.clone()),
        limit: 100,
        ..AuditFilter::default()
    };
    assert_eq!(
        search(of_event.clone()).await,
        seqs(&[0, 1, 2, 3, 4]),
        "oldest first"
    );
    let newest = AuditFilter {
        newest_first: true,
        ..of_event.clone()
    };
    assert_eq!(
        search(newest.clone()).await,
        seqs(&[4, 3, 2, 1, 0]),
        "newest first"
    );
    let by_alice = AuditFilter {
        actor: Some(alice.clone()),
        limit: 2,
        ..newest.clone()
    };
    assert_eq!(
        search(by_alice.clone()).await,
        seqs(&[4, 2]),
        "filtered before the limit"
    );
    let next = AuditFilter {
        before_seq: Some(mine[2].seq),
        ..by_alice
    };
    assert_eq!(search(next).await, seqs(&[0]), "the cursor going back");
    let forwards = AuditFilter {
        after_seq: Some(mine[1].seq),
        limit: 2,
        ..of_event.clone()
    };
    assert_eq!(
        search(forwards).await,
        seqs(&[2, 3]),
        "the cursor going forwards"
    );
    let window = AuditFilter {
        from_ms: Some(base + 1_000),
        until_ms: Some(base + 3_000),
        ..of_event.clone()
    };
    assert_eq!(
        search(window).await,
        seqs(&[1, 2]),
        "from included, until excluded"
    );
    let by_bob = AuditFilter {
        event: None,
        actor: Some(bob),
        ..of_event
    };
    assert_eq!(search(by_bob).await, seqs(&[1, 3, 5]));
    let nobody = AuditFilter {
        actor: Some(super::uid("nobody")),
        limit: 10,
        ..AuditFilter::default()
    };
    assert!(search(nobody).await.is_empty());
    let rows = store
        .search_audit(&AuditFilter {
            after_seq: Some(mine[3].seq - 1),
            limit: 1,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(rows, vec![mine[3].clone()], "rows read back as appended");
}
