package state

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Forget removes what the state knows of address (`ddctl state rm`): its
// refund, its binding, and every attempt at every occurrence of its
// charges. No API call is made and nothing at DOKU changes. The operation
// journal of the address is kept: history must survive, and an
// idempotency key once sent stays on record. It returns the number of rows
// removed, 0 if the state knew nothing of address.
func (s *Store) Forget(ctx context.Context, address string) (int, error) {
	var removed int
	err := s.write(ctx, func(tx *sqlx.Tx) error {
		for _, query := range []string{
			`DELETE FROM refunds WHERE address = ?`,
			`DELETE FROM bindings WHERE address = ?`,
			`DELETE FROM charges WHERE address = ?`,
		} {
			res, err := tx.ExecContext(ctx, query, address)
			if err != nil {
				return fmt.Errorf("forget %s: %w", address, formatError(err))
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			removed += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return removed, nil
}

// EntryAddresses lists the instance addresses of the state's charges and
// bindings, by kind ("charge" or "binding"), without reading their rows:
// what a plan needs to tell new instances and removed entries apart.
func (s *Store) EntryAddresses(ctx context.Context) (charges, bindings []string, err error) {
	var rows []struct {
		Address string `db:"address"`
		Kind    string `db:"kind"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT DISTINCT address, 'charge' AS kind FROM charges
		UNION ALL SELECT address, 'binding' AS kind FROM bindings`); err != nil {
		return nil, nil, formatError(err)
	}
	for _, r := range rows {
		if r.Kind == "charge" {
			charges = append(charges, r.Address)
		} else {
			bindings = append(bindings, r.Address)
		}
	}
	return charges, bindings, nil
}
