-- The hash-chained audit log.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.

CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY NOT NULL,
    ts_ms     INTEGER NOT NULL,
    event     TEXT NOT NULL,
    actor     TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    -- Canonical JSON text, exactly the bytes the hash was computed over.
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_ts_idx ON audit_log (ts_ms);

-- Rows are only ever inserted or pruned; rewriting history must fail loudly.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;

-- The chain head lives apart from the log so that seq and the hash link survive pruning every
-- row: a new entry never reuses a seq and always links to the last hash ever written.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
) STRICT;
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
