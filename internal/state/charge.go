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

// ChargeStatus is where one attempt at a charge occurrence stands.
type ChargeStatus string

// Charge statuses.
const (
	// ChargePending: the payment request was journalled; no answer yet.
	ChargePending ChargeStatus = "pending"
	// ChargeAwaitingCustomer: DOKU returned the OTP/PIN link; the result
	// comes by notification or status inquiry.
	ChargeAwaitingCustomer ChargeStatus = "awaiting_customer"
	// ChargeSucceeded: the customer paid. Terminal: never asked about again.
	ChargeSucceeded ChargeStatus = "succeeded"
	// ChargeFailed: DOKU refused or the customer declined.
	ChargeFailed ChargeStatus = "failed"
	// ChargeExpired: the customer did not confirm in time.
	ChargeExpired ChargeStatus = "expired"
	// ChargeDeferred: no payment call was made (insufficient balance); it
	// is retried at NextAttemptAt.
	ChargeDeferred ChargeStatus = "deferred"
)

func (s ChargeStatus) String() string { return string(s) }

// ErrChargeSucceeded is returned by PutCharge when the attempt already
// succeeded and the new row says otherwise: a late answer cannot undo a
// payment.
var ErrChargeSucceeded = errors.New("the charge attempt already succeeded")

// Charge is one attempt at one occurrence of a charge instance. Its key
// (Address, Occurrence, Attempt) determines PartnerReferenceNo, the
// idempotency key (principle 2, docs/principles.md).
type Charge struct {
	Address            string    // the charge instance address
	Occurrence         time.Time // the scheduled instant (UTC)
	Attempt            int
	PartnerReferenceNo string
	Amount             money.Amount
	BindingAddress     string
	Status             ChargeStatus
	ReferenceNo        string // DOKU's id, once known
	WebRedirectURL     string // the customer's OTP/PIN link
	SNAPCode           string // the code of the last answer, if any
	Message            string
	NextAttemptAt      time.Time // zero if none is planned
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

type chargeRow struct {
	Address            string `db:"address"`
	Occurrence         string `db:"occurrence"`
	Attempt            int    `db:"attempt"`
	PartnerReferenceNo string `db:"partner_reference_no"`
	Amount             int64  `db:"amount"`
	BindingAddress     string `db:"binding_address"`
	Status             string `db:"status"`
	ReferenceNo        string `db:"reference_no"`
	WebRedirectURL     string `db:"web_redirect_url"`
	SNAPCode           string `db:"snap_code"`
	Message            string `db:"message"`
	NextAttemptAt      string `db:"next_attempt_at"`
	CreatedAt          string `db:"created_at"`
	UpdatedAt          string `db:"updated_at"`
}

func (r chargeRow) charge() Charge {
	return Charge{Address: r.Address, Occurrence: parseTime(r.Occurrence), Attempt: r.Attempt,
		PartnerReferenceNo: r.PartnerReferenceNo, Amount: money.Amount(r.Amount), BindingAddress: r.BindingAddress,
		Status: ChargeStatus(r.Status), ReferenceNo: r.ReferenceNo, WebRedirectURL: r.WebRedirectURL,
		SNAPCode: r.SNAPCode, Message: r.Message, NextAttemptAt: parseTime(r.NextAttemptAt),
		CreatedAt: parseTime(r.CreatedAt), UpdatedAt: parseTime(r.UpdatedAt)}
}

// chargeColumns are chargeRow's columns, in the order of its fields.
const chargeColumns = `address, occurrence, attempt, partner_reference_no, amount, binding_address, status,
	reference_no, web_redirect_url, snap_code, message, next_attempt_at, created_at, updated_at`

// fields are the scan destinations of chargeColumns.
func (r *chargeRow) fields() []any {
	return []any{&r.Address, &r.Occurrence, &r.Attempt, &r.PartnerReferenceNo, &r.Amount, &r.BindingAddress, &r.Status,
		&r.ReferenceNo, &r.WebRedirectURL, &r.SNAPCode, &r.Message, &r.NextAttemptAt, &r.CreatedAt, &r.UpdatedAt}
}

// Charges returns every charge attempt in the state, ordered by address,
// occurrence and attempt.
func (s *Store) Charges(ctx context.Context) ([]Charge, error) {
	out := []Charge{}
	var r chargeRow
	dest := r.fields()
	err := s.each(ctx, `SELECT `+chargeColumns+` FROM charges ORDER BY address, occurrence, attempt`, func(rows *sql.Rows) error {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		out = append(out, r.charge())
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ChargeByKey returns the charge attempt whose idempotency key is
// partnerReferenceNo (what a notification names); ok is false if the
// state has none.
func (s *Store) ChargeByKey(ctx context.Context, partnerReferenceNo string) (Charge, bool, error) {
	var r chargeRow
	err := s.db.GetContext(ctx, &r, `SELECT * FROM charges WHERE partner_reference_no = ?`, partnerReferenceNo)
	if errors.Is(err, sql.ErrNoRows) {
		return Charge{}, false, nil
	}
	if err != nil {
		return Charge{}, false, fmt.Errorf("charge %s: %w", partnerReferenceNo, formatError(err))
	}
	return r.charge(), true, nil
}

// PutCharge stores c as the attempt (Address, Occurrence, Attempt),
// replacing every field but CreatedAt (set to now on insert). It refuses
// to change an attempt's PartnerReferenceNo (the key a request may already
// have carried) and, with ErrChargeSucceeded, to move a succeeded attempt
// to another status.
//
// In the same transaction it adds an event to the outbox when the
// attempt's status changes into one the merchant is told about (new or
// changed to awaiting_customer, succeeded, failed or expired; see
// EventType), so that the event and the change are stored together or
// not at all. Writing a status again adds none.
func (s *Store) PutCharge(ctx context.Context, c Charge, now time.Time) error {
	occurrence := timeText(c.Occurrence)
	return s.write(ctx, func(tx *sqlx.Tx) error {
		var have chargeRow
		err := tx.GetContext(ctx, &have, `SELECT * FROM charges WHERE address = ? AND occurrence = ? AND attempt = ?`,
			c.Address, occurrence, c.Attempt)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return formatError(err)
		case have.PartnerReferenceNo != c.PartnerReferenceNo:
			return fmt.Errorf("put charge %s at %s attempt %d: its key is %s, not %s",
				c.Address, occurrence, c.Attempt, have.PartnerReferenceNo, c.PartnerReferenceNo)
		case have.Status == string(ChargeSucceeded) && c.Status != ChargeSucceeded:
			return fmt.Errorf("put charge %s at %s attempt %d as %s: %w", c.Address, occurrence, c.Attempt, c.Status, ErrChargeSucceeded)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO charges (address, occurrence, attempt, partner_reference_no, amount,
				binding_address, status, reference_no, web_redirect_url, snap_code, message, next_attempt_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (address, occurrence, attempt) DO UPDATE SET amount = excluded.amount,
				binding_address = excluded.binding_address, status = excluded.status, reference_no = excluded.reference_no,
				web_redirect_url = excluded.web_redirect_url, snap_code = excluded.snap_code, message = excluded.message,
				next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at`,
			c.Address, occurrence, c.Attempt, c.PartnerReferenceNo, int64(c.Amount), c.BindingAddress, string(c.Status),
			c.ReferenceNo, c.WebRedirectURL, c.SNAPCode, c.Message, optTimeText(c.NextAttemptAt), timeText(now), timeText(now))
		if err != nil {
			return fmt.Errorf("put charge %s at %s attempt %d: %w", c.Address, occurrence, c.Attempt, formatError(err))
		}
		return recordChargeEvent(ctx, tx, have.Status, chargeRow{Address: c.Address, Occurrence: occurrence,
			PartnerReferenceNo: c.PartnerReferenceNo, Amount: int64(c.Amount), Status: string(c.Status),
			ReferenceNo: c.ReferenceNo, WebRedirectURL: c.WebRedirectURL, SNAPCode: c.SNAPCode, Message: c.Message}, now)
	})
}
