// Package e2e drives the real npm, yarn 1, yarn 4 and pnpm clients against a
// real `npmgate serve` process on loopback, which fronts a fake upstream
// registry (internal/fakeupstream) serving recorded data. Nothing here talks
// to the live npm registry: the clients are pointed only at npmgate, read no
// user or global configuration, and have a dead HTTP proxy for everything
// that is not loopback.
//
// The client tools come from `make tools` (under $NPMGATE_TOOLS, default
// <repo>/.tools); npm and node must be on PATH. A missing tool fails the
// test that needs it.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/npmgate/npmgate/internal/testservices"
)

var (
	// gateBin is the npmgate binary TestMain built.
	gateBin string
	// repoRoot is the module root (the parent of this package).
	repoRoot string
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	root, err := filepath.Abs("..")
	if err == nil {
		var b []byte
		b, err = os.ReadFile(filepath.Join(root, "go.mod"))
		if err == nil && !bytes.Contains(b, []byte("module github.com/npmgate/npmgate")) {
			err = fmt.Errorf("%s is not the npmgate module root", root)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = root

	dir, err := os.MkdirTemp("", "npmgate-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	gateBin = filepath.Join(dir, "npmgate")
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: the go tool is not on PATH:", err)
		return 1
	}
	build := exec.Command(goTool, "build", "-o", gateBin, "./cmd/npmgate")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building npmgate: %v\n%s", err, out)
		return 1
	}
	// The scale-out tests' PostgreSQL and S3 servers, if they started.
	defer testservices.StopS3()
	defer testservices.StopAll()
	return m.Run()
}
