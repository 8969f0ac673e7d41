package state

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// Run is one invocation of plan, apply or the daemon's cycle, recorded so
// that history can say which reviewed change did what (README.md,
// "How it works").
type Run struct {
	ID         int64
	Command    string
	StartedAt  time.Time
	FinishedAt time.Time
	Status     string // running, succeeded, failed
	SpecDigest string
	GitCommit  string
	User       string
	Host       string
	PID        int
	// Override is why this run was allowed to move more than
	// settings.limits allow, when it was (apply -override-limits).
	Override string
}

type runRow struct {
	ID         int64  `db:"id"`
	Command    string `db:"command"`
	StartedAt  string `db:"started_at"`
	FinishedAt string `db:"finished_at"`
	Status     string `db:"status"`
	SpecDigest string `db:"spec_digest"`
	GitCommit  string `db:"git_commit"`
	User       string `db:"user"`
	Host       string `db:"host"`
	PID        int    `db:"pid"`
	Override   string `db:"override"`
}

// StartRun records the start of a run and returns its ID.
func (s *Store) StartRun(ctx context.Context, r Run) (int64, error) {
	var id int64
	err := s.write(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO runs (command, started_at, spec_digest, git_commit, user, host, pid, override)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.Command, timeText(r.StartedAt), r.SpecDigest, r.GitCommit, r.User, r.Host, r.PID, r.Override)
		if err != nil {
			return formatError(err)
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// FinishRun records the end of a run.
func (s *Store) FinishRun(ctx context.Context, id int64, now time.Time, status string) error {
	return s.write(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE runs SET finished_at = ?, status = ? WHERE id = ?`, timeText(now), status, id)
		return formatError(err)
	})
}

// Runs lists the runs, oldest first.
func (s *Store) Runs(ctx context.Context) ([]Run, error) {
	var rows []runRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT * FROM runs ORDER BY id`); err != nil {
		return nil, formatError(err)
	}
	out := make([]Run, len(rows))
	for i, r := range rows {
		out[i] = Run{ID: r.ID, Command: r.Command, StartedAt: parseTime(r.StartedAt), FinishedAt: parseTime(r.FinishedAt),
			Status: r.Status, SpecDigest: r.SpecDigest, GitCommit: r.GitCommit, User: r.User, Host: r.Host, PID: r.PID, Override: r.Override}
	}
	return out, nil
}
