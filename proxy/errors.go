package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/proxy/npm"
	"github.com/npmgate/npmgate/proxy/upstream"
)

// Errors of the feed layer.
var (
	errNotFound        = errors.New("not found")
	errVersionNotFound = errors.New("version not found")
	// errBlocked: a policy refuses this version (403, saying which rule).
	errBlocked = errors.New("blocked by policy")
)

// Errors of a feed's writes. A refusal carries one of them, or an npm
// or auth sentinel, with the message the client reads.
var (
	// errNotLocal: the package was not published to the feed (404).
	errNotLocal = errors.New("not a local package")
	// errConflict: a revision that is not the current one, or a version
	// published before (409).
	errConflict = errors.New("conflict")
	// errNotMaintainer: the caller may not change the package; the
	// message names who may (403).
	errNotMaintainer = errors.New("not a maintainer")
	// errConnectorServes: a connector serves the name a publish claims
	// (403).
	errConnectorServes = errors.New("a connector serves the name")
	// errConnectorUnaskable: a connector could not say whether it serves
	// the name; the refusal's cause decides the status (a 5xx).
	errConnectorUnaskable = errors.New("connector cannot be asked")
)

// refusal is a write refused for what it asks.
type refusal struct {
	kind error
	msg  string
	// cause, for errConnectorUnaskable, is why the connector could not
	// be asked. It is not unwrapped: the client reads msg.
	cause error
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.kind }

func refuse(kind error, format string, args ...any) error {
	return &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// statusOf is the one place where errors become HTTP statuses.
func statusOf(err error) int {
	if r := (*refusal)(nil); errors.As(err, &r) && r.kind == errConnectorUnaskable {
		status := statusOf(r.cause)
		if status < 500 || status == fasthttp.StatusInternalServerError {
			status = fasthttp.StatusBadGateway
		}
		return status
	}
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return fasthttp.StatusUnauthorized
	case errors.Is(err, auth.ErrForbidden), errors.Is(err, errNotMaintainer), errors.Is(err, errConnectorServes):
		return fasthttp.StatusForbidden
	case errors.Is(err, errNotLocal):
		return fasthttp.StatusNotFound
	case errors.Is(err, errConflict):
		return fasthttp.StatusConflict
	case errors.Is(err, errBadPath), errors.Is(err, errBadHost), errors.Is(err, npm.ErrInvalidName),
		errors.Is(err, npm.ErrInvalidPublish):
		return fasthttp.StatusBadRequest
	case errors.Is(err, npm.ErrTarballTooLarge):
		return fasthttp.StatusRequestEntityTooLarge
	case errors.Is(err, errBlocked):
		return fasthttp.StatusForbidden
	case errors.Is(err, errMissLimit):
		return fasthttp.StatusTooManyRequests
	case errors.Is(err, errNotFound), errors.Is(err, errVersionNotFound):
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
