package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/feed"
)

// serveTarball sends a tarball: from disk with zero copy when stored, else
// streamed from the connector to the client and to disk at once, and only
// stored once it matches the packument's integrity.
func (s *Server) serveTarball(ctx *fasthttp.RequestCtx, f *feed.Feed, r Route) {
	pol := f.Rules.Load()
	// Before speculate: a prefetch of an unknown name is an upstream
	// request too.
	local := f.LookupLocal(r.Name) // one reading for the three steps below
	done, err := s.admit(ctx, f, pol, r.Name, local)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	spec := f.Speculate(s.rctx(ctx), pol, r.Name, r.File, local)
	defer f.Release(spec)
	ref, err := f.Tarball(s.rctx(ctx), pol, r.Name, r.File, local)
	if done != nil {
		done(err)
	}
	if err != nil {
		s.fail(ctx, err)
		return
	}
	key := cache.TarballKey(ref.Digest.Algo, ref.Digest.Hex())
	etag := `"` + ref.Digest.Algo + "-" + ref.Digest.Hex()[:32] + `"`
	h := &ctx.Response.Header
	if inm := ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch); len(inm) > 0 && etagMatch(inm, etag) {
		h.Set(fasthttp.HeaderETag, etag)
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	expect := cache.Expect{NewHash: ref.Digest.NewHash, Sum: ref.Digest.Sum}
	var src cache.Source
	var source string      // the connector, for logs and metrics
	var wait time.Duration // how long a client waits for the first byte
	if ref.Source == feed.SourceLocal {
		if s.bucket == nil {
			body, size, err := s.disk.OpenBlob(key)
			if err != nil {
				s.fail(ctx, fmt.Errorf("stored tarball of a local package is missing: %w", err))
				return
			}
			s.sendTarball(ctx, body, size, etag, feed.CacheHit)
			return
		}
		// Published on another replica: its bytes are in the bucket.
		source, wait = "local", 30*time.Second
		src = s.fromShared(key, nil, nil)
	} else {
		c := f.Connectors[ref.Source]
		source, wait = c.Name, 2*c.Config.Timeout.D()
		url := c.Client.TarballURL(ref.Advertised, r.Name, ref.File)
		// A hostile or broken upstream must not fill the disk: the body
		// is bounded by the connector's limit and its own Content-Length.
		src = func(dctx context.Context) (io.ReadCloser, int64, error) {
			body, size, err := c.Client.Tarball(dctx, url)
			return cache.LimitBody(body, size, err, int64(c.Config.MaxTarballSize))
		}
		if ref.Source == 0 {
			if spec == nil {
				// Another request may have started a prefetch of this
				// URL: the fill must use it, not download a second time.
				spec = s.prefetch.Join(url)
				defer f.Release(spec)
			}
			src = spec.Source(url, s.disk, src)
		}
	}
	var fromUpstream bool
	switch {
	case s.bucket == nil || ref.Source == feed.SourceLocal:
	case spec != nil:
		// No replica had the package's document when this request came
		// (see speculate): the bytes are on their way from upstream
		// already, and the bucket is not worth a look.
		fromUpstream = true
	default:
		src = s.fromShared(key, src, &fromUpstream)
	}
	result := feed.CacheMiss
	onDone := func(err error) {
		if errors.Is(err, cache.ErrIntegrity) {
			s.metrics.integrity.WithLabelValues(source).Inc()
		}
		if err != nil {
			s.log.Error("tarball download failed; nothing stored", "feed", f.Name, "package", r.Name,
				"file", ref.File, "connector", source, "integrity_failure", errors.Is(err, cache.ErrIntegrity), "err", err)
		} else if fromUpstream {
			s.share(key)
		}
	}
	// Not below the request's context: the wait is bounded by itself, and
	// deriving from it would make that context's timer on every warm
	// tarball (and keep it from its pool).
	wctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	body, size, err := s.fills.Fetch(wctx, key, expect, src, onDone)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	if _, isFile := body.(interface{ Fd() uintptr }); isFile {
		result = feed.CacheHit
	}
	s.sendTarball(ctx, body, size, etag, result)
}

// fromShared reads a tarball from the bucket replicas share, and only
// when it is not there from fallback (the connector), noting in
// *fromUpstream that the bytes must then be shared once verified. The
// bytes from the bucket are verified like any others on their way to this
// replica's disk.
func (s *Server) fromShared(key string, fallback cache.Source, fromUpstream *bool) cache.Source {
	return func(ctx context.Context) (io.ReadCloser, int64, error) {
		body, info, err := s.bucket.Get(ctx, key)
		if err == nil {
			return body, info.Size, nil
		}
		if !errors.Is(err, cache.ErrNotFound) {
			s.log.Warn("shared store: reading a tarball failed", "key", key, "err", err)
		}
		if fallback == nil {
			return nil, 0, fmt.Errorf("stored tarball of a local package is missing: %w", err)
		}
		*fromUpstream = true
		return fallback(ctx)
	}
}

// share copies a verified tarball from this replica's disk to the bucket,
// so other replicas need not download it again. The upload is whole or
// absent (S3 semantics); a replica killed during it leaves nothing.
func (s *Server) share(key string) {
	f, size, err := s.disk.OpenBlob(key)
	if err != nil {
		s.log.Warn("shared store: stored tarball vanished before upload", "key", key, "err", err)
		return
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := s.bucket.Put(ctx, key, f, size); err != nil {
		s.log.Error("shared store: uploading a tarball failed; other replicas will fetch it themselves", "key", key, "err", err)
	}
}

func (s *Server) sendTarball(ctx *fasthttp.RequestCtx, body io.ReadCloser, size int64, etag, result string) {
	s.metrics.cacheLookups.WithLabelValues("disk", result).Inc()
	h := &ctx.Response.Header
	setResult(ctx, result)
	h.SetContentType("application/octet-stream")
	h.Set(fasthttp.HeaderCacheControl, "public, max-age=31536000, immutable")
	h.Set(fasthttp.HeaderETag, etag)
	sz := int(size)
	if size < 0 {
		sz = -1
	}
	// fasthttp closes body when done; an *os.File goes out by sendfile. A
	// download that fails makes the reader return an error, which aborts
	// the connection so the client sees a failure, not bad bytes.
	if f, ok := body.(*os.File); ok && sz >= 0 {
		sendFile(ctx, f, sz)
		return
	}
	ctx.SetBodyStream(&streamBody{r: body}, sz)
}
