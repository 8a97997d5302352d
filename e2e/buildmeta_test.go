package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// Build metadata ("+build") is in the recorded data (testdata/registry,
// see its README.md) only inside tarballs and in dependency ranges: the
// registry drops it from version keys, so @hot-loader/react-dom 17.0.2 and
// the @parcel/* 2.0.0-canary.1875 tarballs carry "17.0.2+4.13.0" and
// "2.0.0-canary.1875+59484858a" in their package.json, and @parcel/logger
// depends on "@parcel/events": "2.0.0-canary.1875+59484858a". Versions
// whose keys and file names carry it are served from a synthetic registry
// that this file writes.
const (
	bmName    = "e2e-buildmeta"
	bmVersion = "1.0.0+build.5"
	bmOlder   = "0.9.0+exp.sha.5114f85"
)

func bmFile(version string) string { return bmName + "-" + version + ".tgz" }

// npmTarball builds a package tarball as npm publishes it: a gzipped tar
// with package/package.json and package/index.js.
func npmTarball(t *testing.T, name, version string) []byte {
	t.Helper()
	return packTarball(t, name, version, mustJSON(t, version))
}

// packTarball is a gzipped tar as npm packs it: package/package.json,
// package/index.js exporting exported (JSON), and any extra files (path
// under package/, then contents).
func packTarball(t *testing.T, name, version string, exported []byte, extra ...tarFile) []byte {
	t.Helper()
	pkg := mustJSON(t, map[string]string{"name": name, "version": version, "main": "index.js", "license": "MIT"})
	files := append([]tarFile{
		{"package/package.json", pkg},
		{"package/index.js", []byte("module.exports = " + string(exported) + ";\n")},
	}, extra...)
	return tarOf(t, files...)
}

type tarFile struct {
	name string
	body []byte
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeBuildMetaRegistry writes a registry directory in fakeupstream's
// layout holding bmName with two versions that carry build metadata, and
// returns it with the tarballs by version.
func writeBuildMetaRegistry(t *testing.T) (dir string, tarballs map[string][]byte) {
	t.Helper()
	dir = t.TempDir()
	tarballs = map[string][]byte{}
	versions := map[string]any{}
	for _, v := range []string{bmOlder, bmVersion} {
		tb := npmTarball(t, bmName, v)
		tarballs[v] = tb
		sha := sha1.Sum(tb)
		versions[v] = map[string]any{
			"name": bmName, "version": v, "main": "index.js", "license": "MIT",
			"dist": map[string]any{
				"tarball":   "https://registry.npmjs.org/" + bmName + "/-/" + bmFile(v),
				"integrity": sriOf(tb),
				"shasum":    hex.EncodeToString(sha[:]),
			},
		}
		p := filepath.Join(dir, "tarballs", fakeupstream.Escape(bmName), bmFile(v))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, tb, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc := mustJSON(t, map[string]any{
		"_id": bmName, "name": bmName,
		"dist-tags": map[string]string{"latest": bmVersion},
		"versions":  versions,
		"time": map[string]string{
			"created": "2020-01-01T00:00:00.000Z", "modified": "2021-03-04T05:06:07.890Z",
			bmOlder: "2020-01-01T00:00:00.000Z", bmVersion: "2021-03-04T05:06:07.890Z",
		},
	})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(doc)
	zw.Close()
	p := filepath.Join(dir, "packuments", fakeupstream.Escape(bmName)+".json.gz")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, tarballs
}

// writeBuildMetaProject writes a project. withLock makes it depend on
// bmName@bmVersion, with a lockfile resolving it on registry.npmjs.org (as
// the fixture project's does); else it has no dependencies.
func writeBuildMetaProject(t *testing.T, dir string, tarball []byte, withLock bool) {
	t.Helper()
	deps := map[string]string{bmName: bmVersion}
	pkg := map[string]any{"name": "buildmeta-app", "version": "1.0.0", "private": true}
	if withLock {
		pkg["dependencies"] = deps
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), mustJSON(t, pkg), 0o644); err != nil {
		t.Fatal(err)
	}
	if !withLock {
		return
	}
	lock := map[string]any{
		"name": "buildmeta-app", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
		"packages": map[string]any{
			"": map[string]any{"name": "buildmeta-app", "version": "1.0.0", "dependencies": deps},
			"node_modules/" + bmName: map[string]any{
				"version":   bmVersion,
				"resolved":  "https://registry.npmjs.org/" + bmName + "/-/" + bmFile(bmVersion),
				"integrity": sriOf(tarball),
				"license":   "MIT",
			},
		},
	}
	if err := os.WriteFile(filepath.Join(dir, "package-lock.json"), mustJSON(t, lock), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBuildMetadata installs versions with "+build" metadata with npm and
// reads them back through npmgate: the "+" must survive every step as a
// literal plus, in URLs, file names, lockfiles and installed files.
func TestBuildMetadata(t *testing.T) {
	t.Run("recorded", testRecordedBuildMetadata)
	t.Run("synthetic", testSyntheticBuildMetadata)
}

// testRecordedBuildMetadata installs the fixture project and checks the
// recorded packages whose tarballs carry build metadata.
func testRecordedBuildMetadata(t *testing.T) {
	lf := fixtureLockfile(t)
	type pkg struct {
		lockPkg
		name     string
		manifest []byte // package/package.json of the recorded tarball
		version  string // its version, with build metadata
	}
	var withBuild []pkg
	for _, p := range lf.Packages {
		name, file := splitTarballURL(t, p.Resolved)
		raw := tarballFile(t, recordedTarball(t, name, file), "package/package.json")
		var m manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s/-/%s: package.json: %v", name, file, err)
		}
		if strings.Contains(m.Version, "+") {
			withBuild = append(withBuild, pkg{p, name, raw, m.Version})
		}
	}
	if len(withBuild) == 0 {
		t.Fatal("no recorded tarball of the fixture lockfile has build metadata in its version any more; the test data changed")
	}

	up := startUpstream(t, "")
	g := startGate(t, up.URL, "")
	sb := newSandbox(t)
	project := sb.copyProject(t, "recorded")
	rangesWithBuild := 0
	mustSucceed(t, sb.npm(t, project, g.URL, "ci"))
	for _, p := range withBuild {
		installed, err := os.ReadFile(filepath.Join(project, filepath.FromSlash(p.Path), "package.json"))
		if err != nil {
			t.Errorf("%s: %v", p.Path, err)
			continue
		}
		var m manifest
		json.Unmarshal(installed, &m)
		if m.Version != p.version || !bytes.Equal(installed, p.manifest) {
			t.Errorf("%s: installed package.json has version %q, the recorded tarball %q (lockfile %q); files equal: %v",
				p.Path, m.Version, p.version, p.Version, bytes.Equal(installed, p.manifest))
		}
		if base, _, _ := strings.Cut(m.Version, "+"); base != p.Version {
			t.Errorf("%s: installed version %q is not the lockfile's %q plus build metadata", p.Path, m.Version, p.Version)
		}
		// The version object, alone and in the abbreviated packument,
		// keeps the recorded dependency ranges, "+" metadata included
		// (@parcel/logger asks for "@parcel/events":
		// "2.0.0-canary.1875+59484858a").
		wantDeps := recordedDependencies(t, p.name, p.Version)
		r := get(t, g.URL+p.name+"/"+p.Version)
		var v versionDoc
		if r.status != 200 || json.Unmarshal(r.body, &v) != nil || v.Name != p.name || v.Version != p.Version {
			t.Errorf("GET /%s/%s: %d %.300s", p.name, p.Version, r.status, r.body)
		} else if !maps.Equal(v.Dependencies, wantDeps) {
			t.Errorf("GET /%s/%s: dependencies %v, recorded %v", p.name, p.Version, v.Dependencies, wantDeps)
		}
		r = get(t, g.URL+p.name, "Accept", "application/vnd.npm.install-v1+json")
		var abbr struct {
			Versions map[string]versionDoc `json:"versions"`
		}
		if r.status != 200 || json.Unmarshal(r.body, &abbr) != nil {
			t.Errorf("GET /%s (abbreviated): %d %.300s", p.name, r.status, r.body)
		} else if got := abbr.Versions[p.Version].Dependencies; !maps.Equal(got, wantDeps) {
			t.Errorf("GET /%s (abbreviated): %s has dependencies %v, recorded %v", p.name, p.Version, got, wantDeps)
		}
		for dep, rng := range wantDeps {
			if strings.Contains(rng, "+") {
				rangesWithBuild++
				t.Logf("%s@%s depends on %s@%s", p.name, p.Version, dep, rng)
			}
		}
	}
	if rangesWithBuild == 0 {
		t.Error("no recorded dependency range with build metadata was checked; the test data changed")
	}
	checkStore(t, g.Data, lf)
}

// testSyntheticBuildMetadata serves a package whose version keys carry
// build metadata.
func testSyntheticBuildMetadata(t *testing.T) {
	dir, tarballs := writeBuildMetaRegistry(t)
	up := startUpstream(t, dir)
	g := startGate(t, up.URL, "")
	sb := newSandbox(t)

	t.Run("npm ci", func(t *testing.T) {
		project := sb.dir(t, "ci")
		writeBuildMetaProject(t, project, tarballs[bmVersion], true)
		mustSucceed(t, sb.npm(t, project, g.URL, "ci"))
		lf := readLockfile(t, filepath.Join(project, "package-lock.json"))
		checkInstalled(t, project, lf)
		if m := readManifest(t, filepath.Join(project, "node_modules", bmName)); m.Version != bmVersion {
			t.Errorf("installed version %q, lockfile says %q", m.Version, bmVersion)
		}
	})

	t.Run("npm install", func(t *testing.T) {
		project := sb.dir(t, "install")
		writeBuildMetaProject(t, project, tarballs[bmVersion], false)
		// npm itself cannot resolve an exact "1.0.0+build.5" spec (ETARGET,
		// against any registry); a range that the version satisfies works.
		mustSucceed(t, sb.npm(t, project, g.URL, "install", bmName+"@^1.0.0"))
		lf := readLockfile(t, filepath.Join(project, "package-lock.json"))
		checkInstalled(t, project, lf)
		var found bool
		for _, p := range lf.Packages {
			if p.Path != "node_modules/"+bmName {
				continue
			}
			found = true
			if p.Version != bmVersion {
				t.Errorf("lockfile version %q, want %q", p.Version, bmVersion)
			}
			if want := g.URL + bmName + "/-/" + bmFile(bmVersion); p.Resolved != want {
				t.Errorf("lockfile resolved %q, want %q", p.Resolved, want)
			}
			if p.Integrity != sriOf(tarballs[bmVersion]) {
				t.Errorf("lockfile integrity %q, want %q", p.Integrity, sriOf(tarballs[bmVersion]))
			}
		}
		if !found {
			t.Errorf("npm did not lock %s", bmName)
		}
		if m := readManifest(t, filepath.Join(project, "node_modules", bmName)); m.Version != bmVersion {
			t.Errorf("installed version %q, want %q", m.Version, bmVersion)
		}
	})

	t.Run("version endpoint", func(t *testing.T) {
		for _, c := range []struct{ path, want string }{
			{bmName + "/" + bmVersion, bmVersion},
			{bmName + "/1.0.0%2Bbuild.5", bmVersion},
			{bmName + "/latest", bmVersion},
			{bmName + "/" + bmOlder, bmOlder},
		} {
			r := get(t, g.URL+c.path)
			if r.status != 200 {
				t.Errorf("GET /%s: %d %s", c.path, r.status, r.body)
				continue
			}
			var v struct {
				Name    string `json:"name"`
				Version string `json:"version"`
				Dist    struct {
					Tarball   string `json:"tarball"`
					Integrity string `json:"integrity"`
				} `json:"dist"`
			}
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Errorf("GET /%s: %v: %s", c.path, err, r.body)
				continue
			}
			if v.Name != bmName || v.Version != c.want {
				t.Errorf("GET /%s: %s@%s, want %s@%s", c.path, v.Name, v.Version, bmName, c.want)
			}
			if want := g.URL + bmName + "/-/" + bmFile(c.want); v.Dist.Tarball != want {
				t.Errorf("GET /%s: dist.tarball %q, want %q", c.path, v.Dist.Tarball, want)
			}
			if want := sriOf(tarballs[c.want]); v.Dist.Integrity != want {
				t.Errorf("GET /%s: dist.integrity %q, want %q", c.path, v.Dist.Integrity, want)
			}
		}
	})

	t.Run("tarball bytes", func(t *testing.T) {
		for _, v := range []string{bmVersion, bmOlder} {
			for _, p := range []string{bmName + "/-/" + bmFile(v), "npm/npm/" + bmName + "/-/" + bmFile(v)} {
				r := get(t, g.URL+p)
				if r.status != 200 || !bytes.Equal(r.body, tarballs[v]) {
					t.Errorf("GET /%s: %d, %d bytes (want the %d recorded bytes)", p, r.status, len(r.body), len(tarballs[v]))
				}
			}
		}
	})
}

// versionDoc is the part of a version object these tests read.
type versionDoc struct {
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Dependencies map[string]string `json:"dependencies"`
}

// recordedDependencies is the dependencies of name@version in the recorded
// packument.
func recordedDependencies(t *testing.T, name, version string) map[string]string {
	t.Helper()
	b, err := fakeupstream.ReadPackument(fakeupstream.Dir(), name)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Versions map[string]versionDoc `json:"versions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("recorded packument %s: %v", name, err)
	}
	v, ok := doc.Versions[version]
	if !ok {
		t.Fatalf("recorded packument %s has no version %s", name, version)
	}
	return v.Dependencies
}

// tarballFile returns one file of a gzipped tarball.
func tarballFile(t *testing.T, tgz []byte, name string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("tarball has no %s", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}
