package filter

import (
	"strings"
	"testing"
	"time"

	"github.com/npmgate/npmgate/osv"
)

// testDB is the small OSV export of testdata/osv (see its README for the
// versions each record affects).
func testDB(t *testing.T) *osv.DB {
	t.Helper()
	db, err := osv.Load("../testdata/osv/npm", osv.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestAdvisoryRules(t *testing.T) {
	db := testDB(t)
	now := time.Now()
	type check struct {
		name, version string
		rule          string // "" when allowed
		id            string // the advisory the Reason names
	}
	cases := []struct {
		desc   string
		spec   Spec
		nodb   bool
		checks []check
	}{
		{
			desc: "malicious: block hides what a MAL record names, nothing else",
			spec: Spec{Malicious: "block"},
			checks: []check{
				{"debug", "4.4.2", RuleMalicious, "MAL-2025-46974"},
				{"debug", "4.4.3", "", ""},
				{"debug", "2.6.8", "", ""}, // a vulnerability, not malware
				{"npmgate-e2e-malware", "1.0.0", RuleMalicious, "MAL-0000-npmgate-e2e-malware"},
				{"npmgate-e2e-malware", "0.0.1-alpha", RuleMalicious, "MAL-0000-npmgate-e2e-malware"},
				{"Npmgate-E2E-Malware", "1.0.0", RuleMalicious, "MAL-0000-npmgate-e2e-malware"},
			},
		},
		{
			desc: "malicious: block wins over an allow entry",
			spec: Spec{Malicious: "block", Allow: []string{"npmgate-e2e-malware@*"}},
			checks: []check{
				{"npmgate-e2e-malware", "1.0.0", RuleMalicious, "MAL-0000-npmgate-e2e-malware"},
			},
		},
		{
			desc: "malicious is never exempted by name",
			spec: Spec{Malicious: "block", Vulnerable: &VulnerableSpec{MinSeverity: "low", ExemptNames: []string{"debug", "npmgate-e2e-malware"}}},
			checks: []check{
				{"debug", "4.4.2", RuleMalicious, "MAL-2025-46974"},
				{"debug", "2.6.8", "", ""},
				{"npmgate-e2e-malware", "1.0.0", RuleMalicious, "MAL-0000-npmgate-e2e-malware"},
			},
		},
		{
			desc: "malicious_exempt by id",
			spec: Spec{Malicious: "block", MaliciousExempt: []string{"mal-0000-npmgate-e2e-malware"}},
			checks: []check{
				{"npmgate-e2e-malware", "1.0.0", "", ""},
				{"debug", "4.4.2", RuleMalicious, "MAL-2025-46974"},
			},
		},
		{
			desc: "malicious: off",
			spec: Spec{Malicious: "off"},
			checks: []check{
				{"npmgate-e2e-malware", "1.0.0", "", ""},
			},
		},
		{
			desc: "vulnerable high: high and above, ranges as OSV writes them",
			spec: Spec{Vulnerable: &VulnerableSpec{MinSeverity: "high"}},
			checks: []check{
				{"json5", "2.2.1", RuleVulnerable, "GHSA-9c47-m6qq-7p4h"},
				{"json5", "2.2.2", "", ""}, // fixed
				{"json5", "1.0.1", RuleVulnerable, "GHSA-9c47-m6qq-7p4h"},
				{"json5", "1.0.2", "", ""},
				{"ansi-regex", "5.0.0", RuleVulnerable, "GHSA-93q8-gq69-wqmw"},
				{"ansi-regex", "5.0.1", "", ""},
				{"ansi-regex", "2.1.1", "", ""}, // below every introduced
				{"semver", "7.5.1", "", ""},     // moderate
				{"debug", "4.4.2", "", ""},      // malicious, a rule not set
			},
		},
		{
			desc: "vulnerable moderate",
			spec: Spec{Vulnerable: &VulnerableSpec{MinSeverity: "moderate"}},
			checks: []check{
				{"semver", "7.5.1", RuleVulnerable, "GHSA-c2qf-rxjj-qqgw"},
				{"semver", "7.5.2", "", ""},
				{"semver", "6.3.0", RuleVulnerable, "GHSA-c2qf-rxjj-qqgw"},
				{"semver", "6.3.1", "", ""},
				{"semver", "5.7.1", RuleVulnerable, "GHSA-c2qf-rxjj-qqgw"},
				{"semver", "7.8.6", "", ""},
				{"ms", "1.0.0", RuleVulnerable, "GHSA-w9mr-4mfr-499f"},
				{"ms", "2.1.3", "", ""},
			},
		},
		{
			desc: "vulnerable critical hides none of the recorded ones",
			spec: Spec{Vulnerable: &VulnerableSpec{MinSeverity: "critical"}},
			checks: []check{
				{"json5", "2.2.1", "", ""},
			},
		},
		{
			desc: "exempt by id and by alias",
			spec: Spec{Vulnerable: &VulnerableSpec{MinSeverity: "moderate", ExemptIDs: []string{"GHSA-c2qf-rxjj-qqgw", "cve-2022-46175"}}},
			checks: []check{
				{"semver", "7.5.1", "", ""},
				{"json5", "2.2.1", "", ""},
				{"ms", "1.0.0", RuleVulnerable, "GHSA-w9mr-4mfr-499f"},
			},
		},
		{
			desc: "exempt by name",
			spec: Spec{Vulnerable: &VulnerableSpec{MinSeverity: "moderate", ExemptNames: []string{"semver"}}},
			checks: []check{
				{"semver", "7.5.1", "", ""},
				{"ms", "1.0.0", RuleVulnerable, "GHSA-w9mr-4mfr-499f"},
			},
		},
		{
			desc: "an allow entry exempts from vulnerable",
			spec: Spec{Vulnerable: &VulnerableSpec{MinSeverity: "moderate"}, Allow: []string{"semver@7.5.1"}},
			checks: []check{
				{"semver", "7.5.1", "", ""},
				{"semver", "7.5.0", RuleVulnerable, "GHSA-c2qf-rxjj-qqgw"},
			},
		},
		{
			desc: "without a database the rules block nothing",
			spec: Spec{Malicious: "block", Vulnerable: &VulnerableSpec{MinSeverity: "low"}},
			nodb: true,
			checks: []check{
				{"npmgate-e2e-malware", "1.0.0", "", ""},
				{"semver", "7.5.1", "", ""},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			p, err := Compile(&tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if !p.UsesAdvisories() && tc.spec.Malicious != "off" {
				t.Fatal("UsesAdvisories is false")
			}
			if !tc.nodb {
				p = p.WithAdvisories(db)
			}
			for _, c := range tc.checks {
				d := p.Version(c.name, Facts{Version: c.version, Published: old}, now)
				if d.Rule != c.rule || d.Allowed != (c.rule == "") {
					t.Errorf("%s@%s: rule %q allowed %v, want %q (%s)", c.name, c.version, d.Rule, d.Allowed, c.rule, d.Reason)
					continue
				}
				if c.id != "" && !strings.Contains(d.Reason, c.id) {
					t.Errorf("%s@%s: reason %q does not name %s", c.name, c.version, d.Reason, c.id)
				}
			}
		})
	}
}

func TestAdvisoryRuleErrors(t *testing.T) {
	cases := []struct {
		spec Spec
		want string
	}{
		{Spec{Malicious: "yes"}, `malicious: "yes": want "block" or "off"`},
		{Spec{Vulnerable: &VulnerableSpec{}}, `vulnerable.min_severity: "": want low, moderate, high or critical`},
		{Spec{Vulnerable: &VulnerableSpec{MinSeverity: "severe"}}, `vulnerable.min_severity: "severe"`},
		{Spec{Vulnerable: &VulnerableSpec{MinSeverity: "high", ExemptNames: []string{"@acme/*"}}}, `vulnerable.exempt_names[0]: "@acme/*": want an exact package name`},
		{Spec{Vulnerable: &VulnerableSpec{MinSeverity: "high", ExemptIDs: []string{"GHSA x"}}}, `vulnerable.exempt_ids[0]: "GHSA x": want an advisory id`},
		{Spec{Malicious: "block", MaliciousExempt: []string{""}}, `malicious_exempt[0]: "": want an advisory id`},
	}
	for _, tc := range cases {
		_, err := Compile(&tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.spec, err, tc.want)
		}
	}
}

// The rules change the fingerprint; the database does not (the caller
// keys by it).
func TestAdvisoryFingerprint(t *testing.T) {
	base, _ := Compile(&Spec{Deprecated: "hide"})
	mal, _ := Compile(&Spec{Deprecated: "hide", Malicious: "block"})
	vuln, _ := Compile(&Spec{Deprecated: "hide", Vulnerable: &VulnerableSpec{MinSeverity: "high"}})
	vuln2, _ := Compile(&Spec{Deprecated: "hide", Vulnerable: &VulnerableSpec{MinSeverity: "high", ExemptNames: []string{"semver"}}})
	fps := map[string]bool{}
	for _, p := range []*Policy{base, mal, vuln, vuln2} {
		fps[p.Fingerprint()] = true
	}
	if len(fps) != 4 {
		t.Errorf("fingerprints not distinct: %v", fps)
	}
	if got := mal.WithAdvisories(testDB(t)).Fingerprint(); got != mal.Fingerprint() {
		t.Errorf("WithAdvisories changed the fingerprint")
	}
}
