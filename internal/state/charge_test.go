package state_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/state"
)

func TestCharges(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	occ := time.Date(2026, 12, 1, 2, 0, 0, 0, time.FixedZone("WIB", 7*3600))
	first := state.Charge{Address: "charge.monthly[\"alice\"]", Occurrence: occ, Attempt: 1, PartnerReferenceNo: "K-1",
		Amount: 15000000, BindingAddress: "binding.alice", Status: state.ChargeDeferred, SNAPCode: "4035414",
		Message: "insufficient balance", NextAttemptAt: occ.Add(24 * time.Hour)}
	second := state.Charge{Address: first.Address, Occurrence: occ, Attempt: 2, PartnerReferenceNo: "K-2",
		Amount: 15000000, BindingAddress: "binding.alice", Status: state.ChargeAwaitingCustomer,
		ReferenceNo: "D-2", WebRedirectURL: "https://pay.example/otp/2"}
	for _, c := range []state.Charge{second, first} {
		if err := s.PutCharge(ctx, c, t0); err != nil {
			t.Fatalf("PutCharge: %v", err)
		}
	}
	second.Status = state.ChargeSucceeded
	if err := s.PutCharge(ctx, second, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Charges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantFirst, wantSecond := first, second
	wantFirst.CreatedAt, wantFirst.UpdatedAt = t0, t0
	wantSecond.CreatedAt, wantSecond.UpdatedAt = t0, t0.Add(time.Minute)
	if diff := cmp.Diff([]state.Charge{wantFirst, wantSecond}, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Fatalf("Charges (-want +got):\n%s", diff)
	}
	if got[0].Occurrence.Location() != time.UTC {
		t.Errorf("occurrence read back in %v, want UTC", got[0].Occurrence.Location())
	}

	t.Run("ErrChargeSucceeded", func(t *testing.T) {
		late := second
		late.Status = state.ChargeExpired
		if err := s.PutCharge(ctx, late, t0); !errors.Is(err, state.ErrChargeSucceeded) {
			t.Fatalf("err=%v, want ErrChargeSucceeded", err)
		}
	})
	t.Run("KeyIsFixed", func(t *testing.T) {
		rekeyed := first
		rekeyed.PartnerReferenceNo = "K-other"
		if err := s.PutCharge(ctx, rekeyed, t0); err == nil {
			t.Fatal("an attempt's key was changed")
		}
	})
	t.Run("KeyIsUnique", func(t *testing.T) {
		dup := first
		dup.Attempt = 3
		if err := s.PutCharge(ctx, dup, t0); err == nil {
			t.Fatal("two attempts share a key")
		}
	})
}

func TestToken(t *testing.T) {
	ctx := context.Background()
	s := openWith(t, filepath.Join(t.TempDir(), "ddctl.db"), state.OpenOptions{Cipher: newCipher(t)})
	if _, _, ok, err := s.Token(ctx, "b2b"); ok || err != nil {
		t.Fatalf("Token before any: ok=%v err=%v", ok, err)
	}
	serial0, _ := s.Serial(ctx)
	exp := t0.Add(15 * time.Minute)
	if err := s.PutToken(ctx, "b2b", secret.New("tok-1"), exp); err != nil {
		t.Fatal(err)
	}
	if err := s.PutToken(ctx, "b2b", secret.New("tok-2"), exp.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	tok, gotExp, ok, err := s.Token(ctx, "b2b")
	if err != nil || !ok || tok.Reveal() != "tok-2" || !gotExp.Equal(exp.Add(time.Hour)) {
		t.Fatalf("Token=%v %v %v %v, want tok-2", tok, gotExp, ok, err)
	}
	// A cached token is no change of state: saved plans stay fresh.
	if serial, _ := s.Serial(ctx); serial != serial0 {
		t.Fatalf("serial=%d after caching a token, want %d", serial, serial0)
	}
	if err := s.PutToken(ctx, "b2b", secret.Value{}, exp); err == nil {
		t.Fatal("an empty token was cached")
	}
}

func TestNotifications(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	if got := record(t, s, state.Notification{ExternalID: "X-1", DedupKey: "pay:K-1:00", Body: []byte(`{"a":1}`), Signed: true}, t0); got != state.NotificationRecorded {
		t.Fatalf("first: %v", got)
	}
	if got := record(t, s, state.Notification{ExternalID: "X-1b", DedupKey: "pay:K-1:00", Body: []byte(`{"a":1}`)}, t0.Add(time.Second)); got != state.NotificationDuplicate {
		t.Fatalf("resend: %v, want duplicate", got)
	}
	if got := record(t, s, state.Notification{ExternalID: "X-2", DedupKey: "pay:K-2:00"}, t0.Add(2*time.Second)); got != state.NotificationRecorded {
		t.Fatalf("second: %v", got)
	}
	pending, err := s.PendingNotifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []state.Notification{
		{ID: pending[0].ID, ExternalID: "X-1", DedupKey: "pay:K-1:00", Body: []byte(`{"a":1}`), Signed: true, ReceivedAt: t0},
		{ID: pending[1].ID, ExternalID: "X-2", DedupKey: "pay:K-2:00", Body: []byte{}, ReceivedAt: t0.Add(2 * time.Second)},
	}
	if diff := cmp.Diff(want, pending); diff != "" {
		t.Fatalf("PendingNotifications (-want +got):\n%s", diff)
	}
	if err := s.MarkNotificationProcessed(ctx, pending[0].ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkNotificationProcessed(ctx, pending[0].ID, t0.Add(time.Hour)); err != nil {
		t.Fatalf("marking again: %v", err)
	}
	if err := s.MarkNotificationProcessed(ctx, 999, t0); err == nil {
		t.Fatal("an unknown notification was marked")
	}
	pending, _ = s.PendingNotifications(ctx)
	if len(pending) != 1 || pending[0].DedupKey != "pay:K-2:00" {
		t.Fatalf("pending after processing one: %+v", pending)
	}
	// Processed or not, a resend stays a duplicate.
	if got := record(t, s, state.Notification{ExternalID: "X-1c", DedupKey: "pay:K-1:00"}, t0); got != state.NotificationDuplicate {
		t.Fatalf("resend after processing: %v, want duplicate", got)
	}
}

func TestForget(t *testing.T) {
	ctx := context.Background()
	s := openWith(t, filepath.Join(t.TempDir(), "ddctl.db"), state.OpenOptions{Cipher: newCipher(t)})
	run, _ := s.StartRun(ctx, state.Run{Command: "apply", StartedAt: t0})
	r := state.Refund{Address: "refund.a", Payment: "INV-1", Amount: 500, PartnerRefundNo: "KEY-A"}
	if _, err := s.RecordRefundIntent(ctx, state.Operation{RunID: run, Address: "refund.a", IdempotencyKey: "KEY-A",
		ExternalID: "1", Request: []byte(`{}`)}, r, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBinding(ctx, state.Binding{Address: "binding.alice", CustomerID: "C-1", Status: state.BindingActive,
		CustomerToken: secret.New("tok")}, t0); err != nil {
		t.Fatal(err)
	}
	for i, occ := range []time.Time{t0, t0, t0.AddDate(0, 1, 0)} {
		c := state.Charge{Address: "charge.m", Occurrence: occ, Attempt: 1 + i%2, PartnerReferenceNo: "C-" + string(rune('a'+i)),
			Amount: 100, BindingAddress: "binding.alice", Status: state.ChargeFailed}
		if err := s.PutCharge(ctx, c, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutCharge(ctx, state.Charge{Address: "charge.other", Occurrence: t0, Attempt: 1, PartnerReferenceNo: "O-1",
		BindingAddress: "binding.alice", Status: state.ChargeSucceeded}, t0); err != nil {
		t.Fatal(err)
	}

	for addr, want := range map[string]int{"refund.a": 1, "binding.alice": 1, "charge.m": 3, "charge.none": 0} {
		n, err := s.Forget(ctx, addr)
		if err != nil || n != want {
			t.Errorf("Forget(%s)=%d, %v, want %d", addr, n, err, want)
		}
	}
	if _, ok, _ := s.Refund(ctx, "refund.a"); ok {
		t.Error("the refund is still there")
	}
	if b, _ := s.Bindings(ctx); len(b) != 0 {
		t.Errorf("bindings left: %v", b)
	}
	if c, _ := s.Charges(ctx); len(c) != 1 || c[0].Address != "charge.other" {
		t.Errorf("charges left: %+v, want charge.other only", c)
	}
	// History survives.
	ops, err := s.Operations(ctx, "refund.a")
	if err != nil || len(ops) != 1 || ops[0].IdempotencyKey != "KEY-A" {
		t.Fatalf("operations of refund.a after Forget: %+v, %v", ops, err)
	}
}

func TestForceUnlock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ddctl.db")
	if err := state.ForceUnlock(path, "abc"); !errors.Is(err, state.ErrNoLockHolder) {
		t.Fatalf("no lock file: err=%v, want ErrNoLockHolder", err)
	}
	held, err := state.AcquireLock(ctx, path, state.LockInfo{ID: "abc", Operation: "apply", PID: 4242, Host: "ci-1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	if err := state.ForceUnlock(path, "xyz"); err == nil {
		t.Fatal("a lock was cleared under another ID")
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Fatalf("the lock file went with the wrong ID: %v", err)
	}
	// As if the holder died on a file system that kept its lock: the
	// record is cleared and the next run can lock.
	if err := state.ForceUnlock(path, "abc"); err != nil {
		t.Fatalf("ForceUnlock: %v", err)
	}
	next, err := state.AcquireLock(ctx, path, state.LockInfo{Operation: "plan"}, 0)
	if err != nil {
		t.Fatalf("lock after force-unlock: %v", err)
	}
	next.Unlock()
	if err := state.ForceUnlock(path, "abc"); !errors.Is(err, state.ErrNoLockHolder) {
		t.Fatalf("after release: err=%v, want ErrNoLockHolder", err)
	}
}
