package feed

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/npmgate/npmgate/cache"
)

// A cold tarball request (npm ci from a lockfile asks for tarballs only)
// needs the package's document before npmgate knows the tarball is
// allowed and what it must hash to. Fetching the document and then the
// tarball would pay two upstream round trips in a row; instead the
// tarball download starts at once, from the first connector's
// conventional URL, into a temporary file. Nothing of it is served or
// stored until the document has confirmed the version and the bytes pass
// the same integrity check as any download.

// Prefetch is one speculative tarball download.
type Prefetch struct {
	url    string
	done   chan struct{}
	cancel context.CancelFunc
	// set before done is closed
	pending *cache.Pending
	size    int64
	err     error
	refs    int // requests holding it; guarded by prefetches.mu
}

type Prefetches struct {
	mu sync.Mutex
	m  map[string]*Prefetch
	// recent holds when the last prefetch of a URL ended. A request that
	// comes in just after one (its package's index was loaded meanwhile
	// but is, say, not yet in memory) must not download the tarball once
	// more: by then it is stored, here or in the shared bucket.
	recent map[string]time.Time
}

// recentPrefetch is how long a finished prefetch stops another one.
const recentPrefetch = 10 * time.Second

// Speculate starts (or joins) a prefetch of a tarball whose package index
// is not in memory. It returns nil when speculating is not safe or not
// useful: the index is known, the name is local or owned (never asked
// upstream), or the feed's policy refuses the name.
func (f *Feed) Speculate(ctx context.Context, pol *Policy, name, file string, local *LocalLookup) *Prefetch {
	if len(f.Connectors) == 0 || f.Claimed(name) {
		return nil
	}
	if _, ok := f.Deps.Mem.Get(f.pkgKey(pol, name)); ok {
		return nil
	}
	if !pol.PerConnector[0].Name(name).Allowed {
		return nil
	}
	if f.privateWith(ctx, name, local) {
		return nil
	}
	c := f.Connectors[0]
	// This machine or another replica has fetched this package: its
	// tarballs are most likely on disk or in the shared bucket, which are
	// closer than upstream, and the index loads from the snapshot.
	if _, err := f.Deps.Snapshots.Stat(ctx, cache.SnapshotKey(c.Name, name)); err == nil {
		return nil
	}
	url := c.Client.TarballURL("", name, file)
	ps := f.Deps.Prefetch
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.m == nil {
		ps.m = map[string]*Prefetch{}
	}
	if p, ok := ps.m[url]; ok {
		p.refs++
		return p
	}
	if at, ok := ps.recent[url]; ok && time.Since(at) < recentPrefetch {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Config.TarballTimeout.D())
	p := &Prefetch{url: url, done: make(chan struct{}), cancel: cancel, refs: 1}
	ps.m[url] = p
	go p.run(ctx, f.Deps.Disk, cache.LimitSource(func(ctx context.Context) (io.ReadCloser, int64, error) {
		return c.Client.Tarball(ctx, url)
	}, int64(c.Config.MaxTarballSize)))
	return p
}

func (p *Prefetch) run(ctx context.Context, disk *cache.Disk, src cache.Source) {
	defer close(p.done)
	body, size, err := src(ctx)
	if err != nil {
		p.err = err
		return
	}
	defer body.Close()
	w, err := disk.Create("prefetch")
	if err != nil {
		p.err = err
		return
	}
	if _, err := io.Copy(w, body); err != nil {
		w.Abort()
		p.err = err
		return
	}
	p.pending, p.size = w, size
}

// Join takes a hold on a running prefetch of url, if there is one.
func (ps *Prefetches) Join(url string) *Prefetch {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.m[url]
	if !ok {
		return nil
	}
	p.refs++
	return p
}

// Source serves the fill from the prefetched bytes when they came from
// the URL the fill would have used, else from upstream as usual.
func (p *Prefetch) Source(url string, fallback cache.Source) cache.Source {
	if p == nil || p.url != url {
		return fallback
	}
	return func(ctx context.Context) (io.ReadCloser, int64, error) {
		select {
		case <-p.done:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
		if p.err != nil || p.pending == nil {
			return fallback(ctx)
		}
		f, size, err := p.pending.Open()
		if err != nil {
			return fallback(ctx)
		}
		return f, size, nil // the fill verifies these bytes like any others
	}
}

// Release drops a request's hold; the last one discards the temporary
// file (a reader that opened it keeps reading: the file is only unlinked).
func (f *Feed) Release(p *Prefetch) {
	if p == nil {
		return
	}
	ps := f.Deps.Prefetch
	ps.mu.Lock()
	p.refs--
	last := p.refs == 0
	if last {
		delete(ps.m, p.url)
		now := time.Now()
		if ps.recent == nil || len(ps.recent) > 10000 {
			for u, at := range ps.recent {
				if now.Sub(at) >= recentPrefetch {
					delete(ps.recent, u)
				}
			}
			if ps.recent == nil || len(ps.recent) > 10000 {
				ps.recent = map[string]time.Time{}
			}
		}
		ps.recent[p.url] = now
	}
	ps.mu.Unlock()
	if !last {
		return
	}
	// The fill has opened the file by now if it used it; a download nobody
	// took (the version was blocked, or already stored) stops here.
	p.cancel()
	go func() {
		<-p.done
		if p.pending != nil {
			p.pending.Abort()
		}
	}()
}
