package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// tarOf is a gzipped tar of files (path, then contents), in order.
func tarOf(t *testing.T, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	mtime := time.Date(1985, 10, 26, 8, 15, 0, 0, time.UTC)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func shasumOf(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

// TestUpstreamSecondDistNeverReachesNPM: the connector's document gives
// a version two "dist" members, the second pointing at another server on
// loopback with that server's integrity. npm reads the last member; it
// must never be sent there. npmgate refuses the document (npm fails with
// a 502 that says why), the other server gets no request, and once the
// connector sends a sound document npm installs the mirror's bytes.
func TestUpstreamSecondDistNeverReachesNPM(t *testing.T) {
	const name, version = "e2e-twodist", "1.0.0"
	file := name + "-" + version + ".tgz"
	good := npmTarball(t, name, version) // exports "1.0.0"
	evil := packTarball(t, name, version, mustJSON(t, "attacker"))

	var attackerHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(evil)
	}))
	t.Cleanup(attacker.Close)

	// A registry directory with the sound document and tarball.
	dir := t.TempDir()
	tb := filepath.Join(dir, "tarballs", fakeupstream.Escape(name), file)
	if err := os.MkdirAll(filepath.Dir(tb), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tb, good, 0o644); err != nil {
		t.Fatal(err)
	}
	goodDist := `{"tarball":"https://registry.npmjs.org/` + name + `/-/` + file + `","integrity":"` + sriOf(good) + `","shasum":"` + shasumOf(good) + `"}`
	doc := func(dists ...string) []byte {
		v := `{"name":"` + name + `","version":"` + version + `","main":"index.js","license":"MIT"`
		for _, d := range dists {
			v += `,"dist":` + d
		}
		return []byte(`{"_id":"` + name + `","name":"` + name + `","dist-tags":{"latest":"` + version + `"},` +
			`"versions":{"` + version + `":` + v + `}},` +
			`"time":{"created":"2020-01-01T00:00:00.000Z","modified":"2020-01-01T00:00:00.000Z","` + version + `":"2020-01-01T00:00:00.000Z"}}`)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(doc(goodDist))
	zw.Close()
	pp := filepath.Join(dir, "packuments", fakeupstream.Escape(name)+".json.gz")
	if err := os.MkdirAll(filepath.Dir(pp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pp, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	up := startUpstream(t, dir)
	evilDist := `{"tarball":"` + attacker.URL + `/` + file + `","integrity":"` + sriOf(evil) + `","shasum":"` + shasumOf(evil) + `"}`
	soundDist := strings.Replace(goodDist, "https://registry.npmjs.org", up.URL, 1)
	up.SetPackumentOverride(name, 200, "application/json", doc(soundDist, evilDist))
	g := startGate(t, up.URL, "")
	sb := newSandbox(t)

	project := sb.dir(t, "hostile")
	writeConsumer(t, project)
	r := sb.npm(t, project, g.URL, "install", name)
	mustFailWith(t, r, "npm error code E502", "twice")
	if _, err := os.Stat(filepath.Join(project, "node_modules", name)); err == nil {
		t.Error("npm installed the package from the refused document")
	}
	if strings.Contains(r.out, attacker.URL) {
		t.Errorf("npm was shown the other server's URL:\n%s", r)
	}

	// The connector mends its document: npm installs the mirror's bytes.
	up.SetPackumentOverride(name, 0, "", nil)
	project = sb.dir(t, "mended")
	writeConsumer(t, project)
	r = sb.npm(t, project, g.URL, "install", name)
	mustSucceed(t, r)
	if got := sb.installedValue(t, project, name); got != version {
		t.Errorf("require(%q) = %q, want the mirror's %q", name, got, version)
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("the server named by the second dist got %d requests, want 0", n)
	}
}

// TestPublishTarballWithTwoManifestsNPM: npm publish of a tarball whose
// second package/package.json carries a preinstall (npmgate would check
// the first, extraction install the second) is refused with a 400 that
// says why, and nothing is stored.
func TestPublishTarballWithTwoManifestsNPM(t *testing.T) {
	s := newPublishSetup(t)
	sb := s.publisher(t)
	const name, version = "e2e-twomanifests", "1.0.0"
	plain := mustJSON(t, map[string]any{"name": name, "version": version, "main": "index.js", "license": "MIT"})
	hostile := mustJSON(t, map[string]any{"name": name, "version": version, "main": "index.js", "license": "MIT",
		"scripts": map[string]string{"preinstall": "node -e \"require('fs').writeFileSync('preinstall-ran','')\""}})
	tgz := tarOf(t,
		tarFile{"package/package.json", plain},
		tarFile{"package/index.js", []byte("module.exports = 1;\n")},
		tarFile{"package/package.json", hostile})
	dir := sb.dir(t, "publish")
	p := filepath.Join(dir, name+"-"+version+".tgz")
	if err := os.WriteFile(p, tgz, 0o644); err != nil {
		t.Fatal(err)
	}
	r := sb.npm(t, dir, s.g.URL, "publish", p)
	mustFailWith(t, r, "npm error code E400", "more than one entry is extracted to package.json")
	if st, _ := getFullPackument(t, s.g.URL+name); st != 404 {
		t.Errorf("GET %s after the refused publish: %d, want 404", name, st)
	}
	if files := filesUnder(t, filepath.Join(s.g.Data, "tarballs")); len(files) > 0 {
		t.Errorf("the refused publish stored %v", files)
	}
	if files := filesUnder(t, filepath.Join(s.g.Data, "local")); len(files) > 0 {
		t.Errorf("the refused publish stored %v", files)
	}
}

// TestPublishForgedFactsNPM: a publish whose document carries a forged
// dist.signatures (under npmjs's key id) and hasInstallScript:false while
// the tarball has a postinstall is served with neither, in both
// representations: no client signature, hasInstallScript true. npm runs
// the postinstall and records it in package-lock.json.
func TestPublishForgedFactsNPM(t *testing.T) {
	s := newPublishSetup(t)
	const name, version = "e2e-forged", "1.0.0"
	pkg := mustJSON(t, map[string]any{"name": name, "version": version, "main": "index.js", "license": "MIT",
		"scripts": map[string]string{"postinstall": "node -e \"require('fs').writeFileSync('postinstall-ran','')\""}})
	tgz := tarOf(t, tarFile{"package/package.json", pkg}, tarFile{"package/index.js", []byte("module.exports = 1;\n")})
	var body map[string]any
	if err := json.Unmarshal(npmPublishBody(t, name, version, "latest", tgz), &body); err != nil {
		t.Fatal(err)
	}
	ver := body["versions"].(map[string]any)[version].(map[string]any)
	ver["hasInstallScript"] = false
	ver["dist"].(map[string]any)["signatures"] = []map[string]string{{
		"keyid": "SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U",
		"sig":   "MEUCIQDuuvEBHqcX6dL5YDKtzD6BgiIhrhk2ULMNrFxbX6ZsVgIgN0lUKhwvd1dCzfI1XGaB/H9jGm5QxmZIBBlmwW9qETQ=",
	}}
	r, err := putPublish(s.g.URL+name, mustJSON(t, body), "Authorization", "Bearer "+s.token)
	if err != nil || r.status != 200 {
		t.Fatalf("PUT %s: %d %s %v", name, r.status, r.body, err)
	}

	for _, accept := range []string{"application/json", "application/vnd.npm.install-v1+json"} {
		res := get(t, s.g.URL+name, "Accept", accept)
		var doc struct {
			Versions map[string]struct {
				HasInstallScript *bool                      `json:"hasInstallScript"`
				Dist             map[string]json.RawMessage `json:"dist"`
			} `json:"versions"`
		}
		if err := json.Unmarshal(res.body, &doc); err != nil {
			t.Fatalf("%s: %v", accept, err)
		}
		v := doc.Versions[version]
		// npmgate signs what it publishes with its own key: one signature,
		// never the client's.
		if sigs, _ := json.Marshal(v.Dist["signatures"]); strings.Contains(string(sigs), "DhQ8wR5APBvFHLF") || strings.Count(string(sigs), `"keyid"`) != 1 {
			t.Errorf("%s: dist.signatures served: %s, want npmgate's one signature, not the client's", accept, sigs)
		}
		if v.HasInstallScript == nil || !*v.HasInstallScript {
			t.Errorf("%s: hasInstallScript is not true: %.300s", accept, res.body)
		}
	}

	reader := newSandbox(t)
	project := reader.dir(t, "consumer")
	writeConsumer(t, project)
	mustSucceed(t, reader.npm(t, project, s.g.URL, "install", name))
	if _, err := os.Stat(filepath.Join(project, "node_modules", name, "postinstall-ran")); err != nil {
		t.Errorf("npm did not run the postinstall the tarball carries: %v", err)
	}
	lock, err := os.ReadFile(filepath.Join(project, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Packages map[string]struct {
			HasInstallScript bool `json:"hasInstallScript"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(lock, &l); err != nil {
		t.Fatal(err)
	}
	if !l.Packages["node_modules/"+name].HasInstallScript {
		t.Errorf("package-lock.json does not record the install script:\n%s", lock)
	}
}
