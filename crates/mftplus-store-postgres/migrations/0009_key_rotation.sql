-- Key rotation without downtime (docs/key-rotation.md).
-- Append-only: once applied anywhere, this file never changes; later changes are new files.

-- A host's latest graced key rotation: the replaced key's hash keeps authenticating until
-- previous_valid_until_ms. sealed_new_key is the new key sealed under a key derived from the
-- replaced one (which is not stored), so an agent that lost the answer can repeat the call with
-- its old key and the same idempotency_key and get the same new key. One row per host: a later
-- rotation replaces it, a recovery re-enrollment deletes it, deleting the host deletes it.
CREATE TABLE host_key_rotations (
    host_id                 TEXT PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    previous_key_hash       TEXT NOT NULL,
    previous_valid_until_ms BIGINT NOT NULL,
    idempotency_key         TEXT NOT NULL,
    sealed_new_key          TEXT NOT NULL,
    rotated_at_ms           BIGINT NOT NULL,
    CONSTRAINT host_key_rotations_previous_uq UNIQUE (previous_key_hash)
);

-- An operator asked a host's agent to rotate its key (mftctl hosts rotate-key): the report
-- envelope says rotate_key until the agent's rotation lands, which deletes the row.
CREATE TABLE host_key_rotation_requests (
    host_id         TEXT PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    requested_by    TEXT NOT NULL,
    requested_at_ms BIGINT NOT NULL
);

-- A deploy key made by a rotation names the key it replaced; the replaced key is refused from
-- expires_at_ms on (its grace), as if revoked.
ALTER TABLE deploy_keys ADD COLUMN replaces TEXT;
ALTER TABLE deploy_keys ADD COLUMN expires_at_ms BIGINT;
