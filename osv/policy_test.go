package osv

import "testing"

func TestRuleBlocking(t *testing.T) {
	db := testDB(t)
	for _, tc := range []struct {
		name         string
		rule         Rule
		pkg, version string
		want         string // advisory id, "" for none
	}{
		{"malicious blocks", Rule{Malicious: true}, "debug", "4.4.2", "MAL-2025-46974"},
		{"malicious off", Rule{}, "debug", "4.4.2", ""},
		{"made-up malware, any version", Rule{Malicious: true}, "npmgate-e2e-malware", "1.0.0", "MAL-0000-npmgate-e2e-malware"},
		{"moderate below high", Rule{Malicious: true, MinSeverity: High}, "semver", "7.5.1", ""},
		{"moderate at moderate", Rule{MinSeverity: Moderate}, "semver", "7.5.1", "GHSA-c2qf-rxjj-qqgw"},
		{"high at high", Rule{MinSeverity: High}, "json5", "2.2.1", "GHSA-9c47-m6qq-7p4h"},
		{"fixed version", Rule{MinSeverity: Low}, "json5", "2.2.3", ""},
		{"exempt id", Rule{MinSeverity: High, ExemptIDs: []string{"GHSA-9c47-m6qq-7p4h"}}, "json5", "2.2.1", ""},
		{"exempt by CVE alias", Rule{MinSeverity: High, ExemptIDs: []string{"CVE-2022-46175"}}, "json5", "2.2.1", ""},
		{"exempt name", Rule{MinSeverity: High, ExemptNames: []string{"json5"}}, "json5", "2.2.1", ""},
		{"exempt name keeps malware out", Rule{Malicious: true, ExemptNames: []string{"debug"}}, "debug", "4.4.2", "MAL-2025-46974"},
		{"exempt id lets a malicious record through", Rule{Malicious: true, ExemptIDs: []string{"MAL-2025-46974"}}, "debug", "4.4.2", ""},
		{"clean name", Rule{Malicious: true, MinSeverity: Low}, "react", "17.0.2", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if a := tc.rule.Blocking(db, tc.pkg, tc.version); a != nil {
				got = a.ID
			}
			if got != tc.want {
				t.Errorf("Blocking(%s@%s) = %q, want %q", tc.pkg, tc.version, got, tc.want)
			}
		})
	}
}

func TestRuleBlockingPrefersMalicious(t *testing.T) {
	db := dbOf(t,
		`{"id":"GHSA-aaaa","affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]}],"database_specific":{"severity":"CRITICAL"}}`,
		`{"id":"GHSA-bbbb","affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]}],"database_specific":{"severity":"HIGH"}}`,
		`{"id":"MAL-2025-9","affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]}]}`)
	r := Rule{Malicious: true, MinSeverity: High}
	if a := r.Blocking(db, "x", "1.0.0"); a == nil || a.ID != "MAL-2025-9" {
		t.Errorf("Blocking = %v", a)
	}
	r.Malicious = false
	if a := r.Blocking(db, "x", "1.0.0"); a == nil || a.ID != "GHSA-aaaa" {
		t.Errorf("Blocking = %v", a)
	}
	if n := testing.AllocsPerRun(100, func() { r.Blocking(db, "y", "1.0.0") }); n != 0 {
		t.Errorf("Blocking of a clean name allocates %v times", n)
	}
}

func TestAdvisoryReason(t *testing.T) {
	db := testDB(t)
	for _, tc := range []struct{ pkg, version, want string }{
		{"debug", "4.4.2", "malicious package (MAL-2025-46974)"},
		{"semver", "7.5.1", "vulnerability GHSA-c2qf-rxjj-qqgw (moderate, CVSS 5.3)"},
	} {
		if got := db.Affecting(tc.pkg, tc.version)[0].Reason(); got != tc.want {
			t.Errorf("Reason = %q, want %q", got, tc.want)
		}
	}
}
