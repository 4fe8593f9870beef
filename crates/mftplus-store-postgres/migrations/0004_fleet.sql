-- The fleet control plane (SPEC §3): customers, hosts, guests, the two report streams, signed
-- operations, events, notification bookkeeping and job leases.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.
-- Same name and meaning as the SQLite migration of the same name.
-- Column groups on hosts and guests name their driver (seed 002 §1): intent is written only by
-- operator actions, reality only by reports.

-- status: active | blocked.
CREATE TABLE customers (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL,
    email                   TEXT NOT NULL,
    domain                  TEXT,
    locale                  TEXT NOT NULL,
    status                  TEXT NOT NULL,
    retrieval_password_hash TEXT NOT NULL,
    config_json             TEXT NOT NULL,
    created_at_ms           BIGINT NOT NULL,
    updated_at_ms           BIGINT NOT NULL
);

CREATE TABLE hosts (
    id                     TEXT PRIMARY KEY,
    customer_id            TEXT NOT NULL REFERENCES customers (id),
    key_hash               TEXT NOT NULL UNIQUE,
    hostname               TEXT NOT NULL,
    platform               TEXT,
    enrolled_at_ms         BIGINT NOT NULL,
    -- reality (host reports)
    agent_version          TEXT NOT NULL,
    controller_version     TEXT,
    applied_generation     BIGINT NOT NULL DEFAULT 0,
    last_report_at_ms      BIGINT,
    last_backups_json      TEXT NOT NULL DEFAULT '[]',
    pending_signature_json TEXT NOT NULL DEFAULT '[]',
    -- intent (operator actions)
    desired_json           TEXT NOT NULL,
    desired_generation     BIGINT NOT NULL DEFAULT 0,
    desired_updated_at_ms  BIGINT NOT NULL,
    recovery_mode_until_ms BIGINT,
    -- DR record (box-reported through the escrow route)
    backup_namespace       TEXT,
    repository_fingerprint TEXT,
    escrow                 TEXT,
    escrow_at_ms           BIGINT,
    -- checker state (background jobs): liveness ok | stale | down
    liveness               TEXT NOT NULL DEFAULT 'ok',
    backup_missed_json     TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX hosts_customer_idx ON hosts (customer_id);

-- status: running | stopped | unknown.
CREATE TABLE guests (
    id                 TEXT PRIMARY KEY,
    customer_id        TEXT NOT NULL REFERENCES customers (id),
    host_id            TEXT NOT NULL REFERENCES hosts (id),
    key_hash           TEXT NOT NULL UNIQUE,
    display_name       TEXT NOT NULL,
    created_at_ms      BIGINT NOT NULL,
    -- intent
    desired_spec_json  TEXT,
    -- reality
    controller_version TEXT,
    status             TEXT NOT NULL DEFAULT 'unknown',
    last_seen_at_ms    BIGINT,
    last_report_at_ms  BIGINT
);
CREATE INDEX guests_host_idx ON guests (host_id);
CREATE INDEX guests_customer_idx ON guests (customer_id);

-- No foreign keys on the report streams: they are append-heavy and pruned by age, and a
-- customer's deletion removes them explicitly.
CREATE TABLE host_reports (
    id                 BIGSERIAL PRIMARY KEY,
    host_id            TEXT NOT NULL,
    customer_id        TEXT NOT NULL,
    received_at_ms     BIGINT NOT NULL,
    applied_generation BIGINT NOT NULL,
    cpu_percent        DOUBLE PRECISION NOT NULL,
    memory_used_bytes  BIGINT NOT NULL,
    memory_total_bytes BIGINT NOT NULL,
    disk_used_bytes    BIGINT NOT NULL,
    disk_total_bytes   BIGINT NOT NULL,
    guests_total       BIGINT NOT NULL,
    guests_running     BIGINT NOT NULL,
    report_json        TEXT NOT NULL
);
CREATE INDEX host_reports_host_idx ON host_reports (host_id, received_at_ms DESC);
CREATE INDEX host_reports_customer_idx ON host_reports (customer_id, received_at_ms DESC);
CREATE INDEX host_reports_received_idx ON host_reports (received_at_ms);

CREATE TABLE guest_reports (
    id                 BIGSERIAL PRIMARY KEY,
    guest_id           TEXT NOT NULL,
    host_id            TEXT NOT NULL,
    customer_id        TEXT NOT NULL,
    received_at_ms     BIGINT NOT NULL,
    cpu_percent        DOUBLE PRECISION,
    memory_used_bytes  BIGINT,
    memory_total_bytes BIGINT,
    report_json        TEXT NOT NULL
);
CREATE INDEX guest_reports_guest_idx ON guest_reports (guest_id, received_at_ms DESC);
CREATE INDEX guest_reports_customer_idx ON guest_reports (customer_id, received_at_ms DESC);
CREATE INDEX guest_reports_received_idx ON guest_reports (received_at_ms);

-- status: pending_signature | signed | delivered | executed | failed | expired | rejected.
CREATE TABLE signed_ops (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    host_id         TEXT NOT NULL,
    guest_id        TEXT,
    op_type         TEXT NOT NULL,
    op_blob         TEXT NOT NULL,
    signature       TEXT,
    status          TEXT NOT NULL,
    nonce           TEXT NOT NULL UNIQUE,
    issued_at_ms    BIGINT NOT NULL,
    expires_at_ms   BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    signed_at_ms    BIGINT,
    delivered_at_ms BIGINT,
    finished_at_ms  BIGINT,
    result_json     TEXT
);
CREATE INDEX signed_ops_host_status_idx ON signed_ops (host_id, status);
CREATE INDEX signed_ops_status_expires_idx ON signed_ops (status, expires_at_ms);

-- severity: info | warning | critical. Kept when a customer is deleted: the timeline is history.
CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,
    at_ms        BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    severity     TEXT NOT NULL,
    customer_id  TEXT,
    host_id      TEXT,
    guest_id     TEXT,
    op_id        TEXT,
    details_json TEXT NOT NULL
);
CREATE INDEX events_customer_idx ON events (customer_id, id);
CREATE INDEX events_host_idx ON events (host_id, id);
CREATE INDEX events_at_idx ON events (at_ms);

-- Cooldown state: one row per notification key (customer, subject, event kind, tier).
CREATE TABLE customer_notifications (
    key             TEXT PRIMARY KEY,
    customer_id     TEXT,
    last_sent_at_ms BIGINT NOT NULL
);

-- tier: operator | customer; channel: email | webhook; status: sent | failed | suppressed.
CREATE TABLE notification_log (
    id          BIGSERIAL PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    event_id    BIGINT,
    customer_id TEXT,
    tier        TEXT NOT NULL,
    channel     TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    status      TEXT NOT NULL,
    error       TEXT
);
CREATE INDEX notification_log_at_idx ON notification_log (at_ms);

-- Once-only background work across replicas sharing one database.
CREATE TABLE job_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    until_ms    BIGINT NOT NULL
);
