package feed

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/npmgate/npmgate/cache"
)

// RecheckStats says what one pass of the background re-check did.
type RecheckStats struct {
	Snapshots int64 // cached packuments seen
	Checked   int64 // revalidated upstream (the others were fresh)
	Failed    int64
	Takedowns int64 // versions found taken down
}

// Recheck revalidates every connector's cached packuments, as a request
// past max_age would, so that takedowns (and what else a new document
// brings) reach packages nobody asked for lately. It asks only about names
// already cached; a snapshot fresher than max_age (revalidated by a
// request, or by another replica's re-check) is skipped. At most
// concurrency requests run at once, started no faster than pace allows.
func Recheck(ctx context.Context, feeds []*Feed, concurrency int, pace *rate.Limiter) (RecheckStats, error) {
	var st RecheckStats
	if len(feeds) == 0 {
		return st, nil
	}
	deps := feeds[0].Deps
	type target struct {
		name string
		conn string
	}
	var todo []target
	maxAge := deps.Cache.MaxAge.D()
	err := deps.Snapshots.Walk(ctx, "snapshots/", func(info cache.Info) error {
		conn, name, ok := cache.ParseSnapshotKey(info.Key)
		if !ok || readerOf(feeds, conn) == nil {
			return nil // a connector no longer configured
		}
		st.Snapshots++
		if time.Since(info.ModTime) >= maxAge {
			todo = append(todo, target{name, conn})
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(concurrency, 1))
	for _, t := range todo {
		if err := pace.Wait(gctx); err != nil {
			break // cancelled
		}
		g.Go(func() error {
			n, ok := recheckOne(gctx, feeds, t.conn, t.name)
			atomic.AddInt64(&st.Checked, 1)
			atomic.AddInt64(&st.Takedowns, int64(n))
			if !ok {
				atomic.AddInt64(&st.Failed, 1)
			}
			return nil
		})
	}
	g.Wait()
	return st, ctx.Err()
}

// recheckOne revalidates one connector's document for name and, when it
// found versions taken down, drops the package from the memory tier of
// every feed reading through the connector (its index and rendered
// documents), so none serves them until they would have expired. It returns how many versions it found taken down.
func recheckOne(ctx context.Context, feeds []*Feed, conn, name string) (int, bool) {
	r := readerOf(feeds, conn)
	ctx, cancel := context.WithTimeout(ctx, r.feed.Deadline())
	defer cancel()
	start := time.Now()
	res := r.feed.ReadConnector(ctx, r.feed.Connectors[r.idx], r.idx, name, false)
	n := 0
	for _, t := range res.takedowns {
		if !t.RemovedAt.Before(start) {
			n++
		}
	}
	if n > 0 {
		for _, f := range feeds {
			for _, c := range f.Connectors {
				if c.Name == conn {
					f.Invalidate(name) // the index and the rendered documents
					break
				}
			}
		}
	}
	return n, res.err == nil
}

type connReader struct {
	feed *Feed
	idx  int
}

// readerOf is a feed reading through the connector named conn, and its
// index there; nil when none does.
func readerOf(feeds []*Feed, conn string) *connReader {
	for _, f := range feeds {
		for i, c := range f.Connectors {
			if c.Name == conn {
				return &connReader{f, i}
			}
		}
	}
	return nil
}
