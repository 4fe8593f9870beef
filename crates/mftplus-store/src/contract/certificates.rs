//! Certificates issued by the built-in CA: the registry, revocation and what a CRL lists.
//!
//! Times here are Unix seconds, as [`CertificateStore`](crate::CertificateStore) speaks them.

use std::sync::Arc;

use super::{assert_conflict, uid};
use crate::{CertSubjectKind, CertificateRow, Store};

/// A fresh lowercase-hex serial, so sections never share one.
fn serial() -> String {
    mftplus_crypto::sha256_hex(uid("crt").as_bytes())[..32].to_string()
}

fn certificate(kind: CertSubjectKind, subject_id: &str, issued_at: i64) -> CertificateRow {
    let serial = serial();
    CertificateRow {
        fingerprint: mftplus_crypto::sha256_hex(serial.as_bytes()),
        serial,
        subject_kind: kind,
        subject_id: subject_id.to_string(),
        not_before: issued_at - 60,
        not_after: issued_at + 90 * 86_400,
        issued_at,
        issued_by: "op@example.com".into(),
        revoked_at: None,
        revoked_reason: None,
    }
}

async fn insert(store: &dyn Store, row: &CertificateRow) {
    store
        .insert_certificate(row)
        .await
        .unwrap_or_else(|err| panic!("insert certificate {}: {err:?}", row.serial));
}

async fn get(store: &dyn Store, serial: &str) -> CertificateRow {
    store
        .get_certificate(serial)
        .await
        .expect("get certificate")
        .unwrap_or_else(|| panic!("certificate {serial} not found"))
}

/// The serials of `rows` that are among `mine`, in the order listed.
fn own_serials<'a>(rows: &'a [CertificateRow], mine: &[&CertificateRow]) -> Vec<&'a str> {
    rows.iter()
        .filter(|row| mine.iter().any(|own| own.serial == row.serial))
        .map(|row| row.serial.as_str())
        .collect()
}

/// Inserted rows come back whole; a serial is never reused; listings are newest issue first
/// and narrow to one subject (kind and id).
pub async fn certificate_registry(store: &dyn Store) {
    let host = uid("host");
    let other_host = uid("host");

    let mut first = certificate(CertSubjectKind::Host, &host, 1_000);
    first.issued_by = format!("host:{host}");
    insert(store, &first).await;
    assert_eq!(
        get(store, &first.serial).await,
        first,
        "a row reads back whole"
    );
    assert_eq!(store.get_certificate("00ff").await.unwrap(), None);

    // A revoked row round-trips too (an import, or a row written by a newer cloud).
    let mut imported = certificate(CertSubjectKind::Hub, &uid("hub"), 500);
    imported.revoked_at = Some(600);
    imported.revoked_reason = Some("superseded".into());
    insert(store, &imported).await;
    assert_eq!(get(store, &imported.serial).await, imported);

    let mut clash = certificate(CertSubjectKind::Hub, &other_host, 9_000);
    clash.serial = first.serial.clone();
    assert_conflict(store.insert_certificate(&clash).await, "serial");
    assert_eq!(
        get(store, &first.serial).await,
        first,
        "a clashing insert leaves the stored row alone"
    );

    let second = certificate(CertSubjectKind::Host, &host, 2_000);
    // A hub whose id is the host's: a subject is its kind and its id together.
    let same_id_hub = certificate(CertSubjectKind::Hub, &host, 2_500);
    let elsewhere = certificate(CertSubjectKind::Host, &other_host, 3_000);
    for row in [&second, &same_id_hub, &elsewhere] {
        insert(store, row).await;
    }

    let mine = [&first, &imported, &second, &same_id_hub, &elsewhere];
    let all = store.list_certificates(None).await.expect("list all");
    assert_eq!(
        own_serials(&all, &mine),
        vec![
            elsewhere.serial.as_str(),
            same_id_hub.serial.as_str(),
            second.serial.as_str(),
            first.serial.as_str(),
            imported.serial.as_str(),
        ],
        "newest issue first"
    );

    let of_host = store
        .list_certificates(Some((CertSubjectKind::Host, &host)))
        .await
        .expect("list one subject");
    assert_eq!(of_host, vec![second.clone(), first.clone()]);
    let of_hub = store
        .list_certificates(Some((CertSubjectKind::Hub, &host)))
        .await
        .unwrap();
    assert_eq!(of_hub, vec![same_id_hub.clone()]);
    assert!(store
        .list_certificates(Some((CertSubjectKind::Host, "host-nope")))
        .await
        .unwrap()
        .is_empty());
}

/// One revocation sticks with its first time and reason; a subject's revocation takes only
/// that subject's unrevoked certificates.
pub async fn certificate_revocation(store: &dyn Store) {
    let host = uid("host");
    let compromised = certificate(CertSubjectKind::Host, &host, 1_000);
    let current = certificate(CertSubjectKind::Host, &host, 2_000);
    let other_host = certificate(CertSubjectKind::Host, &uid("host"), 2_000);
    let same_id_hub = certificate(CertSubjectKind::Hub, &host, 2_000);
    for row in [&compromised, &current, &other_host, &same_id_hub] {
        insert(store, row).await;
    }

    assert!(store
        .revoke_certificate(&compromised.serial, 5_000, "key compromise")
        .await
        .expect("revoke"));
    let revoked = get(store, &compromised.serial).await;
    assert_eq!(revoked.revoked_at, Some(5_000));
    assert_eq!(revoked.revoked_reason.as_deref(), Some("key compromise"));
    assert_eq!(
        CertificateRow {
            revoked_at: None,
            revoked_reason: None,
            ..revoked
        },
        compromised,
        "revocation changes nothing else"
    );

    assert!(
        store
            .revoke_certificate(&compromised.serial, 6_000, "superseded")
            .await
            .unwrap(),
        "revoking twice is still true"
    );
    let again = get(store, &compromised.serial).await;
    assert_eq!(
        (again.revoked_at, again.revoked_reason.as_deref()),
        (Some(5_000), Some("key compromise")),
        "a second revocation keeps the first time and reason"
    );
    assert!(
        !store
            .revoke_certificate("00ff", 5_000, "unknown")
            .await
            .unwrap(),
        "an unknown serial is false"
    );

    let count = store
        .revoke_subject_certificates(CertSubjectKind::Host, &host, 7_000, "host deleted")
        .await
        .expect("revoke subject");
    assert_eq!(count, 1, "only the subject's unrevoked certificates count");
    let current = get(store, &current.serial).await;
    assert_eq!(
        (current.revoked_at, current.revoked_reason.as_deref()),
        (Some(7_000), Some("host deleted"))
    );
    let kept = get(store, &compromised.serial).await;
    assert_eq!(
        (kept.revoked_at, kept.revoked_reason.as_deref()),
        (Some(5_000), Some("key compromise")),
        "an already revoked certificate keeps its revocation"
    );
    for untouched in [&other_host, &same_id_hub] {
        assert_eq!(
            get(store, &untouched.serial).await.revoked_at,
            None,
            "another subject's certificate was revoked"
        );
    }
    assert_eq!(
        store
            .revoke_subject_certificates(CertSubjectKind::Host, &host, 8_000, "again")
            .await
            .unwrap(),
        0,
        "nothing left to revoke"
    );
    assert_eq!(
        store
            .revoke_subject_certificates(CertSubjectKind::Hub, "hub-nope", 8_000, "none")
            .await
            .unwrap(),
        0
    );
}

/// The CRL: revoked and not yet expired (`not_after` is the last valid second), oldest
/// revocation first.
pub async fn certificate_crl(store: &dyn Store) {
    let now = 2_000_000_000;
    let host = uid("host");
    let with_not_after = |not_after: i64| CertificateRow {
        not_after,
        ..certificate(CertSubjectKind::Host, &host, now - 1_000)
    };
    let later = with_not_after(now + 100);
    let at_the_edge = with_not_after(now);
    let expired = with_not_after(now - 1);
    let unrevoked = with_not_after(now + 100);
    for row in [&later, &at_the_edge, &expired, &unrevoked] {
        insert(store, row).await;
    }
    for (row, at) in [
        (&later, now - 10),
        (&at_the_edge, now - 20),
        (&expired, now - 30),
    ] {
        assert!(store
            .revoke_certificate(&row.serial, at, "key compromise")
            .await
            .unwrap());
    }

    let crl = store
        .revoked_certificates(now)
        .await
        .expect("revoked certificates");
    assert_eq!(
        own_serials(&crl, &[&later, &at_the_edge, &expired, &unrevoked]),
        vec![at_the_edge.serial.as_str(), later.serial.as_str()],
        "revoked and unexpired only, oldest revocation first"
    );
    assert!(
        crl.iter()
            .all(|row| row.revoked_at.is_some() && row.not_after >= now),
        "every listed certificate is revoked and unexpired"
    );
    let edge = crl
        .iter()
        .find(|row| row.serial == at_the_edge.serial)
        .expect("listed");
    assert_eq!(
        (edge.revoked_at, edge.revoked_reason.as_deref()),
        (Some(now - 20), Some("key compromise")),
        "listed rows carry their revocation"
    );
}

/// Revocations racing for one certificate leave one revocation, time and reason together.
pub async fn certificate_concurrent_revocation(store: Arc<dyn Store>) {
    let row = certificate(CertSubjectKind::Hub, &uid("hub"), 1_000);
    insert(&*store, &row).await;
    let tasks: Vec<_> = (0..8)
        .map(|index| {
            let (store, serial) = (store.clone(), row.serial.clone());
            tokio::spawn(async move {
                store
                    .revoke_certificate(&serial, 10_000 + index, &format!("reason {index}"))
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().expect("concurrent revoke"));
    }
    let revoked = get(&*store, &row.serial).await;
    let at = revoked.revoked_at.expect("revoked");
    assert_eq!(
        revoked.revoked_reason,
        Some(format!("reason {}", at - 10_000)),
        "time and reason come from the same revocation"
    );
}
