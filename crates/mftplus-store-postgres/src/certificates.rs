//! The `certificates` table; see `mftplus_store::CertificateStore`. Every write is one
//! statement, so revocations from several cloud processes at once need no lock: a second
//! revocation of a row finds it revoked and keeps the first time and reason.

use async_trait::async_trait;
use mftplus_store::{CertSubjectKind, CertificateRow, CertificateStore, StoreError, StoreResult};
use tokio_postgres::Row;

use crate::error::ResultExt;
use crate::{sql, PostgresStore};

const COLUMNS: &str = "serial, subject_kind, subject_id, fingerprint, not_before, not_after, \
     issued_at, issued_by, revoked_at, revoked_reason";

fn from_row(row: &Row) -> StoreResult<CertificateRow> {
    let kind: String = row.try_get(1).db()?;
    let subject_kind = CertSubjectKind::parse(&kind).ok_or_else(|| {
        StoreError::Backend(format!("certificates.subject_kind: unknown value {kind:?}"))
    })?;
    Ok(CertificateRow {
        serial: row.try_get(0).db()?,
        subject_kind,
        subject_id: row.try_get(2).db()?,
        fingerprint: row.try_get(3).db()?,
        not_before: row.try_get(4).db()?,
        not_after: row.try_get(5).db()?,
        issued_at: row.try_get(6).db()?,
        issued_by: row.try_get(7).db()?,
        revoked_at: row.try_get(8).db()?,
        revoked_reason: row.try_get(9).db()?,
    })
}

#[async_trait]
impl CertificateStore for PostgresStore {
    async fn insert_certificate(&self, row: &CertificateRow) -> StoreResult<()> {
        let inserted = sql::execute(
            &self.client().await?,
            "INSERT INTO certificates (serial, subject_kind, subject_id, fingerprint, \
             not_before, not_after, issued_at, issued_by, revoked_at, revoked_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &row.serial,
                &row.subject_kind.as_str(),
                &row.subject_id,
                &row.fingerprint,
                &row.not_before,
                &row.not_after,
                &row.issued_at,
                &row.issued_by,
                &row.revoked_at,
                &row.revoked_reason,
            ],
        )
        .await;
        match inserted {
            // The primary key is the table's only unique constraint; `error::map` would name it
            // `certificates_pkey`.
            Err(StoreError::Conflict(_)) => Err(StoreError::Conflict("serial".into())),
            other => other.map(drop),
        }
    }

    async fn get_certificate(&self, serial: &str) -> StoreResult<Option<CertificateRow>> {
        let sql = format!("SELECT {COLUMNS} FROM certificates WHERE serial = $1");
        sql::query_opt(&self.client().await?, &sql, &[&serial])
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    async fn list_certificates(
        &self,
        subject: Option<(CertSubjectKind, &str)>,
    ) -> StoreResult<Vec<CertificateRow>> {
        let client = self.client().await?;
        let rows = match subject {
            None => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM certificates \
                     ORDER BY issued_at DESC, serial COLLATE \"C\" DESC"
                );
                sql::query(&client, &sql, &[]).await?
            }
            Some((kind, id)) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM certificates WHERE subject_kind = $1 \
                     AND subject_id = $2 ORDER BY issued_at DESC, serial COLLATE \"C\" DESC"
                );
                sql::query(&client, &sql, &[&kind.as_str(), &id]).await?
            }
        };
        rows.iter().map(from_row).collect()
    }

    async fn revoke_certificate(&self, serial: &str, at: i64, reason: &str) -> StoreResult<bool> {
        // An already revoked row keeps its time and reason (the right-hand sides see the old
        // values) but still counts, so only an unknown serial changes nothing.
        let changed = sql::execute(
            &self.client().await?,
            "UPDATE certificates SET revoked_at = COALESCE(revoked_at, $2), \
             revoked_reason = CASE WHEN revoked_at IS NULL THEN $3 ELSE revoked_reason END \
             WHERE serial = $1",
            &[&serial, &at, &reason],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn revoke_subject_certificates(
        &self,
        kind: CertSubjectKind,
        subject_id: &str,
        at: i64,
        reason: &str,
    ) -> StoreResult<u64> {
        sql::execute(
            &self.client().await?,
            "UPDATE certificates SET revoked_at = $3, revoked_reason = $4 \
             WHERE subject_kind = $1 AND subject_id = $2 AND revoked_at IS NULL",
            &[&kind.as_str(), &subject_id, &at, &reason],
        )
        .await
    }

    async fn revoked_certificates(&self, now: i64) -> StoreResult<Vec<CertificateRow>> {
        // `not_after` is the last valid second, so a certificate expiring at `now` is listed.
        let sql = format!(
            "SELECT {COLUMNS} FROM certificates \
             WHERE revoked_at IS NOT NULL AND not_after >= $1 \
             ORDER BY revoked_at, serial COLLATE \"C\""
        );
        sql::query(&self.client().await?, &sql, &[&now])
            .await?
            .iter()
            .map(from_row)
            .collect()
    }
}
