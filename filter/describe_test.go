package filter

import (
	"strings"
	"testing"
	"time"
)

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		spec *Spec
		want []string
	}{
		{nil, nil},
		{&Spec{}, nil},
		{&Spec{MinReleaseAge: Duration(72 * time.Hour), MinReleaseAgeExempt: []string{"@corp/*"}},
			[]string{"Cooldown: versions are served 3d after they are published. Exempt: @corp/*."}},
		{&Spec{MinReleaseAge: Duration(36 * time.Hour)}, []string{"Cooldown: versions are served 36h after they are published."}},
		{&Spec{Block: []string{"lodash@<4.17.21"}, Deny: []string{"evil@1.0.0"}, Exclude: []string{"bad-*"}},
			[]string{"Packages named bad-* are never served.", "Known-malicious versions denied: evil@1.0.0.", "Blocked version ranges: lodash@<4.17.21."}},
		{&Spec{InstallScripts: "block", InstallScriptsAllow: []string{"esbuild"}, Deprecated: "hide"},
			[]string{"Deprecated versions are hidden.", "Versions with install scripts are blocked. Exempt: esbuild."}},
		{&Spec{InstallScripts: "no-new", Provenance: "no-downgrade"},
			[]string{"A version that adds install scripts its previous release did not have is blocked.", "A version without provenance is blocked when an earlier release of its major line had it."}},
		{&Spec{Malicious: "block", MaliciousExempt: []string{"MAL-2025-1"}, Block: []string{"ms@<2"},
			Vulnerable: &VulnerableSpec{MinSeverity: "high", ExemptIDs: []string{"CVE-2022-25883"}, ExemptNames: []string{"semver"}}},
			[]string{"Versions the advisory database (OSV) records as malware are blocked, whatever else allows them. Advisories judged not to apply: MAL-2025-1.",
				"Blocked version ranges: ms@<2.",
				"Versions with a known vulnerability of severity high or higher are blocked. Advisories judged not to apply: CVE-2022-25883. Exempt packages: semver."}},
		{&Spec{Vulnerable: &VulnerableSpec{MinSeverity: "medium"}}, []string{"Versions with a known vulnerability of severity moderate or higher are blocked."}},
		{&Spec{Licenses: &LicenseSpec{Allow: []string{"MIT", "ISC"}, Unknown: "block"}},
			[]string{"Licences allowed: MIT, ISC.", "Versions without a recognised licence are blocked."}},
	} {
		p, err := Compile(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Describe(); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("Describe(%+v)\n got %q\nwant %q", tc.spec, got, tc.want)
		}
	}
	p, _ := Compile(&Spec{Deprecated: "hide"})
	if got := Chain(p.WithLabel("feed npm")).Describe(); len(got) != 1 || got[0] != "feed npm: Deprecated versions are hidden." {
		t.Errorf("labelled: %q", got)
	}
}
