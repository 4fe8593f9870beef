//! File requests (decision 0034): rows by token hash, listings, revocation, uploads counted
//! with their transfer in one step, and the upload limit under concurrent uploads.

use std::sync::Arc;

use super::transfers::new_transfer;
use super::{assert_conflict, assert_not_found, uid};
use crate::{
    recipient_kind, FileRequestRow, LinkRefusal, NewFileRequest, NewRecipient, NewTransfer,
    RequestUpload, Store, TransferParty,
};

fn new_request(owner_id: &str, created_at_ms: i64, max_uploads: i64) -> NewFileRequest {
    NewFileRequest {
        id: uid("req"),
        token_hash: mftplus_crypto::sha256_hex(uid("token").as_bytes()),
        owner_id: owner_id.to_string(),
        note: "the signed contract, please".into(),
        created_at_ms,
        expires_at_ms: 100_000,
        max_uploads,
        max_bytes: 1 << 30,
    }
}

/// A transfer from the request to its owner, as the cloud makes one.
fn requested(request: &FileRequestRow) -> NewTransfer {
    let mut transfer = new_transfer(&request.id, vec![], 3_000);
    transfer.sender_kind = recipient_kind::REQUEST.into();
    transfer.recipients = vec![NewRecipient {
        kind: recipient_kind::USER.into(),
        id: request.owner_id.clone(),
        display: "owner@example.com".into(),
        awaiting_grant: false,
    }];
    transfer
}

/// Create, find by id and token hash, list newest first per owner and for all, revoke once.
pub async fn file_requests(store: &dyn Store) {
    let owner = uid("usr");
    let first = new_request(&owner, 2_000, 3);
    let row = store
        .create_file_request(&first)
        .await
        .expect("create_file_request");
    let expected = FileRequestRow {
        id: first.id.clone(),
        token_hash: first.token_hash.clone(),
        owner_id: owner.clone(),
        note: first.note.clone(),
        created_at_ms: 2_000,
        expires_at_ms: 100_000,
        max_uploads: 3,
        max_bytes: 1 << 30,
        uploads: 0,
        last_upload_at_ms: None,
        revoked_at_ms: None,
    };
    assert_eq!(row, expected);
    assert_eq!(row.uploads_left(), 3);
    assert_eq!(
        store.get_file_request(&first.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        store
            .get_file_request_by_token_hash(&first.token_hash)
            .await
            .unwrap(),
        Some(expected.clone())
    );
    assert_eq!(store.get_file_request(&uid("req")).await.unwrap(), None);
    let mut clash = new_request(&owner, 2_500, 1);
    clash.token_hash = first.token_hash.clone();
    assert_conflict(store.create_file_request(&clash).await, "token");

    let second = store
        .create_file_request(&new_request(&owner, 2_600, 1))
        .await
        .unwrap();
    let someone_else = store
        .create_file_request(&new_request(&uid("usr"), 2_700, 1))
        .await
        .unwrap();
    let mine = store.list_file_requests(Some(&owner), 10).await.unwrap();
    let ids: Vec<&str> = mine.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [second.id.as_str(), first.id.as_str()], "newest first");
    assert_eq!(
        store
            .list_file_requests(Some(&owner), 1)
            .await
            .unwrap()
            .len(),
        1,
        "the limit holds"
    );
    let all = store.list_file_requests(None, 1000).await.unwrap();
    assert!(all.iter().any(|r| r.id == someone_else.id));
    assert!(all.iter().any(|r| r.id == first.id));

    assert!(store.revoke_file_request(&first.id, 4_000).await.unwrap());
    assert!(!store.revoke_file_request(&first.id, 5_000).await.unwrap());
    let revoked = store.get_file_request(&first.id).await.unwrap().unwrap();
    assert_eq!(
        revoked.revoked_at_ms,
        Some(4_000),
        "the first revocation stays"
    );
    assert_eq!(revoked.refusal(4_001), Some(LinkRefusal::Revoked));
}

/// An upload counts and creates its transfer, sent by the request; a used-up, expired or
/// revoked request creates nothing.
pub async fn file_request_uploads(store: &dyn Store) {
    let owner = uid("usr");
    let request = store
        .create_file_request(&new_request(&owner, 2_000, 2))
        .await
        .unwrap();
    let transfer = requested(&request);
    let RequestUpload::Created(row, counted) = store
        .create_requested_transfer(&request.id, &transfer, 3_000)
        .await
        .unwrap()
    else {
        panic!("a fresh request takes an upload");
    };
    assert_eq!(row.id, transfer.id);
    assert_eq!(row.sender_kind, recipient_kind::REQUEST);
    assert!(TransferParty::Request(request.id.clone()).sent(&row));
    assert!(TransferParty::User(owner.clone())
        .recipient_of(&row)
        .is_some());
    assert_eq!(counted.uploads, 1);
    assert_eq!(counted.last_upload_at_ms, Some(3_000));
    assert!(store.get_transfer(&transfer.id).await.unwrap().is_some());

    store
        .create_requested_transfer(&request.id, &requested(&request), 3_100)
        .await
        .unwrap();
    let refused = requested(&request);
    assert!(matches!(
        store.create_requested_transfer(&request.id, &refused, 3_200).await.unwrap(),
        RequestUpload::Refused(LinkRefusal::Exhausted, ref row) if row.uploads == 2
    ));
    assert_eq!(
        store.get_transfer(&refused.id).await.unwrap(),
        None,
        "a refused upload leaves no transfer"
    );

    let expiring = store
        .create_file_request(&new_request(&owner, 2_000, 5))
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_requested_transfer(&expiring.id, &requested(&expiring), 100_000)
            .await
            .unwrap(),
        RequestUpload::Refused(LinkRefusal::Expired, ref row) if row.uploads == 0
    ));
    store
        .revoke_file_request(&expiring.id, 4_000)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_requested_transfer(&expiring.id, &requested(&expiring), 5_000)
            .await
            .unwrap(),
        RequestUpload::Refused(LinkRefusal::Revoked, _)
    ));
    assert_not_found(
        store
            .create_requested_transfer(&uid("req"), &requested(&expiring), 5_000)
            .await,
        "an unknown request",
    );
}

/// Twenty uploads racing for a request that allows five: exactly five transfers exist.
pub async fn concurrent_file_request_uploads(store: Arc<dyn Store>) {
    let request = store
        .create_file_request(&new_request(&uid("usr"), 2_000, 5))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, request) = (store.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let transfer = requested(&request);
            let outcome = store
                .create_requested_transfer(&request.id, &transfer, 10_000)
                .await
                .unwrap();
            (transfer.id, outcome)
        }));
    }
    let mut created = 0;
    for task in tasks {
        let (id, outcome) = task.await.unwrap();
        match outcome {
            RequestUpload::Created(..) => created += 1,
            RequestUpload::Refused(reason, _) => {
                assert_eq!(reason, LinkRefusal::Exhausted);
                assert_eq!(store.get_transfer(&id).await.unwrap(), None);
            }
        }
    }
    assert_eq!(created, 5, "the limit holds under concurrent uploads");
    let row = store.get_file_request(&request.id).await.unwrap().unwrap();
    assert_eq!(row.uploads, 5);
}
