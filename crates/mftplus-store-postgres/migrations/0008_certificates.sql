-- Certificates issued by the cloud's built-in CA (SPEC §7, decision 0016): one row per leaf,
-- keyed by its serial, for listings, revocation and the CRL. The certificate itself is not
-- stored, only what identifies and limits it.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.

-- serial: lowercase hex. subject_kind: host | hub; subject_id names the host or hub (no foreign
-- key: it may name either table, and the row outlives a deleted subject for the CRL).
-- fingerprint: SHA-256 hex of the DER. Times are Unix seconds, as in the certificate itself.
-- issued_by: an operator's email, host:<id> or hub:<id>. revoked_at and revoked_reason are set
-- together, once.
CREATE TABLE certificates (
    serial         TEXT PRIMARY KEY,
    subject_kind   TEXT NOT NULL CHECK (subject_kind IN ('host', 'hub')),
    subject_id     TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    not_before     BIGINT NOT NULL,
    not_after      BIGINT NOT NULL,
    issued_at      BIGINT NOT NULL,
    issued_by      TEXT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);

CREATE INDEX certificates_subject_idx ON certificates (subject_kind, subject_id);

-- The CRL reads only revoked rows, which stay few.
CREATE INDEX certificates_revoked_idx ON certificates (revoked_at) WHERE revoked_at IS NOT NULL;
