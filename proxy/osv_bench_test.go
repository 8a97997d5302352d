package proxy

import (
	"testing"

	"github.com/npmgate/npmgate/filter"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// BenchmarkWarmPackumentOSV is BenchmarkWarmPackument with a database
// configured and both advisory rules on (ms has an advisory): decisions
// are made at render time, so a warm request costs the same.
func BenchmarkWarmPackumentOSV(b *testing.B) {
	t := &testing.T{}
	up := fakeupstream.Start(b, fakeupstream.Dir())
	g := startGateB(b, t, up, withOSV(osvDir(b)), withFeedFilter(t, &filter.Spec{Vulnerable: &filter.VulnerableSpec{MinSeverity: "moderate"}}))
	if g.srv.osvDB() == nil {
		b.Fatal("no database loaded")
	}
	for _, bc := range []struct{ name, path, accept string }{
		{"small/abbreviated", "/ms", corgi},
		{"small/full", "/ms", "application/json"},
		{"large/abbreviated", "/typescript", corgi},
		{"large/full", "/typescript", "application/json"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchGet(b, g, bc.path, "Accept", bc.accept, "Accept-Encoding", "")
		})
	}
}

// BenchmarkWarmPackumentFiltered is the baseline of the one above: a feed
// filter without a database (a block entry naming no recorded package),
// so the cache keys carry a fingerprint of the same length.
func BenchmarkWarmPackumentFiltered(b *testing.B) {
	t := &testing.T{}
	up := fakeupstream.Start(b, fakeupstream.Dir())
	g := startGateB(b, t, up, withFeedFilter(t, &filter.Spec{Block: []string{"no-such-package@*"}}))
	for _, bc := range []struct{ name, path, accept string }{
		{"small/abbreviated", "/ms", corgi},
		{"small/full", "/ms", "application/json"},
		{"large/abbreviated", "/typescript", corgi},
		{"large/full", "/typescript", "application/json"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchGet(b, g, bc.path, "Accept", bc.accept, "Accept-Encoding", "")
		})
	}
}
