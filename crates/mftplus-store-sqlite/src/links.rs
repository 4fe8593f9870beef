//! The `transfer_links` and `link_tickets` tables; see `mftplus_store::LinkStore`. Writes run
//! on the single writer connection inside `BEGIN IMMEDIATE`, so an open's check, count and
//! ticket cannot interleave with another open, in this process or another.

use async_trait::async_trait;
use mftplus_store::{
    LinkOpen, LinkRow, LinkStore, LinkTicketRow, NewLink, NewLinkTicket, StoreError, StoreResult,
};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::error::ResultExt;
use crate::SqliteStore;

const LINK_COLUMNS: &str = "id, transfer_id, token_hash, created_by, created_at_ms, \
     expires_at_ms, max_downloads, downloads, last_opened_at_ms, revoked_at_ms";

fn link_from_row(row: &Row<'_>) -> rusqlite::Result<LinkRow> {
    Ok(LinkRow {
        id: row.get(0)?,
        transfer_id: row.get(1)?,
        token_hash: row.get(2)?,
        created_by: row.get(3)?,
        created_at_ms: row.get(4)?,
        expires_at_ms: row.get(5)?,
        max_downloads: row.get(6)?,
        downloads: row.get(7)?,
        last_opened_at_ms: row.get(8)?,
        revoked_at_ms: row.get(9)?,
    })
}

/// `column` is one of this file's literals, never input.
fn load(conn: &Connection, column: &str, value: &str) -> StoreResult<Option<LinkRow>> {
    let sql = format!("SELECT {LINK_COLUMNS} FROM transfer_links WHERE {column} = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![value], link_from_row).optional())
        .db()
}

/// A unique violation on this table can only be the token (or ticket) hash: named so.
fn clash(err: StoreError, what: &str) -> StoreError {
    match err {
        StoreError::Conflict(_) => StoreError::Conflict(what.into()),
        other => other,
    }
}

fn create(conn: &mut Connection, link: &NewLink) -> StoreResult<LinkRow> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let exists = tx
        .prepare_cached("SELECT 1 FROM transfers WHERE id = ?1")
        .and_then(|mut stmt| stmt.exists(params![link.transfer_id]))
        .db()?;
    if !exists {
        return Err(StoreError::NotFound);
    }
    let sql = format!(
        "INSERT INTO transfer_links (id, transfer_id, token_hash, created_by, created_at_ms, \
         expires_at_ms, max_downloads) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         RETURNING {LINK_COLUMNS}"
    );
    let row = tx
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    link.id,
                    link.transfer_id,
                    link.token_hash,
                    link.created_by,
                    link.created_at_ms,
                    link.expires_at_ms,
                    link.max_downloads
                ],
                link_from_row,
            )
        })
        .db()
        .map_err(|e| clash(e, "token"))?;
    tx.commit().db()?;
    Ok(row)
}

fn open(
    conn: &mut Connection,
    link_id: &str,
    ticket: &NewLinkTicket,
    now_ms: i64,
) -> StoreResult<LinkOpen> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let link = load(&tx, "id", link_id)?.ok_or(StoreError::NotFound)?;
    if let Some(refusal) = link.refusal(now_ms) {
        return Ok(LinkOpen::Refused(refusal, link));
    }
    tx.prepare_cached(
        "INSERT INTO link_tickets (ticket_hash, link_id, created_at_ms, expires_at_ms) \
         VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            ticket.ticket_hash,
            link_id,
            now_ms,
            ticket.expires_at_ms
        ])
    })
    .db()
    .map_err(|e| clash(e, "ticket"))?;
    let sql = format!(
        "UPDATE transfer_links SET downloads = downloads + 1, last_opened_at_ms = ?2 \
         WHERE id = ?1 RETURNING {LINK_COLUMNS}"
    );
    let row = tx
        .prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![link_id, now_ms], link_from_row))
        .db()?;
    tx.commit().db()?;
    Ok(LinkOpen::Opened(row))
}

fn ticket_with_link(
    conn: &Connection,
    ticket_hash: &str,
) -> StoreResult<Option<(LinkTicketRow, LinkRow)>> {
    let ticket = conn
        .prepare_cached(
            "SELECT ticket_hash, link_id, created_at_ms, expires_at_ms FROM link_tickets \
             WHERE ticket_hash = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![ticket_hash], |row| {
                Ok(LinkTicketRow {
                    ticket_hash: row.get(0)?,
                    link_id: row.get(1)?,
                    created_at_ms: row.get(2)?,
                    expires_at_ms: row.get(3)?,
                })
            })
            .optional()
        })
        .db()?;
    let Some(ticket) = ticket else {
        return Ok(None);
    };
    Ok(load(conn, "id", &ticket.link_id)?.map(|link| (ticket, link)))
}

#[async_trait]
impl LinkStore for SqliteStore {
    async fn create_link(&self, link: &NewLink) -> StoreResult<LinkRow> {
        let link = link.clone();
        self.write(move |conn| create(conn, &link)).await
    }

    async fn get_link(&self, id: &str) -> StoreResult<Option<LinkRow>> {
        let id = id.to_owned();
        self.read(move |conn| load(conn, "id", &id)).await
    }

    async fn get_link_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<LinkRow>> {
        let hash = token_hash.to_owned();
        self.read(move |conn| load(conn, "token_hash", &hash)).await
    }

    async fn list_links(&self, transfer_id: &str) -> StoreResult<Vec<LinkRow>> {
        let transfer_id = transfer_id.to_owned();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {LINK_COLUMNS} FROM transfer_links WHERE transfer_id = ?1 \
                 ORDER BY created_at_ms, id"
            );
            conn.prepare_cached(&sql)
                .and_then(|mut stmt| {
                    stmt.query_map(params![transfer_id], link_from_row)?
                        .collect()
                })
                .db()
        })
        .await
    }

    async fn revoke_link(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE transfer_links SET revoked_at_ms = ?2 \
                 WHERE id = ?1 AND revoked_at_ms IS NULL",
            )
            .and_then(|mut stmt| stmt.execute(params![id, at_ms]))
            .db()
            .map(|n| n > 0)
        })
        .await
    }

    async fn open_link(
        &self,
        link_id: &str,
        ticket: &NewLinkTicket,
        now_ms: i64,
    ) -> StoreResult<LinkOpen> {
        let (link_id, ticket) = (link_id.to_owned(), ticket.clone());
        self.write(move |conn| open(conn, &link_id, &ticket, now_ms))
            .await
    }

    async fn get_link_ticket(
        &self,
        ticket_hash: &str,
    ) -> StoreResult<Option<(LinkTicketRow, LinkRow)>> {
        let hash = ticket_hash.to_owned();
        self.read(move |conn| ticket_with_link(conn, &hash)).await
    }

    async fn extend_link_ticket(&self, ticket_hash: &str, expires_at_ms: i64) -> StoreResult<bool> {
        let hash = ticket_hash.to_owned();
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE link_tickets SET expires_at_ms = ?2 \
                 WHERE ticket_hash = ?1 AND expires_at_ms < ?2",
            )
            .and_then(|mut stmt| stmt.execute(params![hash, expires_at_ms]))
            .db()
            .map(|n| n > 0)
        })
        .await
    }

    async fn prune_link_tickets(&self, before_ms: i64) -> StoreResult<u64> {
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM link_tickets WHERE expires_at_ms < ?1")
                .and_then(|mut stmt| stmt.execute(params![before_ms]))
                .db()
                .map(|n| n as u64)
        })
        .await
    }
}
