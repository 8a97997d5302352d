package pgstore

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReplaysAreShared: a key remembered through one replica's store is
// not new through another's until it expires; of many replicas racing
// with one key, one wins; expired rows are deleted as replicas go.
func TestReplaysAreShared(t *testing.T) {
	ctx := testCtx(t)
	url := migrated(t)
	one, two := open(t, url).Replays(), open(t, url).Replays()
	later := time.Now().Add(time.Minute)
	if fresh, err := one.Remember(ctx, "k1", later); !fresh || err != nil {
		t.Fatalf("first use: %v, %v", fresh, err)
	}
	for name, r := range map[string]*Replays{"the same replica": one, "another replica": two} {
		if fresh, err := r.Remember(ctx, "k1", later); fresh || err != nil {
			t.Errorf("again at %s: %v, %v; want not new", name, fresh, err)
		}
	}

	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := one
			if i%2 == 1 {
				r = two
			}
			if fresh, err := r.Remember(ctx, "race", later); err != nil {
				t.Error(err)
			} else if fresh {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d of 8 concurrent uses of one key were new", wins.Load())
	}

	// A use that has expired is no obstacle, and expired rows go.
	if fresh, _ := one.Remember(ctx, "old", time.Now().Add(-time.Second)); !fresh {
		t.Fatal("first use of old")
	}
	if fresh, err := two.Remember(ctx, "old", later); !fresh || err != nil {
		t.Errorf("a key whose use expired: %v, %v; want new", fresh, err)
	}
	one.Remember(ctx, "gone", time.Now().Add(-time.Second))
	two.db.replaysPruned.last.Store(0)
	two.Remember(ctx, "k2", later)
	var n int
	if err := two.db.pool.QueryRow(ctx, "SELECT count(*) FROM oidc_replays WHERE key = 'gone'").Scan(&n); err != nil || n != 0 {
		t.Errorf("expired rows after a prune: %d, %v", n, err)
	}
}
