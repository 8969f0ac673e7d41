package reconcile_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/doku/sandbox/sandboxtest"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
	"github.com/ddctl/ddctl/internal/workload"
)

// The benchmarks of README.md's "Performance". Each measures its
// floor in the same run and reports the ratio:
//
//	go test ./internal/reconcile -run '^$' -bench PlanNoop -count 3
//	go test ./internal/reconcile -run '^$' -bench Apply2000 -benchtime 1x -count 3

// benchNow is when the benchmarks plan: the generated charges' twelve
// occurrences are all before it.
var benchNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// BenchmarkPlanNoop plans 10,000 refunds and 1,000 recurring charges
// (12,000 occurrences) whose state matches: nothing to do, and no call to
// DOKU (b.Fatal otherwise). An operation is what ddctl plan does in
// process: load the configuration, open the state, plan. Target: under
// 1 s and 200 MB.
//
// The floor is the same configuration loaded and the same state read (the
// reads plan makes: refunds, payments, charges, bindings, open operations)
// and nothing else; plan-ms/floor-ms is the ratio (target ≤ 1.5). Only
// the plan counts towards ns/op and the allocations.
func BenchmarkPlanNoop(b *testing.B) {
	ctx := context.Background()
	sb := sandboxtest.New(b)
	dir := b.TempDir()
	params := workload.Params{Refunds: 10000, Charges: 1000, Now: benchNow}
	if err := workload.Write(dir, params); err != nil {
		b.Fatal(err)
	}
	sb.WriteDOKUBlock(b, filepath.Join(dir, workload.DOKUFile))
	cfg := loadConfig(b, dir)
	path := filepath.Join(dir, workload.StateFile)
	st := openState(b, path)
	n, err := workload.WriteState(ctx, st, cfg, benchNow)
	if err != nil {
		b.Fatal(err)
	}
	st.Close()
	if n.Refunds != 10000 || n.Occurrences != 12000 || n.Bindings != 1001 {
		b.Fatalf("state: %+v, want 10000 refunds, 12000 occurrences, 1001 bindings (the payer and 1000 customers)", n)
	}
	client := sb.Client(b)

	// The state takes seconds to write: sub-benchmark, so that it is
	// written once per -count rather than once per b.N tried.
	b.Run("refunds=10000/occurrences=12000", func(b *testing.B) {
		b.ReportAllocs()
		var plan, floor time.Duration
		for range b.N {
			b.StopTimer()
			t0 := time.Now()
			readFloor(b, dir, path)
			floor += time.Since(t0)
			calls := totalCalls(sb)
			b.StartTimer()

			t0 = time.Now()
			cfg := loadConfig(b, dir)
			st := openState(b, path)
			e := &reconcile.Engine{DOKU: client, Store: st}
			p, err := e.Plan(ctx, cfg, reconcile.PlanOptions{At: benchNow})
			if err != nil {
				b.Fatal(err)
			}
			st.Close()
			plan += time.Since(t0)

			b.StopTimer()
			if got := totalCalls(sb) - calls; got != 0 {
				b.Fatalf("a converged plan made %d calls to DOKU (%v); want none", got, sb.Server.Stats().Calls)
			}
			if p.HasChanges() || len(p.Errors) > 0 || len(p.Waiting) > 0 || p.Converged != 23001 {
				b.Fatalf("plan: %d actions, %d errors, %d waiting, %d up to date; want 0, 0, 0 and 23001 (the payer's binding too)",
					len(p.Actions), len(p.Errors), len(p.Waiting), p.Converged)
			}
			b.StartTimer()
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
		b.ReportMetric(ms(plan), "plan-ms")
		b.ReportMetric(ms(floor), "floor-ms")
		b.ReportMetric(float64(plan)/float64(floor), "ratio")
		b.ReportMetric(0, "calls")
	})
}

// readFloor does what a plan cannot do without: it loads the
// configuration, and reads from the state what plan reads.
func readFloor(tb testing.TB, dir, path string) {
	ctx := context.Background()
	loadConfig(tb, dir)
	st := openState(tb, path)
	defer st.Close()
	if _, err := st.Refunds(ctx); err != nil {
		tb.Fatal(err)
	}
	if _, err := st.Payments(ctx); err != nil {
		tb.Fatal(err)
	}
	if _, err := st.Charges(ctx); err != nil {
		tb.Fatal(err)
	}
	if _, err := st.Bindings(ctx); err != nil {
		tb.Fatal(err)
	}
	if _, err := st.OpenOperations(ctx); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkApply2000 plans and applies 2,000 refunds against a sandbox
// that answers every request after 50 ms, at parallelism 20, with a fresh
// state and sandbox per operation. The floor is what the latency alone
// costs, 2,000 ÷ 20 × 50 ms = 5 s; the target is apply within 1.3 times
// it. plan-s (2,000 status inquiries, made at the same parallelism) and
// apply-s are reported apart; every refund must succeed.
func BenchmarkApply2000(b *testing.B) {
	const (
		refunds     = 2000
		parallelism = 20
		latency     = 50 * time.Millisecond
	)
	ctx := context.Background()
	floor := time.Duration(refunds/parallelism) * latency
	var planned, applied time.Duration
	for range b.N {
		b.StopTimer()
		sb := sandboxtest.New(b)
		dir := b.TempDir()
		block := filepath.Join(b.TempDir(), "doku.hcl")
		sb.WriteDOKUBlock(b, block)
		raw, err := os.ReadFile(block)
		if err != nil {
			b.Fatal(err)
		}
		// The rate limit is set high enough not to be what is measured.
		params := workload.Params{Refunds: refunds, DOKU: string(raw), RequestsPerSecond: 10000, Now: benchNow}
		if err := workload.Write(dir, params); err != nil {
			b.Fatal(err)
		}
		for _, r := range params.RefundRows() {
			sb.Pay(b, r.Payment, r.Amount)
		}
		cfg := loadConfig(b, dir)
		st := openState(b, filepath.Join(dir, workload.StateFile))
		// The payments' payer, bound outside ddctl and adopted: each
		// refund carries its customer token.
		payer := state.Binding{Address: "binding.payer", CustomerID: workload.PayerCustomerID, Phone: workload.PayerPhone,
			Status: state.BindingActive, AuthCode: secret.New(sb.PayerAuthCode(b))}
		if err := st.PutBinding(ctx, payer, benchNow); err != nil {
			b.Fatal(err)
		}
		key, err := doku.LoadPrivateKey(cfg.DOKU.PrivateKeyFile)
		if err != nil {
			b.Fatal(err)
		}
		// As ddctl builds its client (cmd/ddctl newClient).
		client, err := doku.NewClient(doku.Config{BaseURL: cfg.DOKU.BaseURL, ClientID: cfg.DOKU.ClientID,
			ClientSecret: cfg.DOKU.ClientSecret, PrivateKey: key, IPAddress: cfg.DOKU.IPAddress,
			RequestsPerSecond: cfg.DOKU.RequestsPerSecond, TokenCache: st})
		if err != nil {
			b.Fatal(err)
		}
		e := &reconcile.Engine{DOKU: client, Store: st, Parallelism: parallelism}
		run, err := st.StartRun(ctx, state.Run{Command: "apply", StartedAt: benchNow})
		if err != nil {
			b.Fatal(err)
		}
		sb.Server.SetFaults(sandbox.Faults{Latency: latency})
		b.StartTimer()

		t0 := time.Now()
		p, err := e.Plan(ctx, cfg, reconcile.PlanOptions{At: benchNow})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		res, err := e.Apply(ctx, p, run, nil)
		if err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()

		b.StopTimer()
		planned += t1.Sub(t0)
		applied += t2.Sub(t1)
		if len(p.Actions) != refunds || len(p.Errors) > 0 {
			b.Fatalf("plan: %d actions, errors %+v; want %d and none", len(p.Actions), p.Errors, refunds)
		}
		if n := res.Count(reconcile.ResultSucceeded); n != refunds {
			var other reconcile.ActionResult
			for _, r := range res.Results {
				if r.Status != reconcile.ResultSucceeded {
					other = r
					break
				}
			}
			b.Fatalf("apply: %d of %d refunds succeeded; first other: %s %s %s", n, refunds, other.Action.Address, other.Status, other.Message)
		}
		if n := len(sb.Ledger(b).Refunds); n != refunds {
			b.Fatalf("sandbox ledger holds %d refunds, want %d", n, refunds)
		}
		if n := sb.Calls(doku.OpRefund); n != refunds {
			b.Fatalf("sandbox counted %d refund calls, want %d", n, refunds)
		}
		if n := sb.Calls(doku.OpStatus); n != refunds {
			b.Fatalf("sandbox counted %d status calls, want one per payment, %d", n, refunds)
		}
		sb.Server.SetFaults(sandbox.Faults{})
		st.Close()
		b.StartTimer()
	}
	s := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(s(planned), "plan-s")
	b.ReportMetric(s(applied), "apply-s")
	b.ReportMetric(floor.Seconds(), "floor-s")
	b.ReportMetric(s(applied)/floor.Seconds(), "ratio")
}

func loadConfig(tb testing.TB, dir string) *spec.Config {
	tb.Helper()
	cfg, _, diags := spec.Load(spec.LoadOptions{Dir: dir})
	if diags.HasErrors() {
		tb.Fatal(diags.Error())
	}
	return cfg
}

func openState(tb testing.TB, path string) *state.Store {
	tb.Helper()
	st, err := state.OpenWith(path, state.OpenOptions{AllowPlaintextSecrets: true})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func totalCalls(sb *sandboxtest.Env) int64 {
	var n int64
	for _, c := range sb.Server.Stats().Calls {
		n += c
	}
	return n
}
