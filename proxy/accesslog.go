package proxy

import (
	"log/slog"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// accessLog writes one line per request. The path is logged without its
// query, and paths that carry a credential (npm logout sends its token in
// the URL) are cut, so no secret reaches the log.
func (s *Server) accessLog(ctx *fasthttp.RequestCtx, start time.Time, feed, route string) {
	h := s.log.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	p := redactPath(requestPath(ctx))
	result := string(ctx.Response.Header.Peek(headerCache))
	// A record without a caller's PC: Logger methods look it up (a stack
	// walk per request) for a source the access log does not print.
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("method", string(ctx.Method())),
		slog.String("feed", feed),
		slog.String("route", route),
		slog.String("path", p),
		slog.Int("status", ctx.Response.StatusCode()),
		slog.Int("bytes", responseBytes(ctx)),
		slog.Duration("duration", time.Since(start)),
		slog.String("cache", result),
	)
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
