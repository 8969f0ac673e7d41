-- The state of one ddctl configuration: runs, what DOKU said about the
-- payments that refunds refer to, refunds, and the operation journal.

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE runs (
	id          INTEGER PRIMARY KEY,
	command     TEXT NOT NULL,
	started_at  TEXT NOT NULL,
	finished_at TEXT NOT NULL DEFAULT '',
	status      TEXT NOT NULL DEFAULT 'running',
	spec_digest TEXT NOT NULL DEFAULT '',
	git_commit  TEXT NOT NULL DEFAULT '',
	user        TEXT NOT NULL DEFAULT '',
	host        TEXT NOT NULL DEFAULT '',
	pid         INTEGER NOT NULL DEFAULT 0
);

-- A payment as the last status inquiry described it, so that apply and
-- later plans need not ask again (README.md, "How it works").
CREATE TABLE payments (
	partner_reference_no TEXT PRIMARY KEY,
	reference_no         TEXT NOT NULL DEFAULT '',
	status               TEXT NOT NULL,
	amount               INTEGER NOT NULL,
	checked_at           TEXT NOT NULL
);

-- The refunds of a payment that DOKU listed, or that ddctl made since.
CREATE TABLE payment_refunds (
	partner_reference_no TEXT NOT NULL REFERENCES payments(partner_reference_no) ON DELETE CASCADE,
	partner_refund_no    TEXT NOT NULL,
	refund_no            TEXT NOT NULL DEFAULT '',
	amount               INTEGER NOT NULL,
	PRIMARY KEY (partner_reference_no, partner_refund_no)
);

CREATE TABLE refunds (
	address           TEXT PRIMARY KEY,
	payment           TEXT NOT NULL,
	amount            INTEGER NOT NULL,
	partner_refund_no TEXT NOT NULL UNIQUE,
	status            TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
	refund_no         TEXT NOT NULL DEFAULT '',
	snap_code         TEXT NOT NULL DEFAULT '',
	message           TEXT NOT NULL DEFAULT '',
	created_at        TEXT NOT NULL,
	updated_at        TEXT NOT NULL
);

-- The journal: one row per request that may change something at DOKU,
-- written as an intent before the request is sent.
CREATE TABLE operations (
	id              INTEGER PRIMARY KEY,
	run_id          INTEGER NOT NULL REFERENCES runs(id),
	address         TEXT NOT NULL,
	kind            TEXT NOT NULL,
	idempotency_key TEXT NOT NULL,
	external_id     TEXT NOT NULL,
	request         BLOB NOT NULL,
	status          TEXT NOT NULL CHECK (status IN ('intent', 'succeeded', 'failed', 'unknown', 'not_received')),
	http_status     INTEGER NOT NULL DEFAULT 0,
	snap_code       TEXT NOT NULL DEFAULT '',
	message         TEXT NOT NULL DEFAULT '',
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL
);
CREATE INDEX operations_address ON operations(address);
CREATE INDEX operations_open ON operations(status) WHERE status IN ('intent', 'unknown');
