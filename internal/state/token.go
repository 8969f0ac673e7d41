package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ddctl/ddctl/internal/secret"
)

func tokenAAD(name string) string { return "tokens/" + name + "/token" }

// PutToken caches the access token called name (such as "b2b") until exp,
// sealed under the state key (ErrNoStateKey without one). It does not
// count as a change of state: no plan depends on it, so refreshing it does
// not make a saved plan stale.
func (s *Store) PutToken(ctx context.Context, name string, tok secret.Value, exp time.Time) error {
	sealed, err := s.sealSecret(tok, tokenAAD(name))
	if err != nil {
		return fmt.Errorf("put token %s: %w", name, err)
	}
	if sealed == nil {
		return fmt.Errorf("put token %s: the token is empty", name)
	}
	return s.writeCache(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO tokens (name, token, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at`,
			name, sealed, timeText(exp))
		if err != nil {
			return fmt.Errorf("put token %s: %w", name, formatError(err))
		}
		return nil
	})
}

// Token returns the cached access token called name and when it expires;
// ok is false if none is cached. An expired token is returned as well: the
// caller compares the expiry with its own clock.
func (s *Store) Token(ctx context.Context, name string) (tok secret.Value, exp time.Time, ok bool, err error) {
	var r struct {
		Token     []byte `db:"token"`
		ExpiresAt string `db:"expires_at"`
	}
	err = s.db.GetContext(ctx, &r, `SELECT token, expires_at FROM tokens WHERE name = ?`, name)
	if errors.Is(err, sql.ErrNoRows) {
		return secret.Value{}, time.Time{}, false, nil
	}
	if err != nil {
		return secret.Value{}, time.Time{}, false, formatError(err)
	}
	tok, err = s.openSecret(r.Token, tokenAAD(name))
	if err != nil {
		return secret.Value{}, time.Time{}, false, fmt.Errorf("token %s: %w", name, err)
	}
	return tok, parseTime(r.ExpiresAt), true, nil
}

// DeleteToken forgets the cached access token called name, if any: DOKU
// refused it, or it belongs to a binding that may be gone.
func (s *Store) DeleteToken(ctx context.Context, name string) error {
	return s.writeCache(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE name = ?`, name); err != nil {
			return fmt.Errorf("delete token %s: %w", name, formatError(err))
		}
		return nil
	})
}
