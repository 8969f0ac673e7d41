package sandbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3" // the ledger's SQLite driver
)

// The ledger is DOKU's side of the story: what was paid and refunded. It is
// the sandbox's own SQLite file and never ddctl's state.

const ledgerSchema = `
CREATE TABLE IF NOT EXISTS payments (
	partner_reference_no TEXT PRIMARY KEY,
	reference_no         TEXT NOT NULL UNIQUE,
	external_id          TEXT NOT NULL DEFAULT '',
	amount               INTEGER NOT NULL,
	phone                TEXT NOT NULL,
	cust_id_merchant     TEXT NOT NULL DEFAULT '',
	status               TEXT NOT NULL,
	created_at           TEXT NOT NULL,
	paid_time            TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS refunds (
	partner_refund_no    TEXT PRIMARY KEY,
	refund_no            TEXT NOT NULL UNIQUE,
	partner_reference_no TEXT NOT NULL REFERENCES payments(partner_reference_no),
	amount               INTEGER NOT NULL,
	reason               TEXT NOT NULL DEFAULT '',
	refund_time          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refunds_payment ON refunds(partner_reference_no);
CREATE TABLE IF NOT EXISTS bindings (
	id               INTEGER PRIMARY KEY,
	phone            TEXT NOT NULL,
	cust_id_merchant TEXT NOT NULL,
	auth_code        TEXT NOT NULL UNIQUE,
	status           TEXT NOT NULL,
	created_at       TEXT NOT NULL
);
-- Answers already given, by X-EXTERNAL-ID and day.
CREATE TABLE IF NOT EXISTS replays (
	day         TEXT NOT NULL,
	external_id TEXT NOT NULL,
	op          TEXT NOT NULL,
	body_hash   TEXT NOT NULL,
	http_status INTEGER NOT NULL,
	response    BLOB NOT NULL,
	PRIMARY KEY (day, external_id)
);
-- Allo accounts, by phone, with their balance in minor units.
CREATE TABLE IF NOT EXISTS customers (
	phone   TEXT PRIMARY KEY,
	name    TEXT NOT NULL DEFAULT '',
	balance INTEGER NOT NULL
);
-- What waits for the customer's OTP and PIN: a binding or a payment.
CREATE TABLE IF NOT EXISTS confirmations (
	id         TEXT PRIMARY KEY,
	kind       TEXT NOT NULL CHECK (kind IN ('binding', 'payment')),
	ref        TEXT NOT NULL,
	status     TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
	created_at TEXT NOT NULL,
	-- Where the customer's browser goes afterwards.
	success_url TEXT NOT NULL DEFAULT '',
	failed_url  TEXT NOT NULL DEFAULT ''
);
-- Notifications to the merchant, delivered and retried by the sandbox's tick.
CREATE TABLE IF NOT EXISTS notifications (
	id                   INTEGER PRIMARY KEY,
	partner_reference_no TEXT NOT NULL,
	external_id          TEXT NOT NULL,
	body                 BLOB NOT NULL,
	status               TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
	attempts             INTEGER NOT NULL DEFAULT 0,
	created_at           INTEGER NOT NULL DEFAULT 0,
	next_at              INTEGER NOT NULL,
	last_error           TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
`

type ledger struct{ db *sqlx.DB }

func openLedger(path string) (*ledger, error) {
	// The ledger holds authCodes and phone numbers: its owner's alone,
	// whether it is new or was there.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sandbox ledger %s: %w", path, err)
	}
	err = f.Chmod(0o600)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("open sandbox ledger %s: %w", path, err)
	}
	dsn := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path) + "?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=10000&_foreign_keys=on&_txlock=immediate"
	db, err := sqlx.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sandbox ledger %s: %w", path, err)
	}
	// One writer at a time keeps the ledger's checks and writes atomic
	// without SQLITE_BUSY surprises.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(ledgerSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create sandbox ledger %s: %w", path, err)
	}
	return &ledger{db: db}, nil
}

func (l *ledger) close() error { return l.db.Close() }

// Payment is a payment in the ledger, as GET /sandbox/ledger shows it.
type Payment struct {
	PartnerReferenceNo string `db:"partner_reference_no" json:"partnerReferenceNo"`
	ReferenceNo        string `db:"reference_no" json:"referenceNo"`
	ExternalID         string `db:"external_id" json:"externalId,omitempty"`
	Amount             int64  `db:"amount" json:"amount"` // minor units
	Phone              string `db:"phone" json:"phone"`
	CustIDMerchant     string `db:"cust_id_merchant" json:"custIdMerchant,omitempty"`
	Status             string `db:"status" json:"status"` // latestTransactionStatus
	CreatedAt          string `db:"created_at" json:"createdAt"`
	PaidTime           string `db:"paid_time" json:"paidTime,omitempty"`
}

// Refund is a refund in the ledger.
type Refund struct {
	PartnerRefundNo    string `db:"partner_refund_no" json:"partnerRefundNo"`
	RefundNo           string `db:"refund_no" json:"refundNo"`
	PartnerReferenceNo string `db:"partner_reference_no" json:"partnerReferenceNo"`
	Amount             int64  `db:"amount" json:"amount"` // minor units
	Reason             string `db:"reason" json:"reason,omitempty"`
	RefundTime         string `db:"refund_time" json:"refundTime"`
}

// Binding is an account binding in the ledger.
type Binding struct {
	ID             int64  `db:"id" json:"id"`
	Phone          string `db:"phone" json:"phone"`
	CustIDMerchant string `db:"cust_id_merchant" json:"custIdMerchant"`
	AuthCode       string `db:"auth_code" json:"-"`
	Status         string `db:"status" json:"status"`
	CreatedAt      string `db:"created_at" json:"createdAt"`
}

// Customer is an Allo account.
type Customer struct {
	Phone   string `db:"phone" json:"phone"`
	Name    string `db:"name" json:"name,omitempty"`
	Balance int64  `db:"balance" json:"balance"` // minor units
}

// Ledger is everything the sandbox holds (GET /sandbox/ledger).
type Ledger struct {
	Customers []Customer `json:"customers"`
	Payments  []Payment  `json:"payments"`
	Refunds   []Refund   `json:"refunds"`
	Bindings  []Binding  `json:"bindings"`
}

func (l *ledger) snapshot(ctx context.Context) (Ledger, error) {
	out := Ledger{Customers: []Customer{}, Payments: []Payment{}, Refunds: []Refund{}, Bindings: []Binding{}}
	if err := l.db.SelectContext(ctx, &out.Customers, `SELECT * FROM customers ORDER BY phone`); err != nil {
		return out, err
	}
	if err := l.db.SelectContext(ctx, &out.Payments, `SELECT * FROM payments ORDER BY created_at, partner_reference_no`); err != nil {
		return out, err
	}
	if err := l.db.SelectContext(ctx, &out.Refunds, `SELECT * FROM refunds ORDER BY refund_time, partner_refund_no`); err != nil {
		return out, err
	}
	if err := l.db.SelectContext(ctx, &out.Bindings, `SELECT * FROM bindings ORDER BY id`); err != nil {
		return out, err
	}
	return out, nil
}

func getPayment(ctx context.Context, tx *sqlx.Tx, partnerRef, ref string) (*Payment, error) {
	var p Payment
	// Either reference finds the payment; given both, both must match.
	err := tx.GetContext(ctx, &p, `SELECT * FROM payments WHERE (? = '' OR partner_reference_no = ?) AND (? = '' OR reference_no = ?)
		AND (? != '' OR ? != '') LIMIT 1`, partnerRef, partnerRef, ref, ref, partnerRef, ref)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return &p, err
}

func paymentRefunds(ctx context.Context, tx *sqlx.Tx, partnerRef string) ([]Refund, error) {
	var rs []Refund
	err := tx.SelectContext(ctx, &rs, `SELECT * FROM refunds WHERE partner_reference_no = ? ORDER BY refund_time, partner_refund_no`, partnerRef)
	return rs, err
}

// nextNumber hands out DOKU-side ids (referenceNo, refundNo) in sequence.
func nextNumber(ctx context.Context, tx *sqlx.Tx, name string) (int64, error) {
	if _, err := tx.ExecContext(ctx, `INSERT INTO counters(name, value) VALUES (?, 1)
		ON CONFLICT(name) DO UPDATE SET value = value + 1`, name); err != nil {
		return 0, err
	}
	var n int64
	err := tx.GetContext(ctx, &n, `SELECT value FROM counters WHERE name = ?`, name)
	return n, err
}
