-- Small chunks kept in the database (decision 0037): a sealed chunk of at most 64 KiB is stored
-- in its row instead of the payload store, so a small transfer costs no file, directory or
-- object of its own and its bytes commit atomically with the row that records them. NULL for
-- chunks in the payload store (every chunk recorded before this migration).
-- Append-only: once applied anywhere, this file never changes; later changes are new files.

ALTER TABLE transfer_chunks ADD COLUMN data BLOB;
