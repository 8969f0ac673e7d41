package state_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ddctl/ddctl/internal/state"
)

func TestChargeByKey(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	c := state.Charge{Address: "charge.m", Occurrence: t0, Attempt: 2, PartnerReferenceNo: "K-2", Amount: 100,
		BindingAddress: "binding.alice", Status: state.ChargeAwaitingCustomer, WebRedirectURL: "https://pay.example/2"}
	if err := s.PutCharge(ctx, c, t0); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.ChargeByKey(ctx, "K-2")
	if err != nil || !ok {
		t.Fatalf("ChargeByKey: ok=%v err=%v", ok, err)
	}
	want := c
	want.CreatedAt, want.UpdatedAt = t0, t0
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ChargeByKey (-want +got):\n%s", diff)
	}
	if _, ok, err := s.ChargeByKey(ctx, "K-none"); ok || err != nil {
		t.Fatalf("ChargeByKey of an unknown key: ok=%v err=%v", ok, err)
	}
}

func TestPendingCounts(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	counts := func() map[string]int {
		t.Helper()
		got, err := s.PendingCounts(ctx)
		if err != nil {
			t.Fatalf("PendingCounts: %v", err)
		}
		return got
	}
	zero := map[string]int{"charge": 0, "refund": 0, "binding": 0, "operation": 0, "notification": 0, "event": 0}
	if diff := cmp.Diff(zero, counts()); diff != "" {
		t.Fatalf("PendingCounts of an empty state (-want +got):\n%s", diff)
	}

	run, _ := s.StartRun(ctx, state.Run{Command: "apply", StartedAt: t0})
	// Charges: one of each status; pending and awaiting_customer wait.
	for i, st := range []state.ChargeStatus{state.ChargePending, state.ChargeAwaitingCustomer, state.ChargeAwaitingCustomer,
		state.ChargeSucceeded, state.ChargeFailed, state.ChargeExpired, state.ChargeDeferred} {
		c := state.Charge{Address: "charge.m", Occurrence: t0.AddDate(0, i, 0), Attempt: 1, PartnerReferenceNo: "K-" + string(rune('a'+i)),
			Amount: 100, BindingAddress: "binding.x", Status: st}
		if err := s.PutCharge(ctx, c, t0); err != nil {
			t.Fatal(err)
		}
	}
	// Refunds: a pending one (its operation open), a settled one.
	for _, addr := range []string{"refund.a", "refund.b"} {
		if _, err := s.RecordRefundIntent(ctx, state.Operation{RunID: run, Address: addr, IdempotencyKey: "R-" + addr,
			ExternalID: "1", Request: []byte(`{}`)}, state.Refund{Address: addr, Payment: "INV-1", Amount: 5, PartnerRefundNo: "R-" + addr}, t0); err != nil {
			t.Fatal(err)
		}
	}
	ops, _ := s.OpenOperations(ctx)
	if err := s.RecordRefundOutcome(ctx, ops[1].ID, state.Outcome{Status: state.OpSucceeded, RefundNo: "RF"}, t0); err != nil {
		t.Fatal(err)
	}
	// An operation left unknown, of another kind.
	op, err := s.RecordIntent(ctx, state.Operation{RunID: run, Address: "binding.p", Kind: state.KindBind, ExternalID: "2", Request: []byte(`{}`)}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordOutcome(ctx, op, state.Outcome{Status: state.OpUnknown}, t0); err != nil {
		t.Fatal(err)
	}
	// Bindings: two pending, one active, one failed.
	for i, st := range []state.BindingStatus{state.BindingPending, state.BindingPending, state.BindingActive, state.BindingFailed} {
		b := state.Binding{Address: "binding." + string(rune('p'+i)), CustomerID: "C-" + string(rune('p'+i)), Status: st}
		if err := s.PutBinding(ctx, b, t0); err != nil {
			t.Fatal(err)
		}
	}
	// Notifications: two received, one processed.
	for _, key := range []string{"pay:1", "pay:2"} {
		record(t, s, state.Notification{DedupKey: key}, t0)
	}
	inbox, _ := s.PendingNotifications(ctx)
	if err := s.MarkNotificationProcessed(ctx, inbox[0].ID, t0); err != nil {
		t.Fatal(err)
	}
	// Events so far: awaiting ×2, succeeded, failed ×2 (failed, expired),
	// refund.succeeded, binding.active = 7; deliver one, expire none.
	evs := allEvents(t, s)
	if len(evs) != 7 {
		t.Fatalf("%d events, want 7: %+v", len(evs), evs)
	}
	if err := s.MarkEventDelivered(ctx, evs[0].ID, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}

	want := map[string]int{"charge": 3, "refund": 1, "binding": 2, "operation": 2, "notification": 1, "event": 6}
	if diff := cmp.Diff(want, counts()); diff != "" {
		t.Fatalf("PendingCounts (-want +got):\n%s", diff)
	}
}
