package feed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/npmgate/npmgate/cache"
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

// OpenTarball opens ref's bytes: the stored file, or a fill (one download
// per tarball for all requests, from the bucket replicas share before
// upstream, verified before it is stored). spec is the request's prefetch,
// if it started one; a prefetch another request started is joined. The
// reader follows the download as it arrives.
func (f *Feed) OpenTarball(name string, ref TarballRef, spec *Prefetch) (io.ReadCloser, int64, error) {
	key := cache.TarballKey(ref.Digest.Algo, ref.Digest.Hex())
	fill := cache.Fill{Want: cache.Expect{NewHash: ref.Digest.NewHash, Sum: ref.Digest.Sum}}
	source, wait := "local", 30*time.Second // a published tarball: only the stores hold it
	if ref.Source != SourceLocal {
		c := f.Connectors[ref.Source]
		source, wait = c.Name, 2*c.Config.Timeout.D()
		url := c.Client.TarballURL(ref.Advertised, name, ref.File)
		// A hostile or broken upstream must not fill the disk: the body
		// is bounded by the connector's limit and its own Content-Length.
		fill.Upstream = func(ctx context.Context) (io.ReadCloser, int64, error) {
			body, size, err := c.Client.Tarball(ctx, url)
			return cache.LimitBody(body, size, err, int64(c.Config.MaxTarballSize))
		}
		if ref.Source == 0 {
			if spec == nil {
				// Another request may have started a prefetch of this
				// URL: the fill must use it, not download a second time.
				spec = f.Deps.Prefetch.Join(url)
				defer f.Release(spec)
			}
			fill.Upstream = spec.Source(url, fill.Upstream)
		}
		// No replica had the package's document when this request came
		// (see Speculate): the bytes are on their way from upstream.
		fill.Fresh = spec != nil
	}
	fill.Done = func(err error) {
		if err == nil {
			return
		}
		integrity := errors.Is(err, cache.ErrIntegrity)
		if integrity {
			f.Deps.Metrics.CountIntegrityFailure(source)
		}
		f.Deps.Log.Error("tarball download failed; nothing stored", "feed", f.Name, "package", name,
			"file", ref.File, "connector", source, "integrity_failure", integrity, "err", err)
	}
	// How long the client waits for the first byte; the download itself
	// belongs to no request and has its own bound.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return f.Deps.Blobs.Open(ctx, key, fill)
}
