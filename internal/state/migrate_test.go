package state

import (
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"
)

// A state file made before 0002 is brought up to date and keeps what it
// held.
func TestMigrateFrom0001(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ddctl.db")
	db, err := sqlx.Open("sqlite3", "file:"+EscapePath(path)+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := migrations.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE migrations (name TEXT PRIMARY KEY)`,
		string(schema),
		`INSERT INTO migrations VALUES ('migrations/0001_init.sql')`,
		`INSERT INTO meta VALUES ('lineage', 'feedfacefeedfacefeedfacefeedface'), ('serial', '7')`,
		`INSERT INTO refunds (address, payment, amount, partner_refund_no, status, created_at, updated_at)
			VALUES ('refund.a', 'INV-1', 500, 'KEY-A', 'succeeded', '2026-11-23T10:00:00Z', '2026-11-23T10:00:00Z')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	for range 2 { // the second open finds nothing to do
		s, err := Open(path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		var names []string
		if err := s.db.Select(&names, `SELECT name FROM migrations ORDER BY name`); err != nil {
			t.Fatal(err)
		}
		if len(names) != 2 || names[0] != "migrations/0001_init.sql" || names[1] != "migrations/0002_bindings_charges.sql" {
			t.Fatalf("migrations=%v", names)
		}
		var tables int
		if err := s.db.Get(&tables, `SELECT count(*) FROM sqlite_master WHERE type = 'table'
			AND name IN ('bindings', 'charges', 'notifications', 'tokens')`); err != nil || tables != 4 {
			t.Fatalf("new tables=%d, %v, want 4", tables, err)
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
		var n int
		if err := s.db.Get(&n, `SELECT count(*) FROM migrations`); err != nil || n != 2 {
			t.Fatalf("migrations recorded=%d, %v, want 2", n, err)
		}
		if lineage != "" && s.Lineage() != lineage {
			t.Fatalf("lineage changed on reopen")
		}
		lineage = s.Lineage()
		s.Close()
	}
}
