// Package workload writes large ddctl configurations the way an operator
// writes them (HCL blocks with for_each over CSV files), and the state file
// that applying them would leave behind, for the benchmarks of README.md's
// "Performance" and for trying ddctl at scale by hand
// (go run ./internal/loadgen).
//
// A configuration has Refunds refund instances (refund.batch["ORD-…"],
// from refunds.csv) and Charges customers (customers.csv), each with a
// binding (binding.customer["CUST-…"]) and a monthly recurring charge over
// it (recurring_charge.membership["CUST-…"]) whose last Months occurrences
// are in the past. Everything is a pure function of Params: the same
// Params write the same files.
package workload

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// Defaults of Params.
const (
	DefaultMonths   = 12
	DefaultPrefix   = "LOAD"
	DefaultTimezone = "Asia/Jakarta"
)

// Names of the files Write makes in the configuration directory.
const (
	MainFile      = "main.hcl"
	RefundsFile   = "refunds.csv"
	CustomersFile = "customers.csv"
	DOKUFile      = "doku.hcl"
	StateFile     = "ddctl.db" // settings.state's default
)

// The schedule of every recurring charge: 09:00 on the 1st of each month,
// in the configuration's time zone.
const (
	chargeSchedule = "0 9 1 * *"
	chargeHour     = 9
)

// Params describes a configuration. The zero value is an empty
// configuration (no refund, no charge) with the defaults.
type Params struct {
	Refunds int // refund instances, one row of refunds.csv each
	Charges int // customers: a binding and a monthly recurring charge each
	// Months is how many occurrences of each charge lie in the past as of
	// Now (default DefaultMonths): the charge starts then and ends after
	// the last one, so the configuration asks for no new charge later.
	Months int
	Now    time.Time // the charges' occurrences count back from here; zero means time.Now()
	// Prefix is settings.reference_prefix (default DefaultPrefix).
	Prefix   string
	Timezone string // settings.timezone (default DefaultTimezone)
	// RequestsPerSecond, when set, is the doku block's requests_per_second
	// (Write adds it to DOKU).
	RequestsPerSecond float64
	// DOKU is the content of doku.hcl, a doku block; empty writes no
	// doku.hcl (give one with ddctl -sandbox DIR, or write it yourself).
	DOKU string
	// PaymentPrefix starts every refund's payment reference (default
	// "INV-"), so that several configurations can share one sandbox.
	PaymentPrefix string
}

func (p Params) months() int        { return cmp.Or(p.Months, DefaultMonths) }
func (p Params) prefix() string     { return cmp.Or(p.Prefix, DefaultPrefix) }
func (p Params) timezone() string   { return cmp.Or(p.Timezone, DefaultTimezone) }
func (p Params) paymentRef() string { return cmp.Or(p.PaymentPrefix, "INV-") }

func (p Params) now() time.Time {
	if p.Now.IsZero() {
		return time.Now()
	}
	return p.Now
}

// PayerCustomerID and PayerPhone are the customer who paid every payment
// the refunds refund.
const (
	PayerCustomerID = "payer-1"
	PayerPhone      = "6281299990001"
)

// Refund is one row of refunds.csv: a refund of the whole of a payment.
type Refund struct {
	OrderID string       // the for_each key
	Payment string       // the payment's partnerReferenceNo
	Amount  money.Amount // what the payment was paid, and what is refunded
	Reason  string
}

// RefundRows lists the rows of refunds.csv, in order. Amounts vary from
// IDR 10,000 to IDR 1,009,000.
func (p Params) RefundRows() []Refund {
	out := make([]Refund, p.Refunds)
	for i := range out {
		out[i] = Refund{
			OrderID: fmt.Sprintf("ORD-%07d", i+1),
			Payment: fmt.Sprintf("%s%07d", p.paymentRef(), i+1),
			Amount:  money.Amount((10000 + (i*7919)%1000*1000) * 100),
			Reason:  []string{"item damaged", "order cancelled", "duplicate payment", "late delivery"}[i%4],
		}
	}
	return out
}

// Customer is one row of customers.csv: a binding and its monthly charge.
type Customer struct {
	CustomerID string // the for_each key
	Phone      string
	Amount     money.Amount // the monthly charge
}

// CustomerRows lists the rows of customers.csv, in order.
func (p Params) CustomerRows() []Customer {
	out := make([]Customer, p.Charges)
	for i := range out {
		out[i] = Customer{
			CustomerID: fmt.Sprintf("CUST-%06d", i+1),
			Phone:      fmt.Sprintf("62812%08d", i+1),
			Amount:     money.Amount((50000 + i%20*5000) * 100),
		}
	}
	return out
}

// ChargeWindow is the start and end of every recurring charge: the first
// of the Months occurrences at or before Now, and the day after the last.
func (p Params) ChargeWindow() (start, end time.Time, err error) {
	loc, err := time.LoadLocation(p.timezone())
	if err != nil {
		return start, end, fmt.Errorf("timezone: %w", err)
	}
	now := p.now().In(loc)
	last := time.Date(now.Year(), now.Month(), 1, chargeHour, 0, 0, 0, loc)
	if last.After(now) {
		last = last.AddDate(0, -1, 0)
	}
	first := last.AddDate(0, 1-p.months(), 0)
	day := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc) }
	return day(first), day(last).AddDate(0, 0, 1), nil
}

// Write writes the configuration into dir (made if needed): main.hcl,
// refunds.csv, customers.csv, and doku.hcl when p.DOKU is set. It replaces
// those files and leaves others (a state file) alone.
func Write(dir string, p Params) error {
	start, end, err := p.ChargeWindow()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by go run ./internal/loadgen: %d refunds, %d customers with
# a binding and a monthly charge each (%d occurrences in the past).

settings {
  timezone         = %q
  reference_prefix = %q
}
`, p.Refunds, p.Charges, p.months(), p.timezone(), p.prefix())
	if p.Charges > 0 {
		fmt.Fprintf(&b, `
locals {
  customers = { for c in csvdecode(file(%q)) : c.customer_id => c }
}

binding "customer" {
  for_each    = local.customers
  customer_id = each.key
  phone       = each.value.phone
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}

recurring_charge "membership" {
  for_each    = local.customers
  binding     = binding.customer[each.key]
  amount      = each.value.amount
  schedule    = %q
  start       = %q
  end         = %q
  description = "Membership"
  catch_up    = "all"
}
`, CustomersFile, chargeSchedule, start.Format(time.DateOnly), end.Format(time.DateOnly))
	}
	if p.Refunds > 0 {
		fmt.Fprintf(&b, `
# The payer of every refunded payment, bound outside ddctl and adopted:
# DOKU takes a refund only with the payer's customer token.
binding "payer" {
  customer_id = %q
  phone       = %q
  success_url = "https://shop.example/bind/ok"
  failed_url  = "https://shop.example/bind/failed"
}

refund "batch" {
  for_each = { for r in csvdecode(file(%q)) : r.order_id => r }
  payment  = each.value.payment_ref
  amount   = each.value.amount
  reason   = each.value.reason
  binding  = binding.payer
}
`, PayerCustomerID, PayerPhone, RefundsFile)
	}
	if err := os.WriteFile(filepath.Join(dir, MainFile), []byte(b.String()), 0o644); err != nil {
		return err
	}

	b.Reset()
	b.WriteString("order_id,payment_ref,amount,reason\n")
	for _, r := range p.RefundRows() {
		fmt.Fprintf(&b, "%s,%s,%s,%s\n", r.OrderID, r.Payment, r.Amount.Value(), r.Reason)
	}
	if err := os.WriteFile(filepath.Join(dir, RefundsFile), []byte(b.String()), 0o644); err != nil {
		return err
	}
	b.Reset()
	b.WriteString("customer_id,phone,amount\n")
	for _, c := range p.CustomerRows() {
		fmt.Fprintf(&b, "%s,%s,%s\n", c.CustomerID, c.Phone, c.Amount.Value())
	}
	if err := os.WriteFile(filepath.Join(dir, CustomersFile), []byte(b.String()), 0o644); err != nil {
		return err
	}
	if p.DOKU == "" {
		return nil
	}
	block := p.DOKU
	if p.RequestsPerSecond > 0 {
		block, err = withRequestsPerSecond(block, p.RequestsPerSecond)
		if err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, DOKUFile), []byte(block), 0o600)
}

// withRequestsPerSecond adds requests_per_second to a doku block that has
// none, before its closing brace.
func withRequestsPerSecond(block string, rps float64) (string, error) {
	if strings.Contains(block, "requests_per_second") {
		return "", errors.New("the doku block already sets requests_per_second")
	}
	i := strings.LastIndex(block, "}")
	if i < 0 {
		return "", errors.New("the doku block has no closing brace")
	}
	return fmt.Sprintf("%s  requests_per_second = %g\n%s", block[:i], rps, block[i:]), nil
}

// stubDOKU stands in for a missing doku block when Load reads a
// configuration only to know its instances; nothing is ever sent with it.
const stubDOKU = `doku {
  environment      = "sandbox"
  base_url         = "http://127.0.0.1:1"
  client_id        = "loadgen"
  client_secret    = "loadgen"
  private_key_file = "merchant.pem"
}
`

// Load loads the configuration in dir. When it has no doku block, a stub
// one (never used to call anyone) is added, so that a configuration
// written without p.DOKU can be given its state.
func Load(dir string) (*spec.Config, error) {
	cfg, _, diags := spec.Load(spec.LoadOptions{Dir: dir})
	if diags.HasErrors() && missingDOKU(diags) {
		tmp, err := os.MkdirTemp("", "loadgen")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		stub := filepath.Join(tmp, DOKUFile)
		if err := os.WriteFile(stub, []byte(stubDOKU), 0o600); err != nil {
			return nil, err
		}
		cfg, _, diags = spec.Load(spec.LoadOptions{Dir: dir, ExtraFiles: []string{stub}})
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("load %s: %s", dir, diags.Error())
	}
	return cfg, nil
}

func missingDOKU(diags hcl.Diagnostics) bool {
	for _, d := range diags {
		if d.Severity == hcl.DiagError && d.Summary == "Missing doku block" {
			return true
		}
	}
	return false
}

// Counts is what WriteState recorded.
type Counts struct {
	Refunds     int // succeeded refunds, with their payments
	Occurrences int // succeeded charge occurrences
	Bindings    int // active bindings
}

// WriteState records in st what applying cfg up to now would have left
// when everything went well: each refund succeeded (and its payment, as
// the status inquiry before it described it), each binding active, and
// each charge occurrence up to now paid at the first attempt. It goes
// through the state's public API, each write its own transaction as in a
// real run (about 0.35 ms each with synchronous=FULL: some 10 s for 10,000
// refunds and 1,000 charges). The journal is left empty: refunds are
// recorded as adopted, charges as their notifications record them. st
// must keep secrets (a key, or the sandbox's leave).
//
// A plan of cfg at now then has nothing to do and asks DOKU nothing.
func WriteState(ctx context.Context, st *state.Store, cfg *spec.Config, now time.Time) (Counts, error) {
	var n Counts
	prefix := cfg.Settings.ReferencePrefix
	loc := cfg.Settings.Location
	for _, r := range cfg.Refunds {
		if r.Charge != "" || r.Amount == 0 {
			return n, fmt.Errorf("%s: WriteState takes refunds of a payment with an amount", r.Address)
		}
		key := reconcile.IdempotencyKey(prefix, r.Address, "", 1)
		refundNo := "RF" + key[len(key)-16:]
		pay := state.Payment{PartnerReferenceNo: r.Payment, ReferenceNo: "RN" + r.Payment, Status: doku.TxSuccess,
			Amount: r.Amount, CheckedAt: now, Refunds: []state.PaymentRefund{{PartnerRefundNo: key, RefundNo: refundNo, Amount: r.Amount}}}
		if err := st.PutPayment(ctx, pay); err != nil {
			return n, fmt.Errorf("%s: %w", r.Address, err)
		}
		if err := st.AdoptRefund(ctx, state.Refund{Address: r.Address, Payment: r.Payment, Amount: r.Amount,
			PartnerRefundNo: key, RefundNo: refundNo}, now); err != nil {
			return n, err
		}
		n.Refunds++
	}
	for _, b := range cfg.Bindings {
		if err := st.PutBinding(ctx, state.Binding{Address: b.Address, CustomerID: b.CustomerID, Phone: b.Phone,
			Status: state.BindingActive, ReferenceNo: "BR" + b.CustomerID, RedirectURL: "https://sandbox.invalid/bind/" + b.CustomerID,
			AuthCode: secret.New("auth-" + b.CustomerID), CustomerToken: secret.New("token-" + b.CustomerID)}, now); err != nil {
			return n, err
		}
		n.Bindings++
	}
	for _, c := range cfg.Charges {
		for _, at := range c.Occurrences(c.Start, now.Add(time.Nanosecond), loc) {
			occ := spec.OccurrenceAddress(c.Address, at, loc)
			key := reconcile.IdempotencyKey(prefix, c.Address, occ, 1)
			if err := st.PutCharge(ctx, state.Charge{Address: c.Address, Occurrence: at, Attempt: 1, PartnerReferenceNo: key,
				Amount: c.Amount, BindingAddress: c.Binding, Status: state.ChargeSucceeded, ReferenceNo: "PR" + key[len(key)-16:],
				SNAPCode: "2005400", Message: "Successful"}, now); err != nil {
				return n, err
			}
			n.Occurrences++
		}
	}
	return n, nil
}
