package reconcile_test

import (
	"context"
	"errors"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/spec"
	"github.com/ddctl/ddctl/internal/state"
)

// statusSpy embeds the real client; its PaymentStatus answers with err
// instead, for the keys in keys (all keys when keys is nil).
type statusSpy struct {
	reconcile.DOKU
	err  error
	keys map[string]bool
}

func (s statusSpy) PaymentStatus(ctx context.Context, req doku.StatusRequest, opts doku.RequestOptions) (*doku.StatusResponse, error) {
	if s.keys == nil || s.keys[req.OriginalPartnerReferenceNo] {
		return nil, s.err
	}
	return s.DOKU.PaymentStatus(ctx, req, opts)
}

// payRefusal embeds the real client; Pay answers with err.
type payRefusal struct {
	reconcile.DOKU
	err error
}

func (s payRefusal) Pay(context.Context, doku.PaymentRequest, doku.RequestOptions) (*doku.PaymentResponse, error) {
	return nil, s.err
}

// every3Min is a charge every three minutes from two hours before now,
// with retry, and catch_up c.
func every3Min(c spec.CatchUp, retry spec.Retry) []spec.Charge {
	return []spec.Charge{{Address: "recurring_charge.tea", Name: "tea", Binding: "binding.alice", Amount: 1000000,
		Schedule: "*/3 * * * *", Start: now.Add(-2 * time.Hour), CatchUp: c, Retry: retry}}
}

// TestCatchUpOnlyNeverAttempted: catch_up decides only what happens to
// occurrences nothing was sent for, and "missed" is the schedule's: with a
// charge every three minutes and the last two hours of occurrences, none
// charges the current occurrence only, latest the latest only, all every
// one of them. No hidden hour.
func TestCatchUpOnlyNeverAttempted(t *testing.T) {
	for _, tc := range []struct {
		catchUp spec.CatchUp
		at      time.Duration // after now
		want    int
	}{
		{spec.CatchUpNone, time.Minute, 1},       // 10:00 is due, 09:57 and before are missed
		{spec.CatchUpNone, 3 * time.Minute, 1},   // 10:03 just came
		{spec.CatchUpLatest, time.Minute, 1},     // the latest, 10:00
		{spec.CatchUpAll, time.Minute, 40 + 1},   // 08:00 to 10:00
		{spec.CatchUpNone, 150 * time.Second, 1}, // 10:00, still within its three minutes
	} {
		b := setup(t)
		cfg := config()
		b.activeBinding(t, cfg)
		cfg.Charges = every3Min(tc.catchUp, spec.Retry{Attempts: 1})
		p, err := b.engine.Plan(context.Background(), cfg, reconcile.PlanOptions{At: now.Add(tc.at)})
		if err != nil {
			t.Fatal(err)
		}
		var charges []string
		for _, a := range p.Actions {
			if a.Kind == reconcile.ActionCharge {
				charges = append(charges, a.Address)
			}
		}
		if len(charges) != tc.want {
			t.Errorf("catch_up %s at now+%v: %d charges %v, want %d", tc.catchUp, tc.at, len(charges), charges, tc.want)
		}
	}
}

// TestRetryWhateverCatchUp: an occurrence whose first attempt was deferred
// (insufficient balance) is retried per retry however old it is, whatever
// catch_up says: the old hidden hour made it vanish from the plan.
func TestRetryWhateverCatchUp(t *testing.T) {
	for _, c := range []spec.CatchUp{spec.CatchUpNone, spec.CatchUpLatest} {
		t.Run(string(c), func(t *testing.T) {
			b := setup(t)
			ctx := context.Background()
			cfg := config()
			b.activeBinding(t, cfg)
			cfg.Charges = gymCharge(3) // daily at 09:00, an hour before now
			cfg.Charges[0].CatchUp, cfg.Charges[0].Retry.Every = c, time.Minute
			cfg.Charges[0].Amount = 200000000 // over the balance: deferred
			p := b.plan(t, cfg)
			if len(p.Deferrals) != 1 {
				t.Fatalf("plan: %+v, want one deferral", p)
			}
			b.apply(t, p)
			// Three hours on, the occurrence is long missed; its attempt 2
			// is still due.
			p, err := b.engine.Plan(ctx, cfg, reconcile.PlanOptions{At: now.Add(3 * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Deferrals) != 1 || p.Deferrals[0].Attempt != 2 {
				t.Fatalf("three hours later: deferrals %+v, waiting %+v, errors %+v; want attempt 2 deferred", p.Deferrals, p.Waiting, p.Errors)
			}
		})
	}
}

// TestNotFoundIsOnly404xx01And07: an open charge request whose status
// inquiry answers another 404 (invalid routing) stays open: nothing is
// sent again. Only "Transaction Not Found" frees it.
func TestNotFoundIsOnly404xx01And07(t *testing.T) {
	b := setup(t)
	cfg := config()
	b.activeBinding(t, cfg)
	cfg.Charges = gymCharge(1)
	p := b.plan(t, cfg)
	b.sb.Server.SetFaults(sandboxFaults500("payment"))
	b.apply(t, p) // the payment request gets 500: outcome unknown
	b.sb.Server.SetFaults(noFaults())
	real := b.engine.DOKU
	b.engine.DOKU = statusSpy{DOKU: real, err: &doku.Error{Op: doku.OpStatus, HTTPStatus: 404, Code: "4045502", Message: "Invalid Routing", Outcome: doku.Failed}}
	p = b.plan(t, cfg)
	if len(p.Unresolved) != 1 || p.HasChanges() {
		t.Fatalf("after a 404 routing answer: unresolved %+v, actions %+v; want the charge unresolved and nothing sent", p.Unresolved, p.Actions)
	}
	b.engine.DOKU = statusSpy{DOKU: real, err: &doku.Error{Op: doku.OpStatus, HTTPStatus: 404, Code: "4045501", Message: "Transaction Not Found", Outcome: doku.Failed}}
	p = b.plan(t, cfg)
	if len(p.Actions) != 1 || !p.Actions[0].Resend {
		t.Fatalf("after Transaction Not Found: actions %+v; want the same attempt sent again", p.Actions)
	}
}

// TestChargeResendRefusedIsAsked: a resend refused with a failure code may
// be DOKU answering the first request (a paid bill): the attempt is left
// unknown and asked about, never recorded as failed (which would free the
// next attempt and its new key).
func TestChargeResendRefusedIsAsked(t *testing.T) {
	b := setup(t)
	cfg := config()
	b.activeBinding(t, cfg)
	cfg.Charges = gymCharge(3)
	p := b.plan(t, cfg)
	b.sb.Server.SetFaults(sandboxFaults500("payment"))
	b.apply(t, p)
	b.sb.Server.SetFaults(noFaults())
	b.engine.DOKU = statusSpy{DOKU: b.client, err: &doku.Error{Op: doku.OpStatus, HTTPStatus: 404, Code: "4045501", Outcome: doku.Failed}}
	p = b.plan(t, cfg) // not found: resend
	if len(p.Actions) != 1 || !p.Actions[0].Resend {
		t.Fatalf("plan: %+v, want a resend", p.Actions)
	}
	b.engine.DOKU = payRefusal{DOKU: b.client, err: &doku.Error{Op: doku.OpPayment, HTTPStatus: 403, Code: "4035405", Message: "Do Not Honor", Outcome: doku.Failed}}
	res := b.apply(t, p)
	if res.Results[0].Status != reconcile.ResultUnknown {
		t.Fatalf("a refused resend is %s, want unknown (asked about before anything else)", res.Results[0].Status)
	}
	b.engine.DOKU = b.client
	if rows := b.onlyCharge(t); rows.Status == state.ChargeFailed {
		t.Fatalf("the attempt was recorded as failed: %+v", rows)
	}
}

// TestTokenRefusalIsNotARefusedRefund: a refund of a charge occurrence
// whose payer's binding is no longer active at DOKU: the customer-token
// exchange is refused (403 4037418), so no refund request leaves. It is
// recorded as not sent, with why and what to do, never as DOKU refusing
// the refund; it is not sent again until the binding changes, and then it
// is.
func TestTokenRefusalIsNotARefusedRefund(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	cfg := config()
	res := b.paidGym(t, cfg)
	occ := res.Results[0].Action.Occurrence
	cfg.Refunds = []spec.Refund{{Address: "refund.gym_back", Name: "gym_back", Charge: "recurring_charge.gym", Occurrence: occ}}
	p := b.plan(t, cfg)
	if len(p.Actions) != 1 {
		t.Fatalf("plan: %+v", p.Actions)
	}
	// The binding goes away at DOKU, outside ddctl.
	binding, _, _ := b.store.Binding(ctx, "binding.alice")
	if _, err := b.client.Unbind(ctx, doku.RequestOptions{AuthCode: binding.AuthCode}); err != nil {
		t.Fatal(err)
	}
	res = b.apply(t, p)
	r := res.Results[0]
	if r.Status != reconcile.ResultSkipped || !strings.Contains(r.Message, "not sent") || r.Code != "4037418" {
		t.Fatalf("refund result %+v, want skipped: not sent, 4037418", r)
	}
	if got := b.sb.Calls(doku.OpRefund); got != 0 {
		t.Fatalf("%d refund requests reached DOKU, want 0", got)
	}
	have, _, _ := b.store.Refund(ctx, "refund.gym_back")
	if have.Status == state.RefundFailed {
		t.Fatalf("the refund is recorded as refused by DOKU: %+v", have)
	}
	p = b.plan(t, cfg)
	if p.HasChanges() || len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Summary, "not sent") || !strings.Contains(p.Errors[0].Detail, "Re-bind") {
		t.Fatalf("next plan: actions %+v, errors %+v; want no call and a not-sent error saying what to do", p.Actions, p.Errors)
	}
	// The binding changes (the customer is bound again): the refund goes.
	binding.UpdatedAt = time.Time{}
	if err := b.store.PutBinding(ctx, binding, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	p = b.plan(t, cfg)
	if len(p.Actions) != 1 || !p.Actions[0].Resend {
		t.Fatalf("after the binding changed: actions %+v, errors %+v; want the refund sent again", p.Actions, p.Errors)
	}
}

// TestMovedBlock: a renamed charge with a moved block: the plan decides as
// if the entries had moved (the paid occurrence is up to date, nothing is
// charged again), lists the move, and apply carries it out before
// anything else. Without the moved block, the renamed charge is an error
// naming both addresses, and nothing is sent.
func TestMovedBlock(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	cfg := config()
	b.paidGym(t, cfg)
	b.plan(t, cfg) // adopts the payment
	payments := b.sb.Calls(doku.OpPayment)

	renamed := *cfg
	renamed.Charges = gymCharge(1)
	renamed.Charges[0].Address, renamed.Charges[0].Name = "recurring_charge.gym_membership", "gym_membership"
	p := b.plan(t, &renamed)
	if p.HasChanges() || len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Detail, "from = recurring_charge.gym") {
		t.Fatalf("undeclared rename: actions %+v, errors %+v; want none and an error with the moved block to write", p.Actions, p.Errors)
	}
	if p := b.apply(t, p); len(p.Results) != 0 {
		t.Fatalf("apply of the undeclared rename: %+v", p.Results)
	}

	renamed.Moved = []spec.Moved{{From: "recurring_charge.gym", To: "recurring_charge.gym_membership"}}
	p = b.plan(t, &renamed)
	if len(p.Actions) != 0 || len(p.Errors) != 0 || len(p.Moved) != 1 || p.Moved[0].Entries != 1 || p.Converged != 2 {
		t.Fatalf("moved: actions %+v, errors %+v, moved %+v, converged %d", p.Actions, p.Errors, p.Moved, p.Converged)
	}
	if rows, _ := b.store.Charges(ctx); rows[0].Address != "recurring_charge.gym" {
		t.Fatalf("the plan itself moved the entries: %+v", rows)
	}
	b.apply(t, p)
	rows, _ := b.store.Charges(ctx)
	if len(rows) != 1 || rows[0].Address != "recurring_charge.gym_membership" || rows[0].Status != state.ChargeSucceeded {
		t.Fatalf("after apply: %+v", rows)
	}
	if p := b.plan(t, &renamed); p.HasChanges() || len(p.Moved) != 0 || p.Converged != 2 {
		t.Fatalf("after the move: %+v", p)
	}
	if got := b.sb.Calls(doku.OpPayment); got != payments {
		t.Fatalf("payment requests %d -> %d, want none", payments, got)
	}
}

// TestLimits: a plan over settings.limits names the limit, the total and
// the instances, and apply sends nothing of it unless given a reason;
// per-day totals count what earlier runs moved that day.
func TestLimits(t *testing.T) {
	b := setup(t)
	for _, ref := range []string{"INV-1", "INV-2", "INV-3"} {
		b.sb.Pay(t, ref, 5000000)
	}
	cfg := config(refund("a", "INV-1", 0), refund("b", "INV-2", 0))
	cfg.Settings.Limits = spec.Limits{Refund: 4000000}
	p := b.plan(t, cfg)
	if len(p.OverLimit) != 1 || p.OverLimit[0].Limit != "settings.limits.refund" || len(p.OverLimit[0].Instances) != 2 || p.OverLimit[0].Total != 5000000 {
		t.Fatalf("over the single-refund limit: %+v", p.OverLimit)
	}
	_, err := b.engine.Apply(context.Background(), p, 0, nil)
	if !errors.Is(err, reconcile.ErrOverLimit) || !strings.Contains(err.Error(), `refund.a`) {
		t.Fatalf("Apply over the limit: %v, want ErrOverLimit naming the instances", err)
	}
	if got := b.sb.Calls(doku.OpRefund); got != 0 {
		t.Fatalf("%d refunds sent over the limit, want 0", got)
	}

	cfg.Settings.Limits = spec.Limits{RefundsPerDay: 12000000}
	p = b.plan(t, cfg)
	if len(p.OverLimit) != 0 {
		t.Fatalf("10,000,000 under a 12,000,000 day: %+v", p.OverLimit)
	}
	b.apply(t, p)
	cfg.Refunds = append(cfg.Refunds, refund("c", "INV-3", 0))
	p = b.plan(t, cfg)
	if len(p.OverLimit) != 1 || p.OverLimit[0].Before != 10000000 || p.OverLimit[0].Total != 15000000 {
		t.Fatalf("the day's second apply: %+v, want 10,000,000 before and 15,000,000 in all", p.OverLimit)
	}
	p.Override = "finance checked INV-3, ticket 9"
	if res := b.apply(t, p); res.Count(reconcile.ResultSucceeded) != 1 {
		t.Fatalf("overridden: %+v", res.Results)
	}
}

func sandboxFaults500(op string) sandbox.Faults {
	return sandbox.Faults{ErrorRate: 1, Ops: []string{op}}
}

func noFaults() sandbox.Faults { return sandbox.Faults{} }

// refundTokenDown embeds the real client; Refund fails as if DOKU's access
// token could not be had (a 503 on the token endpoint): nothing left.
type refundTokenDown struct{ reconcile.DOKU }

func (refundTokenDown) Refund(context.Context, doku.RefundRequest, doku.RequestOptions) (*doku.RefundResponse, error) {
	return nil, &doku.Error{Op: doku.OpTokenB2B, HTTPStatus: 503, Outcome: doku.RetryLater, Err: errors.New("service unavailable")}
}

// TestResendAfterMoveKeepsItsKey: an attempt DOKU never got, then its
// charge renamed with a moved block: the same request is sent again under
// the key it was sent under, not one of the new address.
func TestResendAfterMoveKeepsItsKey(t *testing.T) {
	b := setup(t)
	cfg := config()
	b.activeBinding(t, cfg)
	cfg.Charges = gymCharge(1)
	p := b.plan(t, cfg)
	key := p.Actions[0].Key
	b.sb.Server.SetFaults(sandboxFaults500("payment"))
	b.apply(t, p)
	b.sb.Server.SetFaults(noFaults())
	b.plan(t, cfg) // resolves: not received
	renamed := *cfg
	renamed.Charges = gymCharge(1)
	renamed.Charges[0].Address, renamed.Charges[0].Name = "recurring_charge.gym2", "gym2"
	renamed.Moved = []spec.Moved{{From: "recurring_charge.gym", To: "recurring_charge.gym2"}}
	p = b.plan(t, &renamed)
	if len(p.Actions) != 1 || !p.Actions[0].Resend || p.Actions[0].Key != key {
		t.Fatalf("plan after the move: %+v, want the attempt sent again under %s", p.Actions, key)
	}
	if res := b.apply(t, p); res.Count(reconcile.ResultSucceeded) != 1 {
		t.Fatalf("resend: %+v", res.Results)
	}
	if l := b.sb.Ledger(t); len(l.Payments) != 1 || l.Payments[0].PartnerReferenceNo != key {
		t.Fatalf("ledger: %+v, want one payment under %s", l.Payments, key)
	}
}

// TestAccessTokenDownIsSentAgain: a refund stopped because the access
// token could not be had (not the payer's binding) is not sent, and is
// sent again by the next run, without waiting for the binding to change.
func TestAccessTokenDownIsSentAgain(t *testing.T) {
	b := setup(t)
	cfg := config()
	res := b.paidGym(t, cfg)
	// A refund in the payer's name: the kind that waits for its binding
	// when the payer's token is refused, but not for a passing failure.
	cfg.Refunds = []spec.Refund{{Address: "refund.a", Name: "a", Charge: "recurring_charge.gym", Occurrence: res.Results[0].Action.Occurrence}}
	b.plan(t, cfg) // the payment is seen paid
	b.engine.DOKU = refundTokenDown{b.client}
	res = b.apply(t, b.plan(t, cfg))
	if r := res.Results[0]; r.Status != reconcile.ResultSkipped || !strings.Contains(r.Message, "not sent") {
		t.Fatalf("refund with the access token down: %+v", r)
	}
	b.engine.DOKU = b.client
	p := b.plan(t, cfg)
	if len(p.Actions) != 1 || !p.Actions[0].Resend || len(p.Errors) != 0 {
		t.Fatalf("next plan: actions %+v, errors %+v; want the refund sent again", p.Actions, p.Errors)
	}
}

// TestMoveWaitsForUnsettledRequest: a moved block whose entry has a
// request of unknown outcome waits (a plan error for it), and the rest of
// the plan goes on.
func TestMoveWaitsForUnsettledRequest(t *testing.T) {
	b := setup(t)
	b.sb.Pay(t, "INV-1", 5000000)
	cfg := config()
	b.activeBinding(t, cfg)
	cfg.Charges = gymCharge(1)
	p := b.plan(t, cfg)
	key := p.Actions[0].Key
	b.sb.Server.SetFaults(sandboxFaults500("payment"))
	b.apply(t, p)
	b.sb.Server.SetFaults(noFaults())
	b.engine.DOKU = statusSpy{DOKU: b.client, keys: map[string]bool{key: true},
		err: &doku.Error{Op: doku.OpStatus, HTTPStatus: 404, Code: "4045502", Outcome: doku.Failed}}
	renamed := *cfg
	renamed.Charges = gymCharge(1)
	renamed.Charges[0].Address, renamed.Charges[0].Name = "recurring_charge.gym2", "gym2"
	renamed.Moved = []spec.Moved{{From: "recurring_charge.gym", To: "recurring_charge.gym2"}}
	renamed.Refunds = []spec.Refund{refund("other", "INV-1", 0)}
	p = b.plan(t, &renamed)
	if len(p.Moved) != 0 || len(p.Actions) != 1 || p.Actions[0].Address != "refund.other" {
		t.Fatalf("plan: moved %+v, actions %+v; want no move and the unrelated refund", p.Moved, p.Actions)
	}
	if !slicesContainsFunc(p.Errors, func(e reconcile.Problem) bool { return strings.Contains(e.Summary, "waits for an unsettled request") }) {
		t.Fatalf("errors %+v, want the move waiting", p.Errors)
	}
	if res := b.apply(t, p); res.Count(reconcile.ResultSucceeded) != 1 {
		t.Fatalf("apply: %+v, want the refund made", res.Results)
	}
}

// TestRefundOfMissedOccurrenceAfterLostState: a charge paid, the state
// lost, and the occurrence missed for catch_up = "none": planCharges never
// asks about it, but its refund does, and the refund is made.
func TestRefundOfMissedOccurrenceAfterLostState(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	cfg := config()
	res := b.paidGym(t, cfg)
	occ := res.Results[0].Action.Occurrence
	b.loseState(t)
	cfg.Charges[0].CatchUp = spec.CatchUpNone
	cfg.Refunds = []spec.Refund{{Address: "refund.back", Name: "back", Charge: "recurring_charge.gym", Occurrence: occ}}
	p, err := b.engine.Plan(ctx, cfg, reconcile.PlanOptions{At: now.Add(3 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Actions) != 1 || p.Actions[0].Address != "refund.back" {
		t.Fatalf("plan: actions %+v, waiting %+v; want the refund of the paid occurrence", p.Actions, p.Waiting)
	}
}

// TestRenamedAndRepriced: a renamed charge whose amount changed too is
// still a rename: its occurrence was paid under the old name.
func TestRenamedAndRepriced(t *testing.T) {
	b := setup(t)
	cfg := config()
	b.paidGym(t, cfg)
	b.plan(t, cfg)
	renamed := *cfg
	renamed.Charges = gymCharge(1)
	renamed.Charges[0].Address, renamed.Charges[0].Name, renamed.Charges[0].Amount = "recurring_charge.gym2", "gym2", 17500000
	p := b.plan(t, &renamed)
	if p.HasChanges() || len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Summary, "recurring_charge.gym renamed") {
		t.Fatalf("renamed and repriced: actions %+v, errors %+v", p.Actions, p.Errors)
	}
}

func slicesContainsFunc[T any](s []T, f func(T) bool) bool {
	for _, v := range s {
		if f(v) {
			return true
		}
	}
	return false
}

// paidGym binds the customer and charges recurring_charge.gym once, paid:
// the starting point of every test here that refunds or renames it.
func (b *bundle) paidGym(t *testing.T, cfg *spec.Config) *reconcile.ApplyResult {
	t.Helper()
	b.activeBinding(t, cfg)
	cfg.Charges = gymCharge(1)
	res := b.apply(t, b.plan(t, cfg))
	if err := b.sb.Server.Confirm(context.Background(), path.Base(res.Results[0].Link), true); err != nil {
		t.Fatal(err)
	}
	return res
}

// transAmount is optional in DOKU's status answer. Without it, a refund
// of a payment ddctl did not make goes by the block's amount, and one
// with no amount is an error that says what to write, with no call; a
// refund of ddctl's own charge uses what ddctl charged.
func TestStatusWithoutAmount(t *testing.T) {
	noAmount := func(c *sandbox.Config) { c.StatusWithoutAmount = true }
	t.Run("OutsidePayment", func(t *testing.T) {
		b := setup(t, noAmount)
		b.sb.Pay(t, "INV-1", 5000000)
		p := b.plan(t, config(refund("full", "INV-1", 0)))
		if len(p.Actions) != 0 || len(p.Errors) != 1 || p.Errors[0].Summary != "payment amount unknown" || !strings.Contains(p.Errors[0].Detail, "amount = ") {
			t.Fatalf("no amount anywhere: actions %+v, errors %+v; want the error that says to write the amount", p.Actions, p.Errors)
		}
		p = b.plan(t, config(refund("full", "INV-1", 5000000)))
		if len(p.Actions) != 1 || p.Actions[0].Amount != 5000000 {
			t.Fatalf("the block's amount: actions %+v, errors %+v; want a refund of it", p.Actions, p.Errors)
		}
		if res := b.apply(t, p); res.Count(reconcile.ResultSucceeded) != 1 {
			t.Fatalf("apply: %+v", res.Results)
		}
	})
	t.Run("OwnCharge", func(t *testing.T) {
		b := setup(t, noAmount)
		cfg := config()
		res := b.paidGym(t, cfg)
		occ := res.Results[0].Action.Occurrence
		b.loseState(t) // the payment is asked about at DOKU again
		cfg.Refunds = []spec.Refund{{Address: "refund.back", Name: "back", Charge: "recurring_charge.gym", Occurrence: occ}}
		p := b.plan(t, cfg)
		var got *reconcile.Action
		for i := range p.Actions {
			if p.Actions[i].Address == "refund.back" {
				got = &p.Actions[i]
			}
		}
		if got == nil || got.Amount != gymCharge(1)[0].Amount {
			t.Fatalf("refund of the charge: actions %+v, errors %+v; want the charged amount", p.Actions, p.Errors)
		}
	})
}
