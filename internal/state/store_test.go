package state_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/state"
)

func open(t *testing.T, path string) *state.Store {
	t.Helper()
	s, err := state.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ddctl.db")
	s := open(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode=%v, want 0600", fi.Mode().Perm())
	}
	if len(s.Lineage()) != 32 {
		t.Fatalf("lineage=%q", s.Lineage())
	}
	lineage := s.Lineage()
	s.Close()
	s2 := open(t, path)
	if s2.Lineage() != lineage {
		t.Fatalf("lineage changed on reopen: %s, want %s", s2.Lineage(), lineage)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("no WAL file next to the state: %v", err)
	}
}

func TestRefundJournal(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	serial0, _ := s.Serial(ctx)
	run, err := s.StartRun(ctx, state.Run{Command: "apply", StartedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPayment(ctx, state.Payment{PartnerReferenceNo: "INV-1", Status: "00", Amount: 500, CheckedAt: now}); err != nil {
		t.Fatal(err)
	}
	r := state.Refund{Address: "refund.a", Payment: "INV-1", Amount: 500, PartnerRefundNo: "KEY-A"}
	op := state.Operation{RunID: run, Address: "refund.a", IdempotencyKey: "KEY-A", ExternalID: "1", Request: []byte(`{}`)}
	id, err := s.RecordRefundIntent(ctx, op, r, now)
	if err != nil {
		t.Fatalf("RecordRefundIntent: %v", err)
	}
	// A second intent while the first is open is refused.
	if _, err := s.RecordRefundIntent(ctx, op, r, now); !errors.Is(err, state.ErrOperationOpen) {
		t.Fatalf("second intent: err=%v, want ErrOperationOpen", err)
	}
	open, err := s.OpenOperations(ctx)
	if err != nil || len(open) != 1 || open[0].ID != id || open[0].Status != state.OpIntent {
		t.Fatalf("OpenOperations=%+v, %v", open, err)
	}
	got, ok, err := s.Refund(ctx, "refund.a")
	if err != nil || !ok || got.Status != state.RefundPending {
		t.Fatalf("Refund=%+v %v %v, want pending", got, ok, err)
	}

	if err := s.RecordRefundOutcome(ctx, id, state.Outcome{Status: state.OpSucceeded, HTTPStatus: 200, SNAPCode: "2005800", RefundNo: "RF-1"}, now); err != nil {
		t.Fatalf("RecordRefundOutcome: %v", err)
	}
	got, _, _ = s.Refund(ctx, "refund.a")
	if got.Status != state.RefundSucceeded || got.RefundNo != "RF-1" {
		t.Fatalf("after success: %+v", got)
	}
	pays, err := s.Payments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := pays["INV-1"]; len(p.Refunds) != 1 || p.Refunded() != 500 || p.Refunds[0].PartnerRefundNo != "KEY-A" {
		t.Fatalf("payment after refund: %+v", p)
	}
	if open, _ := s.OpenOperations(ctx); len(open) != 0 {
		t.Fatalf("open operations after success: %+v", open)
	}
	if _, err := s.RecordRefundIntent(ctx, op, r, now); !errors.Is(err, state.ErrRefundSucceeded) {
		t.Fatalf("intent after success: err=%v, want ErrRefundSucceeded", err)
	}
	serial1, _ := s.Serial(ctx)
	if serial1 != serial0+4 {
		t.Fatalf("serial=%d, want %d after four writes", serial1, serial0+4)
	}
}

// A late answer to one request cannot undo a refund another established.
func TestOutcomeNeverDowngradesSuccess(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	run, _ := s.StartRun(ctx, state.Run{Command: "apply", StartedAt: now})
	r := state.Refund{Address: "refund.a", Payment: "INV-1", Amount: 500, PartnerRefundNo: "KEY-A"}
	op := state.Operation{RunID: run, Address: "refund.a", IdempotencyKey: "KEY-A", ExternalID: "1", Request: []byte(`{}`)}
	first, err := s.RecordRefundIntent(ctx, op, r, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordRefundOutcome(ctx, first, state.Outcome{Status: state.OpNotReceived}, now); err != nil {
		t.Fatal(err)
	}
	second, err := s.RecordRefundIntent(ctx, op, r, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordRefundOutcome(ctx, second, state.Outcome{Status: state.OpSucceeded, RefundNo: "RF-1"}, now); err != nil {
		t.Fatal(err)
	}
	// A settled operation cannot be settled again.
	if err := s.RecordRefundOutcome(ctx, first, state.Outcome{Status: state.OpFailed, SNAPCode: "4035815"}, now); err == nil {
		t.Fatal("re-settling a settled operation was accepted")
	}
	got, _, _ := s.Refund(ctx, "refund.a")
	if got.Status != state.RefundSucceeded || got.RefundNo != "RF-1" {
		t.Fatalf("refund=%+v, want succeeded RF-1", got)
	}
	// An intent whose request differs from the pending refund is refused.
	other := r
	other.Amount = 400
	if _, err := s.RecordRefundIntent(ctx, op, other, now); err == nil {
		t.Fatal("intent accepted for a succeeded refund")
	}
}
