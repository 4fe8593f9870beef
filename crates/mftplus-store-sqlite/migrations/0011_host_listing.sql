-- The hosts listing's "missing hosts" order (dashboard, GET /api/v1/hosts?sort=last_report):
-- never reported first, then the oldest last report, ties by id.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.

-- A page after a keyset cursor reads this index from the cursor on, instead of sorting every
-- host for each page. The expression must stay the one the listing orders by.
CREATE INDEX hosts_last_report_idx ON hosts (COALESCE(last_report_at_ms, -1), id);
