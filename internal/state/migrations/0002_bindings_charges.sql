-- Bindings, charges, the notification inbox and the cached access token.
-- Secret columns hold version ‖ nonce ‖ AES-256-GCM ciphertext (cipher.go),
-- or NULL when there is no secret.

-- A customer's Allo Bank account binding (README.md, "How it works").
CREATE TABLE bindings (
	address          TEXT PRIMARY KEY,
	customer_id      TEXT NOT NULL,
	phone            TEXT NOT NULL DEFAULT '',
	status           TEXT NOT NULL CHECK (status IN ('pending', 'active', 'failed', 'unbound')),
	reference_no     TEXT NOT NULL DEFAULT '',
	redirect_url     TEXT NOT NULL DEFAULT '',
	auth_code        BLOB,
	customer_token   BLOB,
	token_expires_at TEXT NOT NULL DEFAULT '',
	created_at       TEXT NOT NULL,
	updated_at       TEXT NOT NULL
);
-- A customer has at most one binding that is not unbound.
CREATE UNIQUE INDEX bindings_customer ON bindings(customer_id) WHERE status != 'unbound';

-- One row per attempt at one occurrence of a charge.
CREATE TABLE charges (
	address              TEXT NOT NULL,
	occurrence           TEXT NOT NULL,
	attempt              INTEGER NOT NULL,
	partner_reference_no TEXT NOT NULL UNIQUE,
	amount               INTEGER NOT NULL,
	binding_address      TEXT NOT NULL,
	status               TEXT NOT NULL CHECK (status IN ('pending', 'awaiting_customer', 'succeeded', 'failed', 'expired', 'deferred')),
	reference_no         TEXT NOT NULL DEFAULT '',
	web_redirect_url     TEXT NOT NULL DEFAULT '',
	snap_code            TEXT NOT NULL DEFAULT '',
	message              TEXT NOT NULL DEFAULT '',
	next_attempt_at      TEXT NOT NULL DEFAULT '',
	created_at           TEXT NOT NULL,
	updated_at           TEXT NOT NULL,
	PRIMARY KEY (address, occurrence, attempt)
);

-- The durable inbox: a notification is recorded before it is answered,
-- once per dedup_key, and processed later.
CREATE TABLE notifications (
	id           INTEGER PRIMARY KEY,
	external_id  TEXT NOT NULL DEFAULT '',
	dedup_key    TEXT NOT NULL UNIQUE,
	body         BLOB NOT NULL,
	received_at  TEXT NOT NULL,
	processed_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX notifications_pending ON notifications(id) WHERE processed_at = '';

-- Cached access tokens (B2B), kept until they expire (principle 3, docs/principles.md).
CREATE TABLE tokens (
	name       TEXT PRIMARY KEY,
	token      BLOB NOT NULL,
	expires_at TEXT NOT NULL
);
