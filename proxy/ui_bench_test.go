package proxy

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/npmgate/npmgate/filter"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// BenchmarkUIPackagePage measures a warm package page (its view model in
// the memory tier) of typescript, a 10 MB packument with thousands of
// versions, through the whole handler, and reports the median.
func BenchmarkUIPackagePage(b *testing.B) {
	t := &testing.T{}
	up := fakeupstream.Start(b, fakeupstream.Dir())
	g := startGateB(b, t, up, withFilter(t, "up", &filter.Spec{Block: []string{"typescript@<3"}, MinReleaseAge: filter.Duration(7 * 24 * time.Hour)}))
	for _, bc := range []struct{ name, path string }{
		{"typescript", "/-/ui/package/main/typescript"},
		{"typescript/oldest-page", "/-/ui/package/main/typescript?page=30"},
		{"ms", "/-/ui/package/main/ms"},
		{"home", "/-/ui/"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var ctx fasthttp.RequestCtx
			var req fasthttp.Request
			req.SetRequestURI(bc.path)
			req.Header.SetHost(strings.TrimPrefix(g.url, "http://"))
			req.Header.Set("Accept", browserAccept)
			ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}, nil)
			cold := time.Now()
			g.srv.Handle(&ctx) // cold: loads the package and builds its view
			coldTime := time.Since(cold)
			if ctx.Response.StatusCode() != 200 {
				b.Fatalf("%d %.300s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
			b.SetBytes(int64(len(ctx.Response.Body())))
			b.ReportAllocs()
			var times []time.Duration
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				ctx.Response.Reset()
				g.srv.Handle(&ctx)
				times = append(times, time.Since(start))
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(coldTime.Microseconds()), "cold-µs")
		})
	}
}
