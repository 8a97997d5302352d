package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/npmgate/npmgate/internal/fakeupstream"
	"github.com/npmgate/npmgate/internal/testservices"
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

// TestScaleOutTakedown: with replicas, each replica that held a taken-down
// tarball on its own disk moves it to its quarantine, whichever replica
// noticed the takedown, and none serves the version.
func TestScaleOutTakedown(t *testing.T) {
	const name, version = "ansi-regex", "5.0.1"
	tarball := name + "/-/" + name + "-" + version + ".tgz"
	up := startUpstream(t, "")
	db, s3 := testservices.Postgres(t), testservices.S3(t)
	cfg := strings.Replace(scaleoutConfig, "max_age: 10m", "max_age: 1ms", 1)
	for old, new := range map[string]string{
		"UPSTREAM": up.URL, "DBURL": db, "S3ENDPOINT": s3.Endpoint, "S3REGION": s3.Region, "S3BUCKET": s3.Bucket,
		"KEYS": "    access_key: " + s3.AccessKey + "\n    secret_key: " + s3.SecretKey + "\n",
	} {
		cfg = strings.ReplaceAll(cfg, old, new)
	}
	file := filepath.Join(t.TempDir(), "npmgate.yaml")
	writeFile(t, file, cfg)
	gateCLI(t, file, t.TempDir(), "", "migrate")
	var replicas []*gate
	for range 2 {
		data := t.TempDir()
		replicas = append(replicas, startGateWith(t, data, nil, "--config", file, "--listen", "127.0.0.1:0", "--data", data))
	}
	for i, g := range replicas {
		if r := get(t, g.URL+tarball); r.status != 200 {
			t.Fatalf("replica %d: GET %s: %d %s", i, tarball, r.status, r.body)
		}
	}

	up.SetPackumentOverride(name, 200, "application/json", tdDocWithout(t, up.Dir(), name, version))
	time.Sleep(5 * time.Millisecond) // past max_age
	r := get(t, replicas[0].URL+name, "Accept", "application/vnd.npm.install-v1+json")
	var doc struct{ Versions map[string]json.RawMessage }
	if err := json.Unmarshal(r.body, &doc); r.status != 200 || err != nil || doc.Versions[version] != nil || len(doc.Versions) == 0 {
		t.Errorf("replica 0 after the takedown: %d %v, versions %d, with %s: %v", r.status, err, len(doc.Versions), version, doc.Versions[version] != nil)
	}
	for i, g := range replicas {
		r := get(t, g.URL+tarball)
		if r.status != 404 || !strings.Contains(string(r.body), "removed upstream at") {
			t.Errorf("replica %d: GET %s: %d %.200s, want a 404 saying it was removed upstream", i, tarball, r.status, r.body)
		}
		if files := filesUnder(t, filepath.Join(g.Data, "quarantine")); len(files) != 1 {
			t.Errorf("replica %d: quarantine holds %v, want its copy of the tarball", i, files)
		}
	}
}
