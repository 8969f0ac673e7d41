package workload_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
	"github.com/ddctl/ddctl/internal/workload"
)

var now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// A generated configuration loads, and with its generated state a plan
// has nothing to do and asks DOKU nothing.
func TestWriteStateConverges(t *testing.T) {
	ctx := context.Background()
	sb := sandboxtest.New(t)
	dir := t.TempDir()
	p := workload.Params{Refunds: 50, Charges: 5, Now: now}
	if err := workload.Write(dir, p); err != nil {
		t.Fatal(err)
	}
	sb.WriteDOKUBlock(t, filepath.Join(dir, workload.DOKUFile))
	cfg, _, diags := spec.Load(spec.LoadOptions{Dir: dir})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if len(cfg.Refunds) != 50 || len(cfg.Bindings) != 6 || len(cfg.Charges) != 5 {
		t.Fatalf("config: %d refunds, %d bindings, %d charges; want 50, 6 (the payer and 5 customers), 5", len(cfg.Refunds), len(cfg.Bindings), len(cfg.Charges))
	}
	if got, want := cfg.Refunds[0].Address, `refund.batch["ORD-0000001"]`; got != want {
		t.Fatalf("first refund %s, want %s", got, want)
	}
	if got, want := cfg.Charges[0].Binding, `binding.customer["CUST-000001"]`; got != want {
		t.Fatalf("first charge's binding %s, want %s", got, want)
	}

	st, err := state.OpenWith(filepath.Join(dir, workload.StateFile), state.OpenOptions{AllowPlaintextSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := workload.WriteState(ctx, st, cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := (workload.Counts{Refunds: 50, Occurrences: 5 * workload.DefaultMonths, Bindings: 6}); n != want {
		t.Fatalf("WriteState: %+v, want %+v", n, want)
	}

	e := &reconcile.Engine{DOKU: sb.Client(t), Store: st}
	plan, err := e.Plan(ctx, cfg, reconcile.PlanOptions{At: now})
	if err != nil {
		t.Fatal(err)
	}
	if plan.HasChanges() || len(plan.Errors) > 0 || len(plan.Waiting) > 0 || len(plan.Awaiting) > 0 || len(plan.Removed) > 0 {
		t.Fatalf("plan: %d actions, errors %+v, waiting %+v, awaiting %d, removed %v; want nothing",
			len(plan.Actions), plan.Errors, plan.Waiting, len(plan.Awaiting), plan.Removed)
	}
	if want := 50 + 6 + 5*workload.DefaultMonths; plan.Converged != want {
		t.Fatalf("plan: %d up to date, want %d", plan.Converged, want)
	}
	for op, calls := range sb.Server.Stats().Calls {
		if calls != 0 {
			t.Errorf("plan called %s %d times; want no call", op, calls)
		}
	}
	// A year later nothing new is due: the charges ended.
	later, err := e.Plan(ctx, cfg, reconcile.PlanOptions{At: now.AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if later.HasChanges() || len(later.Errors) > 0 {
		t.Fatalf("plan a year later: %d actions, errors %+v; want none", len(later.Actions), later.Errors)
	}
}

// The same parameters write the same files.
func TestWriteIsDeterministic(t *testing.T) {
	p := workload.Params{Refunds: 20, Charges: 3, Now: now, DOKU: "doku {\n}\n", RequestsPerSecond: 500}
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		if err := workload.Write(dir, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{workload.MainFile, workload.RefundsFile, workload.CustomersFile, workload.DOKUFile} {
		x, err := os.ReadFile(filepath.Join(a, name))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(x) != string(y) {
			t.Errorf("%s differs between two writes", name)
		}
	}
	block, _ := os.ReadFile(filepath.Join(a, workload.DOKUFile))
	if !strings.Contains(string(block), "requests_per_second = 500") {
		t.Errorf("doku.hcl = %q, want requests_per_second = 500 in it", block)
	}
}

// Load gives a configuration written without a doku block a stand-in one,
// so that its state can be written.
func TestLoadWithoutDOKUBlock(t *testing.T) {
	dir := t.TempDir()
	if err := workload.Write(dir, workload.Params{Refunds: 3, Charges: 2, Now: now}); err != nil {
		t.Fatal(err)
	}
	cfg, err := workload.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Refunds) != 3 || len(cfg.Charges) != 2 {
		t.Fatalf("config: %d refunds, %d charges; want 3 and 2", len(cfg.Refunds), len(cfg.Charges))
	}
}

// The charge window holds Months occurrences before Now, the last at or
// before Now.
func TestChargeWindow(t *testing.T) {
	jakarta, err := time.LoadLocation(workload.DefaultTimezone)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		now        time.Time
		start, end string
	}{
		{now, "2025-12-01", "2026-11-02"},
		// 08:59 on the 1st in Jakarta: that day's occurrence is to come.
		{time.Date(2026, 11, 1, 8, 59, 0, 0, jakarta), "2025-11-01", "2026-10-02"},
		{time.Date(2026, 11, 1, 9, 0, 0, 0, jakarta), "2025-12-01", "2026-11-02"},
	} {
		start, end, err := workload.Params{Now: tt.now}.ChargeWindow()
		if err != nil {
			t.Fatal(err)
		}
		if got := start.Format(time.DateOnly) + " " + end.Format(time.DateOnly); got != tt.start+" "+tt.end {
			t.Errorf("ChargeWindow at %v = %s, want %s %s", tt.now, got, tt.start, tt.end)
		}
	}
}
