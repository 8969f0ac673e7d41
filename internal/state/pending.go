package state

import (
	"context"
	"fmt"
)

// PendingCounts counts what waits to be settled, for the daemon's health
// and metrics. Every key is present, 0 when nothing waits:
//
//   - "charge": charge attempts pending or awaiting the customer;
//   - "refund": refunds pending;
//   - "binding": bindings pending;
//   - "operation": open operations (intent or unknown, as OpenOperations);
//   - "notification": notifications not yet processed;
//   - "event": events not yet delivered nor expired.
func (s *Store) PendingCounts(ctx context.Context) (map[string]int, error) {
	var c struct {
		Charge       int `db:"charge"`
		Refund       int `db:"refund"`
		Binding      int `db:"binding"`
		Operation    int `db:"operation"`
		Notification int `db:"notification"`
		Event        int `db:"event"`
	}
	err := s.db.GetContext(ctx, &c, `SELECT
		(SELECT count(*) FROM charges WHERE status IN ('pending', 'awaiting_customer')) AS charge,
		(SELECT count(*) FROM refunds WHERE status = 'pending') AS refund,
		(SELECT count(*) FROM bindings WHERE status = 'pending') AS binding,
		(SELECT count(*) FROM operations WHERE status IN ('intent', 'unknown')) AS operation,
		(SELECT count(*) FROM notifications WHERE processed_at = '') AS notification,
		(SELECT count(*) FROM events WHERE status = 'pending') AS event`)
	if err != nil {
		return nil, fmt.Errorf("count pending: %w", formatError(err))
	}
	return map[string]int{"charge": c.Charge, "refund": c.Refund, "binding": c.Binding,
		"operation": c.Operation, "notification": c.Notification, "event": c.Event}, nil
}
