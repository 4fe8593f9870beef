-- Users' public keys and end-to-end encrypted transfers: the rows only; the ciphertext lives in
-- the blob store.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.

-- No foreign key to users, like api_keys: what happens to a deleted user's key is the cloud's
-- decision, not a cascade's.
CREATE TABLE user_keys (
    user_id       TEXT PRIMARY KEY NOT NULL,
    public_key    TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;

-- status: uploading | complete | cancelled | expired. No CHECK on the set, so a later status
-- needs no table rebuild; the store only ever writes those four.
CREATE TABLE transfers (
    id               TEXT PRIMARY KEY NOT NULL,
    sender_id        TEXT NOT NULL,
    status           TEXT NOT NULL,
    header           BLOB NOT NULL,
    chunk_size       INTEGER NOT NULL,
    chunk_count      INTEGER,
    ciphertext_bytes INTEGER NOT NULL DEFAULT 0,
    manifest         BLOB,
    created_at_ms    INTEGER NOT NULL,
    completed_at_ms  INTEGER,
    cancelled_at_ms  INTEGER,
    expires_at_ms    INTEGER NOT NULL,
    -- Reserved for transfers kept on a hub; NULL for the cloud's own.
    site             TEXT
) STRICT;
CREATE INDEX transfers_sender_idx ON transfers (sender_id, created_at_ms DESC);
CREATE INDEX transfers_status_expires_idx ON transfers (status, expires_at_ms);

-- recipient_kind: user | agent. display is the email or agent name at creation time.
CREATE TABLE transfer_recipients (
    transfer_id      TEXT NOT NULL REFERENCES transfers (id),
    recipient_kind   TEXT NOT NULL,
    recipient_id     TEXT NOT NULL,
    display          TEXT NOT NULL,
    downloaded_at_ms INTEGER,
    PRIMARY KEY (transfer_id, recipient_kind, recipient_id)
) STRICT;
CREATE INDEX transfer_recipients_recipient_idx ON transfer_recipients (recipient_kind, recipient_id);

-- One row per stored ciphertext chunk; a row is written only after its blob is stored.
CREATE TABLE transfer_chunks (
    transfer_id  TEXT NOT NULL REFERENCES transfers (id),
    idx          INTEGER NOT NULL CHECK (idx >= 0),
    size         INTEGER NOT NULL CHECK (size >= 0),
    -- SHA-256 hex of the ciphertext chunk.
    sha256       TEXT NOT NULL,
    last         INTEGER NOT NULL CHECK (last IN (0, 1)),
    stored_at_ms INTEGER NOT NULL,
    PRIMARY KEY (transfer_id, idx)
) STRICT;
