package osv

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseRecordRealGHSA(t *testing.T) {
	data, err := os.ReadFile(testdataDir + "/GHSA-c2qf-rxjj-qqgw.json")
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseRecord(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "GHSA-c2qf-rxjj-qqgw" || a.Malicious || len(a.Aliases) != 1 || a.Aliases[0] != "CVE-2022-25883" {
		t.Errorf("id/aliases/malicious: %+v", a)
	}
	if a.Summary != "semver vulnerable to Regular Expression Denial of Service" {
		t.Errorf("summary %q", a.Summary)
	}
	if !a.Published.Equal(time.Date(2023, 6, 21, 6, 30, 28, 0, time.UTC)) || !a.Modified.Equal(time.Date(2023, 7, 10, 22, 57, 56, 0, time.UTC)) {
		t.Errorf("times %v %v", a.Published, a.Modified)
	}
	if a.Severity != Moderate || a.Score != 5.3 || a.Vector != "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L" {
		t.Errorf("severity %v %v %q", a.Severity, a.Score, a.Vector)
	}
	if len(a.CWEs) != 1 || a.CWEs[0] != "CWE-1333" {
		t.Errorf("cwes %v", a.CWEs)
	}
	if a.URL != "https://github.com/advisories/GHSA-c2qf-rxjj-qqgw" {
		t.Errorf("url %q", a.URL)
	}
	if len(a.Affected) != 3 || a.Affected[0].Name != "semver" || len(a.Affected[0].Ranges[0].Events) != 2 {
		t.Errorf("affected %+v", a.Affected)
	}
}

func TestParseRecordMalicious(t *testing.T) {
	for _, tc := range []struct{ name, rec string }{
		{"MAL- id", `{"id":"MAL-2025-46974","affected":[{"package":{"ecosystem":"npm","name":"debug"},"versions":["4.4.2"]}]}`},
		{"OpenSSF origin", `{"id":"OSV-X-1","affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]}],
			"database_specific":{"malicious-packages-origins":[{"source":"ghsa-malware"}]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseRecord([]byte(tc.rec), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !a.Malicious || a.Severity != Critical {
				t.Errorf("malicious %v severity %v, want true critical", a.Malicious, a.Severity)
			}
		})
	}
	a, err := ParseRecord([]byte(`{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]}],"database_specific":{"malicious-packages-origins":null}}`), Limits{})
	if err != nil || a.Malicious {
		t.Errorf("a null origins list is not malicious: %v %v", a, err)
	}
}

func TestParseRecordRefused(t *testing.T) {
	npmAffected := `"affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}]}]`
	for _, tc := range []struct {
		name string
		rec  string
		lim  Limits
		want error
	}{
		{"withdrawn", `{"id":"GHSA-w","withdrawn":"2024-01-01T00:00:00Z",` + npmAffected + `}`, Limits{}, ErrWithdrawn},
		{"duplicate key", `{"id":"GHSA-a","id":"GHSA-b",` + npmAffected + `}`, Limits{}, ErrDuplicateKey},
		{"duplicate nested key", `{"id":"GHSA-a","affected":[{"package":{"ecosystem":"npm","name":"x","name":"y"},"versions":["1.0.0"]}]}`, Limits{}, ErrDuplicateKey},
		{"escaped duplicate key", `{"id":"GHSA-a","i\u0064":"GHSA-b",` + npmAffected + `}`, Limits{}, ErrDuplicateKey},
		// Go's decoder reads "ID" into the id field, JavaScript keeps two.
		{"key twice in two cases", `{"id":"GHSA-a","ID":"GHSA-b",` + npmAffected + `}`, Limits{}, ErrDuplicateKey},
		{"nested key in two cases", `{"id":"GHSA-a","affected":[{"package":{"ecosystem":"npm","name":"x","Name":"y"},"versions":["1.0.0"]}]}`, Limits{}, ErrDuplicateKey},
		{"capitals alone", `{"ID":"GHSA-a",` + npmAffected + `}`, Limits{}, ErrDuplicateKey},
		{"Kelvin sign", `{"id":"GHSA-a",` + npmAffected + `,"database_specific":{"malicious-packages-origins":null,"malicious-pac` + "\u212a" + `ages-origins":[{}]}}`, Limits{}, ErrDuplicateKey},
		{"escaped Kelvin sign", `{"id":"GHSA-a",` + npmAffected + `,"database_specific":{"malicious-pac\u212Aages-origins":[{}]}}`, Limits{}, ErrDuplicateKey},
		{"long s", "{\"id\":\"GHSA-a\",\"summary\":\"a\",\"\u017fummary\":\"b\"," + npmAffected + "}", Limits{}, ErrDuplicateKey},
		{"too large", `{"id":"GHSA-big","details":"` + strings.Repeat("x", 2000) + `",` + npmAffected + `}`, Limits{RecordBytes: 1000}, ErrTooLarge},
		{"other ecosystem", `{"id":"PYSEC-1","affected":[{"package":{"ecosystem":"PyPI","name":"x"},"versions":["1.0"]}]}`, Limits{}, ErrNotNPM},
		{"no affected", `{"id":"GHSA-n"}`, Limits{}, ErrNotNPM},
		{"not JSON", `{"id":`, Limits{}, ErrInvalid},
		{"no id", `{` + npmAffected + `}`, Limits{}, ErrInvalid},
		{"id too long", `{"id":"` + strings.Repeat("A", 200) + `",` + npmAffected + `}`, Limits{}, ErrInvalid},
		{"event with two members", `{"id":"GHSA-e","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0","fixed":"1.0.0"}]}]}]}`, Limits{}, ErrInvalid},
		{"empty event", `{"id":"GHSA-e","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{}]}]}]}`, Limits{}, ErrInvalid},
		{"version not semver", `{"id":"GHSA-e","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"banana"}]}]}]}`, Limits{}, ErrInvalid},
		{"name too long", `{"id":"GHSA-e","affected":[{"package":{"ecosystem":"npm","name":"` + strings.Repeat("n", 300) + `"},"versions":["1.0.0"]}]}`, Limits{}, ErrInvalid},
		{"too many events", `{"id":"GHSA-e","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[` + strings.Repeat(`{"introduced":"1.0.0"},`, maxEvents) + `{"fixed":"2.0.0"}]}]}]}`, Limits{}, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseRecord([]byte(tc.rec), tc.lim)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseRecord = %+v, %v; want %v", a, err, tc.want)
			}
		})
	}
}

func TestParseRecordBoundsText(t *testing.T) {
	rec := `{"id":"GHSA-t","summary":"` + strings.Repeat("s", 5000) + `","details":"` + strings.Repeat("é", 10000) + `",` +
		`"affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]},{"package":{"ecosystem":"Go","name":"y"},"versions":["v1"]}]}`
	a, err := ParseRecord([]byte(rec), Limits{Details: 101})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Summary) != maxSummary {
		t.Errorf("summary kept %d bytes, want %d", len(a.Summary), maxSummary)
	}
	// 101 bytes would split a two-byte é: the cut keeps 100.
	if len(a.Details) != 100 || !strings.HasPrefix(a.Details, "éé") || strings.ContainsRune(a.Details, '\uFFFD') {
		t.Errorf("details kept %d bytes: %q", len(a.Details), a.Details[len(a.Details)-4:])
	}
	if len(a.Affected) != 1 || a.Affected[0].Name != "x" {
		t.Errorf("only the npm entry is kept: %+v", a.Affected)
	}
}

func TestParseRecordURL(t *testing.T) {
	for _, tc := range []struct{ rec, want string }{
		{`{"id":"MAL-2025-1","references":[{"type":"WEB","url":"https://w"},{"type":"ADVISORY","url":"https://a"}]`, "https://a"},
		{`{"id":"MAL-2025-1","references":[{"type":"PACKAGE","url":"https://p"},{"type":"WEB","url":"https://w"}]`, "https://w"},
		{`{"id":"MAL-2025-1","references":[{"type":"WEB","url":"javascript:alert(1)"}]`, "https://osv.dev/vulnerability/MAL-2025-1"},
		{`{"id":"MAL-2025-1"`, "https://osv.dev/vulnerability/MAL-2025-1"},
	} {
		a, err := ParseRecord([]byte(tc.rec+`,"affected":[{"package":{"ecosystem":"npm","name":"x"},"versions":["1.0.0"]}]}`), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if a.URL != tc.want {
			t.Errorf("%s: url %q, want %q", tc.rec, a.URL, tc.want)
		}
	}
}

// FuzzParseRecord: any bytes give an advisory or an error, never a
// panic, and an advisory keeps its bounds.
func FuzzParseRecord(f *testing.F) {
	for _, data := range dirFiles(f, testdataDir) {
		f.Add(data)
	}
	f.Add([]byte(`{"id":"GHSA-x","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"last_affected":"1.0.0"},{"limit":"2.0.0"}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseRecord(data, Limits{RecordBytes: 64 << 10, Details: 512})
		if err != nil {
			return
		}
		if a.ID == "" || len(a.ID) > maxIDLen || len(a.Details) > 512 || len(a.Summary) > maxSummary || len(a.Affected) == 0 {
			t.Fatalf("bounds broken: %+v", a)
		}
		for _, af := range a.Affected {
			e := entry{adv: a, name: af.Name, ranges: af.Ranges, versions: af.Versions}
			_ = e.vulnerableRange()
			_ = e.patchedRange()
			v, ok := parseStrict("1.2.3")
			_ = e.affects("1.2.3", v, ok)
		}
	})
}
