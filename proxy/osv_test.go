package proxy

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/filter"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// malMS is a made-up malicious-package record for ms 2.1.3, the latest
// version of the recorded registry's ms (whose tarball it has).
const malMS = `{
  "id": "MAL-0000-npmgate-test-ms",
  "modified": "2026-11-25T00:00:00Z",
  "published": "2026-11-25T00:00:00Z",
  "summary": "Malicious code in ms (made up for a test)",
  "affected": [{"package": {"ecosystem": "npm", "name": "ms"}, "versions": ["2.1.3"]}]
}`

// osvDir copies testdata/osv/npm to a directory a test may change.
func osvDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "osv")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../testdata/osv/npm/*.json")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// withOSV sets osv.source (the options are applied after config's
// defaults, so they are written out).
func withOSV(source string) gateOpt {
	return func(c *config.Config) {
		c.OSV = config.OSV{Source: source, Refresh: config.Duration(time.Hour)}
	}
}

// withFeedFilter sets feeds.main.filter.
func withFeedFilter(t *testing.T, spec *filter.Spec) gateOpt {
	return func(c *config.Config) {
		if err := c.Feeds["main"].Filter.Encode(spec); err != nil {
			t.Fatal(err)
		}
	}
}

// versionsOf lists a packument's versions and dist-tags.
func versionsOf(t *testing.T, body []byte) ([]string, map[string]string) {
	t.Helper()
	var doc struct {
		DistTags map[string]string `json:"dist-tags"`
		Versions map[string]json.RawMessage
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%v: %.200s", err, body)
	}
	var vs []string
	for v := range doc.Versions {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs, doc.DistTags
}

// msBlocked checks that ms 2.1.3 is gone from every document, latest
// moved below it, and its tarball a 403 naming id; or all there.
func msBlocked(t *testing.T, g *gate, blocked bool, id string) {
	t.Helper()
	for _, accept := range []string{corgi, "application/json"} {
		resp, body := g.get("/ms", "Accept", accept)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", accept, resp.StatusCode, body)
		}
		vs, tags := versionsOf(t, body)
		if slices.Contains(vs, "2.1.3") == blocked {
			t.Errorf("%s: 2.1.3 listed %v, want %v", accept, !blocked, !blocked)
		}
		if want := map[bool]string{true: "2.1.2", false: "2.1.3"}[blocked]; tags["latest"] != want {
			t.Errorf("%s: latest %q, want %q", accept, tags["latest"], want)
		}
	}
	resp, body := g.get("/ms/2.1.3")
	if blocked && (resp.StatusCode != 403 || !strings.Contains(string(body), id)) || !blocked && resp.StatusCode != 200 {
		t.Errorf("version document: %d %.200s", resp.StatusCode, body)
	}
	resp, body = g.get("/ms/latest")
	var latest struct{ Version string }
	json.Unmarshal(body, &latest)
	if want := map[bool]string{true: "2.1.2", false: "2.1.3"}[blocked]; resp.StatusCode != 200 || latest.Version != want {
		t.Errorf("/ms/latest: %d %.200s, want %s", resp.StatusCode, body, want)
	}
	resp, body = g.get("/ms/-/ms-2.1.3.tgz")
	if blocked {
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		if resp.StatusCode != 403 || !strings.Contains(e.Error, id) {
			t.Errorf("tarball: %d %s, want a 403 naming %s", resp.StatusCode, body, id)
		}
	} else if resp.StatusCode != 200 {
		t.Errorf("tarball: %d %.200s", resp.StatusCode, body)
	}
}

func TestOSVMaliciousBlocks(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	dir := osvDir(t)
	if err := os.WriteFile(filepath.Join(dir, "MAL-0000-npmgate-test-ms.json"), []byte(malMS), 0o644); err != nil {
		t.Fatal(err)
	}
	// No filter written: with a database, feeds block malicious packages.
	g := startGate(t, up, withOSV(dir))
	msBlocked(t, g, true, "MAL-0000-npmgate-test-ms")
	ex, err := g.srv.Explain(context.Background(), "", "ms")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range ex.Versions {
		if v.Version == "2.1.3" {
			found = true
			if v.Allowed || v.Rule != filter.RuleMalicious || !strings.Contains(v.Reason, "MAL-0000-npmgate-test-ms") {
				t.Errorf("explain 2.1.3: %+v", v)
			}
		}
	}
	if !found {
		t.Error("explain does not list 2.1.3")
	}
}

func TestOSVMaliciousOff(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	dir := osvDir(t)
	os.WriteFile(filepath.Join(dir, "MAL-0000-npmgate-test-ms.json"), []byte(malMS), 0o644)
	g := startGate(t, up, withOSV(dir), withFeedFilter(t, &filter.Spec{Malicious: "off"}))
	msBlocked(t, g, false, "")
}

func TestOSVVulnerableBlocks(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, withOSV(osvDir(t)), withFeedFilter(t, &filter.Spec{Vulnerable: &filter.VulnerableSpec{MinSeverity: "moderate"}}))
	resp, body := g.get("/semver", "Accept", corgi)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	vs, _ := versionsOf(t, body)
	for _, v := range []string{"7.5.1", "6.3.0", "5.7.1"} {
		if slices.Contains(vs, v) {
			t.Errorf("%s listed: GHSA-c2qf-rxjj-qqgw affects it", v)
		}
	}
	for _, v := range []string{"7.5.2", "6.3.1", "7.8.6"} {
		if !slices.Contains(vs, v) {
			t.Errorf("%s not listed: no advisory affects it", v)
		}
	}
	resp, body = g.get("/semver/-/semver-7.5.1.tgz")
	if resp.StatusCode != 403 || !strings.Contains(string(body), "GHSA-c2qf-rxjj-qqgw") {
		t.Errorf("tarball: %d %s", resp.StatusCode, body)
	}
}

// A refresh that brings a new advisory takes effect on the next render,
// without a restart; a failed refresh keeps the last good database, and
// the metric and /readyz say so.
func TestOSVRefresh(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	dir := osvDir(t)
	g := startGate(t, up, withOSV(dir))
	msBlocked(t, g, false, "")
	resp, body := g.get("/readyz")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "osv: 7 advisories (2 malicious)") {
		t.Errorf("readyz: %d %s", resp.StatusCode, body)
	}

	if err := os.WriteFile(filepath.Join(dir, "MAL-0000-npmgate-test-ms.json"), []byte(malMS), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.refreshOSV(context.Background()); err != nil {
		t.Fatal(err)
	}
	msBlocked(t, g, true, "MAL-0000-npmgate-test-ms")

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.refreshOSV(context.Background()); err == nil {
		t.Fatal("a refresh of a removed directory succeeded")
	}
	msBlocked(t, g, true, "MAL-0000-npmgate-test-ms")
	time.Sleep(1100 * time.Millisecond) // /readyz caches its answer for a second
	resp, body = g.get("/readyz")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "osv: 8 advisories (3 malicious)") || !strings.Contains(string(body), "last refresh failed") {
		t.Errorf("readyz after a failed refresh: %d %s", resp.StatusCode, body)
	}
	_, metrics := g.get("/metrics")
	for _, want := range []string{`npmgate_osv_refreshes_total{result="error"} 1`, `npmgate_osv_refreshes_total{result="ok"} 2`, `npmgate_osv_records{kind="malicious"} 3`, "npmgate_osv_loaded 1"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Without a database, the server starts and is not ready.
func TestOSVNoDatabaseNotReady(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, withOSV(filepath.Join(t.TempDir(), "missing")))
	resp, body := g.get("/readyz")
	if resp.StatusCode != 503 || !strings.Contains(string(body), "osv: no database yet") {
		t.Errorf("readyz: %d %s", resp.StatusCode, body)
	}
}

// A reload of the rules keeps the database; a change of the osv section
// needs a restart and is refused whole.
func TestOSVReload(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	dir := osvDir(t)
	os.WriteFile(filepath.Join(dir, "MAL-0000-npmgate-test-ms.json"), []byte(malMS), 0o644)
	g := startGate(t, up, withOSV(dir))
	msBlocked(t, g, true, "MAL-0000-npmgate-test-ms")
	cfg := *g.srv.cfg
	feeds := map[string]*config.Feed{}
	for k, v := range cfg.Feeds {
		f := *v
		feeds[k] = &f
	}
	cfg.Feeds = feeds
	withFeedFilter(t, &filter.Spec{Deprecated: "hide"})(&cfg)
	if err := g.srv.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	msBlocked(t, g, true, "MAL-0000-npmgate-test-ms")
	cfg2 := cfg
	cfg2.OSV.Source = filepath.Join(t.TempDir(), "other")
	if err := g.srv.Reload(&cfg2); err == nil || !strings.Contains(err.Error(), "osv changed") {
		t.Errorf("a reload changing osv.source: %v", err)
	}
}

// TestOSVMaliciousPublishRefused: a version a malicious-package record
// names is not published (npm took the name down, so no connector serves
// it, and the feed would be where the malware is installed from): 403
// naming the advisory, nothing stored; a version the record does not
// name, and any version with the rule off, are published.
func TestOSVMaliciousPublishRefused(t *testing.T) {
	p := publishGate(t, withOSV(osvDir(t)))
	status, body := p.publish("npmgate-e2e-malware", "1.0.0", nil)
	if status != 403 || !strings.Contains(body, "MAL-0000-npmgate-e2e-malware") || !strings.Contains(body, "not published") {
		t.Errorf("publish of a recorded malware version: %d %s", status, body)
	}
	if _, err := os.Stat(p.localFile("npmgate-e2e-malware")); !os.IsNotExist(err) {
		t.Errorf("the refused publish stored a document: %v", err)
	}
	if status, body := p.publish("ms-local-fine", "1.0.0", nil); status != 200 {
		t.Errorf("an unrecorded name: %d %s", status, body)
	}

	off := publishGate(t, withOSV(osvDir(t)), withFeedFilter(t, &filter.Spec{Malicious: "off"}), withFilter(t, "up", &filter.Spec{Malicious: "off"}))
	if status, body := off.publish("npmgate-e2e-malware", "1.0.0", nil); status != 200 {
		t.Errorf("with malicious: off everywhere: %d %s", status, body)
	}
}

// TestOSVMaliciousLocalVersionHidden: a local version published before a
// malicious-package record named it is hidden from the document once the
// record is loaded, and its tarball refused; the package's other versions
// stay.
func TestOSVMaliciousLocalVersionHidden(t *testing.T) {
	dir := osvDir(t)
	record, err := os.ReadFile(filepath.Join(dir, "MAL-0000-npmgate-e2e-malware.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "MAL-0000-npmgate-e2e-malware.json"))
	// The record names every version; this one names 2.0.0 alone.
	record = []byte(strings.Replace(string(record), `"introduced": "0"`, `"introduced": "2.0.0"`, 1))
	p := publishGate(t, withOSV(dir))
	for _, v := range []string{"1.0.0", "2.0.0"} {
		if status, body := p.publish("npmgate-e2e-malware", v, nil); status != 200 {
			t.Fatalf("publish %s before the record: %d %s", v, status, body)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "MAL-0000-npmgate-e2e-malware.json"), record, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.srv.refreshOSV(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, body := p.get("/npmgate-e2e-malware")
	vs, tags := versionsOf(t, body)
	if resp.StatusCode != 200 || !slices.Equal(vs, []string{"1.0.0"}) || tags["latest"] != "1.0.0" {
		t.Errorf("the document after the record: %d versions %v tags %v", resp.StatusCode, vs, tags)
	}
	if resp, body := p.get("/npmgate-e2e-malware/-/npmgate-e2e-malware-2.0.0.tgz"); resp.StatusCode != 403 || !strings.Contains(string(body), "MAL-0000-npmgate-e2e-malware") {
		t.Errorf("the recorded version's tarball: %d %s", resp.StatusCode, body)
	}
	if resp, _ := p.get("/npmgate-e2e-malware/-/npmgate-e2e-malware-1.0.0.tgz"); resp.StatusCode != 200 {
		t.Errorf("the other version's tarball: %d", resp.StatusCode)
	}
}
