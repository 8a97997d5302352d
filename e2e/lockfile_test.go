package e2e

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"hash"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// lockPkg is one installed package of an npm lockfile (v2/v3).
type lockPkg struct {
	Path      string // "node_modules/a/node_modules/b"
	Version   string
	Resolved  string
	Integrity string
}

// lockfile is the part of package-lock.json these tests read.
type lockfile struct {
	Deps     map[string]string // the root's dependencies
	Packages []lockPkg         // sorted by path, root excluded
}

func readLockfile(t *testing.T, p string) lockfile {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		LockfileVersion int `json:"lockfileVersion"`
		Packages        map[string]struct {
			Version      string            `json:"version"`
			Resolved     string            `json:"resolved"`
			Integrity    string            `json:"integrity"`
			Link         bool              `json:"link"`
			Dependencies map[string]string `json:"dependencies"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	if doc.LockfileVersion < 2 || len(doc.Packages) == 0 {
		t.Fatalf("%s: lockfileVersion %d with %d packages; want a v2/v3 lockfile", p, doc.LockfileVersion, len(doc.Packages))
	}
	lf := lockfile{Deps: doc.Packages[""].Dependencies}
	for k, v := range doc.Packages {
		if k == "" || v.Link {
			continue
		}
		lf.Packages = append(lf.Packages, lockPkg{Path: k, Version: v.Version, Resolved: v.Resolved, Integrity: v.Integrity})
	}
	sort.Slice(lf.Packages, func(i, j int) bool { return lf.Packages[i].Path < lf.Packages[j].Path })
	return lf
}

// fixtureLockfile is testdata/e2e/app/package-lock.json.
func fixtureLockfile(t *testing.T) lockfile {
	t.Helper()
	lf := readLockfile(t, filepath.Join(repoRoot, "testdata", "e2e", "app", "package-lock.json"))
	for _, p := range lf.Packages {
		if p.Resolved == "" || p.Integrity == "" || p.Version == "" {
			t.Fatalf("fixture lockfile: %s has no version, resolved or integrity", p.Path)
		}
	}
	return lf
}

// tarballRef is one distinct tarball of a lockfile.
type tarballRef struct {
	Name      string // the real package name, from the resolved URL
	File      string // tarball file name
	Resolved  string
	Integrity string
}

// URLPath is the registry path of the tarball, "/name/-/file".
func (r tarballRef) URLPath() string { return "/" + r.Name + "/-/" + r.File }

// tarballs returns the distinct tarballs of a lockfile, by resolved URL.
func (lf lockfile) tarballs(t *testing.T) []tarballRef {
	t.Helper()
	seen := map[string]bool{}
	var out []tarballRef
	for _, p := range lf.Packages {
		if seen[p.Resolved] {
			continue
		}
		seen[p.Resolved] = true
		name, file := splitTarballURL(t, p.Resolved)
		out = append(out, tarballRef{Name: name, File: file, Resolved: p.Resolved, Integrity: p.Integrity})
	}
	return out
}

// splitTarballURL returns the package name and file name of a tarball URL
// ".../name/-/file" or ".../@scope/name/-/file".
func splitTarballURL(t *testing.T, raw string) (name, file string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("resolved URL %q: %v", raw, err)
	}
	dir, file := path.Split(u.Path)
	dir = strings.TrimSuffix(dir, "/")
	if !strings.HasSuffix(dir, "/-") {
		t.Fatalf("resolved URL %q is not .../name/-/file", raw)
	}
	segs := strings.Split(strings.TrimSuffix(dir, "/-"), "/")
	switch {
	case len(segs) >= 2 && strings.HasPrefix(segs[len(segs)-2], "@"):
		name = segs[len(segs)-2] + "/" + segs[len(segs)-1]
	case len(segs) >= 1:
		name = segs[len(segs)-1]
	}
	if name == "" || file == "" {
		t.Fatalf("resolved URL %q: no package or file name", raw)
	}
	return name, file
}

// integrity is a parsed SRI string (the first hash of it).
type integrity struct {
	algo string
	sum  []byte
}

func parseIntegrity(t *testing.T, sri string) integrity {
	t.Helper()
	first, _, _ := strings.Cut(strings.TrimSpace(sri), " ")
	algo, b64, ok := strings.Cut(first, "-")
	if !ok {
		t.Fatalf("integrity %q: no algorithm", sri)
	}
	sum, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("integrity %q: %v", sri, err)
	}
	return integrity{algo: algo, sum: sum}
}

func (in integrity) newHash(t *testing.T) hash.Hash {
	t.Helper()
	switch in.algo {
	case "sha512":
		return sha512.New()
	case "sha384":
		return sha512.New384()
	case "sha256":
		return sha256.New()
	case "sha1":
		return sha1.New()
	}
	t.Fatalf("integrity algorithm %q", in.algo)
	return nil
}

// matches reports whether b hashes to the integrity.
func (in integrity) matches(t *testing.T, b []byte) bool {
	t.Helper()
	h := in.newHash(t)
	h.Write(b)
	return slices.Equal(h.Sum(nil), in.sum)
}

// storeKey is where npmgate keeps the tarball in its data directory:
// tarballs/<algo>/<2 hex>/<hex>.tgz.
func (in integrity) storeKey() string {
	x := hex.EncodeToString(in.sum)
	return "tarballs/" + in.algo + "/" + x[:2] + "/" + x + ".tgz"
}

// sriOf is the sha512 integrity string of b.
func sriOf(b []byte) string {
	s := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(s[:])
}

// recordedTarball returns the bytes the fake upstream serves for a tarball.
func recordedTarball(t *testing.T, name, file string) []byte {
	t.Helper()
	b, err := fakeupstream.ReadTarball(fakeupstream.Dir(), name, file)
	if err != nil {
		t.Fatalf("recorded tarball %s/-/%s: %v", name, file, err)
	}
	return b
}

// sameVersion compares an installed package.json version with the version
// a lockfile or packument names. The registry drops build metadata from
// version keys but not from the package.json inside the tarball, which every
// client installs as it is: @hot-loader/react-dom 17.0.2 installs as
// "17.0.2+4.13.0". So build metadata on the installed side is ignored, and
// only there.
func sameVersion(installed, locked string) bool {
	if installed == locked {
		return true
	}
	base, _, hasBuild := strings.Cut(installed, "+")
	return hasBuild && !strings.Contains(locked, "+") && base == locked
}

// checkInstalled checks that every package of the lockfile is installed at
// its path with the lockfile's version, and that its package.json names the
// package its resolved URL points at (aliases install the real package).
func checkInstalled(t *testing.T, project string, lf lockfile) {
	t.Helper()
	for _, p := range lf.Packages {
		m := readManifest(t, filepath.Join(project, filepath.FromSlash(p.Path)))
		if !sameVersion(m.Version, p.Version) {
			t.Errorf("%s: installed version %q, lockfile says %q", p.Path, m.Version, p.Version)
		}
		if p.Resolved != "" {
			if name, _ := splitTarballURL(t, p.Resolved); m.Name != name {
				t.Errorf("%s: installed package %q, lockfile resolved it to %q", p.Path, m.Name, name)
			}
		}
	}
}

type manifest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// readManifest reads dir/package.json; a missing one is an error of the
// test (and the zero manifest is returned).
func readManifest(t *testing.T, dir string) manifest {
	t.Helper()
	var m manifest
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		t.Errorf("not installed: %v", err)
		return m
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Errorf("%s/package.json: %v", dir, err)
	}
	return m
}

// checkDirectDeps checks that node_modules/<dep> holds the version the
// project's package.json pins, for every dependency in want.
func checkDirectDeps(t *testing.T, project string, want map[string]string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("no direct dependencies to check")
	}
	for name, version := range want {
		m := readManifest(t, filepath.Join(project, "node_modules", filepath.FromSlash(name)))
		if m.Name != name || !sameVersion(m.Version, version) {
			t.Errorf("node_modules/%s: installed %s@%s, want %s@%s", name, m.Name, m.Version, name, version)
		}
	}
}

// checkStore checks that npmgate's data directory holds exactly one
// tarball file per distinct integrity of the lockfile, at its content
// address, with bytes that match it, and no temporary file.
func checkStore(t *testing.T, data string, lf lockfile) {
	t.Helper()
	want := map[string]integrity{}
	for _, p := range lf.Packages {
		in := parseIntegrity(t, p.Integrity)
		want[in.storeKey()] = in
	}
	got := filesUnder(t, filepath.Join(data, "tarballs"))
	for i := range got {
		got[i] = "tarballs/" + got[i]
	}
	var wantKeys []string
	for k := range want {
		wantKeys = append(wantKeys, k)
	}
	sort.Strings(wantKeys)
	sort.Strings(got)
	if !slices.Equal(got, wantKeys) {
		t.Errorf("data directory tarballs: got %d files, want %d (one per distinct integrity)\nmissing: %v\nunexpected: %v",
			len(got), len(wantKeys), minus(wantKeys, got), minus(got, wantKeys))
	}
	for _, k := range got {
		in, ok := want[k]
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(data, filepath.FromSlash(k)))
		if err != nil {
			t.Error(err)
			continue
		}
		if !in.matches(t, b) {
			t.Errorf("%s: stored bytes do not match their integrity", k)
		}
	}
	if tmp := filesUnder(t, filepath.Join(data, "tmp")); len(tmp) > 0 {
		t.Errorf("data directory tmp/ holds %v", tmp)
	}
}

// minus is a without the elements of b.
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}
