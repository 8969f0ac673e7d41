package state_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ddctl/ddctl/internal/state"
)

func TestAppliedSpec(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "ddctl.db"))
	if _, ok, err := s.AppliedSpec(ctx); ok || err != nil {
		t.Fatalf("AppliedSpec before any: ok=%v err=%v", ok, err)
	}
	serial0, _ := s.Serial(ctx)
	put := func(digest, body string, run int64, at time.Time, wantChanged bool) {
		t.Helper()
		changed, err := s.PutAppliedSpec(ctx, digest, []byte(body), run, at)
		if err != nil || changed != wantChanged {
			t.Fatalf("PutAppliedSpec(%s)=%v, %v, want %v", digest, changed, err, wantChanged)
		}
	}
	latest := func() state.AppliedSpec {
		t.Helper()
		got, ok, err := s.AppliedSpec(ctx)
		if err != nil || !ok {
			t.Fatalf("AppliedSpec: ok=%v err=%v", ok, err)
		}
		return got
	}

	if id, ok, err := s.AppliedSpecID(ctx); ok || id != 0 || err != nil {
		t.Fatalf("AppliedSpecID before any = %d, %v, %v; want 0, false, nil", id, ok, err)
	}
	put("sha256:a", "config A", 1, t0, true)
	first := latest()
	if id, ok, err := s.AppliedSpecID(ctx); !ok || id != first.ID || err != nil {
		t.Fatalf("AppliedSpecID = %d, %v, %v; want %d, true, nil", id, ok, err, first.ID)
	}
	if diff := cmp.Diff(state.AppliedSpec{ID: first.ID, Digest: "sha256:a", Body: []byte("config A"), RunID: 1, AppliedAt: t0}, first); diff != "" {
		t.Fatalf("AppliedSpec (-want +got):\n%s", diff)
	}
	// The same digest again writes nothing: the first snapshot stands.
	put("sha256:a", "config A, reformatted", 2, t0.Add(time.Hour), false)
	if got := latest(); !cmp.Equal(got, first) {
		t.Fatalf("after a repeat: %+v, want %+v", got, first)
	}
	put("sha256:b", "config B", 3, t0.Add(2*time.Hour), true)
	if got := latest(); got.Digest != "sha256:b" || string(got.Body) != "config B" || got.RunID != 3 || got.ID <= first.ID {
		t.Fatalf("after B: %+v", got)
	}
	// Going back to A is a change: the latest wins, not the first seen.
	put("sha256:a", "config A", 4, t0.Add(3*time.Hour), true)
	if got := latest(); got.Digest != "sha256:a" || got.RunID != 4 {
		t.Fatalf("after A again: %+v, want A from run 4", got)
	}
	put("sha256:empty", "", 0, t0.Add(4*time.Hour), true)
	if got := latest(); got.Body == nil || len(got.Body) != 0 {
		t.Fatalf("empty body read back as %#v", got.Body)
	}
	if serial, _ := s.Serial(ctx); serial != serial0 {
		t.Fatalf("serial=%d after storing snapshots, want %d: no plan depends on them", serial, serial0)
	}
}
