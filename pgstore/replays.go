package pgstore

import (
	"context"
	"sync/atomic"
	"time"
)

// Replays remembers the ID tokens trusted publishing exchanged, for every
// replica (it is a trustpub.Replays): each replica remembering only its own would let a token
// exchanged at one be exchanged again at the next.
type Replays struct{ db *DB }

// Replays is the shared memory of exchanged ID tokens.
func (db *DB) Replays() *Replays { return &Replays{db: db} }

// pruneEvery spaces the deletes of expired rows a replica makes.
const pruneEvery = time.Minute

// rarely admits one caller at most every pruneEvery (per replica): the
// deletes of expired rows, which need not run on every write.
type rarely struct{ last atomic.Int64 }

func (r *rarely) due(now time.Time) bool {
	last := r.last.Load()
	return now.Unix()-last >= int64(pruneEvery/time.Second) && r.last.CompareAndSwap(last, now.Unix())
}

// Remember records key until expires; it is new unless a row for it has
// not expired yet. The insert decides, so of two replicas exchanging one
// token at once, one wins. The database's clock is the one compared, the
// same for every replica.
func (r *Replays) Remember(ctx context.Context, key string, expires time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	tag, err := r.db.pool.Exec(ctx, `INSERT INTO oidc_replays (key, expires) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET expires = excluded.expires WHERE oidc_replays.expires < now()`, key, expires)
	if err != nil {
		return false, err
	}
	if r.db.replaysPruned.due(time.Now()) {
		// Best effort: a row left behind is only a row.
		_, _ = r.db.pool.Exec(ctx, "DELETE FROM oidc_replays WHERE expires < now()")
	}
	return tag.RowsAffected() == 1, nil
}
