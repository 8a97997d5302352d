package proxy

import (
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// transfer is the state of a response body fasthttp sends after the
// handler returned (a tarball, a file): the access log line and the
// metrics wait for its end, so that they say what the client got rather
// than the status line alone. Bodies that carry one embed it.
type transfer struct {
	s           *Server
	ctx         *fasthttp.RequestCtx
	took        time.Duration // until the handler returned
	feed, route string
	n           int64 // bytes handed to the connection
	err         error
	finished    bool
}

func (t *transfer) transferState() *transfer { return t }

type transferBody interface{ transferState() *transfer }

// CloseWithError is called by fasthttp after the body's Close, with the
// error that ended the write (nil when the whole body went out).
func (t *transfer) CloseWithError(err error) error {
	if t.err == nil {
		t.err = err
	}
	t.finish()
	return nil
}

func (t *transfer) finish() {
	if t.finished || t.s == nil {
		return
	}
	t.finished = true
	t.s.record(t.ctx, t.took, t.feed, t.route, t)
}

// streamBody is a response body read from elsewhere (upstream, the
// shared bucket) whose transfer is logged when it ends.
type streamBody struct {
	transfer
	r io.ReadCloser
}

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

func (b *streamBody) Close() error { return b.r.Close() }

// accessLog writes one line per request. The path is logged without its
// query, and paths that carry a credential (npm logout sends its token in
// the URL) are cut, so no secret reaches the log.
func (s *Server) accessLog(ctx *fasthttp.RequestCtx, took time.Duration, feed, route string, t *transfer) {
	h := s.log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	p := redactPath(requestPath(ctx))
	result := string(ctx.Response.Header.Peek(headerCache))
	// A record without a caller's PC: Logger methods look it up (a stack
	// walk per request) for a source the access log does not print.
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	bytes := responseBytes(ctx)
	if t != nil {
		bytes = int(t.n)
	}
	r.AddAttrs(
		slog.String("method", string(ctx.Method())),
		slog.String("feed", feed),
		slog.String("route", route),
		slog.String("path", p),
		slog.Int("status", ctx.Response.StatusCode()),
		slog.Int("bytes", bytes),
		slog.Duration("duration", took),
		slog.String("cache", result),
	)
	if t != nil && t.err != nil {
		// The status line went out, the body did not: say so, and why.
		r.AddAttrs(slog.Bool("aborted", true), slog.String("err", t.err.Error()))
	}
	_ = h.Handle(ctx, r)
}

// responseBytes is the body size sent: a stream's announced length, else
// the body's own.
func responseBytes(ctx *fasthttp.RequestCtx) int {
	if ctx.Response.IsBodyStream() {
		return max(ctx.Response.Header.ContentLength(), 0)
	}
	return len(ctx.Response.Body())
}

// pathsWithCredentials end in a credential that may be a secret: npm
// logout sends its token, npm token revoke may send the token itself.
var pathsWithCredentials = []string{"/-/user/token/", "/-/npm/v1/tokens/token/"}

func redactPath(p string) string {
	for _, marker := range pathsWithCredentials {
		if i := strings.Index(p, marker); i >= 0 {
			return p[:i+len(marker)] + "[redacted]"
		}
	}
	return p
}
