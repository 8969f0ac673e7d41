-- Whether a notification's X-SIGNATURE was verified when it was received.
-- One taken on its bearer token alone (token-only mode, or a signature
-- made optional) never settles money by itself: "paid" is confirmed by
-- status inquiry first. Rows from before this column count as unsigned.
ALTER TABLE notifications ADD COLUMN signed INTEGER NOT NULL DEFAULT 0;

-- X-EXTERNAL-ID is unique per day (Asia/Jakarta), not for all time: a
-- distinct notification may reuse an earlier day's. A resend of the same
-- notification is still caught by dedup_key, on any day.
ALTER TABLE notifications ADD COLUMN external_day TEXT NOT NULL DEFAULT '';
UPDATE notifications SET external_day = date(received_at, '+7 hours') WHERE external_id != '';
DROP INDEX notifications_external_id;
CREATE UNIQUE INDEX notifications_external_id ON notifications(external_id, external_day) WHERE external_id != '';
