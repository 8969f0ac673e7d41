package reconcile_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/state"
)

// An unknown outcome is concluded "DOKU never got it" only once the settle
// time has passed since its request: an inquiry sooner that finds nothing
// leaves it open, and nothing is sent for it. NotSent: the request never
// left; after the settle time it is sent again, once. Late: DOKU
// processes the request after the early inquiry (a request still on its
// way); the inquiry after the settle time finds it, and nothing is sent
// again. The clock is pinned and moved by hand.
func TestSettleTime(t *testing.T) {
	for _, late := range []bool{false, true} {
		name := "NotSent"
		if late {
			name = "Late"
		}
		t.Run(name, func(t *testing.T) {
			b := setup(t)
			ctx := context.Background()
			clock := now
			b.engine.NowFunc = func() time.Time { return clock }
			b.engine.SettleTime = time.Minute
			b.sb.Pay(t, "INV-1", 5000000)
			cfg := config(refund("a", "INV-1", 0))
			p := b.plan(t, cfg)
			if len(p.Actions) != 1 {
				t.Fatalf("plan: %+v", p)
			}
			a := p.Actions[0]
			// The intent, journalled at now; the answer never came.
			req := b.journalIntent(t, a)

			// 10 s later: DOKU has no record yet. Not concluded, not sent.
			clock = now.Add(10 * time.Second)
			calls := b.sb.Calls(doku.OpRefund)
			p = b.plan(t, cfg)
			if len(p.Resolved) != 1 || !p.Resolved[0].Status.Open() {
				t.Fatalf("resolved within the settle time: %+v, want the operation still open", p.Resolved)
			}
			if d := p.Resolved[0].Detail; !strings.Contains(d, "asked DOKU at") || !strings.Contains(d, now.Add(time.Minute).Format(time.RFC3339)) {
				t.Fatalf("detail %q, want when DOKU was asked and when it will be concluded", d)
			}
			if p.HasChanges() || len(p.Unresolved) != 1 {
				t.Fatalf("plan within the settle time: actions %+v, unresolved %+v; want no action and the address unresolved", p.Actions, p.Unresolved)
			}
			b.apply(t, p)
			if got := b.sb.Calls(doku.OpRefund); got != calls {
				t.Fatalf("refund calls %d -> %d within the settle time, want none", calls, got)
			}

			if late {
				// The request arrives at DOKU now, late.
				if _, err := b.client.Refund(ctx, req, doku.RequestOptions{ExternalID: "42", AuthCode: secret.New(b.sb.PayerAuthCode(t))}); err != nil {
					t.Fatal(err)
				}
			}
			calls = b.sb.Calls(doku.OpRefund)

			// Past the settle time: concluded.
			clock = now.Add(61 * time.Second)
			p = b.plan(t, cfg)
			if len(p.Resolved) != 1 || p.Resolved[0].Status.Open() {
				t.Fatalf("resolved after the settle time: %+v, want concluded", p.Resolved)
			}
			res := b.apply(t, p)
			if late {
				if p.Resolved[0].Status != state.OpSucceeded || p.HasChanges() {
					t.Fatalf("after a late commit: resolved %+v, actions %+v; want succeeded and nothing sent", p.Resolved, p.Actions)
				}
			} else {
				if len(p.Actions) != 1 || !p.Actions[0].Resend || p.Actions[0].Key != a.Key || res.Count(reconcile.ResultSucceeded) != 1 {
					t.Fatalf("after the settle time: actions %+v, results %+v; want one resend under key %s", p.Actions, res.Results, a.Key)
				}
				calls++
			}
			if got := b.sb.Calls(doku.OpRefund); got != calls {
				t.Fatalf("refund calls %d, want %d", got, calls)
			}
			if n := len(b.sb.Ledger(t).Refunds); n != 1 {
				t.Fatalf("ledger refunds=%d, want exactly 1", n)
			}
		})
	}
}
