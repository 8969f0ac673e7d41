package state

import (
	"context"
	"database/sql"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/ddctl/ddctl/internal/money"
)

// EventType names a status change the merchant's system is told about by
// the daemon's webhook (README.md, "How it works": the OTP/PIN link "is
// emitted as an event").
type EventType string

// Event types. Each is recorded when an entry's status changes into the
// one it names, never when a status is written again, so a replay or a
// duplicate notification gives one event.
const (
	// EventChargeAwaitingCustomer: DOKU returned the customer's OTP/PIN
	// link (Event.Link).
	EventChargeAwaitingCustomer EventType = "charge.awaiting_customer"
	// EventChargeSucceeded: the customer paid.
	EventChargeSucceeded EventType = "charge.succeeded"
	// EventChargeFailed: the attempt failed or expired, or was deferred
	// for want of balance with no request sent.
	EventChargeFailed EventType = "charge.failed"
	// EventRefundSucceeded: DOKU refunded it.
	EventRefundSucceeded EventType = "refund.succeeded"
	// EventRefundFailed: DOKU refused the refund for good.
	EventRefundFailed EventType = "refund.failed"
	// EventBindingActive: the customer confirmed the binding.
	EventBindingActive EventType = "binding.active"
	// EventBindingRemoved: the binding was unbound.
	EventBindingRemoved EventType = "binding.removed"
)

func (t EventType) String() string { return string(t) }

// EventStatus is where an event's delivery stands.
type EventStatus string

// Event statuses.
const (
	// EventPending: not delivered yet; PendingEvents offers it from NextAt.
	EventPending EventStatus = "pending"
	// EventDelivered: the webhook acknowledged it.
	EventDelivered EventStatus = "delivered"
	// EventExpired: given up on (ExpireEvents): never offered again.
	EventExpired EventStatus = "expired"
)

func (s EventStatus) String() string { return string(s) }

// Event is one row of the outbox: a status change, written in the
// transaction that made it, waiting for delivery to the webhook. It holds
// no secret (no authCode, no token) and no phone number.
type Event struct {
	ID          int64
	Type        EventType
	Address     string    // the charge, refund or binding address
	Occurrence  time.Time // a charge's occurrence (UTC); zero for others
	Key         string    // partnerReferenceNo or partnerRefundNo; empty for bindings
	Amount      money.Amount
	ReferenceNo string // DOKU's id: payment, refund or binding reference
	SNAPCode    string
	Message     string
	Link        string // the customer's OTP/PIN link (charge.awaiting_customer)
	CreatedAt   time.Time
	Status      EventStatus
	Attempts    int       // delivery attempts so far, successful or not
	NextAt      time.Time // when it is next offered for delivery
	LastError   string    // why the last attempt failed
	DeliveredAt time.Time // zero until delivered
}

type eventRow struct {
	ID          int64  `db:"id"`
	Type        string `db:"type"`
	Address     string `db:"address"`
	Occurrence  string `db:"occurrence"`
	Key         string `db:"idempotency_key"`
	Amount      int64  `db:"amount"`
	ReferenceNo string `db:"reference_no"`
	SNAPCode    string `db:"snap_code"`
	Message     string `db:"message"`
	Link        string `db:"link"`
	CreatedAt   string `db:"created_at"`
	Status      string `db:"status"`
	Attempts    int    `db:"attempts"`
	NextAt      string `db:"next_at"`
	LastError   string `db:"last_error"`
	DeliveredAt string `db:"delivered_at"`
}

func (r eventRow) event() Event {
	return Event{ID: r.ID, Type: EventType(r.Type), Address: r.Address, Occurrence: parseTime(r.Occurrence), Key: r.Key,
		Amount: money.Amount(r.Amount), ReferenceNo: r.ReferenceNo, SNAPCode: r.SNAPCode, Message: r.Message, Link: r.Link,
		CreatedAt: parseTime(r.CreatedAt), Status: EventStatus(r.Status), Attempts: r.Attempts, NextAt: parseTime(r.NextAt),
		LastError: r.LastError, DeliveredAt: parseTime(r.DeliveredAt)}
}

// recordEvent adds e to the outbox inside tx, the transaction that made
// the change it reports, due for delivery at once. occurrence is the
// charge row's own occurrence text, empty for others.
func recordEvent(ctx context.Context, tx *sqlx.Tx, e Event, occurrence string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO events (type, address, occurrence, idempotency_key, amount, reference_no,
			snap_code, message, link, created_at, next_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		string(e.Type), e.Address, occurrence, e.Key, int64(e.Amount), e.ReferenceNo,
		e.SNAPCode, e.Message, e.Link, instantText(now), instantText(now))
	if err != nil {
		return fmt.Errorf("record event %s for %s: %w", e.Type, e.Address, formatError(err))
	}
	return nil
}

// chargeEventType is the event a charge attempt entering status gives,
// if any.
func chargeEventType(status string) (EventType, bool) {
	switch ChargeStatus(status) {
	case ChargeAwaitingCustomer:
		return EventChargeAwaitingCustomer, true
	case ChargeSucceeded:
		return EventChargeSucceeded, true
	case ChargeFailed, ChargeExpired:
		return EventChargeFailed, true
	}
	return "", false
}

// recordChargeEvent records the event of a charge attempt that moved from
// status before ("" if new) to the row's: only when the move gives
// another event than before's did, so failed → expired (both
// charge.failed) and a rewrite of one status give none.
func recordChargeEvent(ctx context.Context, tx *sqlx.Tx, before string, c chargeRow, now time.Time) error {
	typ, ok := chargeEventType(c.Status)
	if !ok {
		return nil
	}
	if was, _ := chargeEventType(before); before != "" && was == typ {
		return nil
	}
	e := Event{Type: typ, Address: c.Address, Key: c.PartnerReferenceNo, Amount: money.Amount(c.Amount),
		ReferenceNo: c.ReferenceNo, SNAPCode: c.SNAPCode, Message: c.Message}
	if typ == EventChargeAwaitingCustomer {
		e.Link = c.WebRedirectURL
	}
	return recordEvent(ctx, tx, e, c.Occurrence, now)
}

// recordRefundEvent records the event of a refund whose status moved from
// before ("" if new) to after's, if after's is an outcome.
func recordRefundEvent(ctx context.Context, tx *sqlx.Tx, before string, after refundRow, now time.Time) error {
	if after.Status == before {
		return nil
	}
	var typ EventType
	switch RefundStatus(after.Status) {
	case RefundSucceeded:
		typ = EventRefundSucceeded
	case RefundFailed:
		typ = EventRefundFailed
	default:
		return nil
	}
	return recordEvent(ctx, tx, Event{Type: typ, Address: after.Address, Key: after.PartnerRefundNo,
		Amount: money.Amount(after.Amount), ReferenceNo: after.RefundNo, SNAPCode: after.SNAPCode, Message: after.Message}, "", now)
}

// recordBindingEvent records the event of a binding whose status moved
// from before ("" if new) to after. It carries the address and DOKU's
// reference only: never the authCode, a token or the phone number
// (principle 5, docs/principles.md).
func recordBindingEvent(ctx context.Context, tx *sqlx.Tx, before string, b Binding, now time.Time) error {
	if string(b.Status) == before {
		return nil
	}
	var typ EventType
	switch b.Status {
	case BindingActive:
		typ = EventBindingActive
	case BindingUnbound:
		typ = EventBindingRemoved
	default:
		return nil
	}
	return recordEvent(ctx, tx, Event{Type: typ, Address: b.Address, ReferenceNo: b.ReferenceNo}, "", now)
}

// PendingEvents lists up to limit events due for delivery at now (pending,
// NextAt not after now), oldest first; all of them if limit <= 0.
func (s *Store) PendingEvents(ctx context.Context, now time.Time, limit int) ([]Event, error) {
	return s.events(ctx, `SELECT * FROM events WHERE status = 'pending' AND next_at <= ? ORDER BY id LIMIT ?`,
		instantText(now), sqlLimit(limit))
}

// Events lists up to limit events of any status whose ID is above afterID,
// in order; all of them if limit <= 0. It is for inspection and tests.
func (s *Store) Events(ctx context.Context, afterID int64, limit int) ([]Event, error) {
	return s.events(ctx, `SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?`, afterID, sqlLimit(limit))
}

// sqlLimit is limit for a LIMIT clause, where a negative one means none.
func sqlLimit(limit int) int {
	if limit <= 0 {
		return -1
	}
	return limit
}

func (s *Store) events(ctx context.Context, query string, args ...any) ([]Event, error) {
	var rows []eventRow
	if err := s.db.SelectContext(ctx, &rows, query, args...); err != nil {
		return nil, fmt.Errorf("read events: %w", formatError(err))
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[i] = r.event()
	}
	return out, nil
}

// MarkEventDelivered records that the webhook acknowledged event id at
// now, counting the attempt. An event already delivered keeps its first
// delivery time; an expired one that was delivered after all is marked
// delivered. An unknown id is an error. Like every outbox write, it
// leaves the serial alone: no plan depends on it.
func (s *Store) MarkEventDelivered(ctx context.Context, id int64, now time.Time) error {
	return s.writeCache(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE events SET status = 'delivered', attempts = attempts + 1, delivered_at = ?
			WHERE id = ? AND status != 'delivered'`, instantText(now), id)
		if err != nil {
			return fmt.Errorf("mark event %d delivered: %w", id, formatError(err))
		}
		return eventExists(ctx, tx, res, id, fmt.Sprintf("mark event %d delivered", id))
	})
}

// MaxEventError is the longest LastError kept, in bytes.
const MaxEventError = 1024

// MarkEventFailed records a failed delivery of a pending event: attempts
// plus one, errText (cut to MaxEventError bytes) as LastError, and next as
// the time it is offered again. An event no longer pending (delivered or
// expired meanwhile) is left as it is; an unknown id is an error.
func (s *Store) MarkEventFailed(ctx context.Context, id int64, errText string, next time.Time) error {
	errText = truncateUTF8(errText, MaxEventError)
	return s.writeCache(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE events SET attempts = attempts + 1, last_error = ?, next_at = ?
			WHERE id = ? AND status = 'pending'`, errText, instantText(next), id)
		if err != nil {
			return fmt.Errorf("mark event %d failed: %w", id, formatError(err))
		}
		return eventExists(ctx, tx, res, id, fmt.Sprintf("mark event %d failed", id))
	})
}

// eventExists returns nil if the update res changed a row or event id
// exists, and an error saying what failed otherwise.
func eventExists(ctx context.Context, tx *sqlx.Tx, res sql.Result, id int64, what string) error {
	n, err := res.RowsAffected()
	if err != nil || n > 0 {
		return err
	}
	var found int
	if err := tx.GetContext(ctx, &found, `SELECT count(*) FROM events WHERE id = ?`, id); err != nil {
		return formatError(err)
	}
	if found == 0 {
		return fmt.Errorf("%s: no such event", what)
	}
	return nil
}

// truncateUTF8 cuts s to at most n bytes, not inside a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ExpireEvents gives up on the pending events created before
// createdBefore: they become expired and are never offered again. It
// returns how many it expired.
func (s *Store) ExpireEvents(ctx context.Context, createdBefore time.Time) (int, error) {
	var n int64
	err := s.writeCache(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE events SET status = 'expired' WHERE status = 'pending' AND created_at < ?`,
			instantText(createdBefore))
		if err != nil {
			return fmt.Errorf("expire events: %w", formatError(err))
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}
