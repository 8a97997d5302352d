package pgstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/npmgate/npmgate/auth"
)

// TwoFactor keeps the users' second factors for every replica: with each
// replica keeping its own, a user enrolled through one could write
// through another without a code.
type TwoFactor struct{ db *DB }

var _ auth.TwoFactorStore = (*TwoFactor)(nil)

// TwoFactor is the store of second factors.
func (db *DB) TwoFactor() *TwoFactor { return &TwoFactor{db: db} }

// Get is user's record; nil when they have none.
func (t *TwoFactor) Get(user string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var record string
	err := t.db.pool.QueryRow(ctx, "SELECT record FROM two_factor WHERE user_name = $1", user).Scan(&record)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []byte(record), nil
}

// Update changes user's record in one transaction, holding a lock on the
// user's name for its length (an advisory lock: there may be no row to
// lock yet), so that of two replicas checking one code at once, one
// accepts it.
func (t *TwoFactor) Update(user string, change func([]byte) ([]byte, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	return pgx.BeginFunc(ctx, t.db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('npmgate two_factor ' || $1, 0))", user); err != nil {
			return err
		}
		var old []byte
		var record string
		err := tx.QueryRow(ctx, "SELECT record FROM two_factor WHERE user_name = $1", user).Scan(&record)
		switch {
		case err == nil:
			old = []byte(record)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		next, err := change(old)
		if err != nil {
			return err
		}
		if next == nil {
			_, err = tx.Exec(ctx, "DELETE FROM two_factor WHERE user_name = $1", user)
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO two_factor (user_name, record) VALUES ($1, $2)
			ON CONFLICT (user_name) DO UPDATE SET record = excluded.record, updated = now()`, user, string(next))
		return err
	})
}
