package state

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Notification is one HTTP notification from DOKU as received: the daemon
// records it before answering, so none is lost, and processes it later
// (README.md, "The daemon").
type Notification struct {
	ID         int64
	ExternalID string // X-EXTERNAL-ID
	DedupKey   string // one per distinct notification; a resend has the same
	Body       []byte
	// Signed: its X-SIGNATURE was verified on receipt. A notification
	// taken on its bearer token alone never settles money by itself.
	Signed      bool
	ReceivedAt  time.Time
	ProcessedAt time.Time // zero until processed
}

// Recorded is what RecordNotification did with a notification.
type Recorded int

const (
	// NotificationRecorded: it is in the inbox, to be processed.
	NotificationRecorded Recorded = iota + 1
	// NotificationDuplicate: the same notification (its dedup key) was
	// recorded before, on any day; answered as the first one was.
	NotificationDuplicate
	// NotificationIDConflict: another notification received the same day
	// has its X-EXTERNAL-ID, which SNAP makes unique per day. It is not
	// recorded; the caller logs it. What it reports, the periodic
	// reconcile learns from DOKU anyway.
	NotificationIDConflict
)

func (r Recorded) String() string {
	switch r {
	case NotificationRecorded:
		return "accepted"
	case NotificationDuplicate:
		return "duplicate"
	case NotificationIDConflict:
		return "conflict"
	}
	return fmt.Sprintf("Recorded(%d)", int(r))
}

// jakarta is the zone of SNAP's days: X-EXTERNAL-ID is unique per day.
var jakarta = time.FixedZone("WIB", 7*60*60)

type notificationRow struct {
	ID          int64  `db:"id"`
	ExternalID  string `db:"external_id"`
	ExternalDay string `db:"external_day"`
	DedupKey    string `db:"dedup_key"`
	Body        []byte `db:"body"`
	Signed      bool   `db:"signed"`
	ReceivedAt  string `db:"received_at"`
	ProcessedAt string `db:"processed_at"`
}

// RecordNotification adds n to the inbox (its ID, ReceivedAt and
// ProcessedAt are ignored). A notification whose dedup key is already
// there is a duplicate, on any day; one whose
// X-EXTERNAL-ID another notification received the same day (Asia/Jakarta)
// has is a conflict. Neither is added; err is nil, so a resend is answered
// as the first one was.
//
// It does not bump the serial: receiving a notification changes no plan's
// decisions until it is processed, which changes charges under the state
// lock and bumps it then. So the daemon's inbox does not make a saved
// plan stale.
func (s *Store) RecordNotification(ctx context.Context, n Notification, now time.Time) (Recorded, error) {
	if n.Body == nil {
		n.Body = []byte{}
	}
	day := ""
	if n.ExternalID != "" {
		day = now.In(jakarta).Format(time.DateOnly)
	}
	var got Recorded
	err := s.writeCache(ctx, func(tx *sqlx.Tx) error {
		// With no conflict target, DO NOTHING covers every uniqueness
		// constraint: dedup_key and the partial index on external_id and
		// its day.
		res, err := tx.ExecContext(ctx, `INSERT INTO notifications (external_id, external_day, dedup_key, body, signed, received_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, n.ExternalID, day, n.DedupKey, n.Body, n.Signed, timeText(now))
		if err != nil {
			return fmt.Errorf("record notification %s: %w", n.DedupKey, formatError(err))
		}
		if k, err := res.RowsAffected(); err != nil {
			return err
		} else if k == 1 {
			got = NotificationRecorded
			return nil
		}
		var dup int
		if err := tx.GetContext(ctx, &dup, `SELECT count(*) FROM notifications WHERE dedup_key = ?`, n.DedupKey); err != nil {
			return fmt.Errorf("record notification %s: %w", n.DedupKey, formatError(err))
		}
		got = NotificationDuplicate
		if dup == 0 {
			got = NotificationIDConflict
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return got, nil
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
		out[i] = Notification{ID: r.ID, ExternalID: r.ExternalID, DedupKey: r.DedupKey, Body: r.Body, Signed: r.Signed,
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
