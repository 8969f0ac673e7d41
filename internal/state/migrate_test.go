package state

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jmoiron/sqlx"
)

// allMigrations are the embedded migrations, in order.
var allMigrations = []string{
	"migrations/0001_init.sql",
	"migrations/0002_bindings_charges.sql",
	"migrations/0003_daemon.sql",
	"migrations/0004_identity.sql",
	"migrations/0005_notifications.sql",
}

// stateAt makes a state file at path holding the first n migrations, as an
// older ddctl left it, with lineage feedface… and serial 7, then runs
// extra statements in it.
func stateAt(tb testing.TB, path string, n int, extra ...string) {
	tb.Helper()
	db, err := sqlx.Open("sqlite3", "file:"+EscapePath(path)+"?_journal_mode=WAL")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE migrations (name TEXT PRIMARY KEY)`); err != nil {
		tb.Fatal(err)
	}
	for _, name := range allMigrations[:n] {
		schema, err := migrations.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := db.Exec(string(schema)); err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		if _, err := db.Exec(`INSERT INTO migrations VALUES (?)`, name); err != nil {
			tb.Fatal(err)
		}
	}
	extra = append([]string{`INSERT INTO meta VALUES ('lineage', 'feedfacefeedfacefeedfacefeedface'), ('serial', '7')`}, extra...)
	for _, q := range extra {
		if _, err := db.Exec(q); err != nil {
			tb.Fatal(err)
		}
	}
}

// The migrations recorded in s.
func migrated(tb testing.TB, s *Store) []string {
	tb.Helper()
	var names []string
	if err := s.db.Select(&names, `SELECT name FROM migrations ORDER BY name`); err != nil {
		tb.Fatal(err)
	}
	return names
}

// A state file made before 0002 is brought up to date and keeps what it
// held.
func TestMigrateFrom0001(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ddctl.db")
	stateAt(t, path, 1, `INSERT INTO refunds (address, payment, amount, partner_refund_no, status, created_at, updated_at)
			VALUES ('refund.a', 'INV-1', 500, 'KEY-A', 'succeeded', '2026-11-23T10:00:00Z', '2026-11-23T10:00:00Z')`)

	for range 2 { // the second open finds nothing to do
		s, err := Open(path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if diff := cmp.Diff(allMigrations, migrated(t, s)); diff != "" {
			t.Fatalf("migrations (-want +got):\n%s", diff)
		}
		var tables int
		if err := s.db.Get(&tables, `SELECT count(*) FROM sqlite_master WHERE type = 'table'
			AND name IN ('bindings', 'charges', 'notifications', 'tokens', 'applied_specs', 'leases', 'events')`); err != nil || tables != 7 {
			t.Fatalf("new tables=%d, %v, want 7", tables, err)
		}
		if s.Lineage() != "feedfacefeedfacefeedfacefeedface" {
			t.Fatalf("lineage=%s, want the old one", s.Lineage())
		}
		if serial, _ := s.Serial(t.Context()); serial != 7 {
			t.Fatalf("serial=%d, want 7: migrating is no change of state", serial)
		}
		if r, ok, err := s.Refund(t.Context(), "refund.a"); err != nil || !ok || r.Status != RefundSucceeded {
			t.Fatalf("refund after migration: %+v %v %v", r, ok, err)
		}
		s.Close()
	}
}

// A fresh file gets every migration, once.
func TestMigrateFresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ddctl.db")
	var lineage string
	for range 2 {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(allMigrations, migrated(t, s)); diff != "" {
			t.Fatalf("migrations (-want +got):\n%s", diff)
		}
		if lineage != "" && s.Lineage() != lineage {
			t.Fatalf("lineage changed on reopen")
		}
		lineage = s.Lineage()
		s.Close()
	}
}

// A state file made before 0003 whose inbox holds two notifications with
// one X-EXTERNAL-ID (allowed then) migrates: both rows stay, the later
// loses its X-EXTERNAL-ID, and from then on the X-EXTERNAL-ID de-duplicates.
func TestMigrateFrom0002(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ddctl.db")
	stateAt(t, path, 2, `INSERT INTO notifications (external_id, dedup_key, body, received_at) VALUES
		('X-1', 'pay:K-1:00', '{}', '2026-11-23T10:00:00Z'),
		('X-1', 'pay:K-2:00', '{}', '2026-11-23T10:00:01Z'),
		('X-2', 'pay:K-3:00', '{}', '2026-11-23T10:00:02Z'),
		('', 'pay:K-4:00', '{}', '2026-11-23T10:00:03Z'),
		('', 'pay:K-5:00', '{}', '2026-11-23T10:00:04Z')`)
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if diff := cmp.Diff(allMigrations, migrated(t, s)); diff != "" {
		t.Fatalf("migrations (-want +got):\n%s", diff)
	}
	var ids []string
	if err := s.db.Select(&ids, `SELECT external_id FROM notifications ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"X-1", "", "X-2", "", ""}, ids); diff != "" {
		t.Fatalf("external IDs after migration (-want +got):\n%s", diff)
	}
	if serial, _ := s.Serial(t.Context()); serial != 7 {
		t.Fatalf("serial=%d, want 7", serial)
	}
	if got, err := s.RecordNotification(t.Context(), Notification{ExternalID: "X-2", DedupKey: "pay:K-9:00"}, time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)); err != nil || got != NotificationIDConflict {
		t.Fatalf("X-2 again the same day: %v, %v; want a conflict", got, err)
	}
	if got, err := s.RecordNotification(t.Context(), Notification{ExternalID: "X-2", DedupKey: "pay:K-9:00"}, time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC)); err != nil || got != NotificationRecorded {
		t.Fatalf("X-2 the next day: %v, %v; want it recorded", got, err)
	}
}
