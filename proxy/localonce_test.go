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

// deadlinePackages records, per call, whether the context it got has a
// deadline.
type deadlinePackages struct {
	feed.Packages
	mu      sync.Mutex
	without []string
}

func (d *deadlinePackages) note(call string, ctx context.Context) {
	if _, ok := ctx.Deadline(); !ok {
		d.mu.Lock()
		d.without = append(d.without, call)
		d.mu.Unlock()
	}
}

func (d *deadlinePackages) Get(ctx context.Context, feedName, name string) ([]byte, error) {
	d.note("Get "+name, ctx)
	return d.Packages.Get(ctx, feedName, name)
}

func (d *deadlinePackages) Update(ctx context.Context, feedName, name string, change func(old []byte) ([]byte, error)) error {
	d.note("Update "+name, ctx)
	return d.Packages.Update(ctx, feedName, name, change)
}

func (d *deadlinePackages) Each(ctx context.Context, feedName string, fn func(feed, name string, doc []byte) error) error {
	d.note("Each "+feedName, ctx)
	return d.Packages.Each(ctx, feedName, fn)
}

// TestStoreCallsHaveADeadline: every database or disk call a request
// makes for local packages runs under a context with a deadline (with
// replicas, a PostgreSQL query that hangs must not hold the request
// forever).
func TestStoreCallsHaveADeadline(t *testing.T) {
	p := publishGate(t)
	pk := &deadlinePackages{Packages: p.srv.packages}
	p.srv.feedDeps.Packages = pk
	p.srv.packages = pk
	if status, body := p.publish("deadline-pkg", "1.0.0", nil); status != 200 && status != 201 {
		t.Fatalf("publish: %d %s", status, body)
	}
	for _, path := range []string{"/deadline-pkg", "/ms", "/ms/-/ms-2.1.3.tgz", "/-/v1/search?text=deadline"} {
		if resp, body := p.get(path); resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	if len(pk.without) > 0 {
		t.Errorf("store calls without a deadline: %q", pk.without)
	}
}
