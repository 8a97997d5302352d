package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// The trust-downgrade tests (issue 16, item 2) run the real npm against
// npmgate with provenance: no-downgrade (connector) and install_scripts:
// no-new (feed) in front of a synthetic registry whose newest release
// lost the provenance its predecessors had, or gained a postinstall.

// trustAttestation is dist.attestations as npmjs writes it for a version
// published with provenance.
func trustAttestation(name, version string) map[string]any {
	return map[string]any{
		"url":        "https://registry.npmjs.org/-/npm/v1/attestations/" + name + "@" + version,
		"provenance": map[string]any{"predicateType": "https://slsa.dev/provenance/v1"},
	}
}

// trustPublisher is _npmUser for a version published by npm trusted
// publishing from GitHub Actions.
var trustPublisher = map[string]any{
	"name": "GitHub Actions", "email": "npm-oidc-no-reply@github.com",
	"trustedPublisher": map[string]any{"id": "github", "oidcConfigId": "oidc:0b8f3c2e-6d1a-4c5e-9f7a-2e4d6c8b0a13"},
}

// trustProvenance: 1.1.0 has an attestation, 1.2.0 a trusted publisher,
// 1.3.0 (latest) neither; 2.0.0 opens a major line without provenance.
var trustProvenance = fltPkg{
	name: "e2e-provenance",
	versions: []fltVersion{
		{"1.0.0", 90 * fltDay, nil},
		{"1.1.0", 60 * fltDay, nil}, // attestation added by trustAddDist
		{"1.2.0", 30 * fltDay, map[string]any{"_npmUser": trustPublisher}},
		{"1.3.0", 2 * fltDay, map[string]any{"_npmUser": map[string]any{"name": "someone", "email": "someone@example.com"}}},
		{"2.0.0", 1 * fltDay, nil},
	},
	tags: map[string]string{"latest": "1.3.0"},
}

// trustScripts: 1.2.0 (latest) adds a postinstall its predecessors did not
// have.
var trustScripts = fltPkg{
	name: "e2e-scripts",
	versions: []fltVersion{
		{"1.0.0", 90 * fltDay, nil},
		{"1.1.0", 60 * fltDay, nil},
		{"1.2.0", 2 * fltDay, map[string]any{"scripts": map[string]string{"postinstall": "node -e \"require('fs').writeFileSync('pwned','')\""}}},
	},
	tags: map[string]string{"latest": "1.2.0"},
}

// trustAddDist sets dist[key] of name@version in reg's packument.
func trustAddDist(t *testing.T, reg *fltRegistry, name, version, key string, value any) {
	t.Helper()
	fp := filepath.Join(reg.dir, "packuments", fakeupstream.Escape(name)+".json.gz")
	gz, err := os.ReadFile(fp)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	doc["versions"].(map[string]any)[version].(map[string]any)["dist"].(map[string]any)[key] = value
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(mustJSON(t, doc))
	zw.Close()
	if err := os.WriteFile(fp, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTrustDowngrades: npm installs the release before the one that lost
// provenance or gained a postinstall, npm view does not list the blocked
// ones, their tarballs are a 403 naming the rule, every listed version
// keeps its time in both documents, dist.attestations reaches the client
// in every document, and npmgate explain names both rules.
func TestTrustDowngrades(t *testing.T) {
	reg := fltWriteRegistry(t, trustProvenance, trustScripts)
	trustAddDist(t, reg, "e2e-provenance", "1.1.0", "attestations", trustAttestation("e2e-provenance", "1.1.0"))
	up := startUpstream(t, reg.dir)
	g, file := fltStartGate(t, up.URL, fltConfig(up.URL, "provenance: no-downgrade", "install_scripts: no-new"))
	sb := newSandbox(t)
	const (
		provReason    = `e2e-provenance@1.3.0 has no provenance; 1.2.0 of the same major line (1.x) had one (npm trusted publishing / attestation); provenance is "no-downgrade"`
		scriptsReason = `e2e-scripts@1.2.0 has an install script (preinstall, install, postinstall or binding.gyp) and the previous release 1.1.0 had none; install_scripts is "no-new"`
	)
	listed := map[string][]string{
		"e2e-provenance": {"1.0.0", "1.1.0", "1.2.0", "2.0.0"},
		"e2e-scripts":    {"1.0.0", "1.1.0"},
	}

	t.Run("npm install", func(t *testing.T) {
		for _, c := range []struct{ spec, name, want string }{
			{"e2e-provenance", "e2e-provenance", "1.2.0"},
			{"e2e-provenance@^1.0.0", "e2e-provenance", "1.2.0"},
			{"e2e-scripts", "e2e-scripts", "1.1.0"},
		} {
			project := fltProject(t, sb, "trust-"+strings.NewReplacer("@", "-", "^", "").Replace(c.spec))
			mustSucceed(t, sb.npm(t, project, g.URL, "install", c.spec))
			if v := fltInstalled(t, project, c.name); v != c.want {
				t.Errorf("npm install %s installed %s, want %s", c.spec, v, c.want)
			}
			if _, err := os.Stat(filepath.Join(project, "node_modules", c.name, "pwned")); err == nil {
				t.Errorf("npm install %s ran the new postinstall", c.spec)
			}
		}
		project := fltProject(t, sb, "trust-exact")
		r := sb.npm(t, project, g.URL, "install", "e2e-scripts@1.2.0")
		fltMustFail(t, r)
		fltWantOutput(t, r, "ETARGET", "No matching version found for e2e-scripts@1.2.0")
	})

	// pnpm resolves from the full document; with minimumReleaseAge it
	// reads time for every version it considers.
	t.Run("pnpm install", func(t *testing.T) {
		project := fltProject(t, sb, "trust-pnpm")
		mustSucceed(t, sb.node(t, project, toolPath(t, toolPnpm), "add", "e2e-provenance", "e2e-scripts",
			"--registry", g.URL, "--store-dir", sb.dir(t, "pnpm-store"), "--config.minimum-release-age=1440"))
		for name, want := range map[string]string{"e2e-provenance": "1.2.0", "e2e-scripts": "1.1.0"} {
			if v := fltInstalled(t, project, name); v != want {
				t.Errorf("pnpm add %s installed %s, want %s", name, v, want)
			}
		}
	})

	t.Run("npm view", func(t *testing.T) {
		dir := fltProject(t, sb, "trust-view")
		for name, want := range listed {
			out, r := fltNpmJSON(t, sb, dir, g.URL, "view", name, "versions")
			var got []string
			if r.code != 0 || json.Unmarshal([]byte(out), &got) != nil {
				t.Fatalf("npm view %s versions: %q\n%s", name, out, r)
			}
			if !slices.Equal(got, want) {
				t.Errorf("npm view %s versions = %v, want %v", name, got, want)
			}
		}
		out, r := fltNpmJSON(t, sb, dir, g.URL, "view", "e2e-provenance@1.1.0", "dist.attestations.provenance.predicateType")
		if r.code != 0 || strings.TrimSpace(out) != `"https://slsa.dev/provenance/v1"` {
			t.Errorf("npm view e2e-provenance@1.1.0 dist.attestations: %q\n%s", out, r)
		}
	})

	t.Run("tarballs", func(t *testing.T) {
		fltWantError(t, g.URL+"e2e-provenance/-/e2e-provenance-1.3.0.tgz", 403, "blocked by policy: "+provReason)
		fltWantError(t, g.URL+"e2e-scripts/-/e2e-scripts-1.2.0.tgz", 403, "blocked by policy: "+scriptsReason)
		if r := get(t, g.URL+"e2e-provenance/-/e2e-provenance-1.2.0.tgz"); r.status != 200 || !bytes.Equal(r.body, reg.tarballs["e2e-provenance@1.2.0"]) {
			t.Errorf("GET the allowed 1.2.0 tarball: %d, %d bytes", r.status, len(r.body))
		}
	})

	t.Run("documents", func(t *testing.T) {
		for name, want := range listed {
			for _, abbr := range []bool{false, true} {
				d, _ := fltGetDoc(t, g.URL+name, abbr)
				if got := d.versionList(); !slices.Equal(got, want) {
					t.Errorf("%s (abbreviated=%v): versions %v, want %v", name, abbr, got, want)
				}
				for _, v := range want {
					if d.Time[v] == "" {
						t.Errorf("%s (abbreviated=%v): time lost listed version %s (pnpm then ignores time altogether)", name, abbr, v)
					}
				}
				var v110 struct {
					Dist struct{ Attestations json.RawMessage }
				}
				if name == "e2e-provenance" && (json.Unmarshal(d.Versions["1.1.0"], &v110) != nil || !bytes.Contains(v110.Dist.Attestations, []byte("slsa.dev/provenance/v1"))) {
					t.Errorf("%s (abbreviated=%v): 1.1.0 lost dist.attestations: %s", name, abbr, d.Versions["1.1.0"])
				}
			}
		}
		if d, _ := fltGetDoc(t, g.URL+"e2e-provenance", true); d.DistTags["latest"] != "1.2.0" {
			t.Errorf("e2e-provenance latest = %q, want 1.2.0", d.DistTags["latest"])
		}
		if r := get(t, g.URL+"e2e-provenance/1.1.0"); r.status != 200 || !bytes.Contains(r.body, []byte(`"attestations"`)) {
			t.Errorf("GET e2e-provenance/1.1.0: %d %s", r.status, r.body)
		}
	})

	t.Run("explain", func(t *testing.T) {
		base := []string{"--config", file, "--data", g.Data}
		for name, wants := range map[string]map[string]fltExplainLine{
			"e2e-provenance": {
				"1.1.0": {"allowed", "npmjs", ""}, "1.2.0": {"allowed", "npmjs", ""}, "2.0.0": {"allowed", "npmjs", ""},
				"1.3.0": {"blocked", "provenance-downgrade", provReason},
			},
			"e2e-scripts": {
				"1.1.0": {"allowed", "npmjs", ""},
				"1.2.0": {"blocked", "new-install-scripts", scriptsReason},
			},
		} {
			versions, _, out := fltExplain(t, append(base, name)...)
			for v, w := range wants {
				if got := versions[v]; got != w {
					t.Errorf("explain %s: %s is %+v, want %+v\n%s", name, v, got, w, out)
				}
			}
		}
	})
}
