package state

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func copyTo(tb testing.TB, from, to string) {
	tb.Helper()
	in, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	os.Remove(to + "-wal")
	os.Remove(to + "-shm")
}

func adopt(tb testing.TB, s *Store, addr string) {
	tb.Helper()
	if err := s.AdoptRefund(context.Background(), Refund{Address: addr, Payment: "INV-" + addr, Amount: 1, PartnerRefundNo: "K-" + addr}, time.Now()); err != nil {
		tb.Fatal(err)
	}
}

// A backup taken before the upgrade to witnesses, put back with cp after
// it: the state is migrated again on open, as an old one is, but its
// witness shows it went back. It is a restore, not an old state.
func TestRestoreOfABackupFromBeforeWitnesses(t *testing.T) {
	dir := t.TempDir()
	path, backup := filepath.Join(dir, "ddctl.db"), filepath.Join(dir, "backup.db")
	stateAt(t, path, 3) // an older ddctl's state, serial 7
	copyTo(t, path, backup)
	s, err := Open(path) // the upgrade
	if err != nil {
		t.Fatal(err)
	}
	if s.RestoredAtOpen() != nil {
		t.Fatal("the upgrade was taken for a restore")
	}
	adopt(t, s, "refund.a")
	adopt(t, s, "refund.b")
	s.Close()
	copyTo(t, backup, path)
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.RestoredAtOpen() == nil {
		t.Fatal("a backup from before the upgrade, put back, was not taken for a restore")
	}
}

// A state that never went back is never taken for a restored one, however
// its opens and another process's commits interleave.
func TestNoRestoreWhileAnotherCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ddctl.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			adopt(t, w, "refund.x")
			time.Sleep(time.Millisecond)
		}
	})
	defer func() { close(stop); wg.Wait() }()
	for i := range 300 {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r := s.RestoredAtOpen()
		s.Close()
		if r != nil {
			t.Fatalf("open %d took a continuous state for a restored one: %+v", i, r)
		}
	}
}

// CheckUnchanged: a Store whose file was copied over, or restored, while
// it was open says so; one left alone does not.
func TestCheckUnchanged(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, backup := filepath.Join(dir, "ddctl.db"), filepath.Join(dir, "backup.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	adopt(t, s, "refund.a")
	if err := vacuumInto(ctx, path, backup); err != nil {
		t.Fatal(err)
	}
	adopt(t, s, "refund.b")
	if err := s.CheckUnchanged(ctx); err != nil {
		t.Fatalf("CheckUnchanged of a state left alone: %v", err)
	}
	r, _, err := Restore(ctx, path, backup, RestoreOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := s.CheckUnchanged(ctx); !errors.Is(err, ErrStateReplaced) {
		t.Fatalf("CheckUnchanged after a restore: %v, want ErrStateReplaced", err)
	}
	s.Close()
}
