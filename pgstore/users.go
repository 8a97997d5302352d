package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/npmgate/npmgate/auth"
)

// Users is the user store in the database: the same rules and hashes as
// the htpasswd file (auth.Users), so users move from one to the other.
type Users struct{ db *DB }

var _ auth.UserStore = (*Users)(nil)

// Exists reports whether the user has a row.
func (u *Users) Exists(name string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var ok bool
	err := u.db.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)", name).Scan(&ok)
	return ok, err
}

// A disabled user's hash has a "!" in front, as in the htpasswd file
// (auth.UserStore), so that users move between the two as they are.
const sqlDisabled = "starts_with(users.hash, '!')"

// List returns the users in name order.
func (u *Users) List() ([]auth.UserInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	rows, _ := u.db.pool.Query(ctx, "SELECT name, "+sqlDisabled+" FROM users ORDER BY name")
	return pgx.CollectRows(rows, pgx.RowToStructByPos[auth.UserInfo])
}

// Disabled reports whether the user is disabled (auth.ErrNoUser when
// missing).
func (u *Users) Disabled(name string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var disabled bool
	err := u.db.pool.QueryRow(ctx, "SELECT "+sqlDisabled+" FROM users WHERE name = $1", name).Scan(&disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("%w: %q", auth.ErrNoUser, name)
	}
	return disabled, err
}

// SetDisabled disables or enables a user.
func (u *Users) SetDisabled(name string, disabled bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	q := "UPDATE users SET hash = ltrim(hash, '!'), updated = now() WHERE name = $1"
	if disabled {
		q = "UPDATE users SET hash = '!' || ltrim(hash, '!'), updated = now() WHERE name = $1"
	}
	tag, err := u.db.pool.Exec(ctx, q, name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", auth.ErrNoUser, name)
	}
	return nil
}

// Verify checks a password; an unknown user costs a bcrypt comparison
// too (auth.VerifyPassword).
func (u *Users) Verify(name, password string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var hash []byte
	err := u.db.pool.QueryRow(ctx, "SELECT hash FROM users WHERE name = $1", name).Scan(&hash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, err
	}
	cancel() // bcrypt takes a while: do not hold the deadline over it
	return auth.VerifyPassword(hash, password), nil
}

// Set adds a user or changes a password; a disabled user stays disabled.
func (u *Users) Set(name, password string) error {
	hash, err := auth.HashPassword(name, password)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err = u.db.pool.Exec(ctx, `INSERT INTO users (name, hash) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET hash = CASE WHEN starts_with(users.hash, '!') THEN '!' || excluded.hash ELSE excluded.hash END, updated = now()`, name, string(hash))
	return err
}

// Remove deletes a user (not their tokens).
func (u *Users) Remove(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	tag, err := u.db.pool.Exec(ctx, "DELETE FROM users WHERE name = $1", name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", auth.ErrNoUser, name)
	}
	return nil
}

// Refresh has nothing to re-read: every call asks the database.
func (u *Users) Refresh() error { return nil }

// ImportUsers adds users with their hashes as an htpasswd file has them
// (auth.ReadHtpasswd), in one transaction. Names already in the database
// are left as they are; the names added are returned.
func (db *DB) ImportUsers(ctx context.Context, users []auth.UserHash) (added []string, err error) {
	for _, u := range users {
		if err := auth.CheckHash(u.Hash); err != nil {
			return nil, fmt.Errorf("user %q: only bcrypt hashes are accepted: %w", u.Name, err)
		}
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		added = nil
		for _, u := range users {
			tag, err := tx.Exec(ctx, "INSERT INTO users (name, hash) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", u.Name, string(u.Hash))
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 1 {
				added = append(added, u.Name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return added, nil
}
