-- Share links (decision 0023): a transfer opened in a browser by whoever holds the link, and
-- the download tickets its opens handed out. Only the SHA-256 of a link's token and of a
-- ticket is kept; the link's secret (the URL fragment) never reaches the server.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.
-- Same name and meaning as the SQLite migration of the same name.

CREATE TABLE transfer_links (
    id                TEXT PRIMARY KEY,
    transfer_id       TEXT NOT NULL REFERENCES transfers (id),
    token_hash        TEXT NOT NULL,
    -- User id of whoever made the link.
    created_by        TEXT NOT NULL,
    created_at_ms     BIGINT NOT NULL,
    expires_at_ms     BIGINT NOT NULL,
    -- NULL: unlimited.
    max_downloads     BIGINT CHECK (max_downloads IS NULL OR max_downloads > 0),
    downloads         BIGINT NOT NULL DEFAULT 0 CHECK (downloads >= 0),
    last_opened_at_ms BIGINT,
    revoked_at_ms     BIGINT,
    CONSTRAINT transfer_links_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX transfer_links_transfer_idx ON transfer_links (transfer_id, created_at_ms);

CREATE TABLE link_tickets (
    ticket_hash   TEXT PRIMARY KEY,
    link_id       TEXT NOT NULL REFERENCES transfer_links (id),
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX link_tickets_link_idx ON link_tickets (link_id);
CREATE INDEX link_tickets_expires_idx ON link_tickets (expires_at_ms);
