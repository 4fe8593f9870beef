//! The backend-agnostic contract every [`Store`] implementation must pass.
//!
//! Backends call [`run_all`] from their own integration tests on a freshly created, empty
//! database, and on the [`fixture`] of every earlier release after upgrading it. Each section can
//! also be called on its own; sections use random ids and only assert about the rows they
//! created, so rows already in the database do not disturb them, except the audit sections,
//! which continue the chain already there and expect nobody else to append while they run.
//!
//! Failures panic with a message naming the broken rule, like any test assertion.

mod api_keys;
mod audit;
mod certificates;
mod chunk_batches;
pub mod fixture;
mod fixture_check;
mod fleet;
mod fleet_idempotency;
mod fleet_jobs;
mod fleet_listings;
mod fleet_ops;
mod fleet_poll;
mod fleet_reports;
mod grants;
mod host_transfers;
pub mod hot_path;
mod hubs;
mod key_rotation;
mod links;
mod people_pages;
mod requests;
mod sites;
mod tokens;
mod transfer_pages;
mod transfers;
mod users;

use std::sync::Arc;

use crate::{NewApiKey, NewUser, Store, StoreError, TokenRow};

pub use api_keys::{api_keys, revoke_inactive_api_keys};
pub use audit::{audit_chain, audit_concurrent_appends, audit_prune, audit_search};
pub use certificates::{
    certificate_concurrent_revocation, certificate_crl, certificate_registry,
    certificate_revocation,
};
pub use chunk_batches::{
    concurrent_record_chunks, create_complete_transfer, inline_chunks, record_chunk_batches,
};
pub use fleet::{fleet_customers, fleet_host_pages, fleet_hosts, fleet_recovery};
pub use fleet_idempotency::fleet_report_idempotency;
pub use fleet_jobs::{
    fleet_backup_facts, fleet_events, fleet_leases, fleet_liveness, fleet_notifications,
    fleet_prune,
};
pub use fleet_listings::{fleet_customer_counts, fleet_customer_pages, fleet_host_views};
pub use fleet_ops::{
    fleet_deliver_ops, fleet_desired_edit, fleet_expire_ops, fleet_list_ops, fleet_op_lifecycle,
};
pub use fleet_poll::{fleet_count_hosts, fleet_liveness_follows_poll_interval};
pub use fleet_reports::{fleet_intent_and_reality_are_separate, fleet_report_ingest};
pub use grants::{concurrent_grants, transfer_grants};
pub use host_transfers::{host_transfer_keys, host_transfer_parties};
pub use hubs::{hub_concurrent_registration, hub_deploy_keys, hub_registry};
pub use key_rotation::{deploy_key_rotation, host_key_rotation};
pub use links::{concurrent_link_opens, link_opens, links};
pub use people_pages::people_pages;
pub use requests::{concurrent_file_request_uploads, file_request_uploads, file_requests};
pub use sites::{site_live_transfers, site_user_paths};
pub use tokens::{tokens, tokens_concurrent_refresh};
pub use transfer_pages::transfer_pages;
pub use transfers::{
    cancel_transfer, complete_transfer, delete_transfer, expire_transfers, mark_downloaded,
    record_chunks, transfers_create, transfers_list, user_keys,
};
pub use users::{delete_user_disables_credentials, users};

/// Runs every section in an order that keeps them independent of each other.
pub async fn run_all(store: Arc<dyn Store>) {
    migrations(&*store).await;
    users(&*store).await;
    delete_user_disables_credentials(&*store).await;
    api_keys(&*store).await;
    revoke_inactive_api_keys(&*store).await;
    tokens(&*store).await;
    people_pages(&*store).await;
    tokens_concurrent_refresh(store.clone()).await;
    audit_chain(&*store).await;
    audit_prune(&*store).await;
    audit_concurrent_appends(store.clone()).await;
    audit_search(&*store).await;
    user_keys(&*store).await;
    transfers_create(&*store).await;
    transfers_list(&*store).await;
    transfer_pages(&*store).await;
    record_chunks(&*store).await;
    record_chunk_batches(&*store).await;
    inline_chunks(&*store).await;
    create_complete_transfer(&*store).await;
    complete_transfer(&*store).await;
    cancel_transfer(&*store).await;
    mark_downloaded(&*store).await;
    expire_transfers(&*store).await;
    delete_transfer(&*store).await;
    concurrent_record_chunks(store.clone()).await;
    transfer_grants(&*store).await;
    concurrent_grants(store.clone()).await;
    host_transfer_keys(&*store).await;
    host_transfer_parties(&*store).await;
    run_fleet(&*store).await;
    hub_deploy_keys(&*store).await;
    hub_registry(&*store).await;
    hub_concurrent_registration(store.clone()).await;
    deploy_key_rotation(&*store).await;
    certificate_registry(&*store).await;
    certificate_revocation(&*store).await;
    certificate_crl(&*store).await;
    certificate_concurrent_revocation(store.clone()).await;
    site_user_paths(&*store).await;
    site_live_transfers(&*store).await;
    links(&*store).await;
    link_opens(&*store).await;
    concurrent_link_opens(store.clone()).await;
    file_requests(&*store).await;
    file_request_uploads(&*store).await;
    concurrent_file_request_uploads(store.clone()).await;
}

/// The fleet sections, in an order that keeps them independent: the global sweeps (liveness,
/// op expiry, pruning) only assert about their own rows.
pub async fn run_fleet(store: &dyn Store) {
    fleet_customers(store).await;
    fleet_hosts(store).await;
    fleet_host_pages(store).await;
    fleet_recovery(store).await;
    host_key_rotation(store).await;
    fleet_report_ingest(store).await;
    fleet_report_idempotency(store).await;
    fleet_intent_and_reality_are_separate(store).await;
    fleet_desired_edit(store).await;
    fleet_op_lifecycle(store).await;
    fleet_deliver_ops(store).await;
    fleet_expire_ops(store).await;
    fleet_list_ops(store).await;
    fleet_events(store).await;
    fleet_liveness(store).await;
    fleet_liveness_follows_poll_interval(store).await;
    fleet_count_hosts(store).await;
    fleet_customer_pages(store).await;
    fleet_customer_counts(store).await;
    fleet_host_views(store).await;
    fleet_backup_facts(store).await;
    fleet_leases(store).await;
    fleet_prune(store).await;
    fleet_notifications(store).await;
}

/// `migrate` is idempotent and reports a stable, ordered list of names.
pub async fn migrations(store: &dyn Store) {
    assert!(
        matches!(store.backend(), "sqlite" | "postgres"),
        "unexpected backend name {}",
        store.backend()
    );
    store.migrate().await.expect("first migrate");
    let first = store
        .applied_migrations()
        .await
        .expect("applied_migrations");
    assert!(!first.is_empty(), "no migration recorded after migrate()");
    assert!(
        first.windows(2).all(|pair| pair[0] < pair[1]),
        "migration names must be unique and applied in ascending order: {first:?}"
    );
    store
        .migrate()
        .await
        .expect("second migrate must be a no-op");
    let second = store
        .applied_migrations()
        .await
        .expect("applied_migrations");
    assert_eq!(first, second, "a second migrate() changed the applied list");
    store.ping().await.expect("ping after migrate");
}

/// A random id, so sections never collide with each other or with earlier runs.
fn uid(prefix: &str) -> String {
    format!("{prefix}-{}", mftplus_crypto::secrets::random_base62(16))
}

fn new_user(email: &str, created_at_ms: i64) -> NewUser {
    NewUser {
        id: uid("usr"),
        email: email.to_string(),
        name: "Test User".into(),
        role: "viewer".into(),
        user_type: "user".into(),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        created_at_ms,
    }
}

fn new_key(owner_id: &str, created_at_ms: i64) -> NewApiKey {
    let id = uid("key");
    NewApiKey {
        key_hash: mftplus_crypto::sha256_hex(id.as_bytes()),
        prefix: format!("mftpk_{}", &id[4..10]),
        name: format!("key {id}"),
        id,
        role: "operator".into(),
        owner_id: owner_id.to_string(),
        created_at_ms,
        expires_at_ms: Some(created_at_ms + 86_400_000),
        replaces: None,
    }
}

fn token(
    user_id: &str,
    kind: &str,
    family_id: &str,
    issued_at_ms: i64,
    expires_at_ms: i64,
) -> TokenRow {
    TokenRow {
        jti: uid("jti"),
        user_id: user_id.to_string(),
        kind: kind.to_string(),
        role: "viewer".into(),
        family_id: family_id.to_string(),
        created_via: "login".into(),
        issued_at_ms,
        expires_at_ms,
        revoked_at_ms: None,
        used_at_ms: None,
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict(field)) => {
            assert_eq!(field, what, "conflict names the wrong field")
        }
        other => panic!("expected Conflict({what:?}), got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, context: &str) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("{context}: expected NotFound, got {other:?}"),
    }
}

#[track_caller]
fn assert_any_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, context: &str) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("{context}: expected Conflict, got {other:?}"),
    }
}
