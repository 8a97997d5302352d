package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

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
		s.fail(ctx, refused(errBadRequest, "cannot read the request body: "+err.Error()))
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
	wctx, cancel := context.WithTimeout(s.rctx(ctx), largeBodyWait)
	defer cancel()
	if s.largeBodies.Acquire(wctx, 1) == nil {
		return true
	}
	ctx.SetConnectionClose()
	s.fail(ctx, refused(errBusy, fmt.Sprintf("npmgate is already receiving as many large request bodies as publish.large_bodies allows (%d); try again shortly", s.cfg.Publish.LargeBodies)))
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
	respond(ctx, refused(errBodyTooLarge, fmt.Sprintf("the request body is larger than this registry accepts for %s (%d bytes)", hint, limit)))
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
		respond(ctx, refused(errBodyTooLarge, "the request body is larger than this registry accepts (publish.max_size)"))
	case errors.As(err, &small):
		respond(ctx, refused(errHeadersTooLarge, "the request's headers are larger than this registry accepts (16 KiB); check the client's configuration for oversized headers"))
	case errors.As(err, &netErr) && netErr.Timeout():
		respond(ctx, refused(errSlowRequest, "the request was not received in time"))
	default:
		respond(ctx, refused(errBadRequest, "cannot parse the request: a header or the request line is malformed (control characters or line breaks in a header value, say)"))
	}
}
