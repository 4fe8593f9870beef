//! Row models. Plain data; the cloud maps them to wire types.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    /// `user` or `service`.
    pub user_type: String,
    /// Argon2id PHC string; `None` for accounts that cannot log in with a password.
    pub password_hash: Option<String>,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub user_type: String,
    pub password_hash: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub last_login_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub role: Option<String>,
    pub password_hash: Option<String>,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub id: String,
    pub name: String,
    /// SHA-256 hex of the full key; unique.
    pub key_hash: String,
    /// Displayable start of the key (e.g. `mftpk_a1b2c3`).
    pub prefix: String,
    pub role: String,
    pub owner_id: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    /// Id of the key this one rotated out.
    pub replaces: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub key_hash: String,
    pub prefix: String,
    pub role: String,
    pub owner_id: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub replaces: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub jti: String,
    pub user_id: String,
    /// `access` or `refresh`.
    pub kind: String,
    pub role: String,
    /// Tokens from one login and its refreshes share a family; reuse revokes the family.
    pub family_id: String,
    /// `login`, `refresh` or `admin`.
    pub created_via: String,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    /// Refresh tokens only: when it was exchanged.
    pub used_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub ts_ms: i64,
    pub event: String,
    pub actor: String,
    pub target: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    pub client_ip: String,
    pub details: serde_json::Value,
}

impl NewAuditEntry {
    /// The chain hash this entry gets as entry `seq` after `prev_hash`; both backends call this
    /// inside their append lock so the chain is computed one way only.
    pub fn chain_hash(&self, seq: i64, prev_hash: &str) -> String {
        mftplus_crypto::audit::entry_hash(
            prev_hash,
            &mftplus_crypto::audit::AuditFields {
                seq,
                ts_ms: self.ts_ms,
                event: &self.event,
                actor: &self.actor,
                target: &self.target,
                outcome: &self.outcome,
                client_ip: &self.client_ip,
                details: &self.details,
            },
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub seq: i64,
    pub ts_ms: i64,
    pub event: String,
    pub actor: String,
    pub target: String,
    pub outcome: String,
    pub client_ip: String,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Which audit entries [`crate::Store::search_audit`] answers with; `None` narrows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exactly this event name.
    pub event: Option<String>,
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Only entries with `ts_ms >= from_ms`.
    pub from_ms: Option<i64>,
    /// Only entries with `ts_ms < until_ms`.
    pub until_ms: Option<i64>,
    /// Only entries with `seq > after_seq` (the cursor, reading forwards).
    pub after_seq: Option<i64>,
    /// Only entries with `seq < before_seq` (the cursor, reading backwards).
    pub before_seq: Option<i64>,
    /// Descending `seq` instead of ascending.
    pub newest_first: bool,
    pub limit: u32,
}

/// An account's X25519 public key, to which senders wrap transfer file keys. One per user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKeyRow {
    pub user_id: String,
    /// The encoded public key (`mftx25519_…`); opaque to the store.
    pub public_key: String,
    pub fingerprint: String,
    /// When the user first registered a key; an upsert keeps it.
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A host's transfer key (decision 0029): its agent's X25519 public key, which senders wrap
/// file keys to. One per host; registering again replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTransferKeyRow {
    pub host_id: String,
    /// The encoded public key (`mftx25519_…`); opaque to the store.
    pub public_key: String,
    /// When the key in force was registered.
    pub registered_at_ms: i64,
}

/// Values of [`TransferRow::status`].
pub mod transfer_status {
    /// Created; chunks are being uploaded. Not downloadable.
    pub const UPLOADING: &str = "uploading";
    /// Every chunk and the manifest are stored; downloadable until it expires.
    pub const COMPLETE: &str = "complete";
    pub const CANCELLED: &str = "cancelled";
    /// Past `expires_at`; its blobs are (being) deleted.
    pub const EXPIRED: &str = "expired";
}

/// Values of [`RecipientRow::kind`].
pub mod recipient_kind {
    pub const USER: &str = "user";
    pub const AGENT: &str = "agent";
    /// Only ever a sender: an outsider uploading through a file request (decision 0034),
    /// keyed by the request's id.
    pub const REQUEST: &str = "request";
}

/// The `Conflict` text of a chunk upload or a completion on a transfer that is not `uploading`.
pub const NOT_UPLOADING: &str = "transfer is not uploading";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecipient {
    /// [`recipient_kind`]: `user` or `agent`.
    pub kind: String,
    /// The user id or agent id.
    pub id: String,
    /// What to show: the user's email or the agent's name at creation time.
    pub display: String,
    /// The header holds no stanza for this recipient yet; it may download only after the
    /// sender's grant (decision 0022).
    pub awaiting_grant: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRow {
    pub kind: String,
    pub id: String,
    pub display: String,
    /// The first completed download by this recipient; later downloads do not move it.
    pub downloaded_at_ms: Option<i64>,
    /// Waiting for the sender to grant access ([`NewRecipient::awaiting_grant`]).
    pub awaiting_grant: bool,
    /// When the sender's grant gave this recipient its stanza; `None` for recipients the
    /// header held from the start.
    pub granted_at_ms: Option<i64>,
}

/// A sender or recipient of transfers as the store keys it: `(kind, id)`, where the kind is a
/// [`recipient_kind`] (decision 0029: hosts send and receive as `agent`s).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransferParty {
    /// A user, by user id.
    User(String),
    /// A host's agent, by host id.
    Agent(String),
    /// Whoever holds a file request's link, by request id (a sender only, decision 0034).
    Request(String),
}

impl TransferParty {
    /// The [`recipient_kind`] of the party, also what `sender_kind` holds.
    pub fn kind(&self) -> &'static str {
        match self {
            TransferParty::User(_) => recipient_kind::USER,
            TransferParty::Agent(_) => recipient_kind::AGENT,
            TransferParty::Request(_) => recipient_kind::REQUEST,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            TransferParty::User(id) | TransferParty::Agent(id) | TransferParty::Request(id) => id,
        }
    }

    /// Whether this party sent `row`.
    pub fn sent(&self, row: &TransferRow) -> bool {
        row.sender_kind == self.kind() && row.sender_id == self.id()
    }

    /// This party's entry among `row`'s recipients.
    pub fn recipient_of<'a>(&self, row: &'a TransferRow) -> Option<&'a RecipientRow> {
        row.recipients
            .iter()
            .find(|r| r.kind == self.kind() && r.id == self.id())
    }

    /// Whether this party sent `row` or is one of its recipients: what the listing's
    /// [`TransferFilter::visible_to`] selects.
    pub fn is_party(&self, row: &TransferRow) -> bool {
        self.sent(row) || self.recipient_of(row).is_some()
    }
}

/// A transfer as created: always `uploading`, with no chunks yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    pub id: String,
    /// The [`recipient_kind`] of the sender: `user` or `agent` (a host, decision 0029).
    pub sender_kind: String,
    /// The user id or host id of the sender.
    pub sender_id: String,
    /// The stream header bytes (at most 64 KiB, checked by the caller); opaque to the store.
    pub header: Vec<u8>,
    pub chunk_size: i64,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// Reserved for transfers kept on a hub; `None` for the cloud's own.
    pub site: Option<String>,
    /// Each `(kind, id)` at most once, else `Conflict("recipient")`.
    pub recipients: Vec<NewRecipient>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRow {
    pub id: String,
    /// `user` or `agent` ([`NewTransfer::sender_kind`]); `user` for every transfer made before
    /// hosts could send.
    pub sender_kind: String,
    pub sender_id: String,
    /// One of [`transfer_status`].
    pub status: String,
    pub header: Vec<u8>,
    pub chunk_size: i64,
    /// Set at completion.
    pub chunk_count: Option<i64>,
    /// Sum of the sizes of the stored chunks.
    pub ciphertext_bytes: i64,
    /// The sealed manifest, set at completion.
    pub manifest: Option<Vec<u8>>,
    pub created_at_ms: i64,
    pub completed_at_ms: Option<i64>,
    pub cancelled_at_ms: Option<i64>,
    pub expires_at_ms: i64,
    pub site: Option<String>,
    /// Ordered by kind, then id.
    pub recipients: Vec<RecipientRow>,
}

/// A sender's grant ([`crate::Store::grant_transfer_access`]): the header re-issued with
/// stanzas for `recipient_ids`, replacing `base_header`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferGrant {
    pub transfer_id: String,
    /// The header the grant was built from; another one stored is `Conflict(GRANT_STALE)`.
    pub base_header: Vec<u8>,
    pub header: Vec<u8>,
    /// User recipients granted; each must be waiting for a grant.
    pub recipient_ids: Vec<String>,
    pub at_ms: i64,
}

/// The `Conflict` texts of [`crate::Store::grant_transfer_access`].
pub mod grant_conflict {
    /// The transfer is cancelled, expired, or past its expiry time.
    pub const CLOSED: &str = "transfer is closed";
    /// The stored header is not the grant's base.
    pub const STALE: &str = "the header changed since the grant was built";
    /// A named recipient is not a user recipient waiting for a grant.
    pub const NOT_AWAITING: &str = "recipient is not waiting for a grant";
}

/// Which transfers [`crate::Store::list_transfers`] returns; every `Some` narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferFilter {
    /// Only transfers this party sent or is a recipient of, matched by kind and id both
    /// ([`TransferParty::is_party`]).
    pub visible_to: Option<TransferParty>,
    /// Only transfers this party is a recipient of and has not downloaded yet (waiting for a
    /// grant included: the caller says so to the person).
    pub pending_for: Option<TransferParty>,
    /// Only transfers in this [`transfer_status`].
    pub status: Option<String>,
    /// Only transfers after this one in the listing's order (`created_at_ms`, then id, both
    /// descending): the previous page's last row. A keyset, so rows created in the same
    /// millisecond are neither skipped nor repeated across pages.
    pub before: Option<TimeCursor>,
    /// At most this many rows.
    pub limit: u32,
}

/// The chunks of one transfer within a multi-transfer commit
/// ([`Store::record_chunk_batches`](crate::Store::record_chunk_batches)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkBatch {
    pub transfer_id: String,
    pub chunks: Vec<NewChunk>,
}

/// One uploaded chunk, as recorded after its bytes are safely in the blob store, or with its
/// bytes when it is small enough to be kept in the database (decision 0037).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChunk {
    pub idx: i64,
    /// Ciphertext bytes.
    pub size: i64,
    /// SHA-256 hex of the ciphertext chunk.
    pub sha256: String,
    /// Whether the sender marked this chunk as the last of the stream.
    pub last: bool,
    pub stored_at_ms: i64,
    /// The sealed chunk itself, kept in its row instead of the payload store; `None` when the
    /// payload store holds it. At most [`MAX_INLINE_CHUNK`] bytes, checked by the caller.
    pub data: Option<Vec<u8>>,
}

/// The largest sealed chunk kept in the database rather than the payload store: also the
/// largest a one-request transfer may carry.
pub const MAX_INLINE_CHUNK: usize = mftplus_types::transfers::MAX_WHOLE_CHUNK;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRow {
    pub idx: i64,
    pub size: i64,
    pub sha256: String,
    pub last: bool,
    pub stored_at_ms: i64,
    /// Its bytes are in the database ([`crate::Store::chunk_data`]), not the payload store.
    pub inline: bool,
}

/// What [`crate::Store::record_chunks`] did with one chunk of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// A new row.
    Stored,
    /// A row with the same index, size, hash and last flag existed: an idempotent retry.
    AlreadyStored,
    /// A row with the same index but other content exists and was kept.
    Conflict,
}

/// Where a newest-first page ended: its last row's time and id (`Store::list_api_keys_page`,
/// `Store::list_sign_ins`). The next page holds the rows strictly older, ties broken by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeCursor {
    pub at_ms: i64,
    pub id: String,
}

/// Which API keys a page lists (`Store::list_api_keys_page`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyPage {
    /// Only this owner's keys; every owner's when `None`.
    pub owner_id: Option<String>,
    pub include_revoked: bool,
    /// The previous page's last key (`created_at_ms`, `id`).
    pub before: Option<TimeCursor>,
    pub limit: u32,
}
