package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ddctl/ddctl/internal/money"
)

// OpStatus is where a journalled request stands.
type OpStatus string

// Operation statuses. Intent and unknown are open: the resolver settles
// them before anything new is sent (README.md, "How it works").
const (
	OpIntent      OpStatus = "intent"       // committed before sending; no outcome recorded
	OpSucceeded   OpStatus = "succeeded"    // DOKU did it
	OpFailed      OpStatus = "failed"       // DOKU refused it for good
	OpUnknown     OpStatus = "unknown"      // sent; the outcome could not be read
	OpNotReceived OpStatus = "not_received" // an inquiry found that DOKU has no record of it
)

func (s OpStatus) String() string { return string(s) }

// Open reports whether the operation's outcome is still unsettled.
func (s OpStatus) Open() bool { return s == OpIntent || s == OpUnknown }

// Kinds of operation. The column is free text, so a new kind needs no
// migration.
const (
	KindRefund = "refund"
	KindCharge = "charge"
	KindBind   = "bind"
	KindUnbind = "unbind"
	// KindImport journals `ddctl import`: a binding made elsewhere, adopted
	// after one customer-token exchange. It sends nothing of its own.
	KindImport = "import"
)

// Operation is one journalled request.
type Operation struct {
	ID             int64
	RunID          int64
	Address        string
	Kind           string
	IdempotencyKey string       // partnerRefundNo
	ExternalID     string       // X-EXTERNAL-ID
	Request        []byte       // the request body as sent
	Amount         money.Amount // what a refund or charge asked to move; 0 for other kinds
	Status         OpStatus
	HTTPStatus     int
	SNAPCode       string
	Message        string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

type operationRow struct {
	ID             int64  `db:"id"`
	RunID          int64  `db:"run_id"`
	Address        string `db:"address"`
	Kind           string `db:"kind"`
	IdempotencyKey string `db:"idempotency_key"`
	ExternalID     string `db:"external_id"`
	Request        []byte `db:"request"`
	Amount         int64  `db:"amount"`
	Status         string `db:"status"`
	HTTPStatus     int    `db:"http_status"`
	SNAPCode       string `db:"snap_code"`
	Message        string `db:"message"`
	CreatedAt      string `db:"created_at"`
	UpdatedAt      string `db:"updated_at"`
}

func (r operationRow) operation() Operation {
	return Operation{ID: r.ID, RunID: r.RunID, Address: r.Address, Kind: r.Kind, IdempotencyKey: r.IdempotencyKey,
		ExternalID: r.ExternalID, Request: r.Request, Amount: money.Amount(r.Amount), Status: OpStatus(r.Status), HTTPStatus: r.HTTPStatus,
		SNAPCode: r.SNAPCode, Message: r.Message, CreatedAt: parseTime(r.CreatedAt), UpdatedAt: parseTime(r.UpdatedAt)}
}

// ErrOperationOpen is returned by RecordRefundIntent when the address
// already has an operation whose outcome is not settled: sending another
// request could move money twice.
var ErrOperationOpen = errors.New("an earlier operation for this address has no settled outcome")

// ErrRefundSucceeded is returned by RecordRefundIntent when the refund
// already succeeded.
var ErrRefundSucceeded = errors.New("the refund already succeeded")

// ErrRefundFailed is returned by RecordRefundIntent when DOKU refused the
// refund for good: ddctl does not send it again on its own.
var ErrRefundFailed = errors.New("DOKU refused the refund for good")

// RecordRefundIntent journals a refund request before it is sent, in one
// transaction with the refund's row (created, or set back to pending). It
// refuses with ErrOperationOpen, ErrRefundSucceeded or ErrRefundFailed
// rather than let a second request go out. It returns the operation's ID.
func (s *Store) RecordRefundIntent(ctx context.Context, op Operation, r Refund, now time.Time) (int64, error) {
	var id int64
	err := s.write(ctx, func(tx *sqlx.Tx) error {
		var open int
		if err := tx.GetContext(ctx, &open, `SELECT count(*) FROM operations WHERE address = ? AND status IN ('intent', 'unknown')`, op.Address); err != nil {
			return formatError(err)
		}
		if open > 0 {
			return fmt.Errorf("record intent %s: %w", op.Address, ErrOperationOpen)
		}
		var have refundRow
		err := tx.GetContext(ctx, &have, `SELECT * FROM refunds WHERE address = ?`, r.Address)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO refunds (address, payment, amount, partner_refund_no, status, created_at, updated_at)
				VALUES (?, ?, ?, ?, 'pending', ?, ?)`,
				r.Address, r.Payment, int64(r.Amount), r.PartnerRefundNo, timeText(now), timeText(now)); err != nil {
				return formatError(err)
			}
		case err != nil:
			return formatError(err)
		case have.Status == string(RefundSucceeded):
			return fmt.Errorf("record intent %s: %w", op.Address, ErrRefundSucceeded)
		case have.Status == string(RefundFailed):
			return fmt.Errorf("record intent %s: %w", op.Address, ErrRefundFailed)
		case have.PartnerRefundNo != r.PartnerRefundNo || have.Payment != r.Payment || have.Amount != int64(r.Amount):
			// A pending refund is sent again exactly as it was first sent.
			return fmt.Errorf("record intent %s: pending refund of %s under key %s differs from this request", op.Address, have.Payment, have.PartnerRefundNo)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO operations (run_id, address, kind, idempotency_key, external_id, request, amount, status, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, 'intent', ?, ?)`,
			op.RunID, op.Address, KindRefund, op.IdempotencyKey, op.ExternalID, op.Request, int64(r.Amount), timeText(now), timeText(now))
		if err != nil {
			return formatError(err)
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// Outcome is what became of a journalled request.
type Outcome struct {
	Status     OpStatus
	HTTPStatus int
	SNAPCode   string
	Message    string
	RefundNo   string // DOKU's refund id, on success
}

// RecordRefundOutcome settles a refund operation and its refund in one
// transaction. On success the refund also joins the payment's known
// refunds, so later plans need not ask DOKU. Only an open operation is
// settled, and a refund that succeeded stays succeeded: a late answer to
// one request cannot undo what another established. When the refund's
// status becomes succeeded or failed, a refund.succeeded or refund.failed
// event joins the outbox in the same transaction.
func (s *Store) RecordRefundOutcome(ctx context.Context, opID int64, o Outcome, now time.Time) error {
	return s.write(ctx, func(tx *sqlx.Tx) error {
		var op operationRow
		if err := tx.GetContext(ctx, &op, `SELECT * FROM operations WHERE id = ?`, opID); err != nil {
			return fmt.Errorf("record outcome of operation %d: %w", opID, formatError(err))
		}
		if !OpStatus(op.Status).Open() {
			return fmt.Errorf("record outcome of operation %d: it is already %s", opID, op.Status)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE operations SET status = ?, http_status = ?, snap_code = ?, message = ?, updated_at = ? WHERE id = ?`,
			o.Status, o.HTTPStatus, o.SNAPCode, o.Message, timeText(now), opID); err != nil {
			return formatError(err)
		}
		refundStatus := RefundPending
		switch o.Status {
		case OpSucceeded:
			refundStatus = RefundSucceeded
		case OpFailed:
			refundStatus = RefundFailed
		}
		before, _, err := refundAt(ctx, tx, op.Address)
		if err != nil {
			return fmt.Errorf("record outcome of operation %d: %w", opID, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refunds SET status = ?, refund_no = CASE WHEN ? != '' THEN ? ELSE refund_no END,
			snap_code = ?, message = ?, updated_at = ? WHERE address = ? AND status != 'succeeded'`,
			refundStatus, o.RefundNo, o.RefundNo, o.SNAPCode, o.Message, timeText(now), op.Address); err != nil {
			return formatError(err)
		}
		r, ok, err := refundAt(ctx, tx, op.Address)
		if err != nil {
			return fmt.Errorf("record outcome of operation %d: %w", opID, err)
		}
		if ok {
			if err := recordRefundEvent(ctx, tx, before.Status, r, now); err != nil {
				return err
			}
		}
		if o.Status != OpSucceeded {
			return nil
		}
		if !ok {
			return fmt.Errorf("record outcome of operation %d: %w", opID, sql.ErrNoRows)
		}
		return putPaymentRefund(ctx, tx, r.Payment, PaymentRefund{PartnerRefundNo: r.PartnerRefundNo, RefundNo: o.RefundNo, Amount: money.Amount(r.Amount)})
	})
}

// OpenOperations lists the operations whose outcome is unsettled, oldest
// first.
func (s *Store) OpenOperations(ctx context.Context) ([]Operation, error) {
	return s.operations(ctx, `SELECT * FROM operations WHERE status IN ('intent', 'unknown') ORDER BY id`)
}

// Operations lists the journal of an address, oldest first; all of it when
// address is empty.
func (s *Store) Operations(ctx context.Context, address string) ([]Operation, error) {
	if address == "" {
		return s.operations(ctx, `SELECT * FROM operations ORDER BY id`)
	}
	return s.operations(ctx, `SELECT * FROM operations WHERE address = ? ORDER BY id`, address)
}

func (s *Store) operations(ctx context.Context, query string, args ...any) ([]Operation, error) {
	var rows []operationRow
	if err := s.db.SelectContext(ctx, &rows, query, args...); err != nil {
		return nil, formatError(err)
	}
	out := make([]Operation, len(rows))
	for i, r := range rows {
		out[i] = r.operation()
	}
	return out, nil
}

// RecordIntent journals a request of any kind before it is sent, refusing
// with ErrOperationOpen while the address has an unsettled operation.
// Refunds use RecordRefundIntent, which also keeps the refund's row.
func (s *Store) RecordIntent(ctx context.Context, op Operation, now time.Time) (int64, error) {
	var id int64
	err := s.write(ctx, func(tx *sqlx.Tx) error {
		var open int
		if err := tx.GetContext(ctx, &open, `SELECT count(*) FROM operations WHERE address = ? AND status IN ('intent', 'unknown')`, op.Address); err != nil {
			return formatError(err)
		}
		if open > 0 {
			return fmt.Errorf("record intent %s: %w", op.Address, ErrOperationOpen)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO operations (run_id, address, kind, idempotency_key, external_id, request, amount, status, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, 'intent', ?, ?)`,
			op.RunID, op.Address, op.Kind, op.IdempotencyKey, op.ExternalID, op.Request, int64(op.Amount), timeText(now), timeText(now))
		if err != nil {
			return formatError(err)
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// RecordOutcome settles an open operation of any kind; the caller keeps
// the entry's own row (PutBinding and the like) in step.
func (s *Store) RecordOutcome(ctx context.Context, opID int64, o Outcome, now time.Time) error {
	return s.write(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE operations SET status = ?, http_status = ?, snap_code = ?, message = ?, updated_at = ?
			WHERE id = ? AND status IN ('intent', 'unknown')`,
			o.Status, o.HTTPStatus, o.SNAPCode, o.Message, timeText(now), opID)
		if err != nil {
			return formatError(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("record outcome of operation %d: it is not open", opID)
		}
		return nil
	})
}

// Spent sums what the refund and charge requests journalled at or after
// since asked to move, by kind: the amounts settings.limits caps per day.
// Requests DOKU refused for good or never received moved nothing and are
// left out; those whose outcome is open count, as they may have moved
// money.
func (s *Store) Spent(ctx context.Context, since time.Time) (refunds, charges money.Amount, err error) {
	var rows []struct {
		Kind      string `db:"kind"`
		Amount    int64  `db:"amount"`
		CreatedAt string `db:"created_at"`
	}
	// created_at is RFC 3339 text, which sorts as time does to the second:
	// the query takes a second more, and the times are compared here.
	err = s.db.SelectContext(ctx, &rows, `SELECT kind, amount, created_at FROM operations
		WHERE kind IN ('refund', 'charge') AND created_at >= ? AND status NOT IN ('failed', 'not_received')`,
		timeText(since.Add(-time.Second).Truncate(time.Second)))
	if err != nil {
		return 0, 0, formatError(err)
	}
	for _, r := range rows {
		if parseTime(r.CreatedAt).Before(since) {
			continue
		}
		if r.Kind == KindRefund {
			refunds += money.Amount(r.Amount)
		} else {
			charges += money.Amount(r.Amount)
		}
	}
	return refunds, charges, nil
}
