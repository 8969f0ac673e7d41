package state

import (
	"path/filepath"
	"testing"
)

// The durability settings are the point of the state file: check them on
// the connection itself.
func TestPragmas(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "a?b#c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"synchronous":  "2", // FULL
		"busy_timeout": "10000",
		"foreign_keys": "1",
	} {
		var got string
		if err := s.db.Get(&got, "PRAGMA "+pragma); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s=%s, want %s", pragma, got, want)
		}
	}
	var file string
	if err := s.db.QueryRow("SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil {
		t.Fatal(err)
	}
	if filepath.Base(file) != "a?b#c.db" {
		t.Errorf("database file %q, want the path as given", file)
	}
}
