-- The transfer listing's order (dashboard, GET /api/v1/transfers): newest first, ties by id.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.

-- A page of everyone's transfers after a keyset cursor reads this index from the cursor on,
-- instead of sorting every transfer for each page. Ids compare in byte order, as the listing's
-- ORDER BY does.
CREATE INDEX transfers_created_idx ON transfers (created_at_ms DESC, id COLLATE "C" DESC);
