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
