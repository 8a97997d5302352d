package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// check-config reads the osv section and the advisory rules, and refuses
// a rule or a local audit without a database at its line.
func TestCheckConfigOSV(t *testing.T) {
	dir := t.TempDir()
	const conn = "connectors:\n  npmjs:\n    url: https://registry.npmjs.org/\n"
	for _, c := range []struct {
		yaml string
		code int
		out  string
	}{
		{"osv:\n  source: https://osv-vulnerabilities.storage.googleapis.com/npm/all.zip\n  refresh: 12h\n" + conn +
			"feeds:\n  npm:\n    connectors: [npmjs]\n    audit: local+connector\n    filter:\n      malicious_exempt: [MAL-2025-1]\n      vulnerable:\n        min_severity: high\n        exempt_ids: [CVE-2022-25883]\n        exempt_names: [semver]\n", 0, ": ok"},
		{conn + "feeds:\n  npm:\n    connectors: [npmjs]\n    filter:\n      vulnerable: {min_severity: high}\n", 1, "npmgate.yaml:8: feeds.npm.filter.vulnerable: needs an advisory database: set osv.source"},
		{conn + "feeds:\n  npm:\n    connectors: [npmjs]\n    audit: local\n", 1, "npmgate.yaml:7: feeds.npm.audit: local needs an advisory database: set osv.source"},
		{"osv:\n  source: x.zip\n" + conn + "feeds:\n  npm:\n    connectors: [npmjs]\n    filter:\n      vulnerable: {min_severity: severe}\n", 1, `feeds.npm.filter: vulnerable.min_severity: "severe": want low, moderate, high or critical`},
	} {
		file := filepath.Join(dir, "npmgate.yaml")
		os.WriteFile(file, []byte(c.yaml), 0o644)
		var stdout, stderr bytes.Buffer
		code := run([]string{"check-config", file}, &stdout, &stderr)
		if all := stdout.String() + stderr.String(); code != c.code || !strings.Contains(all, c.out) {
			t.Errorf("check-config of\n%s= %d %q; want %d containing %q", c.yaml, code, all, c.code, c.out)
		}
	}
}

// npmgate explain names the advisory that blocks a version.
func TestExplainNamesAdvisory(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	dir := t.TempDir()
	file := filepath.Join(dir, "npmgate.yaml")
	os.WriteFile(file, []byte("osv:\n  source: "+filepath.Join("..", "..", "testdata", "osv", "npm")+"\nconnectors:\n  npmjs:\n    url: "+up.URL+
		"\nfeeds:\n  npm:\n    connectors: [npmjs]\n    filter:\n      vulnerable: {min_severity: moderate}\n"), 0o644)
	var stdout, stderr bytes.Buffer
	code := run([]string{"explain", "--config", file, "--data", filepath.Join(dir, "data"), "semver@7.5.1 || 7.5.2"}, &stdout, &stderr)
	out := stdout.String()
	if code != 0 || !strings.Contains(out, "7.5.1  blocked  vulnerable") || !strings.Contains(out, "GHSA-c2qf-rxjj-qqgw (moderate, CVSS 5.3)") || !strings.Contains(out, "7.5.2  allowed") {
		t.Errorf("explain: %d\n%s%s", code, out, stderr.String())
	}
}
