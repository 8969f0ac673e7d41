package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// A state file vouches for an idempotency key when it can tell, from its
// own records, whether a request was ever sent under it: its journal has
// the key, DOKU was asked about the key since (verified_keys), or the key
// could not have been sent before the state began keeping its records
// (Continuity.Since). What it cannot vouch for, the reconciler asks DOKU
// about before it sends, defers or records anything (principle 8,
// docs/principles.md).
//
// A state begins keeping its records when it is created, and again when
// it is restored: a copy put back in place lacks whatever was sent after
// the copy was taken. A restore is recorded by ddctl state restore, and
// detected when the state is opened: a witness file beside the state file
// holds its lineage, the highest serial it reached and its generation, and
// a state file whose serial or generation is below its witness's went
// back in time. The witness is written after each commit that bumps the
// serial, so it never claims more than the file had; it is a lower bound.
// A file copied over the state, or a state moved without its witness, is
// caught; a copy of both together is not, and no file can tell it from
// the original. Restoring through ddctl state restore is what makes a
// restore sound.

// Continuity says since when a state vouches for the keys it has no
// record of, and how many times it was restored.
type Continuity struct {
	// Since is when the state began keeping every record it now holds:
	// its creation or its last restore.
	Since time.Time
	// Generation is 1 for a state never restored, plus one per restore.
	Generation int64
	// SchedulesSince is when this state began to be kept by a ddctl that
	// fires a scheduled time the clocks jump over (its creation, or its
	// upgrade from an older ddctl, which skipped such times).
	SchedulesSince time.Time
}

// Continuity reads the state's Continuity.
func (s *Store) Continuity(ctx context.Context) (Continuity, error) {
	var rows []struct {
		Key   string `db:"key"`
		Value string `db:"value"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT key, value FROM meta WHERE key IN ('vouched_since', 'generation', 'schedules_since')`); err != nil {
		return Continuity{}, formatError(err)
	}
	var c Continuity
	for _, r := range rows {
		switch r.Key {
		case "vouched_since":
			c.Since = parseTime(r.Value)
		case "generation":
			c.Generation, _ = strconv.ParseInt(r.Value, 10, 64)
		case "schedules_since":
			c.SchedulesSince = parseTime(r.Value)
		}
	}
	if c.Since.IsZero() || c.Generation < 1 {
		return Continuity{}, fmt.Errorf("state %s: its continuity record is missing or unreadable", s.path)
	}
	return c, nil
}

// KeySeen is the last time the state learned what became of requests
// under key: the newest journalled operation under it, or the last time
// DOKU was asked about it (RecordVerified). ok is false when the state has
// neither.
func (s *Store) KeySeen(ctx context.Context, key string) (at time.Time, ok bool, err error) {
	var times []string
	err = s.db.SelectContext(ctx, &times, `SELECT updated_at FROM operations WHERE idempotency_key = ?
		UNION ALL SELECT verified_at FROM verified_keys WHERE idempotency_key = ?`, key, key)
	if err != nil {
		return time.Time{}, false, formatError(err)
	}
	for _, v := range times {
		if t := parseTime(v); t.After(at) {
			at = t
		}
	}
	return at, len(times) > 0, nil
}

// RecordVerified records that DOKU, asked at now, had no payment or refund
// under keys, which the instance at address would use: from now on the
// state vouches for them.
func (s *Store) RecordVerified(ctx context.Context, address string, keys []string, now time.Time) error {
	return s.writeCache(ctx, func(tx *sqlx.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO verified_keys (idempotency_key, address, verified_at) VALUES (?, ?, ?)
				ON CONFLICT (idempotency_key) DO UPDATE SET address = excluded.address, verified_at = excluded.verified_at`,
				k, address, timeText(now)); err != nil {
				return fmt.Errorf("record verified key of %s: %w", address, formatError(err))
			}
		}
		return nil
	})
}

// Restored describes a restore of the state.
type Restored struct {
	At         time.Time
	Generation int64 // the generation after it
	Serial     int64 // the serial after it
	How        string
}

// errNotBehind is markRestored finding, inside its transaction, that the
// state is no longer behind its witness.
var errNotBehind = errors.New("the state is not behind its witness")

// markRestored records a restore at now in one transaction: the
// generation goes up by one (above floorGeneration too), the serial above
// floorSerial and above its own, so that every plan made before the
// restore is stale, and the state vouches only from now on. how says how
// the restore happened; it names the run recorded with it. With
// onlyIfBehind, it records nothing and returns errNotBehind when the
// state's serial and generation are not below the floors (the witness's)
// any more.
func (s *Store) markRestored(ctx context.Context, now time.Time, floorSerial, floorGeneration int64, how string, onlyIfBehind bool) (Restored, error) {
	r := Restored{At: now, How: how}
	err := s.transact(ctx, false, func(tx *sqlx.Tx) error {
		var serial, gen int64
		if err := tx.GetContext(ctx, &serial, `SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'serial'`); err != nil {
			return formatError(err)
		}
		if err := tx.GetContext(ctx, &gen, `SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'`); err != nil {
			return formatError(err)
		}
		if onlyIfBehind && serial >= floorSerial && gen >= floorGeneration {
			return errNotBehind
		}
		r.Serial, r.Generation = max(serial, floorSerial)+1, max(gen, floorGeneration)+1
		for k, v := range map[string]string{
			"serial":        strconv.FormatInt(r.Serial, 10),
			"generation":    strconv.FormatInt(r.Generation, 10),
			"vouched_since": timeText(now),
		} {
			if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, k, v); err != nil {
				return formatError(err)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO runs (command, started_at, finished_at, status, pid) VALUES (?, ?, ?, 'succeeded', ?)`,
			how, timeText(now), timeText(now), os.Getpid())
		return formatError(err)
	})
	if errors.Is(err, errNotBehind) {
		return Restored{}, err
	}
	if err != nil {
		return Restored{}, fmt.Errorf("record the restore of %s: %w", s.path, err)
	}
	s.generation.Store(r.Generation)
	s.restored = &r
	return r, s.writeWitness(r.Serial)
}

// RestoredAtOpen is the restore Open detected in this state, or nil.
func (s *Store) RestoredAtOpen() *Restored { return s.restored }

// The witness beside a state file: one line of fixed width, so that it is
// rewritten in place by one write.
const witnessFormat = "ddctl-state-witness 1 %32s %020d %010d\n"

// witnessSuffix names a state's witness: the state's path plus it.
const witnessSuffix = ".witness"

// WitnessPath is the witness file of the state file at path.
func WitnessPath(path string) string { return path + witnessSuffix }

type witness struct {
	lineage            string
	serial, generation int64
}

// readWitness reads the witness of the state file at path; ok is false
// when there is none. A witness that does not parse is an error.
func readWitness(path string) (w witness, ok bool, err error) {
	b, err := os.ReadFile(WitnessPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return witness{}, false, nil
	}
	if err != nil {
		return witness{}, false, err
	}
	f := strings.Fields(string(b))
	if len(f) != 5 || f[0] != "ddctl-state-witness" || f[1] != "1" {
		return witness{}, false, fmt.Errorf("witness %s is not a ddctl state witness", WitnessPath(path))
	}
	w.lineage = f[2]
	if w.serial, err = strconv.ParseInt(f[3], 10, 64); err != nil {
		return witness{}, false, fmt.Errorf("witness %s: %w", WitnessPath(path), err)
	}
	if w.generation, err = strconv.ParseInt(f[4], 10, 64); err != nil {
		return witness{}, false, fmt.Errorf("witness %s: %w", WitnessPath(path), err)
	}
	return w, true, nil
}

// writeWitness records serial, if it is above what this process wrote
// before, with the state's lineage and generation. A witness that cannot
// be written is reported: without it, a later restore of this state
// would go unnoticed.
func (s *Store) writeWitness(serial int64) error {
	s.witnessMu.Lock()
	defer s.witnessMu.Unlock()
	if s.closed {
		return nil
	}
	gen := s.generation.Load()
	if serial <= s.witnessSerial && gen == s.witnessGeneration {
		return nil
	}
	if s.witness == nil {
		f, err := os.OpenFile(WitnessPath(s.path), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("state witness: %w", err)
		}
		s.witness = f
	}
	line := fmt.Sprintf(witnessFormat, s.lineage, serial, gen)
	if _, err := s.witness.WriteAt([]byte(line), 0); err != nil {
		return fmt.Errorf("state witness %s: %w", s.witness.Name(), err)
	}
	s.witnessSerial, s.witnessGeneration = max(serial, s.witnessSerial), gen
	return nil
}

// checkContinuity compares a state just opened, after the migrations in
// ran, with its witness: a state created by this open is given its
// Continuity and a witness, and so is one kept by a ddctl older than
// witnesses (unless a witness of it shows it went back); one whose witness
// is missing, belongs to another state or shows a higher serial or
// generation was restored (or moved here without its witness), and is
// recorded as restored at now.
//
// The witness is read before the state: a process committing meanwhile
// raises both, and the state read second is never behind the witness read
// first unless it went back. The comparison is made again inside the
// transaction that records a restore, so that two processes opening a
// restored state record one restore.
func (s *Store) checkContinuity(ctx context.Context, ran []string, now time.Time) error {
	created := slices.Contains(ran, "0001_init.sql")
	older := slices.Contains(ran, "0004_identity.sql") // kept by a ddctl before witnesses
	w, ok, err := readWitness(s.path)
	if err != nil && !created {
		return fmt.Errorf("%w; if the state file is sound, remove the witness: the next open records a restore, and the runs after it ask DOKU before they act", err)
	}
	serial, err := s.Serial(ctx)
	if err != nil {
		return err
	}
	var gen int64
	if err := s.db.GetContext(ctx, &gen, `SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'`); err != nil {
		return formatError(err)
	}
	s.generation.Store(gen)
	if created {
		// A new state vouches from now on; and no ddctl ever scheduled it
		// with rules that skip the times clocks jump over.
		if err := s.transact(ctx, false, func(tx *sqlx.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = 'vouched_since'`, timeText(now)); err != nil {
				return formatError(err)
			}
			_, err := tx.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = 'schedules_since'`, timeText(time.Time{}))
			return formatError(err)
		}); err != nil {
			return err
		}
		return s.writeWitness(serial)
	}
	went := ok && w.lineage == s.lineage && (w.serial > serial || w.generation > gen)
	switch {
	case older && !went:
		err = s.writeWitness(serial)
	case !ok:
		_, err = s.markRestored(ctx, now, 0, 0, "restore detected: the state had no witness (moved, copied, or kept by an older ddctl)", false)
	case w.lineage != s.lineage:
		_, err = s.markRestored(ctx, now, 0, 0, fmt.Sprintf("restore detected: the witness is of another state (lineage %s)", w.lineage), false)
	case went:
		_, err = s.markRestored(ctx, now, w.serial, w.generation,
			fmt.Sprintf("restore detected: the state is at serial %d generation %d, its witness at serial %d generation %d", serial, gen, w.serial, w.generation), true)
		if errors.Is(err, errNotBehind) {
			err = s.writeWitness(serial) // another process recorded it, or committed meanwhile
		}
	default:
		err = s.writeWitness(serial)
	}
	return err
}

// ErrStateReplaced is returned by CheckUnchanged when the state file was
// replaced or restored while this Store had it open.
var ErrStateReplaced = errors.New("the state file was replaced or restored while it was open")

// CheckUnchanged returns ErrStateReplaced, saying how, when the state at
// Path is no longer the one this Store opened: another file is at its
// path, or its lineage or generation changed, or its serial is below one
// this Store wrote. A process that keeps the state open (the daemon)
// checks it before each cycle and stops: the next start then sees the
// restore, and asks DOKU before it acts.
func (s *Store) CheckUnchanged(ctx context.Context) error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStateReplaced, err)
	}
	if s.opened != nil && !os.SameFile(fi, s.opened) {
		return fmt.Errorf("%w: another file is at %s", ErrStateReplaced, s.path)
	}
	var lineage string
	if err := s.db.GetContext(ctx, &lineage, `SELECT value FROM meta WHERE key = 'lineage'`); err != nil {
		return formatError(err)
	}
	serial, err := s.Serial(ctx)
	if err != nil {
		return err
	}
	var gen int64
	if err := s.db.GetContext(ctx, &gen, `SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'`); err != nil {
		return formatError(err)
	}
	s.witnessMu.Lock()
	wrote := s.witnessSerial
	s.witnessMu.Unlock()
	switch {
	case lineage != s.lineage:
		return fmt.Errorf("%w: its lineage is now %s, not %s", ErrStateReplaced, lineage, s.lineage)
	case gen != s.generation.Load():
		return fmt.Errorf("%w: it was restored (generation %d, opened at %d)", ErrStateReplaced, gen, s.generation.Load())
	case serial < wrote:
		return fmt.Errorf("%w: its serial is %d, below the %d this process wrote", ErrStateReplaced, serial, wrote)
	}
	return nil
}
