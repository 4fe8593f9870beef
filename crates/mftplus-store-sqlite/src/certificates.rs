//! The `certificates` table; see `mftplus_store::CertificateStore`. Writes run on the single
//! writer connection and each is one statement, so a revocation cannot interleave with another
//! write; reads use the pool.

use async_trait::async_trait;
use mftplus_store::{CertSubjectKind, CertificateRow, CertificateStore, StoreResult};
use rusqlite::types::Type;
use rusqlite::{params, OptionalExtension, Row};

use crate::error::ResultExt;
use crate::SqliteStore;

const COLUMNS: &str = "serial, subject_kind, subject_id, fingerprint, not_before, not_after, \
     issued_at, issued_by, revoked_at, revoked_reason";

fn from_row(row: &Row<'_>) -> rusqlite::Result<CertificateRow> {
    let kind: String = row.get(1)?;
    let subject_kind = CertSubjectKind::parse(&kind).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            Type::Text,
            format!("unknown subject_kind {kind:?}").into(),
        )
    })?;
    Ok(CertificateRow {
        serial: row.get(0)?,
        subject_kind,
        subject_id: row.get(2)?,
        fingerprint: row.get(3)?,
        not_before: row.get(4)?,
        not_after: row.get(5)?,
        issued_at: row.get(6)?,
        issued_by: row.get(7)?,
        revoked_at: row.get(8)?,
        revoked_reason: row.get(9)?,
    })
}

#[async_trait]
impl CertificateStore for SqliteStore {
    async fn insert_certificate(&self, row: &CertificateRow) -> StoreResult<()> {
        let row = row.clone();
        // The serial is the only unique column, so a clash maps to `Conflict("serial")`.
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO certificates (serial, subject_kind, subject_id, fingerprint, \
                 not_before, not_after, issued_at, issued_by, revoked_at, revoked_reason) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    row.serial,
                    row.subject_kind.as_str(),
                    row.subject_id,
                    row.fingerprint,
                    row.not_before,
                    row.not_after,
                    row.issued_at,
                    row.issued_by,
                    row.revoked_at,
                    row.revoked_reason
                ])
            })
            .db()?;
            Ok(())
        })
        .await
    }

    async fn get_certificate(&self, serial: &str) -> StoreResult<Option<CertificateRow>> {
        let serial = serial.to_owned();
        self.read(move |conn| {
            let sql = format!("SELECT {COLUMNS} FROM certificates WHERE serial = ?1");
            conn.prepare_cached(&sql)
                .and_then(|mut stmt| stmt.query_row(params![serial], from_row).optional())
                .db()
        })
        .await
    }

    async fn list_certificates(
        &self,
        subject: Option<(CertSubjectKind, &str)>,
    ) -> StoreResult<Vec<CertificateRow>> {
        let subject = subject.map(|(kind, id)| (kind.as_str(), id.to_owned()));
        self.read(move |conn| match subject {
            None => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM certificates ORDER BY issued_at DESC, serial DESC"
                );
                conn.prepare_cached(&sql)
                    .and_then(|mut stmt| stmt.query_map([], from_row)?.collect())
                    .db()
            }
            Some((kind, id)) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM certificates WHERE subject_kind = ?1 \
                     AND subject_id = ?2 ORDER BY issued_at DESC, serial DESC"
                );
                conn.prepare_cached(&sql)
                    .and_then(|mut stmt| stmt.query_map(params![kind, id], from_row)?.collect())
                    .db()
            }
        })
        .await
    }

    async fn revoke_certificate(&self, serial: &str, at: i64, reason: &str) -> StoreResult<bool> {
        let (serial, reason) = (serial.to_owned(), reason.to_owned());
        // One statement: an already revoked row keeps its time and reason (the right-hand sides
        // see the old values) but still counts, so only an unknown serial changes nothing.
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE certificates SET revoked_at = COALESCE(revoked_at, ?2), \
                     revoked_reason = CASE WHEN revoked_at IS NULL THEN ?3 \
                     ELSE revoked_reason END WHERE serial = ?1",
                )
                .and_then(|mut stmt| stmt.execute(params![serial, at, reason]))
                .db()?;
            Ok(changed > 0)
        })
        .await
    }

    async fn revoke_subject_certificates(
        &self,
        kind: CertSubjectKind,
        subject_id: &str,
        at: i64,
        reason: &str,
    ) -> StoreResult<u64> {
        let (subject_id, reason) = (subject_id.to_owned(), reason.to_owned());
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE certificates SET revoked_at = ?3, revoked_reason = ?4 \
                     WHERE subject_kind = ?1 AND subject_id = ?2 AND revoked_at IS NULL",
                )
                .and_then(|mut stmt| stmt.execute(params![kind.as_str(), subject_id, at, reason]))
                .db()?;
            Ok(changed as u64)
        })
        .await
    }

    async fn revoked_certificates(&self, now: i64) -> StoreResult<Vec<CertificateRow>> {
        self.read(move |conn| {
            // `not_after` is the last valid second, so a certificate expiring at `now` is listed.
            let sql = format!(
                "SELECT {COLUMNS} FROM certificates \
                 WHERE revoked_at IS NOT NULL AND not_after >= ?1 \
                 ORDER BY revoked_at, serial"
            );
            conn.prepare_cached(&sql)
                .and_then(|mut stmt| stmt.query_map(params![now], from_row)?.collect())
                .db()
        })
        .await
    }
}
