package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The trust rules' keys are read from connector and feed filters, and a
// bad value is refused naming its line and the values it may take.
func TestCheckConfigTrustRules(t *testing.T) {
	dir := t.TempDir()
	const conn = "connectors:\n  npmjs:\n    url: https://registry.npmjs.org/\n    filter:\n"
	for _, c := range []struct {
		yaml string
		code int
		out  string
	}{
		{conn + "      provenance: no-downgrade\n      provenance_exempt: [\"@acme/*\"]\n" +
			"feeds:\n  npm:\n    connectors: [npmjs]\n    filter:\n      install_scripts: no-new\n      install_scripts_allow: [esbuild]\n", 0, ": ok"},
		{conn + "      provenance: strict\nfeeds:\n  npm:\n    connectors: [npmjs]\n", 1, `npmgate.yaml:4: connectors.npmjs.filter: provenance: "strict": want "off" or "no-downgrade"`},
		{conn + "      provenance_exempt: [\"a b\"]\nfeeds:\n  npm:\n    connectors: [npmjs]\n", 1, `npmgate.yaml:4: connectors.npmjs.filter: provenance_exempt[0]: "a b": bad name pattern`},
		{"connectors:\n  npmjs:\n    url: https://registry.npmjs.org/\nfeeds:\n  npm:\n    connectors: [npmjs]\n    filter:\n      install_scripts: new\n", 1, `npmgate.yaml:7: feeds.npm.filter: install_scripts: "new": want "allow", "block" or "no-new"`},
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
