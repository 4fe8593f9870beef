//! Hosts as transfer parties (decision 0029): a host's transfer key, transfers a host sent, and
//! the listing's visibility by (kind, id) for senders and recipients alike.

use super::fleet::{customer_with_host, T0};
use super::transfers::{create, new_transfer};
use super::{assert_not_found, uid};
use crate::{
    recipient_kind, HostTransferKeyRow, NewRecipient, NewTransfer, Store, TransferFilter,
    TransferParty, TransferRow,
};

fn recipient(kind: &str, id: &str, awaiting_grant: bool) -> NewRecipient {
    NewRecipient {
        kind: kind.into(),
        id: id.to_string(),
        display: format!("{kind}:{id}"),
        awaiting_grant,
    }
}

/// A transfer a host's agent sends.
fn from_host(host_id: &str, recipients: Vec<NewRecipient>, created_at_ms: i64) -> NewTransfer {
    NewTransfer {
        sender_kind: recipient_kind::AGENT.into(),
        ..new_transfer(host_id, recipients, created_at_ms)
    }
}

/// Register, replace, look up and forget a host's transfer key. A host that does not exist
/// cannot register one, another host's key is its own, and the key goes with its host.
pub async fn host_transfer_keys(store: &dyn Store) {
    let (customer, host) = customer_with_host(store, T0).await;
    let (_, other) = customer_with_host(store, T0).await;
    assert_eq!(store.host_transfer_key(&host.id).await.unwrap(), None);

    let first = store
        .set_host_transfer_key(&host.id, "mftx25519_first", T0 + 1)
        .await
        .expect("set_host_transfer_key");
    let expected = HostTransferKeyRow {
        host_id: host.id.clone(),
        public_key: "mftx25519_first".into(),
        registered_at_ms: T0 + 1,
    };
    assert_eq!(first, expected, "the row in force is answered");
    assert_eq!(
        store.host_transfer_key(&host.id).await.unwrap(),
        Some(expected)
    );
    let second = store
        .set_host_transfer_key(&host.id, "mftx25519_second", T0 + 2)
        .await
        .unwrap();
    assert_eq!(
        (second.public_key.as_str(), second.registered_at_ms),
        ("mftx25519_second", T0 + 2),
        "registering again replaces the key (a re-enrolled box)"
    );
    assert_eq!(
        store.host_transfer_key(&host.id).await.unwrap(),
        Some(second)
    );
    assert_eq!(
        store.host_transfer_key(&other.id).await.unwrap(),
        None,
        "another host's key is its own"
    );

    let unknown = uid("hst");
    assert_not_found(
        store
            .set_host_transfer_key(&unknown, "mftx25519_x", T0)
            .await,
        "a key for a host that does not exist",
    );
    assert_eq!(store.host_transfer_key(&unknown).await.unwrap(), None);

    store
        .set_host_transfer_key(&other.id, "mftx25519_other", T0 + 3)
        .await
        .unwrap();
    assert!(store.delete_host_transfer_key(&host.id).await.unwrap());
    assert!(
        !store.delete_host_transfer_key(&host.id).await.unwrap(),
        "nothing left to forget"
    );
    assert_eq!(store.host_transfer_key(&host.id).await.unwrap(), None);
    assert!(
        store.host_transfer_key(&other.id).await.unwrap().is_some(),
        "forgetting one host's key leaves the others"
    );

    store
        .set_host_transfer_key(&host.id, "mftx25519_third", T0 + 4)
        .await
        .unwrap();
    store.delete_customer(&customer.id).await.unwrap();
    assert_eq!(
        store.host_transfer_key(&host.id).await.unwrap(),
        None,
        "the key goes with its host"
    );
}

async fn visible_to(store: &dyn Store, party: TransferParty) -> Vec<TransferRow> {
    store
        .list_transfers(&TransferFilter {
            visible_to: Some(party),
            pending_for: None,
            limit: 100,
            ..TransferFilter::default()
        })
        .await
        .expect("list_transfers")
}

/// A host sends and receives as `agent`; the listing finds a party's transfers by kind and id
/// both, so a user whose id happens to be a host's id sees only its own.
pub async fn host_transfer_parties(store: &dyn Store) {
    let host = uid("hst");
    let user = uid("usr");
    let sent = create(
        store,
        &from_host(&host, vec![recipient("user", &user, false)], 8_000),
    )
    .await;
    assert_eq!(
        (sent.sender_kind.as_str(), sent.sender_id.as_str()),
        (recipient_kind::AGENT, host.as_str())
    );
    assert_eq!(
        store.get_transfer(&sent.id).await.unwrap().as_ref(),
        Some(&sent)
    );
    let received = create(
        store,
        &new_transfer(&user, vec![recipient("agent", &host, false)], 8_001),
    )
    .await;
    assert_eq!(received.sender_kind, recipient_kind::USER);
    // A user with the host's id, sending and receiving.
    let by_twin = create(
        store,
        &new_transfer(&host, vec![recipient("user", &uid("usr"), false)], 8_002),
    )
    .await;
    let to_twin = create(
        store,
        &new_transfer(&uid("usr"), vec![recipient("user", &host, false)], 8_003),
    )
    .await;

    let as_host = TransferParty::Agent(host.clone());
    assert!(as_host.sent(&sent) && !as_host.sent(&by_twin));
    assert!(as_host.recipient_of(&received).is_some() && as_host.recipient_of(&to_twin).is_none());
    assert_eq!(
        visible_to(store, as_host).await,
        vec![received.clone(), sent.clone()],
        "the host sees what it sent and received, newest first"
    );
    assert_eq!(
        visible_to(store, TransferParty::User(host.clone())).await,
        vec![to_twin, by_twin],
        "a user with the host's id sees only its own"
    );
    assert_eq!(
        visible_to(store, TransferParty::User(user.clone())).await,
        vec![received.clone(), sent],
        "the user sees the host's transfer to it and its own to the host"
    );

    let pending = |party: TransferParty| async move {
        store
            .list_transfers(&TransferFilter {
                pending_for: Some(party),
                limit: 100,
                ..TransferFilter::default()
            })
            .await
            .expect("list pending")
    };
    assert_eq!(
        pending(TransferParty::Agent(host.clone())).await,
        vec![received.clone()],
        "waiting for the host: what it receives, not what it sent"
    );
    assert!(
        pending(TransferParty::User(host.clone())).await.len() == 1,
        "the twin user waits for its own only"
    );
    store
        .mark_downloaded(&received.id, recipient_kind::AGENT, &host, 9_000)
        .await
        .expect("mark an agent recipient downloaded");
    assert!(
        pending(TransferParty::Agent(host.clone())).await.is_empty(),
        "downloaded: no longer waiting"
    );
    let row = store.get_transfer(&received.id).await.unwrap().unwrap();
    assert_eq!(row.recipients[0].downloaded_at_ms, Some(9_000));
    assert_not_found(
        store
            .mark_downloaded(&received.id, recipient_kind::USER, &host, 9_000)
            .await,
        "the host's id as a user recipient",
    );

    // What waits for a grant is a user sender's: a host's transfer is never listed for the
    // user with its id.
    let twin = uid("hst");
    create(
        store,
        &from_host(&twin, vec![recipient("user", &user, true)], 8_100),
    )
    .await;
    assert!(store
        .list_awaiting_grants(&twin, 8_200, 10)
        .await
        .unwrap()
        .is_empty());
}
