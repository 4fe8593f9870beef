-- The hash-chained audit log.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.
-- Same name and meaning as the SQLite migration of the same name.

CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    ts_ms     BIGINT NOT NULL,
    event     TEXT NOT NULL,
    actor     TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    -- Canonical JSON as TEXT, not JSONB: JSONB would reorder and reformat it, and the hash
    -- must recompute from exactly these bytes.
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_log_ts_idx ON audit_log (ts_ms);

-- Rows are only ever inserted or pruned; rewriting history must fail loudly.
CREATE FUNCTION audit_log_no_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_no_update();

-- The chain head lives apart from the log so that seq and the hash link survive pruning every
-- row; appends lock this one row (SELECT ... FOR UPDATE), which serializes them across every
-- cloud process sharing the database.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
