package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// tdDocWithout is name's recorded document without version, as upstream
// serves it once the version was taken down.
func tdDocWithout(t *testing.T, dir, name, version string) []byte {
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
	delete(vs, version)
	doc["versions"] = mustJSON(t, vs)
	return mustJSON(t, doc)
}

// TestTakedownNPM: npm installs ansi-regex@5.0.1 through npmgate; upstream
// then stops listing it. With nobody asking, npmgate's background re-check
// (cache.recheck) notices, quarantines the tarball and logs it; afterwards
// npm install of that version fails on a fresh machine, npm ci with the
// old lockfile gets a 404 saying it was removed upstream, other versions
// still install, explain says when it was removed, the metric counts it,
// and gc --quarantine removes the quarantined file.
func TestTakedownNPM(t *testing.T) {
	const name, version = "ansi-regex", "5.0.1"
	up := startUpstream(t, "")
	data := t.TempDir()
	g, cfg := startConfiguredGate(t, up, data, `
cache:
  max_age: 1ms
  recheck: 100ms
connectors:
  up:
    url: UPSTREAM
feeds:
  main:
    default: true
    connectors: [up]
`)
	sb := newSandbox(t)
	before := sb.dir(t, "before")
	writeConsumer(t, before)
	mustSucceed(t, sb.npm(t, before, g.URL, "install", name+"@"+version))
	checkInstalledVersion(t, before, name, version)

	up.SetPackumentOverride(name, 200, "application/json", tdDocWithout(t, up.Dir(), name, version))
	quarantine := filepath.Join(data, "quarantine")
	deadline := time.Now().Add(30 * time.Second)
	// Nobody asks: the re-check's pass must find it.
	for !strings.Contains(g.logText(), `msg="re-checked cached packuments" snapshots=1 revalidated=1 failed=0 takedowns=1`) {
		if time.Now().After(deadline) {
			t.Fatalf("no re-check found the takedown within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if files := filesUnder(t, quarantine); len(files) != 1 {
		t.Errorf("quarantine holds %v, want the taken-down tarball", files)
	}
	if !strings.Contains(g.logText(), `msg="takedown: version removed upstream; no longer served" connector=up package=`+name+` version=`+version) {
		t.Errorf("no takedown line in the log")
	}

	fresh := newSandbox(t) // another machine: nothing in npm's cache
	p := fresh.dir(t, "install")
	writeConsumer(t, p)
	mustFailWith(t, fresh.npm(t, p, g.URL, "install", name+"@"+version), "ETARGET")

	ci := fresh.dir(t, "ci")
	copyTree(t, before, ci)
	os.RemoveAll(filepath.Join(ci, "node_modules"))
	mustFailWith(t, fresh.npm(t, ci, g.URL, "ci"), "404", "removed upstream at")

	other := fresh.dir(t, "other")
	writeConsumer(t, other)
	mustSucceed(t, fresh.npm(t, other, g.URL, "install", name+"@6"))

	versions, _, out := fltExplain(t, name, "--config", cfg, "--data", data)
	if v := versions[version]; v.status != "blocked" || v.what != "takedown" || !strings.Contains(v.reason, "removed upstream at") {
		t.Errorf("explain %s: %+v, want blocked by takedown, removed upstream at T\n%s", version, v, out)
	}

	if m := get(t, g.URL+"metrics"); !strings.Contains(string(m.body), `npmgate_takedowns_total{connector="up"} 1`) {
		t.Errorf("metrics lack npmgate_takedowns_total{connector=\"up\"} 1")
	}

	stdout := gateCLI(t, cfg, data, "", "gc", "--quarantine")
	if !strings.Contains(stdout, "quarantine: removed 1 files") {
		t.Errorf("gc --quarantine: %s", stdout)
	}
	if files := filesUnder(t, quarantine); len(files) != 0 {
		t.Errorf("after gc --quarantine: %v", files)
	}
}
