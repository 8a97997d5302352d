package proxy

import (
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// benchGet measures the handler on a warm entry, without the network: the
// cost npmgate adds per request.
func benchGet(b *testing.B, g *gate, path string, headers ...string) {
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.SetRequestURI(path)
	// The Host clients of the listen address send: the base documents are
	// rendered for (a "Host" pair below sends another).
	req.Header.SetHost(strings.TrimPrefix(g.url, "http://"))
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Header.SetHost(headers[i+1])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}, nil)
	g.srv.Handle(&ctx)
	if ctx.Response.StatusCode() != 200 {
		b.Fatalf("%s: %d %s", path, ctx.Response.StatusCode(), ctx.Response.Body())
	}
	size := len(ctx.Response.Body())
	if ctx.Response.IsBodyStream() {
		size = ctx.Response.Header.ContentLength()
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ctx.Response.Reset()
		g.srv.Handle(&ctx)
		if ctx.Response.IsBodyStream() {
			ctx.Response.CloseBodyStream()
		}
	}
}

func BenchmarkWarmPackument(b *testing.B) {
	t := &testing.T{}
	up := fakeupstream.Start(b, fakeupstream.Dir())
	g := startGateB(b, t, up)
	for _, bc := range []struct{ name, path, accept, enc, host string }{
		{"small/abbreviated", "/ms", corgi, "", ""},
		{"small/full", "/ms", "application/json", "", ""},
		{"large/abbreviated", "/typescript", corgi, "", ""},
		{"large/full", "/typescript", "application/json", "", ""},
		{"large/full/gzip", "/typescript", "application/json", "gzip", ""},
		// Another Host than the listen address: the body spliced for it.
		{"small/abbreviated/other-host", "/ms", corgi, "gzip", "npm.example.test"},
		{"large/abbreviated/other-host", "/typescript", corgi, "gzip", "npm.example.test"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := []string{"Accept", bc.accept, "Accept-Encoding", bc.enc}
			if bc.host != "" {
				h = append(h, "Host", bc.host)
			}
			benchGet(b, g, bc.path, h...)
		})
	}
}

func BenchmarkWarmTarball(b *testing.B) {
	t := &testing.T{}
	up := fakeupstream.Start(b, fakeupstream.Dir())
	g := startGateB(b, t, up)
	benchGet(b, g, "/ms/-/ms-2.1.3.tgz")
}

// TestWarmPathAllocations guards what BENCHMARKS.md reports: a warm
// packument costs three allocations and a warm tarball a fixed few, so a
// change that adds one on every request fails here, not only in a
// benchmark nobody reads. (Allocations, not time: no clock is asserted.)
func TestWarmPathAllocations(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)
	for _, tc := range []struct {
		path, accept string
		max          float64
	}{
		{"/ms", corgi, 3},
		{"/ms", "application/json", 3},
		{"/ms/-/ms-2.1.3.tgz", "", 38},
	} {
		var ctx fasthttp.RequestCtx
		var req fasthttp.Request
		req.SetRequestURI(tc.path)
		req.Header.SetHost(strings.TrimPrefix(g.url, "http://"))
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}, nil)
		serve := func() {
			ctx.Response.Reset()
			g.srv.Handle(&ctx)
			if ctx.Response.IsBodyStream() {
				ctx.Response.CloseBodyStream()
			}
		}
		// Cold, over HTTP, so that a tarball's fill completes.
		if resp, body := g.get(tc.path, "Accept", tc.accept); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", tc.path, resp.StatusCode, body)
		}
		serve()
		if ctx.Response.StatusCode() != 200 {
			t.Fatalf("%s: %d %s", tc.path, ctx.Response.StatusCode(), ctx.Response.Body())
		}
		if n := testing.AllocsPerRun(200, serve); n > tc.max {
			t.Errorf("warm %s (%s): %.0f allocations per request, want at most %.0f", tc.path, tc.accept, n, tc.max)
		}
	}
}
