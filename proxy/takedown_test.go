package proxy

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/npmgate/npmgate/cache"
	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// docWithout is name's recorded document without the given versions, as
// upstream serves it once they were taken down.
func docWithout(t *testing.T, dir, name string, versions ...string) []byte {
	t.Helper()
	orig, err := fakeupstream.ReadPackument(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(orig, &doc); err != nil {
		t.Fatal(err)
	}
	var vs map[string]json.RawMessage
	if err := json.Unmarshal(doc["versions"], &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		if _, ok := vs[v]; !ok {
			t.Fatalf("%s has no version %s", name, v)
		}
		delete(vs, v)
	}
	doc["versions"], _ = json.Marshal(vs)
	out, _ := json.Marshal(doc)
	return out
}

// securityPlaceholder is the document npm serves for a package it replaced
// with a security holding package.
func securityPlaceholder(name string) []byte {
	return []byte(`{"_id":"` + name + `","name":"` + name + `","description":"security holding package",` +
		`"dist-tags":{"latest":"0.0.1-security"},"versions":{"0.0.1-security":{"name":"` + name + `","version":"0.0.1-security",` +
		`"description":"security holding package","repository":{"type":"git","url":"npm/security-holder"},` +
		`"dist":{"shasum":"` + strings.Repeat("0", 40) + `","tarball":"https://registry.npmjs.org/` + name + `/-/` + name + `-0.0.1-security.tgz",` +
		`"integrity":"sha512-` + strings.Repeat("A", 86) + `=="}}},"time":{"0.0.1-security":"2026-01-01T00:00:00.000Z"}}`)
}

// quarantined lists the files in the quarantine area.
func (g *gate) quarantined() []string {
	var files []string
	filepath.WalkDir(filepath.Join(g.data, "quarantine"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

// versionsOf is the versions a packument request lists.
func (g *gate) versionsOf(name string) map[string]bool {
	g.t.Helper()
	resp, body := g.get("/"+name, "Accept", corgi)
	if resp.StatusCode != 200 {
		g.t.Fatalf("GET /%s: %d %s", name, resp.StatusCode, body)
	}
	out := map[string]bool{}
	for v := range decode(g.t, body).Versions {
		out[v] = true
	}
	return out
}

// wantRemoved asserts that a version's tarball and document are refused,
// saying it was removed upstream.
func (g *gate) wantRemoved(name, version string) {
	g.t.Helper()
	base := name
	if i := strings.IndexByte(name, '/'); i >= 0 {
		base = name[i+1:]
	}
	for _, path := range []string{"/" + name + "/-/" + base + "-" + version + ".tgz", "/" + name + "/" + version} {
		resp, body := g.get(path, "Accept", "application/json")
		var e struct{ Error string }
		if resp.StatusCode != 404 || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "removed upstream at") {
			g.t.Errorf("GET %s: %d %.200q, want a 404 saying it was removed upstream", path, resp.StatusCode, body)
		}
	}
}

// TestTakedownOfOneVersion: once upstream no longer lists a version
// npmgate cached, its metadata and tarball are gone at the next
// revalidation, and stay gone while upstream is down and from an older
// snapshot; the tarball moves to quarantine (counted against the cap,
// removed by ClearQuarantine), the takedown is counted, and explain says
// when.
func TestTakedownOfOneVersion(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, func(c *config.Config) { c.Cache.MaxAge = config.Duration(time.Millisecond) })
	if vs := g.versionsOf("ansi-regex"); !vs["5.0.1"] || !vs["6.6.0"] {
		t.Fatalf("versions before: %v", vs)
	}
	want, err := fakeupstream.ReadTarball(up.Dir(), "ansi-regex", "ansi-regex-5.0.1.tgz")
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := g.get("/ansi-regex/-/ansi-regex-5.0.1.tgz"); resp.StatusCode != 200 || string(body) != string(want) {
		t.Fatalf("tarball before: %d", resp.StatusCode)
	}
	if n := len(g.storedTarballs()); n != 1 {
		t.Fatalf("%d tarballs stored, want 1", n)
	}
	oldDoc, err := fakeupstream.ReadPackument(up.Dir(), "ansi-regex")
	if err != nil {
		t.Fatal(err)
	}

	up.SetPackumentOverride("ansi-regex", 200, "application/json", docWithout(t, up.Dir(), "ansi-regex", "5.0.1"))
	time.Sleep(2 * time.Millisecond) // past max_age: the next request revalidates
	if vs := g.versionsOf("ansi-regex"); vs["5.0.1"] || !vs["6.6.0"] {
		t.Errorf("versions after the takedown: %v, want 6.6.0 without 5.0.1", vs)
	}
	g.wantRemoved("ansi-regex", "5.0.1")
	if resp, _ := g.get("/ansi-regex/-/ansi-regex-6.6.0.tgz"); resp.StatusCode != 200 {
		t.Errorf("a version still listed: %d", resp.StatusCode)
	}
	if q := g.quarantined(); len(q) != 1 {
		t.Errorf("quarantine holds %v, want the taken-down tarball", q)
	} else if b, _ := os.ReadFile(q[0]); string(b) != string(want) {
		t.Error("the quarantined file is not the tarball that was served")
	}
	if n := len(g.storedTarballs()); n != 1 { // 6.6.0's, fetched above
		t.Errorf("%d tarballs in the served store, want only 6.6.0's", n)
	}
	if n := counterValue(g.srv.metrics.takedowns.WithLabelValues("up")); n != 1 {
		t.Errorf("npmgate_takedowns_total{connector=up} = %v, want 1", n)
	}

	g.wantNeverFromSnapshots(oldDoc)
	g.wantExplainedAndQuarantined(len(want))
}

// wantNeverFromSnapshots checks that ansi-regex@5.0.1, taken down, stays
// out while upstream is down and when an older snapshot lists it.
func (g *gate) wantNeverFromSnapshots(oldDoc []byte) {
	t := g.t
	t.Helper()
	up := g.up
	// Upstream down: the snapshot stands in, without the version.
	up.SetDown(true)
	time.Sleep(2 * time.Millisecond)
	if vs := g.versionsOf("ansi-regex"); vs["5.0.1"] {
		t.Error("upstream down: the taken-down version is served again")
	}
	g.wantRemoved("ansi-regex", "5.0.1")
	// An older snapshot (another replica's, or one a failed write left)
	// still lists it: the takedown record keeps it out.
	if err := cache.WriteSnapshot(context.Background(), g.srv.disk, cache.SnapshotKey("up", "ansi-regex"), cache.SnapshotMeta{}, oldDoc); err != nil {
		t.Fatal(err)
	}
	g.srv.mem.Clear()
	if vs := g.versionsOf("ansi-regex"); vs["5.0.1"] || !vs["6.6.0"] {
		t.Errorf("from the old snapshot: %v, want 6.6.0 without 5.0.1", vs)
	}
	g.wantRemoved("ansi-regex", "5.0.1")
}

// wantExplainedAndQuarantined checks explain's word on ansi-regex@5.0.1
// and that its quarantined tarball (size bytes) counts against the cap
// until ClearQuarantine removes it.
func (g *gate) wantExplainedAndQuarantined(size int) {
	t := g.t
	t.Helper()
	ex, err := g.srv.Explain(context.Background(), "", "ansi-regex")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range ex.Versions {
		if v.Version == "5.0.1" {
			found = !v.Allowed && strings.Contains(v.Reason, "removed upstream at")
		}
	}
	if !found {
		t.Errorf("explain: %+v, want 5.0.1 removed upstream at a time", ex.Versions)
	}

	st, err := g.srv.GC(context.Background(), 1<<40)
	if err != nil || st.Quarantined != 1 || st.QuarantinedBytes != int64(size) {
		t.Errorf("GC: %+v %v, want the quarantined tarball counted", st, err)
	}
	if q, err := g.srv.ClearQuarantine(); err != nil || q.Files != 1 {
		t.Errorf("ClearQuarantine: %+v %v", q, err)
	}
	if q := g.quarantined(); len(q) != 0 {
		t.Errorf("after clearing: %v", q)
	}
}

// TestTakedownBySecurityPlaceholder: a package npm replaced with a
// 0.0.1-security holding package loses every earlier version.
func TestTakedownBySecurityPlaceholder(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, func(c *config.Config) { c.Cache.MaxAge = config.Duration(time.Millisecond) })
	before := g.versionsOf("strip-ansi")
	if !before["6.0.1"] || !before["7.2.0"] {
		t.Fatalf("versions before: %v", before)
	}
	for _, v := range []string{"6.0.1", "7.2.0"} {
		if resp, _ := g.get("/strip-ansi/-/strip-ansi-" + v + ".tgz"); resp.StatusCode != 200 {
			t.Fatalf("tarball %s before: %d", v, resp.StatusCode)
		}
	}
	up.SetPackumentOverride("strip-ansi", 200, "application/json", securityPlaceholder("strip-ansi"))
	time.Sleep(2 * time.Millisecond)
	after := g.versionsOf("strip-ansi")
	if len(after) != 1 || !after["0.0.1-security"] {
		t.Errorf("versions after: %v, want only the placeholder", after)
	}
	for _, v := range []string{"6.0.1", "7.2.0"} {
		g.wantRemoved("strip-ansi", v)
	}
	if q := g.quarantined(); len(q) != 2 {
		t.Errorf("quarantine holds %v, want both tarballs", q)
	}
	if n := counterValue(g.srv.metrics.takedowns.WithLabelValues("up")); n != float64(len(before)) {
		t.Errorf("npmgate_takedowns_total = %v, want %d (every earlier version)", n, len(before))
	}
	ex, err := g.srv.Explain(context.Background(), "", "strip-ansi")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range ex.Versions {
		if v.Version == "7.2.0" && !strings.Contains(v.Reason, "security holding package") {
			t.Errorf("explain 7.2.0: %q, want it to name the security holding package", v.Reason)
		}
	}
}

// TestRecheckFindsTakedownsNobodyAskedFor: the background re-check
// revalidates cached packuments with no request, so a takedown is acted
// on (quarantine, and the served document and tarball) before anyone asks
// again; fresh snapshots are left alone.
func TestRecheckFindsTakedownsNobodyAskedFor(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up) // max_age 2m: requests alone would not revalidate
	if vs := g.versionsOf("ansi-regex"); !vs["5.0.1"] {
		t.Fatalf("versions before: %v", vs)
	}
	g.versionsOf("ms")
	if resp, _ := g.get("/ansi-regex/-/ansi-regex-5.0.1.tgz"); resp.StatusCode != 200 {
		t.Fatalf("tarball before: %d", resp.StatusCode)
	}
	up.SetPackumentOverride("ansi-regex", 200, "application/json", docWithout(t, up.Dir(), "ansi-regex", "5.0.1"))

	// Both snapshots are fresh: a pass asks upstream nothing.
	n0 := up.Requests().Packuments
	st, err := g.srv.Recheck(context.Background())
	if err != nil || st.Snapshots != 2 || st.Checked != 0 || up.Requests().Packuments != n0 {
		t.Fatalf("re-check of fresh snapshots: %+v %v, %d upstream requests", st, err, up.Requests().Packuments-n0)
	}
	// ansi-regex's snapshot is past max_age (as after a quiet day).
	snap := filepath.Join(g.data, cache.SnapshotKey("up", "ansi-regex"))
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(snap, old, old); err != nil {
		t.Fatal(err)
	}
	st, err = g.srv.Recheck(context.Background())
	if err != nil || st.Checked != 1 || st.Takedowns != 1 || st.Failed != 0 {
		t.Fatalf("re-check: %+v %v, want one revalidation finding one takedown", st, err)
	}
	if n := up.Requests().Packuments - n0; n != 1 {
		t.Errorf("re-check made %d upstream requests, want 1", n)
	}
	if q := g.quarantined(); len(q) != 1 {
		t.Errorf("quarantine holds %v, want the taken-down tarball", q)
	}
	// The memory tier held the package for two more minutes: the re-check
	// dropped it.
	if vs := g.versionsOf("ansi-regex"); vs["5.0.1"] || !vs["6.6.0"] {
		t.Errorf("versions after the re-check: %v", vs)
	}
	g.wantRemoved("ansi-regex", "5.0.1")
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// BenchmarkRevalidatedPackument is a packument request past max_age:
// the snapshot, the takedown record and a conditional request upstream
// (304) each time.
func BenchmarkRevalidatedPackument(b *testing.B) {
	t := &testing.T{}
	up := fakeupstream.Start(b, fakeupstream.Dir())
	g := startGateB(b, t, up, func(c *config.Config) { c.Cache.MaxAge = config.Duration(time.Nanosecond) })
	benchGet(b, g, "/ms", "Accept", corgi)
}

// TestPackageGoneUpstreamIsNotServedFromItsSnapshot: once upstream answers
// 404 for a package it served, its snapshot no longer stands in when
// upstream fails later: the package is not served, every version listed,
// from what upstream sent before it removed it.
func TestPackageGoneUpstreamIsNotServedFromItsSnapshot(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, func(c *config.Config) {
		c.Cache.MaxAge = config.Duration(time.Millisecond)
		c.Cache.NotFoundTTL = config.Duration(time.Millisecond)
	})
	if vs := g.versionsOf("ms"); !vs["2.1.3"] {
		t.Fatalf("versions before: %v", vs)
	}
	up.SetPackumentOverride("ms", 404, "application/json", []byte(`{"error":"Not found"}`))
	time.Sleep(2 * time.Millisecond)
	if resp, body := g.get("/ms", "Accept", corgi); resp.StatusCode != 404 {
		t.Fatalf("after upstream's 404: %d %.200s", resp.StatusCode, body)
	}
	up.SetPackumentOverride("ms", 0, "", nil)
	up.SetDown(true)
	time.Sleep(2 * time.Millisecond)
	for _, path := range []string{"/ms", "/ms/-/ms-2.1.3.tgz"} {
		if resp, body := g.get(path, "Accept", corgi); resp.StatusCode == 200 {
			t.Errorf("GET %s with upstream down: 200 %.100q, want the removed package not served", path, body)
		}
	}
}

// TestTakedownUnrecordedStillHidden: when the takedown record cannot be
// written, the takedown is acted on all the same: the version is not
// served (from the new snapshot either) and its tarball is quarantined.
func TestTakedownUnrecordedStillHidden(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, func(c *config.Config) { c.Cache.MaxAge = config.Duration(time.Millisecond) })
	g.versionsOf("ansi-regex")
	// A file where the records' directory would go: every write fails.
	if err := os.WriteFile(filepath.Join(g.data, "takedowns"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if resp, _ := g.get("/ansi-regex/-/ansi-regex-5.0.1.tgz"); resp.StatusCode != 200 {
		t.Fatalf("tarball before: %d", resp.StatusCode)
	}
	up.SetPackumentOverride("ansi-regex", 200, "application/json", docWithout(t, up.Dir(), "ansi-regex", "5.0.1"))
	time.Sleep(2 * time.Millisecond)
	if vs := g.versionsOf("ansi-regex"); vs["5.0.1"] || !vs["6.6.0"] {
		t.Errorf("versions with the record unwritable: %v, want 6.6.0 without 5.0.1", vs)
	}
	// Without the record the 404s cannot say when; they are 404s still.
	for _, clear := range []bool{false, true} {
		if clear {
			g.srv.mem.Clear() // every reading from the snapshot now
		}
		for _, path := range []string{"/ansi-regex/-/ansi-regex-5.0.1.tgz", "/ansi-regex/5.0.1"} {
			if resp, body := g.get(path, "Accept", "application/json"); resp.StatusCode != 404 {
				t.Errorf("GET %s: %d %.100q, want 404", path, resp.StatusCode, body)
			}
		}
	}
	if q := g.quarantined(); len(q) != 1 {
		t.Errorf("quarantine holds %v, want the taken-down tarball", q)
	}
}

// TestStaleUpstreamDocumentIsNoTakedown: a document that lacks a version
// but says it was modified before the snapshot was (a lagging CDN edge or
// mirror) takes nothing down: no record, no quarantine, and the version
// is back once upstream serves the current document again.
func TestStaleUpstreamDocumentIsNoTakedown(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, func(c *config.Config) { c.Cache.MaxAge = config.Duration(time.Millisecond) })
	modifiedAt := func(doc []byte, at string) []byte {
		var m map[string]json.RawMessage
		json.Unmarshal(doc, &m)
		var times map[string]string
		json.Unmarshal(m["time"], &times)
		times["modified"] = at
		m["time"], _ = json.Marshal(times)
		out, _ := json.Marshal(m)
		return out
	}
	current, err := fakeupstream.ReadPackument(up.Dir(), "ansi-regex")
	if err != nil {
		t.Fatal(err)
	}
	up.SetPackumentOverride("ansi-regex", 200, "application/json", modifiedAt(current, "2024-12-02T18:35:14.692Z"))
	g.versionsOf("ansi-regex")
	if resp, _ := g.get("/ansi-regex/-/ansi-regex-5.0.1.tgz"); resp.StatusCode != 200 {
		t.Fatalf("tarball before: %d", resp.StatusCode)
	}
	stale := modifiedAt(docWithout(t, up.Dir(), "ansi-regex", "5.0.1"), "2024-01-01T00:00:00.000Z")
	up.SetPackumentOverride("ansi-regex", 200, "application/json", stale)
	time.Sleep(2 * time.Millisecond)
	g.versionsOf("ansi-regex")
	if q := g.quarantined(); len(q) != 0 {
		t.Errorf("a stale document quarantined %v", q)
	}
	if _, err := os.Stat(filepath.Join(g.data, cache.TakedownKey("up", "ansi-regex"))); err == nil {
		t.Error("a stale document was recorded as a takedown")
	}
	up.SetPackumentOverride("ansi-regex", 0, "", nil)
	time.Sleep(2 * time.Millisecond)
	if vs := g.versionsOf("ansi-regex"); !vs["5.0.1"] {
		t.Errorf("versions once upstream is current again: %v, want 5.0.1 back", vs)
	}
}
