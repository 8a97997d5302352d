package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// The filter tests (issue 5) run the real npm against npmgate with
// connector and feed filters. The recorded registry's `time` values are not
// publish dates (testdata/registry/README.md), so cooldowns are tested on
// a synthetic registry whose publish times are relative to the moment the
// test writes it, with a tarball for every version.

const fltDay = 24 * time.Hour

// fltVersion is one version of a synthetic package.
type fltVersion struct {
	version string
	age     time.Duration // published this long before the registry is written
	extra   map[string]any
}

// fltPkg is a synthetic package: versions and dist-tags.
type fltPkg struct {
	name     string
	versions []fltVersion
	tags     map[string]string
}

// fltRegistry is a registry directory in fakeupstream's layout.
type fltRegistry struct {
	dir string
	// written is when the publish times were computed.
	written time.Time
	// tarballs by "name@version".
	tarballs map[string][]byte
	// published by "name@version".
	published map[string]time.Time
}

// fltFiltered is the package most filter tests use. Its dist-tags are latest
// 2.1.0 and next 2.0.0-beta.2; no version has build metadata.
var fltFiltered = fltPkg{
	name: "e2e-filtered",
	versions: []fltVersion{
		{"0.9.0", 400 * fltDay, map[string]any{"license": "GPL-3.0"}},
		{"1.0.0", 300 * fltDay, map[string]any{"deprecated": "use 1.1.0 or later"}},
		{"1.1.0", 60 * fltDay, map[string]any{"scripts": map[string]string{"postinstall": "node -e 0"}}},
		{"1.2.0-rc.1", 25 * fltDay, nil},
		{"1.2.0", 20 * fltDay, nil},
		{"2.0.0-beta.1", 10 * fltDay, nil},
		{"2.0.0-beta.2", 5 * fltDay, nil},
		{"2.0.0", 2 * fltDay, nil},
		{"2.1.0", 6 * time.Hour, nil},
	},
	tags: map[string]string{"latest": "2.1.0", "next": "2.0.0-beta.2"},
}

// fltRipening has a version that leaves a 7d cooldown fltRipenIn after the
// registry is written.
const fltRipenIn = 8 * time.Second

var fltRipening = fltPkg{
	name: "e2e-ripening",
	versions: []fltVersion{
		{"1.0.0", 30 * fltDay, nil},
		{"1.1.0", 7*fltDay - fltRipenIn, nil},
	},
	tags: map[string]string{"latest": "1.1.0"},
}

// fltOrdering has versions whose SemVer precedence is easy to get wrong:
// the examples of SemVer 2.0.0 §11, numeric against alphanumeric
// identifiers, rc.9 against rc.10.
var fltOrdering = fltPkg{
	name: "e2e-order",
	versions: []fltVersion{
		{"1.0.0-alpha", 90 * fltDay, nil},
		{"1.0.0-alpha.1", 89 * fltDay, nil},
		{"1.0.0-alpha.beta", 88 * fltDay, nil},
		{"1.0.0-beta", 87 * fltDay, nil},
		{"1.0.0-beta.2", 86 * fltDay, nil},
		{"1.0.0-beta.11", 85 * fltDay, nil},
		{"1.0.0-rc.1", 84 * fltDay, nil},
		{"1.0.0", 83 * fltDay, nil},
		{"1.0.1-0", 82 * fltDay, nil},
		{"1.1.0", 81 * fltDay, nil},
		{"2.0.0-0.3.7", 80 * fltDay, nil},
		{"2.0.0-rc.9", 79 * fltDay, nil},
		{"2.0.0-rc.10", 78 * fltDay, nil},
		{"2.0.0-x.7.z.92", 77 * fltDay, nil},
	},
	tags: map[string]string{"latest": "1.1.0", "next": "2.0.0-rc.10"},
}

// fltWriteRegistry writes pkgs into a fresh registry directory.
func fltWriteRegistry(t *testing.T, pkgs ...fltPkg) *fltRegistry {
	t.Helper()
	reg := &fltRegistry{dir: t.TempDir(), written: time.Now(), tarballs: map[string][]byte{}, published: map[string]time.Time{}}
	stamp := func(tm time.Time) string { return tm.UTC().Format("2006-01-02T15:04:05.000Z") }
	for _, p := range pkgs {
		versions := map[string]any{}
		times := map[string]string{}
		var oldest, newest time.Time
		for _, sv := range p.versions {
			tb := npmTarball(t, p.name, sv.version)
			reg.tarballs[p.name+"@"+sv.version] = tb
			sha := sha1.Sum(tb)
			file := p.name + "-" + sv.version + ".tgz"
			v := map[string]any{
				"name": p.name, "version": sv.version, "main": "index.js", "license": "MIT",
				"dist": map[string]any{
					"tarball":   "https://registry.npmjs.org/" + p.name + "/-/" + file,
					"integrity": sriOf(tb),
					"shasum":    hex.EncodeToString(sha[:]),
				},
			}
			maps.Copy(v, sv.extra)
			versions[sv.version] = v
			pub := reg.written.Add(-sv.age)
			reg.published[p.name+"@"+sv.version] = pub
			times[sv.version] = stamp(pub)
			if oldest.IsZero() || pub.Before(oldest) {
				oldest = pub
			}
			if pub.After(newest) {
				newest = pub
			}
			fp := filepath.Join(reg.dir, "tarballs", fakeupstream.Escape(p.name), file)
			if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(fp, tb, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		times["created"], times["modified"] = stamp(oldest), stamp(newest)
		doc := mustJSON(t, map[string]any{
			"_id": p.name, "name": p.name, "dist-tags": p.tags, "versions": versions, "time": times,
		})
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(doc)
		zw.Close()
		fp := filepath.Join(reg.dir, "packuments", fakeupstream.Escape(p.name)+".json.gz")
		if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fp, gz.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// fltConfig is an npmgate configuration with one connector, npmjs at
// upstreamURL, and one default feed, npm; connFilter and feedFilter are
// the YAML bodies of their filter: keys (unindented; empty for none).
func fltConfig(upstreamURL, connFilter, feedFilter string) string {
	indent := func(s string) string {
		var b strings.Builder
		for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
			b.WriteString("      " + l + "\n")
		}
		return b.String()
	}
	var b strings.Builder
	b.WriteString("cache:\n  max_age: 2m\nconnectors:\n  npmjs:\n    url: " + upstreamURL + "\n    timeout: 10s\n    retries: 0\n")
	if connFilter != "" {
		b.WriteString("    filter:\n" + indent(connFilter))
	}
	b.WriteString("feeds:\n  npm:\n    default: true\n    connectors: [npmjs]\n")
	if feedFilter != "" {
		b.WriteString("    filter:\n" + indent(feedFilter))
	}
	return b.String()
}

// fltStartGate writes cfg to a file and serves it, with --upstream
// upstreamURL (which startGate always passes); it returns the gate and
// the file.
func fltStartGate(t *testing.T, upstreamURL, cfg string) (*gate, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "npmgate.yaml")
	writeFile(t, file, cfg)
	return startGate(t, upstreamURL, "", "--config", file), file
}

// fltProject makes a project without dependencies in the sandbox.
func fltProject(t *testing.T, sb *sandbox, name string) string {
	t.Helper()
	dir := sb.dir(t, name)
	writeFile(t, filepath.Join(dir, "package.json"), `{"name":"`+name+`","version":"1.0.0","private":true}`)
	return dir
}

// fltMustFail fails the test unless r exited non-zero.
func fltMustFail(t *testing.T, r result) {
	t.Helper()
	if r.err == nil || r.code == 0 {
		t.Fatalf("command succeeded, want a failure:\n%s", r)
	}
}

// fltWantOutput reports an error for every want not in r's output.
func fltWantOutput(t *testing.T, r result, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(r.out, w) {
			t.Errorf("npm's output does not contain %q:\n%s", w, r)
		}
	}
}

// fltWantNotice checks that npm printed npmgate's npm-notice line.
//
// npm 11.19.1 does not print it: npm-registry-fetch logs the header only when
// the response has no x-local-cache header, and make-fetch-happen sets that
// header on every response it stores in its cache, a first fetch into an
// empty cache included. npmgate's packuments are storable ("Cache-Control:
// public, max-age=0, must-revalidate"), so the notice never shows on
// installs; a response npm does not store ("cache skip", e.g. no-store)
// does show it.
func fltWantNotice(t *testing.T, r result, notice string) {
	t.Helper()
	if !strings.Contains(r.out, notice) {
		t.Errorf("npm did not print npmgate's npm-notice line %q (npm only prints npm-notice for responses its cache does not store; npmgate's packuments are storable):\n%s", notice, r)
	}
}

// fltNotice is the line npm prints for npmgate's npm-notice header.
func fltNotice(name string, hidden int, rules string) string {
	return fmt.Sprintf("npm notice npmgate: this feed's policy hides %d version(s) of %s (%s); run npmgate explain %s for details",
		hidden, name, rules, name)
}

// fltDoc is the part of a packument the filter tests read.
type fltDoc struct {
	DistTags map[string]string          `json:"dist-tags"`
	Versions map[string]json.RawMessage `json:"versions"`
	Time     map[string]string          `json:"time"`
}

func (d fltDoc) versionList() []string {
	vs := slices.Collect(maps.Keys(d.Versions))
	sort.Strings(vs)
	return vs
}

// fltGetDoc fetches the full or abbreviated packument, which must be a
// 200, and returns it with the answer.
func fltGetDoc(t *testing.T, u string, abbreviated bool) (fltDoc, response) {
	t.Helper()
	accept := "application/json"
	if abbreviated {
		accept = "application/vnd.npm.install-v1+json"
	}
	r := get(t, u, "Accept", accept)
	if r.status != 200 {
		t.Fatalf("GET %s (%s): %d %s", u, accept, r.status, r.body)
	}
	var d fltDoc
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return d, r
}

// fltErrorBody is npmgate's JSON error.
func fltErrorBody(t *testing.T, r response) string {
	t.Helper()
	var b struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &b); err != nil || b.Error == "" {
		t.Errorf("error answer %d is not {\"error\":...}: %s", r.status, r.body)
	}
	return b.Error
}

// fltWantError checks that GET u answers status with a JSON error containing
// every want, and returns the error.
func fltWantError(t *testing.T, u string, status int, wants ...string) string {
	t.Helper()
	r := get(t, u)
	if r.status != status {
		t.Errorf("GET %s: %d %s, want %d", u, r.status, r.body, status)
		return ""
	}
	msg := fltErrorBody(t, r)
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("GET %s: error %q does not contain %q", u, msg, w)
		}
	}
	return msg
}

// fltInstalled is the version of node_modules/name in project.
func fltInstalled(t *testing.T, project, name string) string {
	t.Helper()
	return readManifest(t, filepath.Join(project, "node_modules", filepath.FromSlash(name))).Version
}

// TestFilterCooldown hides the versions of e2e-filtered younger than 7d
// (a connector filter): npm installs the newest older one and prints the
// npm-notice line; the young versions are gone from both packuments and
// from time, dist-tags moved down, their tarballs are refused, and a
// version whose cooldown ends while npmgate runs appears without waiting
// for max_age.
func TestFilterCooldown(t *testing.T) {
	reg := fltWriteRegistry(t, fltFiltered, fltRipening)
	up := startUpstream(t, reg.dir)
	g, _ := fltStartGate(t, up.URL, fltConfig(up.URL, "min_release_age: 7d", ""))
	sb := newSandbox(t)

	// First, while e2e-ripening@1.1.0 is still young (see "ripening").
	ripeAt := reg.published["e2e-ripening@1.1.0"].Add(7 * fltDay)
	d, _ := fltGetDoc(t, g.URL+"e2e-ripening", true)
	checkedYoung := time.Now().Before(ripeAt)
	if checkedYoung {
		if _, ok := d.Versions["1.1.0"]; ok || d.DistTags["latest"] != "1.0.0" {
			t.Errorf("e2e-ripening before its cooldown ends: versions %v, dist-tags %v; want 1.1.0 hidden and latest 1.0.0", d.versionList(), d.DistTags)
		}
	} else {
		t.Logf("e2e-ripening@1.1.0 was already out of its cooldown at the first request; only its appearance is checked")
	}

	notice := fltNotice("e2e-filtered", 3, "min-release-age: 3")
	t.Run("npm install", func(t *testing.T) {
		project := fltProject(t, sb, "cooldown")
		r := sb.npm(t, project, g.URL, "install", "e2e-filtered")
		mustSucceed(t, r)
		if v := fltInstalled(t, project, "e2e-filtered"); v != "1.2.0" {
			t.Errorf("installed e2e-filtered@%s, want 1.2.0 (the newest version older than 7d)", v)
		}
		fltWantNotice(t, r, notice)
	})

	t.Run("npm install of a young version", func(t *testing.T) {
		project := fltProject(t, sb, "cooldown-young")
		r := sb.npm(t, project, g.URL, "install", "e2e-filtered@2.0.0")
		fltMustFail(t, r)
		fltWantOutput(t, r, "ETARGET", "No matching version found for e2e-filtered@2.0.0")
		fltWantNotice(t, r, notice)
	})

	t.Run("packuments", func(t *testing.T) {
		want := []string{"0.9.0", "1.0.0", "1.1.0", "1.2.0", "1.2.0-rc.1", "2.0.0-beta.1"}
		for _, abbr := range []bool{false, true} {
			d, r := fltGetDoc(t, g.URL+"e2e-filtered", abbr)
			if got := d.versionList(); !slices.Equal(got, want) {
				t.Errorf("abbreviated=%v: versions %v, want %v", abbr, got, want)
			}
			if d.DistTags["latest"] != "1.2.0" || d.DistTags["next"] != "2.0.0-beta.1" {
				t.Errorf("abbreviated=%v: dist-tags %v, want latest 1.2.0 and next 2.0.0-beta.1", abbr, d.DistTags)
			}
			if n := r.header.Get("npm-notice"); "npm notice "+n != notice {
				t.Errorf("abbreviated=%v: npm-notice %q", abbr, n)
			}
			if !abbr {
				for _, v := range []string{"2.0.0-beta.2", "2.0.0", "2.1.0"} {
					if _, ok := d.Time[v]; ok {
						t.Errorf("full packument: time still has hidden version %s", v)
					}
				}
				for _, v := range want {
					if _, ok := d.Time[v]; !ok {
						t.Errorf("full packument: time lost allowed version %s", v)
					}
				}
			}
		}
	})

	t.Run("tarballs of young versions", func(t *testing.T) {
		fltWantError(t, g.URL+"e2e-filtered/-/e2e-filtered-2.1.0.tgz", 403,
			"e2e-filtered@2.1.0", "min_release_age is ")
		fltWantError(t, g.URL+"npm/npm/e2e-filtered/-/e2e-filtered-2.0.0-beta.2.tgz", 403,
			"e2e-filtered@2.0.0-beta.2", "min_release_age is ")
		if r := get(t, g.URL+"e2e-filtered/-/e2e-filtered-1.2.0.tgz"); r.status != 200 || !bytes.Equal(r.body, reg.tarballs["e2e-filtered@1.2.0"]) {
			t.Errorf("GET the allowed 1.2.0 tarball: %d, %d bytes", r.status, len(r.body))
		}
	})

	t.Run("ripening", func(t *testing.T) {
		// The cached document must expire when the cooldown ends, not
		// max_age (2m) later.
		deadline := ripeAt.Add(15 * time.Second)
		for {
			d, _ := fltGetDoc(t, g.URL+"e2e-ripening", true)
			if _, ok := d.Versions["1.1.0"]; ok {
				if d.DistTags["latest"] != "1.1.0" {
					t.Errorf("e2e-ripening@1.1.0 appeared but latest is %q", d.DistTags["latest"])
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("e2e-ripening@1.1.0 still hidden %s after its cooldown ended (checked young first: %v): versions %v",
					time.Since(ripeAt).Round(time.Second), checkedYoung, d.versionList())
			}
			time.Sleep(200 * time.Millisecond)
		}
		if r := get(t, g.URL+"e2e-ripening/-/e2e-ripening-1.1.0.tgz"); r.status != 200 {
			t.Errorf("GET the ripened tarball: %d %s", r.status, r.body)
		}
	})
}

// TestFilterBlockedRange blocks e2e-filtered@<1.2.0 in the feed: npm
// cannot install a blocked version (it is absent, so npm says ETARGET and
// prints the notice; the tarball itself is a 403 naming the rule), and
// installs allowed versions.
func TestFilterBlockedRange(t *testing.T) {
	reg := fltWriteRegistry(t, fltFiltered)
	up := startUpstream(t, reg.dir)
	g, _ := fltStartGate(t, up.URL, fltConfig(up.URL, "", `block: ["e2e-filtered@<1.2.0"]`))
	sb := newSandbox(t)
	// 0.9.0, 1.0.0, 1.1.0 and the prerelease 1.2.0-rc.1 (below 1.2.0).
	notice := fltNotice("e2e-filtered", 4, "block: 4")

	t.Run("blocked version", func(t *testing.T) {
		project := fltProject(t, sb, "blocked")
		r := sb.npm(t, project, g.URL, "install", "e2e-filtered@1.1.0")
		fltMustFail(t, r)
		fltWantOutput(t, r, "ETARGET", "No matching version found for e2e-filtered@1.1.0")
		fltWantNotice(t, r, notice)
		if _, err := os.Stat(filepath.Join(project, "node_modules", "e2e-filtered")); err == nil {
			t.Errorf("node_modules/e2e-filtered exists after the failed install")
		}
	})

	t.Run("blocked tarballs", func(t *testing.T) {
		const rule = `is blocked by block entry "e2e-filtered@<1.2.0"`
		for _, v := range []string{"1.1.0", "0.9.0", "1.2.0-rc.1"} {
			for _, prefix := range []string{"", "npm/npm/"} {
				msg := fltWantError(t, g.URL+prefix+"e2e-filtered/-/e2e-filtered-"+v+".tgz", 403, "e2e-filtered@"+v+" "+rule)
				if msg != "" && !strings.HasPrefix(msg, "blocked by policy: ") {
					t.Errorf("403 error %q does not start with \"blocked by policy: \"", msg)
				}
			}
		}
		if files := filesUnder(t, filepath.Join(g.Data, "tarballs")); len(files) > 0 {
			t.Errorf("blocked tarballs were stored: %v", files)
		}
		if st := up.Requests(); st.Tarballs > 0 {
			t.Errorf("upstream was asked for %d tarballs of blocked versions: %v", st.Tarballs, st.Paths)
		}
	})

	t.Run("latest", func(t *testing.T) {
		project := fltProject(t, sb, "latest")
		r := sb.npm(t, project, g.URL, "install", "e2e-filtered")
		mustSucceed(t, r)
		if v := fltInstalled(t, project, "e2e-filtered"); v != "2.1.0" {
			t.Errorf("installed e2e-filtered@%s, want 2.1.0 (latest, not blocked)", v)
		}
		fltWantNotice(t, r, notice)
	})

	t.Run("allowed range", func(t *testing.T) {
		project := fltProject(t, sb, "caret")
		mustSucceed(t, sb.npm(t, project, g.URL, "install", "e2e-filtered@^1.0.0"))
		if v := fltInstalled(t, project, "e2e-filtered"); v != "1.2.0" {
			t.Errorf("installed e2e-filtered@%s for ^1.0.0, want 1.2.0", v)
		}
	})
}

// TestFilterExcludedName excludes chalk in the feed: npm install chalk
// fails with E404 and npmgate's message naming the exclude entry, and
// upstream is never asked for chalk.
func TestFilterExcludedName(t *testing.T) {
	up := startUpstream(t, "")
	g, _ := fltStartGate(t, up.URL, fltConfig(up.URL, "", `exclude: ["chalk"]`))
	sb := newSandbox(t)
	const reason = `chalk is excluded by exclude entry "chalk"`

	project := fltProject(t, sb, "excluded")
	r := sb.npm(t, project, g.URL, "install", "chalk")
	fltMustFail(t, r)
	fltWantOutput(t, r, "E404", "404 Not Found", reason)

	for _, p := range []string{"chalk", "npm/npm/chalk", "chalk/-/chalk-4.1.2.tgz", "chalk/4.1.2"} {
		fltWantError(t, g.URL+p, 404, reason)
	}
	if _, r := fltGetDoc(t, g.URL+"ms", true); r.header.Get("npm-notice") != "" {
		t.Errorf("ms (not excluded) has an npm-notice: %q", r.header.Get("npm-notice"))
	}
	for _, p := range up.Requests().Paths {
		if strings.Contains(p, "chalk") {
			t.Errorf("upstream was asked for %s although chalk is excluded", p)
		}
	}
}

// TestFilterLockfileBlocked blocks a version the fixture lockfile pins
// (@sindresorhus/is@4.6.0, scoped) in the connector: npm ci fails with
// npmgate's 403, which names the package, the version and the rule.
func TestFilterLockfileBlocked(t *testing.T) {
	lf := fixtureLockfile(t)
	var pinned lockPkg
	for _, p := range lf.Packages {
		if p.Path == "node_modules/@sindresorhus/is" {
			pinned = p
		}
	}
	if pinned.Version != "4.6.0" {
		t.Fatalf("the fixture lockfile pins @sindresorhus/is at %q, not 4.6.0; the test data changed", pinned.Version)
	}
	up := startUpstream(t, "")
	g, _ := fltStartGate(t, up.URL, fltConfig(up.URL, `block: ["@sindresorhus/is@<5"]`, ""))
	sb := newSandbox(t)

	r := sb.npm(t, sb.copyProject(t, "locked"), g.URL, "ci")
	fltMustFail(t, r)
	fltWantOutput(t, r, "E403", "403 Forbidden",
		`blocked by policy: @sindresorhus/is@4.6.0 is blocked by block entry "@sindresorhus/is@<5"`)
	if !regexp.MustCompile(`(?m)^npm error 403 (403 )?Forbidden - GET \S+/@sindresorhus/is/-/is-4\.6\.0\.tgz - blocked by policy`).MatchString(r.out) {
		t.Errorf("npm's error line does not name the blocked tarball URL:\n%s", r)
	}
	waitNoTmp(t, g.Data)
	blocked := parseIntegrity(t, pinned.Integrity).storeKey()
	for _, f := range filesUnder(t, filepath.Join(g.Data, "tarballs")) {
		if "tarballs/"+f == blocked {
			t.Errorf("the blocked tarball was stored: %s", f)
		}
	}
	// The upstream may have been asked for the blocked tarball: a cold
	// tarball request starts its download while the document loads (two
	// round trips at once, as DESIGN.md prescribes), and the bytes are
	// discarded once the document says the version is blocked. What must
	// hold is above: a 403 naming the rule, nothing stored, nothing left.
	// After that, with the document known, it is never asked again.
	before := 0
	for _, p := range up.Requests().Paths {
		if strings.HasSuffix(p, "/is-4.6.0.tgz") {
			before++
		}
	}
	if before > 1 {
		t.Errorf("upstream was asked %d times for the blocked tarball", before)
	}
	r = sb.npm(t, sb.copyProject(t, "locked-again"), g.URL, "ci")
	fltMustFail(t, r)
	after := 0
	for _, p := range up.Requests().Paths {
		if strings.HasSuffix(p, "/is-4.6.0.tgz") {
			after++
		}
	}
	if after != before {
		t.Errorf("with the document known, the blocked tarball was fetched again (%d requests)", after-before)
	}
}

// TestFilterReload changes the filters of a running npmgate with SIGHUP:
// an exclude entry takes effect, an invalid file is refused (logged) and
// the rules before it stay, and a later valid file applies again.
func TestFilterReload(t *testing.T) {
	up := startUpstream(t, "")
	cfgNone := fltConfig(up.URL, "", "")
	cfgExclude := fltConfig(up.URL, "", `exclude: ["ms"]`)
	g, file := fltStartGate(t, up.URL, cfgNone)
	sb := newSandbox(t)
	const reason = `ms is excluded by exclude entry "ms"`

	project := fltProject(t, sb, "before")
	mustSucceed(t, sb.npm(t, project, g.URL, "install", "ms"))
	if v := fltInstalled(t, project, "ms"); v != "2.1.3" {
		t.Fatalf("installed ms@%s, want 2.1.3", v)
	}

	// pollStatus GETs /ms until it answers want.
	pollStatus := func(t *testing.T, want int) response {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := get(t, g.URL+"ms", "Accept", "application/vnd.npm.install-v1+json")
			if r.status == want {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET /ms still %d %.300s 10s after SIGHUP, want %d", r.status, r.body, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// waitLog waits until the log has more than n lines matching re.
	waitLog := func(t *testing.T, re *regexp.Regexp, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(re.FindAllString(g.logText(), -1)) <= n {
			if time.Now().After(deadline) {
				t.Fatalf("npmgate did not log %s within 10s of SIGHUP", re)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	reloaded := regexp.MustCompile(`(?m)^.*msg="configuration reloaded[^"]*".*$`)
	refused := regexp.MustCompile(`(?m)^.*level=ERROR.*msg="configuration reload refused[^"]*".*$`)

	var excluded string
	t.Run("add exclude", func(t *testing.T) {
		writeFile(t, file, cfgExclude)
		n := len(reloaded.FindAllString(g.logText(), -1))
		g.signal(t, syscall.SIGHUP)
		first := fltErrorBody(t, pollStatus(t, 404))
		waitLog(t, reloaded, n)
		excluded = fltWantError(t, g.URL+"ms", 404, reason)
		if first != excluded {
			// A request that straddled the swap of rules mixed old and
			// new ones (see TestFilterReloadInFlight).
			t.Logf("the first 404 after SIGHUP said %q; once the reload was logged: %q", first, excluded)
		}
		fltWantError(t, g.URL+"ms/-/ms-2.1.3.tgz", 404, reason)

		r2 := sb.npm(t, fltProject(t, sb, "after"), g.URL, "install", "ms")
		fltMustFail(t, r2)
		fltWantOutput(t, r2, "E404", reason)
	})
	if excluded == "" {
		t.FailNow()
	}

	t.Run("invalid file refused", func(t *testing.T) {
		writeFile(t, file, "no_such_key: true\n"+cfgNone)
		n := len(refused.FindAllString(g.logText(), -1))
		g.signal(t, syscall.SIGHUP)
		waitLog(t, refused, n)
		line := refused.FindAllString(g.logText(), -1)[n]
		if !strings.Contains(line, "no_such_key") {
			t.Errorf("the refusal does not name the bad key: %s", line)
		}
		for _, p := range []string{"ms", "ms/-/ms-2.1.3.tgz"} {
			if msg := fltWantError(t, g.URL+p, 404); p == "ms" && msg != excluded {
				t.Errorf("GET /ms after the refused reload: %q, want the previous rules' %q", msg, excluded)
			}
		}
	})

	t.Run("valid again", func(t *testing.T) {
		writeFile(t, file, cfgNone)
		g.signal(t, syscall.SIGHUP)
		pollStatus(t, 200)
		if r := get(t, g.URL+"ms/-/ms-2.1.3.tgz"); r.status != 200 {
			t.Errorf("GET the ms tarball after the exclude was removed: %d %s", r.status, r.body)
		}
	})
}

// fltExplainLine is one version line of npmgate explain.
type fltExplainLine struct {
	status string // allowed or blocked
	what   string // the connector (allowed) or the rule (blocked)
	reason string
}

var fltExplainHeader = regexp.MustCompile(`^(\S+) in feed (\S+)$`)

// fltExplain runs the npmgate binary's explain command and parses its
// version lines; other lines are returned as they are.
func fltExplain(t *testing.T, args ...string) (versions map[string]fltExplainLine, other []string, out string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gateBin, append([]string{"explain"}, args...)...)
	cmd.Env = cleanEnv(nil)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out = stdout.String()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("npmgate explain %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr.String())
	}
	versions = map[string]fltExplainLine{}
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[1] == "allowed":
			versions[f[0]] = fltExplainLine{status: f[1], what: f[2]}
		case len(f) >= 4 && f[1] == "blocked":
			versions[f[0]] = fltExplainLine{status: f[1], what: f[2], reason: strings.Join(f[3:], " ")}
		default:
			other = append(other, l)
		}
	}
	return versions, other, out
}

// TestFilterExplain runs `npmgate explain` with the configuration and data
// directory of a running npmgate whose connector and feed filters use
// every version rule: each version is listed allowed or blocked with its
// rule, the allowed ones are exactly what npmgate serves, and npm installs
// the version an allow entry lets through the cooldown.
func TestFilterExplain(t *testing.T) {
	reg := fltWriteRegistry(t, fltFiltered)
	up := startUpstream(t, reg.dir)
	g, file := fltStartGate(t, up.URL, fltConfig(up.URL,
		`deny: ["e2e-filtered@2.0.0"]`,
		`exclude: ["chalk"]
block: ["e2e-filtered@>=1.2.0-0 <1.2.0"]
allow: ["e2e-filtered@2.1.0"]
min_release_age: 7d
deprecated: hide
install_scripts: block
licenses:
  deny: ["GPL-3.0"]`))

	type want struct{ status, what, reason string }
	wants := map[string]want{
		"0.9.0":        {"blocked", "license", `e2e-filtered@0.9.0 has license "GPL-3.0", not permitted`},
		"1.0.0":        {"blocked", "deprecated", `e2e-filtered@1.0.0 is deprecated`},
		"1.1.0":        {"blocked", "install-scripts", `e2e-filtered@1.1.0 has an install script`},
		"1.2.0-rc.1":   {"blocked", "block", `e2e-filtered@1.2.0-rc.1 is blocked by block entry "e2e-filtered@>=1.2.0-0 <1.2.0"`},
		"1.2.0":        {"allowed", "npmjs", ""},
		"2.0.0-beta.1": {"allowed", "npmjs", ""},
		"2.0.0-beta.2": {"blocked", "min-release-age", `e2e-filtered@2.0.0-beta.2 was published 120h ago; min_release_age is `},
		"2.0.0":        {"blocked", "deny", `e2e-filtered@2.0.0 is a known-malicious version (deny entry "e2e-filtered@2.0.0")`},
		"2.1.0":        {"allowed", "npmjs", ""},
	}
	base := []string{"--config", file, "--data", g.Data}

	versions, other, out := fltExplain(t, append(base, "e2e-filtered")...)
	if len(other) != 1 || !fltExplainHeader.MatchString(other[0]) || other[0] != "e2e-filtered in feed npm" {
		t.Errorf("explain e2e-filtered: unexpected lines %q in:\n%s", other, out)
	}
	for v, w := range wants {
		got, ok := versions[v]
		switch {
		case !ok:
			t.Errorf("explain e2e-filtered: no line for %s:\n%s", v, out)
		case got.status != w.status || got.what != w.what || !strings.Contains(got.reason, w.reason):
			t.Errorf("explain e2e-filtered: %s is %s %s %q, want %s %s containing %q", v, got.status, got.what, got.reason, w.status, w.what, w.reason)
		}
	}
	if len(versions) != len(wants) {
		t.Errorf("explain e2e-filtered lists %d versions, want %d:\n%s", len(versions), len(wants), out)
	}

	// What explain allows is what npmgate serves.
	d, r := fltGetDoc(t, g.URL+"e2e-filtered", true)
	var allowed []string
	for v, l := range versions {
		if l.status == "allowed" {
			allowed = append(allowed, v)
		}
	}
	sort.Strings(allowed)
	if got := d.versionList(); !slices.Equal(got, allowed) {
		t.Errorf("npmgate serves %v; explain allows %v", got, allowed)
	}
	if n := r.header.Get("npm-notice"); !strings.Contains(n, "hides 6 version(s) of e2e-filtered (block: 1, deny: 1, deprecated: 1, install-scripts: 1, license: 1, min-release-age: 1)") {
		t.Errorf("npm-notice %q", n)
	}

	// A range.
	versions, _, out = fltExplain(t, append(base, "e2e-filtered@^1.0.0")...)
	if got := slices.Sorted(maps.Keys(versions)); !slices.Equal(got, []string{"1.0.0", "1.1.0", "1.2.0"}) {
		t.Errorf("explain e2e-filtered@^1.0.0 lists %v:\n%s", got, out)
	}

	// A name the feed excludes: no upstream request needed.
	versions, other, out = fltExplain(t, append(base, "chalk")...)
	if len(versions) != 0 || len(other) != 2 || other[0] != "chalk in feed npm" ||
		strings.TrimSpace(other[1]) != `connector npmjs: name blocked: chalk is excluded by exclude entry "chalk"` {
		t.Errorf("explain chalk:\n%s", out)
	}

	// The allow entry lets 2.1.0 through the cooldown: npm installs it.
	sb := newSandbox(t)
	project := fltProject(t, sb, "explain")
	res := sb.npm(t, project, g.URL, "install", "e2e-filtered")
	mustSucceed(t, res)
	if v := fltInstalled(t, project, "e2e-filtered"); v != "2.1.0" {
		t.Errorf("installed e2e-filtered@%s, want 2.1.0 (allowed through the cooldown)", v)
	}
}

// fltNpmJSON runs npm like sandbox.npm, but keeps standard output apart (for
// --json) and logs at notice level only.
func fltNpmJSON(t *testing.T, sb *sandbox, dir, registry string, args ...string) (stdout string, r result) {
	t.Helper()
	npm := onPath(t, "npm")
	args = append(args, "--json")
	args = sb.npmArgs(t, registry, "notice", args)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	cmd.Env = sb.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r = result{cmd: "npm " + strings.Join(args, " "), out: errOut.String(), err: err, code: -1}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	}
	return out.String(), r
}

// TestFilterOrdering puts a filter that blocks nothing relevant in front
// of packages with many prereleases: through npmgate, npm resolves exactly
// what it resolves against the fake upstream directly, for ranges,
// prerelease ranges and dist-tags, and installs the same versions.
func TestFilterOrdering(t *testing.T) {
	const cfgFilter = `block: ["unrelated@*"]`
	reg := fltWriteRegistry(t, fltOrdering)
	synthUp := startUpstream(t, reg.dir)
	synthGate, _ := fltStartGate(t, synthUp.URL, fltConfig(synthUp.URL, "", cfgFilter))
	recUp := startUpstream(t, "")
	recGate, _ := fltStartGate(t, recUp.URL, fltConfig(recUp.URL, cfgFilter, ""))
	sb := newSandbox(t)
	dir := fltProject(t, sb, "view")

	type pair struct{ direct, gate string }
	synth := pair{synthUp.URL + "/", synthGate.URL}
	rec := pair{recUp.URL + "/", recGate.URL}

	for _, c := range []struct {
		reg   pair
		spec  string
		field string
	}{
		{synth, "e2e-order@>=1.0.0-alpha.1 <1.0.0", "version"},
		{synth, "e2e-order@>=2.0.0-0", "version"},
		{synth, "e2e-order@~1.0.1-0", "version"},
		{synth, "e2e-order@next", "version"},
		{synth, "e2e-order", "versions"},
		{synth, "e2e-order", "dist-tags"},
		{rec, "ms@>=3.0.0-0", "version"},
		{rec, "react@>=19.0.0-rc <19.0.1", "version"},
		{rec, "typescript@>=5.0.0-0 <5.0.3", "version"},
	} {
		direct, rd := fltNpmJSON(t, sb, dir, c.reg.direct, "view", c.spec, c.field)
		through, rg := fltNpmJSON(t, sb, dir, c.reg.gate, "view", c.spec, c.field)
		if rd.code != 0 || rg.code != 0 {
			t.Errorf("npm view %s %s: exit %d directly, %d through npmgate\n%s\n%s", c.spec, c.field, rd.code, rg.code, rd, rg)
			continue
		}
		var dv, gv any
		if json.Unmarshal([]byte(direct), &dv) != nil || json.Unmarshal([]byte(through), &gv) != nil || dv == nil {
			t.Errorf("npm view %s %s: not JSON: %q / %q", c.spec, c.field, direct, through)
			continue
		}
		if !fltJSONEqual(dv, gv) {
			t.Errorf("npm view %s %s: through npmgate %s, directly %s", c.spec, c.field, fltCompact(through), fltCompact(direct))
		} else {
			t.Logf("npm view %s %s: %.200s", c.spec, c.field, fltCompact(direct))
		}
		if strings.Contains(rg.out, "npm notice npmgate") {
			t.Errorf("npm view %s: npmgate sent a notice although its filter hides nothing here:\n%s", c.spec, rg.out)
		}
	}

	for _, c := range []struct {
		reg  pair
		name string
		rng  string
	}{
		{synth, "e2e-order", ">=2.0.0-0"},
		{synth, "e2e-order", "^1.0.0-beta"},
		{rec, "ms", ">=2.0.0-0"},
	} {
		var got [2]string
		for i, registry := range []string{c.reg.direct, c.reg.gate} {
			project := fltProject(t, sb, fmt.Sprintf("install-%s-%d-%d", c.name, len(c.rng), i))
			mustSucceed(t, sb.npm(t, project, registry, "install", c.name+"@"+c.rng))
			got[i] = fltInstalled(t, project, c.name)
		}
		if got[0] != got[1] {
			t.Errorf("npm install %s@%s: %s through npmgate, %s directly", c.name, c.rng, got[1], got[0])
		} else {
			t.Logf("npm install %s@%s: %s", c.name, c.rng, got[0])
		}
	}

	// The packuments themselves: same versions, tags and times.
	for _, c := range []struct {
		reg  pair
		name string
	}{{synth, "e2e-order"}, {rec, "ms"}, {rec, "react"}} {
		for _, abbr := range []bool{false, true} {
			d, _ := fltGetDoc(t, c.reg.direct+c.name, abbr)
			gd, r := fltGetDoc(t, c.reg.gate+c.name, abbr)
			if !slices.Equal(d.versionList(), gd.versionList()) || !maps.Equal(d.DistTags, gd.DistTags) {
				t.Errorf("%s (abbreviated=%v): npmgate serves %d versions, tags %v; upstream %d, tags %v",
					c.name, abbr, len(gd.Versions), gd.DistTags, len(d.Versions), d.DistTags)
			}
			if !abbr {
				for v := range d.Versions {
					if _, ok := gd.Time[v]; d.Time[v] != "" && !ok {
						t.Errorf("%s: npmgate's time lost %s", c.name, v)
						break
					}
				}
			}
			if n := r.header.Get("npm-notice"); n != "" {
				t.Errorf("%s: npm-notice %q although the filter hides nothing", c.name, n)
			}
		}
	}
}

func fltJSONEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func fltCompact(s string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(s)) != nil {
		return s
	}
	return b.String()
}

// fltLocked is the fixture lockfile's entry for node_modules/name, which
// must be at version.
func fltLocked(t *testing.T, name, version string) lockPkg {
	t.Helper()
	for _, p := range fixtureLockfile(t).Packages {
		if p.Path == "node_modules/"+name && p.Version == version {
			return p
		}
	}
	t.Fatalf("the fixture lockfile no longer has node_modules/%s at %s; the test data changed", name, version)
	return lockPkg{}
}

// TestFilterReloadInFlight adds a block rule with SIGHUP while npmgate's
// first fetch of ms waits on a slow upstream. Once the reload is logged
// the new rule must hold everywhere: the blocked version's tarball is
// refused (asked first, as `npm ci` asks for nothing else), the
// packument hides it, and npm ci of a lockfile pinning it fails with the
// 403.
func TestFilterReloadInFlight(t *testing.T) {
	ms := fltLocked(t, "ms", "2.1.3")
	const latency = 2 * time.Second
	up := startUpstream(t, "", fakeupstream.WithLatency(latency))
	g, file := fltStartGate(t, up.URL, fltConfig(up.URL, "", ""))
	const rule = `ms@2.1.3 is blocked by block entry "ms@2.1.3"`

	type answer struct {
		r   response
		err error
	}
	done := make(chan answer, 1)
	go func() {
		r, err := fetch("GET", g.URL+"ms", "Accept", "application/vnd.npm.install-v1+json")
		done <- answer{r, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for up.Requests().Total == 0 {
		if time.Now().After(deadline) {
			t.Fatal("npmgate's upstream request for ms did not arrive")
		}
		time.Sleep(10 * time.Millisecond)
	}
	writeFile(t, file, fltConfig(up.URL, "", `block: ["ms@2.1.3"]`))
	g.signal(t, syscall.SIGHUP)
	reloaded := regexp.MustCompile(`msg="configuration reloaded`)
	for !reloaded.MatchString(g.logText()) {
		if time.Now().After(deadline) {
			t.Fatal("npmgate did not log the reload within 10s of SIGHUP")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case a := <-done:
		t.Fatalf("the first GET /ms ended (%d, %v) before the reload was logged, so nothing straddled it: upstream latency %s is too short here", a.r.status, a.err, latency)
	default:
	}
	select {
	case a := <-done:
		// Whatever rules it was answered with: it started before the reload.
		if a.err != nil || a.r.status != 200 {
			t.Fatalf("GET /ms in flight during the reload: %d %v %.200s", a.r.status, a.err, a.r.body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("GET /ms in flight during the reload got no answer")
	}

	tarball := g.URL + "ms/-/ms-2.1.3.tgz"
	if r := get(t, tarball); r.status != 403 {
		t.Errorf("GET %s after the reload that blocks it: %d (%d bytes), want 403 naming %q; npmgate kept the index its in-flight fetch built with the old rules, under the new rules' cache key",
			tarball, r.status, len(r.body), rule)
	}
	d, _ := fltGetDoc(t, g.URL+"ms", true)
	if _, ok := d.Versions["2.1.3"]; ok {
		t.Errorf("the packument still has ms@2.1.3 after the reload that blocks it")
	}
	if r := get(t, tarball); r.status != 403 {
		t.Errorf("GET %s again, after the packument: %d, want 403", tarball, r.status)
	}

	sb := newSandbox(t)
	project := sb.dir(t, "pinned")
	writeFile(t, filepath.Join(project, "package.json"), `{"name":"pinned","version":"1.0.0","private":true,"dependencies":{"ms":"2.1.3"}}`)
	writeFile(t, filepath.Join(project, "package-lock.json"), string(mustJSON(t, map[string]any{
		"name": "pinned", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
		"packages": map[string]any{
			"":                map[string]any{"name": "pinned", "version": "1.0.0", "dependencies": map[string]string{"ms": "2.1.3"}},
			"node_modules/ms": map[string]any{"version": "2.1.3", "resolved": ms.Resolved, "integrity": ms.Integrity, "license": "MIT"},
		},
	})))
	r := sb.npm(t, project, g.URL, "ci")
	if r.code == 0 {
		t.Errorf("npm ci installed ms@2.1.3, which the reloaded configuration blocks:\n%s", r)
	} else {
		fltWantOutput(t, r, "E403", rule)
	}
}

// fltSlowTarballs is an upstream in front of the fake one: packuments
// pass through, tarball bodies stop halfway until release is closed.
type fltSlowTarballs struct {
	URL      string
	tarballs atomic.Int32 // tarball requests
	halfSent chan struct{}
	release  chan struct{}
	once     sync.Once
	relOnce  sync.Once
}

func (s *fltSlowTarballs) unblock() { s.relOnce.Do(func() { close(s.release) }) }

func fltStartSlowTarballs(t *testing.T, target string) *fltSlowTarballs {
	t.Helper()
	s := &fltSlowTarballs{halfSent: make(chan struct{}), release: make(chan struct{})}
	tu, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(tu)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/-/") {
			rp.ServeHTTP(w, r)
			return
		}
		s.tarballs.Add(1)
		resp, err := fetch("GET", target+r.URL.EscapedPath())
		if err != nil || resp.status != 200 {
			http.Error(w, fmt.Sprintf("fake upstream: %d %v", resp.status, err), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(resp.body)))
		half := len(resp.body) / 2
		w.Write(resp.body[:half])
		w.(http.Flusher).Flush()
		s.once.Do(func() { close(s.halfSent) })
		select {
		case <-s.release:
		case <-r.Context().Done():
			return
		case <-time.After(30 * time.Second):
		}
		w.Write(resp.body[half:])
	}))
	t.Cleanup(func() {
		s.unblock()
		srv.Close()
	})
	s.URL = srv.URL
	return s
}

// TestFilterExplainWhileDownloading runs `npmgate explain`, as an operator
// would, with the configuration file and data directory of a running
// npmgate that is halfway through a tarball download (semver 7.8.6, 33 kB,
// so that npmgate has sent part of the body). Explain must not disturb the
// server: the download completes, its client gets every byte, the
// tarball is stored, and upstream is asked for it once.
func TestFilterExplainWhileDownloading(t *testing.T) {
	pinned := fltLocked(t, "semver", "7.8.6")
	recorded := recordedTarball(t, "semver", "semver-7.8.6.tgz")
	up := startUpstream(t, "")
	slow := fltStartSlowTarballs(t, up.URL)
	g, file := fltStartGate(t, slow.URL, fltConfig(slow.URL, "", `block: ["semver@<7"]`))

	type answer struct {
		status int
		n      int
		body   []byte
		err    error
	}
	done := make(chan answer, 1)
	go func() {
		// A connection of its own: Go's client silently retries a GET
		// on a reused connection that closes before the answer starts.
		c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
		resp, err := c.Get(g.URL + "semver/-/semver-7.8.6.tgz")
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- answer{resp.StatusCode, len(b), b, err}
	}()
	select {
	case <-slow.halfSent:
	case a := <-done:
		t.Fatalf("GET the semver tarball ended before its download was halfway: %d %v", a.status, a.err)
	case <-time.After(15 * time.Second):
		t.Fatal("npmgate did not start downloading the semver tarball")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var pending []string
		for _, f := range filesUnder(t, filepath.Join(g.Data, "tmp")) {
			if strings.HasPrefix(f, "w-") {
				pending = append(pending, f)
			}
		}
		if len(pending) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no download in tmp/ while upstream is halfway through the body")
		}
		time.Sleep(10 * time.Millisecond)
	}

	versions, _, out := fltExplain(t, "--config", file, "--data", g.Data, "semver@>=6.3.0 <7.0.1")
	if v := versions["7.0.0"]; v.status != "allowed" {
		t.Errorf("explain semver: 7.0.0 is %+v, want allowed:\n%s", v, out)
	}
	if v := versions["6.3.0"]; v.status != "blocked" || v.what != "block" {
		t.Errorf("explain semver: 6.3.0 is %+v, want blocked by block:\n%s", v, out)
	}

	slow.unblock()
	var a answer
	select {
	case a = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the tarball download in flight while explain ran got no answer")
	}
	if a.err != nil || a.status != 200 || !bytes.Equal(a.body, recorded) {
		t.Errorf("the tarball download in flight while `npmgate explain` ran: status %d, %d of %d bytes, err %v",
			a.status, a.n, len(recorded), a.err)
	}
	for _, l := range strings.Split(g.logText(), "\n") {
		if strings.Contains(l, "tarball download failed") {
			t.Errorf("npmgate log: %s", l)
		}
	}
	waitNoTmp(t, g.Data)
	key := parseIntegrity(t, pinned.Integrity).storeKey()
	if _, err := os.Stat(filepath.Join(g.Data, filepath.FromSlash(key))); err != nil {
		t.Errorf("the tarball downloaded while explain ran was not stored: %v", err)
	}
	if n := slow.tarballs.Load(); n != 1 {
		t.Errorf("upstream was asked for the tarball %d times, want 1", n)
	}
}
