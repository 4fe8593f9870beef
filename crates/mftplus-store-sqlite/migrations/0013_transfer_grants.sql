-- Grants (decision 0022): a recipient who had no public key when the file was sent is recorded
-- as waiting for the sender to wrap the file key to them; the sender's grant clears the flag.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.

-- 0 for every recipient of an earlier release: their stanzas were in the header from the start.
ALTER TABLE transfer_recipients ADD COLUMN awaiting_grant INTEGER NOT NULL DEFAULT 0
    CHECK (awaiting_grant IN (0, 1));
-- When the sender's grant gave the recipient its stanza; NULL for the others.
ALTER TABLE transfer_recipients ADD COLUMN granted_at_ms INTEGER;

-- A sender's "what still waits for my grant" reads only the rows that wait (few, and none
-- once granted), so the check every mftctl run may make costs next to nothing.
CREATE INDEX transfer_recipients_awaiting_idx ON transfer_recipients (transfer_id)
    WHERE awaiting_grant = 1;
