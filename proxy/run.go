package proxy

import (
	"context"
	"time"
)

// Run starts the background loops a serving process needs: re-reading the
// credential files, following other replicas' publishes, measuring the
// data directory, evicting over cache.max_size and refreshing the OSV
// database (osv.refresh). They end when ctx ends
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
		go s.runOSV(ctx, s.cfg.OSV.Refresh.D())
	}
	if s.cfg.Cache.MaxSize > 0 {
		go s.collectGarbage(ctx, int64(s.cfg.Cache.MaxSize), 5*time.Minute)
	}
}
