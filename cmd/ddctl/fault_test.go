package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// Fault suite settings. The client's timeout
// is cut from DOKU's 30 s to faultTimeout, so that a late commit costs a
// fraction of a second. faultLate holds a late request so long that the
// next run's resolver usually asks about it before it is processed: its
// status inquiry finds nothing, and whatever ddctl then sends must not
// move the money a second time when the late request goes through.
const (
	faultRate    = 0.30 // of every request to DOKU's transactional endpoints
	faultTimeout = 80 * time.Millisecond
	faultLate    = 2 * time.Second
	// The demanded operations, 2,000 in all: charges (faultChargeBlocks
	// blocks of hourly occurrences, caught up), refunds of ddctl's own
	// charge occurrences, and refunds of payments made elsewhere.
	faultChargeBlocks  = 10
	faultOccurrences   = 80 // per block
	faultChargeRefunds = 400
	faultOtherRefunds  = 800
	faultPayers        = 4
	faultMaxRuns       = 60
)

// TestFaultSuite applies 2,000 money operations (800 charges, 400 refunds
// of them, 800 refunds of other payments) against a sandbox that answers
// 30% of all its requests to the transactional endpoints (status,
// balance, payment, refund) with a fault, a quarter of each kind: 500
// before processing; processed, then the connection dropped; 429 with
// Retry-After; a late commit, processed after the client's timeout. It
// plans and applies, as ddctl apply does, with faults on, until a plan
// finds nothing left to do or wait for, and then checks the oracle: each
// occurrence paid once, each refund made once, nothing open, state equal
// to ledger. A run that does not converge within faultMaxRuns fails and
// names what is left.
//
// The engine runs in this process (it is what ddctl apply runs) so that
// its DOKU client can have a short timeout: the binary's is DOKU's 30 s
// (doku.DefaultTimeout), and no flag or setting changes it.
func TestFaultSuite(t *testing.T) {
	start := time.Now()
	ctx := context.Background()
	sb := sandboxtest.New(t, func(c *sandbox.Config) { c.AutoApprove = time.Millisecond })
	dir := t.TempDir()
	sb.WriteDOKUBlock(t, filepath.Join(dir, "doku.hcl"))
	var cfgText strings.Builder
	cfgText.WriteString("settings {\n  reference_prefix = \"FAULTZ\"\n}\n")
	for i := range faultPayers {
		phone := fmt.Sprintf("628130000%04d", i)
		if _, err := sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: phone, Balance: []byte(`"1000000000"`)}); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cfgText, "binding \"p%d\" {\n  customer_id = \"fault-%d\"\n  phone = %q\n  success_url = \"https://x.test/ok\"\n  failed_url = \"https://x.test/fail\"\n}\n", i, i, phone)
	}
	writeHCL(t, dir, "bindings.hcl", cfgText.String())

	// The state is older than the occurrences (2026-01-01 on): faults in normal running,
	// not a lost state (the operator scenarios and the kill soak ask DOKU
	// about keys a new state cannot vouch for).
	key := hexKey()
	st, err := state.OpenWith(statePath(dir), state.OpenOptions{Cipher: mustCipher(t, key), SecretScope: stateScope(t, dir),
		NowFunc: func() time.Time { return time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ccfg := sb.ClientConfig(t)
	ccfg.TokenCache = st
	ccfg.HTTPClient = &http.Client{Timeout: faultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	client, err := doku.NewClient(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	eng := &reconcile.Engine{DOKU: client, Store: st, Parallelism: 20}
	// The refunds of other payments are of the payer's (Pay): the payer,
	// bound outside ddctl, is adopted with the real ddctl import, into the
	// state made above (so that it stays older than the occurrences).
	adoptPayer(t, sb, dir, []string{"DDCTL_STATE_KEY=" + key})

	// The bindings, without faults: they are the ground the charges stand on.
	for range 20 {
		if p := engineRun(t, eng, st, loadSpec(t, dir)); len(p.Actions) == 0 && len(p.Awaiting) == 0 {
			break
		}
		time.Sleep(30 * time.Millisecond) // the sandbox approves each binding on its next tick
	}
	if b, _ := st.Bindings(ctx); activeCount(b) != faultPayers+1 {
		t.Fatalf("%d of %d bindings active before the faults (the charges' and the adopted payer's)", activeCount(b), faultPayers+1)
	}

	// The operations.
	cfgText.Reset()
	for i := range faultChargeBlocks {
		// Hourly occurrences on 2026-01-01, caught up all at once.
		fmt.Fprintf(&cfgText, "recurring_charge \"c%02d\" {\n  binding = binding.p%d\n  amount = %d\n  schedule = \"%d * * * *\"\n  start = \"2026-01-01T00:00:00+07:00\"\n  end = \"2026-01-04T07:59:00+07:00\"\n  catch_up = \"all\"\n}\n",
			i, i%faultPayers, 1000+i, i)
	}
	loc, _ := time.LoadLocation("Asia/Jakarta")
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
	for i := range faultChargeRefunds {
		block, occ := i%faultChargeBlocks, i/faultChargeBlocks
		at := first.Add(time.Duration(occ)*time.Hour + time.Duration(block)*time.Minute)
		fmt.Fprintf(&cfgText, "refund \"c%04d\" {\n  payment = %q\n}\n", i, spec.OccurrenceAddress(fmt.Sprintf("recurring_charge.c%02d", block), at, loc))
	}
	for i := range faultOtherRefunds {
		ref := fmt.Sprintf("SHOP-%04d", i)
		sb.Pay(t, ref, money.Amount(5000+i))
		fmt.Fprintf(&cfgText, "refund \"o%04d\" {\n  payment = %q\n  binding = binding.payer\n}\n", i, ref)
	}
	writeHCL(t, dir, "operations.hcl", cfgText.String())
	cfg := loadSpec(t, dir)
	want := wantOf(t, cfg, time.Now())
	if n := len(want.Charges) + len(want.Refunds); n != 2000 {
		t.Fatalf("the configuration demands %d operations, want 2000", n)
	}

	before := sb.Server.Stats().Calls
	sb.Server.SetFaults(sandbox.Faults{ErrorRate: faultRate / 4, DropRate: faultRate / 4, RateLimitRate: faultRate / 4,
		RetryAfter: time.Second, LateRate: faultRate / 4, LateDelay: faultLate, Ops: []string{"status", "balance", "payment", "refund"}})
	var (
		runs, resends, planErrors int
		retryLaterLeft            int // 429s a run left to the next one
		results                   = map[reconcile.ResultStatus]int{}
		resolved                  = map[state.OpStatus]int{}
		last                      appliedPlan
	)
	for runs < faultMaxRuns {
		runs++
		runStart := time.Now()
		p := engineRun(t, eng, st, cfg)
		last = p
		for _, r := range p.Resolved {
			resolved[r.Status]++
		}
		for _, a := range p.Actions {
			if a.Resend {
				resends++
			}
		}
		planErrors += len(p.Errors)
		for _, e := range p.Errors {
			if strings.Contains(e.Detail, "(HTTP 429)") {
				retryLaterLeft++
			}
		}
		rr := map[reconcile.ResultStatus]int{}
		for _, r := range p.Results {
			results[r.Status]++
			rr[r.Status]++
			if strings.HasPrefix(r.Code, "429") {
				retryLaterLeft++
			}
		}
		t.Logf("run %d (%v): %d earlier outcomes resolved, %d actions (%s), %d problems, %d unresolved, %d awaiting the customer, %d waiting",
			runs, time.Since(runStart).Round(time.Millisecond), len(p.Resolved), len(p.Actions), countsText(rr), len(p.Errors), len(p.Unresolved), len(p.Awaiting), len(p.Waiting))
		if planConverged(p.Plan) {
			break
		}
		if len(p.Actions) == 0 {
			time.Sleep(30 * time.Millisecond) // nothing sent: the customers approve on the sandbox's next tick
		}
	}
	injected := sb.Server.FaultsInjected()
	sb.Server.SetFaults(sandbox.Faults{})
	if !planConverged(last.Plan) {
		var unknown []string
		for _, r := range last.Results {
			if r.Status != reconcile.ResultSucceeded && len(unknown) < 5 {
				unknown = append(unknown, fmt.Sprintf("%s %s: %s %s", r.Action.Address, r.Status, r.Code, r.Message))
			}
		}
		t.Errorf("no convergence after %d runs; the last plan: %s; its first results other than success: %s", runs, planLeft(last.Plan), strings.Join(unknown, "; "))
	}

	// Late commits still held by the sandbox move money after the last
	// run; the oracle waits for them (the httptest server's Close would).
	sb.HTTP.Close()
	l := sb.Ledger(t)
	f := checkOracle(l, oracleStateOf(t, st), want)
	requireOracle(t, f)
	// Requests per key, from the journal: resends under one key.
	perKey := map[string]int{}
	ops, err := st.Operations(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		perKey[op.IdempotencyKey]++
	}
	maxPerKey := 0
	for _, n := range perKey {
		maxPerKey = max(maxPerKey, n)
	}
	calls := sb.Server.Stats().Calls
	delta := map[string]int64{}
	var requests, faults int64
	for op, n := range calls {
		if d := n - before[op]; d > 0 {
			delta[op] = d
			if op == "status" || op == "balance" || op == "payment" || op == "refund" {
				requests += d
			}
		}
	}
	for _, n := range injected {
		faults += n
	}
	t.Logf("fault suite: %d operations demanded (%d charges, %d refunds); converged after %d runs in %v",
		f.ChargesDemanded+f.RefundsDemanded, f.ChargesDemanded, f.RefundsDemanded, runs, time.Since(start).Round(time.Millisecond))
	t.Logf("requests to DOKU's transactional endpoints under faults: %d (%s; status inquiries: %d); faults injected: %d = %.1f%% (%s)",
		requests, countsText(delta), delta["status"], faults, 100*float64(faults)/float64(requests), countsText(injected))
	t.Logf("apply results: %s; resends with the same key: %d; journalled requests: %d, at most %d under one key; "+
		"earlier outcomes the resolver asked about (status inquiry): %s (unknown: it could not ask, and asked again next run); plan problems met on the way (DOKU could not be asked): %d",
		countsText(results), resends, len(ops), maxPerKey, countsText(resolved), planErrors)
	t.Logf("429s (retry later) left by a run to the next: %d", retryLaterLeft)
	t.Logf("oracle: %s", f)
}

// engineRun is one ddctl apply, in this process: plan (resolving what an
// earlier run left open), spend the deferred attempts, and make the calls
// under a recorded run. Its calls share one budget for DOKU's "retry
// later" answers, as those of one ddctl apply process do.
func engineRun(tb testing.TB, eng *reconcile.Engine, st *state.Store, cfg *spec.Config) appliedPlan {
	tb.Helper()
	ctx := context.Background()
	if c, ok := eng.DOKU.(*doku.Client); ok {
		ctx = c.NewRun(ctx)
	}
	p, err := eng.Plan(ctx, cfg, reconcile.PlanOptions{At: time.Now()})
	if err != nil {
		tb.Fatalf("plan: %v", err)
	}
	out := appliedPlan{Plan: p}
	if !p.HasChanges() {
		if _, err := eng.Apply(ctx, p, 0, nil); err != nil { // the deferrals
			tb.Fatal(err)
		}
		return out
	}
	run, err := st.StartRun(ctx, newRun("apply", cfg))
	if err != nil {
		tb.Fatal(err)
	}
	res, err := eng.Apply(ctx, p, run, nil)
	if err != nil {
		tb.Fatal(err)
	}
	out.Results = res.Results
	if err := st.FinishRun(ctx, run, time.Now(), "done"); err != nil {
		tb.Fatal(err)
	}
	return out
}

// appliedPlan is a plan and what applying it did.
type appliedPlan struct {
	*reconcile.Plan
	Results []reconcile.ActionResult
}

// planConverged reports whether p has nothing to do and nothing to wait for.
func planConverged(p *reconcile.Plan) bool {
	return len(p.Actions) == 0 && len(p.Errors) == 0 && len(p.Unresolved) == 0 && len(p.Awaiting) == 0 &&
		len(p.Waiting) == 0 && len(p.Deferred) == 0
}

// planLeft names what keeps p from converging (the first few of each).
func planLeft(p *reconcile.Plan) string {
	var parts []string
	add := func(what string, addrs []string) {
		if len(addrs) == 0 {
			return
		}
		if len(addrs) > 5 {
			addrs = append(addrs[:5:5], fmt.Sprintf("… %d more", len(addrs)-5))
		}
		parts = append(parts, fmt.Sprintf("%s: %s", what, strings.Join(addrs, ", ")))
	}
	var a []string
	for _, x := range p.Actions {
		a = append(a, x.Address)
	}
	add("actions", a)
	a = nil
	for _, x := range p.Errors {
		a = append(a, x.Address+" ("+x.Summary+")")
	}
	add("errors", a)
	a = nil
	for _, x := range p.Unresolved {
		a = append(a, x.Address+" ("+x.Detail+")")
	}
	add("unresolved", a)
	a = nil
	for _, x := range p.Awaiting {
		a = append(a, x.Address)
	}
	add("awaiting", a)
	a = nil
	for _, x := range p.Waiting {
		a = append(a, x.Address+" ("+x.Reason+")")
	}
	add("waiting", a)
	return strings.Join(parts, "; ")
}

func activeCount(b map[string]state.Binding) int {
	n := 0
	for _, x := range b {
		if x.Status == state.BindingActive {
			n++
		}
	}
	return n
}

// countsText writes counts as "a=1 b=2", sorted by name.
func countsText[K ~string, V int | int64](m map[K]V) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func writeHCL(tb testing.TB, dir, name, body string) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// hexKey is a fresh state key as DDCTL_STATE_KEY takes it.
func hexKey() string {
	k := make([]byte, 32)
	rand.Read(k)
	return hex.EncodeToString(k)
}
