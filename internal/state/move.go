package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// ErrMoveConflict is returned by Move when the destination already has
// entries in the state: two entries cannot share an address.
var ErrMoveConflict = errors.New("the destination already has entries in the state")

// MoveRecord is a rename of state entries: a moved block applied, or
// ddctl state mv.
type MoveRecord struct {
	RunID   int64
	From    string
	To      string
	Entries int
	MovedAt time.Time
}

// Move gives the state's entries at from to to: the refund, the binding,
// or every attempt of every occurrence of the charge, and the journal of
// each, in one transaction. With block set, from and to are block
// addresses (refund.a) and every instance of the from block moves to the
// instance of the to block with the same key. No API call is made and no
// idempotency key changes: what was sent under a key stays known under it
// (principle 8, docs/principles.md).
//
// A binding's secrets are sealed to its address, so they are sealed again
// for the new one (this needs the state key), and the charges that charge
// it follow it. Move refuses, changing nothing, with ErrOperationOpen
// while an operation of an entry it would move is open (its outcome must
// be settled first), with ErrMoveConflict when to already has entries, and
// when from and to are not of one kind. It returns how many entries
// moved; 0 (and no error) when from has none.
func (s *Store) Move(ctx context.Context, from, to string, block bool, runID int64, now time.Time) (int, error) {
	kind := func(a string) string { k, _, _ := strings.Cut(a, "."); return k }
	if kind(from) != kind(to) || from == to {
		return 0, fmt.Errorf("move %s to %s: a %s moves only to another %s address", from, to, kind(from), kind(from))
	}
	dest := func(addr string) (string, bool) {
		base, rest := addr, ""
		if i := strings.Index(addr, "#"); i >= 0 {
			base, rest = addr[:i], addr[i:]
		}
		switch {
		case base == from:
			return to + rest, true
		case block && strings.HasPrefix(base, from+"["):
			return to + base[len(from):] + rest, true
		}
		return "", false
	}
	// candidates selects the addresses of a table's column that dest
	// maps: from itself, its instances (block) and its occurrences.
	candidates := func(ctx context.Context, tx *sqlx.Tx, table, column string) ([]string, error) {
		var addrs []string
		// length() counts characters, as substr() does: an address may
		// hold a key that is not ASCII.
		err := tx.SelectContext(ctx, &addrs, `SELECT DISTINCT `+column+` FROM `+table+` WHERE `+column+` = ?
			OR substr(`+column+`, 1, length(?)) = ? OR substr(`+column+`, 1, length(?)) = ?`,
			from, from+"[", from+"[", from+"#", from+"#")
		if err != nil {
			return nil, formatError(err)
		}
		var out []string
		for _, a := range addrs {
			if _, ok := dest(a); ok {
				out = append(out, a)
			}
		}
		return out, nil
	}

	var moved int
	err := s.write(ctx, func(tx *sqlx.Tx) error {
		ops, err := candidates(ctx, tx, "operations", "address")
		if err != nil {
			return err
		}
		for _, a := range ops {
			var open int
			if err := tx.GetContext(ctx, &open, `SELECT count(*) FROM operations WHERE address = ? AND status IN ('intent', 'unknown')`, a); err != nil {
				return formatError(err)
			}
			if open > 0 {
				return fmt.Errorf("move %s: %s: %w; run ddctl plan to settle it first", from, a, ErrOperationOpen)
			}
		}
		type table struct{ name, column string }
		entries := map[table][]string{}
		for _, t := range []table{{"refunds", "address"}, {"charges", "address"}, {"bindings", "address"}} {
			addrs, err := candidates(ctx, tx, t.name, t.column)
			if err != nil {
				return err
			}
			entries[t] = addrs
			for _, a := range addrs {
				d, _ := dest(a)
				var n int
				if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM `+t.name+` WHERE `+t.column+` = ?`, d); err != nil {
					return formatError(err)
				}
				if n > 0 {
					return fmt.Errorf("move %s to %s: %s: %w; remove them first (ddctl state rm %s) if they are not needed", from, to, d, ErrMoveConflict, d)
				}
			}
		}
		for t, addrs := range entries {
			for _, a := range addrs {
				d, _ := dest(a)
				if t.name == "bindings" {
					if err := s.resealBinding(ctx, tx, a, d); err != nil {
						return fmt.Errorf("move %s to %s: %w", a, d, err)
					}
					if _, err := tx.ExecContext(ctx, `UPDATE charges SET binding_address = ? WHERE binding_address = ?`, d, a); err != nil {
						return formatError(err)
					}
				}
				res, err := tx.ExecContext(ctx, `UPDATE `+t.name+` SET `+t.column+` = ? WHERE `+t.column+` = ?`, d, a)
				if err != nil {
					return fmt.Errorf("move %s to %s: %w", a, d, formatError(err))
				}
				n, _ := res.RowsAffected()
				moved += int(n)
			}
		}
		for _, a := range ops {
			d, _ := dest(a)
			if _, err := tx.ExecContext(ctx, `UPDATE operations SET address = ? WHERE address = ?`, d, a); err != nil {
				return formatError(err)
			}
		}
		verified, err := candidates(ctx, tx, "verified_keys", "address")
		if err != nil {
			return err
		}
		for _, a := range verified {
			d, _ := dest(a)
			if _, err := tx.ExecContext(ctx, `UPDATE verified_keys SET address = ? WHERE address = ?`, d, a); err != nil {
				return formatError(err)
			}
		}
		if moved == 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO moves (run_id, from_address, to_address, entries, moved_at) VALUES (?, ?, ?, ?, ?)`,
			runID, from, to, moved, timeText(now))
		return formatError(err)
	})
	if err != nil {
		return 0, err
	}
	return moved, nil
}

// resealBinding seals the secrets of the binding at from again for its new
// address to: each is bound to its row's address (Cipher).
func (s *Store) resealBinding(ctx context.Context, tx *sqlx.Tx, from, to string) error {
	var r bindingRow
	if err := tx.GetContext(ctx, &r, `SELECT * FROM bindings WHERE address = ?`, from); err != nil {
		return formatError(err)
	}
	authCode, err := s.openSecret(r.AuthCode, authCodeAAD(from))
	if err != nil {
		return err
	}
	token, err := s.openSecret(r.CustomerToken, customerTokenAAD(from))
	if err != nil {
		return err
	}
	a, err := s.sealSecret(authCode, authCodeAAD(to))
	if err != nil {
		return err
	}
	t, err := s.sealSecret(token, customerTokenAAD(to))
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE bindings SET auth_code = ?, customer_token = ? WHERE address = ?`, a, t, from)
	return formatError(err)
}

// Moves lists the renames recorded by Move, oldest first.
func (s *Store) Moves(ctx context.Context) ([]MoveRecord, error) {
	var rows []struct {
		RunID   int64  `db:"run_id"`
		From    string `db:"from_address"`
		To      string `db:"to_address"`
		Entries int    `db:"entries"`
		MovedAt string `db:"moved_at"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT run_id, from_address, to_address, entries, moved_at FROM moves ORDER BY id`); err != nil {
		return nil, formatError(err)
	}
	out := make([]MoveRecord, len(rows))
	for i, r := range rows {
		out[i] = MoveRecord{RunID: r.RunID, From: r.From, To: r.To, Entries: r.Entries, MovedAt: parseTime(r.MovedAt)}
	}
	return out, nil
}
