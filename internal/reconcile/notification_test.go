package reconcile_test

import (
	"context"
	"path"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ddctl/ddctl/internal/doku"
	"github.com/ddctl/ddctl/internal/doku/sandbox"
	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/reconcile"
	"github.com/ddctl/ddctl/internal/state"
)

// chargeAwaiting charges binding.alice's gym occurrence for real against
// the sandbox (the customer does not confirm) and returns the attempt,
// awaiting its customer, with the payment's reference number at DOKU.
func (b *bundle) chargeAwaiting(t *testing.T) state.Charge {
	t.Helper()
	cfg := config()
	b.activeBinding(t, cfg)
	cfg.Charges = gymCharge(1)
	if res := b.apply(t, b.plan(t, cfg)); res.Count(reconcile.ResultSucceeded) != 1 {
		t.Fatalf("charge: %+v", res.Results)
	}
	return b.onlyCharge(t)
}

func (b *bundle) onlyCharge(t *testing.T) state.Charge {
	t.Helper()
	rows, err := b.store.Charges(context.Background())
	if err != nil || len(rows) != 1 {
		t.Fatalf("charges: %+v, %v; want one", rows, err)
	}
	return rows[0]
}

// decline makes the customer decline c's payment at the sandbox: DOKU's
// truth becomes failed (06).
func (b *bundle) decline(t *testing.T, c state.Charge) {
	t.Helper()
	if err := b.sb.Server.Confirm(context.Background(), path.Base(c.WebRedirectURL), false); err != nil {
		t.Fatalf("decline %s: %v", c.PartnerReferenceNo, err)
	}
}

// notification is what DOKU posts about the payment under c's key, with
// the reference number the sandbox gave it, its signature verified.
func (b *bundle) notification(t *testing.T, c state.Charge, status string, amount money.Amount) *doku.Notification {
	t.Helper()
	ref := ""
	for _, p := range b.sb.Ledger(t).Payments {
		if p.PartnerReferenceNo == c.PartnerReferenceNo {
			ref = p.ReferenceNo
		}
	}
	if ref == "" {
		t.Fatalf("the sandbox has no payment %s", c.PartnerReferenceNo)
	}
	return &doku.Notification{OriginalPartnerReferenceNo: c.PartnerReferenceNo, OriginalReferenceNo: ref,
		LatestTransactionStatus: status, TransactionStatusDesc: "from the test", Amount: doku.NewAmount(amount), Signed: true}
}

// stateOf is everything ApplyNotification may change, for before/after
// comparisons.
type stateOf struct {
	Serial  int64
	Charges []state.Charge
	Events  []state.Event
}

func (b *bundle) snapshot(t *testing.T) stateOf {
	t.Helper()
	ctx := context.Background()
	serial, err := b.store.Serial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	charges, err := b.store.Charges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	events, err := b.store.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return stateOf{serial, charges, events}
}

func (b *bundle) applyNotification(t *testing.T, n *doku.Notification) reconcile.NotificationOutcome {
	t.Helper()
	out, err := b.engine.ApplyNotification(context.Background(), n)
	if err != nil {
		t.Fatalf("ApplyNotification: %v", err)
	}
	return out
}

// countEvents counts the state's events of type typ for the attempt key.
func (b *bundle) countEvents(t *testing.T, typ state.EventType, key string) int {
	t.Helper()
	n := 0
	for _, e := range b.snapshot(t).Events {
		if e.Type == typ && e.Key == key {
			n++
		}
	}
	return n
}

// A final status moves an attempt awaiting its customer and gives its
// event once: the same notification again (DOKU retries, docs/doku.md#notification-retries) reports no
// change and adds nothing. "Paid" is taken as it comes, with the
// notification's reference number; a failure, which frees the next
// attempt, is what the status inquiry confirms (DOKU's reference number).
func TestApplyNotificationFinal(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   state.ChargeStatus
		event  state.EventType
	}{
		{doku.TxSuccess, state.ChargeSucceeded, state.EventChargeSucceeded},
		{doku.TxFailed, state.ChargeFailed, state.EventChargeFailed},
	} {
		t.Run(tc.status, func(t *testing.T) {
			b := setup(t)
			c := b.chargeAwaiting(t)
			if c.Status != state.ChargeAwaitingCustomer {
				t.Fatalf("Status=%s, want %s", c.Status, state.ChargeAwaitingCustomer)
			}
			n := b.notification(t, c, tc.status, c.Amount)
			wantRef := n.OriginalReferenceNo
			if tc.status == doku.TxSuccess {
				n.OriginalReferenceNo += "-N" // the notification's, not the payment answer's, is kept
				wantRef = n.OriginalReferenceNo
			} else {
				b.decline(t, c)
			}

			out := b.applyNotification(t, n)
			if !out.Changed || out.Charge.Status != tc.want {
				t.Fatalf("outcome %+v, want changed to %s", out, tc.want)
			}
			got := b.onlyCharge(t)
			if got.Status != tc.want || got.ReferenceNo != wantRef {
				t.Fatalf("charge Status=%s ReferenceNo=%q, want %s %q", got.Status, got.ReferenceNo, tc.want, wantRef)
			}
			if n := b.countEvents(t, tc.event, c.PartnerReferenceNo); n != 1 {
				t.Fatalf("%s events=%d, want 1", tc.event, n)
			}

			before := b.snapshot(t)
			again := b.applyNotification(t, n)
			if again.Changed || again.Reason == "" {
				t.Fatalf("second identical notification: %+v, want no change and a reason", again)
			}
			if diff := cmp.Diff(before, b.snapshot(t)); diff != "" {
				t.Fatalf("second identical notification changed the state (-before +after):\n%s", diff)
			}
		})
	}
}

// "Paid" taken on a bearer token alone (token-only mode, or a signature
// made optional) never settles a charge by itself: whoever holds a token
// could have sent it. A status inquiry is made, and the state follows
// DOKU: still awaiting its customer while DOKU says 03, paid once DOKU
// says so.
func TestApplyNotificationUnsignedPaid(t *testing.T) {
	b := setup(t)
	c := b.chargeAwaiting(t)
	n := b.notification(t, c, doku.TxSuccess, c.Amount)
	n.Signed = false

	statuses := b.sb.Calls(doku.OpStatus)
	before := b.snapshot(t)
	out := b.applyNotification(t, n)
	if out.Changed {
		t.Fatalf("an unsigned \"paid\" DOKU does not confirm changed the state: %+v", out)
	}
	if got := b.sb.Calls(doku.OpStatus) - statuses; got != 1 {
		t.Fatalf("%d status inquiries, want 1", got)
	}
	if diff := cmp.Diff(before, b.snapshot(t)); diff != "" {
		t.Fatalf("the state changed (-before +after):\n%s", diff)
	}
	if n := b.countEvents(t, state.EventChargeSucceeded, c.PartnerReferenceNo); n != 0 {
		t.Fatalf("%d charge.succeeded events, want 0", n)
	}

	if err := b.sb.Server.Confirm(context.Background(), path.Base(c.WebRedirectURL), true); err != nil {
		t.Fatal(err)
	}
	out = b.applyNotification(t, n)
	if !out.Changed || out.Charge.Status != state.ChargeSucceeded {
		t.Fatalf("after DOKU has it paid: %+v, want succeeded", out)
	}
	if got := b.sb.Calls(doku.OpStatus) - statuses; got != 2 {
		t.Fatalf("%d status inquiries, want 2", got)
	}
}

// What a notification must not move: an attempt no longer (or not yet)
// awaiting its customer, a status that is not final, an amount that is
// not the attempt's, and a partnerReferenceNo ddctl never used. The state
// (serial, charges, events) is exactly as before.
func TestApplyNotificationChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		// prepare returns the notification to apply, after bringing the
		// state where the case needs it.
		prepare func(t *testing.T, b *bundle) *doku.Notification
	}{
		{"NotFinal", func(t *testing.T, b *bundle) *doku.Notification {
			c := b.chargeAwaiting(t)
			return b.notification(t, c, doku.TxPending, c.Amount)
		}},
		{"OtherAmount", func(t *testing.T, b *bundle) *doku.Notification {
			c := b.chargeAwaiting(t)
			return b.notification(t, c, doku.TxSuccess, c.Amount+1)
		}},
		{"UnknownPartnerReferenceNo", func(t *testing.T, b *bundle) *doku.Notification {
			c := b.chargeAwaiting(t)
			n := b.notification(t, c, doku.TxSuccess, c.Amount)
			n.OriginalPartnerReferenceNo = "NOT" + c.PartnerReferenceNo
			return n
		}},
		{"Succeeded", func(t *testing.T, b *bundle) *doku.Notification {
			c := b.chargeAwaiting(t)
			b.applyNotification(t, b.notification(t, c, doku.TxSuccess, c.Amount))
			return b.notification(t, c, doku.TxFailed, c.Amount)
		}},
		{"Failed", func(t *testing.T, b *bundle) *doku.Notification {
			// A "paid" that DOKU's own status inquiry does not confirm.
			c := b.chargeAwaiting(t)
			b.decline(t, c)
			b.applyNotification(t, b.notification(t, c, doku.TxFailed, c.Amount))
			return b.notification(t, c, doku.TxSuccess, c.Amount)
		}},
		{"FailureNotConfirmed", func(t *testing.T, b *bundle) *doku.Notification {
			// "Failed" while DOKU still waits for the customer: a failure
			// frees the next attempt, so it must be confirmed first.
			c := b.chargeAwaiting(t)
			return b.notification(t, c, doku.TxFailed, c.Amount)
		}},
		{"Pending", func(t *testing.T, b *bundle) *doku.Notification {
			// The payment request reached DOKU but its answer was lost:
			// the attempt is pending, for the resolver to settle.
			cfg := config()
			b.activeBinding(t, cfg)
			cfg.Charges = gymCharge(1)
			b.sb.Server.SetFaults(sandbox.Faults{DropRate: 1, Ops: []string{"payment"}})
			b.apply(t, b.plan(t, cfg))
			b.sb.Server.SetFaults(sandbox.Faults{})
			c := b.onlyCharge(t)
			if c.Status != state.ChargePending {
				t.Fatalf("after a dropped answer: Status=%s, want %s", c.Status, state.ChargePending)
			}
			return b.notification(t, c, doku.TxSuccess, c.Amount)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t)
			n := tc.prepare(t, b)
			before := b.snapshot(t)
			out := b.applyNotification(t, n)
			if out.Changed || out.Reason == "" {
				t.Fatalf("outcome %+v, want no change and a reason", out)
			}
			if diff := cmp.Diff(before, b.snapshot(t)); diff != "" {
				t.Fatalf("the notification changed the state (-before +after):\n%s", diff)
			}
		})
	}
}

// A notification that DOKU paid an attempt the state has as failed (an
// answer lost or misread) is confirmed by status inquiry, recorded as
// paid, and reported as a conflict for the operator: a later attempt may
// have been charged too.
func TestApplyNotificationConflict(t *testing.T) {
	b := setup(t)
	c := b.chargeAwaiting(t)
	c.Status, c.Message = state.ChargeFailed, "as if the answer had been misread"
	if err := b.store.PutCharge(context.Background(), c, c.UpdatedAt); err != nil {
		t.Fatal(err)
	}
	if err := b.sb.Server.Confirm(context.Background(), path.Base(c.WebRedirectURL), true); err != nil {
		t.Fatal(err)
	}
	statusBefore := b.sb.Calls(doku.OpStatus)
	out := b.applyNotification(t, b.notification(t, c, doku.TxSuccess, c.Amount))
	if !out.Changed || !out.Conflict || out.Charge.Status != state.ChargeSucceeded {
		t.Fatalf("outcome %+v, want changed to succeeded, with a conflict", out)
	}
	if n := b.sb.Calls(doku.OpStatus) - statusBefore; n != 1 {
		t.Fatalf("%d status inquiries, want 1 to confirm", n)
	}
	if got := b.onlyCharge(t); got.Status != state.ChargeSucceeded {
		t.Fatalf("charge Status=%s, want succeeded", got.Status)
	}
}
