package state

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ddctl/ddctl/internal/money"
)

// Payment is what a status inquiry said about a payment that refunds refer
// to, kept so that it is asked once (DESIGN.md principle 3).
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
	var rows []struct {
		PartnerReferenceNo string `db:"partner_reference_no"`
		ReferenceNo        string `db:"reference_no"`
		Status             string `db:"status"`
		Amount             int64  `db:"amount"`
		CheckedAt          string `db:"checked_at"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT * FROM payments`); err != nil {
		return nil, formatError(err)
	}
	out := make(map[string]Payment, len(rows))
	for _, r := range rows {
		out[r.PartnerReferenceNo] = Payment{PartnerReferenceNo: r.PartnerReferenceNo, ReferenceNo: r.ReferenceNo,
			Status: r.Status, Amount: money.Amount(r.Amount), CheckedAt: parseTime(r.CheckedAt)}
	}
	var refunds []struct {
		PartnerReferenceNo string `db:"partner_reference_no"`
		PartnerRefundNo    string `db:"partner_refund_no"`
		RefundNo           string `db:"refund_no"`
		Amount             int64  `db:"amount"`
	}
	if err := s.db.SelectContext(ctx, &refunds, `SELECT * FROM payment_refunds ORDER BY partner_refund_no`); err != nil {
		return nil, formatError(err)
	}
	for _, r := range refunds {
		p := out[r.PartnerReferenceNo]
		p.Refunds = append(p.Refunds, PaymentRefund{PartnerRefundNo: r.PartnerRefundNo, RefundNo: r.RefundNo, Amount: money.Amount(r.Amount)})
		out[r.PartnerReferenceNo] = p
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
