package proxy

import (
	"context"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/npmgate/npmgate/feed"
)

// Run starts the background loops a serving process needs: re-reading the
// credential files, following other replicas' publishes, measuring the
// data directory, evicting over cache.max_size, refreshing the OSV
// database (osv.refresh) and re-checking cached packuments every
// cache.recheck. They end when ctx ends
// or at Close. New starts none of them, so that the tools that build a
// server (explain, warm in-process) do not evict or walk the data
// directory of a server running beside them; only serve calls Run.
func (s *Server) Run(ctx context.Context) {
	ctx, s.stop = context.WithCancel(ctx)
	if s.sharedState != nil {
		go s.watchPackages(ctx)
	}
	go s.auth.Watch(ctx, time.Second, func(err error) { s.log.Error("reloading credentials", "err", err) })
	go s.metrics.measureStore(ctx, s.cfg.Data, time.Minute)
	if s.osv != nil {
		go s.osv.src.Run(ctx, s.cfg.OSV.Refresh.D(), s.afterOSVRefresh)
	}
	if s.cfg.Cache.MaxSize > 0 {
		go s.collectGarbage(ctx, int64(s.cfg.Cache.MaxSize), 5*time.Minute)
	}
	if every := s.cfg.Cache.Recheck.D(); every > 0 {
		go s.recheckLoop(ctx, every)
	}
}

// The background re-check's bounds: a few requests at once, and no more
// than recheckRate a second in all, so that a cache of a hundred thousand
// names is revalidated within hours without hammering upstream.
const (
	recheckConcurrency = 4
	recheckRate        = 10
)

// Recheck revalidates every cached packument once (see feed.Recheck).
func (s *Server) Recheck(ctx context.Context) (feed.RecheckStats, error) {
	feeds := make([]*feed.Feed, 0, len(s.feeds))
	for _, f := range s.feeds {
		feeds = append(feeds, f)
	}
	slices.SortFunc(feeds, func(a, b *feed.Feed) int { return strings.Compare(a.Name, b.Name) })
	return feed.Recheck(ctx, feeds, recheckConcurrency, rate.NewLimiter(recheckRate, 1))
}

// recheckLoop runs Recheck every interval while ctx lives; the first pass
// comes one interval after start, so that restarts do not each start one.
func (s *Server) recheckLoop(ctx context.Context, interval time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		st, err := s.Recheck(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("re-check of cached packuments failed", "err", err)
			continue
		}
		s.log.Info("re-checked cached packuments", "snapshots", st.Snapshots, "revalidated", st.Checked, "failed", st.Failed, "takedowns", st.Takedowns)
	}
}
