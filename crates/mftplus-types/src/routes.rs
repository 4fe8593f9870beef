//! Paths of the HTTP API, shared by the server's route table and the client.

pub const HEALTH: &str = "/health";
pub const API_HEALTH: &str = "/api/v1/health";
pub const JWKS: &str = "/.well-known/jwks.json";
pub const STATUS: &str = "/api/v1/status";

pub const AUTH_LOGIN: &str = "/api/v1/auth/login";
pub const AUTH_REFRESH: &str = "/api/v1/auth/refresh";
pub const AUTH_LOGOUT: &str = "/api/v1/auth/logout";
pub const AUTH_WHOAMI: &str = "/api/v1/auth/whoami";
pub const AUTH_TOKENS: &str = "/api/v1/auth/tokens";
pub const AUTH_TOKEN: &str = "/api/v1/auth/tokens/{token_id}";

pub const USERS: &str = "/api/v1/users";
/// `{user}` is an id or an email.
pub const USER: &str = "/api/v1/users/{user}";
pub const USER_TOKENS: &str = "/api/v1/users/{user}/tokens";

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
pub const TRANSFER_VERIFY: &str = "/api/v1/transfers/{id}/verify";
/// A recipient says it decrypted and verified the transfer: only then is it marked downloaded.
pub const TRANSFER_RECEIVED: &str = "/api/v1/transfers/{id}/received";
pub const TRANSFER_CANCEL: &str = "/api/v1/transfers/{id}/cancel";

pub const AUDIT: &str = "/api/v1/audit";
pub const AUDIT_EXPORT: &str = "/api/v1/audit/export";

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
    #[test]
    fn fill_encodes() {
        assert_eq!(
            super::fill(super::USER, "user", "a b@x.com"),
            "/api/v1/users/a%20b@x.com"
        );
    }
}
