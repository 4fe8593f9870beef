-- Idempotency keys of ingested reports (decision 0011): an edge hub replays its offline queue
-- with the key each report was queued under, and a (scope, key) seen before is acknowledged
-- without being stored again. scope: the host id for host reports, the guest id for guest
-- reports. Pruned with the reports.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.
CREATE TABLE report_idempotency (
    scope          TEXT NOT NULL,
    key            TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX report_idempotency_received ON report_idempotency (received_at_ms);
