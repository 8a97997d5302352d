package feed

import (
	"context"
	"fmt"
	"time"
)

// Tarball finds which upstream file a request names and what it must hash
// to, through the package's index, so a file that is not in the packument
// (or whose version a policy removed) is never fetched.
func (f *Feed) Tarball(ctx context.Context, pol *Policy, name, file string, local *LocalLookup) (TarballRef, error) {
	ld, err := f.loadIndex(ctx, pol, name, local)
	if err != nil {
		return TarballRef{}, err
	}
	ref, ok := ld.ix.files[file]
	if !ok && !ld.ix.notFound && time.Since(ld.ix.loaded) > 5*time.Second {
		// A version published upstream after the index was loaded: look
		// once more, at most every few seconds per package.
		f.Deps.Mem.Del(f.pkgKey(pol, name))
		if ld, err = f.loadIndex(ctx, pol, name, nil); err != nil { // a new load: read again
			return TarballRef{}, err
		}
		ref, ok = ld.ix.files[file]
	}
	if ld.ix.notFound {
		return TarballRef{}, ld.ix.notFoundError(name, f.Name)
	}
	if !ok {
		return TarballRef{}, fmt.Errorf("%w: %s has no tarball %s", ErrNotFound, name, file)
	}
	if ref.removed != "" {
		return TarballRef{}, fmt.Errorf("%w: %s", ErrNotFound, ref.removed)
	}
	if ref.blocked != "" {
		return TarballRef{}, fmt.Errorf("%w: %s", ErrBlocked, ref.blocked)
	}
	return ref, nil
}
