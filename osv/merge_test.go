package osv

import (
	"encoding/json"
	"errors"
	"testing"
)

// An answer in the registry's shape (ids are the registry's numbers; the
// values here are illustrative).
const upstreamBulk = `{"semver":[{"id":1101088,"url":"https://github.com/advisories/GHSA-c2qf-rxjj-qqgw","title":"semver vulnerable to Regular Expression Denial of Service","severity":"moderate","vulnerable_versions":"<5.7.2","cwe":["CWE-1333"],"cvss":{"score":5.3,"vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}}],
"lodash":[{"id":1106913,"url":"https://github.com/advisories/GHSA-35jh-r3h4-6jhm","title":"Command Injection in lodash","severity":"high","vulnerable_versions":"<4.17.21","cwe":["CWE-77","CWE-94"],"cvss":{"score":7.2,"vectorString":"CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"}}]}`

func TestMergeBulk(t *testing.T) {
	local, err := testDB(t).BulkAudit([]byte(`{"semver":["5.7.1"],"debug":["4.4.2"],"lodash":["4.17.20"]}`))
	if err != nil {
		t.Fatal(err)
	}
	merged, err := MergeBulk(local, []byte(upstreamBulk))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string][]struct {
		ID  float64 `json:"id"`
		URL string  `json:"url"`
	}
	if err := json.Unmarshal(merged, &got); err != nil {
		t.Fatal(err)
	}
	if len(got["semver"]) != 1 || got["semver"][0].ID != 1101088 {
		t.Errorf("semver: the advisory both list is the connector's, once: %+v", got["semver"])
	}
	if len(got["debug"]) != 1 || got["debug"][0].URL != "https://github.com/advisories/GHSA-8mgj-vmr8-frr6" {
		t.Errorf("debug: the local advisory is added: %+v", got["debug"])
	}
	if len(got["lodash"]) != 1 {
		t.Errorf("lodash: the connector's advisory is kept: %+v", got["lodash"])
	}
	for _, bad := range []string{`<html>`, `null`, `{"semver":[1]}`} {
		if _, err := MergeBulk(local, []byte(bad)); !errors.Is(err, ErrUpstreamAudit) {
			t.Errorf("MergeBulk(%s): %v", bad, err)
		}
	}
}

func TestMergeV1(t *testing.T) {
	local, err := testDB(t).V1Audit(readRequest(t, "v1-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	upstream := `{"actions":[{"action":"review","module":"json5","resolves":[{"id":1096543,"path":"json5","dev":true,"optional":false,"bundled":false}]}],
"advisories":{"1096543":{"id":1096543,"module_name":"json5","github_advisory_id":"GHSA-9c47-m6qq-7p4h","url":"https://github.com/advisories/GHSA-9c47-m6qq-7p4h","severity":"high","title":"Prototype Pollution in JSON5 via Parse Method","findings":[{"version":"2.2.1","paths":["json5"]}]}},
"muted":[],"metadata":{"vulnerabilities":{"info":0,"low":0,"moderate":0,"high":1,"critical":0},"dependencies":9,"devDependencies":1,"optionalDependencies":0,"totalDependencies":10}}`
	merged, err := MergeV1(local, []byte(upstream))
	if err != nil {
		t.Fatal(err)
	}
	var got V1Report
	if err := json.Unmarshal(merged, &got); err != nil {
		t.Fatal(err)
	}
	modules := map[string]int{}
	for _, adv := range got.Advisories {
		modules[adv.ModuleName]++
	}
	if modules["json5"] != 1 || modules["debug"] != 1 || modules["ms"] != 1 || modules["ansi-regex"] != 1 {
		t.Errorf("advisories by module: %v", modules)
	}
	if _, ok := got.Advisories["1096543"]; !ok {
		t.Error("the connector's json5 advisory is not the one kept")
	}
	// Upstream's high json5, local moderate debug and ms, local high
	// ansi-regex on two paths.
	if v := got.Metadata.Vulnerabilities; v["high"] != 3 || v["moderate"] != 2 || got.Metadata.TotalDependencies != 10 {
		t.Errorf("metadata %+v", got.Metadata)
	}
	if len(got.Actions) != 4 {
		t.Errorf("actions %+v", got.Actions)
	}
	if _, err := MergeV1(local, []byte(`{"error":"not found"}`)); !errors.Is(err, ErrUpstreamAudit) {
		t.Errorf("MergeV1 of an error body: %v", err)
	}
}
