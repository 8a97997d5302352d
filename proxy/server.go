// Package proxy is npmgate's HTTP front end: it routes npm requests to
// feeds, serves rendered documents from the memory tier and tarballs from
// the disk tier, and fills both from upstream connectors.
package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/filter"
	"github.com/npmgate/npmgate/proxy/upstream"
)

// detached is what handlers wait on, rather than the fasthttp RequestCtx:
// its Done fires as soon as a graceful shutdown starts, which would fail the
// very requests shutdown lets finish. Every wait is bounded by the deadline
// of the work it waits for (see shared).
var detached = context.Background()

// Version is npmgate's version, set by the build.
var Version = "dev"

// Server is the front end and everything it serves from.
type Server struct {
	cfg  *config.Config
	log  *slog.Logger
	mem  *cache.Memory
	disk *cache.Disk
	// snapshots holds upstream documents: the disk, or the shared bucket.
	snapshots cache.Store
	// shared, when replicas share a bucket, is where tarballs live for
	// all of them; disk is then this replica's cache of it.
	shared cache.Store
	// packages holds what was published to the feeds.
	packages Packages
	// sharedState is nil on one machine (the data directory holds all).
	sharedState *sharedState
	fills       *cache.Fills
	// snapWrites holds snapshots on their way to the bucket (see
	// feed.readSnapshot).
	snapWrites sync.Map
	auth       *auth.Service
	metrics    *metrics
	bases      baseCache
	prefetch   prefetches
	feeds      map[string]*feed
	stop       context.CancelFunc
	def        *feed
	// flight makes concurrent misses of one key share one computation.
	flight singleflight.Group
	http   *fasthttp.Server

	shuttingDown atomic.Bool
	ready        atomic.Pointer[readyState]
	tls          bool
	// canon maps each feed mount's prefix to the one base URL its
	// documents are rendered for (see canonicalBase).
	canon atomic.Pointer[map[string]string]
	// misses bounds lookups of unknown names (cache.miss_limit).
	misses *misses
	// largeBodies bounds how many large request bodies are held at once
	// (publish.large_bodies).
	largeBodies *semaphore.Weighted
}

type readyState struct {
	at  time.Time
	err error
}

// New builds a server from a validated configuration.
func New(cfg *config.Config, log *slog.Logger) (*Server, error) {
	disk, err := cache.OpenDisk(cfg.Data)
	if err != nil {
		return nil, err
	}
	mem, err := cache.NewMemory(int64(cfg.Cache.Memory))
	if err != nil {
		disk.Close()
		return nil, err
	}
	if dir, ok := disk.SpillDir(); ok {
		mem.SpillTo(dir, spillMin)
	}
	s := &Server{cfg: cfg, log: log, mem: mem, disk: disk, snapshots: disk, packages: &diskPackages{disk: disk}, feeds: map[string]*feed{}, stop: func() {}}
	s.metrics = newMetrics(s)
	s.largeBodies = semaphore.NewWeighted(int64(max(cfg.Publish.LargeBodies, 1)))
	authOpts := auth.Options{
		UsersFile: cfg.UsersFile(), TokensFile: cfg.TokensFile(),
		Groups: cfg.Auth.Groups, AllowSignup: cfg.Auth.AllowSignup,
	}
	if s.sharedState, err = openShared(context.Background(), cfg); err != nil {
		s.Close()
		return nil, err
	}
	if sh := s.sharedState; sh != nil {
		s.shared, s.snapshots, s.packages = sh.bucket, sh.bucket, sh.db.Packages()
		authOpts.Users, authOpts.Tokens = sh.db.Users(), sh.db.Tokens()
	}
	s.auth, err = auth.New(authOpts)
	if err != nil {
		s.Close()
		return nil, err
	}
	var tarballTimeout time.Duration
	clients := map[string]*upstream.Client{}
	for name, c := range cfg.Connectors {
		cl, err := upstream.New(upstream.Options{
			Name: name, BaseURL: c.URL, Token: c.Token, CAFile: c.CAFile,
			Timeout: c.Timeout.D(), Retries: *c.Retries,
			UserAgent: "npmgate/" + Version,
			Observe:   s.metrics.upstreamObserver(name),
		})
		if err != nil {
			s.Close()
			return nil, err
		}
		clients[name] = cl
		tarballTimeout = max(tarballTimeout, c.TarballTimeout.D())
	}
	s.fills = cache.NewFills(disk, max(tarballTimeout, time.Minute))
	for name, fc := range cfg.Feeds {
		f := &feed{name: name, s: s, ownedScopes: fc.OwnedScopes, mergeNames: fc.Merge, ownedNames: fc.OwnedNames}
		for _, cn := range fc.Connectors {
			f.connectors = append(f.connectors, &connector{name: cn, client: clients[cn], cfg: cfg.Connectors[cn]})
		}
		f.setRules(cfg, fc)
		switch {
		case fc.Audit == "off":
		case fc.Audit == "" && len(f.connectors) > 0:
			f.audit = &auditTarget{client: f.connectors[0].client, base: f.connectors[0].client.BaseURL()}
		case cfg.Connectors[fc.Audit] != nil:
			f.audit = &auditTarget{client: clients[fc.Audit], base: cfg.Connectors[fc.Audit].URL}
		case fc.Audit != "":
			cl, err := upstream.New(upstream.Options{Name: "audit", BaseURL: fc.Audit, Timeout: 30 * time.Second, UserAgent: "npmgate/" + Version})
			if err != nil {
				s.Close()
				return nil, err
			}
			f.audit = &auditTarget{client: cl, base: fc.Audit}
		}
		s.feeds[name] = f
		if name == cfg.DefaultFeed {
			s.def = f
		}
	}
	s.http = &fasthttp.Server{
		Handler:            s.Handle,
		Name:               "npmgate",
		ReadBufferSize:     16 << 10,
		ReadTimeout:        2 * time.Minute,
		WriteTimeout:       10 * time.Minute,
		IdleTimeout:        2 * time.Minute,
		MaxRequestBodySize: streamThreshold,
		ErrorHandler:       requestError,
		// Bodies reach the handler as streams, read by the route once the
		// caller passed its checks, within the route's limit (readBody).
		StreamRequestBody:     true,
		NoDefaultContentType:  true,
		NoDefaultServerHeader: false,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{log},

		// fasthttp would read a multipart body (to memory and temporary
		// files) before the handler runs; npm sends none.
		DisablePreParseMultipartForm: true,
		// fasthttp's errors would otherwise quote the request's raw
		// headers, credentials included, in the log.
		SecureErrorLogMessage: true,
	}
	s.setCanonical(cfg.Listen)
	s.misses = newMisses(cfg.Cache.MissLimit)
	return s, nil
}

// setRules installs a feed's access lists and filters from a validated
// configuration; requests in flight keep the rules they started with.
func (f *feed) setRules(cfg *config.Config, fc *config.Feed) {
	a := &auth.FeedAccess{Feed: f.name}
	a.Read, _ = auth.CompileRule(fc.Access.Read) // validated with the config
	a.Publish, _ = auth.CompileRule(fc.Access.Publish)
	a.Admin, _ = auth.CompileRule(fc.Access.Admin)
	f.access.Store(a)
	var perConn []*filter.Policy
	for _, cn := range fc.Connectors {
		perConn = append(perConn, cfg.Connectors[cn].Policy)
	}
	f.pol.Store(newFeedPolicy(fc.Policy, perConn))
}

// Reload applies a new configuration's rules to the running server:
// filters and access lists. Everything else (listen address, data
// directory, feeds and connectors themselves) needs a restart; such a
// change is refused whole, and the old rules stay.
func (s *Server) Reload(cfg *config.Config) error {
	if len(cfg.Feeds) != len(s.feeds) {
		return errors.New("feeds were added or removed: restart npmgate to apply that")
	}
	for name := range s.feeds {
		fc := cfg.Feeds[name]
		if fc == nil || !slices.Equal(fc.Connectors, s.cfg.Feeds[name].Connectors) {
			return fmt.Errorf("feed %q or its connectors changed: restart npmgate to apply that", name)
		}
		if !slices.Equal(fc.OwnedNames, s.cfg.Feeds[name].OwnedNames) || !slices.Equal(fc.OwnedScopes, s.cfg.Feeds[name].OwnedScopes) {
			// Which names are the feed's alone decides what was asked
			// upstream and cached: a restart starts from a clean memory.
			return fmt.Errorf("feeds.%s.owned_names or owned_scopes changed: restart npmgate to apply that", name)
		}
		for _, cn := range fc.Connectors {
			if !sameConnector(cfg.Connectors[cn], s.cfg.Connectors[cn]) {
				return fmt.Errorf("connector %q changed: restart npmgate to apply that", cn)
			}
		}
	}
	for name, f := range s.feeds {
		f.setRules(cfg, cfg.Feeds[name])
	}
	return nil
}

// sameConnector compares what a reload cannot change.
func sameConnector(a, b *config.Connector) bool {
	return a.URL == b.URL && a.Token == b.Token && a.CAFile == b.CAFile && a.Timeout == b.Timeout &&
		a.MaxTarballSize == b.MaxTarballSize // read from the running connector's configuration
}

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.setCanonical(ln.Addr().String())
	return s.http.Serve(ln)
}

// ServeTLS answers HTTPS requests on ln.
func (s *Server) ServeTLS(ln net.Listener, certFile, keyFile string) error {
	s.tls = true
	s.setCanonical(ln.Addr().String())
	return s.http.ServeTLS(ln, certFile, keyFile)
}

// Shutdown stops accepting connections and waits for requests in flight,
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shuttingDown.Store(true)
	return s.http.ShutdownWithContext(ctx)
}

// Close releases the caches. Call it after Shutdown.
func (s *Server) Close() {
	s.stop()
	s.mem.Close()
	s.disk.Close()
	if s.sharedState != nil {
		s.sharedState.db.Close()
	}
}

// Handle is the fasthttp handler.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	ctx.Response.Header.SetCanonical(headerNosniff, valueNosniff)
	feed, route := s.dispatch(ctx)
	if ctx.Response.IsBodyStream() {
		if tb, ok := ctx.Response.BodyStream().(transferBody); ok {
			// Counted and logged when fasthttp has sent the body (or
			// failed to); the duration stays the handler's.
			t := tb.transferState()
			t.s, t.ctx, t.feed, t.route, t.took = s, ctx, feed, route, time.Since(start)
			return
		}
	}
	s.record(ctx, time.Since(start), feed, route, nil)
}

// statusAborted is the metrics' status of a transfer that failed after
// its status line was sent (nginx's "client closed request").
const statusAborted = 499

// record counts and logs a finished request; t is its body's transfer,
// when it was streamed.
func (s *Server) record(ctx *fasthttp.RequestCtx, took time.Duration, feed, route string, t *transfer) {
	if s.metrics != nil && route != "metrics" {
		status, bytes := ctx.Response.StatusCode(), responseBytes(ctx)
		if t != nil {
			bytes = int(t.n)
			if t.err != nil {
				status = statusAborted
			}
		}
		s.metrics.observe(feed, route, methodLabel(ctx), status, bytes, took)
	}
	if *s.cfg.Log.Access && route != "health" && route != "metrics" {
		s.accessLog(ctx, took, feed, route, t)
	}
}

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
	f, prefix, rest := s.feedOf(path)
	if f == nil {
		writeError(ctx, fasthttp.StatusNotFound, fmt.Sprintf("no feed at %s", path))
		return "", routeOther
	}
	r, err := ParsePath(rest)
	if err != nil {
		writeError(ctx, statusOf(err), err.Error())
		return f.name, routeOther
	}
	if r.Kind == KindPing {
		writeJSON(ctx, fasthttp.StatusOK, `{}`)
		return f.name, routePing
	}
	p, err := s.authenticate(ctx)
	if err != nil {
		s.failAuth(ctx, err)
		return f.name, routeOther
	}
	if r.Kind == KindAPI {
		if s.serveRegistryAPI(ctx, f, r.API, p) {
			return f.name, routeAPI
		}
		if rest, ok := strings.CutPrefix(r.API, "/package/"); ok && strings.Contains(rest, "/dist-tags") {
			if !ctx.IsGet() && !ctx.IsHead() {
				// A dist-tag change needs the publish right; check it
				// before the body is read (serveDistTags checks again).
				if err := f.access.Load().Check(p, auth.Publish); err != nil {
					s.failAuth(ctx, err)
					return f.name, routeAPI
				}
				ok, held := s.readBody(ctx, smallBodyLimit, smallBodyHint)
				if !ok {
					return f.name, routeAPI
				}
				if held {
					defer s.largeBodies.Release(1)
				}
			}
			s.serveDistTags(ctx, f, rest, p)
			return f.name, routeAPI
		}
		if !ctx.IsGet() && !ctx.IsHead() {
			// Login is anonymous by nature: its small limit is all that
			// bounds what a stranger can send.
			ok, held := s.readBody(ctx, smallBodyLimit, smallBodyHint)
			if !ok {
				return f.name, routeAPI
			}
			if held {
				defer s.largeBodies.Release(1)
			}
		}
		s.serveAPI(ctx, f, r.API, p)
		return f.name, routeAPI
	}
	if !ctx.IsGet() && !ctx.IsHead() && r.Kind != KindNotFound && r.Kind != KindVersion {
		// The feed's publish right is checked from the headers, before
		// the body is read; serveWrite checks it again, and what needs
		// the document (the maintainers of a package) after the read.
		limit, hint := s.publishBodyLimit(), publishBodyHint
		if ctx.IsDelete() {
			limit, hint = smallBodyLimit, smallBodyHint
		}
		if err := f.access.Load().Check(p, auth.Publish); err != nil {
			// npm star is a PUT of the document that needs no publish
			// right: a signed-in caller's PUT may be one, within a
			// star's size (serveWrite tells).
			star := ctx.IsPut() && r.Kind == KindPackument && p != nil
			if !star || ctx.Request.Header.ContentLength() > maxStarBody {
				s.failAuth(ctx, err)
				return f.name, routeWrite
			}
			limit, hint = maxStarBody, "npm star without the publish right"
		}
		ok, held := s.readBody(ctx, limit, hint)
		if !ok {
			return f.name, routeWrite
		}
		if held {
			defer s.largeBodies.Release(1)
		}
		s.serveWrite(ctx, f, prefix, r, p)
		return f.name, routeWrite
	}
	// Packuments, versions and tarballs are all reads: a tarball is
	// protected exactly like its packument.
	if err := f.access.Load().Check(p, auth.Read); err != nil {
		s.failAuth(ctx, err)
		return f.name, routeOther
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		if r.Kind == KindNotFound {
			writeError(ctx, fasthttp.StatusNotFound, "not found: "+string(ctx.Method())+" "+path)
			return f.name, routeOther
		}
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		writeError(ctx, fasthttp.StatusMethodNotAllowed, fmt.Sprintf("%s is not supported here", ctx.Method()))
		return f.name, routeOther
	}
	switch r.Kind {
	case KindPackument:
		if ctx.QueryArgs().Has("write") {
			s.serveWriteDocument(ctx, f, prefix, r)
			return f.name, routePackument
		}
		s.servePackument(ctx, f, prefix, r)
		return f.name, routePackument
	case KindVersion:
		s.serveVersion(ctx, f, prefix, r)
		return f.name, routeVersion
	case KindTarball:
		s.serveTarball(ctx, f, r)
		return f.name, routeTarball
	}
	writeError(ctx, fasthttp.StatusNotFound, "not found: "+path)
	return f.name, routeOther
}

// MetricsHandler serves /metrics (and pprof when enabled) on a separate
// listener (metrics.listen).
func (s *Server) MetricsHandler(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetCanonical(headerNosniff, valueNosniff)
	if !s.serveMetrics(ctx, requestPath(ctx)) {
		writeError(ctx, fasthttp.StatusNotFound, "not found")
	}
}

// Request body limits. Each route reads its body only after the caller
// passed its checks, and never past the route's limit.
const (
	// smallBodyLimit bounds the bodies of login, tokens, dist-tags and
	// deletes: a few hundred bytes in practice.
	smallBodyLimit = 1 << 20
	smallBodyHint  = "this request"
	// largeBody: a body declared over this, or sent without a length,
	// takes one of the large-body slots (publish.large_bodies) while
	// npmgate holds it.
	largeBody = 1 << 20
	// largeBodyWait bounds how long a large body waits for a slot
	// before it is answered 503.
	largeBodyWait = 10 * time.Second
	// streamThreshold: fasthttp itself buffers no more of a body than
	// this; the rest is read by the route that accepted it.
	streamThreshold = 64 << 10
	publishBodyHint = "a publish (see publish.max_size)"
)

// publishBodyLimit is the largest publish body: base64 of the largest
// tarball, and the document.
func (s *Server) publishBodyLimit() int64 {
	return int64(s.cfg.Publish.MaxSize)/3*4 + 4<<20
}

// readBody reads a request body within limit, counting it as it arrives
// (a chunked body has no length to check first). A large body holds one
// of the large-body slots: held says so, and the caller releases it once
// done with the body. On false the answer is written (and no slot held).
func (s *Server) readBody(ctx *fasthttp.RequestCtx, limit int64, hint string) (ok, held bool) {
	if !ctx.Request.IsBodyStream() {
		return len(ctx.Request.Body()) <= int(limit) || tooLarge(ctx, limit, hint), false
	}
	n := int64(ctx.Request.Header.ContentLength()) // -1: chunked
	if n > limit {
		return tooLarge(ctx, limit, hint), false
	}
	// A route whose limit is small needs no slot: the limit bounds it.
	if limit > largeBody && (n < 0 || n > largeBody) {
		if !s.acquireLarge(ctx) {
			return false, false
		}
		held = true
	}
	buf := bytes.NewBuffer(make([]byte, 0, max(n, 0)+1))
	_, err := buf.ReadFrom(io.LimitReader(ctx.RequestBodyStream(), limit+1))
	switch {
	case err != nil:
		writeError(ctx, fasthttp.StatusBadRequest, "cannot read the request body: "+err.Error())
	case int64(buf.Len()) > limit:
		tooLarge(ctx, limit, hint)
	default:
		ctx.Request.SetBodyRaw(buf.Bytes())
		return true, held
	}
	if held {
		s.largeBodies.Release(1)
	}
	return false, false
}

// acquireLarge takes a large-body slot, waiting a bounded time; without
// one the answer is a 503 npm retries.
func (s *Server) acquireLarge(ctx *fasthttp.RequestCtx) bool {
	if s.largeBodies.TryAcquire(1) {
		return true
	}
	wctx, cancel := context.WithTimeout(detached, largeBodyWait)
	defer cancel()
	if s.largeBodies.Acquire(wctx, 1) == nil {
		return true
	}
	ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "10")
	ctx.SetConnectionClose()
	writeError(ctx, fasthttp.StatusServiceUnavailable, fmt.Sprintf("npmgate is already receiving as many large request bodies as publish.large_bodies allows (%d); try again shortly", s.cfg.Publish.LargeBodies))
	return false
}

// tooLarge answers a body over the limit; it reports false, for readBody.
// The client is still sending it: reading (and dropping) a bounded amount
// lets it receive the answer instead of a reset connection; past that the
// connection is closed. Only a caller that passed authentication gets
// here: a stranger's body is refused from its headers.
func tooLarge(ctx *fasthttp.RequestCtx, limit int64, hint string) bool {
	if ctx.Request.IsBodyStream() {
		io.Copy(io.Discard, io.LimitReader(ctx.RequestBodyStream(), 4*limit))
	}
	ctx.SetConnectionClose()
	writeError(ctx, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than this registry accepts for %s (%d bytes)", hint, limit))
	return false
}

// requestError answers requests fasthttp could not read, in npm's shape.
// fasthttp's error carries the raw header buffer (an Authorization
// header with it): the answer names the problem, never the bytes.
func requestError(ctx *fasthttp.RequestCtx, err error) {
	ctx.Response.Header.SetCanonical(headerNosniff, valueNosniff)
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, "the request body is larger than this registry accepts (publish.max_size)")
	case errors.As(err, &small):
		writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, "the request's headers are larger than this registry accepts (16 KiB); check the client's configuration for oversized headers")
	case errors.As(err, &netErr) && netErr.Timeout():
		writeError(ctx, fasthttp.StatusRequestTimeout, "the request was not received in time")
	default:
		writeError(ctx, fasthttp.StatusBadRequest, "cannot parse the request: a header or the request line is malformed (control characters or line breaks in a header value, say)")
	}
}

// X-Content-Type-Options: nosniff goes on every answer, so that no
// browser ever runs a package file or an error body as a page or script.
var (
	headerNosniff = []byte("X-Content-Type-Options")
	valueNosniff  = []byte("nosniff")
)

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
func (s *Server) feedOf(p string) (f *feed, prefix, rest string) {
	if strings.HasPrefix(p, "/npm/") {
		name, tail, _ := strings.Cut(p[len("/npm/"):], "/")
		if fd, ok := s.feeds[name]; ok {
			return fd, "/npm/" + name, "/" + tail
		}
	}
	return s.def, "", p
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, body string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(body)
}

func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	if s.shuttingDown.Load() {
		writeError(ctx, fasthttp.StatusServiceUnavailable, "shutting down")
		return
	}
	st := s.ready.Load()
	if st == nil || time.Since(st.at) > time.Second {
		st = &readyState{at: time.Now(), err: s.checkReady()}
		s.ready.Store(st)
	}
	if st.err != nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, st.err.Error())
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, `{"status":"ready"}`)
}

// baseURL is the public URL of the feed mount a client used, with no
// trailing slash; rewritten tarball URLs start with it. The configured
// public_url wins. Otherwise the request's Host is used, after
// validation, and X-Forwarded-Proto/-Host only from a trusted proxy.
func (s *Server) baseURL(ctx *fasthttp.RequestCtx, prefix string) (string, error) {
	if s.cfg.PublicURL != "" {
		return s.canonicalBase(prefix), nil
	}
	scheme := "http"
	if s.tls || ctx.IsTLS() {
		scheme = "https"
	}
	host := b2s(ctx.Host())
	if s.cfg.TrustForwardedHeaders && s.trustedPeer(ctx) {
		if v := string(ctx.Request.Header.Peek("X-Forwarded-Proto")); v == "http" || v == "https" {
			scheme = v
		}
		if v := ctx.Request.Header.Peek("X-Forwarded-Host"); len(v) > 0 {
			if h, err := checkHost(string(v)); err == nil {
				host = h
			}
		}
	}
	return s.bases.get(scheme, host, prefix)
}

// canonicalBase is the base URL documents of the feed mounted at prefix
// are rendered (and stored, gzipped and spilled) for: public_url when it
// is set, else the address npmgate listens on. It is never taken from a
// request, so the number of renders of a document does not depend on what
// Host headers clients send; a request with another base gets the
// rendered bytes with its base spliced in (see servePackument).
func (s *Server) canonicalBase(prefix string) string {
	return (*s.canon.Load())[prefix]
}

// setCanonical fills canon for the listen address addr: the configured
// host name (or, for an unspecified one, the loopback address) with the
// port actually listened on.
func (s *Server) setCanonical(addr string) {
	root := s.cfg.PublicURL
	if root == "" {
		scheme := "http"
		if s.tls || s.cfg.TLS.Cert != "" {
			scheme = "https"
		}
		host, _, _ := net.SplitHostPort(s.cfg.Listen)
		ahost, port, err := net.SplitHostPort(addr)
		if err != nil {
			ahost, port = "127.0.0.1", "4873"
		}
		if host == "" {
			host = ahost
		}
		if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
			host = "127.0.0.1"
			if a.Is6() {
				host = "::1"
			}
		}
		h, err := checkHost(net.JoinHostPort(host, port))
		if err != nil {
			h = net.JoinHostPort("127.0.0.1", port)
		}
		root = scheme + "://" + h
	}
	m := map[string]string{"": root}
	for name := range s.feeds {
		m["/npm/"+name] = root + "/npm/" + name
	}
	s.canon.Store(&m)
}

// baseCache remembers the public base URL built from a validated Host
// header, so the common case costs a map lookup rather than a
// validation and three allocations per request. It is bounded: past its
// size, URLs are built per request.
type baseCache struct {
	mu sync.RWMutex
	m  map[baseKey]string
}

type baseKey struct{ scheme, host, prefix string }

const baseCacheSize = 256

func (c *baseCache) get(scheme, host, prefix string) (string, error) {
	key := baseKey{scheme, host, prefix} // host may alias request bytes: cloned before it is kept
	c.mu.RLock()
	base, ok := c.m[key]
	c.mu.RUnlock()
	if ok {
		return base, nil
	}
	h, err := checkHost(host)
	if err != nil {
		return "", err
	}
	base = scheme + "://" + h + prefix
	c.mu.Lock()
	if c.m == nil {
		c.m = map[baseKey]string{}
	}
	if len(c.m) < baseCacheSize {
		key.host = strings.Clone(host)
		c.m[key] = base
	}
	c.mu.Unlock()
	return base, nil
}

func (s *Server) trustedPeer(ctx *fasthttp.RequestCtx) bool {
	ip, ok := netip.AddrFromSlice(ctx.RemoteIP())
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.cfg.TrustedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

var errBadHost = errors.New("bad Host header")

// checkHost accepts a host name or IP literal with an optional port, and
// nothing else: no user info, path, list, or stray characters that could
// smuggle another host into a URL.
func checkHost(h string) (string, error) {
	host, port := h, ""
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		host, port = h[:i], h[i+1:]
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		if a, err := netip.ParseAddr(host[1 : len(host)-1]); err != nil || !a.Is6() {
			return "", badHost(h)
		}
	} else if !validHostname(host) {
		return "", badHost(h)
	}
	if port == "" {
		if strings.HasSuffix(h, ":") {
			return "", badHost(h)
		}
		return strings.ToLower(host), nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '-' {
		return "", badHost(h)
	}
	return strings.ToLower(host) + ":" + port, nil
}

// badHost builds the error only on the failure path: checkHost runs on
// every request.
func badHost(h string) error { return fmt.Errorf("%w: %q", errBadHost, h) }

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

type fasthttpLogger struct{ log *slog.Logger }

// Printf logs a fasthttp message. Its errors quote the bytes of a
// request it could not parse (an Authorization header with them), even
// with SecureErrorLogMessage: only the text before the first quote is
// kept, which says what was wrong, not with what.
func (l fasthttpLogger) Printf(format string, args ...any) {
	for i, a := range args {
		if err, ok := a.(error); ok {
			msg, _, cut := strings.Cut(err.Error(), `"`)
			if cut {
				msg += "[request bytes withheld]"
			}
			args[i] = msg
		}
	}
	l.log.Debug(fmt.Sprintf(format, args...))
}

// b2s views bytes as a string without copying, for lookups that do not
// keep the string.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// s2b views a string as bytes without copying; the bytes must not be
// modified (fasthttp copies header values it is given).
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
