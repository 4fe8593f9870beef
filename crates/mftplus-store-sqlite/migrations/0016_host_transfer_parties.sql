-- Hosts as transfer parties (decision 0029): a host's agent registers an X25519 public key that
-- senders wrap file keys to, and a host may send transfers itself.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.

-- One key per host, replaced when the agent registers another (a re-enrolled box), gone with
-- the host.
CREATE TABLE host_transfer_keys (
    host_id          TEXT PRIMARY KEY NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    -- The encoded public key (mftx25519_…).
    public_key       TEXT NOT NULL,
    registered_at_ms INTEGER NOT NULL
) STRICT;

-- user | agent, as transfer_recipients.recipient_kind: every earlier transfer was a user's.
ALTER TABLE transfers ADD COLUMN sender_kind TEXT NOT NULL DEFAULT 'user';

-- "What did this party send" looks a (kind, id) up: the sender index gains the kind in front,
-- so a host's sent transfers and a user's are one index seek each. The recipient side already
-- has (recipient_kind, recipient_id).
DROP INDEX transfers_sender_idx;
CREATE INDEX transfers_sender_party_idx ON transfers (sender_kind, sender_id, created_at_ms DESC);
