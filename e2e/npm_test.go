package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNPMColdWarmOffline runs `npm ci` on the fixture project through one
// npmgate three times: cold (everything comes from upstream), warm (a fresh
// npm cache, so npm asks again, and npmgate answers without upstream
// tarball requests) and offline (upstream down). A fourth run restarts
// npmgate on the same data directory with upstream gone for good: what is
// on disk is enough.
func TestNPMColdWarmOffline(t *testing.T) {
	lf := fixtureLockfile(t)
	up := startUpstream(t, "")
	g := startGate(t, up.URL, "")
	sb := newSandbox(t)

	npmCI := func(t *testing.T, g *gate, name string) {
		t.Helper()
		project := sb.copyProject(t, name)
		mustSucceed(t, sb.npm(t, project, g.URL, "ci"))
		checkInstalled(t, project, lf)
	}

	if !t.Run("cold", func(t *testing.T) {
		up.ResetStats()
		npmCI(t, g, "cold")
		if st := up.Requests(); st.Tarballs == 0 {
			t.Errorf("upstream saw no tarball request on a cold install: %+v", st.Paths)
		}
		checkStore(t, g.Data, lf)
	}) {
		return
	}

	if !t.Run("warm", func(t *testing.T) {
		up.ResetStats()
		npmCI(t, g, "warm")
		if st := up.Requests(); st.Tarballs != 0 {
			t.Errorf("upstream saw %d tarball requests on a warm install, want 0: %v", st.Tarballs, st.Paths)
		}
		checkStore(t, g.Data, lf)
	}) {
		return
	}

	if !t.Run("offline", func(t *testing.T) {
		up.SetDown(true)
		defer up.SetDown(false)
		up.ResetStats()
		npmCI(t, g, "offline")
		if st := up.Requests(); st.Tarballs != 0 {
			t.Errorf("upstream saw %d tarball requests while down: %v", st.Tarballs, st.Paths)
		}
		checkStore(t, g.Data, lf)
	}) {
		return
	}

	t.Run("offline after restart", func(t *testing.T) {
		g.stop(t)
		up.Close() // connection refused from now on
		g2 := startGate(t, up.URL, g.Data)
		npmCI(t, g2, "restarted")
		checkStore(t, g2.Data, lf)
	})
}

// TestNPMOfflineStale lets npmgate's copies expire (max_age 1s) while
// upstream is down: it serves its snapshots marked stale, npm installs from
// them with and without a lockfile, and once upstream is back npmgate
// revalidates them.
func TestNPMOfflineStale(t *testing.T) {
	lf := fixtureLockfile(t)
	up := startUpstream(t, "")
	cfg := filepath.Join(t.TempDir(), "npmgate.yaml")
	writeFile(t, cfg, `cache:
  max_age: 1s
  stale_retry: 1s
connectors:
  npmjs:
    url: `+up.URL+`
    timeout: 10s
    retries: 0
feeds:
  npm:
    default: true
    connectors: [npmjs]
`)
	g := startGate(t, up.URL, "", "--config", cfg)
	sb := newSandbox(t)
	mustSucceed(t, sb.npm(t, sb.copyProject(t, "cold"), g.URL, "ci"))
	// Load every packument of the tree once, so that each has a snapshot.
	nolock := sb.copyProject(t, "nolock-online")
	removeFile(t, filepath.Join(nolock, "package-lock.json"))
	mustSucceed(t, sb.npm(t, nolock, g.URL, "install"))

	up.SetDown(true)
	r := pollCache(t, g.URL+"chalk", "stale")
	if w := r.header.Get("Warning"); !strings.HasPrefix(w, "110 ") {
		t.Errorf("stale packument: Warning %q, want 110 ...", w)
	}

	t.Run("npm ci", func(t *testing.T) {
		project := sb.copyProject(t, "stale-ci")
		mustSucceed(t, sb.npm(t, project, g.URL, "ci"))
		checkInstalled(t, project, lf)
	})
	t.Run("npm install without lockfile", func(t *testing.T) {
		project := sb.copyProject(t, "stale-install")
		removeFile(t, filepath.Join(project, "package-lock.json"))
		mustSucceed(t, sb.npm(t, project, g.URL, "install"))
		checkInstalled(t, project, readLockfile(t, filepath.Join(project, "package-lock.json")))
		checkDirectDeps(t, project, lf.Deps)
	})
	t.Run("back online", func(t *testing.T) {
		up.SetDown(false)
		up.ResetStats()
		r := pollCache(t, g.URL+"chalk", "revalidated")
		if w := r.header.Get("Warning"); w != "" {
			t.Errorf("revalidated packument still has Warning %q", w)
		}
		if st := up.Requests(); st.NotModified == 0 {
			t.Errorf("npmgate did not revalidate with a conditional request: %d requests, %d answered 304", st.Total, st.NotModified)
		}
	})
	checkStore(t, g.Data, lf)
}

// pollCache GETs the abbreviated packument at u until npmgate answers 200
// with X-Npmgate-Cache: want, and returns that answer.
func pollCache(t *testing.T, u, want string) response {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := get(t, u, "Accept", "application/vnd.npm.install-v1+json")
		got := r.header.Get("X-Npmgate-Cache")
		if r.status == 200 && got == want {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: still %d with X-Npmgate-Cache %q, want 200 and %q: %.300s", u, r.status, got, want, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNPMInstallWithoutLockfile resolves the fixture's dependencies from
// scratch through the /npm/npm/ feed path: npm reads packuments through
// npmgate, downloads tarballs through it, and the lockfile it writes
// points at npmgate.
func TestNPMInstallWithoutLockfile(t *testing.T) {
	fixture := fixtureLockfile(t)
	up := startUpstream(t, "")
	g := startGate(t, up.URL, "")
	sb := newSandbox(t)
	project := sb.copyProject(t, "nolock")
	removeFile(t, filepath.Join(project, "package-lock.json"))

	registry := g.URL + "npm/npm/"
	up.ResetStats()
	mustSucceed(t, sb.npm(t, project, registry, "install"))

	st := up.Requests()
	if st.Tarballs == 0 {
		t.Errorf("upstream saw no tarball request: %v", st.Paths)
	}
	if st.Packuments == 0 {
		t.Errorf("upstream saw no packument request: %v", st.Paths)
	}
	checkDirectDeps(t, project, fixture.Deps)

	written := readLockfile(t, filepath.Join(project, "package-lock.json"))
	for _, p := range written.Packages {
		if !strings.HasPrefix(p.Resolved, registry) {
			t.Errorf("%s: resolved %q, want a URL under %s", p.Path, p.Resolved, registry)
		}
	}
	checkInstalled(t, project, written)
	// The recorded registry holds exactly the fixture's tree, so npm must
	// have resolved the same versions.
	want := map[string]string{}
	for _, p := range fixture.Packages {
		want[p.Path] = p.Version
	}
	got := map[string]string{}
	for _, p := range written.Packages {
		got[p.Path] = p.Version
		if w, ok := want[p.Path]; !ok || w != p.Version {
			t.Errorf("npm resolved %s@%s; the fixture lockfile has %q", p.Path, p.Version, w)
		}
	}
	for p, v := range want {
		if _, ok := got[p]; !ok {
			t.Errorf("npm did not install %s@%s", p, v)
		}
	}
	checkStore(t, g.Data, fixture)
}

// TestTarballBytes fetches every tarball of the fixture lockfile through
// npmgate, cold and then from its disk, at / and at /npm/npm/, and compares
// the bytes with the lockfile's integrity and the recorded file.
func TestTarballBytes(t *testing.T) {
	lf := fixtureLockfile(t)
	up := startUpstream(t, "")
	g := startGate(t, up.URL, "")

	for _, tb := range lf.tarballs(t) {
		recorded := recordedTarball(t, tb.Name, tb.File)
		in := parseIntegrity(t, tb.Integrity)
		if !in.matches(t, recorded) {
			t.Fatalf("recorded %s/-/%s does not match the lockfile's integrity: the test data is inconsistent", tb.Name, tb.File)
		}
		for i, u := range []string{
			g.URL + strings.TrimPrefix(tb.URLPath(), "/"),
			g.URL + strings.TrimPrefix(tb.URLPath(), "/"),
			g.URL + "npm/npm" + tb.URLPath(),
		} {
			r := get(t, u)
			if r.status != 200 {
				t.Errorf("GET %s: %d %s", u, r.status, r.body)
				continue
			}
			if !in.matches(t, r.body) {
				t.Errorf("GET %s: %d bytes that do not match the lockfile's integrity %s (sha512 of body: %s)", u, len(r.body), tb.Integrity, sriOf(r.body))
			}
			if !bytes.Equal(r.body, recorded) {
				t.Errorf("GET %s: body differs from testdata/registry (%d bytes, want %d)", u, len(r.body), len(recorded))
			}
			wantCache := "hit"
			if i == 0 {
				wantCache = "miss"
			}
			if c := r.header.Get("X-Npmgate-Cache"); c != wantCache {
				t.Errorf("GET %s (request %d): X-Npmgate-Cache %q, want %q", u, i+1, c, wantCache)
			}
		}
	}
	checkStore(t, g.Data, lf)
}

// TestIntegrityFailure makes upstream send tarballs with one byte changed:
// npm ci fails, npmgate stores nothing (not even a temporary file), and
// once upstream is fixed the same install succeeds.
func TestIntegrityFailure(t *testing.T) {
	lf := fixtureLockfile(t)
	up := startUpstream(t, "")
	g := startGate(t, up.URL, "")
	sb := newSandbox(t)

	up.SetCorruptTarballs(true)
	bad := sb.npm(t, sb.copyProject(t, "corrupt"), g.URL, "ci")
	if bad.err == nil || bad.code == 0 {
		t.Fatalf("npm ci succeeded with corrupt upstream tarballs:\n%s", bad)
	}
	if up.Requests().Tarballs == 0 {
		t.Fatalf("upstream served no tarball, so nothing was corrupted:\n%s", bad)
	}
	waitNoTmp(t, g.Data)
	if files := filesUnder(t, filepath.Join(g.Data, "tarballs")); len(files) > 0 {
		t.Errorf("npmgate stored %d tarballs that failed verification: %v", len(files), files)
	}
	if !strings.Contains(strings.ToLower(g.logText()), "integrity") {
		t.Errorf("npmgate's log does not mention the integrity failure")
	}

	up.SetCorruptTarballs(false)
	project := sb.copyProject(t, "fixed")
	mustSucceed(t, sb.npm(t, project, g.URL, "ci"))
	checkInstalled(t, project, lf)
	checkStore(t, g.Data, lf)
}

// TestCorruptTarballAnswers asks npmgate directly, again and again, for
// tarballs that upstream corrupts. Every answer must be a 502 with a JSON
// error, or a 200 whose body is cut off before its end (the connection is
// aborted once verification fails): never the complete corrupt body, never
// a 500.
func TestCorruptTarballAnswers(t *testing.T) {
	lf := fixtureLockfile(t)
	up := startUpstream(t, "")
	up.SetCorruptTarballs(true)
	g := startGate(t, up.URL, "")
	counts := map[string]int{}
	for round := 0; round < 5; round++ {
		for _, tb := range lf.tarballs(t) {
			u := g.URL + strings.TrimPrefix(tb.URLPath(), "/")
			r, err := fetch("GET", u)
			switch {
			case err != nil && r.status == 200:
				counts["200, body cut off"]++
			case err != nil && r.status == 0:
				counts["connection closed without an answer"]++
			case err != nil:
				t.Errorf("GET %s: %d, then %v", u, r.status, err)
			case r.status == 502:
				counts["502"]++
				var body struct {
					Error string `json:"error"`
				}
				if json.Unmarshal(r.body, &body) != nil || body.Error == "" {
					t.Errorf("GET %s: 502 without a JSON error: %s", u, r.body)
				}
			case r.status == 200:
				t.Errorf("GET %s: 200 with a complete body of %d bytes that failed verification", u, len(r.body))
			default:
				counts[fmt.Sprint(r.status)]++
				t.Errorf("GET %s (round %d): %d %s, want 502 or a cut-off body", u, round+1, r.status, r.body)
			}
		}
	}
	t.Logf("answers: %v", counts)
	waitNoTmp(t, g.Data)
	if files := filesUnder(t, filepath.Join(g.Data, "tarballs")); len(files) > 0 {
		t.Errorf("npmgate stored %d tarballs that failed verification: %v", len(files), files)
	}
}

// waitNoTmp waits until npmgate's tmp/ is empty: downloads run detached
// from clients and clean up after themselves.
func waitNoTmp(t *testing.T, data string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tmp := filesUnder(t, filepath.Join(data, "tmp"))
		if len(tmp) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tmp/ still holds %v", tmp)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
