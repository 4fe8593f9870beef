-- "What is waiting for me": the recipients that have not downloaded yet, per party, so an
-- inbox (an agent's, `mftctl receive`) asks for its pending transfers without reading its
-- whole history (`TransferFilter::pending_for`).
-- Append-only: once applied anywhere, this file never changes; later changes are new files.
-- Same name and meaning in both backends.
CREATE INDEX transfer_recipients_pending_idx ON transfer_recipients (recipient_kind, recipient_id)
    WHERE downloaded_at_ms IS NULL;
