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

// RefundStatus is where a refund stands.
type RefundStatus string

// Refund statuses.
const (
	// RefundPending: a request was journalled; its outcome is not settled.
	RefundPending RefundStatus = "pending"
	// RefundSucceeded: DOKU refunded it. Terminal: never asked about again.
	RefundSucceeded RefundStatus = "succeeded"
	// RefundFailed: DOKU refused it for good.
	RefundFailed RefundStatus = "failed"
)

func (s RefundStatus) String() string { return string(s) }

// Refund is a refund ddctl has sent (or is sending) for an address.
type Refund struct {
	Address         string
	Payment         string // the original partnerReferenceNo
	Amount          money.Amount
	PartnerRefundNo string
	Status          RefundStatus
	RefundNo        string // DOKU's id, once it succeeded
	SNAPCode        string // the code of the last answer, if any
	Message         string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

type refundRow struct {
	Address         string `db:"address"`
	Payment         string `db:"payment"`
	Amount          int64  `db:"amount"`
	PartnerRefundNo string `db:"partner_refund_no"`
	Status          string `db:"status"`
	RefundNo        string `db:"refund_no"`
	SNAPCode        string `db:"snap_code"`
	Message         string `db:"message"`
	CreatedAt       string `db:"created_at"`
	UpdatedAt       string `db:"updated_at"`
}

func (r refundRow) refund() Refund {
	return Refund{Address: r.Address, Payment: r.Payment, Amount: money.Amount(r.Amount), PartnerRefundNo: r.PartnerRefundNo,
		Status: RefundStatus(r.Status), RefundNo: r.RefundNo, SNAPCode: r.SNAPCode, Message: r.Message,
		CreatedAt: parseTime(r.CreatedAt), UpdatedAt: parseTime(r.UpdatedAt)}
}

// refundColumns are refundRow's columns, in the order of its fields.
const refundColumns = `address, payment, amount, partner_refund_no, status, refund_no, snap_code, message, created_at, updated_at`

// fields are the scan destinations of refundColumns.
func (r *refundRow) fields() []any {
	return []any{&r.Address, &r.Payment, &r.Amount, &r.PartnerRefundNo, &r.Status, &r.RefundNo, &r.SNAPCode, &r.Message, &r.CreatedAt, &r.UpdatedAt}
}

// Refunds returns every refund in the state by address.
func (s *Store) Refunds(ctx context.Context) (map[string]Refund, error) {
	out := map[string]Refund{}
	var r refundRow
	dest := r.fields()
	err := s.each(ctx, `SELECT `+refundColumns+` FROM refunds`, func(rows *sql.Rows) error {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		out[r.Address] = r.refund()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Refund returns the refund at address, if the state has one.
func (s *Store) Refund(ctx context.Context, address string) (Refund, bool, error) {
	var r refundRow
	err := s.db.GetContext(ctx, &r, `SELECT * FROM refunds WHERE address = ?`, address)
	if errors.Is(err, sql.ErrNoRows) {
		return Refund{}, false, nil
	}
	if err != nil {
		return Refund{}, false, formatError(err)
	}
	return r.refund(), true, nil
}

// AdoptRefund records a refund found at DOKU (by status inquiry) as
// succeeded, without an operation of ddctl's: a lost state file or a
// refund made under ddctl's key elsewhere. If the refund was not already
// succeeded, a refund.succeeded event joins the outbox in the same
// transaction.
func (s *Store) AdoptRefund(ctx context.Context, r Refund, now time.Time) error {
	return s.write(ctx, func(tx *sqlx.Tx) error {
		before, _, err := refundAt(ctx, tx, r.Address)
		if err != nil {
			return fmt.Errorf("adopt refund %s: %w", r.Address, err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO refunds (address, payment, amount, partner_refund_no, status, refund_no, message, created_at, updated_at)
			VALUES (?, ?, ?, ?, 'succeeded', ?, 'found at DOKU by status inquiry', ?, ?)
			ON CONFLICT (address) DO UPDATE SET status = 'succeeded', refund_no = excluded.refund_no,
				message = excluded.message, updated_at = excluded.updated_at`,
			r.Address, r.Payment, int64(r.Amount), r.PartnerRefundNo, r.RefundNo, timeText(now), timeText(now))
		if err != nil {
			return fmt.Errorf("adopt refund %s: %w", r.Address, formatError(err))
		}
		after, _, err := refundAt(ctx, tx, r.Address)
		if err != nil {
			return fmt.Errorf("adopt refund %s: %w", r.Address, err)
		}
		return recordRefundEvent(ctx, tx, before.Status, after, now)
	})
}

// refundAt reads the refund row at address inside tx; ok is false (and
// the row zero) if there is none.
func refundAt(ctx context.Context, tx *sqlx.Tx, address string) (r refundRow, ok bool, err error) {
	err = tx.GetContext(ctx, &r, `SELECT * FROM refunds WHERE address = ?`, address)
	if errors.Is(err, sql.ErrNoRows) {
		return refundRow{}, false, nil
	}
	if err != nil {
		return refundRow{}, false, formatError(err)
	}
	return r, true, nil
}
