//! Mapping of PostgreSQL and pool errors onto [`StoreError`].

use deadpool_postgres::PoolError;
use mftplus_store::StoreError;
use tokio_postgres::error::SqlState;

/// Unique violations become `Conflict(<column>)`, named by the constraint the migrations
/// created; everything else is a backend error whose text is for the log.
pub(crate) fn map(err: tokio_postgres::Error) -> StoreError {
    if let Some(db) = err.as_db_error() {
        if *db.code() == SqlState::UNIQUE_VIOLATION {
            let field = match db.constraint() {
                Some("users_email_uq") => "email",
                Some("api_keys_key_hash_uq" | "deploy_keys_key_hash_uq") => "key_hash",
                Some(
                    "users_pkey" | "api_keys_pkey" | "transfers_pkey" | "customers_pkey"
                    | "hosts_pkey" | "guests_pkey" | "signed_ops_pkey" | "deploy_keys_pkey"
                    | "hubs_pkey",
                ) => "id",
                Some("hosts_key_hash_key" | "guests_key_hash_key") => "key_hash",
                Some("signed_ops_nonce_key") => "nonce",
                Some("transfer_recipients_pkey") => "recipient",
                Some("auth_tokens_pkey") => "jti",
                Some(other) => other,
                None => "unknown",
            };
            return StoreError::Conflict(field.to_string());
        }
        if *db.code() == SqlState::CHARACTER_NOT_IN_REPERTOIRE {
            return StoreError::Unstorable(db.message().to_string());
        }
        return StoreError::Backend(format!("{}: {}", db.code().code(), db.message()));
    }
    StoreError::Backend(err.to_string())
}

pub(crate) fn pool(err: PoolError) -> StoreError {
    match err {
        PoolError::Backend(err) => map(err),
        other => StoreError::Backend(format!("connection pool: {other}")),
    }
}

pub(crate) trait ResultExt<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> ResultExt<T> for Result<T, tokio_postgres::Error> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(map)
    }
}
