package proxy

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/proxy/npm"
)

var (
	mediaAbbreviated = []byte("application/vnd.npm.install-v1+json")
	headerCache      = "X-Npmgate-Cache"
)

// wantsAbbreviated reports whether the client asked for the abbreviated
// ("corgi") document, as npm, pnpm and yarn 1 do for installs.
func wantsAbbreviated(ctx *fasthttp.RequestCtx) bool {
	return bytes.Contains(ctx.Request.Header.Peek(fasthttp.HeaderAccept), mediaAbbreviated)
}

// servePackument is the hot path: on a memory hit it writes stored bytes
// and does no JSON work.
func (s *Server) servePackument(ctx *fasthttp.RequestCtx, f *feed.Feed, prefix string, r Route) {
	base, err := s.baseURL(ctx, prefix)
	if err != nil {
		s.fail(ctx, refused(errBadRequest, err.Error()))
		return
	}
	abbreviated := wantsAbbreviated(ctx)
	canon := s.canonicalBase(prefix)
	admit := func() (func(error), error) { return s.takeMiss(ctx) }
	it, result, err := f.RenderedDoc(s.rctx(ctx), admit, canon, r.Name, abbreviated)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	rd := it.Value.(*feed.Rendered)
	etag := it.ETag
	other := base != canon
	if other {
		if !rd.Spliceable {
			// Not reached: canonical bases are validated URLs, verbatim in
			// JSON. Refuse rather than send another base's URLs.
			s.fail(ctx, fmt.Errorf("cannot rewrite %s for %s", r.Name, base))
			return
		}
		// The same document for another base: its own validator, so
		// that a cache never answers one base's request with another's.
		etag = it.ETag[:len(it.ETag)-1] + "-" + strconv.FormatUint(xxhash.Sum64String(base), 16) + `"`
	}
	setResult(ctx, result)
	s.metrics.cacheLookups.WithLabelValues("memory", result).Inc()
	h := &ctx.Response.Header
	if abbreviated {
		h.SetContentType("application/vnd.npm.install-v1+json")
	} else {
		h.SetContentType("application/json")
	}
	h.SetCanonical(varyKey, varyValue)
	h.SetCanonical(cacheControlKey, revalidateValue)
	h.SetCanonical(etagKey, s2b(etag))
	if n := rd.Notice; n != "" {
		// npm prints npm-notice only for responses it does not store, and it
		// stores every cacheable one: a filtered document is therefore not
		// cacheable, so that the user is told why a version is missing.
		h.Set("npm-notice", n)
		h.Set(fasthttp.HeaderCacheControl, "no-store")
	}
	if it.Flags&feed.FlagStale != 0 {
		h.Set(fasthttp.HeaderWarning, `110 npmgate "Response is Stale"`)
	}
	if inm := ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch); len(inm) > 0 && etagMatch(inm, etag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	if other {
		// The stored bytes streamed with this base in place of the
		// canonical one: no render, no gzip, no copy of the document,
		// nothing stored, so a flood of Host headers costs bandwidth, not
		// CPU or memory.
		s.metrics.spliced.Inc()
		sp := npm.NewSpliced(it.Body, rd.Marks, canon, base)
		ctx.SetBodyStream(sp, sp.Len())
		return
	}
	gzip := it.Gzip != nil && ctx.Request.Header.HasAcceptEncoding("gzip")
	if gzip {
		h.SetCanonical(contentEncodingKey, gzipValue)
	}
	sendItem(ctx, it, gzip)
}

// serveVersion answers GET /{name}/{version-or-dist-tag} with one version
// object. No installer uses it, tools do; it is served from the snapshot.
func (s *Server) serveVersion(ctx *fasthttp.RequestCtx, f *feed.Feed, prefix string, r Route) {
	base, err := s.baseURL(ctx, prefix)
	if err != nil {
		s.fail(ctx, refused(errBadRequest, err.Error()))
		return
	}
	local := f.LookupLocal(r.Name) // one reading for admit and the load
	done, err := s.admit(ctx, f, f.Rules.Load(), r.Name, local)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	doc, err := f.ParsedDoc(s.rctx(ctx), r.Name, local)
	if done != nil {
		done(err)
	}
	if err != nil {
		s.fail(ctx, err)
		return
	}
	v := doc.Version(r.Version)
	if v == nil {
		if tagged := doc.Tag(r.Version); tagged != "" {
			v = doc.Version(tagged)
		}
	}
	if v == nil {
		s.fail(ctx, f.MissingVersion(s.rctx(ctx), r.Name, r.Version))
		return
	}
	var buf bytes.Buffer
	doc.RenderVersion(&buf, base, v)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "public, max-age=0, must-revalidate")
	ctx.SetBody(buf.Bytes())
}

// etagMatch implements If-None-Match's weak comparison against one ETag.
func etagMatch(header []byte, etag string) bool {
	tag := []byte(trimWeak(etag))
	for len(header) > 0 {
		var one []byte
		if i := bytes.IndexByte(header, ','); i >= 0 {
			one, header = header[:i], header[i+1:]
		} else {
			one, header = header, nil
		}
		one = bytes.TrimSpace(one)
		if len(one) == 1 && one[0] == '*' {
			return true
		}
		if bytes.Equal([]byte(trimWeak(string(one))), tag) {
			return true
		}
	}
	return false
}

func trimWeak(t string) string {
	if len(t) > 2 && t[0] == 'W' && t[1] == '/' {
		return t[2:]
	}
	return t
}

// setResult tells the client (and the access log, which reads it back)
// where the answer came from.
func setResult(ctx *fasthttp.RequestCtx, result string) {
	ctx.Response.Header.SetCanonical(headerCacheKey, resultValues[result])
}

var (
	headerCacheKey = []byte(headerCache)
	resultValues   = map[string][]byte{feed.CacheHit: []byte(feed.CacheHit), feed.CacheMiss: []byte(feed.CacheMiss),
		feed.CacheRevalidated: []byte(feed.CacheRevalidated), feed.CacheStale: []byte(feed.CacheStale)}
	varyKey, varyValue            = []byte(fasthttp.HeaderVary), []byte("Accept, Accept-Encoding")
	cacheControlKey               = []byte(fasthttp.HeaderCacheControl)
	revalidateValue               = []byte("public, max-age=0, must-revalidate")
	etagKey                       = []byte(fasthttp.HeaderETag)
	contentEncodingKey, gzipValue = []byte(fasthttp.HeaderContentEncoding), []byte("gzip")
)

// serveWriteDocument answers GET /{name}?write=true, which npm sends
// before unpublish and deprecate: the current full document with its _rev,
// never from a cache, and for local packages only their local versions.
func (s *Server) serveWriteDocument(ctx *fasthttp.RequestCtx, f *feed.Feed, prefix string, r Route) {
	base, err := s.baseURL(ctx, prefix)
	if err != nil {
		s.fail(ctx, refused(errBadRequest, err.Error()))
		return
	}
	d, err := f.ReadLocal(s.rctx(ctx), r.Name)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	if d == nil || d.Packument == nil || len(d.Packument.Versions) == 0 {
		s.servePackument(ctx, f, prefix, r)
		return
	}
	doc, _, err := d.AsPackument()
	if err != nil {
		s.fail(ctx, err)
		return
	}
	var buf bytes.Buffer
	doc.Render(&buf, base, false)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-cache")
	ctx.SetBody(buf.Bytes())
}
