package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/filter"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

func withFilter(t *testing.T, connector string, spec *filter.Spec) gateOpt {
	return func(c *config.Config) {
		if _, err := filter.Compile(spec); err != nil {
			t.Fatal(err)
		}
		// The configuration holds the filter as written; the server
		// compiles it (policy.Compile).
		var n yaml.Node
		if err := n.Encode(spec); err != nil {
			t.Fatal(err)
		}
		c.Connectors[connector].Filter = n
	}
}

// coolDoc is a package whose newest version is an hour old.
func coolDoc(now time.Time) []byte {
	ver := func(v string) string {
		return fmt.Sprintf(`%q:{"name":"cool","version":%q,"dist":{"tarball":"https://x/cool/-/cool-%s.tgz","integrity":"sha512-%s"}}`,
			v, v, v, strings.Repeat("A", 86)+"==")
	}
	old := now.Add(-30 * 24 * time.Hour).Format(time.RFC3339)
	return []byte(`{"name":"cool","dist-tags":{"latest":"2.0.0","next":"2.1.0-beta.1"},"versions":{` +
		ver("1.0.0") + "," + ver("1.1.0") + "," + ver("2.0.0") + "," + ver("2.1.0-beta.1") +
		`},"time":{"1.0.0":"` + old + `","1.1.0":"` + old + `","2.0.0":"` + now.Add(-time.Hour).Format(time.RFC3339) +
		`","2.1.0-beta.1":"` + now.Add(-time.Hour).Format(time.RFC3339) + `"}}`)
}

func TestCooldownHidesNewVersionsAndMovesTags(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	up.SetPackumentOverride("cool", 200, "application/json", coolDoc(time.Now()))
	g := startGate(t, up, withFilter(t, "up", &filter.Spec{MinReleaseAge: filter.Duration(72 * time.Hour)}))
	for _, accept := range []string{corgi, "application/json"} {
		resp, body := g.get("/cool", "Accept", accept)
		d := decode(t, body)
		if _, ok := d.Versions["2.0.0"]; ok || len(d.Versions) != 2 {
			t.Fatalf("%s: versions %v", accept, d.Versions)
		}
		if d.DistTags["latest"] != "1.1.0" {
			t.Errorf("%s: latest %q, want 1.1.0", accept, d.DistTags["latest"])
		}
		if _, ok := d.Time["2.0.0"]; ok {
			t.Errorf("%s: the hidden version is still in time", accept)
		}
		if n := resp.Header.Get("npm-notice"); !strings.Contains(n, "2 version(s)") || !strings.Contains(n, "min-release-age") {
			t.Errorf("npm-notice %q", n)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("a filtered document is cacheable (%q): npm would never print its notice", cc)
		}
	}
	resp, body := g.get("/cool/-/cool-2.0.0.tgz")
	if resp.StatusCode != 403 || !strings.Contains(string(body), "min_release_age") {
		t.Errorf("tarball of a cooling version: %d %s", resp.StatusCode, body)
	}
	// The version document says the same; a version nobody published is
	// still a 404.
	resp, body = g.get("/cool/2.0.0")
	if resp.StatusCode != 403 || !strings.Contains(string(body), "min_release_age") || !strings.Contains(string(body), `"error"`) {
		t.Errorf("version document of a cooling version: %d %s", resp.StatusCode, body)
	}
	if resp, body = g.get("/cool/9.9.9"); resp.StatusCode != 404 {
		t.Errorf("unknown version: %d %s", resp.StatusCode, body)
	}
	if resp, body = g.get("/cool/1.1.0"); resp.StatusCode != 200 || !strings.Contains(string(body), `"version":"1.1.0"`) {
		t.Errorf("allowed version: %d %s", resp.StatusCode, body)
	}
	if n := up.Requests().Tarballs; n != 0 {
		t.Errorf("a blocked tarball was fetched upstream")
	}
}

func TestBlockedRangeAndExcludedName(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, withFilter(t, "up", &filter.Spec{Block: []string{"ms@<2.1.0"}, Exclude: []string{"left-pad", "@evil/*"}}))
	_, body := g.get("/ms", "Accept", corgi)
	for v := range decode(t, body).Versions {
		if !strings.HasPrefix(v, "2.1") && !strings.HasPrefix(v, "3") && !strings.HasPrefix(v, "4") {
			t.Errorf("blocked version %s served", v)
		}
	}
	resp, body := g.get("/ms/-/ms-2.0.0.tgz")
	var e struct{ Error string }
	json.Unmarshal(body, &e)
	if resp.StatusCode != 403 || !strings.Contains(e.Error, "ms@2.0.0") || !strings.Contains(e.Error, `"ms@<2.1.0"`) {
		t.Errorf("blocked tarball: %d %s", resp.StatusCode, body)
	}
	if resp, _ := g.get("/ms/-/ms-2.1.3.tgz"); resp.StatusCode != 200 {
		t.Errorf("allowed tarball: %d", resp.StatusCode)
	}
	before := up.Requests().Total
	for _, name := range []string{"/left-pad", "/@evil%2fx"} {
		resp, body := g.get(name)
		if resp.StatusCode != 404 || !strings.Contains(string(body), "exclude") {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	if up.Requests().Total != before {
		t.Error("an excluded name was requested upstream")
	}
}

func TestReloadAppliesNewRulesAtOnce(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)
	if _, body := g.get("/ms", "Accept", corgi); len(decode(t, body).Versions) < 10 {
		t.Fatal("unfiltered document is short")
	}
	cfg := *g.srv.cfg
	conns := map[string]*config.Connector{}
	for k, v := range cfg.Connectors {
		c := *v
		conns[k] = &c
	}
	cfg.Connectors = conns
	withFilter(t, "up", &filter.Spec{Exclude: []string{"ms"}})(&cfg)
	if err := g.srv.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	if resp, _ := g.get("/ms", "Accept", corgi); resp.StatusCode != 404 {
		t.Errorf("after reload: %d, want the new rule's 404", resp.StatusCode)
	}
	if resp, _ := g.get("/ms/-/ms-2.1.3.tgz"); resp.StatusCode != 404 {
		t.Errorf("tarball after reload: %d", resp.StatusCode)
	}
	// A change that needs a restart is refused whole.
	cfg2 := cfg
	cfg2.Feeds = map[string]*config.Feed{"other": {Connectors: []string{"up"}}}
	if err := g.srv.Reload(&cfg2); err == nil {
		t.Error("a reload that changes the feeds was accepted")
	}
}

func TestExplain(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	up.SetPackumentOverride("cool", 200, "application/json", coolDoc(time.Now()))
	g := startGate(t, up, withFilter(t, "up", &filter.Spec{MinReleaseAge: filter.Duration(72 * time.Hour), Block: []string{"cool@1.0.0"}}))
	ex, err := g.srv.Explain(context.Background(), "", "cool")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, v := range ex.Versions {
		got[v.Version] = v.Rule
	}
	want := map[string]string{"1.0.0": "block", "1.1.0": "", "2.0.0": "min-release-age", "2.1.0-beta.1": "min-release-age"}
	for v, rule := range want {
		if got[v] != rule {
			t.Errorf("%s: rule %q, want %q", v, got[v], rule)
		}
	}
}

// A cold tarball request starts the download before the document says
// whether the version is allowed: a blocked one must still be refused,
// and nothing of it stored or left behind.
func TestColdRequestForABlockedTarball(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, withFilter(t, "up", &filter.Spec{Block: []string{"ms@2.1.3"}}))
	resp, body := g.get("/ms/-/ms-2.1.3.tgz")
	if resp.StatusCode != 403 || !strings.Contains(string(body), "ms@2.1.3") {
		t.Fatalf("cold blocked tarball: %d %s", resp.StatusCode, body)
	}
	waitFor(t, func() bool { return len(g.tmpFiles()) == 0 })
	if files := g.storedTarballs(); len(files) != 0 {
		t.Errorf("blocked bytes stored: %v", files)
	}
	// An allowed cold tarball is served from the same early download.
	before := up.Requests().Tarballs
	resp, body = g.get("/debug/-/debug-4.4.3.tgz")
	want, _ := fakeupstream.ReadTarball(up.Dir(), "debug", "debug-4.4.3.tgz")
	if resp.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Fatalf("cold allowed tarball: %d", resp.StatusCode)
	}
	if n := up.Requests().Tarballs - before; n != 1 {
		t.Errorf("%d upstream downloads for one cold tarball, want 1", n)
	}
	waitFor(t, func() bool { return len(g.tmpFiles()) == 0 })
}
