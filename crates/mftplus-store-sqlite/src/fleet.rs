//! Fleet persistence; see `mftplus_store::FleetStore`.
#![allow(unused_variables)] // placeholder bodies until the fleet store lands

use async_trait::async_trait;
use mftplus_store::*;

use crate::SqliteStore;

#[async_trait]
impl FleetStore for SqliteStore {
    async fn create_customer(&self, customer: &NewCustomer) -> StoreResult<CustomerRow> {
        todo!("fleet store")
    }
    async fn get_customer(&self, id: &str) -> StoreResult<Option<CustomerRow>> {
        todo!("fleet store")
    }
    async fn list_customers(&self) -> StoreResult<Vec<CustomerRow>> {
        todo!("fleet store")
    }
    async fn update_customer(&self, id: &str, update: &CustomerUpdate) -> StoreResult<CustomerRow> {
        todo!("fleet store")
    }
    async fn delete_customer(&self, id: &str) -> StoreResult<()> {
        todo!("fleet store")
    }
    async fn create_host(
        &self,
        host: &NewHost,
        max_hosts_per_customer: u32,
    ) -> StoreResult<HostRow> {
        todo!("fleet store")
    }
    async fn get_host(&self, id: &str) -> StoreResult<Option<HostRow>> {
        todo!("fleet store")
    }
    async fn get_host_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<HostRow>> {
        todo!("fleet store")
    }
    async fn list_hosts(&self, customer_id: Option<&str>) -> StoreResult<Vec<HostRow>> {
        todo!("fleet store")
    }
    async fn apply_desired_edit(&self, edit: &DesiredEdit) -> StoreResult<HostRow> {
        todo!("fleet store")
    }
    async fn bump_customer_generations(&self, customer_id: &str, at_ms: i64) -> StoreResult<u64> {
        todo!("fleet store")
    }
    async fn set_recovery_mode(
        &self,
        host_id: &str,
        until_ms: Option<i64>,
    ) -> StoreResult<HostRow> {
        todo!("fleet store")
    }
    async fn rotate_host_key(
        &self,
        host_id: &str,
        new_key_hash: &str,
        hostname: &str,
        agent_version: &str,
        now_ms: i64,
    ) -> StoreResult<HostRow> {
        todo!("fleet store")
    }
    async fn put_escrow(
        &self,
        host_id: &str,
        backup_namespace: &str,
        repository_fingerprint: &str,
        wrapped_key: &str,
        at_ms: i64,
    ) -> StoreResult<()> {
        todo!("fleet store")
    }
    async fn create_guest(&self, guest: &NewGuest) -> StoreResult<GuestRow> {
        todo!("fleet store")
    }
    async fn get_guest(&self, id: &str) -> StoreResult<Option<GuestRow>> {
        todo!("fleet store")
    }
    async fn get_guest_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<GuestRow>> {
        todo!("fleet store")
    }
    async fn list_guests(
        &self,
        host_id: Option<&str>,
        customer_id: Option<&str>,
    ) -> StoreResult<Vec<GuestRow>> {
        todo!("fleet store")
    }
    async fn ingest_host_reports(
        &self,
        reports: &[NewHostReport],
    ) -> StoreResult<Vec<StoreResult<ReportAck>>> {
        todo!("fleet store")
    }
    async fn ingest_guest_reports(
        &self,
        reports: &[NewGuestReport],
    ) -> StoreResult<Vec<StoreResult<()>>> {
        todo!("fleet store")
    }
    async fn list_host_reports(
        &self,
        host_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<HostReportRow>> {
        todo!("fleet store")
    }
    async fn list_guest_reports(
        &self,
        guest_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<GuestReportRow>> {
        todo!("fleet store")
    }
    async fn get_op(&self, id: &str) -> StoreResult<Option<SignedOpRow>> {
        todo!("fleet store")
    }
    async fn list_ops(&self, filter: &OpFilter) -> StoreResult<Vec<SignedOpRow>> {
        todo!("fleet store")
    }
    async fn transition_op(&self, transition: &OpTransition) -> StoreResult<SignedOpRow> {
        todo!("fleet store")
    }
    async fn deliver_ops(&self, host_id: &str, now_ms: i64) -> StoreResult<Vec<SignedOpRow>> {
        todo!("fleet store")
    }
    async fn expire_ops(&self, now_ms: i64) -> StoreResult<Vec<SignedOpRow>> {
        todo!("fleet store")
    }
    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<Vec<i64>> {
        todo!("fleet store")
    }
    async fn list_events(&self, filter: &EventFilter) -> StoreResult<Vec<EventRow>> {
        todo!("fleet store")
    }
    async fn liveness_pass(
        &self,
        now_ms: i64,
        stale_after_ms: i64,
        down_after_ms: i64,
        grace_since_ms: i64,
    ) -> StoreResult<Vec<LivenessTransition>> {
        todo!("fleet store")
    }
    async fn list_backup_facts(&self) -> StoreResult<Vec<BackupFacts>> {
        todo!("fleet store")
    }
    async fn set_backup_missed(
        &self,
        host_id: &str,
        backup_missed_json: &str,
        events: &[NewEvent],
    ) -> StoreResult<Vec<i64>> {
        todo!("fleet store")
    }
    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        todo!("fleet store")
    }
    async fn prune_fleet(
        &self,
        reports_before_ms: i64,
        events_before_ms: i64,
    ) -> StoreResult<PruneCounts> {
        todo!("fleet store")
    }
    async fn claim_notification(
        &self,
        key: &str,
        customer_id: Option<&str>,
        now_ms: i64,
        cooldown_ms: i64,
        bypass: bool,
    ) -> StoreResult<bool> {
        todo!("fleet store")
    }
    async fn log_notification(&self, entry: &NewNotificationLog) -> StoreResult<i64> {
        todo!("fleet store")
    }
    async fn list_notifications(&self, limit: u32) -> StoreResult<Vec<NotificationLogRow>> {
        todo!("fleet store")
    }
}
