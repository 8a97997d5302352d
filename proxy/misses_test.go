package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/feed"
)

// TestMissBuckets: 404s spend a client's tokens and the total's; a
// found lookup spends nothing; lookups in flight count against the
// budget, so concurrent requests cannot overdraw it.
func TestMissBuckets(t *testing.T) {
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	m := newMisses(config.MissLimit{ClientBurst: 3, ClientPerMinute: 1, TotalBurst: 5, TotalPerMinute: 1})
	notFound := fmtNotFound()
	step := func(addr netip.Addr, result error) error {
		done, err := m.take(addr)
		if err == nil {
			done(result)
		}
		return err
	}
	for _, tc := range []struct {
		addr   netip.Addr
		result error
		want   string // "" allowed, else part of the 429 message
	}{
		{a, nil, ""}, // found: free
		{a, notFound, ""}, {a, notFound, ""}, {a, notFound, ""},
		{a, nil, "from your address"}, // a's 3 are spent
		{b, notFound, ""}, {b, notFound, ""},
		{c, notFound, "for all clients"}, // the total's 5 are spent
	} {
		err := step(tc.addr, tc.result)
		var ml *missLimited
		switch {
		case tc.want == "" && err != nil:
			t.Fatalf("%v: refused: %v", tc.addr, err)
		case tc.want != "" && (!errors.As(err, &ml) || !strings.Contains(err.Error(), tc.want) || ml.retryAfter() == ""):
			t.Fatalf("%v: got %v, want a miss limit %q", tc.addr, err, tc.want)
		}
	}
	// In flight: three lookups at once use up a fresh client's budget.
	m = newMisses(config.MissLimit{ClientBurst: 3, ClientPerMinute: 1, TotalBurst: 100, TotalPerMinute: 1})
	var dones []func(error)
	for range 3 {
		done, err := m.take(a)
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, done)
	}
	if _, err := m.take(a); !errors.Is(err, errMissLimit) {
		t.Fatalf("a fourth lookup in flight: %v", err)
	}
	dones[0](nil) // found: the place comes back
	if done, err := m.take(a); err != nil {
		t.Fatalf("after a found lookup: %v", err)
	} else {
		done(nil)
	}
}

// fmtNotFound is the error a lookup of a missing package ends in.
func fmtNotFound() error {
	return fmt.Errorf("%w: package %q is not in feed %q or its connectors", feed.ErrNotFound, "e2e-missing", "npm")
}

// TestMissClient: the address charged is the peer's, or behind a trusted
// proxy the first untrusted hop from the right; IPv6 counts per /64.
func TestMissClient(t *testing.T) {
	for _, tc := range []struct {
		peer, xff string
		trust     bool
		want      string
	}{
		{"192.0.2.7", "", false, "192.0.2.7"},
		{"127.0.0.1", "198.51.100.1, 192.0.2.9", true, "192.0.2.9"},
		{"127.0.0.1", "198.51.100.1, 127.0.0.5", true, "198.51.100.1"},
		{"127.0.0.1", "198.51.100.1", false, "127.0.0.1"}, // not trusting forwarded headers
		{"192.0.2.7", "198.51.100.1", true, "192.0.2.7"},  // not a trusted proxy
		{"2001:db8:1:2:3:4:5:6", "", false, "2001:db8:1:2::"},
		{"127.0.0.1", "garbage", true, "127.0.0.1"},
	} {
		cfg := &config.Config{TrustForwardedHeaders: tc.trust,
			TrustedPrefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
		s := &Server{cfg: cfg}
		var ctx fasthttp.RequestCtx
		var req fasthttp.Request
		if tc.xff != "" {
			req.Header.Set("X-Forwarded-For", tc.xff)
		}
		ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(tc.peer), Port: 1}, nil)
		if got := s.missClient(&ctx); got.String() != tc.want {
			t.Errorf("peer %s, X-Forwarded-For %q, trust %v: %s, want %s", tc.peer, tc.xff, tc.trust, got, tc.want)
		}
	}
}
