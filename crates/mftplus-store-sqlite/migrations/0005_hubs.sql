-- Edge hubs (SPEC §4, decision 0010): the deploy keys operators hand out and the registry of
-- hubs that phoned home with them.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.

-- key_hash: SHA-256 hex of the whole key; the key itself is shown once and never stored.
CREATE TABLE deploy_keys (
    id            TEXT PRIMARY KEY NOT NULL,
    label         TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    revoked_at_ms INTEGER
) STRICT;

-- One row per (deploy key, hostname): re-registering the same host keeps its id.
-- license_mode: evaluation | enterprise. healthy and issues_json come from the latest heartbeat.
CREATE TABLE hubs (
    id                   TEXT PRIMARY KEY NOT NULL,
    deploy_key_id        TEXT NOT NULL REFERENCES deploy_keys (id),
    hostname             TEXT NOT NULL,
    hub_version          TEXT NOT NULL,
    platform             TEXT NOT NULL,
    license_mode         TEXT NOT NULL,
    registered_at_ms     INTEGER NOT NULL,
    last_seen_at_ms      INTEGER NOT NULL,
    last_validated_at_ms INTEGER,
    healthy              INTEGER NOT NULL DEFAULT 1,
    issues_json          TEXT NOT NULL DEFAULT '[]',
    UNIQUE (deploy_key_id, hostname)
) STRICT;
