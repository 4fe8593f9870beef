//! The `transfer_links` and `link_tickets` tables; see `mftplus_store::LinkStore`. An open locks
//! its link row (`FOR UPDATE`) for the check, the count and the ticket, so opens racing for the
//! last allowed download are serialized across cloud processes.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use mftplus_store::{
    LinkOpen, LinkRow, LinkStore, LinkTicketRow, NewLink, NewLinkTicket, StoreError, StoreResult,
};
use tokio_postgres::Row;

use crate::error::ResultExt;
use crate::{sql, PostgresStore};

const LINK_COLUMNS: &str = "id, transfer_id, token_hash, created_by, created_at_ms, \
     expires_at_ms, max_downloads, downloads, last_opened_at_ms, revoked_at_ms";

fn link_from_row(row: &Row) -> StoreResult<LinkRow> {
    Ok(LinkRow {
        id: row.try_get(0).db()?,
        transfer_id: row.try_get(1).db()?,
        token_hash: row.try_get(2).db()?,
        created_by: row.try_get(3).db()?,
        created_at_ms: row.try_get(4).db()?,
        expires_at_ms: row.try_get(5).db()?,
        max_downloads: row.try_get(6).db()?,
        downloads: row.try_get(7).db()?,
        last_opened_at_ms: row.try_get(8).db()?,
        revoked_at_ms: row.try_get(9).db()?,
    })
}

/// `column` and `lock` are this file's literals, never input.
async fn load<C: GenericClient>(
    client: &C,
    column: &str,
    value: &str,
    lock: &str,
) -> StoreResult<Option<LinkRow>> {
    let sql = format!("SELECT {LINK_COLUMNS} FROM transfer_links WHERE {column} = $1 {lock}");
    sql::query_opt(client, &sql, &[&value])
        .await?
        .as_ref()
        .map(link_from_row)
        .transpose()
}

/// A unique violation on these tables can only be the token (or ticket) hash: named so.
fn clash(err: StoreError, what: &str) -> StoreError {
    match err {
        StoreError::Conflict(_) => StoreError::Conflict(what.into()),
        other => other,
    }
}

async fn create<C: GenericClient>(tx: &C, link: &NewLink) -> StoreResult<LinkRow> {
    // Locked, so the transfer cannot be deleted between this check and the insert.
    let exists = sql::query_opt(
        tx,
        "SELECT 1 FROM transfers WHERE id = $1 FOR SHARE",
        &[&link.transfer_id],
    )
    .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    let sql = format!(
        "INSERT INTO transfer_links (id, transfer_id, token_hash, created_by, created_at_ms, \
         expires_at_ms, max_downloads) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         RETURNING {LINK_COLUMNS}"
    );
    let row = sql::query_one(
        tx,
        &sql,
        &[
            &link.id,
            &link.transfer_id,
            &link.token_hash,
            &link.created_by,
            &link.created_at_ms,
            &link.expires_at_ms,
            &link.max_downloads,
        ],
    )
    .await
    .map_err(|e| clash(e, "token"))?;
    link_from_row(&row)
}

async fn open<C: GenericClient>(
    tx: &C,
    link_id: &str,
    ticket: &NewLinkTicket,
    now_ms: i64,
) -> StoreResult<LinkOpen> {
    let link = load(tx, "id", link_id, "FOR UPDATE")
        .await?
        .ok_or(StoreError::NotFound)?;
    if let Some(refusal) = link.refusal(now_ms) {
        return Ok(LinkOpen::Refused(refusal, link));
    }
    sql::execute(
        tx,
        "INSERT INTO link_tickets (ticket_hash, link_id, created_at_ms, expires_at_ms) \
         VALUES ($1, $2, $3, $4)",
        &[
            &ticket.ticket_hash,
            &link_id,
            &now_ms,
            &ticket.expires_at_ms,
        ],
    )
    .await
    .map_err(|e| clash(e, "ticket"))?;
    let sql = format!(
        "UPDATE transfer_links SET downloads = downloads + 1, last_opened_at_ms = $2 \
         WHERE id = $1 RETURNING {LINK_COLUMNS}"
    );
    let row = sql::query_one(tx, &sql, &[&link_id, &now_ms]).await?;
    Ok(LinkOpen::Opened(link_from_row(&row)?))
}

#[async_trait]
impl LinkStore for PostgresStore {
    async fn create_link(&self, link: &NewLink) -> StoreResult<LinkRow> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let row = create(&tx, link).await?;
        tx.commit().await.db()?;
        Ok(row)
    }

    async fn get_link(&self, id: &str) -> StoreResult<Option<LinkRow>> {
        load(&self.client().await?, "id", id, "").await
    }

    async fn get_link_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<LinkRow>> {
        load(&self.client().await?, "token_hash", token_hash, "").await
    }

    async fn list_links(&self, transfer_id: &str) -> StoreResult<Vec<LinkRow>> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM transfer_links WHERE transfer_id = $1 \
             ORDER BY created_at_ms, id COLLATE \"C\""
        );
        sql::query(&self.client().await?, &sql, &[&transfer_id])
            .await?
            .iter()
            .map(link_from_row)
            .collect()
    }

    async fn revoke_link(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let changed = sql::execute(
            &self.client().await?,
            "UPDATE transfer_links SET revoked_at_ms = $2 \
             WHERE id = $1 AND revoked_at_ms IS NULL",
            &[&id, &at_ms],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn open_link(
        &self,
        link_id: &str,
        ticket: &NewLinkTicket,
        now_ms: i64,
    ) -> StoreResult<LinkOpen> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let outcome = open(&tx, link_id, ticket, now_ms).await?;
        tx.commit().await.db()?;
        Ok(outcome)
    }

    async fn get_link_ticket(
        &self,
        ticket_hash: &str,
    ) -> StoreResult<Option<(LinkTicketRow, LinkRow)>> {
        let client = self.client().await?;
        let row = sql::query_opt(
            &client,
            "SELECT ticket_hash, link_id, created_at_ms, expires_at_ms FROM link_tickets \
             WHERE ticket_hash = $1",
            &[&ticket_hash],
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let ticket = LinkTicketRow {
            ticket_hash: row.try_get(0).db()?,
            link_id: row.try_get(1).db()?,
            created_at_ms: row.try_get(2).db()?,
            expires_at_ms: row.try_get(3).db()?,
        };
        Ok(load(&client, "id", &ticket.link_id, "")
            .await?
            .map(|link| (ticket, link)))
    }

    async fn extend_link_ticket(&self, ticket_hash: &str, expires_at_ms: i64) -> StoreResult<bool> {
        let changed = sql::execute(
            &self.client().await?,
            "UPDATE link_tickets SET expires_at_ms = $2 \
             WHERE ticket_hash = $1 AND expires_at_ms < $2",
            &[&ticket_hash, &expires_at_ms],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn prune_link_tickets(&self, before_ms: i64) -> StoreResult<u64> {
        sql::execute(
            &self.client().await?,
            "DELETE FROM link_tickets WHERE expires_at_ms < $1",
            &[&before_ms],
        )
        .await
    }
}
