-- Share links (decision 0023): a transfer opened in a browser by whoever holds the link, and
-- the download tickets its opens handed out. Only the SHA-256 of a link's token and of a
-- ticket is kept; the link's secret (the URL fragment) never reaches the server.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.

CREATE TABLE transfer_links (
    id                TEXT PRIMARY KEY NOT NULL,
    transfer_id       TEXT NOT NULL REFERENCES transfers (id),
    token_hash        TEXT NOT NULL UNIQUE,
    -- User id of whoever made the link.
    created_by        TEXT NOT NULL,
    created_at_ms     INTEGER NOT NULL,
    expires_at_ms     INTEGER NOT NULL,
    -- NULL: unlimited.
    max_downloads     INTEGER CHECK (max_downloads IS NULL OR max_downloads > 0),
    downloads         INTEGER NOT NULL DEFAULT 0 CHECK (downloads >= 0),
    last_opened_at_ms INTEGER,
    revoked_at_ms     INTEGER
) STRICT;
CREATE INDEX transfer_links_transfer_idx ON transfer_links (transfer_id, created_at_ms);

CREATE TABLE link_tickets (
    ticket_hash   TEXT PRIMARY KEY NOT NULL,
    link_id       TEXT NOT NULL REFERENCES transfer_links (id),
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX link_tickets_link_idx ON link_tickets (link_id);
CREATE INDEX link_tickets_expires_idx ON link_tickets (expires_at_ms);
