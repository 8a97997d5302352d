package proxy

import (
	"context"
	"sync"
	"testing"

	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// countingPackages counts readings of local documents, per name: with
// a database each one is a query.
type countingPackages struct {
	feed.Packages
	mu   sync.Mutex
	gets map[string]int
}

func (c *countingPackages) Get(ctx context.Context, feed, name string) ([]byte, error) {
	c.mu.Lock()
	c.gets[name]++
	c.mu.Unlock()
	return c.Packages.Get(ctx, feed, name)
}

func (c *countingPackages) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets[name]
}

// TestColdMissReadsTheLocalDocumentOnce: the miss limit, the prefetch
// and the load of one cold request share one reading of the package's
// local document.
func TestColdMissReadsTheLocalDocumentOnce(t *testing.T) {
	for _, tc := range []struct {
		name, path, pkg string
		status          int
	}{
		{"packument", "/ms", "ms", 200},
		{"version", "/ms/2.1.3", "ms", 200},
		{"tarball", "/ms/-/ms-2.1.3.tgz", "ms", 200},
		{"unknown packument", "/no-such-package-anywhere", "no-such-package-anywhere", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := fakeupstream.Start(t, fakeupstream.Dir())
			g := startGate(t, up)
			pk := &countingPackages{Packages: g.srv.packages, gets: map[string]int{}}
			g.srv.feedDeps.Packages = pk
			if resp, _ := g.get(tc.path); resp.StatusCode != tc.status {
				t.Fatalf("GET %s: status %d, want %d", tc.path, resp.StatusCode, tc.status)
			}
			if n := pk.count(tc.pkg); n != 1 {
				t.Errorf("GET %s (cold) read the local document of %s %d times, want 1", tc.path, tc.pkg, n)
			}
		})
	}
}
