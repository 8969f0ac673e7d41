package reconcile_test

import (
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/reconcile"
)

// DOKU answers a burst of requests "429, retry after 1 s": the plan's
// status inquiries and the refunds it met are sent again within the run,
// after Retry-After, and the run converges by itself: no plan problem, no
// result left for a later run, each refund made once.
func TestRetryLaterWithinRun(t *testing.T) {
	b := setup(t)
	b.sb.Pay(t, "INV-1", 5000000)
	b.sb.Pay(t, "INV-2", 2500050)
	cfg := config(refund("a", "INV-1", 0), refund("b", "INV-2", 0))
	// Three 429s for the inquiries, then two for the refunds.
	b.sb.Server.SetFaults(sandbox.Faults{RateLimitNext: 3, RetryAfter: time.Second, Ops: []string{"status"}})
	p := b.plan(t, cfg)
	if len(p.Errors) != 0 || len(p.Actions) != 2 {
		t.Fatalf("plan under 429s: actions %+v, problems %+v; want 2 refunds and no problem", p.Actions, p.Errors)
	}
	b.sb.Server.SetFaults(sandbox.Faults{RateLimitNext: 2, RetryAfter: time.Second, Ops: []string{"refund"}})
	res := b.apply(t, p)
	if res.Count(reconcile.ResultSucceeded) != 2 {
		t.Fatalf("apply under 429s: %+v, want both refunds made in this run", res.Results)
	}
	if got := b.sb.Server.FaultsInjected()["rate_limit"]; got != 5 {
		t.Fatalf("%d 429s injected, want 5", got)
	}
	if got := b.sb.Calls(doku.OpRefund); got != 4 {
		t.Fatalf("refund requests=%d, want 4: two 429s and two refunds", got)
	}
	if n := len(b.sb.Ledger(t).Refunds); n != 2 {
		t.Fatalf("ledger refunds=%d, want 2", n)
	}
	if p := b.plan(t, cfg); p.HasChanges() || p.Converged != 2 {
		t.Fatalf("plan after: %d actions, %d converged; want 0 and 2", len(p.Actions), p.Converged)
	}
}
