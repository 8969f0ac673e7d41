package state

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ddctl/ddctl/internal/secret"
)

func tokenAAD(name string) string { return "tokens/" + name + "/token" }

// keyedNamePrefix marks a token row named by tokenRow under a state key.
const keyedNamePrefix = "k1:"

// tokenRow is the row a token called name is kept under. A name may hold
// a digest of a customer's authCode; under a state key it is replaced by
// an HMAC of it, so that the file holds nothing an authCode could be
// checked against without the key. Without a key (a local simulator) the
// name is kept as it is.
func (s *Store) tokenRow(name string) string {
	if s.cipher == nil {
		return name
	}
	m := hmac.New(sha256.New, s.cipher.nameKey)
	m.Write([]byte(name))
	return keyedNamePrefix + hex.EncodeToString(m.Sum(nil))
}

// PutToken caches the access token called name (such as "b2b") until exp,
// sealed under the state key (ErrNoStateKey without one). It does not
// count as a change of state: no plan depends on it, so refreshing it does
// not make a saved plan stale.
func (s *Store) PutToken(ctx context.Context, name string, tok secret.Value, exp time.Time) error {
	name = s.tokenRow(name)
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
	name = s.tokenRow(name)
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
	name = s.tokenRow(name)
	return s.writeCache(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE name = ?`, name); err != nil {
			return fmt.Errorf("delete token %s: %w", name, formatError(err))
		}
		return nil
	})
}

// CachedTokens returns every cached access token by the name of its row
// (under a state key, an HMAC of the name it was cached under), for an
// audit of what the state holds.
func (s *Store) CachedTokens(ctx context.Context) (map[string]secret.Value, error) {
	var rows []struct {
		Name  string `db:"name"`
		Token []byte `db:"token"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT name, token FROM tokens ORDER BY name`); err != nil {
		return nil, fmt.Errorf("cached tokens: %w", formatError(err))
	}
	out := make(map[string]secret.Value, len(rows))
	for _, r := range rows {
		tok, err := s.openSecret(r.Token, tokenAAD(r.Name))
		if err != nil {
			return nil, fmt.Errorf("cached token %.12s…: %w", r.Name, err)
		}
		out[r.Name] = tok
	}
	return out, nil
}

// RescopeSecrets brings secrets stored by an older ddctl up to date, and
// returns how many it sealed again: each sealed before secrets had scopes
// (OpenOptions.SecretScope) is sealed in the store's, and cached tokens
// kept under plain names (which held a digest of an authCode) are dropped:
// a cache, so nothing is lost but a token exchange. Run under the state
// lock, by what applies; without a key or a scope it does nothing.
func (s *Store) RescopeSecrets(ctx context.Context) (int, error) {
	if s.cipher == nil || s.scope == "" {
		return 0, nil
	}
	n := 0
	err := s.writeCache(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE name NOT LIKE ?`, keyedNamePrefix+"%"); err != nil {
			return fmt.Errorf("drop unkeyed tokens: %w", formatError(err))
		}
		type cell struct {
			table, key, keyCol, col, aad string
			value                        []byte
		}
		var cells []cell
		var bindings []struct {
			Address       string `db:"address"`
			AuthCode      []byte `db:"auth_code"`
			CustomerToken []byte `db:"customer_token"`
		}
		if err := tx.SelectContext(ctx, &bindings, `SELECT address, auth_code, customer_token FROM bindings`); err != nil {
			return formatError(err)
		}
		for _, b := range bindings {
			cells = append(cells, cell{"bindings", b.Address, "address", "auth_code", authCodeAAD(b.Address), b.AuthCode},
				cell{"bindings", b.Address, "address", "customer_token", customerTokenAAD(b.Address), b.CustomerToken})
		}
		var tokens []struct {
			Name  string `db:"name"`
			Token []byte `db:"token"`
		}
		if err := tx.SelectContext(ctx, &tokens, `SELECT name, token FROM tokens`); err != nil {
			return formatError(err)
		}
		for _, t := range tokens {
			cells = append(cells, cell{"tokens", t.Name, "name", "token", tokenAAD(t.Name), t.Token})
		}
		for _, c := range cells {
			if len(c.value) == 0 || c.value[0] != versionAESGCM {
				continue
			}
			p, err := s.cipher.Open(c.value, c.aad)
			if err != nil {
				return fmt.Errorf("rescope %s: %w", c.aad, err)
			}
			sealed, err := s.cipher.SealIn(s.scope, p, c.aad)
			if err != nil {
				return err
			}
			// The table and column names are this function's own.
			if _, err := tx.ExecContext(ctx, "UPDATE "+c.table+" SET "+c.col+" = ? WHERE "+c.keyCol+" = ?", sealed, c.key); err != nil {
				return formatError(err)
			}
			n++
		}
		return nil
	})
	return n, err
}
