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
// The copy is written next to path and renamed over it, so that a crash
// leaves either the old state or the restored one; the old state's WAL
// files are removed with it.
func Restore(ctx context.Context, path, copyPath string, opts RestoreOptions) (*Store, Restored, error) {
	floorSerial, floorGen := int64(0), int64(0)
	if cur, err := Inspect(ctx, path); err == nil {
		floorSerial, floorGen = cur.Serial, cur.Generation
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, Restored{}, fmt.Errorf("the state being replaced: %w", err)
	}
	if w, ok, err := readWitness(path); err == nil && ok {
		floorSerial, floorGen = max(floorSerial, w.serial), max(floorGen, w.generation)
	}
	if opts.Backup != "" && floorSerial > 0 {
		if err := vacuumInto(ctx, path, opts.Backup); err != nil {
			return nil, Restored{}, fmt.Errorf("keep the state being replaced: %w", err)
		}
	}
	tmp := path + ".restoring"
	os.Remove(tmp)
	if err := vacuumInto(ctx, copyPath, tmp); err != nil {
		return nil, Restored{}, fmt.Errorf("copy %s: %w", copyPath, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return nil, Restored{}, err
	}
	for _, side := range []string{path + "-wal", path + "-shm"} {
		if err := os.Remove(side); err != nil && !errors.Is(err, fs.ErrNotExist) {
			os.Remove(tmp)
			return nil, Restored{}, err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, Restored{}, err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, Restored{}, err
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

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
