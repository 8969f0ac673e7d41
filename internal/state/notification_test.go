package state_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// SNAP-ALLO.md §8.3: de-duplicate on X-EXTERNAL-ID and on the dedup key;
// either one alone makes a duplicate.
func TestNotificationExternalID(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	serial0, _ := s.Serial(ctx)
	record := func(externalID, dedupKey string, wantInserted bool) {
		t.Helper()
		ins, err := s.RecordNotification(ctx, externalID, dedupKey, []byte(`{}`), t0)
		if err != nil || ins != wantInserted {
			t.Fatalf("RecordNotification(%q, %q): inserted=%v err=%v, want %v, nil", externalID, dedupKey, ins, err, wantInserted)
		}
	}
	record("X-1", "pay:K-1:00", true)
	record("X-1", "pay:K-1:01", false) // same X-EXTERNAL-ID, another dedup key
	record("X-2", "pay:K-1:00", false) // same dedup key, another X-EXTERNAL-ID
	record("X-1", "pay:K-1:00", false) // both
	// Notifications with no X-EXTERNAL-ID are told apart by dedup key.
	record("", "pay:K-2:00", true)
	record("", "pay:K-3:00", true)
	record("", "pay:K-3:00", false)

	pending, err := s.PendingNotifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 3 || pending[0].DedupKey != "pay:K-1:00" || pending[1].DedupKey != "pay:K-2:00" || pending[2].DedupKey != "pay:K-3:00" {
		t.Fatalf("inbox=%+v, want K-1, K-2, K-3 once each", pending)
	}
	if n, err := s.PendingNotificationCount(ctx); err != nil || n != 3 {
		t.Fatalf("PendingNotificationCount=%d, %v, want 3", n, err)
	}
	if err := s.MarkNotificationProcessed(ctx, pending[0].ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PendingNotificationCount(ctx); err != nil || n != 2 {
		t.Fatalf("PendingNotificationCount after processing one=%d, %v, want 2", n, err)
	}
	// Processed or not, X-1 stays taken.
	record("X-1", "pay:K-1:02", false)

	// Neither recording nor processing touched the serial: a saved plan
	// depends on neither (what a notification changes, PutCharge counts).
	if serial, _ := s.Serial(ctx); serial != serial0 {
		t.Fatalf("serial=%d, want %d: the inbox must not make a saved plan stale", serial, serial0)
	}
}

// The daemon's inbox does not make a saved plan stale.
func TestRecordNotificationKeepsSerial(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	serial0, _ := s.Serial(ctx)
	for i, key := range []string{"pay:K-1:00", "pay:K-2:00", "pay:K-1:00"} {
		if _, err := s.RecordNotification(ctx, "", key, nil, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if serial, _ := s.Serial(ctx); serial != serial0 {
		t.Fatalf("serial=%d after recording notifications, want %d", serial, serial0)
	}
}
