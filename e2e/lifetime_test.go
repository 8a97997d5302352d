package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestToolsLeaveTheCacheAlone: `npmgate explain` and `npmgate gc` on a data
// directory over cache.max_size evict nothing of their own accord (explain
// none at all, gc only what it is asked to: none under a large --max-size);
// only a serving npmgate runs the background loops: it measures the data
// directory (/metrics) and evicts down to the cap.
func TestToolsLeaveTheCacheAlone(t *testing.T) {
	up := startUpstream(t, "")
	g := startGate(t, up.URL, "")
	if r := get(t, g.URL+"ms/-/ms-2.1.3.tgz"); r.status != 200 {
		t.Fatalf("GET ms tarball: %d", r.status)
	}
	// The server measures its data directory as soon as it starts.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(get(t, g.URL+"metrics").body), `npmgate_store_files{kind="tarballs"}`) {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no npmgate_store_files after 10s:\n%s", get(t, g.URL+"metrics").body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.stop(t)
	tarballs := filepath.Join(g.Data, "tarballs")
	cached := filesUnder(t, tarballs)
	if len(cached) == 0 {
		t.Fatalf("no tarball cached under %s", tarballs)
	}
	cfgFile := filepath.Join(t.TempDir(), "npmgate.yaml")
	writeFile(t, cfgFile, strings.ReplaceAll(publishConfig, "UPSTREAM", up.URL)+"cache:\n  max_size: 1KiB\n")

	out, errOut, code := gateCLIResult(t, cfgFile, g.Data, "", "explain", "ms")
	if code != 0 || !strings.Contains(out, "2.1.3") {
		t.Fatalf("npmgate explain ms: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := filesUnder(t, tarballs); len(got) != len(cached) {
		t.Errorf("npmgate explain evicted cached tarballs: before %q, after %q", cached, got)
	}
	if _, errOut, code := gateCLIResult(t, cfgFile, g.Data, "", "gc", "--max-size", "1GiB"); code != 0 {
		t.Fatalf("npmgate gc --max-size 1GiB: exit %d\n%s", code, errOut)
	}
	if got := filesUnder(t, tarballs); len(got) != len(cached) {
		t.Errorf("npmgate gc --max-size 1GiB evicted below cache.max_size: before %q, after %q", cached, got)
	}

	// The server evicts over cache.max_size as soon as it starts.
	startGate(t, up.URL, g.Data, "--config", cfgFile)
	deadline = time.Now().Add(10 * time.Second)
	for len(filesUnder(t, tarballs)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("npmgate serve with cache.max_size 1KiB kept %q for 10s", filesUnder(t, tarballs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
