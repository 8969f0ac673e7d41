package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// The operator scenarios: what operators and calendars do to a working
// setup (restore a backup, rename a block, a DST night, a binding gone at
// DOKU, a daemon down for a while, a CSV in the wrong unit), each played
// with the real binary against a sandbox over HTTP, and judged by the
// ledger oracle (oracle_test.go): no occurrence paid twice, no refund made
// twice, nothing demanded left undone. Each test logs the oracle's verdict.
//
// The scenarios run at the real time: their dates are derived from now,
// so that they pass on any day. Waits are real too (retry.every is at
// least a minute): the tests run in parallel, so that they overlap.

// scenario is one operator scenario: a sandbox (customers approve every
// binding and payment after 50 ms) and a configuration directory.
type scenario struct {
	t      *testing.T
	sb     *sandboxtest.Env
	dir    string
	prefix string
}

// jakarta is where the scenarios' schedules run (settings.timezone's
// default).
var jakarta = time.FixedZone("WIB", 7*3600)

func newScenario(t *testing.T, prefix string, configure ...func(*sandbox.Config)) *scenario {
	t.Helper()
	sb := sandboxtest.New(t, append([]func(*sandbox.Config){func(c *sandbox.Config) { c.AutoApprove = 50 * time.Millisecond }}, configure...)...)
	s := &scenario{t: t, sb: sb, dir: t.TempDir(), prefix: prefix}
	sb.WriteDOKUBlock(t, filepath.Join(s.dir, "doku.hcl"))
	return s
}

// write writes the configuration file name (main.hcl gets the settings
// block with the scenario's reference prefix).
func (s *scenario) write(name, body string) {
	s.t.Helper()
	if name == "main.hcl" {
		body = fmt.Sprintf("settings {\n  reference_prefix = %q\n}\n\n", s.prefix) + body
	}
	if err := os.WriteFile(filepath.Join(s.dir, name), []byte(body), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// settings rewrites main.hcl's settings block with more lines in it.
func (s *scenario) settings(lines string) {
	s.t.Helper()
	path := filepath.Join(s.dir, "main.hcl")
	b, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	head := fmt.Sprintf("settings {\n  reference_prefix = %q\n", s.prefix)
	body, ok := strings.CutPrefix(string(b), head)
	if !ok {
		s.t.Fatalf("main.hcl does not start with the scenario's settings block")
	}
	if err := os.WriteFile(path, []byte(head+lines+"\n"+body), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// customer creates the Allo account of phone with a balance in rupiah.
func (s *scenario) customer(phone string, balance int64) {
	s.t.Helper()
	raw, _ := json.Marshal(fmt.Sprint(balance))
	if _, err := s.sb.Server.PutCustomer(context.Background(), sandbox.NewCustomer{Phone: phone, Balance: raw}); err != nil {
		s.t.Fatal(err)
	}
}

// run runs ddctl in the scenario's directory.
func (s *scenario) run(args ...string) (stdout, stderr string, code int) {
	s.t.Helper()
	return runDDCTL(s.t, s.dir, args...)
}

// apply runs ddctl apply -auto-approve with args; it must exit with one
// of codes (0 when none is given).
func (s *scenario) apply(args ...string) string {
	s.t.Helper()
	out, errOut, code := s.run(append([]string{"apply", "-auto-approve"}, args...)...)
	if code != 0 {
		s.t.Fatalf("ddctl apply %s exited %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// settle waits for the customers' auto-approval, then applies until a plan
// has nothing to send and nothing awaiting (each apply's status inquiries
// learn what the customers did). It returns the last plan's output.
func (s *scenario) settle() string {
	s.t.Helper()
	var out string
	for range 20 {
		time.Sleep(150 * time.Millisecond)
		s.apply()
		o, _, code := s.run("plan", "-detailed-exitcode")
		out = o
		if code != 2 && !strings.Contains(out, "Awaiting the customer") {
			return out
		}
	}
	s.t.Fatalf("no settled plan after 20 applies:\n%s", out)
	return ""
}

// bind applies the configuration (its bindings are requested and approved)
// and a plan that sees them active: nothing else may be due yet.
func (s *scenario) bind() {
	s.t.Helper()
	out := s.apply()
	if !strings.Contains(out, ": requested; the customer") {
		s.t.Fatalf("the first apply requested no binding:\n%s", out)
	}
	time.Sleep(150 * time.Millisecond)
	if out, _, code := s.run("plan"); code != 0 || strings.Contains(out, "Awaiting the customer") {
		s.t.Fatalf("plan after the binding was approved (exit %d):\n%s", code, out)
	}
}

func (s *scenario) statePath() string { return statePath(s.dir) }

// copyFile copies a closed SQLite file and drops what its WAL held: as
// cp of a state file does.
func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	in, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	os.Remove(to + "-wal")
	os.Remove(to + "-shm")
}

// backup copies the state file to name, as an operator's backup does.
func (s *scenario) backup(name string) string {
	s.t.Helper()
	to := filepath.Join(s.t.TempDir(), name)
	copyFile(s.t, s.statePath(), to)
	return to
}

// putBack copies a backup over the state file, as an operator restoring
// by hand does (cp backup.db ddctl.db).
func (s *scenario) putBack(from string) {
	s.t.Helper()
	copyFile(s.t, from, s.statePath())
}

// want is what the configuration demands: the given charge occurrences
// of the charge at chargeAddr, and the refunds given.
func (s *scenario) want(charges map[string][]time.Time, amount map[string]int64, refunds ...wantRefund) oracleWant {
	w := oracleWant{Prefix: s.prefix, Refunds: refunds}
	for addr, occs := range charges {
		for _, at := range occs {
			occ := spec.OccurrenceAddress(addr, at, jakarta)
			wc := wantCharge{Occurrence: occ, Amount: amount[addr], Attempts: oracleAttempts}
			for n := 1; n <= oracleAttempts; n++ {
				wc.Keys = append(wc.Keys, reconcile.IdempotencyKey(s.prefix, addr, occ, n))
			}
			w.Charges = append(w.Charges, wc)
		}
	}
	for i := range w.Refunds {
		if w.Refunds[i].Key == "" {
			w.Refunds[i].Key = reconcile.IdempotencyKey(s.prefix, w.Refunds[i].Address, "", 1)
		}
	}
	return w
}

// chargeWant is the occurrence at of a charge whose idempotency keys were
// derived from keyAddr (its address when it was first charged), of amount.
func (s *scenario) chargeWant(keyAddr string, at time.Time, amount int64, loc *time.Location) wantCharge {
	occ := spec.OccurrenceAddress(keyAddr, at, loc)
	wc := wantCharge{Occurrence: occ, Amount: amount, Attempts: oracleAttempts}
	for n := 1; n <= oracleAttempts; n++ {
		wc.Keys = append(wc.Keys, reconcile.IdempotencyKey(s.prefix, keyAddr, occ, n))
	}
	return wc
}

// verdict judges the ledger and the state against w, logs the verdict and
// fails the test on any violation.
func (s *scenario) verdict(w oracleWant) oracleFigures {
	s.t.Helper()
	f := checkOracle(s.sb.Ledger(s.t), readOracleState(s.t, s.statePath(), state.OpenOptions{AllowPlaintextSecrets: true}), w)
	s.t.Logf("oracle verdict: %d double payments, %d double refunds, %d lost (%d charges, %d refunds demanded); %s",
		f.DoubleCharges, f.DoubleRefunds, f.MissingCharges+f.MissingRefunds, f.ChargesDemanded, f.RefundsDemanded, f)
	requireOracle(s.t, f)
	return f
}

// paidOf counts the ledger's paid payments under the scenario's prefix.
func (s *scenario) paidOf() int {
	n := 0
	for _, p := range s.sb.Ledger(s.t).Payments {
		if strings.HasPrefix(p.PartnerReferenceNo, s.prefix) && paid(p.Status) {
			n++
		}
	}
	return n
}

const alicePhone = "6281234567890"

const aliceBinding = `binding "alice" {
  customer_id = "cust-001"
  phone       = "` + alicePhone + `"
  success_url = "https://shop.example/ok"
  failed_url  = "https://shop.example/failed"
}
`

// dailyCharge is a charge of amount (rupiah) every day at the wall-clock time of
// at, from at's day on, with retry.
func dailyCharge(name string, at time.Time, amount int64, extra string) string {
	at = at.In(jakarta)
	return fmt.Sprintf(`recurring_charge %q {
  binding  = binding.alice
  amount   = %d
  schedule = "%d %d * * *"
  start    = %q
%s}
`, name, amount, at.Minute(), at.Hour(), at.Format(time.DateOnly), extra)
}

// recentMinute is a minute of today (Jakarta) that has just passed: a
// daily occurrence due now.
func recentMinute() time.Time {
	return time.Now().In(jakarta).Add(-2 * time.Minute).Truncate(time.Minute)
}

const retry3 = "  retry {\n    attempts = 3\n    every    = \"1m\"\n  }\n"

// Scenario 1: a state restored by hand after a charge was paid, while the
// customer's balance no longer covers it (they were just charged). The
// restored state has no record of the payment; ddctl must find it at
// DOKU before it defers, records or charges anything. The mirror: attempt
// 1 deferred, attempt 2 paid, then the state put back to before attempt 2.
func TestScenarioRestoredStateLowBalance(t *testing.T) {
	t.Parallel()
	t.Run("PaidThenRestored", func(t *testing.T) {
		t.Parallel()
		s := newScenario(t, "RESTORE")
		at := recentMinute()
		s.customer(alicePhone, 200000) // IDR 200,000.00
		s.write("main.hcl", aliceBinding+dailyCharge("gym", at, 150000, retry3))
		s.bind()
		before := s.backup("before-charge.db")
		s.settle() // charged and paid: IDR 50,000.00 left
		if n := s.paidOf(); n != 1 {
			t.Fatalf("%d payments paid before the restore, want 1", n)
		}
		s.putBack(before)
		// The balance stays low: whatever the state says, nothing may be
		// charged again, now or once retry.every has passed.
		s.apply()
		s.run("plan")
		time.Sleep(65 * time.Second)
		s.customer(alicePhone, 200000) // topped up
		s.settle()
		if n := s.paidOf(); n != 1 {
			t.Errorf("%d payments paid for one occurrence, want 1", n)
		}
		s.verdict(s.want(map[string][]time.Time{"recurring_charge.gym": {at}}, map[string]int64{"recurring_charge.gym": 15000000}))
	})
	t.Run("DeferredPaidThenRestored", func(t *testing.T) {
		t.Parallel()
		s := newScenario(t, "MIRROR")
		at := recentMinute()
		s.customer(alicePhone, 10000) // IDR 10,000.00: attempt 1 is deferred
		s.write("main.hcl", aliceBinding+dailyCharge("gym", at, 150000, retry3))
		s.bind()
		if out := s.apply(); !strings.Contains(out, "insufficient balance") {
			t.Fatalf("attempt 1 was not deferred:\n%s", out)
		}
		afterDeferral := s.backup("after-deferral.db")
		s.customer(alicePhone, 200000)
		time.Sleep(65 * time.Second) // retry.every
		s.settle()                   // attempt 2 paid
		if n := s.paidOf(); n != 1 {
			t.Fatalf("%d payments paid before the restore, want 1", n)
		}
		s.putBack(afterDeferral)
		// The balance is low again (attempt 2 took it): nothing may be
		// deferred as "not sent" under attempt 2's key, and nothing
		// charged under attempt 3's once retry.every has passed.
		s.apply()
		time.Sleep(65 * time.Second)
		s.customer(alicePhone, 200000)
		s.settle()
		if n := s.paidOf(); n != 1 {
			t.Errorf("%d payments paid for one occurrence, want 1", n)
		}
		s.verdict(s.want(map[string][]time.Time{"recurring_charge.gym": {at}}, map[string]int64{"recurring_charge.gym": 15000000}))
	})
}

// Scenario 2: a saved plan applied, the state put back by hand to its copy
// from before, and the same plan applied again: it must be refused, and
// not a request of it sent twice.
func TestScenarioSavedPlanAfterRestore(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "SAVED")
	s.customer(alicePhone, 200000)
	var refunds []wantRefund
	var hcl strings.Builder
	hcl.WriteString(aliceBinding)
	for i := range 3 {
		ref := fmt.Sprintf("INV-%d", i)
		s.sb.Pay(t, ref, 5000000)
		fmt.Fprintf(&hcl, "refund \"r%d\" {\n  payment = %q\n  binding = binding.payer\n}\n", i, ref)
		refunds = append(refunds, wantRefund{Address: fmt.Sprintf("refund.r%d", i), Payment: ref})
	}
	s.write("main.hcl", hcl.String())
	adoptPayer(t, s.sb, s.dir, nil)
	planFile := filepath.Join(s.dir, "reviewed.plan")
	if _, errOut, code := s.run("plan", "-out="+planFile); code != 0 {
		t.Fatalf("plan: %d %s", code, errOut)
	}
	copyOf := s.backup("copy.db")
	if out, errOut, code := s.run("apply", planFile); code != 0 {
		t.Fatalf("apply of the reviewed plan: %d\n%s\n%s", code, out, errOut)
	}
	refundsSent, bindsSent := s.sb.Calls(doku.OpRefund), s.sb.Calls(doku.OpBinding)
	s.putBack(copyOf)
	out, errOut, code := s.run("apply", planFile)
	if code == 0 {
		t.Errorf("the reviewed plan was applied again after the restore:\n%s", out)
	}
	if !strings.Contains(errOut, "restored") {
		t.Errorf("the refusal does not say the state was restored:\n%s", errOut)
	}
	if r, b := s.sb.Calls(doku.OpRefund), s.sb.Calls(doku.OpBinding); r != refundsSent || b != bindsSent {
		t.Errorf("after the restore, %d refund and %d binding requests were sent again", r-refundsSent, b-bindsSent)
	}
	s.settle()
	if r := s.sb.Calls(doku.OpRefund); r != refundsSent {
		t.Errorf("%d refund requests in all for 3 refunds (%d after the restore)", r, r-refundsSent)
	}
	s.verdict(s.want(nil, nil, refunds...))
}

// Scenario 3: a charge paid, then its block renamed (and the refund of it
// renamed too) with no moved block: nothing may be charged or refunded
// again, the plan says which moved block to write, and once it is written
// everything is up to date, with no call.
func TestScenarioRenamedBlock(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "RENAME")
	at := recentMinute()
	s.customer(alicePhone, 500000)
	s.write("main.hcl", aliceBinding+dailyCharge("gym", at, 150000, ""))
	s.bind()
	s.settle()
	occ := "recurring_charge.gym#" + at.Format(spec.OccurrenceLayout)
	s.write("refund.hcl", fmt.Sprintf("refund \"gym_back\" {\n  payment = %q\n}\n", occ))
	s.settle()
	payments, refundCalls := s.sb.Calls(doku.OpPayment), s.sb.Calls(doku.OpRefund)

	renamedOcc := "recurring_charge.gym_membership#" + at.Format(spec.OccurrenceLayout)
	s.write("main.hcl", aliceBinding+dailyCharge("gym_membership", at, 150000, ""))
	s.write("refund.hcl", fmt.Sprintf("refund \"gym_refund\" {\n  payment = %q\n}\n", renamedOcc))
	out, _, code := s.run("plan")
	if code != 1 || !strings.Contains(out, "from = recurring_charge.gym") || !strings.Contains(out, "to   = recurring_charge.gym_membership") {
		t.Errorf("plan of the renamed charge (exit %d) does not name the moved block to write:\n%s", code, out)
	}
	s.run("apply", "-auto-approve")
	if p, r := s.sb.Calls(doku.OpPayment), s.sb.Calls(doku.OpRefund); p != payments || r != refundCalls {
		t.Fatalf("the rename sent %d payment and %d refund requests", p-payments, r-refundCalls)
	}

	s.write("moved.hcl", "moved {\n  from = recurring_charge.gym\n  to   = recurring_charge.gym_membership\n}\n\nmoved {\n  from = refund.gym_back\n  to   = refund.gym_refund\n}\n")
	out = s.apply()
	if !strings.Contains(out, "moved to recurring_charge.gym_membership") {
		t.Errorf("apply with the moved blocks:\n%s", out)
	}
	if out, _, code := s.run("plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("plan after the moves (exit %d), want nothing to do:\n%s", code, out)
	}
	if p, r := s.sb.Calls(doku.OpPayment), s.sb.Calls(doku.OpRefund); p != payments || r != refundCalls {
		t.Errorf("the moves sent %d payment and %d refund requests", p-payments, r-refundCalls)
	}
	gym := s.chargeWant("recurring_charge.gym", at, 15000000, jakarta)
	w := s.want(nil, nil, wantRefund{Address: "refund.gym_refund", Key: reconcile.IdempotencyKey(s.prefix, "refund.gym_back", "", 1), Charge: gym.Occurrence})
	w.Charges = []wantCharge{gym}
	s.verdict(w)
	if n := s.paidOf(); n != 1 || len(s.sb.Ledger(t).Refunds) != 1 {
		t.Errorf("%d payments paid and %d refunds, want 1 and 1", n, len(s.sb.Ledger(t).Refunds))
	}
}

// lastChange is the last day, at least three days before now, on which
// the clocks of loc moved back (back) or forward, as midnight of that day
// in loc: the charges of TestScenarioDST run from the day before it to the
// day after it, all due by now.
func lastChange(loc *time.Location, back bool) time.Time {
	d := time.Now().In(loc).AddDate(0, 0, -3)
	day := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc)
	for range 800 {
		prev := day.AddDate(0, 0, -1)
		_, a := prev.Zone()
		_, b := day.Zone()
		if a != b && (b < a) == back {
			return prev
		}
		day = prev
	}
	panic("no DST change in the last 800 days")
}

// Scenario 4: a daily charge in America/New_York across the last night its
// clocks went back (01:30 happens twice) and the last night they went
// forward (02:30 does not happen): one payment per day, each night.
func TestScenarioDST(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	s := newScenario(t, "DSTNIGHT")
	s.customer(alicePhone, 1000000)
	back, forward := lastChange(ny, true), lastChange(ny, false)
	day := func(t time.Time, n int) string { return t.AddDate(0, 0, n).Format(time.DateOnly) }
	s.write("main.hcl", aliceBinding+fmt.Sprintf(`
recurring_charge "fall" {
  binding  = binding.alice
  amount   = 10000
  schedule = "30 1 * * *"
  start    = %q
  end      = %q
  catch_up = "all"
}

recurring_charge "spring" {
  binding  = binding.alice
  amount   = 20000
  schedule = "30 2 * * *"
  start    = %q
  end      = %q
  catch_up = "all"
}
`, day(back, -1), day(back, 2), day(forward, -1), day(forward, 2)))
	s.settings(`  timezone = "America/New_York"`)
	s.bind()
	s.settle()
	// Three days each, the night of the change in the middle: one payment
	// a day. The charges are told apart by their amounts.
	paidBy := map[int64]int{}
	for _, p := range s.sb.Ledger(t).Payments {
		if strings.HasPrefix(p.PartnerReferenceNo, s.prefix) && paid(p.Status) {
			paidBy[p.Amount]++
		}
	}
	if paidBy[1000000] != 3 {
		t.Errorf("the 01:30 charge was paid %d times for the 3 days around %s (clocks back), want 3", paidBy[1000000], back.Format(time.DateOnly))
	}
	if paidBy[2000000] != 3 {
		t.Errorf("the 02:30 charge was paid %d times for the 3 days around %s (clocks forward), want 3", paidBy[2000000], forward.Format(time.DateOnly))
	}
	cfg := loadSpec(t, s.dir)
	f := s.verdict(wantOf(t, cfg, time.Now()))
	if f.ChargesDemanded != 6 {
		t.Errorf("the configuration demands %d occurrences, want 6", f.ChargesDemanded)
	}
}

// Scenario 5: a refund of a charge occurrence whose payer's binding was
// removed at DOKU (outside ddctl): the customer-token exchange is refused.
// No refund request leaves, so none is recorded as refused by DOKU: the
// refund waits, saying why and what to do, and nothing is lost.
func TestScenarioRefusedTokenExchange(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "TOKEN")
	at := recentMinute()
	s.customer(alicePhone, 500000)
	s.write("main.hcl", aliceBinding+dailyCharge("gym", at, 150000, ""))
	s.bind()
	s.settle()
	// The customer unbinds in their app: DOKU's side only.
	st := readOracleState(t, s.statePath(), state.OpenOptions{AllowPlaintextSecrets: true})
	client := s.sb.Client(t)
	if _, err := client.Unbind(context.Background(), doku.RequestOptions{AuthCode: st.Bindings["binding.alice"].AuthCode}); err != nil {
		t.Fatal(err)
	}
	occ := "recurring_charge.gym#" + at.Format(spec.OccurrenceLayout)
	s.write("refund.hcl", fmt.Sprintf("refund \"gym_back\" {\n  payment = %q\n}\n", occ))
	// The first apply may still hold the customer's token from the charge
	// (DOKU answers it with 401 Invalid Customer Token: nothing happened);
	// the next one must exchange the authCode again, and DOKU refuses.
	for range 2 {
		out, _, _ := s.run("apply", "-auto-approve")
		if strings.Contains(out, "DOKU refused this refund") || strings.Contains(out, "failed: DOKU answered") {
			t.Errorf("a refund never sent is reported as refused by DOKU:\n%s", out)
		}
	}
	out, _, _ := s.run("plan")
	if !strings.Contains(out, "not sent") || !strings.Contains(out, "binding") || strings.Contains(out, "DOKU refused this refund") {
		t.Errorf("the plan after the refusal does not say the refund was not sent and why:\n%s", out)
	}
	show, _, _ := s.run("state", "show", "refund.gym_back")
	if strings.Contains(show, "status               = failed") {
		t.Errorf("the refund is recorded as failed:\n%s", show)
	}
	if n := len(s.sb.Ledger(t).Refunds); n != 0 {
		t.Errorf("%d refunds in the ledger, want 0", n)
	}
	// Nothing is doubled, and nothing is lost: the refund is not made
	// and not given up; it waits, pending, for the binding. (The oracle
	// also reports the binding ddctl still has as active, and the
	// refund as pending: that is this scenario.)
	f := checkOracle(s.sb.Ledger(t), readOracleState(t, s.statePath(), state.OpenOptions{AllowPlaintextSecrets: true}),
		s.want(map[string][]time.Time{"recurring_charge.gym": {at}}, map[string]int64{"recurring_charge.gym": 15000000}))
	refund, ok := readOracleState(t, s.statePath(), state.OpenOptions{AllowPlaintextSecrets: true}).Refunds["refund.gym_back"]
	lost := f.MissingCharges
	if !ok || refund.Status != state.RefundPending {
		lost++ // given up: recorded as refused, or forgotten
	}
	t.Logf("oracle verdict: %d double payments, %d double refunds, %d lost; the refund waits, %s, for the binding to change: %s",
		f.DoubleCharges, f.DoubleRefunds, lost, refund.Status, f)
	if f.DoubleCharges+f.DoubleRefunds+lost > 0 {
		t.Errorf("doubled or lost: %v", f.Violations)
	}
}

// Scenario 6a: catch_up = "none", and an attempt deferred three hours
// ago: retry governs it, not catch_up; it is retried.
func TestScenarioCatchUpKeepsRetries(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "RETRYOLD")
	at := time.Now().In(jakarta).Add(-3 * time.Hour).Truncate(time.Minute)
	s.customer(alicePhone, 10000) // too little: deferred
	s.write("main.hcl", aliceBinding+dailyCharge("gym", at, 150000, "  catch_up = \"none\"\n"+retry3))
	s.bind()
	// A plan of five minutes after the occurrence defers its first
	// attempt (ddctl, or its daemon, ran then).
	planFile := filepath.Join(s.dir, "then.plan")
	if out, errOut, code := s.run("plan", "-at="+at.Add(5*time.Minute).Format(time.RFC3339), "-out="+planFile); code != 0 || !strings.Contains(out, "insufficient balance") {
		t.Fatalf("plan five minutes after the occurrence (exit %d):\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code := s.run("apply", planFile); code != 0 {
		t.Fatalf("apply: %d\n%s\n%s", code, out, errOut)
	}
	s.customer(alicePhone, 200000)
	time.Sleep(65 * time.Second) // retry.every
	s.settle()
	if n := s.paidOf(); n != 1 {
		t.Errorf("%d payments paid, want 1: the deferred occurrence was not retried", n)
	}
	s.verdict(s.want(map[string][]time.Time{"recurring_charge.gym": {at}}, map[string]int64{"recurring_charge.gym": 15000000}))
}

// Scenario 6b: a charge every three minutes with catch_up = "none", whose
// last hour of occurrences went by before its binding was active: only the
// occurrence due now is charged, not the hour's (no hidden hour).
func TestScenarioCatchUpNone(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "EVERY3")
	s.customer(alicePhone, 1000000)
	start := time.Now().In(jakarta).Add(-time.Hour).Truncate(time.Hour)
	// It ends now: an occurrence coming due while the test runs is not
	// its business.
	end := time.Now().In(jakarta).Truncate(time.Second)
	s.write("main.hcl", aliceBinding+fmt.Sprintf(`
recurring_charge "tea" {
  binding  = binding.alice
  amount   = 10000
  schedule = "*/3 * * * *"
  start    = %q
  end      = %q
  catch_up = "none"
}
`, start.Format(time.RFC3339), end.Format(time.RFC3339)))
	s.bind()
	s.apply()
	if n := s.sb.Calls(doku.OpPayment); n != 1 {
		t.Errorf("%d payment requests, want 1: the occurrence due now, none of the missed ones", n)
	}
	s.settle()
	if n := s.paidOf(); n != 1 {
		t.Errorf("%d paid, want 1", n)
	}
	// The occurrence charged is the one that was due then: whichever the
	// state holds; the oracle demands it paid once, and nothing else.
	st := readOracleState(t, s.statePath(), state.OpenOptions{AllowPlaintextSecrets: true})
	var charged []time.Time
	for _, c := range st.Charges {
		charged = append(charged, c.Occurrence)
	}
	if len(charged) != 1 {
		t.Fatalf("the state holds %d charge attempts, want 1: %+v", len(charged), st.Charges)
	}
	s.verdict(s.want(map[string][]time.Time{"recurring_charge.tea": charged}, map[string]int64{"recurring_charge.tea": 1000000}))
}

// A moved block for each kind (a charge, a block of refunds, a binding):
// apply moves the state's entries and makes no call at all.
func TestMovedBlockNoCall(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "MOVED")
	at := recentMinute()
	s.customer(alicePhone, 500000)
	s.sb.Pay(t, "INV-1", 1000000)
	s.sb.Pay(t, "INV-2", 2000000)
	batch := "refund \"batch\" {\n  for_each = { a = \"INV-1\", b = \"INV-2\" }\n  payment  = each.value\n  binding  = binding.payer\n}\n"
	s.write("main.hcl", aliceBinding+dailyCharge("gym", at, 150000, "")+batch)
	adoptPayer(t, s.sb, s.dir, nil)
	s.bind()
	s.settle()
	calls := s.sb.Server.Stats().Calls

	renamed := strings.Replace(aliceBinding, `binding "alice"`, `binding "alice_2026"`, 1) +
		strings.Replace(strings.Replace(dailyCharge("gym", at, 150000, ""), `"gym"`, `"gym_membership"`, 1), "binding.alice", "binding.alice_2026", 1) +
		strings.Replace(batch, `"batch"`, `"batch_2026"`, 1) + `
moved {
  from = recurring_charge.gym
  to   = recurring_charge.gym_membership
}

moved {
  from = refund.batch
  to   = refund.batch_2026
}

moved {
  from = binding.alice
  to   = binding.alice_2026
}
`
	s.write("main.hcl", renamed)
	out, _, code := s.run("plan", "-detailed-exitcode")
	if code != 2 || !strings.Contains(out, "# refund.batch has moved to refund.batch_2026 (2 entries)") {
		t.Errorf("plan with moved blocks (exit %d):\n%s", code, out)
	}
	s.apply()
	if out, _, code := s.run("plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("plan after the moves (exit %d):\n%s", code, out)
	}
	after := s.sb.Server.Stats().Calls
	for op, n := range after {
		if op != "token_b2b" && n != calls[op] {
			t.Errorf("%s calls %d -> %d: the moves made calls", op, calls[op], n)
		}
	}
	list, _, _ := s.run("state", "list")
	for _, a := range []string{"binding.alice_2026", "recurring_charge.gym_membership#", `refund.batch_2026["a"]`, `refund.batch_2026["b"]`} {
		if !strings.Contains(list, a) {
			t.Errorf("state list has no %s:\n%s", a, list)
		}
	}
	hist, _, _ := s.run("history")
	if !strings.Contains(hist, "moved from recurring_charge.gym") {
		t.Errorf("history does not show the move:\n%s", hist)
	}
	w := s.want(nil, nil,
		wantRefund{Address: `refund.batch_2026["a"]`, Key: reconcile.IdempotencyKey(s.prefix, `refund.batch["a"]`, "", 1), Payment: "INV-1"},
		wantRefund{Address: `refund.batch_2026["b"]`, Key: reconcile.IdempotencyKey(s.prefix, `refund.batch["b"]`, "", 1), Payment: "INV-2"})
	w.Charges = []wantCharge{s.chargeWant("recurring_charge.gym", at, 15000000, jakarta)}
	s.verdict(w)
}

// Renames nobody declared: a refund, a binding and a charge each under a
// new name. Each is an error naming both addresses and the moved block to
// write, and nothing at all is sent.
func TestUndeclaredRenameNoCall(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "UNDECL")
	at := recentMinute()
	s.customer(alicePhone, 500000)
	s.sb.Pay(t, "INV-1", 1000000)
	s.write("main.hcl", aliceBinding+dailyCharge("gym", at, 150000, "")+"refund \"order_1\" {\n  payment = \"INV-1\"\n  binding = binding.payer\n}\n")
	adoptPayer(t, s.sb, s.dir, nil)
	s.bind()
	s.settle()
	calls := s.sb.Server.Stats().Calls

	s.write("main.hcl", strings.Replace(aliceBinding, `binding "alice"`, `binding "alice_2"`, 1)+
		strings.Replace(strings.Replace(dailyCharge("gym", at, 150000, ""), `"gym"`, `"fitness"`, 1), "binding.alice", "binding.alice_2", 1)+
		"refund \"order_one\" {\n  payment = \"INV-1\"\n  binding = binding.payer\n}\n")
	out, _, code := s.run("plan")
	if code != 1 {
		t.Errorf("plan exited %d, want 1", code)
	}
	for _, want := range []string{
		"refund.order_one: looks like refund.order_1 renamed", "from = refund.order_1",
		"binding.alice_2: looks like binding.alice renamed", "from = binding.alice",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan does not say %q:\n%s", want, out)
		}
	}
	s.run("apply", "-auto-approve")
	for op, n := range s.sb.Server.Stats().Calls {
		if (op == "refund" || op == "payment" || op == "binding") && n != calls[op] {
			t.Errorf("%s calls %d -> %d: an undeclared rename moved money or bound again", op, calls[op], n)
		}
	}
	s.verdict(s.want(map[string][]time.Time{"recurring_charge.gym": {at}}, map[string]int64{"recurring_charge.gym": 15000000},
		wantRefund{Address: "refund.order_1", Payment: "INV-1"}))
}

// ddctl state restore, then apply: the restored state asks DOKU before
// it charges or refunds, so nothing is done twice; a plan saved before
// the restore is refused.
func TestStateRestoreThenApply(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "STRESTORE")
	at := recentMinute()
	s.customer(alicePhone, 200000)
	s.sb.Pay(t, "INV-1", 1000000)
	s.write("main.hcl", aliceBinding+dailyCharge("gym", at, 150000, retry3)+"refund \"order_1\" {\n  payment = \"INV-1\"\n  binding = binding.payer\n}\n")
	adoptPayer(t, s.sb, s.dir, nil)
	s.bind()
	before := s.backup("nightly.db")
	planFile := filepath.Join(s.dir, "old.plan")
	s.run("plan", "-out="+planFile)
	s.settle()
	payments, refunds := s.sb.Calls(doku.OpPayment), s.sb.Calls(doku.OpRefund)

	out, errOut, code := s.run("state", "restore", before)
	if code != 0 || !strings.Contains(out, "generation 2") {
		t.Fatalf("state restore (exit %d):\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code := s.run("apply", planFile); code == 0 || !strings.Contains(errOut, "restored") {
		t.Errorf("a plan saved before the restore applied (exit %d):\n%s\n%s", code, out, errOut)
	}
	s.settle()
	time.Sleep(65 * time.Second) // retry.every: no attempt 2 either
	s.settle()
	if p, r := s.sb.Calls(doku.OpPayment), s.sb.Calls(doku.OpRefund); p != payments || r != refunds {
		t.Errorf("after the restore, %d payment and %d refund requests were sent", p-payments, r-refunds)
	}
	hist, _, _ := s.run("history")
	if !strings.Contains(hist, "the state was restored: state restore nightly.db") {
		t.Errorf("history does not show the restore:\n%s", hist)
	}
	s.verdict(s.want(map[string][]time.Time{"recurring_charge.gym": {at}}, map[string]int64{"recurring_charge.gym": 15000000},
		wantRefund{Address: "refund.order_1", Payment: "INV-1"}))
}

// A CSV of refunds in sen instead of rupiah (every amount a hundred times
// too large), with settings.limits: the plan names the limits, the totals
// and the instances, and nothing is sent. Overridden with a reason for
// one apply, the refunds are made and the reason is in the history.
func TestLimits(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "LIMITS", func(c *sandbox.Config) { c.RefundPolicy = "partial" })
	// Four payments of IDR 100,000,000.00; the finance team meant to
	// refund IDR 1,000,000.00 of each, and wrote sen in a rupiah column.
	inSen, inRupiah := "order_id,payment_ref,amount\n", "order_id,payment_ref,amount\n"
	var want []wantRefund
	for i := range 4 {
		ref := fmt.Sprintf("INV-%d", i)
		s.sb.Pay(t, ref, 10000000000)
		inSen += fmt.Sprintf("ORD-%d,%s,100000000\n", i, ref)
		inRupiah += fmt.Sprintf("ORD-%d,%s,1000000\n", i, ref)
		want = append(want, wantRefund{Address: fmt.Sprintf("refund.batch[%q]", fmt.Sprintf("ORD-%d", i)), Payment: ref, Amount: 100000000})
	}
	s.write("main.hcl", `refund "batch" {
  for_each = { for r in csvdecode(file("refunds.csv")) : r.order_id => r }
  payment  = each.value.payment_ref
  amount   = each.value.amount
  binding  = binding.payer
}
`)
	s.settings("  limits {\n    refund            = 5000000\n    refunds_per_apply = 2000000\n  }")
	// Partial refunds, so that the amounts themselves are not refused:
	// the limits are what stops them.
	dokuHCL, _ := os.ReadFile(filepath.Join(s.dir, "doku.hcl"))
	os.WriteFile(filepath.Join(s.dir, "doku.hcl"), []byte(strings.Replace(string(dokuHCL), "}\n", "  refund_policy = \"partial\"\n}\n", 1)), 0o600)
	csv := func(body string) {
		if err := os.WriteFile(filepath.Join(s.dir, "refunds.csv"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The payer of the payments, bound outside ddctl, is adopted before
	// the first plan (the configuration reads the CSV, so it is there).
	csv(inSen)
	adoptPayer(t, s.sb, s.dir, nil)

	t.Run("Exceeded", func(t *testing.T) {
		csv(inSen)
		out, _, code := s.run("plan")
		for _, w := range []string{"settings.limits.refund is IDR 5,000,000.00", "the largest IDR 100,000,000.00",
			"settings.limits.refunds_per_apply is IDR 2,000,000.00; this plan comes to IDR 400,000,000.00", `refund.batch["ORD-0"]`} {
			if !strings.Contains(out, w) {
				t.Errorf("plan over the limits does not say %q:\n%s", w, out)
			}
		}
		if code != 1 {
			t.Errorf("plan over the limits exited %d, want 1", code)
		}
		out, errOut, code := s.run("apply", "-auto-approve")
		if code != 1 || !strings.Contains(errOut, "nothing was sent") {
			t.Errorf("apply over the limits (exit %d):\n%s\n%s", code, out, errOut)
		}
		if n := s.sb.Calls(doku.OpRefund); n != 0 {
			t.Errorf("%d refund requests over the limits, want 0", n)
		}
	})
	t.Run("Overridden", func(t *testing.T) {
		// In rupiah now: IDR 1,000,000.00 each, under the single limit,
		// IDR 4,000,000.00 in all, over refunds_per_apply. Finance
		// checked it, and says so.
		csv(inRupiah)
		out, _, code := s.run("plan")
		if code != 1 || !strings.Contains(out, "settings.limits.refunds_per_apply") || strings.Contains(out, "settings.limits.refund is") {
			t.Fatalf("plan (exit %d):\n%s", code, out)
		}
		out, errOut, code := s.run("apply", "-auto-approve", "-override-limits=finance checked the November CSV, ticket 4242")
		if code != 0 || !strings.Contains(out, "going over settings.limits") {
			t.Fatalf("apply with an override (exit %d):\n%s\n%s", code, out, errOut)
		}
		hist, _, _ := s.run("history")
		if !strings.Contains(hist, `over settings.limits because: "finance checked the November CSV, ticket 4242"`) {
			t.Errorf("history does not record the override:\n%s", hist)
		}
		s.verdict(s.want(nil, nil, want...))
	})
}
