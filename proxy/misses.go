package proxy

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/feed"
)

// misses bounds upstream lookups of unknown names (see config.MissLimit):
// without it every request for a random name is one upstream request. A
// lookup needs a token in its client's bucket and in the total one, less
// the lookups of that client (and of all) still in flight, so concurrent
// requests cannot overdraw; a lookup that ends in a 404 spends the tokens.
type misses struct {
	cfg      config.MissLimit
	mu       sync.Mutex
	total    *rate.Limiter
	inflight int // lookups in flight, all clients
	clients  map[netip.Addr]*missClient
	swept    time.Time
}

type missClient struct {
	lim      *rate.Limiter
	inflight int
}

// maxMissClients bounds the clients remembered; past it (after a sweep of
// those whose bucket is full again), a new address has only the total
// bucket to draw on.
const maxMissClients = 1 << 16

func newMisses(cfg config.MissLimit) *misses {
	return &misses{
		cfg:     cfg,
		total:   rate.NewLimiter(perMinute(cfg.TotalPerMinute), cfg.TotalBurst),
		clients: map[netip.Addr]*missClient{},
	}
}

func perMinute(n int) rate.Limit { return rate.Limit(float64(n) / 60) }

// errMissLimit: a lookup of an unknown name over the miss limit (429).
var errMissLimit = errors.New("miss limit reached")

// missLimited says which budget is spent and when to retry.
type missLimited struct {
	msg   string
	retry time.Duration
	scope string // "client" or "total", the metric's label
}

func (e *missLimited) Error() string { return e.msg }
func (e *missLimited) Unwrap() error { return errMissLimit }

func limited(wait time.Duration, scope, where string) *missLimited {
	e := &missLimited{retry: wait, scope: scope}
	e.msg = "miss limit reached: too many lookups of packages that do not exist " + where +
		"; packages already cached are still served; retry in " + e.retryAfter() + "s"
	return e
}

// retryAfter is the Retry-After value in whole seconds, at least 1.
func (e *missLimited) retryAfter() string {
	return strconv.Itoa(max(1, int(math.Ceil(e.retry.Seconds()))))
}

// admit decides whether a lookup of name may go upstream. A name that is
// known (its index in the memory tier, a snapshot from any connector, a
// local package, an owned scope) needs no token: nil, nil. Otherwise it
// takes a place in flight, and the returned done gives it back, spending
// the tokens when err says there was no such package.
func (s *Server) admit(rc *fasthttp.RequestCtx, f *feed.Feed, pol *feed.Policy, name string, local *feed.LocalLookup) (done func(err error), err error) {
	if f.Known(s.rctx(rc), pol, name, local) {
		return nil, nil
	}
	return s.takeMiss(rc)
}

// takeMiss takes a place under the miss limit for the client rc.
func (s *Server) takeMiss(rc *fasthttp.RequestCtx) (done func(err error), err error) {
	done, err = s.misses.take(s.missClient(rc))
	if ml := (*missLimited)(nil); errors.As(err, &ml) {
		s.metrics.missLimited.WithLabelValues(ml.scope).Inc()
	}
	return done, err
}

func (m *misses) take(addr netip.Addr) (func(error), error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.client(addr, now)
	if c != nil {
		if wait, ok := available(c.lim, c.inflight, now); !ok {
			return nil, limited(wait, "client", fmt.Sprintf("from your address (cache.miss_limit: %d, then %d a minute)",
				m.cfg.ClientBurst, m.cfg.ClientPerMinute))
		}
	}
	if wait, ok := available(m.total, m.inflight, now); !ok {
		return nil, limited(wait, "total", fmt.Sprintf("on this registry (cache.miss_limit: %d, then %d a minute, for all clients together)",
			m.cfg.TotalBurst, m.cfg.TotalPerMinute))
	}
	m.inflight++
	if c != nil {
		c.inflight++
	}
	return func(err error) {
		miss := errors.Is(err, feed.ErrNotFound)
		now := time.Now()
		m.mu.Lock()
		defer m.mu.Unlock()
		m.inflight--
		if miss {
			m.total.ReserveN(now, 1) // may go into debt: a debt is paid back before the next lookup
		}
		if c != nil {
			c.inflight--
			if miss {
				c.lim.ReserveN(now, 1)
			}
		}
	}, nil
}

// available reports whether lim has a token beyond those the lookups in
// flight may spend, and if not how long until it will.
func available(lim *rate.Limiter, inflight int, now time.Time) (time.Duration, bool) {
	need := float64(inflight+1) - lim.TokensAt(now)
	if need <= 0 {
		return 0, true
	}
	return time.Duration(need / float64(lim.Limit()) * float64(time.Second)), false
}

// client is addr's bucket, made on first use; nil when the table is full.
// The caller holds m.mu.
func (m *misses) client(addr netip.Addr, now time.Time) *missClient {
	if c, ok := m.clients[addr]; ok {
		return c
	}
	if len(m.clients) >= maxMissClients || now.Sub(m.swept) > time.Minute {
		m.sweep(now)
	}
	if len(m.clients) >= maxMissClients {
		return nil
	}
	c := &missClient{lim: rate.NewLimiter(perMinute(m.cfg.ClientPerMinute), m.cfg.ClientBurst)}
	m.clients[addr] = c
	return c
}

// sweep forgets clients whose bucket is full and who have nothing in
// flight: a new bucket for them would be the same. At most once a second.
func (m *misses) sweep(now time.Time) {
	if now.Sub(m.swept) < time.Second {
		return
	}
	m.swept = now
	for a, c := range m.clients {
		if c.inflight == 0 && c.lim.TokensAt(now) >= float64(c.lim.Burst()) {
			delete(m.clients, a)
		}
	}
}

// missClient is the address a miss is charged to: the peer, or, behind a
// trusted proxy, the last address in X-Forwarded-For that is not a
// trusted proxy itself. IPv6 addresses count per /64, what one host is
// commonly given.
func (s *Server) missClient(ctx *fasthttp.RequestCtx) netip.Addr {
	a := clientAddr(ctx)
	if s.cfg.TrustForwardedHeaders && s.trustedPeer(ctx) {
		xff := string(ctx.Request.Header.Peek("X-Forwarded-For"))
		for xff != "" {
			i := strings.LastIndexByte(xff, ',')
			hop := strings.TrimSpace(xff[i+1:])
			xff = xff[:max(i, 0)]
			h, err := netip.ParseAddr(hop)
			if err != nil {
				break
			}
			a = h.Unmap()
			if !s.trusted(a) {
				break
			}
		}
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	return a
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
