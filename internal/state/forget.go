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
