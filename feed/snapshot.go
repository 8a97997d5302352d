package feed

import (
	"context"
	"fmt"
	"time"

	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/proxy/npm"
	"github.com/npmgate/npmgate/proxy/upstream"
)

// parseUpstream reads a connector's document for name.
func parseUpstream(c *Connector, name string, idx int, body []byte) (*npm.Packument, error) {
	doc, err := npm.Parse(body, idx)
	if err == nil {
		err = doc.CheckName(name)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", upstream.ErrBadResponse, c.Name, err)
	}
	return doc, nil
}

// goneUpstream is a connector's 404 for name. A snapshot of the package
// is removed: it would otherwise stand in, every version listed, the next
// time the connector fails, for a package upstream no longer has (npm
// removes whole packages too). The tarballs stay, evictable: a 404 is no
// document to compare versions with (see Takedown).
func (f *Feed) goneUpstream(ctx context.Context, c *Connector, name string, hasSnap bool) connResult {
	if hasSnap {
		key := cache.SnapshotKey(c.Name, name)
		f.Deps.Log.Warn("upstream no longer has the package; its snapshot is removed", "connector", c.Name, "package", name)
		if err := f.Deps.Snapshots.Remove(ctx, key); err != nil {
			f.Deps.Log.Error("removing the snapshot of a package upstream no longer has failed", "key", key, "err", err)
		}
		// The rendered documents too: a failed load serves the last one.
		f.Invalidate(name)
	}
	return connResult{notFound: true, expires: time.Now().Add(f.Deps.Cache.NotFoundTTL.D())}
}
