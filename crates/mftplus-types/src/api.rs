//! Request and response bodies of `/api/v1`. Timestamps are RFC 3339 strings in UTC.
//! Request bodies refuse unknown fields so a typo in a script fails loudly instead of being ignored.

use serde::{Deserialize, Serialize};

/// `user` for people, `service` for accounts used by scripts and integrations (no password login).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum UserType {
    #[default]
    User,
    Service,
}

impl UserType {
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::User => "user",
            UserType::Service => "service",
        }
    }

    pub fn parse(text: &str) -> Option<UserType> {
        match text {
            "user" => Some(UserType::User),
            "service" => Some(UserType::Service),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    #[serde(rename = "type")]
    pub user_type: UserType,
    pub created_at: String,
    pub updated_at: String,
    pub last_login_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub email: String,
    #[serde(default)]
    pub name: String,
    /// Defaults to `rbac.default_role`.
    pub role: Option<String>,
    #[serde(rename = "type", default)]
    pub user_type: Option<UserType>,
    /// When absent for a `user`, the server generates one and returns it once.
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CreatedUser {
    pub user: User,
    /// Present only when the server generated the password; shown once.
    pub initial_password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    pub name: Option<String>,
    pub role: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// `POST /api/v1/auth/password`: a person changes their own password. A JWT session only; an
/// API key is refused (decision 0017).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// The answer to a password change: the caller's own session stays, every other one ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PasswordChanged {
    /// Tokens (access and refresh) of the user's other sessions that were revoked.
    pub revoked_tokens: u64,
}

/// `POST /api/v1/users/{user}/password`: an administrator sets a new password for someone.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// When absent, the server generates one and returns it once.
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PasswordReset {
    pub user: User,
    /// Present only when the server generated the password; shown once.
    pub generated_password: Option<String>,
    /// Tokens of the user's sessions that were revoked (all of them).
    pub revoked_tokens: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: u64,
    pub refresh_expires_in: u64,
}

/// `mftctl auth token create --user EMAIL [--role ROLE] [--expires 1h]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// Email or id of the user the token acts as.
    pub user: String,
    /// At most the user's own role; defaults to it.
    pub role: Option<String>,
    /// A duration such as `1h` or `30d`; defaults to `auth.jwt.expiration`.
    pub expires: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CreatedToken {
    pub token: String,
    pub info: TokenInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TokenInfo {
    /// The JWT `jti`.
    pub token_id: String,
    pub user_id: String,
    pub user_email: String,
    /// `access` or `refresh`.
    pub kind: String,
    pub role: String,
    /// `login`, `refresh` or `admin`.
    pub created_via: String,
    pub issued_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RevokedCount {
    pub revoked: u64,
}

/// Derived, never stored: `active`, `expiring_soon` (within `api_keys.warning_days`), `expired`,
/// `revoked`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// The first characters of the key, enough to recognise it, never enough to use it.
    pub prefix: String,
    pub role: String,
    pub owner_id: String,
    pub owner_email: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    pub name: String,
    /// At most the creator's role; defaults to it.
    pub role: Option<String>,
    /// A duration such as `90d`; absent means `api_keys.rotation_required_days`.
    pub expires: Option<String>,
}

/// Returned by create and rotate: the only time the secret is ever sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CreatedApiKey {
    pub key: String,
    pub api_key: ApiKey,
}

/// Finds a key by its full secret (sent in a body, never in a URL, so it stays out of logs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ResolveApiKeyRequest {
    pub key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ConfigValue {
    pub key: String,
    /// `null` for secrets.
    pub value: Option<serde_json::Value>,
    pub secret: bool,
    /// For a secret: `set (from env JWT_SECRET)`, `set (from file /run/secrets/jwt)`, `not set`.
    pub display: String,
    /// `default`, `file`, `env NAME`, `file NAME_FILE`.
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    pub version: String,
    pub uptime: u64,
    /// Only on `/api/v1/health`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseHealth>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DatabaseHealth {
    pub backend: String,
    /// `ok` or `error`.
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Principal {
    /// `user` (password or JWT) or `api_key`.
    pub kind: String,
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub permissions: Vec<String>,
    pub api_key_id: Option<String>,
    pub token_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Status {
    pub version: String,
    pub server_time: String,
    pub uptime: u64,
    pub mode: String,
    pub database: DatabaseHealth,
    pub principal: Principal,
    /// Human warnings for the caller, e.g. its API key expires in 3 days.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    pub seq: i64,
    /// Unix milliseconds; the hashed form. `time` is the same instant for humans.
    pub ts_ms: i64,
    pub time: String,
    pub event: String,
    pub actor: String,
    pub target: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    pub client_ip: String,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `after_seq` for the next page; `null` at the end.
    pub next_after_seq: Option<i64>,
}

/// The cloud's own check of the audit chain (`POST /api/v1/audit/verify`). A convenience: a
/// compromised server could answer anything, so the independent check is `mftctl audit
/// verify`, which recomputes the chain on the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditVerification {
    /// Entries that verified (before the first broken one, if any).
    pub checked: u64,
    /// Whether every entry verified.
    pub ok: bool,
    /// The first entry checked (above 1 when old entries were pruned); `null` for an empty log.
    pub first_seq: Option<i64>,
    /// The last entry that verified and its hash, the chain's head when `ok`.
    pub last_seq: Option<i64>,
    pub head: Option<String>,
    /// The first entry that does not verify; `null` when `ok`.
    pub first_broken: Option<AuditBreak>,
}

/// Where and why an audit chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditBreak {
    pub seq: i64,
    /// `hash_mismatch` (the entry was modified), `prev_hash_mismatch` (it does not link to the
    /// entry before), `gap` (entries removed) or `not_genesis` (entry #1 links elsewhere).
    pub reason: String,
    /// The same in words.
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
    pub n: String,
    pub e: String,
}
