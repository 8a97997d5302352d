package pgstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Channel is the notification channel of package changes; the payload is
// feed + "\n" + name.
const Channel = "npmgate_packages"

// Packages keeps the documents of packages published to feeds, one row
// per feed and name, bytes as given.
type Packages struct{ db *DB }

// Get returns the stored document of feed's package name, or nil, nil
// when there is none.
func (p *Packages) Get(ctx context.Context, feed, name string) ([]byte, error) {
	var doc []byte
	err := p.db.pool.QueryRow(ctx, "SELECT doc FROM packages WHERE feed = $1 AND name = $2 AND doc IS NOT NULL", feed, name).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return doc, err
}

// Update runs change on the current document (nil when none) and stores
// what it returns; a nil document deletes the package. It holds the
// package's row lock for the whole transaction, so two updates of one
// package, on any replicas, never interleave and concurrent publishes all
// land. If change returns an error, nothing is stored and Update returns
// that error as it is. Every replica's Watch hears of the change when it
// commits.
func (p *Packages) Update(ctx context.Context, feed, name string, change func(old []byte) ([]byte, error)) error {
	return pgx.BeginFunc(ctx, p.db.pool, func(tx pgx.Tx) error {
		// A row to lock, for a package that has none yet: a concurrent
		// insert of the same key waits for this transaction to end.
		if _, err := tx.Exec(ctx, "INSERT INTO packages (feed, name) VALUES ($1, $2) ON CONFLICT DO NOTHING", feed, name); err != nil {
			return err
		}
		var old []byte
		if err := tx.QueryRow(ctx, "SELECT doc FROM packages WHERE feed = $1 AND name = $2 FOR UPDATE", feed, name).Scan(&old); err != nil {
			return err
		}
		doc, err := change(old)
		if err != nil {
			return err
		}
		if doc == nil {
			_, err = tx.Exec(ctx, "DELETE FROM packages WHERE feed = $1 AND name = $2", feed, name)
		} else {
			_, err = tx.Exec(ctx, "UPDATE packages SET doc = $3, updated = now() WHERE feed = $1 AND name = $2", feed, name, doc)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "SELECT pg_notify($1, $2)", Channel, feed+"\n"+name)
		return err
	})
}

// eachPage is how many documents Each reads per query: the connection is
// not held while fn runs.
const eachPage = 64

// Each calls fn with every package document of feed, of all feeds when
// feed is "", in feed and name order (bytewise). An error from fn stops it
// and is returned. Documents changed while it runs may be seen old or new.
func (p *Packages) Each(ctx context.Context, feed string, fn func(feed, name string, doc []byte) error) error {
	type row struct {
		feed, name string
		doc        []byte
	}
	// Keyset pages, each query a range scan of the primary key.
	where := "doc IS NOT NULL"
	if feed != "" {
		where += " AND feed = @feed"
	}
	args := pgx.NamedArgs{"feed": feed, "limit": eachPage}
	after := "" // the first page
	for {
		rows, _ := p.db.pool.Query(ctx, "SELECT feed, name, doc FROM packages WHERE "+where+after+" ORDER BY feed, name LIMIT @limit", args)
		page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			err := r.Scan(&x.feed, &x.name, &x.doc)
			return x, err
		})
		if err != nil {
			return err
		}
		for _, x := range page {
			if err := fn(x.feed, x.name, x.doc); err != nil {
				return err
			}
		}
		if len(page) < eachPage {
			return nil
		}
		last := page[len(page)-1]
		args["lastFeed"], args["lastName"] = last.feed, last.name
		after = " AND (feed, name) > (@lastFeed, @lastName)"
	}
}

// Watch listens on Channel with a connection of the pool and calls
// fn(feed, name) for each change committed by any replica, until ctx
// ends. After a lost connection it reconnects (backing off up to 5s) and
// calls fn("", "") once listening again: changes may have been missed, so
// anything may have changed. It returns only when ctx ends, with its
// error.
func (p *Packages) Watch(ctx context.Context, fn func(feed, name string)) error {
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	reconnect := false
	for {
		err := p.listen(ctx, func() {
			if reconnect {
				fn("", "")
			}
			reconnect = true
			backoff = minBackoff
		}, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = err // lost connection or no connection: try again
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listen holds one connection listening until it fails or ctx ends;
// listening is called once LISTEN took effect.
func (p *Packages) listen(ctx context.Context, listening func(), fn func(feed, name string)) error {
	c, err := p.db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := c.Conn()
	defer func() {
		// The connection is not given back listening: the pool drops a
		// closed connection.
		conn.Close(context.Background())
		c.Release()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		feed, name, ok := strings.Cut(n.Payload, "\n")
		if !ok {
			continue
		}
		fn(feed, name)
	}
}
