package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/npmgate/npmgate/auth"
)

// Tokens is the token and API key store in the database. Lookup asks the
// database on every call, with no cache, so a token revoked through any
// replica fails on every replica from the next request on.
type Tokens struct{ db *DB }

var _ auth.TokenStore = (*Tokens)(nil)

const tokenColumns = "key, prefix, user_name, kind, name, readonly, feeds, created, expires, packages, cidrs, max_uses, uses, automation, last_used"

func scanToken(row pgx.Row) (*auth.Token, error) {
	var tk auth.Token
	var expires, lastUsed *time.Time
	if err := row.Scan(&tk.Key, &tk.Prefix, &tk.User, &tk.Kind, &tk.Name, &tk.ReadOnly, &tk.Feeds, &tk.Created, &expires,
		&tk.Packages, &tk.CIDRs, &tk.MaxUses, &tk.Uses, &tk.Automation, &lastUsed); err != nil {
		return nil, err
	}
	if lastUsed != nil {
		tk.LastUsed = lastUsed.UTC()
	}
	if len(tk.Packages) == 0 {
		tk.Packages = nil
	}
	if len(tk.CIDRs) == 0 {
		tk.CIDRs = nil
	}
	tk.Created = tk.Created.UTC()
	if expires != nil {
		tk.Expires = expires.UTC()
	}
	if len(tk.Feeds) == 0 {
		tk.Feeds = nil // as the file store has it
	}
	return &tk, nil
}

// Lookup finds the token of a secret by its hash: auth.ErrNoToken when
// there is none or it expired.
func (t *Tokens) Lookup(secret string, now time.Time) (*auth.Token, error) {
	if !auth.LooksLikeSecret(secret) {
		return nil, auth.ErrNoToken
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	// The token of a disabled user is no token: asked in the same query,
	// so that refusing them costs no second round trip on every request
	// (LookupRefusesDisabled).
	tk, err := scanToken(t.db.pool.QueryRow(ctx, "SELECT "+tokenColumns+" FROM tokens WHERE key = $1"+
		" AND NOT EXISTS (SELECT 1 FROM users WHERE users.name = tokens.user_name AND "+sqlDisabled+")", auth.KeyOf(secret)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, auth.ErrNoToken
	}
	if err != nil {
		return nil, err
	}
	if tk.Expired(now) {
		return nil, auth.ErrNoToken
	}
	return tk, nil
}

// LookupRefusesDisabled says that Lookup already answers ErrNoToken for
// the tokens of disabled users (auth.UserAwareTokens).
func (t *Tokens) LookupRefusesDisabled() {}

// Create stores a new token and returns its secret, which is shown once.
func (t *Tokens) Create(n auth.NewToken, now time.Time) (string, *auth.Token, error) {
	secret, tk := auth.NewSecret(n, now)
	var expires *time.Time
	if !tk.Expires.IsZero() {
		expires = &tk.Expires
	}
	feeds := tk.Feeds
	if feeds == nil {
		feeds = []string{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err := t.db.pool.Exec(ctx, "INSERT INTO tokens ("+tokenColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13, NULL)",
		tk.Key, tk.Prefix, tk.User, tk.Kind, tk.Name, tk.ReadOnly, feeds, tk.Created, expires,
		orEmpty(tk.Packages), orEmpty(tk.CIDRs), tk.MaxUses, tk.Automation)
	if err != nil {
		return "", nil, err
	}
	t.prune(ctx, now)
	return secret, tk, nil
}

// prune deletes the tokens expired for auth.ExpiredKept, at most once a
// minute per replica, as the file store does on every Create.
func (t *Tokens) prune(ctx context.Context, now time.Time) {
	if !t.db.tokensPruned.due(now) {
		return
	}
	// Best effort: a token left behind is refused at lookup all the same.
	_, _ = t.db.pool.Exec(ctx, "DELETE FROM tokens WHERE expires < $1", now.Add(-auth.ExpiredKept).UTC())
}

// Revoke deletes the token that key names: its key, or a unique prefix of
// at least auth.MinKeyPrefix characters (auth.FindKey).
func (t *Tokens) Revoke(key string) (*auth.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	// Two prefix matches are enough to tell that a prefix is ambiguous.
	rows, _ := t.db.pool.Query(ctx, "SELECT "+tokenColumns+` FROM tokens
		WHERE key = $1 OR (length($1) >= $2 AND starts_with(key, $1))
		ORDER BY key = $1 DESC LIMIT 2`, key, auth.MinKeyPrefix)
	candidates, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*auth.Token, error) { return scanToken(r) })
	if err != nil {
		return nil, err
	}
	tk, err := auth.FindKey(key, candidates)
	if err != nil {
		return nil, err
	}
	tag, err := t.db.pool.Exec(ctx, "DELETE FROM tokens WHERE key = $1", tk.Key)
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() == 0 { // revoked meanwhile, elsewhere
		return nil, fmt.Errorf("%w: %q", auth.ErrNoToken, key)
	}
	return tk, nil
}

// List returns the tokens of a user ("" for all), oldest first.
func (t *Tokens) List(user string) ([]*auth.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	rows, _ := t.db.pool.Query(ctx, "SELECT "+tokenColumns+` FROM tokens
		WHERE $1 = '' OR user_name = $1 ORDER BY created, key`, user)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*auth.Token, error) { return scanToken(r) })
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Use counts a write of the token of key in one statement, so of two
// concurrent uses of a one-use token (on any replicas) one fails.
func (t *Tokens) Use(key string, now time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	tag, err := t.db.pool.Exec(ctx, `UPDATE tokens SET uses = uses + 1, last_used = $2
		WHERE key = $1 AND (max_uses = 0 OR uses < max_uses)`, key, now.UTC())
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return auth.ErrTokenUsed
	}
	return nil
}

// Touch sets the last use of the token of key.
func (t *Tokens) Touch(key string, now time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	_, err := t.db.pool.Exec(ctx, "UPDATE tokens SET last_used = $2 WHERE key = $1", key, now.UTC())
	return err
}

// Refresh has nothing to re-read: every call asks the database.
func (t *Tokens) Refresh() error { return nil }
