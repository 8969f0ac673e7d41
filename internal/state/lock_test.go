package state_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/state"
)

func TestLock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ddctl.db")
	first, err := state.AcquireLock(ctx, path, state.LockInfo{Operation: "apply", PID: 4242, Host: "ci-1", Who: "ops"}, 0)
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}
	// flock locks belong to the open file, so a second open in this
	// process is refused as another process would be.
	_, err = state.AcquireLock(ctx, path, state.LockInfo{Operation: "plan"}, 150*time.Millisecond)
	var locked *state.LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("second lock: err=%v, want *LockedError", err)
	}
	if locked.Holder.PID != 4242 || locked.Holder.Operation != "apply" || locked.Holder.Host != "ci-1" {
		t.Fatalf("holder=%+v, want the first lock's", locked.Holder)
	}
	if err := first.Unlock(); err != nil {
		t.Fatal(err)
	}
	second, err := state.AcquireLock(ctx, path, state.LockInfo{Operation: "plan"}, 0)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	second.Unlock()
}
