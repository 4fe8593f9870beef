//! Mapping of SQLite errors onto [`StoreError`].

use mftplus_store::StoreError;
use rusqlite::ffi;

/// Unique and primary-key violations become `Conflict(<column>)`; everything else is a backend
/// error whose text is for the log.
pub(crate) fn map(err: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(code, Some(message)) = &err {
        let unique = matches!(
            code.extended_code,
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        );
        if unique {
            return StoreError::Conflict(conflicting_column(message));
        }
    }
    StoreError::Backend(err.to_string())
}

/// SQLite words it `UNIQUE constraint failed: users.email`; the column is what callers match on.
fn conflicting_column(message: &str) -> String {
    let columns = message.rsplit(": ").next().unwrap_or(message);
    let first = columns.split(", ").next().unwrap_or(columns);
    first.rsplit('.').next().unwrap_or(first).to_string()
}

pub(crate) trait ResultExt<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> ResultExt<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_column() {
        assert_eq!(
            conflicting_column("UNIQUE constraint failed: users.email"),
            "email"
        );
        assert_eq!(
            conflicting_column("UNIQUE constraint failed: api_keys.key_hash"),
            "key_hash"
        );
        assert_eq!(
            conflicting_column("UNIQUE constraint failed: t.a, t.b"),
            "a"
        );
    }
}
