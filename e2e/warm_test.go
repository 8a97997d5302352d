package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWarmThenInstallOffline is the air-gapped CI image recipe: npmgate
// warm fills a data directory from the fixture's lockfile, the upstream
// goes away, and npm ci through npmgate on that directory still succeeds.
func TestWarmThenInstallOffline(t *testing.T) {
	lf := fixtureLockfile(t)
	up := startUpstream(t, "")
	data := t.TempDir()
	lockfile := filepath.Join(repoRoot, "testdata", "e2e", "app", "package-lock.json")
	cmd := exec.Command(gateBin, "warm", "--data", data, "--upstream", up.URL, "--lockfile", lockfile)
	cmd.Env = cleanEnv(nil)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npmgate warm: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "0 failed") {
		t.Errorf("npmgate warm summary: %s", out)
	}
	checkStore(t, data, lf)

	up.Close() // the network to upstream is cut
	g := startGate(t, up.URL, data)
	sb := newSandbox(t)
	project := sb.copyProject(t, "offline-after-warm")
	mustSucceed(t, sb.npm(t, project, g.URL, "ci"))
	checkInstalled(t, project, lf)
	if _, err := os.Stat(filepath.Join(project, "node_modules")); err != nil {
		t.Fatal(err)
	}
}
