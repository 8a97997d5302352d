package osv

import "testing"

// Published vectors and the base scores NVD and FIRST give them.
func TestCVSSScore(t *testing.T) {
	for _, tc := range []struct {
		vector string
		score  float64
		level  Severity
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, Critical}, // CVE-2021-44228 (Log4Shell)
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, Critical},  // CVE-2021-44906 (minimist)
		{"CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8, High},      // CVE-2022-0235 (node-fetch)
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5, High},      // CVE-2014-0160 (Heartbleed)
		{"CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H", 7.2, High},      // CVE-2021-23337 (lodash)
		{"CVSS:3.1/AV:N/AC:H/PR:L/UI:N/S:U/C:H/I:L/A:H", 7.1, High},      // CVE-2022-46175 (json5)
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", 5.3, Moderate},  // CVE-2022-25883 (semver)
		{"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", 5.3, Moderate},  // CVE-2017-16137 (debug)
		{"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:L", 3.7, Low},
		{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:N", 0.0, SeverityUnknown},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3, Critical}, // FIRST's v4.0 example
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", 0.0, SeverityUnknown},
	} {
		score, ok := CVSSScore(tc.vector)
		if !ok || score != tc.score {
			t.Errorf("CVSSScore(%s) = %v, %v; want %v", tc.vector, score, ok, tc.score)
		}
		if got := SeverityOfScore(score); got != tc.level {
			t.Errorf("SeverityOfScore(%v) = %v, want %v", score, got, tc.level)
		}
	}
	for _, bad := range []string{"", "AV:N/AC:L", "CVSS:3.1/AV:N", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P"} {
		if _, ok := CVSSScore(bad); ok {
			t.Errorf("CVSSScore(%q) ok", bad)
		}
	}
}

func TestSeverityOfScoreEdges(t *testing.T) {
	for score, want := range map[float64]Severity{0.1: Low, 3.9: Low, 4.0: Moderate, 6.9: Moderate, 7.0: High, 8.9: High, 9.0: Critical, 10: Critical} {
		if got := SeverityOfScore(score); got != want {
			t.Errorf("SeverityOfScore(%v) = %v, want %v", score, got, want)
		}
	}
}

// Which source of a level a record's severity comes from.
func TestRecordSeverity(t *testing.T) {
	aff := `,"affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]}]}`
	for _, tc := range []struct {
		name, rec string
		level     Severity
		score     float64
	}{
		{"v3 over the database's level", `{"id":"GHSA-a","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}],"database_specific":{"severity":"HIGH"}`, Moderate, 5.3},
		{"v3 over v4", `{"id":"GHSA-a","severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"},{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:L"}]`, Low, 3.7},
		{"v4 alone", `{"id":"GHSA-a","severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}],"database_specific":{"severity":"LOW"}`, Critical, 9.3},
		{"bad vector: the database's level", `{"id":"GHSA-a","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N"}],"database_specific":{"severity":"MODERATE"}`, Moderate, 0},
		{"no vector: the database's level", `{"id":"GHSA-a","severity":[],"database_specific":{"severity":"CRITICAL"}`, Critical, 0},
		{"nothing", `{"id":"GHSA-a"`, SeverityUnknown, 0},
		{"malicious is critical", `{"id":"MAL-2025-1","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:L"}]`, Critical, 3.7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseRecord([]byte(tc.rec+aff), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if a.Severity != tc.level || a.Score != tc.score {
				t.Errorf("severity %v score %v, want %v %v", a.Severity, a.Score, tc.level, tc.score)
			}
		})
	}
}

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]Severity{"low": Low, "MODERATE": Moderate, "medium": Moderate, " High ": High, "critical": Critical} {
		if got, ok := ParseSeverity(in); !ok || got != want {
			t.Errorf("ParseSeverity(%q) = %v, %v", in, got, ok)
		}
	}
	if _, ok := ParseSeverity("severe"); ok {
		t.Error("ParseSeverity(severe) ok")
	}
}
