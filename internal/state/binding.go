package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ddctl/ddctl/internal/secret"
)

// BindingStatus is where a customer's account binding stands.
type BindingStatus string

// Binding statuses.
const (
	// BindingPending: DOKU answered the binding request; the customer has
	// yet to confirm, or the auth code is yet to be exchanged for a token.
	BindingPending BindingStatus = "pending"
	// BindingActive: the customer token is known. Not asked about again.
	BindingActive BindingStatus = "active"
	// BindingFailed: DOKU refused the binding for good.
	BindingFailed BindingStatus = "failed"
	// BindingUnbound: removed at DOKU by an unbind block. Terminal.
	BindingUnbound BindingStatus = "unbound"
)

func (s BindingStatus) String() string { return string(s) }

// ErrCustomerBound is returned by PutBinding when another binding of the
// same customer is not unbound: DOKU allows one account binding per
// customer, and two rows would let two addresses charge one account.
var ErrCustomerBound = errors.New("the customer already has a binding")

// Binding is a customer's Allo Bank account binding. AuthCode and
// CustomerToken are stored encrypted (principle 5, docs/principles.md).
type Binding struct {
	Address        string
	CustomerID     string
	Phone          string // shown masked, never in full
	Status         BindingStatus
	ReferenceNo    string // DOKU's id of the binding request
	RedirectURL    string // where the customer confirms
	AuthCode       secret.Value
	HoldsAuthCode  bool         // the row holds an authCode, whether or not it was read (OpenOptions.WithoutSecrets)
	CustomerToken  secret.Value // the B2B2C token; tokenId of an unbinding
	TokenExpiresAt time.Time    // zero if unknown
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

type bindingRow struct {
	Address        string `db:"address"`
	CustomerID     string `db:"customer_id"`
	Phone          string `db:"phone"`
	Status         string `db:"status"`
	ReferenceNo    string `db:"reference_no"`
	RedirectURL    string `db:"redirect_url"`
	AuthCode       []byte `db:"auth_code"`
	CustomerToken  []byte `db:"customer_token"`
	TokenExpiresAt string `db:"token_expires_at"`
	CreatedAt      string `db:"created_at"`
	UpdatedAt      string `db:"updated_at"`
}

// The additional data of a binding's secrets: table, address, column.
func authCodeAAD(address string) string      { return "bindings/" + address + "/auth_code" }
func customerTokenAAD(address string) string { return "bindings/" + address + "/customer_token" }

func (s *Store) binding(r bindingRow) (Binding, error) {
	held := len(r.AuthCode) > 0
	if s.withoutSecrets {
		r.AuthCode, r.CustomerToken = nil, nil
	}
	authCode, err := s.openSecret(r.AuthCode, authCodeAAD(r.Address))
	if err != nil {
		return Binding{}, fmt.Errorf("binding %s: %w", r.Address, err)
	}
	token, err := s.openSecret(r.CustomerToken, customerTokenAAD(r.Address))
	if err != nil {
		return Binding{}, fmt.Errorf("binding %s: %w", r.Address, err)
	}
	return Binding{Address: r.Address, CustomerID: r.CustomerID, Phone: r.Phone, Status: BindingStatus(r.Status),
		ReferenceNo: r.ReferenceNo, RedirectURL: r.RedirectURL, AuthCode: authCode, HoldsAuthCode: held, CustomerToken: token,
		TokenExpiresAt: parseTime(r.TokenExpiresAt), CreatedAt: parseTime(r.CreatedAt), UpdatedAt: parseTime(r.UpdatedAt)}, nil
}

// Bindings returns every binding in the state by address, its secrets
// decrypted. A binding holding a secret needs the state key: without one
// it fails with ErrNoStateKey; with the wrong one, ErrSecretUnreadable.
func (s *Store) Bindings(ctx context.Context) (map[string]Binding, error) {
	out := map[string]Binding{}
	var r bindingRow
	dest := []any{&r.Address, &r.CustomerID, &r.Phone, &r.Status, &r.ReferenceNo, &r.RedirectURL,
		&r.AuthCode, &r.CustomerToken, &r.TokenExpiresAt, &r.CreatedAt, &r.UpdatedAt}
	err := s.each(ctx, `SELECT address, customer_id, phone, status, reference_no, redirect_url,
		auth_code, customer_token, token_expires_at, created_at, updated_at FROM bindings`, func(rows *sql.Rows) error {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		b, err := s.binding(r)
		if err != nil {
			return err
		}
		out[r.Address] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Binding returns the binding at address, if the state has one.
func (s *Store) Binding(ctx context.Context, address string) (Binding, bool, error) {
	var r bindingRow
	err := s.db.GetContext(ctx, &r, `SELECT * FROM bindings WHERE address = ?`, address)
	if errors.Is(err, sql.ErrNoRows) {
		return Binding{}, false, nil
	}
	if err != nil {
		return Binding{}, false, formatError(err)
	}
	b, err := s.binding(r)
	return b, err == nil, err
}

// PutBinding stores b as the binding at its address, replacing every field
// but CreatedAt (set to now on insert); an empty secret clears its column.
// Secrets are sealed under the state key, bound to the address and column;
// with no key, a binding with a secret is refused with ErrNoStateKey. A
// second binding of a customer that is not unbound is refused with
// ErrCustomerBound. Unbinding is PutBinding with BindingUnbound: the row
// stays, so the unbind is never sent twice.
//
// When the status becomes active or unbound, a binding.active or
// binding.removed event joins the outbox in the same transaction; it
// holds the address and DOKU's reference, never a secret or the phone.
func (s *Store) PutBinding(ctx context.Context, b Binding, now time.Time) error {
	authCode, err := s.sealSecret(b.AuthCode, authCodeAAD(b.Address))
	if err != nil {
		return fmt.Errorf("put binding %s: %w", b.Address, err)
	}
	token, err := s.sealSecret(b.CustomerToken, customerTokenAAD(b.Address))
	if err != nil {
		return fmt.Errorf("put binding %s: %w", b.Address, err)
	}
	return s.write(ctx, func(tx *sqlx.Tx) error {
		var before string
		if err := tx.GetContext(ctx, &before, `SELECT status FROM bindings WHERE address = ?`, b.Address); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("put binding %s: %w", b.Address, formatError(err))
		}
		if b.Status != BindingUnbound {
			var other []string
			if err := tx.SelectContext(ctx, &other, `SELECT address FROM bindings
				WHERE customer_id = ? AND status != 'unbound' AND address != ?`, b.CustomerID, b.Address); err != nil {
				return formatError(err)
			}
			if len(other) > 0 {
				return fmt.Errorf("put binding %s: customer %s is bound at %s: %w", b.Address, b.CustomerID, other[0], ErrCustomerBound)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO bindings (address, customer_id, phone, status, reference_no, redirect_url,
				auth_code, customer_token, token_expires_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (address) DO UPDATE SET customer_id = excluded.customer_id, phone = excluded.phone,
				status = excluded.status, reference_no = excluded.reference_no, redirect_url = excluded.redirect_url,
				auth_code = excluded.auth_code, customer_token = excluded.customer_token,
				token_expires_at = excluded.token_expires_at, updated_at = excluded.updated_at`,
			b.Address, b.CustomerID, b.Phone, string(b.Status), b.ReferenceNo, b.RedirectURL,
			authCode, token, optTimeText(b.TokenExpiresAt), timeText(now), timeText(now))
		if err != nil {
			return fmt.Errorf("put binding %s: %w", b.Address, formatError(err))
		}
		return recordBindingEvent(ctx, tx, before, b, now)
	})
}
