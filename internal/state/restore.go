package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// CopyInfo describes a copy of a state file, as Inspect reads it.
type CopyInfo struct {
	Lineage    string
	Serial     int64
	Generation int64 // 1 for a copy made before generations existed
}

// Inspect reads what identifies the state file at path without changing
// it (read only; no migration, no witness): its lineage, serial and
// generation. It fails when the file is not a sound ddctl state.
func Inspect(ctx context.Context, path string) (CopyInfo, error) {
	if _, err := os.Stat(path); err != nil {
		return CopyInfo{}, err
	}
	db, err := sql.Open("sqlite3", "file:"+EscapePath(path)+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return CopyInfo{}, err
	}
	defer db.Close()
	var check string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil {
		return CopyInfo{}, fmt.Errorf("%s is not a ddctl state file: %w", path, formatError(err))
	}
	if check != "ok" {
		return CopyInfo{}, fmt.Errorf("%s is damaged (integrity check: %s)", path, check)
	}
	meta := map[string]string{}
	rows, err := db.QueryContext(ctx, `SELECT key, value FROM meta`)
	if err != nil {
		return CopyInfo{}, fmt.Errorf("%s is not a ddctl state file: %w", path, formatError(err))
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return CopyInfo{}, err
		}
		meta[k] = v
	}
	if err := rows.Err(); err != nil {
		return CopyInfo{}, err
	}
	info := CopyInfo{Lineage: meta["lineage"], Generation: 1}
	if info.Lineage == "" {
		return CopyInfo{}, fmt.Errorf("%s is not a ddctl state file: it has no lineage", path)
	}
	if info.Serial, err = strconv.ParseInt(meta["serial"], 10, 64); err != nil {
		return CopyInfo{}, fmt.Errorf("%s: unreadable serial %q", path, meta["serial"])
	}
	if g, ok := meta["generation"]; ok {
		if info.Generation, err = strconv.ParseInt(g, 10, 64); err != nil {
			return CopyInfo{}, fmt.Errorf("%s: unreadable generation %q", path, g)
		}
	}
	return info, nil
}

// RestoreOptions are what Restore needs besides the two paths.
type RestoreOptions struct {
	Open OpenOptions // how to open the restored state (its key)
	Now  time.Time
	// Backup, when not empty, is where the state being replaced is kept
	// (a consistent copy, as VACUUM INTO writes it) before the copy takes
	// its place.
	Backup string
}

// Restore puts the copy at copyPath in place of the state file at path
// (ddctl state restore), and records the restore (Continuity): the
// generation goes up, the serial goes above both files' and the
// witness's, so that no plan made before the restore applies, and from
// now on the state vouches only for what it holds a record of. The copy
// itself is not changed. The caller holds the state's lock and has
// checked the copy (Inspect) and that no daemon runs on the state.
//
// The copy's pages are written into the state file by SQLite's online
// backup, in one transaction, through the state's own WAL and locks: a
// crash leaves the old state or the restored one, and a process that has
// the state open sees one or the other, never a file replaced under it
// (a daemon that finds the state restored stops: CheckUnchanged).
func Restore(ctx context.Context, path, copyPath string, opts RestoreOptions) (*Store, Restored, error) {
	floorSerial, floorGen := int64(0), int64(0)
	exists := false
	if cur, err := Inspect(ctx, path); err == nil {
		floorSerial, floorGen, exists = cur.Serial, cur.Generation, true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, Restored{}, fmt.Errorf("the state being replaced: %w", err)
	}
	if w, ok, err := readWitness(path); err == nil && ok {
		floorSerial, floorGen = max(floorSerial, w.serial), max(floorGen, w.generation)
	}
	if opts.Backup != "" && exists {
		if err := vacuumInto(ctx, path, opts.Backup); err != nil {
			return nil, Restored{}, fmt.Errorf("keep the state being replaced: %w", err)
		}
	}
	if err := backupInto(ctx, copyPath, path); err != nil {
		return nil, Restored{}, fmt.Errorf("restore %s: %w", copyPath, err)
	}
	o := opts.Open
	o.NowFunc = func() time.Time { return opts.Now }
	o.restore = &restoreFloor{serial: floorSerial, generation: floorGen, how: "state restore " + filepath.Base(copyPath)}
	s, err := OpenWith(path, o)
	if err != nil {
		return nil, Restored{}, err
	}
	return s, *s.restored, nil
}

// backupInto writes every page of the SQLite file at from into the state
// file at to (created if missing), with SQLite's online backup: one write
// transaction of to, under its locks.
func backupInto(ctx context.Context, from, to string) error {
	src, err := sql.Open("sqlite3", "file:"+EscapePath(from)+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return err
	}
	defer src.Close()
	f, err := os.OpenFile(to, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	dst, err := sql.Open("sqlite3", fmt.Sprintf("file:%s?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=%d", EscapePath(to), BusyTimeout.Milliseconds()))
	if err != nil {
		return err
	}
	defer dst.Close()
	sc, err := src.Conn(ctx)
	if err != nil {
		return formatError(err)
	}
	defer sc.Close()
	dc, err := dst.Conn(ctx)
	if err != nil {
		return formatError(err)
	}
	defer dc.Close()
	return dc.Raw(func(d any) error {
		return sc.Raw(func(s any) error {
			b, err := d.(*sqlite3.SQLiteConn).Backup("main", s.(*sqlite3.SQLiteConn), "main")
			if err != nil {
				return formatError(err)
			}
			if _, err := b.Step(-1); err != nil {
				b.Close()
				return formatError(err)
			}
			return formatError(b.Finish())
		})
	})
}

// restoreFloor makes OpenWith record a restore whatever the witness says:
// the serial and generation to go above, and how it happened.
type restoreFloor struct {
	serial, generation int64
	how                string
}

// vacuumInto writes a consistent copy of the SQLite file at from into the
// new file to, and syncs it.
func vacuumInto(ctx context.Context, from, to string) error {
	db, err := sql.Open("sqlite3", "file:"+EscapePath(from)+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, to); err != nil {
		return formatError(err)
	}
	f, err := os.Open(to)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
