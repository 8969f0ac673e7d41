package state_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/money"
	"github.com/ddctl/ddctl/internal/secret"
	"github.com/ddctl/ddctl/internal/state"
)

// openAt opens the state at path with its clock pinned at now.
func openAt(tb testing.TB, path string, now time.Time, opts state.OpenOptions) *state.Store {
	tb.Helper()
	opts.NowFunc = func() time.Time { return now }
	s, err := state.OpenWith(path, opts)
	if err != nil {
		tb.Fatalf("OpenWith: %v", err)
	}
	return s
}

func continuity(tb testing.TB, s *state.Store) state.Continuity {
	tb.Helper()
	c, err := s.Continuity(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func serial(tb testing.TB, s *state.Store) int64 {
	tb.Helper()
	n, err := s.Serial(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// write makes one change of state (a serial bump).
func write(tb testing.TB, s *state.Store, addr string) {
	tb.Helper()
	if err := s.AdoptRefund(context.Background(), state.Refund{Address: addr, Payment: "INV-" + addr, Amount: 100, PartnerRefundNo: "K-" + addr}, t0); err != nil {
		tb.Fatal(err)
	}
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	in, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
}

// TestContinuityNewState: a new state vouches from its creation, and an
// unchanged state opened again detects no restore.
func TestContinuityNewState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ddctl.db")
	s := openAt(t, path, t0, state.OpenOptions{})
	if c := continuity(t, s); !c.Since.Equal(t0) || c.Generation != 1 {
		t.Fatalf("new state: %+v, want since %s, generation 1", c, t0)
	}
	write(t, s, "refund.a")
	s.Close()
	if _, err := os.Stat(state.WitnessPath(path)); err != nil {
		t.Fatalf("no witness beside a new state: %v", err)
	}
	for range 2 {
		s = openAt(t, path, t0.Add(time.Hour), state.OpenOptions{})
		if r := s.RestoredAtOpen(); r != nil {
			t.Fatalf("a state reopened as it was is taken for a restore: %+v", r)
		}
		if c := continuity(t, s); !c.Since.Equal(t0) || c.Generation != 1 {
			t.Fatalf("reopened: %+v", c)
		}
		s.Close()
	}
}

// TestContinuityRestoreDetected: a copy put back over the state (with cp),
// a state whose witness went missing, and another state's file at the path
// are each detected when opened: the generation goes up, the serial goes
// above what the witness saw (so plans made before are stale), and the
// state vouches only from the moment it was opened.
func TestContinuityRestoreDetected(t *testing.T) {
	setup := func(t *testing.T) (path, copyPath string, before int64) {
		dir := t.TempDir()
		path, copyPath = filepath.Join(dir, "ddctl.db"), filepath.Join(dir, "copy.db")
		s := openAt(t, path, t0, state.OpenOptions{})
		write(t, s, "refund.a")
		s.Close()
		copyFile(t, path, copyPath) // closed: the WAL is checkpointed
		s = openAt(t, path, t0.Add(time.Minute), state.OpenOptions{})
		write(t, s, "refund.b")
		write(t, s, "refund.c")
		before = serial(t, s)
		s.Close()
		return path, copyPath, before
	}
	later := t0.Add(48 * time.Hour)
	check := func(t *testing.T, path string, floor int64, how string) {
		s := openAt(t, path, later, state.OpenOptions{})
		defer s.Close()
		r := s.RestoredAtOpen()
		if r == nil {
			t.Fatal("restore not detected")
		}
		if !strings.Contains(r.How, how) {
			t.Errorf("restore recorded as %q, want it to say %q", r.How, how)
		}
		c := continuity(t, s)
		if c.Generation != 2 || !c.Since.Equal(later) {
			t.Errorf("after the restore: %+v, want generation 2 since %s", c, later)
		}
		if got := serial(t, s); got <= floor {
			t.Errorf("serial %d after the restore, want above %d", got, floor)
		}
		s.Close()
		again := openAt(t, path, later.Add(time.Hour), state.OpenOptions{})
		defer again.Close()
		if again.RestoredAtOpen() != nil || continuity(t, again).Generation != 2 {
			t.Errorf("the restore was recorded again on the next open")
		}
	}
	t.Run("CopyPutBack", func(t *testing.T) {
		path, copyPath, before := setup(t)
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
		copyFile(t, copyPath, path)
		check(t, path, before, "witness at serial")
	})
	t.Run("WitnessMissing", func(t *testing.T) {
		path, _, before := setup(t)
		os.Remove(state.WitnessPath(path))
		check(t, path, before-1, "no witness")
	})
	t.Run("AnotherState", func(t *testing.T) {
		path, _, _ := setup(t)
		other := filepath.Join(t.TempDir(), "other.db")
		s := openAt(t, other, t0, state.OpenOptions{})
		write(t, s, "refund.z")
		s.Close()
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
		copyFile(t, other, path)
		check(t, path, 0, "another state")
	})
}

// TestRestore: ddctl state restore puts a copy in place, keeps the state
// it replaces, and records the restore whatever the witness says.
func TestRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, copyPath := filepath.Join(dir, "ddctl.db"), filepath.Join(dir, "copy.db")
	s := openAt(t, path, t0, state.OpenOptions{})
	write(t, s, "refund.a")
	s.Close()
	copyFile(t, path, copyPath)
	info, err := state.Inspect(ctx, copyPath)
	if err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path, t0, state.OpenOptions{})
	write(t, s, "refund.b")
	lineage, before := s.Lineage(), serial(t, s)
	s.Close()
	if info.Lineage != lineage || info.Serial >= before || info.Generation != 1 {
		t.Fatalf("Inspect(copy)=%+v; state lineage %s serial %d", info, lineage, before)
	}

	at := t0.Add(time.Hour)
	backup := filepath.Join(dir, "before-restore.db")
	r, restored, err := state.Restore(ctx, path, copyPath, state.RestoreOptions{Now: at, Backup: backup})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	defer r.Close()
	if restored.Generation != 2 || restored.Serial <= before || !strings.HasPrefix(restored.How, "state restore copy.db") {
		t.Errorf("Restore: %+v, want generation 2, serial above %d", restored, before)
	}
	refunds, err := r.Refunds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := refunds["refund.b"]; ok || len(refunds) != 1 {
		t.Errorf("restored state holds %v, want the copy's refund.a alone", refunds)
	}
	if c := continuity(t, r); !c.Since.Equal(at) || c.Generation != 2 {
		t.Errorf("restored continuity %+v", c)
	}
	if b, err := state.Inspect(ctx, backup); err != nil || b.Serial != before {
		t.Errorf("backup of the replaced state: %+v, %v; want serial %d", b, err, before)
	}
	if c, _ := state.Inspect(ctx, copyPath); c != info {
		t.Errorf("the copy changed: %+v, was %+v", c, info)
	}
	if r.Lineage() != lineage {
		t.Errorf("lineage %s, want %s", r.Lineage(), lineage)
	}
}

func TestKeySeen(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	if _, ok, err := s.KeySeen(ctx, "K-1"); err != nil || ok {
		t.Fatalf("KeySeen of an unknown key: %v, %v", ok, err)
	}
	if err := s.RecordVerified(ctx, "refund.a", []string{"K-1", "K-2"}, t0); err != nil {
		t.Fatal(err)
	}
	run, _ := s.StartRun(ctx, state.Run{Command: "apply", StartedAt: t0})
	if _, err := s.RecordIntent(ctx, state.Operation{RunID: run, Address: "recurring_charge.x#2026-12-01T09:00+07:00", Kind: state.KindCharge,
		IdempotencyKey: "K-2", ExternalID: "1", Request: []byte("{}"), Amount: 500}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]time.Time{"K-1": t0, "K-2": t0.Add(time.Hour)} {
		at, ok, err := s.KeySeen(ctx, key)
		if err != nil || !ok || !at.Equal(want) {
			t.Errorf("KeySeen(%s)=%v, %v, %v; want %v", key, at, ok, err, want)
		}
	}
}

func TestMove(t *testing.T) {
	ctx := context.Background()
	occ := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	setup := func(t *testing.T) *state.Store {
		s := openWith(t, filepath.Join(t.TempDir(), "ddctl.db"), state.OpenOptions{Cipher: newCipher(t)})
		if err := s.PutBinding(ctx, state.Binding{Address: "binding.alice", CustomerID: "C-1", Status: state.BindingActive,
			AuthCode: secret.New("auth-1")}, t0); err != nil {
			t.Fatal(err)
		}
		for i, k := range []string{"K-1", "K-2"} {
			if err := s.PutCharge(ctx, state.Charge{Address: "recurring_charge.gym", Occurrence: occ, Attempt: i + 1, PartnerReferenceNo: k,
				Amount: 150, BindingAddress: "binding.alice", Status: state.ChargeFailed}, t0); err != nil {
				t.Fatal(err)
			}
		}
		for _, a := range []string{`refund.batch["a"]`, `refund.batch["b"]`, "refund.batchx"} {
			write(t, s, a)
		}
		run, _ := s.StartRun(ctx, state.Run{Command: "apply", StartedAt: t0})
		id, err := s.RecordIntent(ctx, state.Operation{RunID: run, Address: "recurring_charge.gym#2026-12-01T09:00+07:00", Kind: state.KindCharge,
			IdempotencyKey: "K-2", ExternalID: "1", Request: []byte("{}")}, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordOutcome(ctx, id, state.Outcome{Status: state.OpFailed}, t0); err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("ChargeAndItsJournal", func(t *testing.T) {
		s := setup(t)
		n, err := s.Move(ctx, "recurring_charge.gym", "recurring_charge.gym_membership", false, 0, t0)
		if err != nil || n != 2 {
			t.Fatalf("Move=%d, %v; want 2 attempts", n, err)
		}
		charges, _ := s.Charges(ctx)
		for _, c := range charges {
			if c.Address != "recurring_charge.gym_membership" {
				t.Errorf("attempt %d (%s) still at %s", c.Attempt, c.PartnerReferenceNo, c.Address)
			}
		}
		if ops, _ := s.Operations(ctx, "recurring_charge.gym_membership#2026-12-01T09:00+07:00"); len(ops) != 1 || ops[0].IdempotencyKey != "K-2" {
			t.Errorf("journal at the new occurrence address: %+v", ops)
		}
		moves, _ := s.Moves(ctx)
		if len(moves) != 1 || moves[0].From != "recurring_charge.gym" || moves[0].Entries != 2 {
			t.Errorf("Moves=%+v", moves)
		}
	})
	t.Run("BindingSecretsFollow", func(t *testing.T) {
		s := setup(t)
		if n, err := s.Move(ctx, "binding.alice", "binding.alice_2", false, 0, t0); err != nil || n != 1 {
			t.Fatalf("Move=%d, %v", n, err)
		}
		b, ok, err := s.Binding(ctx, "binding.alice_2")
		if err != nil || !ok || b.AuthCode.Reveal() != "auth-1" {
			t.Fatalf("moved binding: %+v %v %v; its authCode must open at the new address", b, ok, err)
		}
		charges, _ := s.Charges(ctx)
		if charges[0].BindingAddress != "binding.alice_2" {
			t.Errorf("the charges still charge %s", charges[0].BindingAddress)
		}
	})
	t.Run("Block", func(t *testing.T) {
		s := setup(t)
		if n, err := s.Move(ctx, "refund.batch", "refund.batch_2026", true, 0, t0); err != nil || n != 2 {
			t.Fatalf("Move=%d, %v; want the two instances, not refund.batchx", n, err)
		}
		refunds, _ := s.Refunds(ctx)
		for _, a := range []string{`refund.batch_2026["a"]`, `refund.batch_2026["b"]`, "refund.batchx"} {
			if _, ok := refunds[a]; !ok {
				t.Errorf("no %s after the move: %v", a, refunds)
			}
		}
	})
	t.Run("ErrMoveConflict", func(t *testing.T) {
		s := setup(t)
		if _, err := s.Move(ctx, `refund.batch["a"]`, `refund.batch["b"]`, false, 0, t0); !errors.Is(err, state.ErrMoveConflict) {
			t.Fatalf("err=%v, want ErrMoveConflict", err)
		}
	})
	t.Run("ErrOperationOpen", func(t *testing.T) {
		s := setup(t)
		run, _ := s.StartRun(ctx, state.Run{Command: "apply", StartedAt: t0})
		if _, err := s.RecordRefundIntent(ctx, state.Operation{RunID: run, Address: "refund.batchx", Kind: state.KindRefund, IdempotencyKey: "K-refund.batchx",
			ExternalID: "2", Request: []byte("{}")}, state.Refund{Address: "refund.batchx", Payment: "INV-refund.batchx", Amount: 100, PartnerRefundNo: "K-refund.batchx"}, t0); err == nil {
			t.Fatal("an intent for a succeeded refund was recorded")
		}
		if _, err := s.RecordIntent(ctx, state.Operation{RunID: run, Address: "recurring_charge.gym#2026-12-01T09:00+07:00", Kind: state.KindCharge,
			IdempotencyKey: "K-3", ExternalID: "3", Request: []byte("{}")}, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Move(ctx, "recurring_charge.gym", "recurring_charge.x", false, 0, t0); !errors.Is(err, state.ErrOperationOpen) {
			t.Fatalf("err=%v, want ErrOperationOpen", err)
		}
		if charges, _ := s.Charges(ctx); charges[0].Address != "recurring_charge.gym" {
			t.Errorf("a refused move moved %s", charges[0].Address)
		}
	})
	t.Run("Nothing", func(t *testing.T) {
		s := setup(t)
		if n, err := s.Move(ctx, "refund.none", "refund.other", false, 0, t0); err != nil || n != 0 {
			t.Fatalf("Move of nothing=%d, %v", n, err)
		}
		if _, err := s.Move(ctx, "refund.a", "binding.a", false, 0, t0); err == nil {
			t.Fatal("a refund moved to a binding address")
		}
	})
}

func TestSpent(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	run, _ := s.StartRun(ctx, state.Run{Command: "apply", StartedAt: t0})
	day := t0.Truncate(24 * time.Hour)
	ops := []struct {
		kind   string
		amount money.Amount
		at     time.Time
		status state.OpStatus
	}{
		{state.KindRefund, 100, day.Add(-time.Second), state.OpSucceeded}, // the day before
		{state.KindRefund, 200, day, state.OpSucceeded},
		{state.KindRefund, 400, day.Add(time.Hour), state.OpUnknown}, // may have moved money
		{state.KindRefund, 800, day.Add(time.Hour), state.OpFailed},
		{state.KindCharge, 1000, day.Add(2 * time.Hour), state.OpSucceeded},
		{state.KindCharge, 2000, day.Add(2 * time.Hour), state.OpNotReceived},
		{state.KindBind, 0, day.Add(2 * time.Hour), state.OpSucceeded},
	}
	for i, o := range ops {
		id, err := s.RecordIntent(ctx, state.Operation{RunID: run, Address: "x" + string(rune('a'+i)), Kind: o.kind, IdempotencyKey: "K",
			ExternalID: "1", Request: []byte("{}"), Amount: o.amount}, o.at)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordOutcome(ctx, id, state.Outcome{Status: o.status}, o.at); err != nil {
			t.Fatal(err)
		}
	}
	refunds, charges, err := s.Spent(ctx, day)
	if err != nil || refunds != 600 || charges != 1000 {
		t.Fatalf("Spent=%d, %d, %v; want 600 and 1000", refunds, charges, err)
	}
}
