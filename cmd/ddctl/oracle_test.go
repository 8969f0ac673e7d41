package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// The ledger oracle: after a run has
// converged, DOKU's side (the sandbox ledger), ddctl's side (the state
// file) and what the configuration demands must agree:
//
//   - each charge occurrence is paid exactly once, whatever its attempts
//     (a second paid attempt is a double charge), and each
//     partnerReferenceNo at most once;
//   - each refund exists exactly once under its partnerRefundNo, and no
//     payment has more refunds of ours than blocks ask for, nor refunds
//     summing to more than it was paid;
//   - each unbind left its customer with no active binding;
//   - no journalled operation is left open (intent or unknown);
//   - the state says what the ledger says (status, refundNo/referenceNo,
//     amount), with no orphans (ledger entries under our keys that the
//     state does not know) and no ghosts (successes in the state that the
//     ledger lacks).
//
// The oracle derives the keys it looks for from the configuration with
// reconcile.IdempotencyKey, a pure function tested on its own: ledger
// entries "of ours" are those whose key has the configuration's
// reference_prefix. Tests give each configuration a prefix that ends in a
// letter above F, so that no prefix is the start of another's key (keys
// go on with uppercase hex digits).

// oracleWant is what a configuration demands of the ledger at
// convergence.
type oracleWant struct {
	Prefix  string
	Charges []wantCharge
	Refunds []wantRefund
	Unbinds []string // customer IDs whose bindings must all end unbound
}

// wantCharge is one occurrence of a recurring charge: exactly one of its
// attempts' keys is paid.
type wantCharge struct {
	Occurrence string // its address
	Amount     int64
	// Keys are the partnerReferenceNo of attempts 1, 2, … up to the most
	// any charge may have (oracleAttempts), so that a payment under an
	// attempt beyond the block's own retry.attempts is still this
	// occurrence's; Attempts is the block's.
	Keys     []string
	Attempts int
}

// oracleAttempts is the most attempts a charge block may allow
// (spec: retry.attempts is at most 10).
const oracleAttempts = 10

// wantRefund is one refund instance.
type wantRefund struct {
	Address string
	Key     string // partnerRefundNo
	Payment string // the partnerReferenceNo refunded; "" when Charge is set
	Charge  string // the charge occurrence whose paid attempt is refunded
	Amount  int64  // 0: the payment's full amount
}

// wantOf is what cfg demands at now. Every charge block of these tests
// either catches up all its occurrences or has exactly one (the planner's
// catch_up rules are not the oracle's to repeat).
func wantOf(tb testing.TB, cfg *spec.Config, now time.Time) oracleWant {
	tb.Helper()
	loc, prefix := cfg.Settings.Location, cfg.Settings.ReferencePrefix
	w := oracleWant{Prefix: prefix}
	for _, c := range cfg.Charges {
		occs := c.Occurrences(c.Start, now, loc)
		if c.CatchUp != spec.CatchUpAll && len(occs) > 1 {
			tb.Fatalf("oracle: %s has %d occurrences and catch_up %s; give it one, or catch_up = \"all\"", c.Address, len(occs), c.CatchUp)
		}
		for _, at := range occs {
			occ := spec.OccurrenceAddress(c.Address, at, loc)
			wc := wantCharge{Occurrence: occ, Amount: int64(c.Amount), Attempts: c.Retry.Attempts}
			for n := 1; n <= oracleAttempts; n++ {
				wc.Keys = append(wc.Keys, reconcile.IdempotencyKey(prefix, c.Address, occ, n))
			}
			w.Charges = append(w.Charges, wc)
		}
	}
	for _, r := range cfg.Refunds {
		if !r.NotBefore.IsZero() && now.Before(r.NotBefore) {
			continue
		}
		wr := wantRefund{Address: r.Address, Key: reconcile.IdempotencyKey(prefix, r.Address, "", 1), Payment: r.Payment, Amount: int64(r.Amount)}
		if r.Charge != "" {
			wr.Payment, wr.Charge = "", spec.OccurrenceAddress(r.Charge, r.Occurrence, loc)
		}
		w.Refunds = append(w.Refunds, wr)
	}
	for _, u := range cfg.Unbinds {
		w.Unbinds = append(w.Unbinds, u.CustomerID)
	}
	return w
}

// loadSpec loads the configuration in dir as ddctl would there, with env
// added to the process's environment (DDCTL_VAR_…).
// stateScope is the secret scope ddctl opens the state in dir with: its
// doku block's environment and client ID.
func stateScope(tb testing.TB, dir string, env ...string) string {
	tb.Helper()
	cfg := loadSpec(tb, dir, env...)
	return state.Scope(cfg.DOKU.Environment, cfg.DOKU.ClientID)
}

func loadSpec(tb testing.TB, dir string, env ...string) *spec.Config {
	tb.Helper()
	cfg, _, diags := spec.Load(spec.LoadOptions{Dir: dir, Env: append(os.Environ(), env...)})
	if diags.HasErrors() {
		tb.Fatalf("load %s: %s", dir, diags.Error())
	}
	return cfg
}

// oracleState is what the oracle reads of a state file.
type oracleState struct {
	Refunds    map[string]state.Refund
	Charges    []state.Charge
	Bindings   map[string]state.Binding
	Operations []state.Operation
}

// readOracleState opens the state file at path with opts (a state key,
// if one was used), reads it and closes it.
func readOracleState(tb testing.TB, path string, opts state.OpenOptions) oracleState {
	tb.Helper()
	st, err := state.OpenWith(path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	return oracleStateOf(tb, st)
}

func oracleStateOf(tb testing.TB, st *state.Store) oracleState {
	tb.Helper()
	ctx := context.Background()
	var s oracleState
	var err error
	if s.Refunds, err = st.Refunds(ctx); err != nil {
		tb.Fatal(err)
	}
	if s.Charges, err = st.Charges(ctx); err != nil {
		tb.Fatal(err)
	}
	if s.Bindings, err = st.Bindings(ctx); err != nil {
		tb.Fatal(err)
	}
	if s.Operations, err = st.Operations(ctx, ""); err != nil {
		tb.Fatal(err)
	}
	return s
}

// oracleFigures are the oracle's counts. Every count but the demanded
// and done ones must be 0; Violations says what each violation is.
type oracleFigures struct {
	ChargesDemanded, ChargesPaid, DoubleCharges, MissingCharges              int
	RefundsDemanded, RefundsMade, DoubleRefunds, MissingRefunds, OverRefunds int
	UnbindsDemanded, Unbound, MissingUnbinds                                 int
	OpenOperations, Mismatches, Orphans, Ghosts, Unexpected                  int
	Violations                                                               []string
}

func (f *oracleFigures) violate(count *int, format string, args ...any) {
	*count++
	f.Violations = append(f.Violations, fmt.Sprintf(format, args...))
}

func (f oracleFigures) String() string {
	return fmt.Sprintf("charges: %d demanded, %d paid, %d double, %d missing; refunds: %d demanded, %d made, %d double, %d missing, %d payments over-refunded; "+
		"unbinds: %d demanded, %d done, %d missing; open operations %d; state vs ledger: %d mismatches, %d orphans, %d ghosts; %d ledger entries of ours nothing demanded",
		f.ChargesDemanded, f.ChargesPaid, f.DoubleCharges, f.MissingCharges,
		f.RefundsDemanded, f.RefundsMade, f.DoubleRefunds, f.MissingRefunds, f.OverRefunds,
		f.UnbindsDemanded, f.Unbound, f.MissingUnbinds, f.OpenOperations, f.Mismatches, f.Orphans, f.Ghosts, f.Unexpected)
}

// ok reports whether the oracle found nothing wrong.
func (f oracleFigures) ok() bool { return len(f.Violations) == 0 }

func paid(status string) bool { return status == doku.TxSuccess || status == doku.TxRefunded }

// checkOracle checks ledger l and state s against what w demands.
func checkOracle(l sandbox.Ledger, s oracleState, w oracleWant) oracleFigures {
	var f oracleFigures
	ours := func(key string) bool { return strings.HasPrefix(key, w.Prefix) }

	// The ledger's side, by key.
	payments := map[string]sandbox.Payment{}
	for _, p := range l.Payments {
		if _, dup := payments[p.PartnerReferenceNo]; dup && paid(p.Status) {
			f.violate(&f.DoubleCharges, "ledger: partnerReferenceNo %s paid twice", p.PartnerReferenceNo)
		}
		if _, dup := payments[p.PartnerReferenceNo]; !dup || paid(p.Status) {
			payments[p.PartnerReferenceNo] = p
		}
	}
	refunds := map[string]sandbox.Refund{} // by partnerRefundNo
	byPayment := map[string][]sandbox.Refund{}
	for _, r := range l.Refunds {
		if _, dup := refunds[r.PartnerRefundNo]; dup {
			f.violate(&f.DoubleRefunds, "ledger: partnerRefundNo %s made twice", r.PartnerRefundNo)
		}
		refunds[r.PartnerRefundNo] = r
		byPayment[r.PartnerReferenceNo] = append(byPayment[r.PartnerReferenceNo], r)
	}

	// Charges: each occurrence paid exactly once.
	wantedKey := map[string]bool{}
	paidKey := map[string]string{} // occurrence → its paid key
	for _, c := range w.Charges {
		f.ChargesDemanded++
		var keys []string
		for i, k := range c.Keys {
			wantedKey[k] = true
			p, ok := payments[k]
			if ok && i >= c.Attempts {
				f.violate(&f.Unexpected, "%s: a payment (status %s) under the key of attempt %d; its block allows %d", c.Occurrence, p.Status, i+1, c.Attempts)
			}
			if ok && paid(p.Status) {
				keys = append(keys, k)
				if p.Amount != c.Amount {
					f.violate(&f.Mismatches, "%s: paid %d under %s, configured %d", c.Occurrence, p.Amount, k, c.Amount)
				}
			}
		}
		switch {
		case len(keys) == 0:
			f.violate(&f.MissingCharges, "%s: not paid under any of its %d attempts' keys", c.Occurrence, c.Attempts)
		case len(keys) > 1:
			f.ChargesPaid++
			f.violate(&f.DoubleCharges, "%s: paid %d times (%s)", c.Occurrence, len(keys), strings.Join(keys, ", "))
		default:
			f.ChargesPaid++
		}
		if len(keys) > 0 {
			paidKey[c.Occurrence] = keys[0]
		}
	}
	for _, p := range l.Payments {
		if ours(p.PartnerReferenceNo) && !wantedKey[p.PartnerReferenceNo] {
			f.violate(&f.Unexpected, "ledger: payment %s (status %s) is under our prefix but no occurrence's key", p.PartnerReferenceNo, p.Status)
		}
	}

	// Refunds: each exactly once, of the right payment and amount.
	wantedRefund := map[string]bool{}
	perPayment := map[string]int{}
	for _, r := range w.Refunds {
		f.RefundsDemanded++
		wantedRefund[r.Key] = true
		payment := r.Payment
		if r.Charge != "" {
			payment = paidKey[r.Charge]
		}
		perPayment[payment]++
		got, ok := refunds[r.Key]
		if !ok {
			f.violate(&f.MissingRefunds, "%s: no refund %s in the ledger (payment %q)", r.Address, r.Key, payment)
			continue
		}
		f.RefundsMade++
		amount := r.Amount
		if amount == 0 {
			amount = payments[payment].Amount
		}
		if got.PartnerReferenceNo != payment || got.Amount != amount {
			f.violate(&f.Mismatches, "%s: ledger refund %s is %d of %s, want %d of %s", r.Address, r.Key, got.Amount, got.PartnerReferenceNo, amount, payment)
		}
	}
	for ref, rs := range byPayment {
		n, sum := 0, int64(0)
		for _, r := range rs {
			sum += r.Amount
			if ours(r.PartnerRefundNo) {
				n++
				if !wantedRefund[r.PartnerRefundNo] {
					f.violate(&f.Unexpected, "ledger: refund %s of %s is under our prefix but no block's key", r.PartnerRefundNo, ref)
				}
			}
		}
		if n > perPayment[ref] {
			f.violate(&f.DoubleRefunds, "payment %s: %d refunds of ours, %d asked for", ref, n, perPayment[ref])
		}
		if p, ok := payments[ref]; ok && sum > p.Amount {
			f.violate(&f.OverRefunds, "payment %s: refunds sum to %d, more than its %d", ref, sum, p.Amount)
		}
	}

	// Unbinds: no active binding of the customer is left.
	for _, cust := range w.Unbinds {
		f.UnbindsDemanded++
		var active, unbound int
		for _, b := range l.Bindings {
			if b.CustIDMerchant != cust {
				continue
			}
			switch b.Status {
			case sandbox.BindingActive:
				active++
			case sandbox.BindingUnbound:
				unbound++
			}
		}
		if active > 0 || unbound == 0 {
			f.violate(&f.MissingUnbinds, "customer %s: %d active and %d unbound bindings in the ledger, want 0 active", cust, active, unbound)
		} else {
			f.Unbound++
		}
	}

	// Nothing left open.
	for _, op := range s.Operations {
		if op.Status.Open() {
			f.violate(&f.OpenOperations, "%s: operation %d (%s %s) left %s", op.Address, op.ID, op.Kind, op.IdempotencyKey, op.Status)
		}
	}

	// The state against the ledger: refunds.
	known := map[string]bool{}
	for addr, r := range s.Refunds {
		known[r.PartnerRefundNo] = true
		got, ok := refunds[r.PartnerRefundNo]
		switch r.Status {
		case state.RefundSucceeded:
			switch {
			case !ok:
				f.violate(&f.Ghosts, "%s: the state says refund %s succeeded (refundNo %s); the ledger has no such refund", addr, r.PartnerRefundNo, r.RefundNo)
			case got.RefundNo != r.RefundNo || got.Amount != int64(r.Amount) || got.PartnerReferenceNo != r.Payment:
				f.violate(&f.Mismatches, "%s: state refundNo %s, %d of %s; ledger refundNo %s, %d of %s",
					addr, r.RefundNo, int64(r.Amount), r.Payment, got.RefundNo, got.Amount, got.PartnerReferenceNo)
			}
		case state.RefundFailed:
			if ok {
				f.violate(&f.Mismatches, "%s: the state says refund %s failed; the ledger made it (refundNo %s)", addr, r.PartnerRefundNo, got.RefundNo)
			}
		default:
			f.violate(&f.Mismatches, "%s: refund %s is still %s in the state (ledger: made=%v)", addr, r.PartnerRefundNo, r.Status, ok)
		}
	}
	for _, r := range l.Refunds {
		if ours(r.PartnerRefundNo) && !known[r.PartnerRefundNo] {
			f.violate(&f.Orphans, "ledger refund %s (refundNo %s, %d of %s) is unknown to the state", r.PartnerRefundNo, r.RefundNo, r.Amount, r.PartnerReferenceNo)
		}
	}

	// Charges.
	known = map[string]bool{}
	for _, c := range s.Charges {
		known[c.PartnerReferenceNo] = true
		p, ok := payments[c.PartnerReferenceNo]
		switch c.Status {
		case state.ChargeSucceeded:
			switch {
			case !ok || !paid(p.Status):
				f.violate(&f.Ghosts, "%s attempt %d: the state says %s succeeded; the ledger has %v (status %q)", c.Address, c.Attempt, c.PartnerReferenceNo, ok, p.Status)
			case p.ReferenceNo != c.ReferenceNo || p.Amount != int64(c.Amount):
				f.violate(&f.Mismatches, "%s attempt %d: state referenceNo %s amount %d; ledger %s %d", c.Address, c.Attempt, c.ReferenceNo, int64(c.Amount), p.ReferenceNo, p.Amount)
			}
		case state.ChargeFailed, state.ChargeExpired, state.ChargeDeferred:
			if ok && paid(p.Status) {
				f.violate(&f.Mismatches, "%s attempt %d: the state says %s %s; the ledger has it paid (%s)", c.Address, c.Attempt, c.PartnerReferenceNo, c.Status, p.ReferenceNo)
			}
		default:
			f.violate(&f.Mismatches, "%s attempt %d: %s is still %s in the state (ledger status %q)", c.Address, c.Attempt, c.PartnerReferenceNo, c.Status, p.Status)
		}
	}
	for _, p := range l.Payments {
		if ours(p.PartnerReferenceNo) && !known[p.PartnerReferenceNo] {
			f.violate(&f.Orphans, "ledger payment %s (status %s, referenceNo %s) is unknown to the state", p.PartnerReferenceNo, p.Status, p.ReferenceNo)
		}
	}

	// Bindings: the state's status is the ledger's, for the same authCode
	// when the ledger shows it (an in-process sandbox does).
	for addr, b := range s.Bindings {
		var match []sandbox.Binding
		for _, lb := range l.Bindings {
			if lb.CustIDMerchant == b.CustomerID && (lb.AuthCode == "" || b.AuthCode.IsZero() || lb.AuthCode == b.AuthCode.Reveal()) {
				match = append(match, lb)
			}
		}
		want := map[state.BindingStatus]string{state.BindingActive: sandbox.BindingActive, state.BindingUnbound: sandbox.BindingUnbound}[b.Status]
		if want == "" {
			continue // pending or failed: the ledger may hold several requests
		}
		if !slices.ContainsFunc(match, func(lb sandbox.Binding) bool { return lb.Status == want }) {
			if len(match) == 0 {
				f.violate(&f.Ghosts, "%s: the state says %s; the ledger has no binding of customer %s with its authCode", addr, b.Status, b.CustomerID)
			} else {
				f.violate(&f.Mismatches, "%s: the state says %s; the ledger's binding of customer %s is %s", addr, b.Status, b.CustomerID, match[0].Status)
			}
		}
	}
	return f
}

// requireOracle fails tb with the oracle's violations (the first 30).
func requireOracle(tb testing.TB, f oracleFigures) {
	tb.Helper()
	for i, v := range f.Violations {
		if i == 30 {
			tb.Errorf("oracle: … and %d more violations", len(f.Violations)-30)
			break
		}
		tb.Errorf("oracle: %s", v)
	}
}

// integrityCheck runs PRAGMA integrity_check on the state file at path,
// read only, and returns its answer ("ok" when sound).
func integrityCheck(tb testing.TB, path string) string {
	tb.Helper()
	db := openReadOnly(tb, path)
	defer db.Close()
	var res string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil {
		tb.Fatal(err)
	}
	return res
}

// statePath is the state file of the configuration directory dir (the
// default settings.state).
func statePath(dir string) string { return filepath.Join(dir, "ddctl.db") }

// openReadOnly opens the state file at path read only, with SQL: for what
// the state has no method for.
func openReadOnly(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite3", "file:"+state.EscapePath(path)+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		tb.Fatal(err)
	}
	return db
}
