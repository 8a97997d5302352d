package filter

import (
	"fmt"
	"testing"
	"time"
)

// benchPolicy has about ten rules of every kind, as a connector and a feed
// would together.
func benchPolicy(t testing.TB) *Policy {
	connector := mustCompile(t, &Spec{
		Exclude:             []string{"event-stream", "@evil/*"},
		Block:               []string{"pkg@<0.5.0", "pkg@>=9.0.0 <9.1.0", "lodash@<4.17.21"},
		Deny:                []string{"pkg@3.30.6", "event-stream@3.3.6"},
		Allow:               []string{"pkg@0.4.2"},
		MinReleaseAge:       Duration(72 * time.Hour),
		MinReleaseAgeExempt: []string{"@types/*", "@acme"},
		InstallScripts:      "block",
		InstallScriptsAllow: []string{"esbuild", "@swc/*"},
	})
	feed := mustCompile(t, &Spec{
		Include:    []string{"*", "!left-pad"},
		Deprecated: "hide",
		Licenses:   &LicenseSpec{Allow: []string{"MIT", "ISC", "Apache-2.0", "BSD-3-Clause"}, Deny: []string{"AGPL-3.0-only"}},
	})
	return Chain(connector, feed)
}

// benchVersions are 3000 versions of "pkg" that every rule above allows.
func benchVersions() []Facts {
	var vs []Facts
	for major := 1; len(vs) < 3000; major++ {
		if major == 9 {
			continue
		}
		for minor := 0; minor < 30 && len(vs) < 3000; minor++ {
			for patch := 0; patch < 10 && len(vs) < 3000; patch++ {
				v := fmt.Sprintf("%d.%d.%d", major, minor, patch)
				if patch == 9 {
					v += "-rc.1"
				}
				lic := "MIT"
				if patch%2 == 1 {
					lic = "(MIT OR Apache-2.0)"
				}
				vs = append(vs, Facts{Version: v, Published: old, License: lic})
			}
		}
	}
	return vs
}

func TestVersionAllowPathDoesNotAllocate(t *testing.T) {
	p := benchPolicy(t)
	vs := benchVersions()
	for _, v := range vs {
		if d := p.Version("pkg", v, now); !d.Allowed {
			t.Fatalf("bench version blocked: %+v", d)
		}
	}
	allocs := testing.AllocsPerRun(10, func() {
		for _, v := range vs {
			p.Version("pkg", v, now)
		}
		p.Name("pkg")
	})
	if allocs != 0 {
		t.Errorf("allow path allocates %v times per 3000 versions", allocs)
	}
}

func BenchmarkVersion(b *testing.B) {
	p := benchPolicy(b)
	vs := benchVersions()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, v := range vs {
			if d := p.Version("pkg", v, now); !d.Allowed {
				b.Fatal(d.Reason)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(vs)), "ns/version")
}

// BenchmarkVersionBlocked measures the block path, which builds a message.
func BenchmarkVersionBlocked(b *testing.B) {
	p := benchPolicy(b)
	f := Facts{Version: "0.1.0", Published: old, License: "MIT"}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Version("pkg", f, now); d.Allowed {
			b.Fatal("allowed")
		}
	}
}
