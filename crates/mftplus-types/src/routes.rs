//! Paths of the HTTP API, shared by the server's route table and the client.

pub const HEALTH: &str = "/health";
pub const API_HEALTH: &str = "/api/v1/health";
/// The OpenAPI 3.1 document of this API, generated from the route table.
pub const OPENAPI: &str = "/api/v1/openapi.json";
pub const JWKS: &str = "/.well-known/jwks.json";
pub const STATUS: &str = "/api/v1/status";

pub const AUTH_LOGIN: &str = "/api/v1/auth/login";
pub const AUTH_REFRESH: &str = "/api/v1/auth/refresh";
pub const AUTH_LOGOUT: &str = "/api/v1/auth/logout";
pub const AUTH_WHOAMI: &str = "/api/v1/auth/whoami";
/// The caller changes their own password (a JWT session, never an API key).
pub const AUTH_PASSWORD: &str = "/api/v1/auth/password";
pub const AUTH_TOKENS: &str = "/api/v1/auth/tokens";
pub const AUTH_TOKEN: &str = "/api/v1/auth/tokens/{token_id}";

pub const USERS: &str = "/api/v1/users";
/// `{user}` is an id or an email.
pub const USER: &str = "/api/v1/users/{user}";
pub const USER_TOKENS: &str = "/api/v1/users/{user}/tokens";
/// An administrator sets (or has the server generate) a user's password.
pub const USER_PASSWORD: &str = "/api/v1/users/{user}/password";

pub const API_KEYS: &str = "/api/v1/apikeys";
pub const API_KEYS_RESOLVE: &str = "/api/v1/apikeys/resolve";
pub const API_KEY: &str = "/api/v1/apikeys/{id}";
pub const API_KEY_ROTATE: &str = "/api/v1/apikeys/{id}/rotate";

pub const SERVER_CONFIG: &str = "/api/v1/server-config/{key}";

pub const MY_KEY: &str = "/api/v1/users/me/key";
pub const USER_KEY: &str = "/api/v1/users/{user}/key";
pub const TRANSFERS: &str = "/api/v1/transfers";
pub const TRANSFER: &str = "/api/v1/transfers/{id}";
pub const TRANSFER_CHUNKS: &str = "/api/v1/transfers/{id}/chunks";
pub const TRANSFER_CHUNK: &str = "/api/v1/transfers/{id}/chunks/{index}";
pub const TRANSFER_COMPLETE: &str = "/api/v1/transfers/{id}/complete";
pub const TRANSFER_HEADER: &str = "/api/v1/transfers/{id}/header";
pub const TRANSFER_MANIFEST: &str = "/api/v1/transfers/{id}/manifest";
/// The whole stream (header, chunk frames, manifest frame) in one body: a one-chunk transfer
/// in one request instead of three, and `curl`-able.
pub const TRANSFER_STREAM: &str = "/api/v1/transfers/{id}/stream";
pub const TRANSFER_VERIFY: &str = "/api/v1/transfers/{id}/verify";
/// A recipient says it decrypted and verified the transfer: only then is it marked downloaded.
pub const TRANSFER_RECEIVED: &str = "/api/v1/transfers/{id}/received";
pub const TRANSFER_CANCEL: &str = "/api/v1/transfers/{id}/cancel";
/// The sender adds recipients' stanzas to a transfer's header (decision 0022).
pub const TRANSFER_GRANTS: &str = "/api/v1/transfers/{id}/grants";
/// The caller's own transfers with recipients still waiting for a grant.
pub const PENDING_GRANTS: &str = "/api/v1/transfers/grants";

pub const AUDIT: &str = "/api/v1/audit";
pub const AUDIT_EXPORT: &str = "/api/v1/audit/export";
/// The cloud's own check of the chain; the independent one is `mftctl audit verify`.
pub const AUDIT_VERIFY: &str = "/api/v1/audit/verify";

// ---- share links (decision 0023) ----
/// The sender lists a transfer's links (`GET`) or makes one (`POST`).
pub const TRANSFER_LINKS: &str = "/api/v1/transfers/{id}/links";
/// The sender (or `transfers:cancel`) revokes a link.
pub const LINK_REVOKE: &str = "/api/v1/links/{link_id}/revoke";
/// Public, no credential: what the link's page needs (stream header and sealed manifest).
pub const SHARED: &str = "/api/v1/shared/{token}";
/// Public: one counted download; answers the ticket the chunk fetches carry.
pub const SHARED_OPEN: &str = "/api/v1/shared/{token}/open";
/// Public with a ticket (`x-link-ticket`): one sealed chunk.
pub const SHARED_CHUNK: &str = "/api/v1/shared/{token}/chunks/{index}";

// ---- file requests (decision 0034) ----
/// The caller's requests (`GET`; everyone's with `transfers:read`), or a new one (`POST`).
pub const FILE_REQUESTS: &str = "/api/v1/file-requests";
/// The owner (or `transfers:cancel`) revokes a request.
pub const FILE_REQUEST_REVOKE: &str = "/api/v1/file-requests/{id}/revoke";
/// Public, no credential: what the request's page needs (the requester's key, the limits).
pub const REQUESTED: &str = "/api/v1/requested/{token}";
/// Public: one counted upload; answers the new transfer.
pub const REQUESTED_TRANSFERS: &str = "/api/v1/requested/{token}/transfers";
/// Public: the chunks of an upload through the request, stored so far.
pub const REQUESTED_CHUNKS: &str = "/api/v1/requested/{token}/transfers/{id}/chunks";
/// Public: one sealed chunk of an upload through the request.
pub const REQUESTED_CHUNK: &str = "/api/v1/requested/{token}/transfers/{id}/chunks/{index}";
/// Public: seals an upload through the request with its manifest.
pub const REQUESTED_COMPLETE: &str = "/api/v1/requested/{token}/transfers/{id}/complete";

// ---- fleet: agents and guest controllers (host and guest keys) ----
pub const HOST_REPORT: &str = "/api/v1/host-report";
pub const GUEST_REPORT: &str = "/api/v1/report";
pub const HOST_DESIRED_STATE: &str = "/api/v1/hosts/{host_id}/desired-state";
pub const HOST_SIGNED_OPS: &str = "/api/v1/hosts/{host_id}/signed-ops";
pub const HOST_SIGNED_OP_STATUS: &str = "/api/v1/hosts/{host_id}/signed-ops/{op_id}/status";
pub const HOST_ESCROW: &str = "/api/v1/hosts/{host_id}/escrow";
pub const HOST_GUESTS: &str = "/api/v1/hosts/{host_id}/guests";
/// The agent replaces its own host key; the old one keeps working through a grace
/// (`docs/key-rotation.md`).
pub const HOST_KEY_ROTATE: &str = "/api/v1/hosts/{host_id}/key/rotate";
/// A host's transfer key (decision 0029): its agent registers it (`PUT`, host key); senders
/// look it up (`GET`) to wrap a file key to the host.
pub const HOST_TRANSFER_KEY: &str = "/api/v1/hosts/{host_id}/transfer-key";
// ---- fleet: retrieval-password routes (public, rate limited, audited) ----
pub const ENROLL: &str = "/api/v1/enroll";
pub const HOST_RE_ENROLL: &str = "/api/v1/hosts/{host_id}/re-enroll";
pub const CUSTOMER_CONFIG: &str = "/api/v1/config/{customer_id}";
// ---- fleet: operators ----
pub const CUSTOMERS: &str = "/api/v1/customers";
pub const CUSTOMER: &str = "/api/v1/customers/{customer_id}";
pub const CUSTOMER_BLOCK: &str = "/api/v1/customers/{customer_id}/block";
pub const CUSTOMER_UNBLOCK: &str = "/api/v1/customers/{customer_id}/unblock";
/// A generated retrieval password replaces the customer's (answered once).
pub const CUSTOMER_RETRIEVAL_PASSWORD_RESET: &str =
    "/api/v1/customers/{customer_id}/retrieval-password/reset";
pub const CUSTOMER_TRIGGER_UPDATE: &str = "/api/v1/customers/{customer_id}/trigger-update";
pub const CUSTOMER_GEO_REMOVE_ALL: &str = "/api/v1/customers/{customer_id}/geo/remove-all";
pub const HOSTS: &str = "/api/v1/hosts";
pub const HOST: &str = "/api/v1/hosts/{host_id}";
pub const HOST_DESIRED_DIFF: &str = "/api/v1/hosts/{host_id}/desired-state/diff";
pub const HOST_REPORTS: &str = "/api/v1/hosts/{host_id}/reports";
pub const HOST_RECOVERY: &str = "/api/v1/hosts/{host_id}/recovery";
/// An operator asks the host's agent to rotate its key (at its next report).
pub const HOST_KEY_ROTATION: &str = "/api/v1/hosts/{host_id}/key/rotation";
pub const GUESTS: &str = "/api/v1/guests";
pub const OPS: &str = "/api/v1/ops";
pub const OP: &str = "/api/v1/ops/{op_id}";
pub const OP_SIGNATURE: &str = "/api/v1/ops/{op_id}/signature";
pub const EVENTS: &str = "/api/v1/events";
pub const NOTIFICATIONS: &str = "/api/v1/notifications";

// ---- the built-in certificate authority ----
/// Public: the roots to trust (PEM), and the current CRL (PEM).
pub const CA_ROOTS: &str = "/api/v1/ca/roots";
pub const CA_CRL: &str = "/api/v1/ca/crl";
/// The CA's roots and rotation state; starting and ending a rotation.
pub const CA: &str = "/api/v1/ca";
pub const CA_ROTATE: &str = "/api/v1/ca/rotate";
pub const CA_RETIRE: &str = "/api/v1/ca/retire";
pub const CERTIFICATES: &str = "/api/v1/certificates";
/// Renewal: the caller's current client certificate (mutual TLS) is the credential.
pub const CERTIFICATES_RENEW: &str = "/api/v1/certificates/renew";
pub const CERTIFICATE_REVOKE: &str = "/api/v1/certificates/{serial}/revoke";

// ---- edge hubs: phone-home (deploy keys) ----
pub const HUBS_REGISTER: &str = "/api/v1/hubs/register";
pub const HUB_HEARTBEAT: &str = "/api/v1/hubs/{hub_id}/heartbeat";
pub const HUB_VALIDATE: &str = "/api/v1/hubs/{hub_id}/validate";
/// A registered hub's certificate from the built-in CA (deploy key; renewal goes through
/// `CERTIFICATES_RENEW` with the certificate itself).
pub const HUB_CERTIFICATE: &str = "/api/v1/hubs/{hub_id}/certificate";
pub const HUB_SITE_TRANSFERS_LIVE: &str = "/api/v1/hubs/{hub_id}/site-transfers/live";

// ---- edge hubs: operators ----
pub const HUBS: &str = "/api/v1/hubs";
pub const HUB: &str = "/api/v1/hubs/{hub_id}";
pub const DEPLOY_KEYS: &str = "/api/v1/hubs/deploy-keys";
pub const DEPLOY_KEY: &str = "/api/v1/hubs/deploy-keys/{id}";
/// A new deploy key with the same label; the old one keeps working through a grace.
pub const DEPLOY_KEY_ROTATE: &str = "/api/v1/hubs/deploy-keys/{id}/rotate";

/// The values of `template`'s `{…}` segments when `path` matches it segment for segment, each
/// non-empty; `None` when it does not match. For code that routes without a router (the hub).
pub fn captures<'a>(template: &str, path: &'a str) -> Option<Vec<&'a str>> {
    let (mut want, mut got) = (template.split('/'), path.split('/'));
    let mut values = Vec::new();
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(values),
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') => {
                if g.is_empty() {
                    return None;
                }
                values.push(g);
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

/// Whether `path` is `prefix` itself or below it (`/api/v1/transfers`, `/api/v1/transfers/x`,
/// not `/api/v1/transfersx`).
pub fn is_under(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Replaces `{name}` in a route template with a percent-encoded value.
pub fn fill(template: &str, name: &str, value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => {
                encoded.push(byte as char)
            }
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    template.replace(&format!("{{{name}}}"), &encoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn fill_encodes() {
        assert_eq!(
            super::fill(super::USER, "user", "a b@x.com"),
            "/api/v1/users/a%20b@x.com"
        );
    }

    #[test]
    fn captures_fill_every_placeholder_or_nothing() {
        assert_eq!(
            captures(TRANSFER_CHUNK, "/api/v1/transfers/t1/chunks/7"),
            Some(vec!["t1", "7"])
        );
        assert_eq!(captures(HOST_REPORT, HOST_REPORT), Some(vec![]));
        assert_eq!(
            captures(TRANSFER_CHUNK, "/api/v1/transfers//chunks/7"),
            None
        );
        assert_eq!(
            captures(TRANSFER_CHUNK, "/api/v1/transfers/t1/chunks"),
            None
        );
        assert_eq!(
            captures(TRANSFER_CHUNK, "/api/v1/transfers/t1/chunks/7/x"),
            None
        );
        assert_eq!(
            captures(TRANSFER_CANCEL, "/api/v1/transfers/t1/received"),
            None
        );
        assert!(is_under(TRANSFERS, "/api/v1/transfers"));
        assert!(is_under(TRANSFERS, "/api/v1/transfers/t1/chunks/0"));
        assert!(!is_under(TRANSFERS, "/api/v1/transfersX"));
        assert!(!is_under(TRANSFERS, "/api/v1/health"));
    }
}
