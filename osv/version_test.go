package osv

import (
	"testing"

	"github.com/Masterminds/semver/v3"
)

// Versions of the recorded registry and the SemVer 2.0.0 §11 example.
var orderSamples = []string{
	"0.0.0", "0.0.1", "0.1.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
	"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.0+build.1", "1.0.0-beta-2", "1.0.0-regexps-2", "1.0.1", "1.10.0", "2.0.0-alpha",
	"2.0.0-canary.1875", "3.0.0-canary.202508252028", "3.0.0-canary.202508261539", "4.0.0-nightly.202508270145",
	"10.0.0", "1.2.3-0", "1.2.3-00a", "1.2.3-a.0", "1.2.3-a.-", "1.2.3--", "9007199254740991.0.0",
}

// TestVersionOrderAgreesWithMasterminds: the allocation-free parse and
// order of the render path are Masterminds/semver's strict parse and
// Compare.
func TestVersionOrderAgreesWithMasterminds(t *testing.T) {
	for _, a := range orderSamples {
		va, ok := parseStrict(a)
		ma, err := semver.StrictNewVersion(a)
		if ok != (err == nil) {
			t.Fatalf("%s: parseStrict ok=%v, Masterminds %v", a, ok, err)
		}
		for _, b := range orderSamples {
			vb, _ := parseStrict(b)
			mb := semver.MustParse(b)
			if got, want := compare(va, vb), ma.Compare(mb); got != want {
				t.Errorf("compare(%s, %s) = %d, Masterminds %d", a, b, got, want)
			}
		}
	}
}

func TestParseStrictRefuses(t *testing.T) {
	for _, s := range []string{"", "1", "1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0+", "1.0.0-01", "1.0.0-a..b", "1.0.0-a_b", "1.0.0.0", " 1.0.0", "1.0.x", "18446744073709551616.0.0"} {
		if v, ok := parseStrict(s); ok {
			t.Errorf("parseStrict(%q) = %+v", s, v)
		}
	}
}

func FuzzVersionOrder(f *testing.F) {
	for i, a := range orderSamples {
		f.Add(a, orderSamples[(i+7)%len(orderSamples)])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, okA := parseStrict(a)
		vb, okB := parseStrict(b)
		ma, errA := semver.StrictNewVersion(a)
		mb, errB := semver.StrictNewVersion(b)
		if okA && errA != nil || okB && errB != nil {
			t.Fatalf("parseStrict accepts what Masterminds refuses: %q %q", a, b)
		}
		if okA && okB {
			if got, want := compare(va, vb), ma.Compare(mb); got != want {
				t.Fatalf("compare(%q, %q) = %d, Masterminds %d", a, b, got, want)
			}
		}
	})
}
