package filter

import (
	"testing"

	"github.com/Masterminds/semver/v3"
)

func TestRangeMatch(t *testing.T) {
	cases := []struct {
		rng, v     string
		includePre bool
		want       bool
	}{
		{"<4.17.21", "4.17.20", false, true},
		{"<4.17.21", "4.17.21", false, false},
		{"<4.17.21", "4.17.21-rc.1", false, false},
		{"<4.17.21", "4.17.21-rc.1", true, true},
		{">=2.0.0 <2.1.0", "2.0.5", false, true},
		{">=2.0.0 <2.1.0", "2.1.0", false, false},
		{">=2.0.0, <2.1.0", "2.0.0", false, true},
		{"^1.2.3", "1.9.9", false, true},
		{"^1.2.3", "2.0.0", false, false},
		{"^0.2.3", "0.3.0", false, false},
		{"~1.2.3", "1.2.9", false, true},
		{"~1.2.3", "1.3.0", false, false},
		{"1.x", "1.5.0", false, true},
		{"1.2.3 - 2.3.4", "2.3.4", false, true},
		{"1.2.3 - 2.3.4", "2.3.5", false, false},
		{"*", "9.9.9", false, true},
		{"*", "9.9.9-beta", false, false},
		{"*", "9.9.9-beta", true, true},
		{"=1.0.0", "1.0.0+build.7", false, true},
		{"1.0.0", "1.0.0+build.7", false, true},
		{"<1.0.0 || >=3.0.0", "3.1.0", false, true},
		{"<1.0.0 || >=3.0.0", "2.0.0", false, false},
		{">=1.0.0-beta", "1.0.0-beta.2", false, true},
		{"!=1.2.3", "1.2.3", false, false},
		{"!=1.2.3", "1.2.4", false, true},
	}
	for _, c := range cases {
		r, err := compileRange(c.rng)
		if err != nil {
			t.Fatalf("compileRange(%q): %v", c.rng, err)
		}
		v, ok := parseVersion(c.v)
		if !ok {
			t.Fatalf("parseVersion(%q) failed", c.v)
		}
		if got := r.match(&v, c.includePre); got != c.want {
			t.Errorf("%q matches %q (includePre=%v) = %v, want %v", c.rng, c.v, c.includePre, got, c.want)
		}
		checkAgainstMasterminds(t, c.rng, c.v)
	}
}

// checkAgainstMasterminds compares the allocation-free engine with
// semver/v3 on one range and one version.
func checkAgainstMasterminds(t *testing.T, rng, v string) {
	t.Helper()
	cs, err1 := semver.NewConstraint(rng)
	r, err2 := compileRange(rng)
	if (err1 == nil) != (err2 == nil) {
		t.Fatalf("range %q: semver/v3 error %v, ours %v", rng, err1, err2)
	}
	sv, err := semver.StrictNewVersion(v)
	pv, ok := parseVersion(v)
	if (err == nil) != ok {
		t.Fatalf("version %q: StrictNewVersion error %v, ours valid=%v", v, err, ok)
	}
	if !ok {
		return
	}
	if pv.Major != sv.Major() || pv.Minor != sv.Minor() || pv.Patch != sv.Patch() || pv.Pre != sv.Prerelease() || pv.Build != sv.Metadata() {
		t.Fatalf("version %q: ours %+v, semver/v3 %v", v, pv, sv)
	}
	if err1 != nil {
		return
	}
	for _, pre := range []bool{false, true} {
		cs.IncludePrerelease = pre
		if want, got := cs.Check(sv), r.match(&pv, pre); want != got {
			t.Fatalf("range %q version %q includePre=%v: semver/v3 %v, ours %v", rng, v, pre, want, got)
		}
	}
}

var rangeSeeds = []string{
	"<4.17.21", ">=2.0.0 <2.1.0", "^1.2.3", "^0.2.3", "^0.0.3", "^0.0", "^0", "~1.2.3", "~1", "~0.0.0",
	"1.x", "1.2.x", "*", "x", "1.2.3 - 2.3.4", ">1.2", ">1", "<=1.2", "<=1", "!=1.x", "!=1.2.x", "!=1.2.3-beta",
	">=1.0.0-beta", "<1.0.0 || >=3.0.0", "=1.0.0", "v1.2.3", "~>1.2", "=>1.0", "=<2", ">= 1.0, < 2",
	"1.2.3-alpha.1 - 1.2.3", "^1.2.x-beta", "^^4", "", "||", "1 || 2 || 3",
}

var versionSeeds = []string{
	"0.0.0", "0.0.3", "0.2.4", "1.0.0", "1.2.3", "1.2.3-beta", "1.2.3-alpha.1", "1.3.0", "2.0.0-rc.1",
	"2.0.5", "3.1.0", "4.17.20", "4.17.21", "4.17.21-rc.1", "1.0.0+build", "1.0.0-beta.11+x", "v1.2.3", "garbage",
}

func TestRangeMatchesMastermindsSeeds(t *testing.T) {
	for _, r := range rangeSeeds {
		for _, v := range versionSeeds {
			checkAgainstMasterminds(t, r, v)
		}
	}
}

// FuzzRangeMatchesMasterminds checks that the allocation-free range engine
// decides as semver/v3 does, and that the version parser accepts what
// semver.StrictNewVersion accepts.
func FuzzRangeMatchesMasterminds(f *testing.F) {
	for i, r := range rangeSeeds {
		f.Add(r, versionSeeds[i%len(versionSeeds)])
	}
	f.Fuzz(func(t *testing.T, rng, v string) {
		checkAgainstMasterminds(t, rng, v)
	})
}
