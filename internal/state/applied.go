package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// AppliedSpec is a snapshot of the configuration an apply applied. The
// daemon reconciles the latest one, so edits on disk that no apply has
// taken never take effect (README.md, "The daemon").
type AppliedSpec struct {
	ID        int64
	Digest    string // the spec's hash, as in Run.SpecDigest
	Body      []byte // the configuration as the caller serialised it
	RunID     int64  // the apply that stored it; 0 if none
	AppliedAt time.Time
}

type appliedSpecRow struct {
	ID        int64  `db:"id"`
	Digest    string `db:"digest"`
	Body      []byte `db:"body"`
	RunID     int64  `db:"run_id"`
	AppliedAt string `db:"applied_at"`
}

// PutAppliedSpec stores body, whose hash is digest, as the configuration
// applied by run runID at now. If the latest snapshot has the same digest
// nothing is written and changed is false; earlier snapshots are kept.
//
// It does not bump the serial: the snapshot changes no plan's decisions
// (a plan reads its spec from disk), so storing it makes no saved plan
// stale.
func (s *Store) PutAppliedSpec(ctx context.Context, digest string, body []byte, runID int64, now time.Time) (changed bool, err error) {
	if body == nil {
		body = []byte{}
	}
	err = s.writeCache(ctx, func(tx *sqlx.Tx) error {
		var latest string
		err := tx.GetContext(ctx, &latest, `SELECT digest FROM applied_specs ORDER BY id DESC LIMIT 1`)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("put applied spec %s: %w", digest, formatError(err))
		case latest == digest:
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO applied_specs (digest, body, run_id, applied_at) VALUES (?, ?, ?, ?)`,
			digest, body, runID, timeText(now)); err != nil {
			return fmt.Errorf("put applied spec %s: %w", digest, formatError(err))
		}
		changed = true
		return nil
	})
	return changed && err == nil, err
}

// AppliedSpec returns the latest configuration stored by PutAppliedSpec;
// ok is false if no apply has stored one.
func (s *Store) AppliedSpec(ctx context.Context) (AppliedSpec, bool, error) {
	var r appliedSpecRow
	err := s.db.GetContext(ctx, &r, `SELECT * FROM applied_specs ORDER BY id DESC LIMIT 1`)
	if errors.Is(err, sql.ErrNoRows) {
		return AppliedSpec{}, false, nil
	}
	if err != nil {
		return AppliedSpec{}, false, fmt.Errorf("read applied spec: %w", formatError(err))
	}
	return AppliedSpec{ID: r.ID, Digest: r.Digest, Body: r.Body, RunID: r.RunID, AppliedAt: parseTime(r.AppliedAt)}, true, nil
}

// AppliedSpecID is the ID of the latest applied snapshot, without its
// body: cheap enough for the daemon to ask every few seconds whether an
// apply stored a new one. ok is false when there is none.
func (s *Store) AppliedSpecID(ctx context.Context) (id int64, ok bool, err error) {
	err = s.db.GetContext(ctx, &id, `SELECT COALESCE(MAX(id), 0) FROM applied_specs`)
	if err != nil {
		return 0, false, formatError(err)
	}
	return id, id != 0, nil
}
