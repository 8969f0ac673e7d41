package state

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// LeaseInfo says who holds a lease in the state file, such as the one
// that lets a single daemon run per state (README.md, "The daemon").
// Unlike the state lock (Lock), which a run holds for one apply or one
// daemon cycle, a lease lasts as long as its holder keeps renewing it.
type LeaseInfo struct {
	ID         string // chosen by the holder, unique per holder
	PID        int
	Host       string
	Who        string
	AcquiredAt time.Time
	RenewedAt  time.Time // the last heartbeat
	ExpiresAt  time.Time // RenewedAt plus the holder's TTL
}

type leaseRow struct {
	Name       string `db:"name"`
	ID         string `db:"id"`
	PID        int    `db:"pid"`
	Host       string `db:"host"`
	Who        string `db:"who"`
	AcquiredAt string `db:"acquired_at"`
	RenewedAt  string `db:"renewed_at"`
	ExpiresAt  string `db:"expires_at"`
}

func (r leaseRow) info() LeaseInfo {
	return LeaseInfo{ID: r.ID, PID: r.PID, Host: r.Host, Who: r.Who,
		AcquiredAt: parseTime(r.AcquiredAt), RenewedAt: parseTime(r.RenewedAt), ExpiresAt: parseTime(r.ExpiresAt)}
}

// LeaseHeldError is returned by AcquireLease when another live holder has
// the lease. Holder says who; Now is the time the attempt was made.
type LeaseHeldError struct {
	Name   string
	Holder LeaseInfo
	Now    time.Time
}

func (e *LeaseHeldError) Error() string {
	h := e.Holder
	who := ""
	if h.Who != "" {
		who = " (" + h.Who + ")"
	}
	return fmt.Sprintf("lease %q is held by pid %d on %s%s since %s; its last heartbeat was %s ago and it expires at %s (in %s): "+
		"stop that daemon first; a lease held by a process that died expires %s after its last heartbeat",
		e.Name, h.PID, h.Host, who, h.AcquiredAt.UTC().Format(time.RFC3339),
		e.Now.Sub(h.RenewedAt).Round(time.Second), h.ExpiresAt.UTC().Format(time.RFC3339),
		h.ExpiresAt.Sub(e.Now).Round(time.Second), h.ExpiresAt.Sub(h.RenewedAt).Round(time.Second))
}

// ErrLeaseLost is returned by RenewLease when the lease is no longer the
// caller's: it expired and another holder took it, or it was released.
// The caller must stop the work the lease guarded.
var ErrLeaseLost = errors.New("the lease is no longer held")

// AcquireLease takes the lease called name for me until now+ttl, in one
// transaction, and returns it as stored. It takes it when no one holds
// it, when the holder's lease expired (ExpiresAt not after now), when the
// holder is me (same ID: AcquiredAt is kept), or when dead, if not nil,
// reports the holder dead (the caller's check: same host, and no process
// with that pid). Otherwise it returns a *LeaseHeldError naming the
// holder. An empty me.ID is given a random one.
//
// dead is called inside the write transaction, so it must be quick. A
// lease is no change of state: it leaves the serial alone.
func (s *Store) AcquireLease(ctx context.Context, name string, me LeaseInfo, ttl time.Duration, now time.Time, dead func(LeaseInfo) bool) (LeaseInfo, error) {
	if ttl <= 0 {
		return LeaseInfo{}, fmt.Errorf("acquire lease %s: ttl %v is not positive", name, ttl)
	}
	if me.ID == "" {
		buf := make([]byte, 8)
		rand.Read(buf)
		me.ID = hex.EncodeToString(buf)
	}
	me.AcquiredAt, me.RenewedAt, me.ExpiresAt = now, now, now.Add(ttl)
	err := s.writeCache(ctx, func(tx *sqlx.Tx) error {
		var r leaseRow
		err := tx.GetContext(ctx, &r, `SELECT * FROM leases WHERE name = ?`, name)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("acquire lease %s: %w", name, formatError(err))
		default:
			holder := r.info()
			switch {
			case holder.ID == me.ID:
				me.AcquiredAt = holder.AcquiredAt
			case !holder.ExpiresAt.After(now):
			case dead != nil && dead(holder):
			default:
				return &LeaseHeldError{Name: name, Holder: holder, Now: now}
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO leases (name, id, pid, host, who, acquired_at, renewed_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET id = excluded.id, pid = excluded.pid, host = excluded.host, who = excluded.who,
				acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at, expires_at = excluded.expires_at`,
			name, me.ID, me.PID, me.Host, me.Who, instantText(me.AcquiredAt), instantText(me.RenewedAt), instantText(me.ExpiresAt))
		if err != nil {
			return fmt.Errorf("acquire lease %s: %w", name, formatError(err))
		}
		return nil
	})
	if err != nil {
		return LeaseInfo{}, err
	}
	return LeaseInfo{ID: me.ID, PID: me.PID, Host: me.Host, Who: me.Who,
		AcquiredAt: me.AcquiredAt.UTC(), RenewedAt: me.RenewedAt.UTC(), ExpiresAt: me.ExpiresAt.UTC()}, nil
}

// RenewLease is the holder's heartbeat: it moves the lease called name on
// to now+ttl, if its holder is still id. Otherwise it returns
// ErrLeaseLost. A lease that expired but that no one took is still the
// holder's, and is renewed.
func (s *Store) RenewLease(ctx context.Context, name, id string, ttl time.Duration, now time.Time) error {
	if ttl <= 0 {
		return fmt.Errorf("renew lease %s: ttl %v is not positive", name, ttl)
	}
	return s.writeCache(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE leases SET renewed_at = ?, expires_at = ? WHERE name = ? AND id = ?`,
			instantText(now), instantText(now.Add(ttl)), name, id)
		if err != nil {
			return fmt.Errorf("renew lease %s: %w", name, formatError(err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("renew lease %s: %w", name, ErrLeaseLost)
		}
		return nil
	})
}

// ReleaseLease gives up the lease called name, if its holder is id; if
// it is not (released already, or taken by another), nothing changes and
// err is nil.
func (s *Store) ReleaseLease(ctx context.Context, name, id string) error {
	return s.writeCache(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND id = ?`, name, id); err != nil {
			return fmt.Errorf("release lease %s: %w", name, formatError(err))
		}
		return nil
	})
}

// Lease returns the lease called name as stored, expired or not; ok is
// false if no one holds it.
func (s *Store) Lease(ctx context.Context, name string) (LeaseInfo, bool, error) {
	var r leaseRow
	err := s.db.GetContext(ctx, &r, `SELECT * FROM leases WHERE name = ?`, name)
	if errors.Is(err, sql.ErrNoRows) {
		return LeaseInfo{}, false, nil
	}
	if err != nil {
		return LeaseInfo{}, false, fmt.Errorf("read lease %s: %w", name, formatError(err))
	}
	return r.info(), true, nil
}
