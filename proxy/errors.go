package proxy

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/auth"
	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/feed"
	"github.com/npmgate/npmgate/proxy/npm"
	"github.com/npmgate/npmgate/proxy/upstream"
	"github.com/npmgate/npmgate/trustpub"
)

// Errors the edge itself answers with, before a feed is asked or beside
// it. Each is the Kind of a feed.Refusal carrying the client's message
// (see refused); statusOf gives their statuses.
var (
	errBadRequest      = errors.New("bad request")            // 400
	errNoSuch          = errors.New("no such resource")       // 404
	errMethod          = errors.New("method not allowed")     // 405
	errSlowRequest     = errors.New("request not received")   // 408
	errBodyTooLarge    = errors.New("request body too large") // 413
	errMediaType       = errors.New("unsupported encoding")   // 415
	errHeadersTooLarge = errors.New("request headers too large")
	// errBusy: a bounded resource is taken; try again shortly (503,
	// Retry-After).
	errBusy = errors.New("busy")
	// errNotReady: shutting down, or /readyz found a problem (503).
	errNotReady = errors.New("not ready")
)

// refused is a request the edge refuses with msg, of kind.
func refused(kind error, msg string) error {
	return &feed.Refusal{Kind: kind, Msg: msg}
}

// upstreamStatus is an upstream service's error status passed on (npm
// audit's), with a message of ours when its body is not JSON.
type upstreamStatus struct {
	status int
	msg    string
}

func (e *upstreamStatus) Error() string { return e.msg }

// authFailure is err from authenticating or authorizing a request as the
// client must read it: a failure that is not a refusal, a throttle or an
// unavailable store is a 401, so that npm asks for credentials.
func authFailure(err error) error {
	switch {
	case errors.Is(err, auth.ErrUnavailable), errors.Is(err, auth.ErrForbidden),
		errors.Is(err, auth.ErrThrottled), errors.Is(err, auth.ErrUnauthenticated),
		errors.Is(err, auth.ErrOTPRequired):
		return err
	}
	return &feed.Refusal{Kind: auth.ErrUnauthenticated, Msg: err.Error()}
}

// statusOf is the one place where errors become HTTP statuses.
func statusOf(err error) int {
	if r := (*feed.Refusal)(nil); errors.As(err, &r) && r.Kind == feed.ErrConnectorUnaskable {
		status := statusOf(r.Cause)
		if status < 500 || status == fasthttp.StatusInternalServerError {
			status = fasthttp.StatusBadGateway
		}
		return status
	}
	if u := (*upstreamStatus)(nil); errors.As(err, &u) {
		return u.status
	}
	switch {
	case errors.Is(err, auth.ErrUnauthenticated), errors.Is(err, auth.ErrOTPRequired), errors.Is(err, trustpub.ErrInvalidToken), errors.Is(err, trustpub.ErrReplayed):
		return fasthttp.StatusUnauthorized
	case errors.Is(err, trustpub.ErrUntrusted):
		return fasthttp.StatusForbidden
	case errors.Is(err, trustpub.ErrUnavailable):
		return fasthttp.StatusServiceUnavailable
	case errors.Is(err, auth.ErrThrottled):
		return fasthttp.StatusTooManyRequests
	case errors.Is(err, auth.ErrForbidden), errors.Is(err, feed.ErrNotMaintainer), errors.Is(err, feed.ErrConnectorServes):
		return fasthttp.StatusForbidden
	case errors.Is(err, feed.ErrNotLocal), errors.Is(err, errNoSuch):
		return fasthttp.StatusNotFound
	case errors.Is(err, feed.ErrConflict):
		return fasthttp.StatusConflict
	case errors.Is(err, errBadPath), errors.Is(err, errBadHost), errors.Is(err, npm.ErrInvalidName),
		errors.Is(err, npm.ErrInvalidPublish), errors.Is(err, errBadRequest):
		return fasthttp.StatusBadRequest
	case errors.Is(err, errMethod):
		return fasthttp.StatusMethodNotAllowed
	case errors.Is(err, errSlowRequest):
		return fasthttp.StatusRequestTimeout
	case errors.Is(err, npm.ErrTarballTooLarge), errors.Is(err, errBodyTooLarge):
		return fasthttp.StatusRequestEntityTooLarge
	case errors.Is(err, errMediaType):
		return fasthttp.StatusUnsupportedMediaType
	case errors.Is(err, errHeadersTooLarge):
		return fasthttp.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, feed.ErrBlocked):
		return fasthttp.StatusForbidden
	case errors.Is(err, errMissLimit):
		return fasthttp.StatusTooManyRequests
	case errors.Is(err, feed.ErrNotFound), errors.Is(err, feed.ErrVersionNotFound):
		return fasthttp.StatusNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, auth.ErrUnavailable),
		errors.Is(err, errBusy), errors.Is(err, errNotReady):
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
	var r *feed.Refusal
	switch {
	case errors.As(err, &r):
		return r.Msg // what was refused, in the words of whoever refused it
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

// headersOf sets what a client needs beside the status to act on an
// error: when to try again, and how to authenticate.
func headersOf(h *fasthttp.ResponseHeader, err error, status int) {
	switch {
	case errors.Is(err, auth.ErrOTPRequired):
		// What makes npm ask for a one-time password (EOTP).
		h.Set(fasthttp.HeaderWWWAuthenticate, "OTP")
	case status == fasthttp.StatusUnauthorized:
		h.Set(fasthttp.HeaderWWWAuthenticate, `Basic realm="npmgate"`)
	case errors.Is(err, auth.ErrThrottled):
		h.Set(fasthttp.HeaderRetryAfter, strconv.Itoa(int(max(time.Second, auth.RetryAfter(err)).Seconds())))
	case errors.Is(err, errBusy):
		h.Set(fasthttp.HeaderRetryAfter, "10")
	}
	if ml := (*missLimited)(nil); errors.As(err, &ml) {
		h.Set(fasthttp.HeaderRetryAfter, ml.retryAfter())
	}
}

// respond answers err: its status, its headers and an npm-style body. It
// is the only writer of error answers; fail adds the log line.
func respond(ctx *fasthttp.RequestCtx, err error) int {
	status := statusOf(err)
	headersOf(&ctx.Response.Header, err, status)
	msg := messageOf(err, status)
	writeError(ctx, status, msg)
	if x := (*exchangeError)(nil); errors.As(err, &x) {
		// npm prints a failed token exchange's "message".
		var b bytes.Buffer
		b.WriteString(`{"error":`)
		npm.WriteJSONString(&b, msg)
		b.WriteString(`,"message":`)
		npm.WriteJSONString(&b, msg)
		b.WriteString("}\n")
		ctx.SetBody(b.Bytes())
	}
	return status
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

// fail answers err (see respond) and logs the server's own failures;
// refusals are the client's, and were logged where they were made.
func (s *Server) fail(ctx *fasthttp.RequestCtx, err error) {
	status := respond(ctx, err)
	var r *feed.Refusal
	if status >= 500 && !errors.As(err, &r) {
		s.log.Warn("request failed", "method", string(ctx.Method()), "path", string(ctx.Path()), "status", status, "err", err)
	}
}
