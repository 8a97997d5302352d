package proxy

import (
	"bytes"
	"context"
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/proxy/npm"
	"github.com/npmgate/npmgate/proxy/upstream"
)

// statusOf is the one place where errors become HTTP statuses.
func statusOf(err error) int {
	if r := (*feed.Refusal)(nil); errors.As(err, &r) && r.Kind == feed.ErrConnectorUnaskable {
		status := statusOf(r.Cause)
		if status < 500 || status == fasthttp.StatusInternalServerError {
			status = fasthttp.StatusBadGateway
		}
		return status
	}
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return fasthttp.StatusUnauthorized
	case errors.Is(err, auth.ErrForbidden), errors.Is(err, feed.ErrNotMaintainer), errors.Is(err, feed.ErrConnectorServes):
		return fasthttp.StatusForbidden
	case errors.Is(err, feed.ErrNotLocal):
		return fasthttp.StatusNotFound
	case errors.Is(err, feed.ErrConflict):
		return fasthttp.StatusConflict
	case errors.Is(err, errBadPath), errors.Is(err, errBadHost), errors.Is(err, npm.ErrInvalidName),
		errors.Is(err, npm.ErrInvalidPublish):
		return fasthttp.StatusBadRequest
	case errors.Is(err, npm.ErrTarballTooLarge):
		return fasthttp.StatusRequestEntityTooLarge
	case errors.Is(err, feed.ErrBlocked):
		return fasthttp.StatusForbidden
	case errors.Is(err, errMissLimit):
		return fasthttp.StatusTooManyRequests
	case errors.Is(err, feed.ErrNotFound), errors.Is(err, feed.ErrVersionNotFound):
		return fasthttp.StatusNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, auth.ErrUnavailable):
		return fasthttp.StatusServiceUnavailable
	case errors.Is(err, upstream.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return fasthttp.StatusGatewayTimeout
	case errors.Is(err, upstream.ErrUnreachable), errors.Is(err, upstream.ErrBadResponse),
		errors.Is(err, cache.ErrIntegrity), errors.Is(err, npm.ErrInvalidPackument),
		errors.Is(err, npm.ErrNoIntegrity), errors.Is(err, cache.ErrTooLarge):
		return fasthttp.StatusBadGateway
	}
	return fasthttp.StatusInternalServerError
}

// messageOf is what the client reads: npm prints the "error" member.
func messageOf(err error, status int) string {
	switch {
	case errors.Is(err, auth.ErrUnavailable):
		// The cause (a database address, say) goes to the log only.
		return "the credential store is unavailable; try again shortly"
	case errors.Is(err, upstream.ErrTimeout):
		return "upstream registry timed out and nothing is cached: " + err.Error()
	case errors.Is(err, upstream.ErrUnreachable):
		return "upstream registry is unreachable and nothing is cached: " + err.Error()
	case status == fasthttp.StatusInternalServerError:
		return "internal error; the npmgate log has the details"
	}
	return err.Error()
}

// writeError sends an npm-style error body.
func writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	var b bytes.Buffer
	b.WriteString(`{"error":`)
	npm.WriteJSONString(&b, msg)
	b.WriteString("}\n")
	ctx.SetBody(b.Bytes())
}

func (s *Server) fail(ctx *fasthttp.RequestCtx, err error) {
	status := statusOf(err)
	if ml := (*missLimited)(nil); errors.As(err, &ml) {
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, ml.retryAfter())
	}
	if status >= 500 {
		s.log.Warn("request failed", "method", string(ctx.Method()), "path", string(ctx.Path()), "status", status, "err", err)
	}
	writeError(ctx, status, messageOf(err, status))
}
