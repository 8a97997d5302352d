// Package proxy is npmgate's HTTP front end: it routes npm requests to
// feeds, serves rendered documents from the memory tier and tarballs from
// the disk tier, and fills both from upstream connectors.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"golang.org/x/sync/semaphore"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/policy"
	"github.com/npmgate/npmgate/trustpub"
	"github.com/npmgate/npmgate/ui"
)

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
	// bucket, when replicas share one, is where tarballs live for all
	// of them; disk is then this replica's cache of it. Only the wiring
	// and readiness look at it: requests go through blobs.
	bucket cache.Store
	// blobs holds tarballs (cache.Local, or cache.Tiered with a bucket).
	blobs cache.Blobs
	// packages holds what was published to the feeds.
	packages feed.Packages
	// sharedState is nil on one machine (the data directory holds all).
	sharedState *replicas
	fills       *cache.Fills
	auth        *auth.Service
	metrics     *metrics
	bases       baseCache
	prefetch    feed.Prefetches
	// feedDeps is what the feeds are built from (see feedDeps).
	feedDeps *feed.Deps
	feeds    map[string]*feed.Feed
	stop     context.CancelFunc
	// lifetime ends at Close; every request's context is below it.
	lifetime    context.Context
	endLifetime context.CancelFunc
	def         *feed.Feed
	http        *fasthttp.Server

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
	// metricsAccess is metrics.access compiled.
	metricsAccess auth.Rule
	// oidc verifies the ID tokens of trusted publishing; publishers are
	// those their claims are matched against (publishing.trusted).
	oidc       *trustpub.Verifier
	publishers atomic.Pointer[[]trustpub.Publisher]
	// osv is osv.source's database, nil when none is configured.
	osv *advisoryDB
	// ui is the web UI (proxy/ui.go).
	ui *ui.UI
}

type readyState struct {
	at  time.Time
	err error
}

// Reload applies a new configuration's rules to the running server:
// filters and access lists. Everything else (listen address, data
// directory, feeds and connectors themselves) needs a restart; such a
// change is refused whole, and the old rules stay. So is a file whose
// rules do not compile, with the error that names its line.
func (s *Server) Reload(cfg *config.Config) error {
	rules, err := policy.Compile(cfg)
	if err != nil {
		return err
	}
	if len(cfg.Feeds) != len(s.feeds) {
		return errors.New("feeds were added or removed: restart npmgate to apply that")
	}
	if cfg.Signing != s.cfg.Signing {
		return errors.New("signing changed: restart npmgate to sign with the new key")
	}
	if cfg.OSV != s.cfg.OSV {
		// The database is loaded and refreshed by what New built.
		return errors.New("osv changed: restart npmgate to apply that")
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
	if !slices.Equal(cfg.Publishing.Issuers, s.cfg.Publishing.Issuers) {
		// The verifier holds their keys and the tokens already used.
		return errors.New("publishing.issuers changed: restart npmgate to apply that")
	}
	for name, f := range s.feeds {
		f.SetRules(rules.Feeds[name])
	}
	s.publishers.Store(&rules.Trusted)
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

// Close releases the caches. Call it after Shutdown. With replicas, it
// first lets the writes to the bucket under way land (for at most
// flushTimeout): snapshots written in the background, and tarballs being
// shared.
func (s *Server) Close() {
	s.stop()
	s.endLifetime()
	s.flushShared()
	s.mem.Close()
	s.disk.Close()
	if s.sharedState != nil {
		s.sharedState.db.Close()
	}
}

// flushTimeout bounds how long Close waits for the bucket.
const flushTimeout = 30 * time.Second

func (s *Server) flushShared() {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	var wg sync.WaitGroup
	if a, ok := s.snapshots.(*cache.AsyncStore); ok {
		wg.Go(a.Flush)
	}
	if t, ok := s.blobs.(*cache.Tiered); ok {
		wg.Go(func() { _ = t.Flush(ctx) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("shutdown: writes to the shared bucket still under way were left; other replicas will fetch what they miss")
	}
}

// Handle is the fasthttp handler.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	ctx.Response.Header.SetCanonical(headerNosniff, valueNosniff)
	rc := s.beginRequest(ctx)
	defer rc.end()
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

// MetricsHandler serves /metrics (and pprof when enabled) on a separate
// listener (metrics.listen).
func (s *Server) MetricsHandler(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetCanonical(headerNosniff, valueNosniff)
	if !s.serveMetrics(ctx, requestPath(ctx)) {
		s.fail(ctx, refused(errNoSuch, "not found"))
	}
}

// X-Content-Type-Options: nosniff goes on every answer, so that no
// browser ever runs a package file or an error body as a page or script.
var (
	headerNosniff = []byte("X-Content-Type-Options")
	valueNosniff  = []byte("nosniff")
)

func writeJSON(ctx *fasthttp.RequestCtx, status int, body string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(body)
}

func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	if s.shuttingDown.Load() {
		s.fail(ctx, refused(errNotReady, "shutting down"))
		return
	}
	st := s.ready.Load()
	if st == nil || time.Since(st.at) > time.Second {
		st = &readyState{at: time.Now(), err: s.checkReady()}
		s.ready.Store(st)
	}
	if st.err != nil {
		s.fail(ctx, refused(errNotReady, st.err.Error()))
		return
	}
	if body := s.readyDetail(); body != "" {
		writeJSON(ctx, fasthttp.StatusOK, body)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, `{"status":"ready"}`)
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
