// Package state is ddctl's state file: one SQLite database holding the
// runs, the refunds, what DOKU said about payments, the bindings and
// charges, the notification inbox, the cached access token, and the
// operation journal that makes apply crash-safe (README.md, "How it works").
//
// Secrets (auth codes, customer tokens, the access token) are sealed with
// AES-256-GCM under the state key, bound to their row and column (Cipher);
// without a key they are refused, except in a state opened for the
// sandbox (OpenOptions).
//
// It is the only package with ddctl's SQL. The file is opened in WAL mode
// with synchronous=FULL, so a commit that returned survives a crash and a
// power loss. Every write transaction is BEGIN IMMEDIATE; those that
// change what a plan would decide bump the state's serial, which saved
// plans compare against (the token cache, the notification inbox, the
// daemon's lease, applied spec and event outbox do not).
package state

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	sqlite3 "github.com/mattn/go-sqlite3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// BusyTimeout is how long a write waits for another process's write.
const BusyTimeout = 10 * time.Second

// Store is an open state file. It is safe for concurrent use.
type Store struct {
	db      *sqlx.DB
	path    string
	lineage string

	cipher                *Cipher
	allowPlaintextSecrets bool
	withoutSecrets        bool   // bindings are read with no secrets (OpenOptions.WithoutSecrets)
	scope                 string // OpenOptions.SecretScope

	// The witness beside the file (continuity.go): the highest serial
	// and the generation this process wrote to it.
	generation        atomic.Int64
	witnessMu         sync.Mutex
	witness           *os.File
	witnessSerial     int64
	witnessGeneration int64
	restored          *Restored   // the restore Open detected, if any
	opened            os.FileInfo // the file at path when it was opened
	closed            bool        // under witnessMu
}

// OpenOptions says how to open a state file. The zero value opens it with
// no key: everything but its secrets can be read and written.
type OpenOptions struct {
	// Cipher seals the secret columns (binding auth codes, customer tokens,
	// the cached access token). Nil means no key: storing or reading a
	// secret then fails with ErrNoStateKey.
	Cipher *Cipher
	// AllowPlaintextSecrets lets a state with no Cipher store secrets
	// unencrypted, marked as such. Only against the sandbox, whose secrets
	// are not real; a keyed state refuses such values (ErrPlaintextSecret).
	// With a Cipher as well, secrets are sealed and plaintext ones are read.
	AllowPlaintextSecrets bool
	// WithoutSecrets, with no Cipher, reads bindings with their secrets
	// left out (zero) instead of failing with ErrNoStateKey: what a plan
	// of an unreviewed change, run with no key, may know. Storing a
	// secret still fails.
	WithoutSecrets bool
	// SecretScope (Scope(environment, clientID)) is sealed into each
	// secret's associated data: a secret stored for one merchant account
	// does not open, and so is never sent, for another. Empty: secrets
	// are sealed as before scopes.
	SecretScope string
	// NowFunc is the clock that dates the state's creation and a restore
	// Open detects (Continuity.Since); nil is the wall clock.
	NowFunc func() time.Time

	restore *restoreFloor // set by Restore only
}

// Open opens the state file at path, creating it (mode 0600) if needed, and
// brings its schema up to date. It is OpenWith(path, OpenOptions{}): no
// key, so secrets can be neither stored nor read.
func Open(path string) (*Store, error) { return OpenWith(path, OpenOptions{}) }

// OpenWith opens the state file at path like Open, with a key for its
// secrets, or (for the sandbox only) leave to store them unencrypted.
func OpenWith(path string, opts OpenOptions) (*Store, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	// A state file that was there keeps its mode: one readable by others
	// (restored from a backup, copied with cp) is tightened.
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, fmt.Errorf("open state %s: it is readable by others (mode %v) and could not be made 0600: %w", path, fi.Mode().Perm(), err)
		}
	}
	f.Close()
	dsn := fmt.Sprintf("file:%s?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=%d&_foreign_keys=on&_txlock=immediate",
		EscapePath(path), BusyTimeout.Milliseconds())
	db, err := sqlx.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	// One connection: writes are serialised in the process, and no reader
	// can hold the connection a writer waits for.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, path: path, cipher: opts.Cipher, allowPlaintextSecrets: opts.AllowPlaintextSecrets,
		withoutSecrets: opts.WithoutSecrets && opts.Cipher == nil, scope: opts.SecretScope}
	ran, err := s.migrate()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	if err := s.db.Get(&s.lineage, `SELECT value FROM meta WHERE key = 'lineage'`); err != nil {
		db.Close()
		return nil, fmt.Errorf("state %s: read lineage: %w", path, formatError(err))
	}
	if err := restrictSidecars(path); err != nil {
		db.Close()
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	if s.opened, err = os.Stat(path); err != nil {
		db.Close()
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	now := time.Now
	if opts.NowFunc != nil {
		now = opts.NowFunc
	}
	if opts.restore != nil {
		r := opts.restore
		_, err = s.markRestored(context.Background(), now(), r.serial, r.generation, r.how, false)
	} else {
		err = s.checkContinuity(context.Background(), ran, now())
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	return s, nil
}

// restrictSidecars makes the WAL and shared-memory files as private as the
// state file: the WAL holds copies of recently written pages (SQLite gives
// them the database file's mode, but a file made by an older run or
// another tool may be wider).
func restrictSidecars(path string) error {
	for _, name := range []string{path + "-wal", path + "-shm"} {
		if err := os.Chmod(name, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// EscapePath makes a file path safe inside a SQLite "file:" URI, whose
// query (the driver's settings) would otherwise begin at a "?" in the path.
func EscapePath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// Close closes the state file.
func (s *Store) Close() error {
	s.witnessMu.Lock()
	if s.witness != nil {
		s.witness.Close()
		s.witness = nil
	}
	s.closed = true
	s.witnessMu.Unlock()
	return s.db.Close()
}

// Path is the state file's path.
func (s *Store) Path() string { return s.path }

// Lineage identifies this state file from its creation on: a plan made
// against another file (or a re-created one) does not apply to this one.
func (s *Store) Lineage() string { return s.lineage }

// migrate runs the embedded migrations not yet applied, one transaction
// each, and gives a new file its lineage. It returns the names of those
// it ran.
func (s *Store) migrate() (ran []string, err error) {
	if _, err := s.db.Exec(`CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY)`); err != nil {
		return nil, formatError(err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	// Those applied are skipped without a write transaction: opening a
	// state that is up to date takes no write lock, and does not wait for
	// another process's writes.
	var applied []string
	if err := s.db.Select(&applied, `SELECT name FROM migrations`); err != nil {
		return nil, formatError(err)
	}
	for _, name := range names {
		if slices.Contains(applied, name) {
			continue
		}
		did, err := s.migrateFile(name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", path.Base(name), err)
		}
		if did {
			ran = append(ran, path.Base(name))
		}
	}
	return ran, nil
}

func (s *Store) migrateFile(name string) (ran bool, err error) {
	tx, err := s.db.Beginx()
	if err != nil {
		return false, formatError(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.Get(&n, `SELECT count(*) FROM migrations WHERE name = ?`, name); err != nil {
		return false, formatError(err)
	}
	if n > 0 {
		return false, nil
	}
	sql, err := migrations.ReadFile(name)
	if err != nil {
		return false, err
	}
	if _, err := tx.Exec(string(sql)); err != nil {
		return false, formatError(err)
	}
	if _, err := tx.Exec(`INSERT INTO migrations (name) VALUES (?)`, name); err != nil {
		return false, formatError(err)
	}
	if strings.HasSuffix(name, "0001_init.sql") {
		buf := make([]byte, 16)
		rand.Read(buf)
		if _, err := tx.Exec(`INSERT INTO meta (key, value) VALUES ('lineage', ?), ('serial', '0')`, hex.EncodeToString(buf)); err != nil {
			return false, formatError(err)
		}
	}
	return true, tx.Commit()
}

// Serial counts the write transactions this state has seen. A saved plan
// records it; apply refuses the plan if it moved.
func (s *Store) Serial(ctx context.Context) (int64, error) {
	var v string
	if err := s.db.GetContext(ctx, &v, `SELECT value FROM meta WHERE key = 'serial'`); err != nil {
		return 0, formatError(err)
	}
	return strconv.ParseInt(v, 10, 64)
}

// write runs fn in one IMMEDIATE transaction and bumps the serial with it.
// Callers recording the outcome of a request already sent pass a context
// that cancellation cannot end (context.WithoutCancel), since
// database/sql rolls back a transaction whose context is cancelled.
func (s *Store) write(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return s.transact(ctx, true, fn)
}

// writeCache runs fn in one IMMEDIATE transaction without bumping the
// serial: for what no plan depends on (the cached access token), which
// would otherwise make every saved plan stale each time it is refreshed.
func (s *Store) writeCache(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return s.transact(ctx, false, fn)
}

func (s *Store) transact(ctx context.Context, bumpSerial bool, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return formatError(err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	var serial int64
	if bumpSerial {
		if err := tx.GetContext(ctx, &serial, `UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'serial' RETURNING CAST(value AS INTEGER)`); err != nil {
			return formatError(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return formatError(err)
	}
	if bumpSerial {
		// After the commit, so that the witness never claims more than
		// the file has. The write is done: a witness that fails to follow
		// only weakens the detection of a later restore.
		s.writeWitness(serial)
	}
	return nil
}

// each runs query and calls scan on each row it returns. The reads of
// whole tables that every plan makes (refunds, payments, charges,
// bindings) scan by hand into one reused row, rather than through sqlx's
// reflection into a growing slice of rows: for a plan of 10,000 refunds
// and 12,000 charge occurrences that halves their cost (README.md,
// "Performance").
func (s *Store) each(ctx context.Context, query string, scan func(*sql.Rows) error, args ...any) error {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return formatError(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return formatError(err)
		}
	}
	return formatError(rows.Err())
}

// optTimeText stores the zero time as the empty string: not set.
func optTimeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return timeText(t)
}

// ErrBusy means another process held the state file for longer than
// BusyTimeout.
var ErrBusy = errors.New("state file is busy: another ddctl process is writing to it")

// formatError maps driver errors to state errors once.
func formatError(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked) {
		return fmt.Errorf("%w (%v)", ErrBusy, err)
	}
	return err
}

// Times are stored as UTC RFC 3339 text. With whole seconds (occurrences,
// in the charges key) it sorts as time does; with fractions it does not
// ("10:00:00.5Z" sorts before "10:00:00Z"), so columns compared in SQL use
// instantText.
func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// instantFormat is RFC 3339 with nine fraction digits, always: fixed-width
// UTC text sorts as time does. parseTime reads it.
const instantFormat = "2006-01-02T15:04:05.000000000Z07:00"

// instantText stores a time that SQL compares (an event's next_at, a
// lease's expiry).
func instantText(t time.Time) string { return t.UTC().Format(instantFormat) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// KeepsSecrets reports whether the store can keep a secret (an authCode, a
// token): it has a key, or it may keep them in the clear (the sandbox).
func (s *Store) KeepsSecrets() bool { return s.cipher != nil || s.allowPlaintextSecrets }

// PlanKey signs and checks saved plans (Cipher.PlanKey); nil without a
// state key.
func (s *Store) PlanKey() []byte { return s.cipher.PlanKey() }

// UnsignedPlansAllowed reports whether a saved plan may go unsigned: only
// where secrets may be kept in the clear, against a local simulator.
func (s *Store) UnsignedPlansAllowed() bool { return s.cipher == nil && s.allowPlaintextSecrets }
