-- What keeps a money move's identity across what operators do to the
-- state (principle 8, docs/principles.md): restores, renames, and limits on how much
-- money runs may move.

-- The amount a money request asked to move, in minor units: 0 for other
-- requests and for those journalled before this column. The per-day
-- limits add it up.
ALTER TABLE operations ADD COLUMN amount INTEGER NOT NULL DEFAULT 0;
CREATE INDEX operations_key ON operations(idempotency_key);
CREATE INDEX operations_money ON operations(created_at) WHERE kind IN ('refund', 'charge');

-- Keys the state could not vouch for, that DOKU was asked about by
-- status inquiry and had nothing under, with when it was asked: from then
-- on, the journal holds everything sent under them.
CREATE TABLE verified_keys (
	idempotency_key TEXT PRIMARY KEY,
	address         TEXT NOT NULL,
	verified_at     TEXT NOT NULL
);

-- Renames of state entries (moved blocks, ddctl state mv), for history.
CREATE TABLE moves (
	id           INTEGER PRIMARY KEY,
	run_id       INTEGER NOT NULL DEFAULT 0,
	from_address TEXT NOT NULL,
	to_address   TEXT NOT NULL,
	entries      INTEGER NOT NULL,
	moved_at     TEXT NOT NULL
);

-- The reason an apply was allowed over settings.limits, when it was.
ALTER TABLE runs ADD COLUMN override TEXT NOT NULL DEFAULT '';

-- generation counts the restores of this state; vouched_since is the
-- time from which the state holds every request sent under its keys (its
-- creation, or its last restore). A state older than this migration
-- vouches from its first run.
-- schedules_since is when a ddctl that fires a scheduled time the clocks
-- jump over (at the jump) began keeping this state: what earlier versions
-- skipped on those nights is not owed.
INSERT INTO meta (key, value) VALUES ('generation', '1');
INSERT INTO meta (key, value) VALUES ('schedules_since', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
INSERT INTO meta (key, value) VALUES ('vouched_since',
	COALESCE((SELECT min(started_at) FROM runs), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
