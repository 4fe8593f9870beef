//! Persistence of share links (decision 0023): one row per link to a transfer, kept by the
//! SHA-256 of its token, and one row per download ticket an open handed out.
//!
//! The store never sees a link's secret (it is in the URL fragment, which stays in the
//! browser) nor its token in clear. Opening a link is one transaction that checks the link is
//! usable, counts the download and stores the ticket, so two opens racing for the last allowed
//! download cannot both win, on one cloud process or several.

use async_trait::async_trait;

use crate::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    pub id: String,
    pub transfer_id: String,
    /// SHA-256 hex of the token; unique.
    pub token_hash: String,
    /// User id of whoever made the link.
    pub created_by: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// `None`: unlimited.
    pub max_downloads: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    pub id: String,
    pub transfer_id: String,
    pub token_hash: String,
    pub created_by: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub max_downloads: Option<i64>,
    /// Opens counted so far.
    pub downloads: i64,
    pub last_opened_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

/// Why a link no longer opens; checked in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    Revoked,
    Expired,
    Exhausted,
}

impl LinkRefusal {
    /// `revoked`, `expired`, `exhausted`: the link's status word.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkRefusal::Revoked => "revoked",
            LinkRefusal::Expired => "expired",
            LinkRefusal::Exhausted => "exhausted",
        }
    }
}

impl LinkRow {
    /// What stops the link from opening at `now_ms`, if anything: revoked, then past its
    /// expiry, then out of downloads. The one rule the backends and the cloud share.
    pub fn refusal(&self, now_ms: i64) -> Option<LinkRefusal> {
        if self.revoked_at_ms.is_some() {
            Some(LinkRefusal::Revoked)
        } else if self.expires_at_ms <= now_ms {
            Some(LinkRefusal::Expired)
        } else if self.max_downloads.is_some_and(|max| self.downloads >= max) {
            Some(LinkRefusal::Exhausted)
        } else {
            None
        }
    }

    /// Downloads the link still allows; `None` when unlimited.
    pub fn downloads_left(&self) -> Option<i64> {
        self.max_downloads.map(|max| (max - self.downloads).max(0))
    }
}

/// A download ticket to store with an open: its SHA-256 and when it lapses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLinkTicket {
    /// SHA-256 hex of the ticket; unique.
    pub ticket_hash: String,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTicketRow {
    pub ticket_hash: String,
    pub link_id: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// What an open did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOpen {
    /// Counted, and the ticket stored; the link as it is now.
    Opened(LinkRow),
    /// Nothing changed; the link as it is.
    Refused(LinkRefusal, LinkRow),
}

#[async_trait]
pub trait LinkStore: Send + Sync {
    /// Inserts a link. `Conflict("token")` when the token hash is taken, `NotFound` when the
    /// transfer does not exist.
    async fn create_link(&self, link: &NewLink) -> StoreResult<LinkRow>;
    async fn get_link(&self, id: &str) -> StoreResult<Option<LinkRow>>;
    async fn get_link_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<LinkRow>>;
    /// A transfer's links, oldest first.
    async fn list_links(&self, transfer_id: &str) -> StoreResult<Vec<LinkRow>>;
    /// Sets `revoked_at_ms` if not yet revoked; whether it changed anything. A revoked link's
    /// tickets stop working at once (chunk fetches read the link with the ticket).
    async fn revoke_link(&self, id: &str, at_ms: i64) -> StoreResult<bool>;
    /// In one transaction: when the link is usable at `now_ms` ([`LinkRow::refusal`]), counts
    /// one download, stamps `last_opened_at_ms` and stores `ticket` for it; otherwise changes
    /// nothing and says why. `NotFound` for an unknown link, `Conflict("ticket")` for a ticket
    /// hash already stored.
    async fn open_link(
        &self,
        link_id: &str,
        ticket: &NewLinkTicket,
        now_ms: i64,
    ) -> StoreResult<LinkOpen>;
    /// A ticket with its link, whatever their state (the caller judges both).
    async fn get_link_ticket(
        &self,
        ticket_hash: &str,
    ) -> StoreResult<Option<(LinkTicketRow, LinkRow)>>;
    /// Moves a ticket's expiry to `expires_at_ms` (forward only); whether it changed.
    async fn extend_link_ticket(&self, ticket_hash: &str, expires_at_ms: i64) -> StoreResult<bool>;
    /// Deletes tickets that lapsed before `before_ms`; how many.
    async fn prune_link_tickets(&self, before_ms: i64) -> StoreResult<u64>;
}
