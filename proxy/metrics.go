package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
	"github.com/valyala/fasthttp/pprofhandler"

	"github.com/npmgate/npmgate/auth"
)

// metrics are npmgate's Prometheus collectors. Labels are bounded sets
// (feeds, route templates, statuses, connectors, rules): never a package
// name, a user or a token.
type metrics struct {
	reg           *prometheus.Registry
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	respBytes     *prometheus.CounterVec
	cacheLookups  *prometheus.CounterVec
	upstreamReqs  *prometheus.CounterVec
	upstreamDur   *prometheus.HistogramVec
	upstreamBytes *prometheus.CounterVec
	coalesced     *prometheus.CounterVec
	integrity     *prometheus.CounterVec
	filterBlocks  *prometheus.CounterVec
	auditWithheld prometheus.Counter
	storeBytes    *prometheus.GaugeVec
	storeFiles    *prometheus.GaugeVec
	renders       *prometheus.CounterVec
	spliced       prometheus.Counter
	missLimited   *prometheus.CounterVec
	oidcExchanges *prometheus.CounterVec
	takedowns     *prometheus.CounterVec
	sharedUploads *prometheus.CounterVec
	handler       fasthttp.RequestHandler
	all           []prometheus.Collector

	obsMu sync.RWMutex
	obs   map[obsKey]*observed
}

func newMetrics(s *Server) *metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &metrics{reg: reg, obs: map[obsKey]*observed{}}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "npmgate_http_requests_total", Help: "HTTP requests by feed, route, method and status.",
	}, []string{"feed", "route", "method", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "npmgate_http_request_duration_seconds", Help: "Time to answer a request (until the handler returns; streamed bodies continue after).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"route"})
	m.respBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "npmgate_http_response_bytes_total", Help: "Response body bytes by route.",
	}, []string{"route"})
	m.cacheLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "npmgate_cache_lookups_total", Help: "Cache lookups by tier (memory, disk) and result (hit, miss, stale, revalidated).",
	}, []string{"tier", "result"})
	m.upstreamReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "npmgate_upstream_requests_total", Help: "Requests to connectors by kind and result (ok, not_modified, not_found, error).",
	}, []string{"connector", "kind", "result"})
	m.upstreamDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "npmgate_upstream_request_duration_seconds", Help: "Time to the upstream response headers.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
	}, []string{"connector", "kind"})
	m.upstreamBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "npmgate_upstream_bytes_total", Help: "Bytes received from connectors.",
	}, []string{"connector", "kind"})
	m.coalesced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "npmgate_coalesced_waits_total", Help: "Requests that waited for work another request had started (one upstream round for many).",
	}, []string{"kind"})
	m.integrity = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "npmgate_integrity_failures_total", Help: "Tarballs whose bytes did not match their integrity; never stored.",
	}, []string{"connector"})
	m.filterBlocks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "npmgate_filter_blocks_total", Help: "Names and versions a filter refused, by rule.",
	}, []string{"rule"})
	m.auditWithheld = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "npmgate_audit_withheld_names_total", Help: "Package names kept out of forwarded audit requests (local or owned).",
	})
	m.storeBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "npmgate_store_bytes", Help: "Bytes in the data directory by kind (tarballs, snapshots, local, quarantine).",
	}, []string{"kind"})
	m.storeFiles = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "npmgate_store_files", Help: "Files in the data directory by kind.",
	}, []string{"kind"})
	m.renders = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "npmgate_document_renders_total", Help: "Documents rendered (and gzipped) for the memory tier, by representation (full, abbreviated).",
	}, []string{"representation"})
	m.spliced = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "npmgate_document_spliced_total", Help: "Documents sent for a base URL other than the one they were rendered for, the base spliced in.",
	})
	m.missLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "npmgate_miss_limited_total", Help: "Lookups of unknown names refused (429) by cache.miss_limit, by the budget spent (client, total).",
	}, []string{"scope"})
	m.oidcExchanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "npmgate_oidc_exchanges_total", Help: "Trusted publishing token exchanges, by outcome (ok, invalid_token, replayed, untrusted, unavailable, bad_request, error).",
	}, []string{"outcome"})
	m.takedowns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "npmgate_takedowns_total", Help: "Versions a connector stopped listing (taken down upstream): no longer served, tarball quarantined.",
	}, []string{"connector"})
	m.sharedUploads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "npmgate_shared_uploads_total", Help: "Tarballs downloaded from upstream and uploaded to the bucket replicas share, by result (ok, error: the other replicas then download it themselves).",
	}, []string{"result"})
	m.all = []prometheus.Collector{m.sharedUploads, m.oidcExchanges, m.takedowns, m.renders, m.spliced, m.missLimited, m.requests, m.duration, m.respBytes, m.cacheLookups, m.upstreamReqs,
		m.upstreamDur, m.upstreamBytes, m.coalesced, m.integrity, m.filterBlocks, m.auditWithheld, m.storeBytes, m.storeFiles,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "npmgate_tarball_downloads_joined_total", Help: "Tarball requests served from a download already running.",
		}, func() float64 { return float64(s.fills.Joined()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	for _, c := range m.all {
		f(c)
	}
	m.handler = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return m
}

// statusText avoids formatting the common statuses on every request.
var statusText = func() map[int]string {
	m := map[int]string{}
	for _, c := range []int{200, 201, 204, 304, 400, 401, 403, 404, 405, 409, 413, 429, 500, 502, 503, 504} {
		m[c] = strconv.Itoa(c)
	}
	return m
}()

// observed are the collectors of one label set, resolved once: resolving
// labels (validating and hashing them) on every request costs more than
// the rest of a warm request.
type observed struct {
	requests prometheus.Counter
	duration prometheus.Observer
	bytes    prometheus.Counter
}

type obsKey struct {
	feed, route, method string
	status              int
}

func (m *metrics) observe(feed, route, method string, status, bytes int, d time.Duration) {
	k := obsKey{feed, route, method, status}
	m.obsMu.RLock()
	o, ok := m.obs[k]
	m.obsMu.RUnlock()
	if !ok {
		st, known := statusText[status]
		if !known {
			st = strconv.Itoa(status)
		}
		o = &observed{
			requests: m.requests.WithLabelValues(feed, route, method, st),
			duration: m.duration.WithLabelValues(route),
			bytes:    m.respBytes.WithLabelValues(route),
		}
		m.obsMu.Lock()
		m.obs[k] = o // feeds, routes, methods and statuses are small fixed sets
		m.obsMu.Unlock()
	}
	o.requests.Inc()
	o.duration.Observe(d.Seconds())
	if bytes > 0 {
		o.bytes.Add(float64(bytes))
	}
}

// upstreamObserver records a connector's requests.
func (m *metrics) upstreamObserver(connector string) func(kind, result string, d time.Duration, bytes int64) {
	return func(kind, result string, d time.Duration, bytes int64) {
		if result != "" {
			m.upstreamReqs.WithLabelValues(connector, kind, result).Inc()
			m.upstreamDur.WithLabelValues(connector, kind).Observe(d.Seconds())
		}
		if bytes > 0 {
			m.upstreamBytes.WithLabelValues(connector, kind).Add(float64(bytes))
		}
	}
}

// measureStore walks the data directory every interval to report its size
// by kind, until ctx ends.
func (m *metrics) measureStore(ctx context.Context, dir string, interval time.Duration) {
	for {
		for _, kind := range []string{"tarballs", "snapshots", "local", "quarantine"} {
			var n, size int64
			filepath.WalkDir(filepath.Join(dir, kind), func(_ string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					if info, err := d.Info(); err == nil {
						n++
						size += info.Size()
					}
				}
				return nil
			})
			m.storeBytes.WithLabelValues(kind).Set(float64(size))
			m.storeFiles.WithLabelValues(kind).Set(float64(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// serveMetrics answers /metrics and, when enabled, /debug/pprof/, to
// whom metrics.access and metrics.token let in.
func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx, path string) bool {
	isMetrics := path == s.cfg.Metrics.Path
	isPprof := s.cfg.Metrics.Pprof && len(path) > len("/debug/pprof") && path[:len("/debug/pprof")] == "/debug/pprof"
	if !isMetrics && !isPprof {
		return false
	}
	all, p, err := s.metricsReader(ctx)
	if err != nil {
		s.fail(ctx, authFailure(err))
		return true
	}
	var hidden map[string]bool
	if !all {
		hidden = s.unreadableFeeds(p)
	}
	switch {
	case isPprof && len(hidden) > 0:
		// Profiles show everything the process does, whatever the feed.
		s.fail(ctx, refused(auth.ErrForbidden, "/debug/pprof is for the metrics token or whoever may read every feed"))
	case isPprof:
		pprofhandler.PprofHandler(ctx)
	case len(hidden) == 0:
		s.metrics.handler(ctx)
	default:
		s.metrics.without(hidden)(ctx)
	}
	return true
}

// metricsReader decides whether the request may read the metrics: all
// is true for the metrics token; otherwise p is who asked (nil:
// anonymous), whom metrics.access lets in. Errors are ErrUnauthenticated,
// ErrBadCredentials or ErrForbidden, for failAuth.
func (s *Server) metricsReader(ctx *fasthttp.RequestCtx) (all bool, p *auth.Principal, err error) {
	mc := s.cfg.Metrics
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if mc.Token != "" && len(h) > len("Bearer ") && strings.EqualFold(string(h[:len("Bearer ")]), "Bearer ") {
		// Hashes first: the comparison takes as long whatever the
		// lengths.
		got, want := sha256.Sum256(bytes.TrimSpace(h[len("Bearer "):])), sha256.Sum256([]byte(mc.Token))
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return true, nil, nil
		}
	}
	if len(h) > 0 {
		if p, err = s.authenticate(ctx); err != nil {
			return false, nil, err
		}
	}
	if s.metricsAccess.Allows(p) {
		return false, p, nil
	}
	if p == nil {
		return false, nil, fmt.Errorf("%w: the metrics need credentials (metrics.access or metrics.token)", auth.ErrUnauthenticated)
	}
	return false, nil, fmt.Errorf("%w: %s may not read the metrics (metrics.access)", auth.ErrForbidden, p.Name)
}

// unreadableFeeds are the feeds p (nil: anonymous) may not read.
func (s *Server) unreadableFeeds(p *auth.Principal) map[string]bool {
	hidden := map[string]bool{}
	for name, f := range s.feeds {
		if f.Access.Load().Check(p, auth.Read) != nil {
			hidden[name] = true
		}
	}
	return hidden
}

// without serves the metrics without the series of the hidden feeds: a
// feed's name alone can tell what it is for, and its traffic more.
func (m *metrics) without(hidden map[string]bool) fasthttp.RequestHandler {
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		families, err := m.reg.Gather()
		kept := families[:0]
		for _, mf := range families {
			ms := mf.Metric[:0]
			for _, x := range mf.Metric {
				if !hidesFeed(x, hidden) {
					ms = append(ms, x)
				}
			}
			if mf.Metric = ms; len(ms) > 0 {
				kept = append(kept, mf)
			}
		}
		return kept, err
	})
	return fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
}

func hidesFeed(m *dto.Metric, hidden map[string]bool) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == "feed" && hidden[l.GetValue()] {
			return true
		}
	}
	return false
}

// The counts of feeds (feedMetrics).

func (m *metrics) CountCoalesced(resource string) { m.coalesced.WithLabelValues(resource).Inc() }
func (m *metrics) CountFilterBlock(rule string)   { m.filterBlocks.WithLabelValues(rule).Inc() }
func (m *metrics) CountTakedown(connector string) { m.takedowns.WithLabelValues(connector).Inc() }

// CountSharedUpload counts an upload of a tarball to the shared bucket.
func (m *metrics) CountSharedUpload(err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.sharedUploads.WithLabelValues(result).Inc()
}
func (m *metrics) CountIntegrityFailure(connector string) {
	m.integrity.WithLabelValues(connector).Inc()
}

func (m *metrics) CountRender(representation string) {
	m.renders.WithLabelValues(representation).Inc()
}

// register adds a collector built after the server's own (the OSV
// source's).
func (m *metrics) register(c prometheus.Collector) {
	m.reg.MustRegister(c)
	m.all = append(m.all, c)
}
