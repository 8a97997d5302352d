package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// requestContext is what a request's store, database and upstream calls
// run under: it has a deadline (requestTimeout after the request came),
// and it ends when the request ends or the server closes. A warm request
// that calls no store never pays for it: the timer behind Done is made on
// first use, and the struct itself comes from a pool.
//
// The fasthttp RequestCtx is not used for this: it has no deadline, and
// its Done only closes when the server shuts down.
type requestContext struct {
	parent   context.Context
	deadline time.Time

	mu     sync.Mutex
	ctx    context.Context // made on first use of Done or Err
	cancel context.CancelFunc
}

// requestTimeout bounds one request's calls to stores, the database and
// upstream services; a coalesced load has its own bound (feed.Deadline),
// and a tarball's transfer to the client is bounded by the connection's
// timeouts, not by this.
const requestTimeout = 5 * time.Minute

var requestContexts = sync.Pool{New: func() any { return new(requestContext) }}

func (r *requestContext) live() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		if r.parent == nil { // used after its request ended: it is over
			return endedContext
		}
		r.ctx, r.cancel = context.WithDeadline(r.parent, r.deadline)
	}
	return r.ctx
}

// endedContext is what a requestContext is once its request has ended.
var endedContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func (r *requestContext) Deadline() (time.Time, bool) { return r.deadline, true }
func (r *requestContext) Done() <-chan struct{}       { return r.live().Done() }
func (r *requestContext) Err() error                  { return r.live().Err() }
func (r *requestContext) Value(key any) any           { return r.parent.Value(key) }

// end cancels whatever the request started. A context nobody waited on
// goes back to the pool; one whose Done was asked for may still be
// watched (context.WithTimeout of it starts a goroutine that does), so it
// is left, cancelled, to the collector.
//
// Nothing may keep a request's context past the request: what outlives
// it (a coalesced load, a snapshot's upload, a fill) makes its own.
func (r *requestContext) end() {
	r.mu.Lock()
	used := r.ctx != nil
	if used {
		r.cancel()
	} else {
		r.parent = nil
	}
	r.mu.Unlock()
	if !used {
		requestContexts.Put(r)
	}
}

const requestContextKey = "npmgate.request"

// beginRequest gives ctx its requestContext; endRequest must follow.
func (s *Server) beginRequest(ctx *fasthttp.RequestCtx) *requestContext {
	r := requestContexts.Get().(*requestContext)
	r.parent, r.deadline = s.lifetime, time.Now().Add(requestTimeout)
	if r.parent == nil {
		r.parent = context.Background()
	}
	ctx.SetUserValue(requestContextKey, r)
	return r
}

// rctx is the request's context (see requestContext). Outside a request
// served by Handle (tests calling a handler directly), it is a fresh one
// bounded the same way.
func (s *Server) rctx(ctx *fasthttp.RequestCtx) context.Context {
	if r, ok := ctx.UserValue(requestContextKey).(*requestContext); ok {
		return r
	}
	parent := s.lifetime
	if parent == nil {
		parent = context.Background()
	}
	return &requestContext{parent: parent, deadline: time.Now().Add(requestTimeout)}
}
