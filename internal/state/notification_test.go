package state_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ddctl/ddctl/internal/state"
)

// A resend (the same dedup key) is a duplicate on any day; X-EXTERNAL-ID
// is unique per day (Asia/Jakarta): another notification under one used
// today is a conflict, and one used on an earlier day is recorded.
func TestNotificationExternalID(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	serial0, _ := s.Serial(ctx)
	// 2026-11-23 16:59:59 UTC is 23:59:59 in Jakarta; a second later it
	// is the next day there.
	day1 := time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC)
	lastSecond := time.Date(2026, 11, 23, 16, 59, 59, 0, time.UTC)
	day2 := lastSecond.Add(time.Second)
	check := func(externalID, dedupKey string, at time.Time, want state.Recorded) {
		t.Helper()
		if got := record(t, s, state.Notification{ExternalID: externalID, DedupKey: dedupKey, Body: []byte(`{}`)}, at); got != want {
			t.Fatalf("RecordNotification(%q, %q, %s) = %v, want %v", externalID, dedupKey, at.Format(time.RFC3339), got, want)
		}
	}
	check("X-1", "pay:K-1:00", day1, state.NotificationRecorded)
	check("X-1", "pay:K-1:00", day1, state.NotificationDuplicate)        // a resend
	check("X-2", "pay:K-1:00", day1, state.NotificationDuplicate)        // a resend under a new X-EXTERNAL-ID
	check("X-1", "pay:K-1:01", lastSecond, state.NotificationIDConflict) // the same day: another notification
	check("X-1", "pay:K-1:01", day2, state.NotificationRecorded)         // the next day: it may
	check("X-1", "pay:K-1:02", day2.Add(time.Hour), state.NotificationIDConflict)
	check("X-1", "pay:K-1:00", day2.Add(48*time.Hour), state.NotificationDuplicate) // a resend, days later
	// Notifications with no X-EXTERNAL-ID are told apart by dedup key.
	check("", "pay:K-2:00", day1, state.NotificationRecorded)
	check("", "pay:K-3:00", day1, state.NotificationRecorded)
	check("", "pay:K-3:00", day1, state.NotificationDuplicate)

	pending, err := s.PendingNotifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range pending {
		keys = append(keys, p.DedupKey)
	}
	if want := "pay:K-1:00 pay:K-1:01 pay:K-2:00 pay:K-3:00"; strings.Join(keys, " ") != want {
		t.Fatalf("inbox %v, want %s once each", keys, want)
	}
	if n, err := s.PendingNotificationCount(ctx); err != nil || n != 4 {
		t.Fatalf("PendingNotificationCount=%d, %v, want 4", n, err)
	}
	if err := s.MarkNotificationProcessed(ctx, pending[0].ID, day2); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PendingNotificationCount(ctx); err != nil || n != 3 {
		t.Fatalf("PendingNotificationCount after processing one=%d, %v, want 3", n, err)
	}
	// Processed or not, X-1 stays taken for its day.
	check("X-1", "pay:K-1:03", day2.Add(2*time.Hour), state.NotificationIDConflict)

	// Neither recording nor processing touched the serial: a saved plan
	// depends on neither (what a notification changes, PutCharge counts).
	if serial, _ := s.Serial(ctx); serial != serial0 {
		t.Fatalf("serial=%d, want %d: the inbox must not make a saved plan stale", serial, serial0)
	}
}

// record records n at time at and fails the test on an error.
func record(t *testing.T, s *state.Store, n state.Notification, at time.Time) state.Recorded {
	t.Helper()
	got, err := s.RecordNotification(context.Background(), n, at)
	if err != nil {
		t.Fatalf("RecordNotification(%+v): %v", n, err)
	}
	return got
}

// The daemon's inbox does not make a saved plan stale.
func TestRecordNotificationKeepsSerial(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	serial0, _ := s.Serial(ctx)
	for i, key := range []string{"pay:K-1:00", "pay:K-2:00", "pay:K-1:00"} {
		record(t, s, state.Notification{DedupKey: key}, t0.Add(time.Duration(i)*time.Second))
	}
	if serial, _ := s.Serial(ctx); serial != serial0 {
		t.Fatalf("serial=%d after recording notifications, want %d", serial, serial0)
	}
}
