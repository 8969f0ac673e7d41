package reconcile_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/spec"
)

// inquirySpy embeds the real client and counts the status inquiries, by
// payment and at once.
type inquirySpy struct {
	reconcile.DOKU
	mu          sync.Mutex
	asked       map[string]int
	inFlight    int
	maxInFlight int
}

func (s *inquirySpy) PaymentStatus(ctx context.Context, req doku.StatusRequest, opts doku.RequestOptions) (*doku.StatusResponse, error) {
	s.mu.Lock()
	s.asked[req.OriginalPartnerReferenceNo]++
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	return s.DOKU.PaymentStatus(ctx, req, opts)
}

// The payments a plan asks about are asked at most Parallelism at a time,
// each once, and the plan is the one asking them in turn would give: the
// same actions and the same errors, in the configuration's order.
func TestPlanAsksPaymentsInParallel(t *testing.T) {
	var refunds []spec.Refund
	for i := range 24 {
		refunds = append(refunds, refund(fmt.Sprintf("r%02d", i), fmt.Sprintf("INV-%02d", i), 0))
	}
	// Unknown to DOKU, and a second refund of INV-03 (full refunds only).
	refunds = append(refunds, refund("r24", "INV-MISSING-1", 0), refund("r25", "INV-03", 0),
		refund("r26", "INV-MISSING-2", 0), refund("r27", "INV-03", 0))
	cfg := config(refunds...)
	// refund() names sort in configuration order, as Load sorts them.

	plan := func(parallelism int) (*reconcile.Plan, *inquirySpy) {
		b := setup(t)
		for i := range 24 {
			b.sb.Pay(t, fmt.Sprintf("INV-%02d", i), money.Amount(100000+i))
		}
		// Long enough that the inquiries overlap.
		b.sb.Server.SetFaults(sandbox.Faults{Latency: 20 * time.Millisecond, Ops: []string{doku.OpStatus.String()}})
		spy := &inquirySpy{DOKU: b.client, asked: map[string]int{}}
		b.engine.DOKU, b.engine.Parallelism = spy, parallelism
		return b.plan(t, cfg), spy
	}
	one, oneSpy := plan(1)
	many, manySpy := plan(8)

	if oneSpy.maxInFlight != 1 {
		t.Errorf("parallelism 1: %d inquiries at once, want 1", oneSpy.maxInFlight)
	}
	if manySpy.maxInFlight < 2 || manySpy.maxInFlight > 8 {
		t.Errorf("parallelism 8: at most %d inquiries at once, want 2 to 8", manySpy.maxInFlight)
	}
	for _, spy := range []*inquirySpy{oneSpy, manySpy} {
		if len(spy.asked) != 26 {
			t.Errorf("asked about %d payments, want 26", len(spy.asked))
		}
		for ref, n := range spy.asked {
			if n != 1 {
				t.Errorf("asked about %s %d times, want once", ref, n)
			}
		}
	}
	if len(many.Actions) != 24 || len(many.Errors) != 4 {
		t.Fatalf("plan: %d actions and errors %+v; want 24 actions and 4 errors", len(many.Actions), many.Errors)
	}
	for i, a := range many.Actions {
		if want := fmt.Sprintf("refund.r%02d", i); a.Address != want {
			t.Errorf("action %d is %s, want %s", i, a.Address, want)
		}
	}
	var summaries []string
	for _, e := range many.Errors {
		summaries = append(summaries, e.Address+": "+e.Summary)
	}
	want := []string{"refund.r24: payment not found", "refund.r25: payment already refunded",
		"refund.r26: payment not found", "refund.r27: payment already refunded"}
	if diff := cmp.Diff(want, summaries); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(one.Actions, many.Actions); diff != "" {
		t.Errorf("actions at parallelism 1 and 8 differ (-1 +8):\n%s", diff)
	}
	if diff := cmp.Diff(one.Errors, many.Errors); diff != "" {
		t.Errorf("errors at parallelism 1 and 8 differ (-1 +8):\n%s", diff)
	}
}
