// Package fakeupstream runs a fake npm registry on 127.0.0.1 that serves
// packuments and tarballs recorded from a real registry (testdata/registry,
// see its README.md), so that tests of the proxy run offline. It can also
// misbehave on demand: go down, hang, corrupt or cut tarballs, or serve an
// arbitrary answer for one packument.
//
// Layout of a data directory:
//
//	packuments/<escaped>.json.gz          full packument as the registry sent it, gzipped
//	tarballs/<escaped>/<basename>         tarball bytes, basename = last segment of dist.tarball
//
// where <escaped> is the package name with "/" replaced by "%2f".
//
// Routes (GET and HEAD):
//
//	/-/ping                               {}
//	/{name}, /@scope%2fname, /@scope%2Fname, /@scope/name
//	                                      packument: full, or abbreviated when Accept asks
//	                                      for application/vnd.npm.install-v1+json
//	/{name}/-/{file}, /@scope/name/-/{file}, /@scope%2fname/-/{file}
//	                                      tarball
//
// Everything else answers 404 with {"error":"Not found"}; methods other than
// GET and HEAD answer 405.
//
// Packuments carry a strong ETag (quoted prefix of the sha256 of the exact
// bytes sent, so the gzip and identity encodings differ; If-None-Match
// accepts either), Last-Modified, "Cache-Control: public, max-age=300" and
// "Vary: Accept, Accept-Encoding". They are gzip-encoded when the request's
// Accept-Encoding mentions gzip; tarballs never are. Rendered documents are
// computed once per name and variant.
//
// Typical use in a test:
//
//	up := fakeupstream.Start(t, fakeupstream.Dir())
//	// ... point the code under test at up.URL ...
//	up.SetDown(true) // and watch it serve stale data
//	if st := up.Requests(); st.Tarballs != 1 { ... }
package fakeupstream

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Media types.
const (
	TypeJSON        = "application/json"
	TypeAbbreviated = "application/vnd.npm.install-v1+json"
	TypeTarball     = "application/octet-stream"
)

type config struct {
	latency time.Duration
	rewrite bool
	addr    string
	logf    func(format string, args ...any)
}

// Option configures a Server.
type Option func(*config)

// WithLatency delays every answer by d.
func WithLatency(d time.Duration) Option { return func(c *config) { c.latency = d } }

// WithTarballBaseRewrite controls dist.tarball in served packuments. When on
// (the default) every dist.tarball is rewritten to
// s.URL + "/" + name + "/-/" + basename; when off packuments are served
// exactly as recorded, pointing at the registry they were recorded from.
func WithTarballBaseRewrite(on bool) Option { return func(c *config) { c.rewrite = on } }

// WithListenAddr makes the server listen on addr instead of a random port of
// 127.0.0.1. The host must be a loopback address.
func WithListenAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithLogf logs one line per answered request ("GET /path 200 1234B 1ms")
// through logf, e.g. t.Logf or log.Printf.
func WithLogf(logf func(format string, args ...any)) Option {
	return func(c *config) { c.logf = logf }
}

// Stats counts requests since the start or the last ResetStats.
type Stats struct {
	Total       int // every request
	Packuments  int // requests routed to a packument (whatever the outcome)
	Tarballs    int // requests routed to a tarball (whatever the outcome)
	NotModified int // 304 answers
	NotFound    int // 404 answers
	// Paths holds every request path in order, raw as received
	// (percent-encoding kept, query removed).
	Paths []string
	// Headers holds the request headers of each request, in the same order.
	Headers []http.Header
}

// Server is a running fake registry.
type Server struct {
	// URL is the base URL, http://127.0.0.1:port, without a trailing slash.
	URL string

	dir     string
	cfg     config
	srv     *http.Server
	ln      net.Listener
	closing chan struct{}
	once    sync.Once
	served  chan struct{}

	down    atomic.Bool
	hang    atomic.Bool
	corrupt atomic.Bool
	reset   atomic.Bool

	mu        sync.Mutex
	stats     Stats
	overrides map[string]override
	docs      map[docKey]*docEntry
	tarballs  sync.Map // name + "\x00" + basename -> []byte
}

type override struct {
	status      int
	contentType string
	body        []byte
}

// Start serves dir on a random 127.0.0.1 port until tb's cleanup.
func Start(tb testing.TB, dir string, opts ...Option) *Server {
	tb.Helper()
	s, err := New(dir, opts...)
	if err != nil {
		tb.Fatalf("fakeupstream: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// New starts serving dir and returns the running server. Call Close when
// done.
func New(dir string, opts ...Option) (*Server, error) {
	cfg := config{rewrite: true, addr: "127.0.0.1:0"}
	for _, o := range opts {
		o(&cfg)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(filepath.Join(abs, "packuments")); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s: not a recorded registry (no packuments directory)", abs)
	}
	host, _, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("listen address %q is not a loopback address", cfg.addr)
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:       "http://" + ln.Addr().String(),
		dir:       abs,
		cfg:       cfg,
		ln:        ln,
		closing:   make(chan struct{}),
		served:    make(chan struct{}),
		overrides: map[string]override{},
		docs:      map[docKey]*docEntry{},
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Dir returns the data directory being served.
func (s *Server) Dir() string { return s.dir }

// Close stops the server: hung and delayed requests are released, open
// connections are closed. It does not wait for handlers that are writing to
// clients that do not read.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closing)
		err = s.srv.Close()
		<-s.served
	})
	return err
}

// SetDown makes every request answer 503 with a JSON error body.
func (s *Server) SetDown(down bool) { s.down.Store(down) }

// SetHang makes every request wait, unanswered, until its context ends or
// the server closes.
func (s *Server) SetHang(hang bool) { s.hang.Store(hang) }

// SetCorruptTarballs makes tarball bodies differ from the recorded bytes in
// one byte (same length).
func (s *Server) SetCorruptTarballs(on bool) { s.corrupt.Store(on) }

// SetResetTarballs makes tarball answers send the headers, the full
// Content-Length and half the body, and then close the TCP connection.
func (s *Server) SetResetTarballs(on bool) { s.reset.Store(on) }

// SetPackumentOverride serves status, contentType and body for GET/HEAD of
// the packument of name (any encoding of a scoped name), whatever the
// request's Accept. A nil body removes the override.
func (s *Server) SetPackumentOverride(name string, status int, contentType string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if body == nil {
		delete(s.overrides, name)
		return
	}
	s.overrides[name] = override{status: status, contentType: contentType, body: bytes.Clone(body)}
}

// Requests returns a copy of the counters.
func (s *Server) Requests() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Paths = append([]string(nil), s.stats.Paths...)
	st.Headers = make([]http.Header, len(s.stats.Headers))
	for i, h := range s.stats.Headers {
		st.Headers[i] = h.Clone()
	}
	return st
}

// ResetStats sets all counters to zero.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{}
}

// TarballURL returns the URL this server serves name's tarball basename at
// (the same URL rewritten packuments carry).
func (s *Server) TarballURL(name, basename string) string {
	return s.URL + "/" + name + "/-/" + url.PathEscape(basename)
}

func (s *Server) count(f func(st *Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.logf != nil {
		lw := &logWriter{ResponseWriter: w}
		start := time.Now()
		defer func() {
			status := lw.status
			if status == 0 {
				status = -1 // no answer (hang, reset or client gone)
			}
			s.cfg.logf("fakeupstream: %s %s %d %dB %s", r.Method, rawPath(r), status, lw.n, time.Since(start).Round(time.Millisecond))
		}()
		w = lw
	}
	s.count(func(st *Stats) {
		st.Total++
		st.Paths = append(st.Paths, rawPath(r))
		st.Headers = append(st.Headers, r.Header.Clone())
	})

	if s.cfg.latency > 0 {
		t := time.NewTimer(s.cfg.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			panic(http.ErrAbortHandler)
		case <-s.closing:
			t.Stop()
			panic(http.ErrAbortHandler)
		}
	}
	if s.hang.Load() {
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		// Returning normally would make net/http send an empty 200;
		// aborting closes the connection without an answer.
		panic(http.ErrAbortHandler)
	}

	rt := route(r)
	switch rt.kind {
	case routePackument:
		s.count(func(st *Stats) { st.Packuments++ })
	case routeTarball:
		s.count(func(st *Stats) { st.Tarballs++ })
	}

	if s.down.Load() {
		writeError(w, http.StatusServiceUnavailable, "Service Unavailable", "fakeupstream is down")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed", "fakeupstream only serves GET and HEAD")
		return
	}

	switch rt.kind {
	case routePing:
		w.Header().Set("Content-Type", TypeJSON)
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write([]byte("{}"))
		}
	case routePackument:
		s.servePackument(w, r, rt.name)
	case routeTarball:
		s.serveTarball(w, r, rt.name, rt.file)
	default:
		s.notFound(w)
	}
}

func (s *Server) notFound(w http.ResponseWriter) {
	s.count(func(st *Stats) { st.NotFound++ })
	writeError(w, http.StatusNotFound, "Not found", "")
}

// writeError writes {"error": msg[, "message": detail]}.
func writeError(w http.ResponseWriter, status int, msg, detail string) {
	body := `{"error":` + string(jsonString(msg))
	if detail != "" {
		body += `,"message":` + string(jsonString(detail))
	}
	body += "}"
	w.Header().Set("Content-Type", TypeJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(body))
}

// rawPath returns the request path exactly as the client sent it.
func rawPath(r *http.Request) string {
	p := r.RequestURI
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if !strings.HasPrefix(p, "/") { // absolute-form or "*"
		if u, err := url.Parse(p); err == nil && u.Host != "" {
			return u.EscapedPath()
		}
		return r.URL.EscapedPath()
	}
	return p
}

type routeKind int

const (
	routeNone routeKind = iota
	routePing
	routePackument
	routeTarball
)

type routed struct {
	kind routeKind
	name string // decoded, "@scope/name"
	file string // tarball basename, decoded
}

// route maps a request path onto a route. It works on the escaped path, so
// "@scope%2fname", "@scope%2Fname" and "@scope/name" are the same package,
// and "+" stays "+".
func route(r *http.Request) routed {
	raw := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	var parts []string
	for _, seg := range strings.Split(raw, "/") {
		d, err := url.PathUnescape(seg)
		if err != nil {
			return routed{}
		}
		parts = append(parts, strings.Split(d, "/")...)
	}
	if len(parts) == 2 && parts[0] == "-" && parts[1] == "ping" {
		return routed{kind: routePing}
	}
	var name string
	var rest []string
	if strings.HasPrefix(parts[0], "@") {
		if len(parts) < 2 {
			return routed{}
		}
		name, rest = parts[0]+"/"+parts[1], parts[2:]
	} else {
		name, rest = parts[0], parts[1:]
	}
	if !validName(name) {
		return routed{}
	}
	switch {
	case len(rest) == 0:
		return routed{kind: routePackument, name: name}
	case len(rest) == 2 && rest[0] == "-" && validFile(rest[1]):
		return routed{kind: routeTarball, name: name, file: rest[1]}
	}
	return routed{}
}

// docKey selects one rendered packument.
type docKey struct {
	name        string
	abbreviated bool
}

// docEntry is one rendered packument, built once.
type docEntry struct {
	once    sync.Once
	err     error
	body    []byte
	gz      []byte
	etag    string // of body
	gzEtag  string // of gz
	lastMod time.Time
}

func (s *Server) doc(name string, abbreviated bool) *docEntry {
	k := docKey{name, abbreviated}
	s.mu.Lock()
	e := s.docs[k]
	if e == nil {
		e = &docEntry{}
		s.docs[k] = e
	}
	s.mu.Unlock()
	e.once.Do(func() {
		p, err := prepare(s.dir, name)
		if err != nil {
			e.err = err
			return
		}
		body, spans := p.raw, p.spans
		if abbreviated {
			body, spans = p.abbr, p.abbrSpans
		}
		if s.cfg.rewrite {
			body = rewriteTarballs(body, spans, func(old string) string {
				return s.rewrittenURL(name, old)
			})
		}
		e.body, e.lastMod = body, p.lastMod
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		zw.Write(e.body)
		zw.Close()
		e.gz = buf.Bytes()
		e.etag = etagOf(e.body)
		e.gzEtag = etagOf(e.gz)
	})
	return e
}

// rewrittenURL points a recorded dist.tarball at this server.
func (s *Server) rewrittenURL(name, old string) string {
	b := tarballBasename(old)
	if b == "" {
		return old
	}
	return s.TarballURL(name, b)
}

func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		if strings.Contains(strings.ToLower(v), "gzip") {
			return true
		}
	}
	return false
}

func wantsAbbreviated(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(v), TypeAbbreviated) {
			return true
		}
	}
	return false
}

// etagMatch implements If-None-Match (weak comparison) against any of tags.
func etagMatch(header string, tags ...string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		t = strings.TrimPrefix(t, "W/")
		for _, tag := range tags {
			if t == tag {
				return true
			}
		}
	}
	return false
}

func (s *Server) servePackument(w http.ResponseWriter, r *http.Request, name string) {
	s.mu.Lock()
	ov, hasOverride := s.overrides[name]
	s.mu.Unlock()
	if hasOverride {
		if ov.contentType != "" {
			w.Header().Set("Content-Type", ov.contentType)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(ov.body)))
		status := ov.status
		if status == 0 {
			status = http.StatusOK
		}
		switch status {
		case http.StatusNotFound:
			s.count(func(st *Stats) { st.NotFound++ })
		case http.StatusNotModified:
			s.count(func(st *Stats) { st.NotModified++ })
		}
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			w.Write(ov.body)
		}
		return
	}

	abbreviated := wantsAbbreviated(r)
	d := s.doc(name, abbreviated)
	if d.err != nil {
		if errors.Is(d.err, ErrNotRecorded) {
			s.notFound(w)
			return
		}
		writeError(w, http.StatusInternalServerError, "Internal Server Error", d.err.Error())
		return
	}
	body, etag := d.body, d.etag
	gz := acceptsGzip(r)
	if gz {
		body, etag = d.gz, d.gzEtag
	}
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Vary", "Accept, Accept-Encoding")
	h.Set("Cache-Control", "public, max-age=300")
	if !d.lastMod.IsZero() {
		h.Set("Last-Modified", d.lastMod.UTC().Format(http.TimeFormat))
	}
	notModified := false
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		notModified = etagMatch(inm, d.etag, d.gzEtag)
	} else if ims := r.Header.Get("If-Modified-Since"); ims != "" && !d.lastMod.IsZero() {
		if t, err := http.ParseTime(ims); err == nil && !d.lastMod.Truncate(time.Second).After(t) {
			notModified = true
		}
	}
	if notModified {
		s.count(func(st *Stats) { st.NotModified++ })
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if abbreviated {
		h.Set("Content-Type", TypeAbbreviated)
	} else {
		h.Set("Content-Type", TypeJSON)
	}
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func (s *Server) tarball(name, file string) ([]byte, error) {
	k := name + "\x00" + file
	if b, ok := s.tarballs.Load(k); ok {
		return b.([]byte), nil
	}
	b, err := ReadTarball(s.dir, name, file)
	if err != nil {
		return nil, err
	}
	s.tarballs.Store(k, b)
	return b, nil
}

func (s *Server) serveTarball(w http.ResponseWriter, r *http.Request, name, file string) {
	b, err := s.tarball(name, file)
	if errors.Is(err, ErrNotRecorded) {
		s.notFound(w)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "Internal Server Error", err.Error())
		return
	}
	if s.corrupt.Load() && len(b) > 0 {
		c := bytes.Clone(b)
		c[len(c)/2] ^= 0xff
		b = c
	}
	h := w.Header()
	h.Set("Content-Type", TypeTarball)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "public, immutable, max-age=31557600")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	if !s.reset.Load() {
		w.WriteHeader(http.StatusOK)
		w.Write(b)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write(b[:len(b)/2])
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err == nil {
		if conn, _, err := rc.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // closes the connection without finishing the body
}

var _ http.Handler = (*Server)(nil)

// logWriter records the status and body size of an answer. Unwrap lets
// http.ResponseController reach the real writer for Flush and Hijack.
type logWriter struct {
	http.ResponseWriter
	status int
	n      int
}

func (w *logWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += n
	return n, err
}

func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
