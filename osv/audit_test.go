package osv

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// golden compares got (JSON) with testdata/audit/name, indented; -update
// rewrites the file.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	if bytes.Contains(got, []byte(`\u003`)) {
		t.Errorf("answer has HTML escapes: %s", got)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, got)
	}
	pretty.WriteByte('\n')
	path := "testdata/audit/" + name
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("%s differs (go test ./osv -run %s -update rewrites it):\n%s", path, t.Name(), pretty.Bytes())
	}
}

func readRequest(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/audit/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestBulkAudit(t *testing.T) {
	got, err := testDB(t).BulkAudit(readRequest(t, "bulk-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "bulk-response.json", got)

	// The fields npm's metavuln-calculator reads, with their types.
	var resp map[string][]map[string]any
	if err := json.Unmarshal(got, &resp); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"react", "ms", "json5"} {
		if _, ok := resp[name]; ok {
			t.Errorf("%s has no affected version and is listed", name)
		}
	}
	if len(resp["debug"]) != 2 || len(resp["semver"]) != 1 || len(resp["ansi-regex"]) != 1 || len(resp["npmgate-e2e-malware"]) != 1 {
		t.Errorf("advisories by name: %v", resp)
	}
	for name, advs := range resp {
		for _, a := range advs {
			id, ok := a["id"].(float64)
			if !ok || id < 1<<50 || id >= 1<<53 {
				t.Errorf("%s: id %v is not a JavaScript-safe number above the registry's", name, a["id"])
			}
			for _, k := range []string{"url", "title", "severity", "vulnerable_versions"} {
				if s, _ := a[k].(string); s == "" {
					t.Errorf("%s: %s is %v", name, k, a[k])
				}
			}
			if _, ok := a["cwe"].([]any); !ok {
				t.Errorf("%s: cwe is %v, want a list", name, a["cwe"])
			}
			if c, ok := a["cvss"].(map[string]any); !ok || c["score"] == nil {
				t.Errorf("%s: cvss is %v", name, a["cvss"])
			}
		}
	}
	if mal := resp["npmgate-e2e-malware"][0]; mal["severity"] != "critical" || mal["vulnerable_versions"] != "*" {
		t.Errorf("malicious: %v", mal)
	}

	clean, err := testDB(t).BulkAudit([]byte(`{"react":["17.0.2"],"semver":["7.8.6"]}`))
	if err != nil || string(clean) != "{}" {
		t.Errorf("a clean tree: %s %v", clean, err)
	}
}

func TestV1Audit(t *testing.T) {
	got, err := testDB(t).V1Audit(readRequest(t, "v1-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "v1-response.json", got)

	var resp struct {
		Actions []struct {
			Action   string
			Module   string
			Resolves []struct {
				ID   int64
				Path string
				Dev  bool
			}
		}
		Advisories map[string]V1Advisory
		Metadata   V1Summary
	}
	if err := json.Unmarshal(got, &resp); err != nil {
		t.Fatal(err)
	}
	// yarn 1 prints one table per resolve, looking its advisory up by id.
	paths := map[string]bool{}
	for _, a := range resp.Actions {
		for _, r := range a.Resolves {
			adv, ok := resp.Advisories[strconv.FormatInt(r.ID, 10)]
			if !ok || adv.ModuleName != a.Module {
				t.Errorf("resolve %+v has no advisory of module %s", r, a.Module)
			}
			paths[adv.ModuleName+" "+r.Path] = true
		}
	}
	for _, want := range []string{"debug debug", "ms debug>ms", "json5 json5", "ansi-regex wrap-ansi-cjs>ansi-regex", "ansi-regex strip-ansi-cjs>ansi-regex"} {
		if !paths[want] {
			t.Errorf("no resolve for %s: %v", want, paths)
		}
	}
	if paths["ms ms"] {
		t.Error("ms 2.1.3 is not affected")
	}
	v := resp.Metadata.Vulnerabilities
	if v["moderate"] != 2 || v["high"] != 3 || v["critical"] != 0 || resp.Metadata.TotalDependencies != 10 || resp.Metadata.DevDependencies != 1 {
		t.Errorf("metadata %+v", resp.Metadata)
	}
	for _, adv := range resp.Advisories {
		if adv.PatchedVersions == "" || adv.VulnerableVersions == "" || adv.URL == "" || adv.Title == "" || len(adv.Findings) == 0 {
			t.Errorf("advisory lacks what yarn 1 and pnpm print: %+v", adv)
		}
	}
}

func TestAuditRefusesBadRequests(t *testing.T) {
	db := testDB(t)
	deep := strings.Repeat(`{"dependencies":{"a":`, maxAuditDepth+2) + `{}` + strings.Repeat(`}}`, maxAuditDepth+2)
	for _, tc := range []struct {
		name string
		f    func([]byte) ([]byte, error)
		body string
	}{
		{"bulk not JSON", db.BulkAudit, `{`},
		{"bulk wrong shape", db.BulkAudit, `{"a":"1.0.0"}`},
		{"v1 not JSON", db.V1Audit, `[`},
		{"v1 too deep", db.V1Audit, deep},
	} {
		if out, err := tc.f([]byte(tc.body)); !errors.Is(err, ErrAuditRequest) {
			t.Errorf("%s: %s %v", tc.name, out, err)
		}
	}
}

func TestNumericID(t *testing.T) {
	a, b := NumericID("GHSA-35jh-r3h4-6jhm", "lodash"), NumericID("GHSA-35jh-r3h4-6jhm", "lodash-es")
	if a == b || a != NumericID("GHSA-35jh-r3h4-6jhm", "Lodash") {
		t.Errorf("ids %d %d", a, b)
	}
	if a < 1<<50 || a >= 1<<51 {
		t.Errorf("id %d out of its range", a)
	}
}
