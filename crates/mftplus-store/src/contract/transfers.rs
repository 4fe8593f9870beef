//! Public keys, transfers, their recipients and chunk rows.
//!
//! Every transfer here expires at [`FAR`], except in [`expire_transfers`], so that section can
//! assert exactly which transfers it expired.

use super::{assert_conflict, assert_not_found, uid};
use crate::{
    recipient_kind, transfer_status, ChunkOutcome, NewChunk, NewRecipient, NewTransfer,
    RecipientRow, Store, TimeCursor, TransferFilter, TransferParty, TransferRow, UserKeyRow,
    NOT_UPLOADING,
};

/// Where a page that ends at `row` goes on.
pub(super) fn cursor_of(row: &TransferRow) -> TimeCursor {
    TimeCursor {
        at_ms: row.created_at_ms,
        id: row.id.clone(),
    }
}

/// An expiry no section's clock reaches.
const FAR: i64 = 9_000_000_000_000;

pub(super) fn user(id: &str) -> NewRecipient {
    NewRecipient {
        kind: recipient_kind::USER.into(),
        id: id.to_string(),
        display: format!("{id}@example.com"),
        awaiting_grant: false,
    }
}

fn agent(id: &str) -> NewRecipient {
    NewRecipient {
        kind: recipient_kind::AGENT.into(),
        id: id.to_string(),
        display: format!("agent {id}"),
        awaiting_grant: false,
    }
}

pub(super) fn new_transfer(
    sender_id: &str,
    recipients: Vec<NewRecipient>,
    created_at_ms: i64,
) -> NewTransfer {
    NewTransfer {
        id: uid("tr"),
        sender_kind: recipient_kind::USER.into(),
        sender_id: sender_id.to_string(),
        // Not valid UTF-8 and with a NUL, so a text column would mangle it.
        header: vec![0x4d, 0x46, 0x54, 0x00, 0xff, 0xfe, 0x01],
        chunk_size: 10 * 1024 * 1024,
        created_at_ms,
        expires_at_ms: FAR,
        site: None,
        recipients,
    }
}

/// A chunk whose hash is that of `body`.
pub(super) fn chunk(idx: i64, body: &str, last: bool) -> NewChunk {
    NewChunk {
        idx,
        size: body.len() as i64,
        sha256: mftplus_crypto::sha256_hex(body.as_bytes()),
        last,
        stored_at_ms: 50_000 + idx,
        data: None,
    }
}

fn expected_row(transfer: &NewTransfer) -> TransferRow {
    let mut recipients: Vec<RecipientRow> = transfer
        .recipients
        .iter()
        .map(|recipient| RecipientRow {
            kind: recipient.kind.clone(),
            id: recipient.id.clone(),
            display: recipient.display.clone(),
            downloaded_at_ms: None,
            awaiting_grant: recipient.awaiting_grant,
            granted_at_ms: None,
        })
        .collect();
    recipients.sort_by(|a, b| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)));
    TransferRow {
        id: transfer.id.clone(),
        sender_kind: transfer.sender_kind.clone(),
        sender_id: transfer.sender_id.clone(),
        status: transfer_status::UPLOADING.into(),
        header: transfer.header.clone(),
        chunk_size: transfer.chunk_size,
        chunk_count: None,
        ciphertext_bytes: 0,
        manifest: None,
        created_at_ms: transfer.created_at_ms,
        completed_at_ms: None,
        cancelled_at_ms: None,
        expires_at_ms: transfer.expires_at_ms,
        site: transfer.site.clone(),
        recipients,
    }
}

pub(super) async fn create(store: &dyn Store, transfer: &NewTransfer) -> TransferRow {
    store
        .create_transfer(transfer)
        .await
        .expect("create_transfer")
}

async fn status_of(store: &dyn Store, id: &str) -> String {
    store
        .get_transfer(id)
        .await
        .expect("get_transfer")
        .expect("transfer exists")
        .status
}

/// Stores `count` chunks `0..count`, the last one marked last, and completes the transfer.
pub(super) async fn upload_whole(store: &dyn Store, id: &str, count: i64) -> TransferRow {
    let chunks: Vec<NewChunk> = (0..count)
        .map(|idx| chunk(idx, &format!("body {idx}"), idx == count - 1))
        .collect();
    store
        .record_chunks(id, &chunks)
        .await
        .expect("record_chunks");
    store
        .complete_transfer(id, b"manifest", 60_000)
        .await
        .expect("complete_transfer")
}

/// Register, replace and look up public keys.
pub async fn user_keys(store: &dyn Store) {
    let user_id = uid("usr");
    assert_eq!(store.get_user_key(&user_id).await.unwrap(), None);
    let first = UserKeyRow {
        user_id: user_id.clone(),
        public_key: "mftx25519_first".into(),
        fingerprint: "SHA256:first".into(),
        created_at_ms: 1_000,
        updated_at_ms: 1_000,
    };
    store.put_user_key(&first).await.expect("put_user_key");
    assert_eq!(
        store.get_user_key(&user_id).await.unwrap(),
        Some(first.clone())
    );

    let replacement = UserKeyRow {
        public_key: "mftx25519_second".into(),
        fingerprint: "SHA256:second".into(),
        created_at_ms: 2_000,
        updated_at_ms: 2_000,
        ..first.clone()
    };
    store
        .put_user_key(&replacement)
        .await
        .expect("put_user_key replaces");
    let stored = store.get_user_key(&user_id).await.unwrap().unwrap();
    assert_eq!(stored.public_key, "mftx25519_second");
    assert_eq!(stored.fingerprint, "SHA256:second");
    assert_eq!(stored.updated_at_ms, 2_000);
    assert_eq!(
        stored.created_at_ms, 1_000,
        "a replacement keeps the first registration time"
    );

    let other = UserKeyRow {
        user_id: uid("usr"),
        ..first
    };
    store.put_user_key(&other).await.unwrap();
    assert_eq!(
        store
            .get_user_key(&user_id)
            .await
            .unwrap()
            .unwrap()
            .public_key,
        "mftx25519_second",
        "keys of different users are independent"
    );
}

/// Create and look up transfers with their recipients; duplicates are refused atomically.
pub async fn transfers_create(store: &dyn Store) {
    let sender = uid("usr");
    let mut new = new_transfer(
        &sender,
        vec![user(&uid("usr")), agent(&uid("agt")), user(&uid("usr"))],
        1_000,
    );
    new.site = Some("hub-eu".into());
    let created = create(store, &new).await;
    assert_eq!(created, expected_row(&new));
    assert_eq!(
        store.get_transfer(&new.id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(store.get_transfer(&uid("tr")).await.unwrap(), None);

    let mut same_id = new_transfer(&sender, vec![], 2_000);
    same_id.id = new.id.clone();
    assert_conflict(store.create_transfer(&same_id).await, "id");
    assert_eq!(
        store.get_transfer(&new.id).await.unwrap(),
        Some(created),
        "a refused create changes nothing"
    );

    let twice = uid("usr");
    let duplicate = new_transfer(&sender, vec![user(&twice), user(&twice)], 3_000);
    assert_conflict(store.create_transfer(&duplicate).await, "recipient");
    assert_eq!(
        store.get_transfer(&duplicate.id).await.unwrap(),
        None,
        "a refused create inserts nothing"
    );

    let same_id_other_kind = uid("x");
    let both = new_transfer(
        &sender,
        vec![user(&same_id_other_kind), agent(&same_id_other_kind)],
        4_000,
    );
    let row = create(store, &both).await;
    assert_eq!(
        row.recipients.len(),
        2,
        "a user and an agent may share an id"
    );

    let nobody = new_transfer(&sender, vec![], 5_000);
    assert!(create(store, &nobody).await.recipients.is_empty());
}

/// Listing: the sender and user recipients see a transfer, nobody else does; status and
/// paging filters; newest first.
pub async fn transfers_list(store: &dyn Store) {
    let (sender, recipient, other, stranger) = (uid("usr"), uid("usr"), uid("usr"), uid("usr"));
    let a = create(store, &new_transfer(&sender, vec![user(&recipient)], 1_000)).await;
    let b = create(
        store,
        &new_transfer(&sender, vec![agent(&uid("agt"))], 2_000),
    )
    .await;
    let c = create(store, &new_transfer(&other, vec![user(&recipient)], 3_000)).await;
    // An agent that happens to share the user's id does not make the user a recipient.
    let d = create(store, &new_transfer(&other, vec![agent(&recipient)], 4_000)).await;
    let e = create(store, &new_transfer(&sender, vec![], 5_000)).await;
    // Sent to oneself: listed once.
    let f = create(
        store,
        &new_transfer(&recipient, vec![user(&recipient)], 6_000),
    )
    .await;
    assert!(store.cancel_transfer(&e.id, 5_500).await.unwrap());
    let e = store.get_transfer(&e.id).await.unwrap().unwrap();

    let list = |user: &str, status: Option<&str>, before: Option<&TransferRow>, limit: u32| {
        let filter = TransferFilter {
            visible_to: Some(TransferParty::User(user.to_string())),
            pending_for: None,
            status: status.map(str::to_string),
            before: before.map(cursor_of),
            limit,
        };
        async move { store.list_transfers(&filter).await.expect("list_transfers") }
    };
    assert_eq!(
        list(&sender, None, None, 100).await,
        vec![e.clone(), b.clone(), a.clone()],
        "the sender sees what it sent, newest first, with recipients"
    );
    assert_eq!(
        list(&recipient, None, None, 100).await,
        vec![f.clone(), c.clone(), a.clone()],
        "a user recipient sees what it received and sent, each once"
    );
    assert_eq!(list(&other, None, None, 100).await, vec![d, c]);
    assert!(
        list(&stranger, None, None, 100).await.is_empty(),
        "a stranger sees nothing"
    );

    assert_eq!(
        list(&sender, Some(transfer_status::CANCELLED), None, 100).await,
        vec![e.clone()]
    );
    assert_eq!(
        list(&sender, Some(transfer_status::UPLOADING), None, 100).await,
        vec![b.clone(), a.clone()]
    );
    assert!(list(&sender, Some(transfer_status::COMPLETE), None, 100)
        .await
        .is_empty());

    let first_page = list(&sender, None, None, 2).await;
    assert_eq!(first_page, vec![e.clone(), b.clone()]);
    assert_eq!(
        list(&sender, None, first_page.last(), 2).await,
        vec![a.clone()],
        "the cursor row is not repeated"
    );
    assert!(list(&sender, None, Some(&a), 2).await.is_empty());
    assert_eq!(
        list(&sender, Some(transfer_status::UPLOADING), Some(&e), 1).await,
        vec![b],
        "filters combine"
    );

    let everyone = store
        .list_transfers(&TransferFilter {
            limit: 10_000,
            ..TransferFilter::default()
        })
        .await
        .unwrap();
    assert!(everyone.contains(&a) && everyone.contains(&f));
    assert!(
        everyone
            .windows(2)
            .all(|pair| pair[0].created_at_ms >= pair[1].created_at_ms),
        "an unfiltered list is newest first"
    );
}

/// Chunk batches: new, retried and conflicting chunks, within one batch and across batches;
/// only while uploading.
pub async fn record_chunks(store: &dyn Store) {
    use ChunkOutcome::{AlreadyStored, Conflict, Stored};
    let t = create(store, &new_transfer(&uid("usr"), vec![], 1_000)).await;

    let first = [
        chunk(0, "zero", false),
        chunk(1, "one", false),
        chunk(1, "one", false),
        chunk(2, "two", false),
        chunk(2, "not two", false),
    ];
    assert_eq!(
        store.record_chunks(&t.id, &first).await.unwrap(),
        vec![Stored, Stored, AlreadyStored, Stored, Conflict],
        "within one batch, a repeat is judged against the earlier chunk"
    );
    let bytes = ("zero".len() + "one".len() + "two".len()) as i64;
    let row = store.get_transfer(&t.id).await.unwrap().unwrap();
    assert_eq!(row.ciphertext_bytes, bytes, "only stored chunks count");

    let mut longer = chunk(0, "zero", false);
    longer.size += 1;
    let mut now_last = chunk(2, "two", false);
    now_last.last = true;
    let second = [
        chunk(1, "one", false),
        chunk(0, "changed", false),
        longer,
        now_last,
        chunk(3, "three", true),
    ];
    assert_eq!(
        store.record_chunks(&t.id, &second).await.unwrap(),
        vec![AlreadyStored, Conflict, Conflict, Conflict, Stored],
        "across batches: same content is a retry, anything else a conflict"
    );
    let bytes = bytes + "three".len() as i64;
    let row = store.get_transfer(&t.id).await.unwrap().unwrap();
    assert_eq!(row.ciphertext_bytes, bytes);

    let chunks = store.list_chunks(&t.id).await.unwrap();
    let expected = [
        chunk(0, "zero", false),
        chunk(1, "one", false),
        chunk(2, "two", false),
        chunk(3, "three", true),
    ];
    assert_eq!(
        chunks,
        expected
            .iter()
            .map(crate::ChunkRow::from)
            .collect::<Vec<_>>(),
        "ordered by idx; conflicts kept the first rows"
    );
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(
            store.get_chunk(&t.id, i as i64).await.unwrap(),
            Some(crate::ChunkRow::from(want)),
            "get_chunk({i}) is the listed row"
        );
    }
    assert_eq!(
        store.get_chunk(&t.id, 4).await.unwrap(),
        None,
        "past the end"
    );
    assert_eq!(
        store.get_chunk(&uid("tr"), 0).await.unwrap(),
        None,
        "unknown transfer"
    );
    assert_eq!(
        store.record_chunks(&t.id, &[]).await.unwrap(),
        vec![],
        "an empty batch is fine"
    );

    assert_not_found(
        store
            .record_chunks(&uid("tr"), &[chunk(0, "x", true)])
            .await,
        "record_chunks on an unknown transfer",
    );
    assert!(store.list_chunks(&uid("tr")).await.unwrap().is_empty());

    store
        .complete_transfer(&t.id, b"manifest", 60_000)
        .await
        .expect("complete");
    assert_conflict(
        store.record_chunks(&t.id, &[chunk(4, "four", false)]).await,
        NOT_UPLOADING,
    );
    assert_conflict(
        store.record_chunks(&t.id, &[chunk(0, "zero", false)]).await,
        NOT_UPLOADING,
    );

    let cancelled = create(store, &new_transfer(&uid("usr"), vec![], 1_000)).await;
    store
        .record_chunks(&cancelled.id, &[chunk(0, "zero", false)])
        .await
        .unwrap();
    assert!(store.cancel_transfer(&cancelled.id, 2_000).await.unwrap());
    assert_conflict(
        store
            .record_chunks(&cancelled.id, &[chunk(1, "one", true)])
            .await,
        NOT_UPLOADING,
    );
    assert_eq!(
        store.list_chunks(&cancelled.id).await.unwrap().len(),
        1,
        "a refused batch records nothing"
    );
    let row = store.get_transfer(&cancelled.id).await.unwrap().unwrap();
    assert_eq!(row.ciphertext_bytes, 4);
}

/// Completion needs chunks `0..n` with exactly one last chunk, at `n - 1`.
pub async fn complete_transfer(store: &dyn Store) {
    let sender = uid("usr");
    let fresh = || new_transfer(&sender, vec![user(&uid("usr"))], 1_000);

    let empty = create(store, &fresh()).await;
    assert_conflict(
        store.complete_transfer(&empty.id, b"m", 2_000).await,
        "no last chunk",
    );

    let gap_new = fresh();
    let gap = create(store, &gap_new).await;
    store
        .record_chunks(&gap.id, &[chunk(0, "a", false), chunk(2, "c", true)])
        .await
        .unwrap();
    assert_conflict(
        store.complete_transfer(&gap.id, b"m", 2_000).await,
        "missing chunk 1",
    );

    let no_last = create(store, &fresh()).await;
    store
        .record_chunks(&no_last.id, &[chunk(0, "a", false), chunk(1, "b", false)])
        .await
        .unwrap();
    assert_conflict(
        store.complete_transfer(&no_last.id, b"m", 2_000).await,
        "no last chunk",
    );

    let early_last = create(store, &fresh()).await;
    store
        .record_chunks(
            &early_last.id,
            &[
                chunk(0, "a", false),
                chunk(1, "b", true),
                chunk(2, "c", false),
            ],
        )
        .await
        .unwrap();
    assert_conflict(
        store.complete_transfer(&early_last.id, b"m", 2_000).await,
        "chunk 1 is marked last but 3 chunks are stored",
    );
    for id in [&empty.id, &gap.id, &no_last.id, &early_last.id] {
        assert_eq!(
            status_of(store, id).await,
            transfer_status::UPLOADING,
            "a refused completion changes nothing"
        );
    }

    // Filling the gap makes the stream whole.
    store
        .record_chunks(&gap.id, &[chunk(1, "b", false)])
        .await
        .unwrap();
    let manifest = vec![0_u8, 1, 2, 255];
    let done = store
        .complete_transfer(&gap.id, &manifest, 3_000)
        .await
        .expect("complete a contiguous transfer");
    let mut expected = expected_row(&gap_new);
    expected.status = transfer_status::COMPLETE.into();
    expected.chunk_count = Some(3);
    expected.ciphertext_bytes = 3;
    expected.manifest = Some(manifest.clone());
    expected.completed_at_ms = Some(3_000);
    assert_eq!(done, expected);
    assert_eq!(store.get_transfer(&gap.id).await.unwrap(), Some(done));

    assert_conflict(
        store.complete_transfer(&gap.id, b"again", 4_000).await,
        NOT_UPLOADING,
    );
    let again = store.get_transfer(&gap.id).await.unwrap().unwrap();
    assert_eq!(
        again.manifest,
        Some(manifest),
        "a second completion is refused"
    );
    assert_not_found(
        store.complete_transfer(&uid("tr"), b"m", 2_000).await,
        "complete an unknown transfer",
    );

    let single = create(store, &fresh()).await;
    let done = upload_whole(store, &single.id, 1).await;
    assert_eq!(
        done.chunk_count,
        Some(1),
        "one empty last chunk is a whole stream"
    );
}

/// Cancelling works from `uploading` and `complete`, once.
pub async fn cancel_transfer(store: &dyn Store) {
    let sender = uid("usr");
    let uploading = create(store, &new_transfer(&sender, vec![], 1_000)).await;
    assert!(store.cancel_transfer(&uploading.id, 2_000).await.unwrap());
    let row = store.get_transfer(&uploading.id).await.unwrap().unwrap();
    assert_eq!(row.status, transfer_status::CANCELLED);
    assert_eq!(row.cancelled_at_ms, Some(2_000));
    assert!(
        !store.cancel_transfer(&uploading.id, 3_000).await.unwrap(),
        "a second cancel is a no-op"
    );
    let row = store.get_transfer(&uploading.id).await.unwrap().unwrap();
    assert_eq!(
        row.cancelled_at_ms,
        Some(2_000),
        "and keeps the first stamp"
    );
    assert_conflict(
        store.complete_transfer(&uploading.id, b"m", 3_000).await,
        NOT_UPLOADING,
    );

    let complete = create(store, &new_transfer(&sender, vec![], 1_000)).await;
    upload_whole(store, &complete.id, 2).await;
    assert!(store.cancel_transfer(&complete.id, 4_000).await.unwrap());
    let row = store.get_transfer(&complete.id).await.unwrap().unwrap();
    assert_eq!(row.status, transfer_status::CANCELLED);
    assert_eq!(
        row.chunk_count,
        Some(2),
        "cancelling keeps what was recorded"
    );

    assert!(!store.cancel_transfer(&uid("tr"), 4_000).await.unwrap());
}

/// Download stamps per recipient; the first one stays.
pub async fn mark_downloaded(store: &dyn Store) {
    let (reader, robot) = (uid("usr"), uid("agt"));
    let t = create(
        store,
        &new_transfer(&uid("usr"), vec![user(&reader), agent(&robot)], 1_000),
    )
    .await;
    store
        .mark_downloaded(&t.id, recipient_kind::USER, &reader, 2_000)
        .await
        .expect("mark_downloaded");
    store
        .mark_downloaded(&t.id, recipient_kind::USER, &reader, 3_000)
        .await
        .expect("mark_downloaded again");
    let stamp = |row: &TransferRow, id: &str| {
        row.recipients
            .iter()
            .find(|recipient| recipient.id == id)
            .expect("recipient listed")
            .downloaded_at_ms
    };
    let row = store.get_transfer(&t.id).await.unwrap().unwrap();
    assert_eq!(
        stamp(&row, &reader),
        Some(2_000),
        "the first download stays"
    );
    assert_eq!(stamp(&row, &robot), None, "other recipients are untouched");

    store
        .mark_downloaded(&t.id, recipient_kind::AGENT, &robot, 4_000)
        .await
        .unwrap();
    let row = store.get_transfer(&t.id).await.unwrap().unwrap();
    assert_eq!(stamp(&row, &robot), Some(4_000));

    assert_not_found(
        store
            .mark_downloaded(&t.id, recipient_kind::USER, &uid("usr"), 5_000)
            .await,
        "mark_downloaded for a stranger",
    );
    assert_not_found(
        store
            .mark_downloaded(&t.id, recipient_kind::USER, &robot, 5_000)
            .await,
        "mark_downloaded with the wrong kind",
    );
    assert_not_found(
        store
            .mark_downloaded(&uid("tr"), recipient_kind::USER, &reader, 5_000)
            .await,
        "mark_downloaded on an unknown transfer",
    );
}

/// Expiry moves exactly the due `uploading` and `complete` transfers. Assumes no other section
/// left a transfer due before [`FAR`].
pub async fn expire_transfers(store: &dyn Store) {
    let sender = uid("usr");
    let with_expiry = |expires_at_ms: i64| NewTransfer {
        expires_at_ms,
        ..new_transfer(&sender, vec![], 1_000)
    };
    let due_uploading = create(store, &with_expiry(100_000)).await;
    let due_complete = create(store, &with_expiry(150_000)).await;
    upload_whole(store, &due_complete.id, 1).await;
    let due_cancelled = create(store, &with_expiry(100_000)).await;
    assert!(store
        .cancel_transfer(&due_cancelled.id, 2_000)
        .await
        .unwrap());
    let later = create(store, &with_expiry(150_001)).await;

    let mut expected = vec![due_uploading.id.clone(), due_complete.id.clone()];
    expected.sort();
    assert_eq!(
        store.expire_transfers(150_000).await.unwrap(),
        expected,
        "due at the expires_at instant; cancelled ones stay cancelled"
    );
    for id in &expected {
        assert_eq!(status_of(store, id).await, transfer_status::EXPIRED);
    }
    assert_eq!(
        status_of(store, &due_cancelled.id).await,
        transfer_status::CANCELLED
    );
    assert_eq!(
        status_of(store, &later.id).await,
        transfer_status::UPLOADING
    );
    assert!(
        store.expire_transfers(150_000).await.unwrap().is_empty(),
        "expiring again moves nothing"
    );

    assert_conflict(
        store
            .record_chunks(&due_uploading.id, &[chunk(0, "late", true)])
            .await,
        NOT_UPLOADING,
    );
    assert!(
        !store
            .cancel_transfer(&due_complete.id, 200_000)
            .await
            .unwrap(),
        "an expired transfer cannot be cancelled"
    );
    assert_eq!(
        store.expire_transfers(150_001).await.unwrap(),
        vec![later.id.clone()]
    );
}

/// Deleting removes the transfer, its recipients and its chunk rows, and is idempotent.
pub async fn delete_transfer(store: &dyn Store) {
    let reader = uid("usr");
    let t = create(
        store,
        &new_transfer(&uid("usr"), vec![user(&reader)], 1_000),
    )
    .await;
    upload_whole(store, &t.id, 3).await;
    let kept = create(
        store,
        &new_transfer(&uid("usr"), vec![user(&reader)], 1_000),
    )
    .await;
    store
        .record_chunks(&kept.id, &[chunk(0, "kept", false)])
        .await
        .unwrap();

    store.delete_transfer(&t.id).await.expect("delete_transfer");
    assert_eq!(store.get_transfer(&t.id).await.unwrap(), None);
    assert!(store.list_chunks(&t.id).await.unwrap().is_empty());
    let visible = store
        .list_transfers(&TransferFilter {
            visible_to: Some(TransferParty::User(reader.clone())),
            pending_for: None,
            limit: 100,
            ..TransferFilter::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = visible.iter().map(|row| row.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![kept.id.as_str()],
        "only the other transfer is left"
    );
    assert_eq!(store.list_chunks(&kept.id).await.unwrap().len(), 1);

    store
        .delete_transfer(&t.id)
        .await
        .expect("deleting twice is fine");
    store
        .delete_transfer(&uid("tr"))
        .await
        .expect("deleting an unknown transfer is fine");

    // No recipient or chunk row survived: the id can be used again from scratch.
    let mut reused = new_transfer(&uid("usr"), vec![user(&reader)], 2_000);
    reused.id = t.id.clone();
    create(store, &reused).await;
    assert_eq!(
        store
            .record_chunks(&t.id, &[chunk(0, "fresh", true)])
            .await
            .unwrap(),
        vec![ChunkOutcome::Stored]
    );
}
