-- The filters of the dashboard's listings (audit by event or actor, events by kind, transfers
-- by status): each reads its index from the cursor on, so a rare value does not scan the table.
-- Append-only: once applied anywhere, this file never changes; later changes are new files.

CREATE INDEX audit_log_event_idx ON audit_log (event, seq);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, seq);
CREATE INDEX events_kind_idx ON events (kind, id);
CREATE INDEX transfers_status_created_idx ON transfers (status, created_at_ms DESC, id DESC);
