package state_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ddctl/ddctl/internal/state"
)

func TestLease(t *testing.T) {
	ctx := context.Background()
	const ttl = 30 * time.Second
	daemonA := state.LeaseInfo{ID: "a", PID: 4242, Host: "ci-1", Who: "ops"}
	daemonB := state.LeaseInfo{ID: "b", PID: 777, Host: "ci-2", Who: "dev"}
	// setup opens a state in which A took the lease at t0.
	setup := func(t *testing.T) *state.Store {
		t.Helper()
		s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
		serial0, _ := s.Serial(ctx)
		if _, err := s.AcquireLease(ctx, "daemon", daemonA, ttl, t0, nil); err != nil {
			t.Fatalf("A: %v", err)
		}
		// A lease is no change of state.
		t.Cleanup(func() {
			if serial, _ := s.Serial(ctx); serial != serial0 {
				t.Errorf("serial=%d after lease operations, want %d", serial, serial0)
			}
		})
		return s
	}
	holder := func(t *testing.T, s *state.Store) state.LeaseInfo {
		t.Helper()
		got, ok, err := s.Lease(ctx, "daemon")
		if err != nil || !ok {
			t.Fatalf("Lease: ok=%v err=%v", ok, err)
		}
		return got
	}
	held := func(t *testing.T, err error) *state.LeaseHeldError {
		t.Helper()
		var le *state.LeaseHeldError
		if !errors.As(err, &le) {
			t.Fatalf("err=%v, want *LeaseHeldError", err)
		}
		return le
	}

	t.Run("OK", func(t *testing.T) {
		s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
		if _, ok, err := s.Lease(ctx, "daemon"); ok || err != nil {
			t.Fatalf("Lease before any: ok=%v err=%v", ok, err)
		}
		at := t0.Add(123456789 * time.Nanosecond).In(time.FixedZone("WIB", 7*3600))
		got, err := s.AcquireLease(ctx, "daemon", daemonA, ttl, at, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := daemonA
		want.AcquiredAt, want.RenewedAt, want.ExpiresAt = at.UTC(), at.UTC(), at.Add(ttl).UTC()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("AcquireLease (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, holder(t, s)); diff != "" {
			t.Fatalf("Lease as stored (-want +got):\n%s", diff)
		}
		// Another name is another lease.
		if _, err := s.AcquireLease(ctx, "other", daemonB, ttl, at, nil); err != nil {
			t.Fatalf("another lease: %v", err)
		}
	})
	t.Run("ErrLeaseHeld", func(t *testing.T) {
		s := setup(t)
		now := t0.Add(12 * time.Second)
		_, err := s.AcquireLease(ctx, "daemon", daemonB, ttl, now, func(state.LeaseInfo) bool { return false })
		le := held(t, err)
		if le.Name != "daemon" || le.Holder.ID != "a" || le.Holder.PID != 4242 || le.Holder.Host != "ci-1" || !le.Now.Equal(now) {
			t.Fatalf("LeaseHeldError=%+v, want A as the holder", le)
		}
		msg := err.Error()
		for _, want := range []string{"pid 4242", "ci-1", "ops", "since 2026-11-23T10:00:00Z", "12s ago",
			"expires at 2026-11-23T10:00:30Z (in 18s)", "stop that daemon first", "expires 30s after its last heartbeat"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not say %q", msg, want)
			}
		}
		if got := holder(t, s); got.ID != "a" || !got.ExpiresAt.Equal(t0.Add(ttl)) {
			t.Fatalf("the refused attempt changed the lease: %+v", got)
		}
		// Up to the last instant before expiry.
		_, err = s.AcquireLease(ctx, "daemon", daemonB, ttl, t0.Add(ttl-time.Nanosecond), nil)
		held(t, err)
	})
	t.Run("Expired", func(t *testing.T) {
		s := setup(t)
		at := t0.Add(ttl) // expires_at <= now
		got, err := s.AcquireLease(ctx, "daemon", daemonB, ttl, at, func(state.LeaseInfo) bool { return false })
		if err != nil {
			t.Fatalf("taking an expired lease: %v", err)
		}
		if got.ID != "b" || !got.AcquiredAt.Equal(at) || !got.ExpiresAt.Equal(at.Add(ttl)) {
			t.Fatalf("lease=%+v, want B's from %v", got, at)
		}
		if got := holder(t, s); got.ID != "b" || got.PID != 777 || got.Who != "dev" {
			t.Fatalf("stored lease=%+v, want B's", got)
		}
	})
	t.Run("DeadHolder", func(t *testing.T) {
		s := setup(t)
		var asked state.LeaseInfo
		got, err := s.AcquireLease(ctx, "daemon", daemonB, ttl, t0.Add(time.Second), func(h state.LeaseInfo) bool {
			asked = h
			return true
		})
		if err != nil {
			t.Fatalf("taking a dead holder's lease: %v", err)
		}
		if asked.ID != "a" || asked.PID != 4242 || asked.Host != "ci-1" {
			t.Fatalf("dead was asked about %+v, want A", asked)
		}
		if got.ID != "b" || holder(t, s).ID != "b" {
			t.Fatalf("lease=%+v, want B's", got)
		}
	})
	t.Run("SameID", func(t *testing.T) {
		s := setup(t)
		again := daemonA
		again.PID = 4343 // restarted under the same ID
		got, err := s.AcquireLease(ctx, "daemon", again, ttl, t0.Add(10*time.Second), nil)
		if err != nil {
			t.Fatalf("re-acquiring: %v", err)
		}
		if got.PID != 4343 || !got.AcquiredAt.Equal(t0) || !got.RenewedAt.Equal(t0.Add(10*time.Second)) ||
			!got.ExpiresAt.Equal(t0.Add(10*time.Second+ttl)) {
			t.Fatalf("lease=%+v, want acquired at t0, renewed at t0+10s", got)
		}
	})
	t.Run("Renew", func(t *testing.T) {
		s := setup(t)
		if err := s.RenewLease(ctx, "daemon", "a", ttl, t0.Add(20*time.Second)); err != nil {
			t.Fatalf("RenewLease: %v", err)
		}
		if got := holder(t, s); !got.RenewedAt.Equal(t0.Add(20*time.Second)) || !got.ExpiresAt.Equal(t0.Add(20*time.Second+ttl)) {
			t.Fatalf("after renewal: %+v", got)
		}
		// Still A's at t0+40s, which the first expiry would have let B take.
		_, err := s.AcquireLease(ctx, "daemon", daemonB, ttl, t0.Add(40*time.Second), nil)
		held(t, err)
		if err := s.RenewLease(ctx, "daemon", "b", ttl, t0.Add(41*time.Second)); !errors.Is(err, state.ErrLeaseLost) {
			t.Fatalf("renewal by a non-holder: err=%v, want ErrLeaseLost", err)
		}
		if err := s.RenewLease(ctx, "other", "a", ttl, t0); !errors.Is(err, state.ErrLeaseLost) {
			t.Fatalf("renewal of a lease no one holds: err=%v, want ErrLeaseLost", err)
		}
		// A stops renewing; B takes over; A's next heartbeat learns it.
		if _, err := s.AcquireLease(ctx, "daemon", daemonB, ttl, t0.Add(50*time.Second), nil); err != nil {
			t.Fatal(err)
		}
		if err := s.RenewLease(ctx, "daemon", "a", ttl, t0.Add(51*time.Second)); !errors.Is(err, state.ErrLeaseLost) {
			t.Fatalf("renewal after a takeover: err=%v, want ErrLeaseLost", err)
		}
	})
	t.Run("Release", func(t *testing.T) {
		s := setup(t)
		if err := s.ReleaseLease(ctx, "daemon", "b"); err != nil {
			t.Fatalf("release by a non-holder: %v", err)
		}
		if got := holder(t, s); got.ID != "a" {
			t.Fatalf("a non-holder released A's lease: %+v", got)
		}
		if err := s.ReleaseLease(ctx, "daemon", "a"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Lease(ctx, "daemon"); ok {
			t.Fatal("the lease is still held after release")
		}
		if err := s.ReleaseLease(ctx, "daemon", "a"); err != nil {
			t.Fatalf("releasing twice: %v", err)
		}
		if _, err := s.AcquireLease(ctx, "daemon", daemonB, ttl, t0.Add(time.Second), nil); err != nil {
			t.Fatalf("acquire after release: %v", err)
		}
	})
	t.Run("NewID", func(t *testing.T) {
		s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
		got, err := s.AcquireLease(ctx, "daemon", state.LeaseInfo{PID: 1, Host: "h"}, ttl, t0, nil)
		if err != nil || got.ID == "" || holder(t, s).ID != got.ID {
			t.Fatalf("lease=%+v, %v, want a generated ID, stored", got, err)
		}
	})
	t.Run("BadTTL", func(t *testing.T) {
		s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
		if _, err := s.AcquireLease(ctx, "daemon", daemonA, 0, t0, nil); err == nil {
			t.Fatal("a lease with no TTL was taken")
		}
	})
}
