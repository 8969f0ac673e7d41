package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/state"
)

// TestCrashPoints aborts the real binary at each named point of the apply
// path (reconcile.CrashPoints) of each kind of action, through the test
// hook DDCTL_TEST_CRASH_AT, then applies without it until it converges,
// and checks the ledger oracle: each
// charge occurrence paid exactly once and the customer debited once, each
// refund made exactly once, each binding active once at DOKU or unbound,
// no operation left open, the state equal to the ledger. Each point and
// kind runs twice (subtests POINT/KIND/first and POINT/KIND/mid-batch):
// with one action, crashed at it (DDCTL_TEST_CRASH_AT=POINT:KIND:1), and
// with three, crashed at the second while the first is done and the
// third not started (POINT:KIND:2, -parallelism=1). Each case has its
// own sandbox and directory, and runs in parallel with the others. Each
// logs how the crashed action was settled; the test logs the tally.
func TestCrashPoints(t *testing.T) {
	start := time.Now()
	var mu sync.Mutex
	var run, converged int
	paths := map[string]int{}
	t.Cleanup(func() { // once every case, parallel ones too, has ended
		keys := make([]string, 0, len(paths))
		for p := range paths {
			keys = append(keys, p)
		}
		sort.Strings(keys)
		for _, p := range keys {
			t.Logf("%3d cases: %s", paths[p], p)
		}
		t.Logf("crash points: %d cases run, %d converged with the oracle OK, in %s", run, converged, time.Since(start).Round(100*time.Millisecond))
		if converged != run {
			t.Errorf("%d of %d cases did not converge with the oracle OK", run-converged, run)
		}
	})
	for _, kind := range []reconcile.ActionKind{reconcile.ActionCharge, reconcile.ActionRefund, reconcile.ActionBind, reconcile.ActionUnbind} {
		for _, point := range reconcile.CrashPoints(kind) {
			for _, v := range []struct {
				name     string
				items, n int
			}{{"first", 1, 1}, {"mid-batch", 3, 2}} {
				t.Run(fmt.Sprintf("%s/%s/%s", point, kind, v.name), func(t *testing.T) {
					t.Parallel()
					var path string
					defer func() { // after a t.Fatal too
						mu.Lock()
						defer mu.Unlock()
						run++
						if !t.Failed() {
							converged++
							paths[path]++
						}
					}()
					c := crashCase{point: point, kind: kind, items: v.items, n: v.n}
					path = c.run(t)
				})
			}
		}
	}
}

// crashCase is one crash: the process dies the n-th time an action of
// kind reaches point, in an apply of items such actions.
type crashCase struct {
	point reconcile.CrashPoint
	kind  reconcile.ActionKind
	items int
	n     int
	sb    *sandboxtest.Env
	dir   string
}

// crashPhone is the phone of customer i.
func crashPhone(i int) string { return fmt.Sprintf("628123456%04d", i) }

// crashBalance is each customer's balance in minor units: IDR 1,000,000.00.
const crashBalance = 100000000

// run sets the case up, crashes, converges and checks the oracle; it
// returns how the crashed action was settled.
func (c *crashCase) run(t *testing.T) string {
	ctx := context.Background()
	// Customers confirm what they are asked to: payments and the setup's
	// bindings at once, as the sandbox's auto-approval does (a payment's
	// link may be lost with its answer, and nothing else can reach it).
	// A binding requested by the crashed apply is confirmed only through
	// the link ddctl shows, as a customer would: a binding request whose
	// answer was lost is never confirmed.
	auto := c.kind != reconcile.ActionBind
	c.sb = sandboxtest.New(t, func(cfg *sandbox.Config) {
		if auto {
			cfg.AutoApprove = time.Nanosecond
		}
	})
	c.dir = t.TempDir()
	c.sb.WriteDOKUBlock(t, filepath.Join(c.dir, "doku.hcl"))
	for i := range c.items {
		if _, err := c.sb.Server.PutCustomer(ctx, sandbox.NewCustomer{Phone: crashPhone(i), Balance: []byte(`"1000000.00"`)}); err != nil {
			t.Fatal(err)
		}
	}
	var cfg strings.Builder
	cfg.WriteString("settings {\n  reference_prefix = \"CRASHPOINT\"\n  timezone = \"UTC\"\n}\n")
	bindings := func(n int) {
		for i := range n {
			fmt.Fprintf(&cfg, "binding \"b%d\" {\n  customer_id = \"cust-%d\"\n  phone = %q\n  success_url = \"https://x.test/ok\"\n  failed_url = \"https://x.test/fail\"\n}\n", i, i, crashPhone(i))
		}
	}
	switch c.kind {
	case reconcile.ActionRefund:
		for i := range c.items {
			ref := fmt.Sprintf("INV-%d", i)
			c.sb.Pay(t, ref, money.Amount(10000+i))
			fmt.Fprintf(&cfg, "refund \"r%d\" {\n  payment = %q\n  binding = binding.payer\n}\n", i, ref)
		}
	case reconcile.ActionCharge:
		bindings(1)
		// One occurrence each, five minutes ago: due, and too recent for
		// the lost-state guard (an inquiry before charging a missed
		// occurrence), so that only the intent protects it. Retries are
		// allowed, so that an outcome wrongly taken for a refusal would
		// lead to a second attempt, under another key.
		at := time.Now().UTC().Truncate(time.Minute).Add(-5 * time.Minute)
		for i := range c.items {
			fmt.Fprintf(&cfg, "recurring_charge \"c%d\" {\n  binding = binding.b0\n  amount = %d\n  schedule = \"%d %d * * *\"\n  start = %q\n  end = %q\n  retry {\n    attempts = 3\n    every = \"1m\"\n  }\n}\n",
				i, 1000+i, at.Minute(), at.Hour(), at.Add(-time.Second).Format(time.RFC3339), at.Add(time.Second).Format(time.RFC3339))
		}
	case reconcile.ActionBind, reconcile.ActionUnbind:
		bindings(c.items)
	}
	c.write(t, "main.hcl", cfg.String())
	if c.kind == reconcile.ActionRefund {
		// The payments' payer, bound outside ddctl: adopted, with no
		// crash, so that the refunds carry its customer token.
		adoptPayer(t, c.sb, c.dir, []string{crashAtEnv + "="})
	}
	if c.kind == reconcile.ActionCharge || c.kind == reconcile.ActionUnbind {
		// Setup, no crash: the bindings requested, confirmed (auto) and
		// seen active.
		if out, code := c.ddctl(t, "", "apply", "-auto-approve"); code != 0 {
			t.Fatalf("setup apply: exit %d\n%s", code, out)
		}
		c.tick(t)
		if c.kind == reconcile.ActionUnbind {
			if out, code := c.ddctl(t, "", "apply", "-auto-approve"); code != 0 || !strings.Contains(out, "No changes.") {
				t.Fatalf("setup apply: exit %d, want 0 and no changes\n%s", code, out)
			}
			var unbinds strings.Builder
			unbinds.WriteString("settings {\n  reference_prefix = \"CRASHPOINT\"\n}\n")
			for i := range c.items {
				fmt.Fprintf(&unbinds, "unbind \"u%d\" {\n  customer_id = \"cust-%d\"\n}\n", i, i)
			}
			c.write(t, "main.hcl", unbinds.String())
		}
	}

	// The crash.
	op := map[reconcile.ActionKind]doku.Op{reconcile.ActionCharge: doku.OpPayment, reconcile.ActionRefund: doku.OpRefund,
		reconcile.ActionBind: doku.OpBinding, reconcile.ActionUnbind: doku.OpUnbinding}[c.kind]
	before := c.sb.Calls(op)
	spec := fmt.Sprintf("%s:%s:%d", c.point, c.kind, c.n)
	out, code := c.ddctl(t, spec, "apply", "-auto-approve", "-parallelism=1")
	if code != 137 {
		t.Fatalf("apply with %s=%s: exit %d, want 137\n%s", crashAtEnv, spec, code, out)
	}
	// The crashed action's request reached DOKU from after-send on.
	sent, want := c.sb.Calls(op)-before, int64(c.n-1)
	if slices.Index(reconcile.CrashPoints(c.kind), c.point) >= slices.Index(reconcile.CrashPoints(c.kind), reconcile.CrashAfterSend) {
		want++
	}
	if sent != want {
		t.Fatalf("%d %s requests reached the sandbox before the crash at %s, want %d", sent, op, c.point, want)
	}
	m := crashedAt.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the crash named no address:\n%s", out)
	}
	addr := m[1]

	// Recovery: apply until it exits 0 with nothing left to do, the
	// customers confirming what they are shown.
	resolver := "nothing open"
	for i := 0; ; i++ {
		if i == 8 {
			t.Errorf("no convergence after %d applies; last:\n%s", i, out)
			bad, _ := c.oracle(t, addr)
			for _, p := range bad {
				t.Errorf("oracle: %s", p)
			}
			t.FailNow()
		}
		c.tick(t)
		out, code = c.ddctl(t, "", "apply", "-auto-approve")
		if i == 0 {
			for _, line := range strings.Split(out, "\n") {
				if detail, ok := strings.CutPrefix(line, addr+": earlier request "); ok {
					resolver = "resolved " + refundNo.ReplaceAllString(detail, "")
				}
			}
		}
		if !auto {
			c.confirm(t, out)
		}
		if code == 0 && strings.Contains(out, "No changes.") && !strings.Contains(out, "Awaiting") {
			break
		}
	}
	if out, code := c.ddctl(t, "", "plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan after convergence: exit %d, want 0\n%s", code, out)
	}
	bad, ops := c.oracle(t, addr)
	for _, p := range bad {
		t.Error(p)
	}
	reached := "had not reached DOKU"
	if sent > int64(c.n-1) {
		reached = "had reached DOKU"
	}
	path := fmt.Sprintf("%s %s: the request %s; %s; %s", c.point, c.kind, reached, resolver, journalPath(ops))
	t.Logf("%s (%s)", path, addr)
	return path
}

// crashedAt finds the address the crash hook names.
var crashedAt = regexp.MustCompile(`crashing at \S+ of (\S+) \(`)

// refundNo is DOKU's refund id in a resolution, left out of the path.
var refundNo = regexp.MustCompile(`refundNo [A-Z0-9-]+,? ?`)

// journalPath says what the journal of the crashed action holds: whether
// a request went again, and under which key and X-EXTERNAL-ID.
func journalPath(ops []state.Operation) string {
	switch len(ops) {
	case 0:
		return "never journalled"
	case 1:
		return "one request journalled, " + string(ops[0].Status)
	}
	var parts []string
	for _, op := range ops[1:] {
		key, ext := "a new key", "a new X-EXTERNAL-ID"
		if op.IdempotencyKey == ops[0].IdempotencyKey {
			key = "the same key"
		}
		if op.Kind == state.KindBind {
			key = "a new binding request"
		}
		if op.ExternalID == ops[0].ExternalID {
			ext = "the same X-EXTERNAL-ID"
		}
		parts = append(parts, fmt.Sprintf("sent again with %s and %s, %s", key, ext, op.Status))
	}
	return strings.Join(parts, "; ")
}

func (c *crashCase) write(t *testing.T, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(c.dir, name), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ddctl runs the test binary as ddctl in the case's directory, with the
// crash hook set to crashAt unless it is empty, and returns its combined
// output and exit code.
func (c *crashCase) ddctl(t *testing.T, crashAt string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-chdir=" + c.dir}, args...)...)
	cmd.Env = append(os.Environ(), "DDCTL_TEST_AS_DDCTL=1", crashAtEnv+"="+crashAt)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	t.Fatalf("run ddctl %v: %v", args, err)
	return "", -1
}

// tick has the sandbox settle what is due: with auto-approval, every
// confirmation asked for so far is approved.
func (c *crashCase) tick(t *testing.T) {
	t.Helper()
	if err := c.sb.Server.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// confirm approves, as the customer would, each confirmation link in out.
func (c *crashCase) confirm(t *testing.T, out string) {
	t.Helper()
	for _, m := range confirmLink.FindAllStringSubmatch(out, -1) {
		if err := c.sb.Server.Confirm(context.Background(), m[1], true); err != nil {
			t.Fatalf("confirm %s: %v", m[1], err)
		}
	}
}

// oracle checks the sandbox's ledger and the state once converged; it
// returns what is wrong, and the journal of addr.
func (c *crashCase) oracle(t *testing.T, addr string) (bad []string, journal []state.Operation) {
	t.Helper()
	ctx := context.Background()
	l := c.sb.Ledger(t)
	st, err := state.OpenWith(filepath.Join(c.dir, "ddctl.db"), state.OpenOptions{AllowPlaintextSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ops, err := st.Operations(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if op.Status.Open() {
			bad = append(bad, fmt.Sprintf("%s: operation %d (%s) left %s", op.Address, op.ID, op.Kind, op.Status))
		}
		if op.Address == addr {
			journal = append(journal, op)
		}
	}
	switch c.kind {
	case reconcile.ActionRefund:
		refunds, err := st.Refunds(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byPayment := map[string][]sandbox.Refund{}
		for _, r := range l.Refunds {
			byPayment[r.PartnerReferenceNo] = append(byPayment[r.PartnerReferenceNo], r)
		}
		for i := range c.items {
			ref, addr := fmt.Sprintf("INV-%d", i), fmt.Sprintf("refund.r%d", i)
			rs := byPayment[ref]
			if len(rs) != 1 || rs[0].Amount != int64(10000+i) {
				bad = append(bad, fmt.Sprintf("%s: ledger holds %d refunds %+v, want exactly one of %d", ref, len(rs), rs, 10000+i))
				continue
			}
			if r := refunds[addr]; r.Status != state.RefundSucceeded || r.RefundNo != rs[0].RefundNo || r.PartnerRefundNo != rs[0].PartnerRefundNo {
				bad = append(bad, fmt.Sprintf("%s: state says %s refundNo %q key %q; ledger has %q under %q", addr, r.Status, r.RefundNo, r.PartnerRefundNo, rs[0].RefundNo, rs[0].PartnerRefundNo))
			}
		}
		if len(l.Refunds) != c.items {
			bad = append(bad, fmt.Sprintf("ledger holds %d refunds, want %d", len(l.Refunds), c.items))
		}
	case reconcile.ActionCharge:
		rows, err := st.Charges(ctx)
		if err != nil {
			t.Fatal(err)
		}
		paidAt := map[string]string{} // partnerReferenceNo → ledger status
		for _, p := range l.Payments {
			paidAt[p.PartnerReferenceNo] = p.Status
		}
		known := map[string]bool{}
		paidPer := map[string]int{}
		var want, debited int64
		for _, r := range rows {
			known[r.PartnerReferenceNo] = true
			ledger, ok := paidAt[r.PartnerReferenceNo]
			switch {
			case r.Status == state.ChargeSucceeded && ledger != doku.TxSuccess:
				bad = append(bad, fmt.Sprintf("%s attempt %d: state says succeeded, ledger %q", r.Address, r.Attempt, ledger))
			case r.Status != state.ChargeSucceeded && ok && ledger == doku.TxSuccess:
				bad = append(bad, fmt.Sprintf("%s attempt %d: ledger says paid, state %s", r.Address, r.Attempt, r.Status))
			}
			if ledger == doku.TxSuccess {
				paidPer[r.Address]++
				debited += int64(r.Amount)
			}
		}
		for i := range c.items {
			addr := fmt.Sprintf("recurring_charge.c%d", i)
			want += int64(1000+i) * 100 // amount = 1000+i, in IDR
			if paidPer[addr] != 1 {
				bad = append(bad, fmt.Sprintf("%s: paid %d times, want exactly once", addr, paidPer[addr]))
			}
		}
		for _, p := range l.Payments {
			if !known[p.PartnerReferenceNo] {
				bad = append(bad, fmt.Sprintf("ledger payment %s (%s) has no row in the state", p.PartnerReferenceNo, p.Status))
			}
		}
		var balance int64 = -1
		for _, cu := range l.Customers {
			if cu.Phone == crashPhone(0) {
				balance = cu.Balance
			}
		}
		if crashBalance-balance != want || debited != want {
			bad = append(bad, fmt.Sprintf("customer debited %d, charges paid %d, want %d", crashBalance-balance, debited, want))
		}
	case reconcile.ActionBind, reconcile.ActionUnbind:
		have, err := st.Bindings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range c.items {
			addr, phone := fmt.Sprintf("binding.b%d", i), crashPhone(i)
			b := have[addr]
			var active, unbound []sandbox.Binding
			for _, lb := range l.Bindings {
				switch {
				case lb.Phone != phone:
				case lb.Status == sandbox.BindingActive:
					active = append(active, lb)
				case lb.Status == sandbox.BindingUnbound:
					unbound = append(unbound, lb)
				}
			}
			if c.kind == reconcile.ActionBind {
				if len(active) != 1 || b.Status != state.BindingActive || active[0].AuthCode != b.AuthCode.Reveal() {
					bad = append(bad, fmt.Sprintf("%s: %d bindings active at the sandbox, state %s (same authCode: %v); want exactly one, the state's",
						addr, len(active), b.Status, len(active) == 1 && active[0].AuthCode == b.AuthCode.Reveal()))
				}
				continue
			}
			if len(active) != 0 || len(unbound) != 1 || b.Status != state.BindingUnbound || unbound[0].AuthCode != b.AuthCode.Reveal() {
				bad = append(bad, fmt.Sprintf("%s: %d active and %d unbound at the sandbox, state %s; want the state's one unbound", addr, len(active), len(unbound), b.Status))
			}
		}
	}
	return bad, journal
}

// DDCTL_TEST_CRASH_AT is refused unless it names a point the kind passes
// and a count from 1: a typo must not turn a crash test into a plain run.
func TestCrashAtParse(t *testing.T) {
	for _, v := range []string{"after-send:charge", "after-send:charge:1", "mid-intent:charge:3", "mid-outcome:unbind"} {
		if _, err := crashFunc(v, io.Discard); err != nil {
			t.Errorf("%s: %v, want accepted", v, err)
		}
	}
	for _, v := range []string{"after-send", "after-send:charge:0", "after-send:charge:x", "mid-intent:refund", "nowhere:bind", "after-send:teleport", "a:b:c:d"} {
		if _, err := crashFunc(v, io.Discard); err == nil {
			t.Errorf("%s accepted, want refused", v)
		}
	}
}
