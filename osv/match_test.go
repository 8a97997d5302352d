package osv

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/Masterminds/semver/v3"
)

// Ranges of real GitHub advisories (github/advisory-database), trimmed to
// what matching reads, for packages not in the recorded registry.
var realRanges = map[string]string{
	// lodash: one range, introduced 0; names lodash and lodash-es.
	"GHSA-35jh-r3h4-6jhm": `{"id":"GHSA-35jh-r3h4-6jhm","summary":"Command Injection in lodash",
		"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"}],
		"affected":[{"package":{"ecosystem":"npm","name":"lodash"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"4.17.21"}]}]},
			{"package":{"ecosystem":"npm","name":"lodash-es"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"4.17.21"}]}]}],
		"database_specific":{"cwe_ids":["CWE-77","CWE-94"],"severity":"HIGH"}}`,
	// minimist: two lines.
	"GHSA-xvch-5gv4-984h": `{"id":"GHSA-xvch-5gv4-984h","summary":"Prototype Pollution in minimist",
		"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
		"affected":[{"package":{"ecosystem":"npm","name":"minimist"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0.0"},{"fixed":"1.2.6"}]}]},
			{"package":{"ecosystem":"npm","name":"minimist"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"0.2.4"}]}]}],
		"database_specific":{"cwe_ids":["CWE-1321"],"severity":"CRITICAL"}}`,
	// node-fetch: overlapping ranges, and "1.0", not a full version.
	"GHSA-r683-j2x4-v87g": `{"id":"GHSA-r683-j2x4-v87g","summary":"node-fetch forwards secure headers to untrusted sites",
		"severity":[{"type":"CVSS_V3","score":"CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}],
		"affected":[{"package":{"ecosystem":"npm","name":"node-fetch"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.0"},{"fixed":"3.1.1"}]}]},
			{"package":{"ecosystem":"npm","name":"node-fetch"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.6.7"}]}]}],
		"database_specific":{"cwe_ids":["CWE-173","CWE-200","CWE-601"],"severity":"HIGH"}}`,
	// axios: the record spells the name "Axios" and has no vector.
	"GHSA-8hc4-vh64-cxmj": `{"id":"GHSA-8hc4-vh64-cxmj","summary":"Server-Side Request Forgery in axios","severity":[],
		"affected":[{"package":{"ecosystem":"npm","name":"Axios"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"1.3.2"},{"fixed":"1.7.4"}]}]}],
		"database_specific":{"cwe_ids":["CWE-918"],"severity":"HIGH"}}`,
	// Not real: the event kinds no npm GHSA uses yet, and unsorted events.
	"TEST-last-affected": `{"id":"TEST-last-affected","affected":[{"package":{"ecosystem":"npm","name":"edge"},
		"ranges":[{"type":"SEMVER","events":[{"last_affected":"1.4.0"},{"introduced":"1.2.0"},{"introduced":"2.0.0-beta.2"},{"fixed":"2.0.0"}]}]}]}`,
	"TEST-limit": `{"id":"TEST-limit","affected":[{"package":{"ecosystem":"npm","name":"limited"},
		"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"limit":"3.0.0"}]}]}]}`,
	"TEST-git": `{"id":"TEST-git","affected":[{"package":{"ecosystem":"npm","name":"gitonly"},
		"ranges":[{"type":"GIT","repo":"https://example.com/r","events":[{"introduced":"abc"},{"fixed":"def"}]}],"versions":["0.9.0"]}]}`,
}

func dbOf(t testing.TB, records ...string) *DB {
	t.Helper()
	b := newBuilder(Limits{})
	for _, r := range records {
		if err := b.add([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	if b.stats.Skipped() != 0 {
		t.Fatalf("records skipped: %+v", b.stats)
	}
	db, err := b.db()
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestAffecting(t *testing.T) {
	recs := []string{}
	for _, r := range realRanges {
		recs = append(recs, r)
	}
	for _, data := range dirFiles(t, testdataDir) {
		recs = append(recs, string(data))
	}
	db := dbOf(t, recs...)
	for _, tc := range []struct {
		name, version string
		want          []string
	}{
		// testdata/osv: versions of the recorded registry.
		{"semver", "5.7.1", []string{"GHSA-c2qf-rxjj-qqgw"}},
		{"semver", "5.7.2", nil},
		{"semver", "6.3.0", []string{"GHSA-c2qf-rxjj-qqgw"}},
		{"semver", "6.3.1", nil},
		{"semver", "7.5.1", []string{"GHSA-c2qf-rxjj-qqgw"}},
		{"semver", "7.5.2", nil},
		{"semver", "7.8.6", nil},
		{"semver", "2.0.0-alpha", []string{"GHSA-c2qf-rxjj-qqgw"}},
		{"debug", "2.6.8", []string{"GHSA-gxpj-cx7g-858c"}},
		{"debug", "2.6.9", nil},
		{"debug", "3.1.0", nil},
		{"debug", "3.2.6", []string{"GHSA-gxpj-cx7g-858c"}},
		{"debug", "4.3.0", []string{"GHSA-gxpj-cx7g-858c"}},
		{"debug", "4.3.1", nil},
		{"debug", "4.4.2", []string{"MAL-2025-46974"}}, // the compromised release, listed exactly
		{"debug", "4.4.3", nil},
		{"ms", "1.0.0", []string{"GHSA-w9mr-4mfr-499f"}},
		{"ms", "2.0.0", nil},
		{"ms", "3.0.0-canary.1", nil},
		{"json5", "1.0.1", []string{"GHSA-9c47-m6qq-7p4h"}},
		{"json5", "1.0.0-beta-2", []string{"GHSA-9c47-m6qq-7p4h"}},
		{"json5", "1.0.2", nil},
		{"json5", "2.2.1", []string{"GHSA-9c47-m6qq-7p4h"}},
		{"json5", "2.2.3", nil},
		{"ansi-regex", "2.1.1", nil},
		{"ansi-regex", "3.0.0", []string{"GHSA-93q8-gq69-wqmw"}},
		{"ansi-regex", "4.1.0", []string{"GHSA-93q8-gq69-wqmw"}},
		{"ansi-regex", "5.0.1", nil},
		{"ansi-regex", "6.0.0", []string{"GHSA-93q8-gq69-wqmw"}},
		{"ansi-regex", "6.6.0", nil},
		{"npmgate-e2e-malware", "0.0.1", []string{"MAL-0000-npmgate-e2e-malware"}},
		{"npmgate-e2e-malware", "99.0.0-rc.1", []string{"MAL-0000-npmgate-e2e-malware"}},
		// Real ranges of packages outside the recorded registry.
		{"lodash", "4.17.20", []string{"GHSA-35jh-r3h4-6jhm"}},
		{"lodash", "4.17.21", nil},
		{"lodash-es", "4.17.15", []string{"GHSA-35jh-r3h4-6jhm"}},
		{"minimist", "0.2.3", []string{"GHSA-xvch-5gv4-984h"}},
		{"minimist", "0.2.4", nil},
		{"minimist", "1.2.5", []string{"GHSA-xvch-5gv4-984h"}},
		{"minimist", "1.2.6", nil},
		{"node-fetch", "2.6.7", []string{"GHSA-r683-j2x4-v87g"}}, // inside [1.0, 3.1.1)
		{"node-fetch", "3.1.1", nil},
		{"axios", "1.7.3", []string{"GHSA-8hc4-vh64-cxmj"}},
		{"axios", "1.3.1", nil},
		{"axios", "1.7.4", nil},
		// Event kinds and prerelease order (SemVer 2.0.0 §11).
		{"edge", "1.1.9", nil},
		{"edge", "1.2.0", []string{"TEST-last-affected"}},
		{"edge", "1.4.0", []string{"TEST-last-affected"}},
		{"edge", "1.4.1-rc.1", nil},
		{"edge", "1.4.1", nil},
		{"edge", "2.0.0-beta.1", nil},
		{"edge", "2.0.0-beta.2", []string{"TEST-last-affected"}},
		{"edge", "2.0.0-beta.11", []string{"TEST-last-affected"}}, // numeric identifiers compare as numbers
		{"edge", "2.0.0-rc.1", []string{"TEST-last-affected"}},
		{"edge", "2.0.0", nil},
		{"limited", "2.9.9", []string{"TEST-limit"}},
		{"limited", "3.0.0", nil},
		{"gitonly", "0.9.0", []string{"TEST-git"}},
		{"gitonly", "1.0.0", nil},
		// Versions that are not SemVer match only when listed.
		{"semver", "not-a-version", nil},
		{"semver", "v5.0.0", nil},
		{"unknown-package", "1.0.0", nil},
	} {
		got := ids(db.Affecting(tc.name, tc.version))
		if tc.want == nil {
			tc.want = []string{}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Affecting(%s, %s) = %v, want %v", tc.name, tc.version, got, tc.want)
		}
	}
}

// The range walk agrees with Masterminds' constraint check on the ranges
// vulnerableRange writes for them, over every recorded version.
func TestVulnerableRangeAgreesWithMatching(t *testing.T) {
	db := testDB(t)
	versions := []string{"0.0.1", "1.0.0", "1.0.1", "1.0.2", "2.0.0", "2.2.1", "2.2.2", "2.6.8", "2.6.9", "3.0.0", "3.0.1",
		"3.1.0", "3.2.6", "3.2.7", "4.0.0", "4.1.0", "4.1.1", "4.3.0", "4.3.1", "4.4.2", "5.0.0", "5.0.1", "5.7.1", "5.7.2",
		"6.0.0", "6.0.1", "6.3.0", "6.3.1", "7.0.0", "7.5.1", "7.5.2", "7.8.6"}
	for name, entries := range db.byName {
		for i := range entries {
			e := &entries[i]
			r := e.vulnerableRange()
			c, err := semver.NewConstraint(r)
			if err != nil {
				t.Fatalf("%s %s: range %q does not parse: %v", name, e.adv.ID, r, err)
			}
			for _, s := range versions {
				v, ok := parseStrict(s)
				if got, want := c.Check(semver.MustParse(s)), e.affects(s, v, ok); got != want {
					t.Errorf("%s@%s %s: range %q says %v, matching %v", name, s, e.adv.ID, r, got, want)
				}
			}
		}
	}
}

func TestVulnerableAndPatchedRanges(t *testing.T) {
	recs := []string{}
	for _, r := range realRanges {
		recs = append(recs, r)
	}
	for _, data := range dirFiles(t, testdataDir) {
		recs = append(recs, string(data))
	}
	db := dbOf(t, recs...)
	for _, tc := range []struct{ name, id, vulnerable, patched string }{
		{"semver", "GHSA-c2qf-rxjj-qqgw", "<5.7.2 || >=6.0.0 <6.3.1 || >=7.0.0 <7.5.2", ">=5.7.2 <6.0.0 || >=6.3.1 <7.0.0 || >=7.5.2"},
		{"debug", "GHSA-gxpj-cx7g-858c", "<2.6.9 || >=3.0.0 <3.1.0 || >=3.2.0 <3.2.7 || >=4.0.0 <4.3.1", ">=2.6.9 <3.0.0 || >=3.1.0 <3.2.0 || >=3.2.7 <4.0.0 || >=4.3.1"},
		{"debug", "MAL-2025-46974", "4.4.2", "<4.4.2 || >4.4.2"},
		{"ms", "GHSA-w9mr-4mfr-499f", "<2.0.0", ">=2.0.0"},
		{"node-fetch", "GHSA-r683-j2x4-v87g", "<3.1.1", ">=3.1.1"},
		{"axios", "GHSA-8hc4-vh64-cxmj", ">=1.3.2 <1.7.4", "<1.3.2 || >=1.7.4"},
		{"npmgate-e2e-malware", "MAL-0000-npmgate-e2e-malware", "*", "<0.0.0"},
		{"edge", "TEST-last-affected", ">=1.2.0 <=1.4.0 || >=2.0.0-beta.2 <2.0.0", "<1.2.0 || >1.4.0 <2.0.0-beta.2 || >=2.0.0"},
		{"limited", "TEST-limit", "<3.0.0", ">=3.0.0"},
	} {
		var e *entry
		for i, cand := range db.entries(tc.name) {
			if cand.adv.ID == tc.id {
				e = &db.entries(tc.name)[i]
			}
		}
		if e == nil {
			t.Fatalf("no entry %s for %s", tc.id, tc.name)
		}
		if got := e.vulnerableRange(); got != tc.vulnerable {
			t.Errorf("%s %s vulnerable %q, want %q", tc.name, tc.id, got, tc.vulnerable)
		}
		if got := e.patchedRange(); got != tc.patched {
			t.Errorf("%s %s patched %q, want %q", tc.name, tc.id, got, tc.patched)
		}
	}
}

func TestAffectingAllocatesNothingWhenNothingMatches(t *testing.T) {
	db := testDB(t)
	for _, tc := range []struct {
		name, version string
		max           float64
	}{
		{"react", "17.0.2", 0}, // a name no advisory names
		{"@types/node", "20.1.0", 0},
	} {
		if n := testing.AllocsPerRun(100, func() { _ = db.Affecting(tc.name, tc.version) }); n > tc.max {
			t.Errorf("Affecting(%s, %s) allocates %v times, want at most %v", tc.name, tc.version, n, tc.max)
		}
	}
}

func TestAdvisoryIs(t *testing.T) {
	db := testDB(t)
	a := db.Affecting("semver", "7.5.1")[0]
	for _, id := range []string{"GHSA-c2qf-rxjj-qqgw", "ghsa-c2qf-rxjj-qqgw", "CVE-2022-25883"} {
		if !a.Is(id) {
			t.Errorf("Is(%s) false", id)
		}
	}
	if a.Is("CVE-2022-0000") {
		t.Error("Is(an unrelated id) true")
	}
}

// A record of the test data round-trips the fields the e2e tests assert on.
func TestTestdataStats(t *testing.T) {
	st := testDB(t).Stats()
	if st.Records != 7 || st.Malicious != 2 || st.Skipped() != 0 {
		b, _ := json.Marshal(st)
		t.Errorf("stats %s, want 7 records, 2 malicious", b)
	}
}
