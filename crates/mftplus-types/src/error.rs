//! Stable error codes. The string form is part of the API contract: scripts match on it, so a
//! code is never renamed, only added.

use serde::{Deserialize, Serialize};

macro_rules! codes {
    ($($variant:ident => $text:literal, $status:literal;)*) => {
        /// Every error the API can answer with. `as_str` is the stable wire form.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text,)* }
            }

            /// The HTTP status this code is always sent with.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            pub fn parse(text: &str) -> Option<ErrorCode> {
                match text { $($text => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

codes! {
    BadRequest => "bad_request", 400;
    InvalidJson => "invalid_json", 400;
    ValidationFailed => "validation_failed", 400;
    InvalidEmail => "invalid_email", 400;
    WeakPassword => "weak_password", 400;
    InvalidDuration => "invalid_duration", 400;
    InvalidRole => "invalid_role", 400;
    UnsupportedMediaType => "unsupported_media_type", 415;
    PayloadTooLarge => "payload_too_large", 413;
    // The request target is longer than the server reads (`server.limits.max_uri_bytes`).
    UriTooLong => "uri_too_long", 414;
    // The request's header fields are larger or more numerous than the server reads.
    HeadersTooLarge => "headers_too_large", 431;
    // The server holds as many connections as it allows, overall or from this address.
    TooManyConnections => "too_many_connections", 503;
    ChecksumMismatch => "checksum_mismatch", 422;
    Unauthenticated => "unauthenticated", 401;
    InvalidCredentials => "invalid_credentials", 401;
    TokenExpired => "token_expired", 401;
    TokenRevoked => "token_revoked", 401;
    TokenReused => "token_reused", 401;
    Forbidden => "forbidden", 403;
    // A box route needs a client certificate (mutual TLS) that names the calling box.
    CertificateRequired => "certificate_required", 401;
    // The presented client certificate was revoked by an operator.
    CertificateRevoked => "certificate_revoked", 401;
    // A certificate signing request that cannot be parsed or whose signature is wrong.
    InvalidCsr => "invalid_csr", 400;
    // The host already has a live certificate: renew with it, or recover with the retrieval
    // password.
    CertificateExists => "certificate_exists", 409;
    // A CA rotation cannot start (one is under way) or end (none is, or boxes still hold
    // certificates of the old root).
    CaRotation => "ca_rotation", 409;
    // The built-in certificate authority is switched off on this cloud.
    CaDisabled => "ca_disabled", 404;
    NotFound => "not_found", 404;
    MethodNotAllowed => "method_not_allowed", 405;
    Conflict => "conflict", 409;
    // The request needs a part of the server its configuration leaves out (the edge firewall,
    // say): retrying does not help, configuring it does.
    NotConfigured => "not_configured", 409;
    // The desired state moved on since the generation the edit was based on.
    GenerationConflict => "generation_conflict", 409;
    // The signed op is not in a state that allows this transition.
    OpStateConflict => "op_state_conflict", 409;
    // A signature that is not a valid SSHSIG by a pinned operator key over the op blob.
    InvalidSignature => "invalid_signature", 422;
    // Re-enrollment needs the operator to arm recovery mode first.
    RecoveryNotArmed => "recovery_not_armed", 403;
    CustomerBlocked => "customer_blocked", 403;
    // A hub speaks a phone-home protocol newer than this cloud.
    UnsupportedProtocol => "unsupported_protocol", 400;
    // Share links (decision 0023): the link's time is up, its sender revoked it, or its
    // downloads are used up. An unknown link is `not_found`.
    LinkExpired => "link_expired", 410;
    LinkRevoked => "link_revoked", 410;
    LinkExhausted => "link_exhausted", 410;
    // A chunk fetch of a link without a valid download ticket (open the link first).
    LinkTicketInvalid => "link_ticket_invalid", 403;
    // The transfer's stream cannot be opened in a browser (no link stanza, or a cipher or
    // compression WebCrypto lacks): send it again with `mftctl send --link`.
    LinkUnsupported => "link_unsupported", 422;
    RateLimited => "rate_limited", 429;
    Internal => "internal", 500;
    // A chunk the transfer recorded is gone from the payload store: an operator is alerted;
    // only the sender can restore it (send again).
    ChunkMissing => "chunk_missing", 410;
    // A recipient following a transfer still uploading asked for a chunk the sender has not
    // stored yet: ask again shortly (decision 0035).
    ChunkPending => "chunk_pending", 409;
    Unavailable => "unavailable", 503;
    // The server's payload store has no space left: nothing was stored; retry once an
    // operator has made room.
    InsufficientStorage => "insufficient_storage", 507;
    // Edge hub: the cloud could not be reached, or did not answer in time.
    BadGateway => "bad_gateway", 502;
    GatewayTimeout => "gateway_timeout", 504;
    // Edge hub: no usable registration (missing configuration, or the deploy key was refused).
    HubNotRegistered => "hub_not_registered", 503;
    // Edge hub: the cloud is unreachable and the request cannot be answered offline (an
    // unknown or expired credential, or a request that cannot be queued).
    CloudUnreachable => "cloud_unreachable", 503;
    // Edge hub: the offline queue is at `HUB_QUEUE_MAX`.
    HubQueueFull => "hub_queue_full", 503;
    // A site-local transfer's ciphertext is on its hub: this request must go through it.
    SiteLocal => "site_local", 409;
    // Edge hub: a site-local chunk the cloud recorded is not in the hub's store.
    SiteChunkMissing => "site_chunk_missing", 500;
    // The presented key was already replaced by a rotation: use the new key, or repeat the
    // rotation with the same `Idempotency-Key` to get it again (docs/key-rotation.md).
    KeyRotated => "key_rotated", 409;
    // Transfer grants (decision 0022). The caller is a recipient the sender has not yet
    // wrapped the file key to: it can download once the sender's mftctl grants access.
    AwaitingGrant => "awaiting_grant", 409;
    // A recipient named at creation is no user of this server, or a host that does not exist
    // or has registered no transfer key.
    UnknownRecipient => "unknown_recipient", 400;
    // A host may send only to users and to hosts of its own customer, and look up only their
    // transfer keys (decision 0029).
    RecipientNotAllowed => "recipient_not_allowed", 403;
    // A file request (decision 0034) needs its owner's registered public key: the uploads are
    // encrypted to it. Run `mftctl` once (it makes and registers a key pair), then ask again.
    NoPublicKey => "no_public_key", 409;
    // A grant's new header is not the current header plus X25519 stanzas (parameters, salt or
    // an earlier stanza changed, one was dropped, or nothing was added).
    GrantInvalid => "grant_invalid", 422;
    // A grant's new stanzas do not match the named recipients' registered keys one for one.
    GrantKeyMismatch => "grant_key_mismatch", 422;
    // The named recipient is not waiting for a grant (already granted, or never was).
    AlreadyGranted => "already_granted", 409;
    // The header changed since the grant was built (another grant landed first): build it
    // again from the current header.
    GrantStale => "grant_stale", 409;
    // The transfer is cancelled or expired: nothing can be granted on it.
    TransferClosed => "transfer_closed", 409;
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ErrorCode::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code {text:?}")))
    }
}

/// The body of every non-2xx answer: `{"error":{"code":"…","message":"…"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApiErrorBody {
    pub error: ErrorInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorInfo {
    /// Kept as a string on the wire so an older client still reads a newer server's codes.
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(
                seen.insert(code.as_str()),
                "duplicate code {}",
                code.as_str()
            );
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
            let status = code.http_status();
            assert!((400..600).contains(&status), "{code} has status {status}");
        }
    }
}
