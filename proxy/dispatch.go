package proxy

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/ui"
	"github.com/valyala/fasthttp"
)

// methodLabel keeps the method label to known values.
func methodLabel(ctx *fasthttp.RequestCtx) string {
	switch {
	case ctx.IsGet():
		return "GET"
	case ctx.IsHead():
		return "HEAD"
	case ctx.IsPut():
		return "PUT"
	case ctx.IsPost():
		return "POST"
	case ctx.IsDelete():
		return "DELETE"
	}
	return "other"
}

// Route labels, for metrics and logs: a fixed set.
const (
	routePackument = "packument"
	routeVersion   = "version"
	routeTarball   = "tarball"
	routeWrite     = "write"
	routeAPI       = "api"
	routePing      = "ping"
	routeHealth    = "health"
	routeMetrics   = "metrics"
	routeOther     = "other"
)

// dispatch answers a request and says which feed and route it was. A
// request is classified from its headers alone (route, caller, their
// right to it) before any of its body is read, and the body is then read
// within its route's limit: nobody gets npmgate to hold a body it would
// refuse.
func (s *Server) dispatch(ctx *fasthttp.RequestCtx) (feed, route string) {
	path := requestPath(ctx)
	switch path {
	case "/healthz":
		writeJSON(ctx, fasthttp.StatusOK, `{"status":"ok"}`)
		return "", routeHealth
	case "/readyz":
		s.readyz(ctx)
		return "", routeHealth
	}
	if s.cfg.Metrics.Listen == "" && *s.cfg.Metrics.Enabled && s.serveMetrics(ctx, path) {
		return "", routeMetrics
	}
	if s.ui != nil && ui.Wants(ctx) {
		s.serveUI(ctx)
		return "", routeUI
	}
	f, prefix, rest := s.feedOf(path)
	if name, ok := strings.CutPrefix(rest, oidcExchangePath); ok {
		// Before authentication: its Bearer credential is an ID token.
		asked := ""
		if prefix != "" {
			asked = f.Name
		}
		return s.serveOIDCExchange(ctx, asked, name), routeAPI
	}
	if f == nil {
		s.fail(ctx, refused(errNoSuch, fmt.Sprintf("no feed at %s", path)))
		return "", routeOther
	}
	r, err := ParsePath(rest)
	if err != nil {
		s.fail(ctx, err)
		return f.Name, routeOther
	}
	if r.Kind == KindPing {
		writeJSON(ctx, fasthttp.StatusOK, `{}`)
		return f.Name, routePing
	}
	p, err := s.authenticate(ctx)
	if err != nil {
		s.fail(ctx, authFailure(err))
		return f.Name, routeOther
	}
	switch {
	case r.Kind == KindAPI:
		s.dispatchAPI(ctx, f, r, p)
		return f.Name, routeAPI
	case !ctx.IsGet() && !ctx.IsHead() && r.Kind != KindNotFound && r.Kind != KindVersion:
		s.dispatchWrite(ctx, f, prefix, r, p)
		return f.Name, routeWrite
	}
	return f.Name, s.dispatchRead(ctx, f, prefix, path, r, p)
}

// dispatchAPI answers the registry's /-/ API: audits, search, keys and
// attestations, dist-tags, and the account endpoints (login, whoami,
// tokens, users).
func (s *Server) dispatchAPI(ctx *fasthttp.RequestCtx, f *feed.Feed, r Route, p *auth.Principal) {
	if s.serveRegistryAPI(ctx, f, r.API, p) {
		return
	}
	write := !ctx.IsGet() && !ctx.IsHead()
	if rest, ok := strings.CutPrefix(r.API, "/package/"); ok && strings.Contains(rest, "/dist-tags") {
		if write {
			// A dist-tag change needs the publish right; check it
			// before the body is read (serveDistTags checks again).
			if err := f.Access.Load().Check(p, auth.Publish); err != nil {
				s.fail(ctx, authFailure(err))
				return
			}
		}
		s.withBody(ctx, write, smallBodyLimit, smallBodyHint, func() { s.serveDistTags(ctx, f, rest, p) })
		return
	}
	// Login is anonymous by nature: its small limit is all that bounds
	// what a stranger can send.
	s.withBody(ctx, write, smallBodyLimit, smallBodyHint, func() { s.serveAPI(ctx, f, r.API, p) })
}

// dispatchWrite answers a write to a package (publish, unpublish,
// deprecate, owner, star). The feed's publish right is checked from the
// headers, before the body is read; serveWrite checks it again, and what
// needs the document (the maintainers of a package) after the read.
func (s *Server) dispatchWrite(ctx *fasthttp.RequestCtx, f *feed.Feed, prefix string, r Route, p *auth.Principal) {
	limit, hint := s.publishBodyLimit(), publishBodyHint
	if ctx.IsDelete() {
		limit, hint = smallBodyLimit, smallBodyHint
	}
	if err := f.Access.Load().Check(p, auth.Publish); err != nil {
		// npm star is a PUT of the document that needs no publish
		// right: a signed-in caller's PUT may be one, within a star's
		// size (serveWrite tells).
		star := ctx.IsPut() && r.Kind == KindPackument && p != nil
		if !star || ctx.Request.Header.ContentLength() > maxStarBody {
			s.fail(ctx, authFailure(err))
			return
		}
		limit, hint = maxStarBody, "npm star without the publish right"
	} else if err := s.writeLimits(ctx, f, p, writeAction(ctx), r.Name); err != nil {
		s.fail(ctx, authFailure(err))
		return
	}
	s.withBody(ctx, true, limit, hint, func() { s.serveWrite(ctx, f, prefix, r, p) })
}

// writeLimits checks a write allowed by the feed against the user's
// second factor (npm-otp) and the limits of the token it came with
// (packages, uses). The code is checked first, so a write refused for it
// spends no use of the token.
func (s *Server) writeLimits(ctx *fasthttp.RequestCtx, f *feed.Feed, p *auth.Principal, action, pkg string) error {
	require := false
	if fc := s.cfg.Feeds[f.Name]; fc != nil {
		require = fc.Require2FA
	}
	if err := s.auth.CheckOTP(p, string(ctx.Request.Header.Peek("npm-otp")), s.missClient(ctx), require); err != nil {
		return err
	}
	return s.auth.UseForWrite(p, action, pkg)
}

// writeAction names a write as a token limit refusing it says it.
func writeAction(ctx *fasthttp.RequestCtx) string {
	if ctx.IsDelete() {
		return "unpublish"
	}
	return "publish"
}

// withBody reads the request's body within limit when read says so, and
// runs serve with it; a body too large or too slow was answered already.
func (s *Server) withBody(ctx *fasthttp.RequestCtx, read bool, limit int64, hint string, serve func()) {
	if read {
		ok, held := s.readBody(ctx, limit, hint)
		if !ok {
			return
		}
		if held {
			defer s.largeBodies.Release(1)
		}
	}
	serve()
}

// dispatchRead answers packuments, versions and tarballs, which are all
// reads: a tarball is protected exactly like its packument.
func (s *Server) dispatchRead(ctx *fasthttp.RequestCtx, f *feed.Feed, prefix, path string, r Route, p *auth.Principal) string {
	if err := f.Access.Load().Check(p, auth.Read); err != nil {
		s.fail(ctx, authFailure(err))
		return routeOther
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		if r.Kind == KindNotFound {
			s.fail(ctx, refused(errNoSuch, "not found: "+string(ctx.Method())+" "+path))
			return routeOther
		}
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		s.fail(ctx, refused(errMethod, fmt.Sprintf("%s is not supported here", ctx.Method())))
		return routeOther
	}
	switch r.Kind {
	case KindPackument:
		if ctx.QueryArgs().Has("write") {
			s.serveWriteDocument(ctx, f, prefix, r)
		} else {
			s.servePackument(ctx, f, prefix, r)
		}
		return routePackument
	case KindVersion:
		s.serveVersion(ctx, f, prefix, r)
		return routeVersion
	case KindTarball:
		s.serveTarball(ctx, f, r)
		return routeTarball
	}
	s.fail(ctx, refused(errNoSuch, "not found: "+path))
	return routeOther
}

// requestPath is the raw (still percent-encoded) path of the request,
// without its query. Routing on the raw form is what keeps "%2f" apart
// from "/".
func requestPath(ctx *fasthttp.RequestCtx) string {
	uri := ctx.Request.Header.RequestURI()
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	if len(uri) > 0 && uri[0] != '/' { // absolute-form request target
		if u := bytes.Index(uri, []byte("://")); u >= 0 {
			rest := uri[u+3:]
			if j := bytes.IndexByte(rest, '/'); j >= 0 {
				uri = rest[j:]
			} else {
				uri = []byte("/")
			}
		}
	}
	return string(uri)
}

// feedOf finds the feed a path belongs to: /npm/{feed}/... for a
// configured feed, anything else for the default feed at /.
func (s *Server) feedOf(p string) (f *feed.Feed, prefix, rest string) {
	if strings.HasPrefix(p, "/npm/") {
		name, tail, _ := strings.Cut(p[len("/npm/"):], "/")
		if fd, ok := s.feeds[name]; ok {
			return fd, "/npm/" + name, "/" + tail
		}
	}
	return s.def, "", p
}
