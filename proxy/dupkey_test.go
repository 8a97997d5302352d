package proxy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/npmgate/npmgate/config"
	"github.com/npmgate/npmgate/internal/fakeupstream"
)

// withSecondDist is ms's recorded document with a second "dist" member
// appended to version 2.1.3: a tarball on a host npmgate never contacts,
// with that host's integrity. JavaScript's JSON.parse, and so npm, reads
// the last member.
func withSecondDist(t *testing.T, dir string) []byte {
	t.Helper()
	orig, err := fakeupstream.ReadPackument(dir, "ms")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(orig, &doc); err != nil {
		t.Fatal(err)
	}
	var versions map[string]json.RawMessage
	if err := json.Unmarshal(doc["versions"], &versions); err != nil {
		t.Fatal(err)
	}
	v := bytes.TrimSpace(versions["2.1.3"])
	hostile := `,"dist":{"tarball":"http://127.0.0.1:1/evil/ms-2.1.3.tgz","integrity":"sha512-` + strings.Repeat("A", 86) + `=="}}`
	versions["2.1.3"] = append(v[:len(v)-1:len(v)-1], hostile...)
	// Written by hand: a map would lose the duplicate.
	var b bytes.Buffer
	b.WriteString(`{"name":"ms","dist-tags":`)
	b.Write(doc["dist-tags"])
	b.WriteString(`,"versions":{`)
	n := 0
	for k, raw := range versions {
		if n++; n > 1 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(raw)
	}
	b.WriteString(`}}`)
	return b.Bytes()
}

// TestUpstreamDuplicateKeysAreRefused: an upstream document with a name
// twice in one object (here a version with two "dist" members) is a 502,
// in both representations and for the version document, and the hostile
// tarball URL reaches no client.
func TestUpstreamDuplicateKeysAreRefused(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up)
	up.SetPackumentOverride("ms", 200, "application/json", withSecondDist(t, up.Dir()))
	for _, c := range []struct{ path, accept string }{
		{"/ms", corgi}, {"/ms", "application/json"}, {"/ms/2.1.3", "application/json"},
	} {
		resp, body := g.get(c.path, "Accept", c.accept)
		if resp.StatusCode != 502 || !json.Valid(body) || !strings.Contains(string(body), "twice") {
			t.Errorf("GET %s (%s): %d %.200s, want a 502 JSON error saying what is wrong", c.path, c.accept, resp.StatusCode, body)
		}
		if bytes.Contains(body, []byte("127.0.0.1:1")) {
			t.Errorf("GET %s: the hostile tarball URL reached the client", c.path)
		}
	}
	if snaps := g.snapshotsContaining("127.0.0.1:1"); len(snaps) > 0 {
		t.Errorf("the hostile document was stored: %v", snaps)
	}
	resp, _ := g.get("/ms/-/ms-2.1.3.tgz")
	if resp.StatusCode == 200 {
		t.Error("a tarball of a refused document was served")
	}
}

// TestUpstreamDuplicateKeysKeepTheLastGoodSnapshot: when a connector that
// served a good document starts sending one with two readings, npmgate
// keeps serving the good one (stale) and does not overwrite it.
func TestUpstreamDuplicateKeysKeepTheLastGoodSnapshot(t *testing.T) {
	up := fakeupstream.Start(t, fakeupstream.Dir())
	g := startGate(t, up, func(c *config.Config) { c.Cache.MaxAge = config.Duration(time.Millisecond) })
	resp, good := g.get("/ms", "Accept", "application/json")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /ms: %d", resp.StatusCode)
	}
	up.SetPackumentOverride("ms", 200, "application/json", withSecondDist(t, up.Dir()))
	time.Sleep(2 * time.Millisecond) // past max_age: the next request asks upstream again
	before := up.Requests().Packuments
	resp, body := g.get("/ms", "Accept", "application/json")
	if up.Requests().Packuments == before {
		t.Fatal("npmgate did not ask upstream again")
	}
	if resp.StatusCode != 200 || resp.Header.Get("X-Npmgate-Cache") != "stale" || !bytes.Equal(body, good) {
		t.Errorf("after a hostile revalidation: %d, cache %q, same document %v; want the last good one, stale",
			resp.StatusCode, resp.Header.Get("X-Npmgate-Cache"), bytes.Equal(body, good))
	}
	if snaps := g.snapshotsContaining("127.0.0.1:1"); len(snaps) > 0 {
		t.Errorf("the hostile document replaced the snapshot: %v", snaps)
	}
}

// snapshotsContaining lists the snapshot files that hold s.
func (g *gate) snapshotsContaining(s string) []string {
	var out []string
	filepath.WalkDir(filepath.Join(g.data, "snapshots"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(s)) {
				out = append(out, p)
			}
		}
		return nil
	})
	return out
}
