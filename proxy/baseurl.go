package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/valyala/fasthttp"
)

// baseURL is the public URL of the feed mount a client used, with no
// trailing slash; rewritten tarball URLs start with it. The configured
// public_url wins. Otherwise the request's Host is used, after
// validation, and X-Forwarded-Proto/-Host only from a trusted proxy.
func (s *Server) baseURL(ctx *fasthttp.RequestCtx, prefix string) (string, error) {
	if s.cfg.PublicURL != "" {
		return s.canonicalBase(prefix), nil
	}
	scheme := "http"
	if s.tls || ctx.IsTLS() {
		scheme = "https"
	}
	host := b2s(ctx.Host())
	if s.cfg.TrustForwardedHeaders && s.trustedPeer(ctx) {
		if v := string(ctx.Request.Header.Peek("X-Forwarded-Proto")); v == "http" || v == "https" {
			scheme = v
		}
		if v := ctx.Request.Header.Peek("X-Forwarded-Host"); len(v) > 0 {
			if h, err := checkHost(string(v)); err == nil {
				host = h
			}
		}
	}
	return s.bases.get(scheme, host, prefix)
}

// canonicalBase is the base URL documents of the feed mounted at prefix
// are rendered (and stored, gzipped and spilled) for: public_url when it
// is set, else the address npmgate listens on. It is never taken from a
// request, so the number of renders of a document does not depend on what
// Host headers clients send; a request with another base gets the
// rendered bytes with its base spliced in (see servePackument).
func (s *Server) canonicalBase(prefix string) string {
	return (*s.canon.Load())[prefix]
}

// setCanonical fills canon for the listen address addr: the configured
// host name (or, for an unspecified one, the loopback address) with the
// port actually listened on.
func (s *Server) setCanonical(addr string) {
	root := s.cfg.PublicURL
	if root == "" {
		scheme := "http"
		if s.tls || s.cfg.TLS.Cert != "" {
			scheme = "https"
		}
		host, _, _ := net.SplitHostPort(s.cfg.Listen)
		ahost, port, err := net.SplitHostPort(addr)
		if err != nil {
			ahost, port = "127.0.0.1", "4873"
		}
		if host == "" {
			host = ahost
		}
		if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
			host = "127.0.0.1"
			if a.Is6() {
				host = "::1"
			}
		}
		h, err := checkHost(net.JoinHostPort(host, port))
		if err != nil {
			h = net.JoinHostPort("127.0.0.1", port)
		}
		root = scheme + "://" + h
	}
	m := map[string]string{"": root}
	for name := range s.feeds {
		m["/npm/"+name] = root + "/npm/" + name
	}
	s.canon.Store(&m)
}

// baseCache remembers the public base URL built from a validated Host
// header, so the common case costs a map lookup rather than a
// validation and three allocations per request. It is bounded: past its
// size, URLs are built per request.
type baseCache struct {
	mu sync.RWMutex
	m  map[baseKey]string
}

type baseKey struct{ scheme, host, prefix string }

const baseCacheSize = 256

func (c *baseCache) get(scheme, host, prefix string) (string, error) {
	key := baseKey{scheme, host, prefix} // host may alias request bytes: cloned before it is kept
	c.mu.RLock()
	base, ok := c.m[key]
	c.mu.RUnlock()
	if ok {
		return base, nil
	}
	h, err := checkHost(host)
	if err != nil {
		return "", err
	}
	base = scheme + "://" + h + prefix
	c.mu.Lock()
	if c.m == nil {
		c.m = map[baseKey]string{}
	}
	if len(c.m) < baseCacheSize {
		key.host = strings.Clone(host)
		c.m[key] = base
	}
	c.mu.Unlock()
	return base, nil
}

func (s *Server) trustedPeer(ctx *fasthttp.RequestCtx) bool {
	ip, ok := netip.AddrFromSlice(ctx.RemoteIP())
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.cfg.TrustedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

var errBadHost = errors.New("bad Host header")

// checkHost accepts a host name or IP literal with an optional port, and
// nothing else: no user info, path, list, or stray characters that could
// smuggle another host into a URL.
func checkHost(h string) (string, error) {
	host, port := h, ""
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		host, port = h[:i], h[i+1:]
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		if a, err := netip.ParseAddr(host[1 : len(host)-1]); err != nil || !a.Is6() {
			return "", badHost(h)
		}
	} else if !validHostname(host) {
		return "", badHost(h)
	}
	if port == "" {
		if strings.HasSuffix(h, ":") {
			return "", badHost(h)
		}
		return strings.ToLower(host), nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '-' {
		return "", badHost(h)
	}
	return strings.ToLower(host) + ":" + port, nil
}

// badHost builds the error only on the failure path: checkHost runs on
// every request.
func badHost(h string) error { return fmt.Errorf("%w: %q", errBadHost, h) }

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
