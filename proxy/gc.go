package proxy

import (
	"context"
	"time"

	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/proxy/npm"
)

// GC evicts least recently used cached tarballs and snapshots once the
// data directory holds more than maxBytes, down to 90% of it. Tarballs of
// published packages (any version ever published to any feed, so that an
// unpublished-then-restored state stays consistent) are never evicted.
func (s *Server) GC(ctx context.Context, maxBytes int64) (cache.EvictStats, error) {
	keep, err := s.publishedTarballs(ctx)
	if err != nil {
		return cache.EvictStats{}, err
	}
	return s.disk.Evict(maxBytes, maxBytes/10*9, func(key string) bool { return keep[key] })
}

// publishedTarballs lists the tarball keys local documents refer to.
func (s *Server) publishedTarballs(ctx context.Context) (map[string]bool, error) {
	keep := map[string]bool{}
	err := s.packages.Each(ctx, "", func(_, name string, raw []byte) error {
		doc, err := feed.DecodeLocal(name, raw)
		if err != nil {
			return err // a document we cannot read: evict nothing rather than guess
		}
		for _, integrity := range doc.Published {
			if dg, err := npm.ParseDigest(npm.Dist{Integrity: integrity}); err == nil {
				keep[cache.TarballKey(dg.Algo, dg.Hex())] = true
			}
		}
		return nil
	})
	return keep, err
}

// collectGarbage runs GC every interval while ctx lives.
func (s *Server) collectGarbage(ctx context.Context, maxBytes int64, interval time.Duration) {
	for {
		st, err := s.GC(ctx, maxBytes)
		if err != nil {
			s.log.Error("disk cap: eviction failed", "err", err)
		} else if st.Removed > 0 {
			s.log.Info("disk cap: evicted least recently used cache files", "files", st.Removed, "bytes", st.RemovedBytes, "max_size", maxBytes)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// ClearQuarantine removes the tarballs of versions taken down upstream,
// kept for forensics until now (npmgate gc --quarantine).
func (s *Server) ClearQuarantine() (cache.QuarantineStats, error) {
	return s.disk.ClearQuarantine()
}
