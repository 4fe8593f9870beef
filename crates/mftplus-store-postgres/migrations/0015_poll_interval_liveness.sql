-- The adaptive poll interval and a liveness pass that scales with the fleet (issue 17,
-- decision 0024).
-- Append-only: once applied anywhere, this file never changes; later changes are new files.

-- The interval the answer to a host's latest report told it, in seconds (reality: written by
-- ingest). Liveness judges the host by it, so a host told to report hourly is not called stale
-- by a rule written for five minutes. NULL until the host reports to a cloud that records it.
ALTER TABLE hosts ADD COLUMN poll_interval_seconds BIGINT;

-- Liveness (the checker's state) moves to a narrow table of its own: a pass in which every
-- host changes rewrites these small rows instead of every wide host row (and, since a host
-- row's new version rarely fits its page, every index of hosts with it), and ingest and the
-- checker no longer lock the same rows. Half of each page stays free so the pass's updates
-- stay on their page (HOT: no index entry per update). One row per host, created with it,
-- gone with it.
CREATE TABLE host_liveness (
    host_id  TEXT PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE,
    -- ok | stale | down
    liveness TEXT NOT NULL DEFAULT 'ok'
) WITH (fillfactor = 50);
INSERT INTO host_liveness (host_id, liveness) SELECT id, liveness FROM hosts;
ALTER TABLE hosts DROP COLUMN liveness;
