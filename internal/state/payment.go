package state

import (
	"context"
	"database/sql"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ddctl/ddctl/internal/money"
)

// Payment is what a status inquiry said about a payment that refunds refer
// to, kept so that it is asked once (principle 3, docs/principles.md).
type Payment struct {
	PartnerReferenceNo string
	ReferenceNo        string
	Status             string // latestTransactionStatus
	Amount             money.Amount
	Refunds            []PaymentRefund
	CheckedAt          time.Time
}

// PaymentRefund is one refund of a payment, as DOKU listed it or as ddctl
// made it since.
type PaymentRefund struct {
	PartnerRefundNo string
	RefundNo        string
	Amount          money.Amount
}

// Refunded is the sum of the payment's refunds.
func (p Payment) Refunded() money.Amount {
	var sum money.Amount
	for _, r := range p.Refunds {
		sum += r.Amount
	}
	return sum
}

// Payments returns every payment the state knows, by partnerReferenceNo.
func (s *Store) Payments(ctx context.Context) (map[string]Payment, error) {
	out := map[string]Payment{}
	var p Payment
	var amount int64
	var checkedAt string
	err := s.each(ctx, `SELECT partner_reference_no, reference_no, status, amount, checked_at FROM payments`, func(rows *sql.Rows) error {
		if err := rows.Scan(&p.PartnerReferenceNo, &p.ReferenceNo, &p.Status, &amount, &checkedAt); err != nil {
			return err
		}
		p.Amount, p.CheckedAt = money.Amount(amount), parseTime(checkedAt)
		out[p.PartnerReferenceNo] = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	var ref string
	var r PaymentRefund
	err = s.each(ctx, `SELECT partner_reference_no, partner_refund_no, refund_no, amount FROM payment_refunds ORDER BY partner_refund_no`, func(rows *sql.Rows) error {
		if err := rows.Scan(&ref, &r.PartnerRefundNo, &r.RefundNo, &amount); err != nil {
			return err
		}
		r.Amount = money.Amount(amount)
		p := out[ref]
		p.Refunds = append(p.Refunds, r)
		out[ref] = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PutPayment stores what a status inquiry said. The refunds it lists join
// those already known; none is forgotten, since DOKU's answer may lag
// behind a refund ddctl recorded.
func (s *Store) PutPayment(ctx context.Context, p Payment) error {
	return s.write(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO payments VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (partner_reference_no) DO UPDATE SET reference_no = excluded.reference_no,
				status = excluded.status, amount = excluded.amount, checked_at = excluded.checked_at`,
			p.PartnerReferenceNo, p.ReferenceNo, p.Status, int64(p.Amount), timeText(p.CheckedAt)); err != nil {
			return formatError(err)
		}
		for _, r := range p.Refunds {
			if err := putPaymentRefund(ctx, tx, p.PartnerReferenceNo, r); err != nil {
				return err
			}
		}
		return nil
	})
}

func putPaymentRefund(ctx context.Context, tx *sqlx.Tx, payment string, r PaymentRefund) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO payment_refunds SELECT ?, ?, ?, ? WHERE EXISTS
		(SELECT 1 FROM payments WHERE partner_reference_no = ?) ON CONFLICT DO NOTHING`,
		payment, r.PartnerRefundNo, r.RefundNo, int64(r.Amount), payment)
	return formatError(err)
}
