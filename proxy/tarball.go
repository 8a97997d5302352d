package proxy

import (
	"io"
	"os"

	"github.com/valyala/fasthttp"

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
	etag := `"` + ref.Digest.Algo + "-" + ref.Digest.Hex()[:32] + `"`
	h := &ctx.Response.Header
	if inm := ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch); len(inm) > 0 && etagMatch(inm, etag) {
		h.Set(fasthttp.HeaderETag, etag)
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	body, size, err := f.OpenTarball(r.Name, ref, spec)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	result := feed.CacheMiss
	if _, isFile := body.(interface{ Fd() uintptr }); isFile {
		result = feed.CacheHit
	}
	s.sendTarball(ctx, body, size, etag, result)
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
