-- What `ddctl daemon` keeps in the state (README.md, "The daemon"): the
-- configuration apply last applied, the lease that lets one daemon run per
-- state, the outbox of events for the merchant's webhook, and a second
-- de-duplication rule for the notification inbox.
--
-- Times compared in SQL here (events.created_at, events.next_at) are
-- fixed-width UTC text (instantText in store.go), so that they sort as
-- time does.

-- The configuration each apply applied, newest last; the daemon reconciles
-- the newest, so unreviewed edits on disk never take effect. A row is
-- added only when the digest changes.
CREATE TABLE applied_specs (
	id         INTEGER PRIMARY KEY,
	digest     TEXT NOT NULL,
	body       BLOB NOT NULL,
	run_id     INTEGER NOT NULL DEFAULT 0,
	applied_at TEXT NOT NULL
);

-- Who runs the daemon of this state. A holder renews expires_at by
-- heartbeat; a holder that died stops renewing, and the lease lapses.
CREATE TABLE leases (
	name        TEXT PRIMARY KEY,
	id          TEXT NOT NULL,
	pid         INTEGER NOT NULL,
	host        TEXT NOT NULL,
	who         TEXT NOT NULL DEFAULT '',
	acquired_at TEXT NOT NULL,
	renewed_at  TEXT NOT NULL,
	expires_at  TEXT NOT NULL
);

-- The outbox: one row per status change the merchant is told about,
-- written in the transaction that made the change, so none is lost
-- between the change and its delivery. No secret and no phone number
-- goes in here.
CREATE TABLE events (
	id              INTEGER PRIMARY KEY,
	type            TEXT NOT NULL,
	address         TEXT NOT NULL,
	occurrence      TEXT NOT NULL DEFAULT '',
	idempotency_key TEXT NOT NULL DEFAULT '',
	amount          INTEGER NOT NULL DEFAULT 0,
	reference_no    TEXT NOT NULL DEFAULT '',
	snap_code       TEXT NOT NULL DEFAULT '',
	message         TEXT NOT NULL DEFAULT '',
	link            TEXT NOT NULL DEFAULT '',
	created_at      TEXT NOT NULL,
	status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'expired')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_at         TEXT NOT NULL,
	last_error      TEXT NOT NULL DEFAULT '',
	delivered_at    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_pending ON events(next_at, id) WHERE status = 'pending';

-- A notification resent with the same X-EXTERNAL-ID is a duplicate too.
-- Rows received before this rule that share an
-- X-EXTERNAL-ID keep it on the first of them only, so that the index can
-- be built; their bodies and dedup keys are kept.
UPDATE notifications SET external_id = ''
	WHERE external_id != ''
	AND id NOT IN (SELECT min(id) FROM notifications WHERE external_id != '' GROUP BY external_id);
CREATE UNIQUE INDEX notifications_external_id ON notifications(external_id) WHERE external_id != '';
