//! Persistence of file requests (decision 0034): a signed-in user asks someone without an
//! account for a file by handing them a link; whoever holds it may upload, encrypted in the
//! browser to the requester's key, as many times as the request allows.
//!
//! The store keeps the SHA-256 of the request's token, never the token. An upload through the
//! request is one transaction that checks the request is usable, counts the upload and inserts
//! the transfer, so uploads racing for the last one allowed cannot both win, on one cloud
//! process or several.

use async_trait::async_trait;

use crate::{LinkRefusal, NewTransfer, StoreResult, TransferRow};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFileRequest {
    pub id: String,
    /// SHA-256 hex of the token; unique.
    pub token_hash: String,
    /// User id of the requester: the uploads are encrypted to this user and sent to them.
    pub owner_id: String,
    /// Shown to the uploader (at most 500 characters, checked by the caller).
    pub note: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// Transfers that may be made through the request (at least 1).
    pub max_uploads: i64,
    /// The most ciphertext bytes one upload may store.
    pub max_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRequestRow {
    pub id: String,
    pub token_hash: String,
    pub owner_id: String,
    pub note: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub max_uploads: i64,
    pub max_bytes: i64,
    /// Transfers made through the request so far.
    pub uploads: i64,
    pub last_upload_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

impl FileRequestRow {
    /// What stops a new upload at `now_ms`, if anything: revoked, then past its expiry, then
    /// out of uploads (the order and the words of a share link's refusals).
    pub fn refusal(&self, now_ms: i64) -> Option<LinkRefusal> {
        if self.revoked_at_ms.is_some() {
            Some(LinkRefusal::Revoked)
        } else if self.expires_at_ms <= now_ms {
            Some(LinkRefusal::Expired)
        } else if self.uploads >= self.max_uploads {
            Some(LinkRefusal::Exhausted)
        } else {
            None
        }
    }

    pub fn uploads_left(&self) -> i64 {
        (self.max_uploads - self.uploads).max(0)
    }
}

/// What an upload through a request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestUpload {
    /// Counted, and the transfer created; the request as it is now.
    Created(Box<TransferRow>, FileRequestRow),
    /// Nothing changed; the request as it is.
    Refused(LinkRefusal, FileRequestRow),
}

#[async_trait]
pub trait FileRequestStore: Send + Sync {
    /// Inserts a request. `Conflict("token")` when the token hash is taken.
    async fn create_file_request(&self, request: &NewFileRequest) -> StoreResult<FileRequestRow>;
    async fn get_file_request(&self, id: &str) -> StoreResult<Option<FileRequestRow>>;
    async fn get_file_request_by_token_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<FileRequestRow>>;
    /// Requests newest first: one owner's, or everyone's; at most `limit`.
    async fn list_file_requests(
        &self,
        owner_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<FileRequestRow>>;
    /// Sets `revoked_at_ms` if not yet revoked; whether it changed anything. Uploads under way
    /// stop at their next chunk (each reads the request).
    async fn revoke_file_request(&self, id: &str, at_ms: i64) -> StoreResult<bool>;
    /// In one transaction: when the request is usable at `now_ms`
    /// ([`FileRequestRow::refusal`]), counts one upload, stamps `last_upload_at_ms` and creates
    /// `transfer` (whose sender the caller set to the request); otherwise changes nothing and
    /// says why. `NotFound` for an unknown request.
    async fn create_requested_transfer(
        &self,
        request_id: &str,
        transfer: &NewTransfer,
        now_ms: i64,
    ) -> StoreResult<RequestUpload>;
}
