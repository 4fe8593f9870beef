-- Site-local transfers (decision 0012): the path each user's latest transfer request took.
-- hub_id is the edge hub it came through, NULL when it came to the cloud directly. A transfer
-- is kept on a hub's site only when its sender and every recipient were last seen through
-- that hub.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.
CREATE TABLE user_sites (
    user_id    TEXT PRIMARY KEY NOT NULL,
    hub_id     TEXT,
    seen_at_ms BIGINT NOT NULL
);

CREATE INDEX transfers_site_idx ON transfers (site) WHERE site IS NOT NULL;
