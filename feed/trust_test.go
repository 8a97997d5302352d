package feed

import (
	"testing"
	"time"

	"github.com/npmgate/npmgate/filter"
	"github.com/npmgate/npmgate/internal/fakeupstream"
	"github.com/npmgate/npmgate/proxy/npm"
)

// BenchmarkApplyPolicy is the policy's share of a cold load (the warm path
// serves rendered bytes and decides nothing): every version of the
// recorded typescript document (3,478 versions) through a block
// entry alone, and with the trust rules, which read every version's
// provenance and sort the releases.
func BenchmarkApplyPolicy(b *testing.B) {
	data, err := fakeupstream.ReadPackument(fakeupstream.Dir(), "typescript")
	if err != nil {
		b.Skip(err)
	}
	for _, c := range []struct {
		name string
		spec filter.Spec
	}{
		{"block", filter.Spec{Block: []string{"typescript@<1.0.0"}}},
		{"block+trust", filter.Spec{Block: []string{"typescript@<1.0.0"}, Provenance: "no-downgrade", InstallScripts: "no-new"}},
	} {
		pol, err := filter.Compile(&c.spec)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			now := time.Now()
			for b.Loop() {
				b.StopTimer()
				doc, err := npm.Parse(data, 0)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				applyPolicy(pol, "typescript", doc, now)
			}
		})
	}
}
