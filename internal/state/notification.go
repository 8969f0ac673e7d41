package state

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Notification is one HTTP notification from DOKU as received: the daemon
// records it before answering, so none is lost, and processes it later
// (DESIGN.md, "The daemon").
type Notification struct {
	ID          int64
	ExternalID  string // X-EXTERNAL-ID
	DedupKey    string // one per distinct notification; a resend has the same
	Body        []byte
	ReceivedAt  time.Time
	ProcessedAt time.Time // zero until processed
}

type notificationRow struct {
	ID          int64  `db:"id"`
	ExternalID  string `db:"external_id"`
	DedupKey    string `db:"dedup_key"`
	Body        []byte `db:"body"`
	ReceivedAt  string `db:"received_at"`
	ProcessedAt string `db:"processed_at"`
}

// RecordNotification adds a notification to the inbox. A notification
// whose dedupKey is already there, or whose externalID (X-EXTERNAL-ID,
// when not empty) is, is not added again (SNAP-ALLO.md §8.3): inserted is
// false and err nil, so a resend is answered as the first one was.
//
// It does not bump the serial: receiving a notification changes no plan's
// decisions until it is processed, which changes charges under the state
// lock and bumps it then. So the daemon's inbox does not make a saved
// plan stale.
func (s *Store) RecordNotification(ctx context.Context, externalID, dedupKey string, body []byte, now time.Time) (inserted bool, err error) {
	if body == nil {
		body = []byte{}
	}
	err = s.writeCache(ctx, func(tx *sqlx.Tx) error {
		// With no conflict target, DO NOTHING covers every uniqueness
		// constraint: dedup_key and the partial index on external_id.
		res, err := tx.ExecContext(ctx, `INSERT INTO notifications (external_id, dedup_key, body, received_at)
			VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, externalID, dedupKey, body, timeText(now))
		if err != nil {
			return fmt.Errorf("record notification %s: %w", dedupKey, formatError(err))
		}
		n, err := res.RowsAffected()
		inserted = n == 1
		return err
	})
	return inserted && err == nil, err
}

// PendingNotifications lists the notifications not yet processed, oldest
// first.
func (s *Store) PendingNotifications(ctx context.Context) ([]Notification, error) {
	var rows []notificationRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT * FROM notifications WHERE processed_at = '' ORDER BY id`); err != nil {
		return nil, formatError(err)
	}
	out := make([]Notification, len(rows))
	for i, r := range rows {
		out[i] = Notification{ID: r.ID, ExternalID: r.ExternalID, DedupKey: r.DedupKey, Body: r.Body,
			ReceivedAt: parseTime(r.ReceivedAt), ProcessedAt: parseTime(r.ProcessedAt)}
	}
	return out, nil
}

// PendingNotificationCount is the number of notifications not yet
// processed.
func (s *Store) PendingNotificationCount(ctx context.Context) (int, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM notifications WHERE processed_at = ''`); err != nil {
		return 0, fmt.Errorf("count pending notifications: %w", formatError(err))
	}
	return n, nil
}

// MarkNotificationProcessed records that the notification id was
// processed. Marking one already processed changes nothing; an unknown id
// is an error.
func (s *Store) MarkNotificationProcessed(ctx context.Context, id int64, now time.Time) error {
	return s.writeCache(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE notifications SET processed_at = CASE WHEN processed_at = '' THEN ? ELSE processed_at END
			WHERE id = ?`, timeText(now), id)
		if err != nil {
			return fmt.Errorf("mark notification %d processed: %w", id, formatError(err))
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("mark notification %d processed: no such notification", id)
		}
		return nil
	})
}
