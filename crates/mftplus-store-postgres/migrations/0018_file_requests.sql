-- File requests (decision 0034): a user hands someone without an account a link through which
-- they may upload files, encrypted in their browser to the user's key. Only the SHA-256 of the
-- request's token is kept. Transfers made through a request name it as their sender
-- (`sender_kind` = 'request', `sender_id` = the request's id).
-- Append-only: once applied anywhere, this file never changes; later changes are new files.
-- Same name and meaning as the SQLite migration of the same name.

CREATE TABLE file_requests (
    id                TEXT PRIMARY KEY,
    token_hash        TEXT NOT NULL,
    -- User id of the requester, to whom every upload is encrypted and sent.
    owner_id          TEXT NOT NULL,
    note              TEXT NOT NULL,
    created_at_ms     BIGINT NOT NULL,
    expires_at_ms     BIGINT NOT NULL,
    max_uploads       BIGINT NOT NULL CHECK (max_uploads > 0),
    max_bytes         BIGINT NOT NULL CHECK (max_bytes > 0),
    uploads           BIGINT NOT NULL DEFAULT 0 CHECK (uploads >= 0),
    last_upload_at_ms BIGINT,
    revoked_at_ms     BIGINT,
    CONSTRAINT file_requests_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX file_requests_owner_idx ON file_requests (owner_id, created_at_ms);
CREATE INDEX file_requests_created_idx ON file_requests (created_at_ms);
