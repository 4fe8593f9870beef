-- Users, API keys and JWT records.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.
-- Same name and meaning as the SQLite migration of the same name.

CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    -- Always stored lower-cased by the application, so a plain unique index makes addresses
    -- unique case-insensitively and both backends fold case the same way.
    email            TEXT NOT NULL,
    name             TEXT NOT NULL,
    role             TEXT NOT NULL,
    user_type        TEXT NOT NULL,
    password_hash    TEXT,
    created_at_ms    BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL,
    last_login_at_ms BIGINT
);
CREATE UNIQUE INDEX users_email_uq ON users (email);

-- No foreign key to users: deleting a user revokes its keys, and the revoked rows stay as a
-- record of what existed.
CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    key_hash        TEXT NOT NULL,
    prefix          TEXT NOT NULL,
    role            TEXT NOT NULL,
    owner_id        TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    expires_at_ms   BIGINT,
    last_used_at_ms BIGINT,
    revoked_at_ms   BIGINT,
    replaces        TEXT
);
CREATE UNIQUE INDEX api_keys_key_hash_uq ON api_keys (key_hash);
CREATE INDEX api_keys_owner_idx ON api_keys (owner_id, created_at_ms);

CREATE TABLE auth_tokens (
    jti           TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    role          TEXT NOT NULL,
    family_id     TEXT NOT NULL,
    created_via   TEXT NOT NULL,
    issued_at_ms  BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT,
    used_at_ms    BIGINT
);
CREATE INDEX auth_tokens_user_idx ON auth_tokens (user_id);
CREATE INDEX auth_tokens_family_idx ON auth_tokens (family_id);
CREATE INDEX auth_tokens_expires_idx ON auth_tokens (expires_at_ms);
